"""Agents train with ``torch_threads`` torch CPU threads and restore the process's count when
``learn`` returns; None leaves it alone; ``"auto"`` (the default) is one thread unless the user
chose a count (``torch.set_num_threads``, ``OMP_NUM_THREADS``)."""

import subprocess
import sys

import pytest
import torch

from rlrobot.agents import PPO, SAC, base
from rlrobot.errors import ConfigError

SMALL_PPO = {"n_steps": 16, "batch_size": 16, "n_epochs": 1}


@pytest.fixture
def two_threads(monkeypatch):
    """The process runs two torch threads, as torch's default on a 2-core machine, and no
    thread count is asked for in the environment."""
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    monkeypatch.setattr(base, "STARTING_TORCH_THREADS", 2)
    for name in base.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield
    torch.set_num_threads(previous)


def threads_during_learn(agent, steps: int = 32) -> set[int]:
    """Return the torch thread counts seen by ``learn``'s callback."""
    seen = set()
    agent.learn(steps, callback=lambda _: seen.add(torch.get_num_threads()))
    return seen


@pytest.mark.parametrize(
    ("make", "keywords", "expected"),
    [
        (PPO, {}, {1}),  # the default
        (PPO, {"torch_threads": 2}, {2}),
        (PPO, {"torch_threads": None}, {2}),  # the process's count, left alone
        (SAC, {"learning_starts": 8, "batch_size": 8}, {1}),
    ],
)
def test_learn_runs_with_torch_threads_and_restores_the_count(
    two_threads, make, keywords, expected
):
    env = "rlrobot/CartPoleContinuous-v0"
    small = SMALL_PPO if make is PPO else {}
    agent = make(env, device="cpu", seed=0, net_arch=[8], **small, **keywords)
    assert threads_during_learn(agent) == expected
    assert torch.get_num_threads() == 2
    agent.env.close()


def test_a_loaded_agent_trains_on_one_thread_unless_told(two_threads, tmp_path):
    agent = PPO("rlrobot/CartPole-v0", device="cpu", seed=0, net_arch=[8], **SMALL_PPO)
    agent.save(tmp_path / "model")
    agent.env.close()
    loaded = PPO.load(tmp_path / "model", env="rlrobot/CartPole-v0", device="cpu")
    assert threads_during_learn(loaded) == {1}
    loaded.torch_threads = None
    assert threads_during_learn(loaded) == {2}
    loaded.env.close()


@pytest.mark.parametrize("value", [0, 2.5, "2", 10**6, True])
def test_a_bad_thread_count_is_refused_naming_it(value):
    with pytest.raises(ConfigError) as error:
        PPO("rlrobot/CartPole-v0", device="cpu", torch_threads=value)
    assert str(error.value).startswith("torch_threads must be an integer in [1, 1024] (")
    assert str(error.value).endswith(
        f', got {value!r}; "auto" (the default) and None are allowed too'
    )


def test_the_default_leaves_a_count_the_user_chose(two_threads, monkeypatch):
    agent = PPO("rlrobot/CartPoleContinuous-v0", device="cpu", seed=0, net_arch=[8], **SMALL_PPO)
    assert threads_during_learn(agent) == {1}  # torch's own count: the default applies
    monkeypatch.setattr(base, "STARTING_TORCH_THREADS", 4)  # the script set 2 after import
    assert threads_during_learn(agent) == {2}
    agent.torch_threads = 1  # an explicit count wins over the script's
    assert threads_during_learn(agent) == {1}
    agent.torch_threads = "auto"
    monkeypatch.setattr(base, "STARTING_TORCH_THREADS", 2)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert threads_during_learn(agent) == {2}
    assert torch.get_num_threads() == 2
    agent.env.close()


SCRIPT = """
import torch
from rlrobot.agents import PPO

def threads(agent):
    seen = set()
    agent.learn(16, callback=lambda _: seen.add(torch.get_num_threads()))
    return sorted(seen)

small = dict(n_steps=16, batch_size=16, n_epochs=1, device="cpu")
print(torch.get_num_threads(), threads(PPO("rlrobot/CartPole-v0", **small)), end=" ")
torch.set_num_threads(3)
print(threads(PPO("rlrobot/CartPole-v0", **small)))
"""


def test_a_plain_script_trains_on_one_thread_and_its_own_set_num_threads_wins(monkeypatch):
    for name in base.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    # A fresh process: torch's own default count, as a user's script starts.
    output = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True
    ).stdout.split()
    torch_default = int(output[0])
    assert output[1:] == ["[1]", "[3]"], (torch_default, output)
