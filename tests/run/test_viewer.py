"""``rlrobot view``: the series it plots, its errors, and the page as a browser draws it.

The runs are tiny (one PPO update, a few SAC steps): the tests check what is computed and
drawn, not how well the policies balance. The browser test opens the page in headless Chromium
at ``#selftest``: the page draws, seeks by a click on a plot and by the slider, and writes
what it found into ``<pre id="selftest">``, which ``--dump-dom`` prints.
"""

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
import torch

import rlrobot  # noqa: F401 - registers the envs
from rlrobot.run.evaluation import load_run_agent
from rlrobot.run.viewer import observation_names, select_observations, view_episodes

from .test_cli import in_process
from .test_recording import TINY_PPO

SIZE = 64
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TINY_OFF_POLICY = ["--env", "rlrobot/CartPoleContinuous-v0", "--steps", 64, "--no-progress"]
TINY_OFF_POLICY += ["--set", "learning_starts=32", "--set", "eval_freq=0"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """``work/runs/ppo`` (one PPO update), ``work/runs/uniform`` and ``work/runs/rrd`` (PPO on
    delayed rewards, redistributed uniformly or by RRD's reward model) and ``work/runs/sac``
    (SAC and TD3 on the continuous cart-pole)."""
    work = tmp_path_factory.mktemp("view")
    assert in_process("train", *TINY_PPO, "--out", "runs/ppo", cwd=work) == 0
    delayed = ["--set", "env_kwargs.reward_mode=delayed", "--set", "reward_redistribution=uniform"]
    assert in_process("train", *TINY_PPO, *delayed, "--out", "runs/uniform", cwd=work) == 0
    rrd = [*delayed[:2], "--set", "reward_redistribution=rrd", "--set", "rrd_buffer_size=1000"]
    assert in_process("train", *TINY_PPO, *rrd, "--out", "runs/rrd", cwd=work) == 0
    for algo in ("sac", "td3"):
        arguments = ["train", *TINY_OFF_POLICY, "--algo", algo, "--out", f"runs/{algo}"]
        assert in_process(*arguments, cwd=work) == 0
    return work


def viewed(runs, name: str, max_steps: int | None = 20, **kwargs):
    """The agent of ``runs/name``, one viewed episode (of at most ``max_steps``) and its fps."""
    agent, resolved, _ = load_run_agent(runs / "runs" / name)
    (episode,), fps = view_episodes(agent, resolved, size=SIZE, max_steps=max_steps, **kwargs)
    return agent, episode, fps


def test_observation_names_come_from_the_env_docstring_table():
    assert observation_names("rlrobot/CartPole-v0", 4) == [
        "cart position x", "cart velocity", "pole angle from upright", "pole angular velocity",
    ]  # fmt: skip
    quadruped = observation_names("rlrobot/Quadruped-v0", 27)
    assert quadruped[0] == "torso height z" and quadruped[11] == "joint angles [0]"
    assert quadruped[26] == "joint velocities [7]"
    assert observation_names("CartPole-v1", 4)[0] == "Cart Position"  # Gymnasium's own table
    assert observation_names("Pendulum-v1", 3)[0] == "x = cos(theta)"
    names = observation_names("rlrobot/CartPole-v0", 4)
    assert select_observations(names, []) == [0, 1, 2, 3]
    assert select_observations(names, ["2", "Cart Velocity"]) == [2, 1]


def test_on_policy_series_are_the_agents_values_and_entropy(runs):
    agent, episode, fps = viewed(runs, "ppo", observations=["pole angle from upright"])
    recorded, series = episode.recorded, episode.series
    frames = recorded.length + 1
    assert fps == 50 and len(recorded.frames) == frames and recorded.frames[0].shape == (64, 64, 3)
    assert {name: group for name, (group, _) in series.items()} == {
        "reward": "reward", "reward_alive": "reward", "action": "action",
        "pole angle from upright": "observation", "V(s)": "value", "entropy": "policy",
    }  # fmt: skip
    # A step's reward belongs to the frame it leads to; the policy's numbers to the frame seen.
    assert series["reward"][1] == [None] + [1.0] * recorded.length
    observations = np.stack(recorded.observations)
    assert series["pole angle from upright"][1] == pytest.approx(observations[:, 2].tolist())
    with torch.no_grad():
        distribution, values = agent.policy(agent.obs_to_tensor(observations))
    assert series["V(s)"][1] == pytest.approx(values.numpy().tolist(), abs=1e-6)
    entropy = distribution.entropy().numpy()[:-1].tolist()
    assert series["entropy"][1] == pytest.approx([*entropy, None], abs=1e-6)
    assert min(entropy) > 0 and max(entropy) <= np.log(2) + 1e-6
    assert series["action"][1][:-1] == [float(a) for a in recorded.actions]


def test_uniform_redistribution_spreads_the_return_over_the_episode(runs):
    # Whole: the delayed env pays at its own episode's end (an untrained pole falls soon).
    _, episode, _ = viewed(runs, "uniform", max_steps=None)
    rewards = episode.series["reward"][1][1:]
    length = episode.recorded.length
    # Delayed: nothing until the last step, which pays the whole return.
    assert rewards == [0.0] * (length - 1) + [float(length)]
    assert episode.series["redistributed"][1] == [None] + [1.0] * length


def test_rrd_redistribution_is_the_reward_models_prediction_per_step(runs):
    agent, episode, _ = viewed(runs, "rrd")
    observations = torch.as_tensor(np.stack(episode.recorded.observations))
    actions = torch.as_tensor(np.asarray(episode.recorded.actions))
    predicted = agent.reward_redistributor.predict(observations[:-1], actions, observations[1:])
    redistributed = episode.series["redistributed"][1]
    assert redistributed[0] is None  # frame 0: no step yet
    assert redistributed[1:] == pytest.approx(predicted.tolist(), abs=1e-6)
    assert len(set(redistributed[1:])) > 1  # one reward per transition, not a split


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_off_policy_series_are_the_smaller_q_and_the_action_std(runs, algo):
    agent, episode, _ = viewed(runs, algo)
    recorded, series = episode.recorded, episode.series
    assert series["Q(s,a)"][0] == "value"
    observations = agent.obs_to_tensor(np.stack(recorded.observations[:-1]))
    actions = torch.as_tensor(np.asarray(recorded.actions, dtype=np.float32))
    with torch.no_grad():
        q_values = agent.critic(observations, actions)  # CartPoleContinuous: bounds are ±1
    assert series["Q(s,a)"][1][:-1] == pytest.approx(q_values.min(0).values.tolist(), abs=1e-6)
    if algo == "td3":  # a deterministic actor: no spread to plot
        assert "action std (mean)" not in series
        return
    assert series["action std (mean)"][0] == "policy"
    assert all(value > 0 for value in series["action std (mean)"][1][:-1])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["runs/absent"], "runs/absent"),
        (["runs/ppo", "--episodes", 21], "--episodes must be 1 to 20 (every frame is inlined"),
        (
            ["runs/ppo", "--obs", "pole tilt"],
            "--obs 'pole tilt' is not an observation name: cart position x, cart velocity, "
            "pole angle from upright, pole angular velocity",
        ),
        (["runs/ppo", "--obs", 4], "--obs 4: the observation has 4 entries (0 to 3)"),
    ],
)
def test_bad_view_arguments_are_one_line_errors(runs, capsys, arguments, message):
    assert in_process("view", *arguments, "--max-steps", 2, "--size", SIZE, cwd=runs) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("rlrobot view: error: ") and message in line, line


def browser_self_test(page, profile) -> dict:
    """Open ``page`` at ``#selftest`` in headless Chromium with its own ``profile`` folder (so
    parallel tests share no profile lock); return what the page found."""
    command = [
        CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=10000", "--dump-dom", f"{page.resolve().as_uri()}#selftest",
    ]  # fmt: skip
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    found = re.search(r'<pre id="selftest"[^>]*>(.*?)</pre>', dom, re.DOTALL)
    assert found is not None and found.group(1), f"the page wrote no self-test: {dom[-2000:]}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


@pytest.fixture(scope="module")
def page(runs):
    """``rlrobot view`` of the PPO run: two episodes of at most 40 steps."""
    arguments = ["view", "runs/ppo", "--episodes", 2, "--size", SIZE, "--max-steps", 40]
    assert in_process(*arguments, "--out", "runs/view.html", cwd=runs) == 0
    return runs / "runs/view.html"


needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (.ci/run installs it: apt-get install chromium)"
)


@needs_chromium
def test_the_page_draws_and_seeks_in_a_browser(page, tmp_path):
    assert "http" not in re.sub(r"<!DOCTYPE[^>]*>", "", page.read_text())  # nothing to fetch
    report = browser_self_test(page, tmp_path)
    assert report["errors"] == []
    assert report["frame"] == {"width": SIZE, "height": SIZE}  # the video's frame is decoded
    inked = {plot["group"]: plot["inked"] for plot in report["plots"]}
    assert set(inked) == {"reward", "action", "observation", "value", "policy"}
    assert all(count > 100 for count in inked.values()), inked  # lines drawn in every plot
    click = report["click"]
    # A click at 3/4 of the plot seeks the video there and moves every plot's cursor.
    assert click["frame"] == click["target"] == click["slider"] > 0
    assert click["cursorAfter"] > click["cursorBefore"] and click["cursorDrawn"]
    assert click["frameChanged"]
    assert report["scrub"]["frame"] == 1
    assert report["scrub"]["cursorX"] == pytest.approx(report["scrub"]["expected"])
    # A click on the last summary row shows that episode from its start.
    picked = report["picked"]
    assert picked["episode"] == 1 and picked["frame"] == 0 and "selected" in picked["selected"]
    assert picked["slider"] == picked["frames"] - 1


@needs_chromium
def test_the_browser_test_catches_a_script_error(page, tmp_path):
    broken = tmp_path / "broken.html"
    # A typo in the drawing code: the self-test must report it, not pass.
    broken.write_text(page.read_text().replace("context.stroke();", "context.strok();", 1))
    report = browser_self_test(broken, tmp_path / "profile")
    assert any("strok is not a function" in error for error in report["errors"]), report
