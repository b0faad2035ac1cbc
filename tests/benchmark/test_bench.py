"""``rlrobot bench`` end to end on tiny budgets (local process pool); sweeps are in test_sweep."""

import json

import numpy as np
import pytest

from rlrobot.benchmark.bench import build_bench_specs, split_overrides
from rlrobot.benchmark.report import summarize
from rlrobot.cli import main
from rlrobot.errors import ConfigError


def test_tiny_bench_end_to_end(tmp_path, capsys, tiny_bench_argv):
    out = tmp_path / "bench"
    assert main([*tiny_bench_argv, "--out", str(out)]) == 0
    trial_files = sorted((out / "trials").glob("*.json"))
    results = [json.loads(path.read_text()) for path in trial_files]
    assert len(results) == 4
    assert {(r["spec"]["framework"], r["spec"]["seed"]) for r in results} == {
        ("rlrobot", 0),
        ("rlrobot", 1),
        ("sb3", 0),
        ("sb3", 1),
    }
    for result in results:
        assert result["status"] == "ok"
        assert [c["step"] for c in result["curve"]] == [0, 128, 256]
        assert result["spec"]["config"]["n_steps"] == 64
        assert result["spec"]["config"]["n_epochs"] == 2
        assert result["torch_threads"] == 1
    report = (out / "report.md").read_text()
    assert "| rlrobot/CartPole-v0 | ppo | 2/2 |" in report
    assert "torch threads per trial: 1" in report
    assert "Command: `rlrobot bench --envs rlrobot/CartPole-v0 --algos ppo --seeds 2 " in report
    plot = out / "curves_ppo_rlrobot-CartPole-v0.png"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The summary agrees with the raw results.
    (row,) = json.loads((out / "summary.json").read_text())["rows"]
    ours = [r["final_return"] for r in results if r["spec"]["framework"] == "rlrobot"]
    assert row["rlrobot"]["mean"] == pytest.approx(np.mean(ours))

    # --report-only rebuilds the same report from the JSON files without training.
    (out / "report.md").unlink()
    capsys.readouterr()
    assert main(["bench", "--report-only", str(out)]) == 0
    assert (out / "report.md").read_text() == report

    # Restarting runs nothing: every trial is cached by key.
    modified = [path.stat().st_mtime_ns for path in trial_files]
    assert main([*tiny_bench_argv, "--out", str(out)]) == 0
    assert "4 trial(s) already done" in capsys.readouterr().out
    assert [path.stat().st_mtime_ns for path in trial_files] == modified


def test_bench_specs_pair_ours_with_sb3_on_identical_settings(tmp_path):
    specs = build_bench_specs(
        ["CartPole-v1"], ["ppo", "reinforce"], [0, 1], 1000, overrides=["ppo:gamma=0.9"]
    )
    ppo = [s for s in specs if s.algo == "ppo"]
    assert sorted((s.framework, s.seed) for s in ppo) == [
        ("rlrobot", 0),
        ("rlrobot", 1),
        ("sb3", 0),
        ("sb3", 1),
    ]
    # Identical except for the framework: same config, envs, seeds, budget, evaluation.
    strip = [{**s.to_dict(), "framework": None} for s in ppo if s.seed == 0]
    assert strip[0] == strip[1]
    assert ppo[0].config["gamma"] == 0.9
    assert ppo[0].eval_interval == 100
    # REINFORCE has no SB3 counterpart: ours only.
    assert {s.framework for s in specs if s.algo == "reinforce"} == {"rlrobot"}
    assert split_overrides(["a2c:n_steps=5", "gamma=0.9", "ppo:env_kwargs.x=1"], "ppo") == [
        "gamma=0.9",
        "env_kwargs.x=1",
    ]
    # Budgets and env counts come from the tuned <algo>.yaml unless given.
    (tmp_path / "ppo.yaml").write_text("CartPole-v1: {n_timesteps: 1234, n_envs: 3, gamma: 0.5}")
    (spec,) = build_bench_specs(
        ["CartPole-v1"], ["ppo"], [0], baseline=None, config_dir=str(tmp_path)
    )
    assert (spec.steps, spec.n_envs, spec.config["gamma"], spec.eval_interval) == (
        1234,
        3,
        0.5,
        123,
    )
    with pytest.raises(ConfigError, match="n_stepz"):
        build_bench_specs(["CartPole-v1"], ["ppo"], [0], 100, overrides=["n_stepz=3"])


def test_summary_compares_frameworks_on_shared_checkpoints():
    def result(framework, seed, returns, speed):
        curve = [{"step": 100 * i, "mean_return": r} for i, r in enumerate(returns)]
        spec = {"env_id": "E-v0", "algo": "ppo", "framework": framework, "seed": seed}
        return {
            "key": f"{framework}{seed}",
            "status": "ok",
            "spec": spec,
            "curve": curve,
            "final_return": returns[-1],
            "steps_per_second": speed,
            "wall_time_s": 10.0,
            "train_time_s": 8.0,
        }

    results = [
        result("rlrobot", 0, [0.0, 60.0, 100.0], 2000.0),
        result("rlrobot", 1, [0.0, 40.0, 80.0], 2000.0),
        result("sb3", 0, [0.0, 20.0, 60.0], 1000.0),
        result("sb3", 1, [0.0, 40.0, 80.0], 1000.0),
        {"key": "x", "status": "failed", "spec": {}, "error": "boom"},
    ]
    (row,) = summarize(results)
    assert row["rlrobot"]["mean"] == 90.0
    assert row["sb3"]["mean"] == 70.0
    assert row["threshold"] == 70.0
    # Seed-mean curves: ours 0, 50, 90 → reaches 70 at step 200; SB3 0, 30, 70 → 200.
    assert row["steps_to_threshold"] == {"rlrobot": 200, "sb3": 200}
    assert row["ratios"]["steps_per_second"] == 2.0
    assert row["ratios"]["return"] == pytest.approx(90 / 70)
    # Pairs (100 vs 60, 100 vs 80, 80 vs 60 win; 80 vs 80 ties) → 3.5 / 4.
    assert row["probability_of_improvement"] == pytest.approx(0.875)


def test_report_only_refuses_a_bench_whose_trials_are_missing(tmp_path, capsys):
    from rlrobot.benchmark.runner import TrialStore

    TrialStore(tmp_path).save({"key": "a", "status": "failed", "spec": {}, "error": "x"})
    (tmp_path / "bench.json").write_text(json.dumps({"keys": ["a", "b"]}))
    # A report of "a" alone would leave "b" out without a word.
    assert main(["bench", "--report-only", str(tmp_path)]) == 2
    assert "bench.json names 2 trials, 1 of them (e.g. b) not in" in capsys.readouterr().err
    assert not (tmp_path / "report.md").exists()
