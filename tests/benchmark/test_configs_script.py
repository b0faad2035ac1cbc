"""``scripts/bench_configs.py``: one tiny trial trained, evaluated (cached) and reported."""

import json
import time

import pytest

from rlrobot.envs.registration import ENV_IDS
from tests.benchmark.script_modules import load_script


@pytest.fixture(scope="module")
def script():
    """The benchmark script, imported as a module."""
    return load_script("bench_configs")


def test_plan_covers_the_new_robot_envs(script):
    planned = {(env_id, algo) for env_id, algo, _ in script.PLAN}
    for env_id in ("rlrobot/Push-v0", "rlrobot/Navigate-v0", "rlrobot/Quadruped-v0"):
        assert env_id in ENV_IDS
        assert {(env_id, algo) for algo in ("ppo", "a2c", "reinforce", "sac", "td3")} <= planned


def test_trial_is_trained_evaluated_against_random_and_reported(script, tmp_path):
    env_id, algo = "rlrobot/CartPoleContinuous-v0", "a2c"
    folder = script.run_folder(tmp_path, env_id, algo, seed=3)
    script.train_trial(env_id, algo, steps=256, seed=3, folder=folder)
    wall_s = json.loads((folder / script.TIME_FILE).read_text())["wall_s"]
    assert wall_s > 0

    row = script.evaluate_trial(folder, episodes=2)
    assert (row["env_id"], row["algo"], row["seed"]) == (env_id, algo, 3)
    assert row["steps"] >= 256
    assert row["wall_s"] == wall_s
    for policy in ("trained", "random"):
        assert row[policy]["n_episodes"] == 2
        # Continuous CartPole pays 1 per step balanced: the return is the episode length.
        assert row[policy]["mean_reward"] == row[policy]["mean_ep_length"]
    # A finished run is not trained again, and its evaluation comes from the cache.
    script.train_trial(env_id, algo, steps=256, seed=3, folder=folder)
    assert json.loads((folder / script.TIME_FILE).read_text())["wall_s"] == wall_s
    (folder / script.EVAL_CACHE).write_text(json.dumps({**row, "algo": "cached"}))
    assert script.evaluate_trial(folder, episodes=2)["algo"] == "cached"

    markdown = script.render_markdown([row], episodes=2, command="python x.py")
    table_row = next(line for line in markdown.splitlines() if line.startswith(f"| {env_id}"))
    difference = row["trained"]["mean_reward"] - row["random"]["mean_reward"]
    assert f"| {algo} | dense | {row['steps']:,} | 3 |" in table_row
    assert f"{difference:+.1f} ± " in table_row
    assert "steps balanced" in markdown  # the env's note under the table


def test_difference_has_two_standard_errors(script):
    trained = {"mean_reward": 10.0, "std_reward": 4.0, "n_episodes": 4}
    random = {"mean_reward": 4.0, "std_reward": 3.0, "n_episodes": 4}
    # s.e. = sqrt(16/4 + 9/4) = 2.5
    assert script.format_difference(trained, random) == "+6.0 ± 5.0"


def test_interrupted_training_still_records_its_time(script, tmp_path, monkeypatch):
    import rlrobot.run.training

    def interrupted(*args, **kwargs):
        time.sleep(0.05)
        raise KeyboardInterrupt

    monkeypatch.setattr(rlrobot.run.training, "train", interrupted)
    folder = tmp_path / "run"
    folder.mkdir()
    with pytest.raises(KeyboardInterrupt):
        script.train_trial("rlrobot/CartPole-v0", "ppo", steps=256, seed=0, folder=folder)
    assert json.loads((folder / script.TIME_FILE).read_text())["wall_s"] >= 0.05
