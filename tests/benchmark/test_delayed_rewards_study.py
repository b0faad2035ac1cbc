"""The delayed-reward study (rlrobot.benchmark.studies.delayed_rewards): plan and report."""

import json

import pytest

from rlrobot.benchmark.report import FINDINGS_MARKER
from rlrobot.benchmark.studies import delayed_rewards as study
from rlrobot.cli import main
from rlrobot.envs.registration import DELAYED_ENV_ID


def test_plan_sets_only_the_reward_mode_and_the_redistribution():
    tasks = {task.env_id: task for task in study.TASKS}
    by_condition = {}
    for condition, spec in study.build_specs([0, 1]):
        task_id = spec.env_kwargs.get("env_id", spec.env_id)  # wrapped: the inner env
        by_condition.setdefault((task_id, spec.algo, condition), []).append(spec)
    expected = {
        (task.env_id, algo, condition)
        for task in study.TASKS
        for algo in task.budgets
        for condition in study.CONDITIONS
    }
    assert set(by_condition) == expected
    for (task_id, algo, condition), specs in by_condition.items():
        assert [spec.seed for spec in specs] == [0, 1]
        spec, task = specs[0], tasks[task_id]
        if task.wrapped:
            delayed = spec.env_id == DELAYED_ENV_ID and spec.env_kwargs == {"env_id": task_id}
            assert delayed == (condition != "dense")
        else:
            mode = "dense" if condition == "dense" else "delayed"
            assert spec.env_id == task_id and spec.env_kwargs["reward_mode"] == mode
        assert spec.framework == ("sb3" if condition == "sb3 delayed" else "rlrobot")
        assert spec.config["reward_redistribution"] == study.REDISTRIBUTION.get(condition)
        assert spec.steps == task.budgets[algo]
        # Everything else is the env's tuned config (its delayed variant for the delayed
        # conditions, as `--set env_kwargs.reward_mode=delayed` gives): they differ in no more.
        variant = "dense" if condition == "dense" else "delayed"
        base = by_condition[(task_id, algo, variant)][0].config
        differing = {k for k in spec.config if spec.config[k] != base[k]}
        assert differing <= {"reward_redistribution"}


def fake_result(env_id, algo, seed, scores, framework="rlrobot"):
    steps = [0, 100, 200]
    return {
        "status": "ok",
        "spec": {"env_id": env_id, "algo": algo, "seed": seed, "framework": framework},
        "curve": [{"step": s, "mean_length": v} for s, v in zip(steps, scores, strict=True)],
        "train_time_s": 10.0,
        "wall_time_s": 12.0,
    }


def test_summary_normalises_by_dense_and_compares_with_sb3():
    env = "rlrobot/CartPoleContinuous-v0"
    pairs = [
        ("dense", fake_result(env, "ppo", 0, [20, 200, 400])),
        ("dense", fake_result(env, "ppo", 1, [20, 300, 400])),
        ("delayed", fake_result(env, "ppo", 0, [20, 25, 30])),
        ("delayed+uniform", fake_result(env, "ppo", 0, [20, 100, 362])),
        ("delayed+uniform", fake_result(env, "ppo", 1, [20, 380, 400])),
        ("sb3 delayed", fake_result(env, "ppo", 0, [20, 30, 40], "sb3")),
        ("sb3 delayed", fake_result(env, "ppo", 1, [20, 30, 380], "sb3")),
    ]
    rows = {row["condition"]: row for row in study.summarize(pairs)}
    dense, uniform = rows["dense"], rows["delayed+uniform"]
    assert dense["random_mean"] == 20 and dense["final_mean"] == 400
    assert uniform["normalized"] == pytest.approx((381 - 20) / 380)
    assert rows["delayed"]["normalized"] == pytest.approx(10 / 380)
    # 90 % of dense: 20 + 0.9 · 380 = 362; the uniform seed mean is 240 at 100, 381 at 200.
    assert uniform["steps_to_90_dense"] == 200 and dense["steps_to_90_dense"] == 200
    assert rows["delayed"]["steps_to_90_dense"] is None
    # uniform's finals 362 and 400 against SB3's 40 and 380: wins 3 of 4.
    assert uniform["p_beats_sb3"] == pytest.approx(0.75)
    assert dense["p_beats_sb3"] is None  # only delayed rows are compared with SB3 delayed
    text = study.render_markdown(
        list(rows.values()),
        {
            "command": "rlrobot bench --study delayed_rewards",
            "n_trials": 7,
            "trial_hours": 0.1,
            "workers": 2,
            "eval_episodes": 5,
            "budgets": "b",
        },
    )
    assert "| delayed+uniform | 2 | 381 [" in text
    assert "normalised 0.95 (meets the ≥ 0.9 goal" in text


def test_quick_study_runs_from_the_cli_and_keeps_hand_written_findings(tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "delayed_rewards.md").write_text(f"old tables\n{FINDINGS_MARKER}\nOur reading, kept.\n")
    argv = ["--study", "delayed_rewards", "--quick", "--seeds", "1", "--out", str(out)]
    code = main(["bench", *argv, "--workers", "2"])
    assert code == 0
    report = (out / "delayed_rewards.md").read_text()
    assert "old tables" not in report and report.endswith("Our reading, kept.\n")
    data = json.loads((out / "delayed_rewards.json").read_text())
    assert {row["condition"] for row in data["rows"]} == set(study.CONDITIONS)
    assert (out / "delayed_rewards.png").read_bytes()[:4] == b"\x89PNG"
    n_planned = len(study.build_specs([0], quick=True))
    assert n_planned == len(study.CONDITIONS) * len(study.TASKS[0].budgets)
    assert len(list((out / "delayed_rewards_trials" / "trials").glob("*.json"))) == n_planned


def test_reward_model_measurement_compares_r_hat_with_the_unseen_dense_reward():
    measured = study.measure_reward_model(
        "rlrobot/Reach-v0", "ppo", seed=0, n_episodes=2, budget_scale=0.04
    )
    assert measured["steps"] == 1200
    assert -1.0 <= measured["correlation"] <= 1.0
    assert measured["mean_paid"] < 0.0  # −distance per step on the dense env
    assert 0.0 <= measured["score"] <= 1.0


def test_only_runs_the_named_parts_and_reports_every_finished_one(tmp_path):
    assert "Reach-v0:sac" in study.PARTS and "Push-v0:sac" in study.PARTS
    chosen = study.build_specs([0], only=("Reach-v0:sac", "Pendulum-v1:sac"))
    assert {(spec.env_kwargs.get("env_id", spec.env_id), spec.algo) for _, spec in chosen} == {
        ("rlrobot/Reach-v0", "sac"),
        ("Pendulum-v1", "sac"),
    }
    out = tmp_path / "report"
    base = ["bench", "--study", "delayed_rewards", "--quick", "--seeds", "1", "--out", str(out)]
    trials = out / "delayed_rewards_trials" / "trials"
    assert main([*base, "--only", "CartPoleContinuous-v0:a2c", "--workers", "2"]) == 0
    assert len(list(trials.glob("*.json"))) == len(study.CONDITIONS)
    assert main([*base, "--only", "CartPoleContinuous-v0:ppo", "--workers", "2"]) == 0
    assert len(list(trials.glob("*.json"))) == 2 * len(study.CONDITIONS)
    rows = json.loads((out / "delayed_rewards.json").read_text())["rows"]
    assert {row["algo"] for row in rows} == {"a2c", "ppo"}  # the first part's trials kept
