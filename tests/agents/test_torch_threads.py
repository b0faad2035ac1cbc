"""Agents train with ``torch_threads`` torch CPU threads (1 by default) and restore the
process's count when ``learn`` returns; None leaves it alone."""

import pytest
import torch

from rlrobot.agents import PPO, SAC
from rlrobot.errors import ConfigError

SMALL_PPO = {"n_steps": 16, "batch_size": 16, "n_epochs": 1}


@pytest.fixture
def two_threads():
    """The process runs two torch threads, as torch's default on a 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
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
    assert str(error.value).endswith(f", got {value!r}")
