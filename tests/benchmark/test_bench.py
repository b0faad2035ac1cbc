"""``rlrobot bench`` and ``rlrobot sweep`` end to end on tiny budgets (local process pool)."""

import json

import numpy as np
import pytest
import yaml

from rlrobot.benchmark.bench import build_bench_specs, resolve_trial_config, split_overrides
from rlrobot.benchmark.report import summarize
from rlrobot.benchmark.sweep import candidate_configs, parse_parameter
from rlrobot.cli import main
from rlrobot.errors import ConfigError
from rlrobot.run.config import read_tuned_configs


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
    (row,) = json.loads((out / "summary.json").read_text())
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


def test_sweep_parameters_and_candidates():
    # YAML 1.1 reads 1e-4 as a string; it is a number here.
    assert parse_parameter("learning_rate=[1e-4, 3e-4]").choices == (1e-4, 3e-4)
    assert parse_parameter("activation=[tanh, relu]").choices == ("tanh", "relu")
    assert parse_parameter("n_epochs=4").choices == (4,)
    log_uniform = parse_parameter("learning_rate=loguniform(1e-5, 1e-2)")
    assert (log_uniform.distribution, log_uniform.low, log_uniform.high) == (
        "loguniform",
        1e-5,
        1e-2,
    )
    grid = candidate_configs([parse_parameter("a=[1, 2]"), parse_parameter("b=[x, y, z]")], "grid")
    assert len(grid) == 6 and grid[0] == {"a": 1, "b": "x"} and grid[-1] == {"a": 2, "b": "z"}
    drawn = candidate_configs(
        [log_uniform, parse_parameter("n=randint(3, 5)")], "random", n_trials=50, seed=1
    )
    assert drawn == candidate_configs(
        [log_uniform, parse_parameter("n=randint(3, 5)")], "random", n_trials=50, seed=1
    )
    assert all(1e-5 <= c["learning_rate"] <= 1e-2 for c in drawn)
    assert {c["n"] for c in drawn} == {3, 4, 5}
    with pytest.raises(ConfigError, match="grid search"):
        candidate_configs([log_uniform], "grid")
    with pytest.raises(ConfigError, match="low < high"):
        parse_parameter("lr=uniform(2, 1)")
    with pytest.raises(ConfigError, match="key="):
        parse_parameter("learning_rate")


def test_sweep_help_explains_its_options(capsys):
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--env ID env id, e.g. rlrobot/Reach-v0 (required)" in text
    assert "--algo ALGO algorithm to tune (default ppo)" in text
    assert "--param KEY=VALUES a config key to sweep" in text
    assert "--search {grid,random} grid: every combination of the --param lists (default)" in text
    assert "--set [ALGO:]KEY=VALUE override a config key for every trial" in text


def test_tiny_sweep_ranks_configs_and_skips_finished_trials(tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = [
        "sweep",
        "--env",
        "CartPole-v1",
        "--algo",
        "a2c",
        "--param",
        "learning_rate=[1e-3, 1e-9]",
        "--set",
        "n_steps=8",
        "--set",
        "a2c:gamma=0.9",
        "--set",
        "ppo:n_epochs=3",
        "--seeds",
        "1",
        "--steps",
        "256",
        "--n-envs",
        "1",
        "--eval-episodes",
        "2",
        "--workers",
        "2",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    # Progress lines tell the candidates apart (same env, algo and seed).
    progress = capsys.readouterr().out
    assert "done   a2c/rlrobot CartPole-v1 seed 0 [learning_rate=0.001]:" in progress
    assert "done   a2c/rlrobot CartPole-v1 seed 0 [learning_rate=1e-09]:" in progress
    ranking = json.loads((out / "ranking.json").read_text())
    assert [row["n_ok"] for row in ranking] == [1, 1]
    assert ranking[0]["mean"] >= ranking[1]["mean"]
    assert {row["params"]["learning_rate"] for row in ranking} == {1e-3, 1e-9}
    sweep_report = (out / "sweep.md").read_text()
    assert "| 1 |" in sweep_report and "Best config" in sweep_report

    # Pasted over the env's entry of rlrobot/configs/a2c.yaml, the best config gives the
    # winner's trial.
    best_block = sweep_report.split("```yaml\n")[1].split("```")[0]
    best_entry = yaml.safe_load(best_block)["CartPole-v1"]
    assert "n_epochs" not in best_entry  # a PPO-only override
    configs = read_tuned_configs("a2c")
    (tmp_path / "a2c.yaml").write_text(yaml.safe_dump({**configs, "CartPole-v1": best_entry}))
    pasted = resolve_trial_config("a2c", "CartPole-v1", config_dir=str(tmp_path))
    winner = json.loads((out / "trials" / f"{ranking[0]['keys'][0]}.json").read_text())["spec"]
    assert pasted.config == winner["config"]
    assert (pasted.n_envs, pasted.steps, pasted.env_kwargs) == (1, 256, winner["env_kwargs"])
    assert (pasted.config["gamma"], pasted.config["n_steps"]) == (0.9, 8)

    assert main(argv) == 0
    assert "2 trial(s) already done" in capsys.readouterr().out
