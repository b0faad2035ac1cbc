"""The configs study (``rlrobot.benchmark.studies.configs``): one tiny trial trained, evaluated
(cached) and reported."""

import json
import time

import pytest

from rlrobot.benchmark.studies import configs as study
from rlrobot.envs.registration import ENV_IDS
from rlrobot.errors import ConfigError


def test_plan_covers_the_new_robot_envs():
    planned = {(env_id, algo) for env_id, algo, _ in study.PLAN}
    for env_id in ("rlrobot/Push-v0", "rlrobot/Navigate-v0", "rlrobot/Quadruped-v0"):
        assert env_id in ENV_IDS
        assert {(env_id, algo) for algo in ("ppo", "a2c", "reinforce", "sac", "td3")} <= planned


def test_trial_is_trained_evaluated_against_random_and_reported(tmp_path):
    env_id, algo = "rlrobot/CartPoleContinuous-v0", "a2c"
    folder = study.run_folder(tmp_path, env_id, algo, seed=3)
    study.train_trial(env_id, algo, steps=256, seed=3, folder=folder)
    wall_s = json.loads((folder / study.TIME_FILE).read_text())["wall_s"]
    assert wall_s > 0

    row = study.evaluate_trial(folder, episodes=2)
    assert (row["env_id"], row["algo"], row["seed"]) == (env_id, algo, 3)
    assert row["steps"] >= 256
    assert row["wall_s"] == wall_s
    for policy in ("trained", "random"):
        assert row[policy]["n_episodes"] == 2
        # Continuous CartPole pays 1 per step balanced: the return is the episode length.
        assert row[policy]["mean_reward"] == row[policy]["mean_ep_length"]
    # A finished run is not trained again, and its evaluation comes from the cache.
    study.train_trial(env_id, algo, steps=256, seed=3, folder=folder)
    assert json.loads((folder / study.TIME_FILE).read_text())["wall_s"] == wall_s
    (folder / study.EVAL_CACHE).write_text(json.dumps({**row, "algo": "cached"}))
    assert study.evaluate_trial(folder, episodes=2)["algo"] == "cached"

    markdown = study.render_markdown([row], episodes=2, command="python x.py")
    table_row = next(line for line in markdown.splitlines() if line.startswith(f"| {env_id}"))
    difference = row["trained"]["mean_reward"] - row["random"]["mean_reward"]
    assert f"| {algo} | dense | {row['steps']:,} | 3 |" in table_row
    assert f"{difference:+.1f} ± " in table_row
    assert "steps balanced" in markdown  # the env's note under the table


def test_difference_has_two_standard_errors():
    trained = {"mean_reward": 10.0, "std_reward": 4.0, "n_episodes": 4}
    random = {"mean_reward": 4.0, "std_reward": 3.0, "n_episodes": 4}
    # s.e. = sqrt(16/4 + 9/4) = 2.5
    assert study.format_difference(trained, random) == "+6.0 ± 5.0"


def test_interrupted_training_still_records_its_time(tmp_path, monkeypatch):
    import rlrobot.run.training

    def interrupted(*args, **kwargs):
        time.sleep(0.05)
        raise KeyboardInterrupt

    monkeypatch.setattr(rlrobot.run.training, "train", interrupted)
    folder = tmp_path / "run"
    folder.mkdir()
    with pytest.raises(KeyboardInterrupt):
        study.train_trial("rlrobot/CartPole-v0", "ppo", steps=256, seed=0, folder=folder)
    assert json.loads((folder / study.TIME_FILE).read_text())["wall_s"] >= 0.05


def test_only_selects_parts_of_the_plan_and_rejects_unknown_ones():
    selected = study.select_plan(["rlrobot/Push-v0:sac"], budget_scale=0.5, quick=False)
    assert selected == [("rlrobot/Push-v0", "sac", 500_000)]
    assert {env_id for env_id, _, _ in study.select_plan((), 1.0, quick=True)} == {study.QUICK_ENV}
    with pytest.raises(ConfigError, match="rlrobot/Push-v0:ppo2"):
        study.select_plan(["rlrobot/Push-v0:ppo2"], 1.0, quick=False)


def test_quick_study_runs_from_the_cli_and_keeps_hand_written_findings(tmp_path):
    from rlrobot.benchmark.report import FINDINGS_MARKER
    from rlrobot.cli import main

    page = tmp_path / "configs.md"
    page.write_text(f"old table\n{FINDINGS_MARKER}\nOur reading, kept.\n")
    part = f"{study.QUICK_ENV}:a2c"
    assert (
        main(["bench", "--study", "configs", "--quick", "--only", part, "--out", str(tmp_path)])
        == 0
    )
    text = page.read_text()
    assert "old table" not in text and text.endswith("Our reading, kept.\n")
    rows = [line for line in text.splitlines() if line.startswith(f"| {study.QUICK_ENV}")]
    assert len(rows) == 1 and "| a2c | dense | " in rows[0]
    assert "`rlrobot bench --study configs --seeds 1 --quick --only " in text
    assert (tmp_path / "configs_trials").is_dir()  # a smoke run keeps its run folders with it
