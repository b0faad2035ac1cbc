"""``rlrobot sweep`` on Optuna: parameters, samplers, pruning, storage, report and plots."""

import json

import pytest

optuna = pytest.importorskip("optuna", reason="sweeps need Optuna: pip install 'rlrobot[tune]'")

import yaml  # noqa: E402

from rlrobot.benchmark.bench import resolve_trial_config  # noqa: E402
from rlrobot.benchmark.sweep import (  # noqa: E402
    SeedReporter,
    SweepPlan,
    parse_parameter,
    worker_seed,
)
from rlrobot.cli import main  # noqa: E402
from rlrobot.errors import ConfigError  # noqa: E402
from rlrobot.run.config import read_tuned_configs  # noqa: E402
from rlrobot.run.folder import RunFolder  # noqa: E402

# A2C on Gymnasium's CartPole, 256 steps, 8-step rollouts: about a second per seed.
TINY = [
    "--env",
    "CartPole-v1",
    "--algo",
    "a2c",
    "--set",
    "n_steps=8",
    "--steps",
    "256",
    "--n-envs",
    "1",
    "--eval-interval",
    "64",
    "--eval-episodes",
    "2",
]


def test_parameters_map_to_optuna_distributions():
    # YAML 1.1 reads 1e-4 as a string; it is a number here.
    assert parse_parameter("learning_rate=[1e-4, 3e-4]").choices == (1e-4, 3e-4)
    assert parse_parameter("activation=[tanh, relu]").choices == ("tanh", "relu")
    assert parse_parameter("n_epochs=4").choices == (4,)
    parameters = [
        parse_parameter("learning_rate=loguniform(1e-5, 1e-2)"),
        parse_parameter("clip_range=uniform(0.1, 0.3)"),
        parse_parameter("n_epochs=randint(3, 5)"),
        parse_parameter("net_arch=[[64, 64], [32]]"),
    ]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    values = []
    for _ in range(20):
        trial = study.ask()
        values.append({p.key: p.suggest(trial) for p in parameters})
        study.tell(trial, 0.0)
    distributions = study.trials[0].distributions
    assert distributions["learning_rate"] == optuna.distributions.FloatDistribution(
        1e-5, 1e-2, log=True
    )
    assert distributions["clip_range"] == optuna.distributions.FloatDistribution(0.1, 0.3)
    assert distributions["n_epochs"] == optuna.distributions.IntDistribution(3, 5)
    # Lists of lists are stored as JSON text and come back as lists.
    assert {json.dumps(v["net_arch"]) for v in values} == {"[64, 64]", "[32]"}
    assert {v["n_epochs"] for v in values} == {3, 4, 5}
    assert all(1e-5 <= v["learning_rate"] <= 1e-2 for v in values)
    with pytest.raises(ConfigError, match="low < high"):
        parse_parameter("lr=uniform(2, 1)")
    with pytest.raises(ConfigError, match="key="):
        parse_parameter("learning_rate")


def test_grid_sampler_refuses_distributions(tmp_path, capsys):
    argv = ["sweep", *TINY, "--sampler", "grid", "--param", "gamma=uniform(0.9, 0.99)"]
    assert main([*argv, "--out", str(tmp_path / "grid")]) == 2
    assert "grid sampler needs lists of values, not distributions: ['gamma']" in (
        capsys.readouterr().err
    )


class FakeTrial:
    """Records what a seed reports; tells the reporter to prune from ``prune_at`` on."""

    def __init__(self, prune_at: int) -> None:
        self.prune_at, self.reports, self.user_attrs = prune_at, [], {}

    def report(self, value, step):
        self.reports.append((step, value))

    def should_prune(self):
        return self.reports[-1][0] >= self.prune_at

    def set_user_attr(self, key, value):
        self.user_attrs[key] = value


def test_seed_reporter_reports_the_running_mean_at_shared_steps_and_prunes(tmp_path):
    plan = SweepPlan(
        "CartPole-v1", "a2c", (), {}, (0, 1), 256, 1, {}, 64, 2, str(tmp_path), "", "sweep"
    )
    assert plan.checkpoints_per_seed == 5  # step 0, 64, 128, 192, 256
    trial = FakeTrial(prune_at=7)
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    # Second seed (index 1), the first one finished with 100: the value is the running mean.
    reporter = SeedReporter(trial, plan, 1, [100.0], folder)
    record = {"std_return": 0.0, "mean_length": 10.0}
    reporter({**record, "step": 0, "mean_return": 10.0})  # logged, not reported
    reporter({**record, "step": 72, "mean_return": 20.0})  # a longer rollout: still interval 1
    with pytest.raises(optuna.TrialPruned, match="pruned at step 136 of seed 1"):
        reporter({**record, "step": 136, "mean_return": 40.0})
    assert trial.reports == [(6, 60.0), (7, 70.0)]
    assert trial.user_attrs["pruned_at"] == "step 136 of seed 1"
    assert [row["step"] for row in folder.read_evaluations()] == [0, 72, 136]


def test_tiny_grid_sweep_report_best_entry_and_plot(tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = [
        "sweep",
        *TINY,
        "--param",
        "learning_rate=[1e-3, 1e-9]",
        "--set",
        "a2c:gamma=0.9",
        "--set",
        "ppo:n_epochs=3",
        "--sampler",
        "grid",
        "--seeds",
        "2",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    progress = capsys.readouterr().out
    assert "2 trials × 2 seeds, grid sampler, median pruner" in progress
    assert "done   trial 0 [learning_rate=" in progress
    ranking = json.loads((out / "ranking.json").read_text())
    assert [row["state"] for row in ranking] == ["COMPLETE", "COMPLETE"]
    assert [row["n_seeds_done"] for row in ranking] == [2, 2]
    assert ranking[0]["mean"] >= ranking[1]["mean"]
    assert ranking[0]["mean"] == pytest.approx(sum(ranking[0]["finals"]) / 2)
    assert {row["params"]["learning_rate"] for row in ranking} == {1e-3, 1e-9}
    report = (out / "sweep.md").read_text()
    assert "2 trials: 2 complete, 0 pruned, 0 failed" in report
    assert "![Optimisation history](optimization_history.png)" in report
    assert (out / "optimization_history.png").stat().st_size > 0
    # One parameter: no importances, and the report says why.
    assert "No parameter importances: they need at least 2 swept parameters." in report

    # Pasted over the env's entry of rlrobot/configs/a2c.yaml, the best entry gives the
    # winner's trials.
    best_entry = yaml.safe_load(report.split("```yaml\n")[1].split("```")[0])["CartPole-v1"]
    assert "n_epochs" not in best_entry  # a PPO-only override
    configs = read_tuned_configs("a2c")
    (tmp_path / "a2c.yaml").write_text(yaml.safe_dump({**configs, "CartPole-v1": best_entry}))
    pasted = resolve_trial_config("a2c", "CartPole-v1", config_dir=str(tmp_path))
    winner = json.loads((out / "trials" / f"{ranking[0]['keys'][0]}.json").read_text())["spec"]
    assert pasted.config == winner["config"]
    assert (pasted.config["gamma"], pasted.config["n_steps"]) == (0.9, 8)

    # plot --help's example works on a sweep's output: one run folder per trial and seed.
    assert len(list((out / "runs").glob("trial_*/seed_*/evaluations.csv"))) == 4
    assert main(["plot", str(out), "--source", "eval", "--out", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").stat().st_size > 0

    # The grid is done: a rerun trains nothing and rebuilds the report.
    assert main(argv) == 0
    assert "the grid's 2 points are done" in capsys.readouterr().out
    assert len(json.loads((out / "ranking.json").read_text())) == 2


def test_a_second_invocation_continues_the_study_in_its_storage(tmp_path, capsys):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    argv = [
        "sweep",
        *TINY,
        "--param",
        "learning_rate=loguniform(1e-4, 1e-2)",
        "--param",
        "gamma=[0.9, 0.99]",
        "--seeds",
        "1",
        "--trials",
        "2",
        "--storage",
        storage,
        "--study-name",
        "cartpole",
    ]
    assert main([*argv, "--out", str(tmp_path / "first")]) == 0
    assert main([*argv, "--n-trials", "3", "--out", str(tmp_path / "second")]) == 0
    study = optuna.load_study(study_name="cartpole", storage=storage)
    assert [trial.number for trial in study.trials] == [0, 1, 2, 3, 4]
    rates = [trial.params["learning_rate"] for trial in study.trials]
    assert len(set(rates)) == 5  # the continued sampler draws new configs
    ranking = json.loads((tmp_path / "second" / "ranking.json").read_text())
    assert sorted(row["number"] for row in ranking) == [0, 1, 2, 3, 4]
    assert "5 trials: 5 complete" in (tmp_path / "second" / "sweep.md").read_text()
    # Both params varied over 5 complete trials: the importances are plotted.
    assert (tmp_path / "second" / "param_importances.png").stat().st_size > 0

    # The same study name for another budget is refused, not mixed.
    capsys.readouterr()
    other = [*argv, "--steps", "128", "--out", str(tmp_path / "third")]
    other.remove("256")
    other.remove("--steps")
    assert main(other) == 2
    assert "study 'cartpole'" in capsys.readouterr().err


def test_train_optimize_runs_the_sweep_of_its_env_and_algo(tmp_path, capsys):
    out = tmp_path / "tuned"
    argv = ["train", "--env", "CartPole-v1", "--algo", "a2c", "--set", "n_steps=8"]
    argv += ["--steps", "128", "--n-envs", "1", "--n-trials", "2", "--out", str(out)]
    # The tuning flags without -optimize are refused, not ignored.
    assert main(argv) == 2
    assert "--n-trials: tuning options, for train -optimize only" in capsys.readouterr().err
    assert main([*argv, "-optimize", "--sampler", "random", "--pruner", "none"]) == 0
    assert "2 trials × 1 seeds, random sampler, none pruner" in capsys.readouterr().out
    ranking = json.loads((out / "ranking.json").read_text())
    # The default search space of A2C.
    assert set(ranking[0]["params"]) == {"learning_rate", "gamma", "gae_lambda", "ent_coef"}
    assert [row["state"] for row in ranking] == ["COMPLETE", "COMPLETE"]


def test_train_optimize_takes_the_zoo_flags_and_refuses_run_only_ones(tmp_path, capsys):
    argv = ["train", "--env", "CartPole-v1", "--algo", "a2c", "-optimize", "--n-trials", "2"]
    argv += ["-n", "128", "--hyperparams", "n_steps:8", "n_envs:1", "--eval-freq", "32"]
    argv += ["--eval-episodes", "1", "--sampler", "random", "--pruner", "median", "--seed", "3"]
    storage = f"sqlite:///{tmp_path / 'zoo.db'}"
    argv += ["--n-jobs", "1", "--storage", storage, "--study-name", "zoo"]
    for refused in (["--device", "cpu"], ["--tensorboard-log", "tb"], ["--save-freq", "64"]):
        assert main([*argv, *refused, "-f", str(tmp_path)]) == 2
        assert "for train runs, not for -optimize's trials" in capsys.readouterr().err
    assert main([*argv, "--eval-freq", "0", "-f", str(tmp_path)]) == 2
    assert main([*argv, "-f", str(tmp_path)]) == 0
    out = tmp_path / "sweep-a2c-CartPole-v1"  # -f: the log folder holds the sweep
    info = json.loads((out / "sweep.json").read_text())
    settings = info["settings"]
    assert (settings["eval interval"], settings["steps"], settings["seeds"]) == (32, 128, 1)
    assert (settings["sampler"], settings["pruner"]) == ("random", "median")
    assert "--sweep-seed 3" in info["command"] and "--eval-episodes 1" in info["command"]
    assert info["fixed"]["n_steps"] == 8
    study = optuna.load_study(study_name="zoo", storage=storage)
    assert len(study.trials) == 2


def test_a_sweep_that_loses_its_ray_cluster_says_so_in_one_line_with_its_partial_report(
    tmp_path, capsys, monkeypatch
):
    import sys

    from tests.benchmark.fake_ray import LostCluster

    monkeypatch.setitem(sys.modules, "ray", LostCluster(lost_after=1))  # one of two jobs ends
    out = tmp_path / "sweep"
    argv = ["sweep", *TINY, "--param", "learning_rate=[1e-3, 3e-3]", "--seeds", "1"]
    argv += ["--trials", "2", "--n-jobs", "2", "--backend", "ray", "--out", str(out)]
    assert main(argv) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("rlrobot sweep: error: lost the Ray cluster with 1 of 2 task(s)")
    assert line.endswith(f"partial report: {out / 'sweep.md'}")
    assert "1 trials: 1 complete" in (out / "sweep.md").read_text()


def test_parallel_sweep_jobs_never_share_a_sampler_seed():
    # A one-job sweep continues with new configs, as before.
    assert [worker_seed(7, 0, n) for n in (0, 1, 5)] == [7, 8, 12]
    # Before: job 1 opening an empty study took 0 + 1 + 0 = 1, and job 0 opening it a moment
    # later, after job 1's first trial, 0 + 0 + 1 = 1: both drew the same configs (the
    # two-node test's sweep ran one config twice). Every (job, trials) pair differs now.
    seeds = {(job, n): worker_seed(0, job, n) for job in range(4) for n in range(50)}
    assert len(set(seeds.values())) == len(seeds)
