"""The time-to-solve study: its clock leaves evaluations out, censoring, thresholds, the plan,
the simulator's bound, the report and ``rlrobot bench --time-to-solve``."""

import json

import gymnasium as gym
import numpy as np
import pytest

from rlrobot.benchmark import studies
from rlrobot.benchmark.studies import time_to_solve as tts
from rlrobot.benchmark.trial import CheckpointEvaluator, TrialSpec
from rlrobot.cli import main
from rlrobot.errors import ConfigError
from tests.benchmark.test_studies import FakeStudy

# Seconds of the fake clock: one training iteration, one evaluation action.
ITERATION_S, ACTION_S = 1.0, 0.5


class FakeClock:
    """A wall clock that only moves when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeAgent:
    """Trains in iterations of 100 steps, each ``ITERATION_S`` on the clock; each evaluation
    action costs ``ACTION_S``."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock, self.num_timesteps = clock, 0

    def predict(self, observation, deterministic=False):
        self.clock.now += ACTION_S
        return 0, None

    def learn(self, total_timesteps, callback):
        while self.num_timesteps < total_timesteps:
            self.clock.now += ITERATION_S
            self.num_timesteps += 100
            callback(self)


def solve_spec(threshold: float, steps: int = 1000) -> tts.SolveSpec:
    trial = TrialSpec("CartPole-v1", "ppo", 0, steps, eval_interval=300, eval_episodes=2)
    return tts.SolveSpec(trial, "sync", "mean_length", threshold)


def train_with_fake_clock(threshold: float):
    clock = FakeClock()
    clock.now = 5.0  # the trial started at 5 s
    agent = FakeAgent(clock)
    env = gym.make("CartPole-v1")
    evaluator = CheckpointEvaluator(env, 300, 2, seed=0, clock=clock)
    outcome = tts.train_until_solved(agent, evaluator, solve_spec(threshold), 5.0, clock)
    env.close()
    return outcome, agent


def test_the_clock_stops_while_evaluating_and_a_run_that_never_solves_is_censored():
    outcome, agent = train_with_fake_clock(threshold=1e9)
    assert not outcome["solved"] and outcome["solve_step"] is None
    # Evaluations at 300, 600, 900 and the final policy at 1000: 10 iterations of training.
    assert [c["step"] for c in outcome["curve"]] == [300, 600, 900, 1000]
    assert [c["train_time_s"] for c in outcome["curve"]] == [3.0, 6.0, 9.0, 10.0]
    assert outcome["time_to_solve_s"] == 10.0
    actions = sum(c["mean_length"] * 2 for c in outcome["curve"])
    assert outcome["eval_time_s"] == pytest.approx(actions * ACTION_S)
    assert outcome["eval_time_s"] > 10.0  # the evaluations took longer than the training
    assert outcome["trained_steps"] == agent.num_timesteps == 1000


def test_training_stops_at_the_first_evaluation_that_reaches_the_threshold():
    # A policy that always pushes left balances ~9 steps: 5 is reached at the first evaluation.
    outcome, agent = train_with_fake_clock(threshold=5)
    assert outcome["solved"] and outcome["solve_step"] == 300
    assert outcome["time_to_solve_s"] == 3.0
    assert agent.num_timesteps == 300  # no training after the solve


def test_a_missing_metric_is_a_clear_error():
    curve = [{"step": 100, "mean_return": 1.0}]
    with pytest.raises(ConfigError, match=r"no 'success_rate'.*100"):
        tts.solve_checkpoint(curve, "success_rate", 0.9)
    assert tts.solve_checkpoint([*curve, {"step": 200, "mean_return": 3.0}], "mean_return", 2) == 1


def runs(times, censored=0):
    """Runs that solved in ``times`` seconds, and ``censored`` that did not (at 99 s)."""
    solved = [{"solved": True, "time_to_solve_s": t} for t in times]
    unsolved = [{"solved": False, "time_to_solve_s": 99.0} for _ in range(censored)]
    keys = ("solve_step", "eval_time_s", "setup_s", "bound_s", "train_over_bound")
    return [{**run, **dict.fromkeys(keys, 1.0)} for run in solved + unsolved]


def test_the_median_is_the_lower_middle_time():
    for n in range(1, 8):
        times = np.random.default_rng(n).permutation(np.arange(1.0, n + 1))
        expected = np.quantile(times, 0.5, method="inverted_cdf")
        assert tts.censored_median(times) == expected == np.ceil(n / 2)


def test_the_median_counts_censored_runs_as_slower_than_any_that_solved():
    summary = tts.summarize_series(runs([10.0, 30.0, 20.0], censored=2))
    assert (summary["n"], summary["n_solved"]) == (5, 3)
    assert summary["median_s"] == 30.0  # the 3rd smallest of 5; 99 s is not a time to solve
    low, high = summary["ci_s"]
    # P(a resample has ≥ 3 of 5 censored) ≈ 0.32 > 2.5 %: the upper end is open.
    assert low == 10.0 and high is None


def test_without_half_solved_there_is_no_median():
    assert tts.summarize_series(runs([10.0, 20.0], censored=3))["median_s"] is None
    assert tts.summarize_series(runs([], censored=2))["ci_s"] == [None, None]
    # ⌈4/2⌉ = 2: with an even count the lower middle run, a time that was measured.
    assert tts.summarize_series(runs([4.0, 1.0, 3.0, 2.0]))["median_s"] == 2.0


def test_all_solved_gives_a_closed_interval_inside_the_times():
    summary = tts.summarize_series(runs([1.0, 2.0, 3.0, 4.0, 5.0]))
    low, high = summary["ci_s"]
    assert summary["median_s"] == 3.0 and 1.0 <= low < 3.0 < high <= 5.0


def test_comparison_ratio_of_medians_and_probability_of_solving_sooner():
    comparison = tts.compare_series(runs([1.0, 2.0, 3.0]), runs([2.0, 4.0, 6.0]))
    assert comparison["time_ratio"] == 0.5
    assert comparison["p_sooner"] == pytest.approx(7.5 / 9)  # the 2 s tie counts one half
    never = tts.compare_series(runs([1.0, 2.0]), runs([], censored=2))
    assert never["time_ratio"] is None and never["p_sooner"] == 1.0
    both_censored = tts.compare_series(runs([], censored=2), runs([], censored=3))
    assert both_censored["p_sooner"] == 0.5


def test_thresholds_of_the_issue():
    expected = {
        "rlrobot/CartPole-v0": ("mean_length", 475),
        "rlrobot/Reach-v0": ("success_rate", 0.95),
        "rlrobot/Push-v0": ("success_rate", 0.9),
        "rlrobot/Navigate-v0": ("success_rate", 0.9),
        "rlrobot/Quadruped-v0": ("success_rate", 0.9),
        "Pendulum-v1": ("mean_return", -200),
        "Acrobot-v1": ("mean_return", -100),
    }
    for env_id, (metric, value) in expected.items():
        threshold = tts.solve_threshold(env_id)
        assert (threshold.metric, threshold.value) == (metric, value), env_id
    gymnasium_extra = {"CartPole-v1", "Acrobot-v1", "MountainCarContinuous-v0", "LunarLander-v3"}
    assert gymnasium_extra <= set(tts.THRESHOLDS)
    with pytest.raises(ConfigError, match="no solve threshold for env 'Hopper-v5'"):
        tts.solve_threshold("Hopper-v5")


def test_the_plan_covers_every_case_and_shares_trials_where_the_configs_match():
    plan = tts.build_plan(tts.CASES, seeds=[0, 1])
    assert {p.case.name for p in plan} == set(tts.PARTS)
    for case in tts.CASES:
        series = {p.series.name for p in plan if p.case is case}
        assert {"rlrobot", "sb3", "rlrobot, SB3's hyperparameters"} <= series
    cartpole = [p for p in plan if p.case.name == "CartPole-v1:ppo"]
    assert tts.same_trials(plan, "CartPole-v1:ppo") == {"rlrobot, SB3's hyperparameters": "rlrobot"}
    by_series = {(p.series.name, p.spec.trial.seed): p.spec for p in cartpole}
    assert by_series["sb3, SubprocVecEnv", 0].vec_env == "subproc"
    assert by_series["sb3", 1].trial.framework == "sb3"
    assert by_series["sb3", 1].threshold == 475 and by_series["sb3", 1].metric == "mean_length"
    # One seed's series run back to back.
    assert [p.spec.trial.seed for p in cartpole] == [0] * 5 + [1] * 5


def test_a_spec_round_trips_through_its_flat_dict():
    spec = solve_spec(475)
    values = spec.to_dict()
    assert values["env_id"] == "CartPole-v1" and values["vec_env"] == "sync"
    assert tts.SolveSpec.from_dict(values) == spec
    assert tts.SolveSpec.from_dict(values).key == spec.key != solve_spec(400).key
    with pytest.raises(ValueError, match="metric must be one of"):
        tts.SolveSpec(spec.trial, "sync", "reward", 1.0)


class StepClock:
    """Returns 0, then ``seconds``: a timed loop of ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.values = iter([0.0, seconds])

    def __call__(self) -> float:
        return next(self.values)


@pytest.mark.parametrize("framework", ["rlrobot", "sb3"])
def test_the_simulator_bound_times_the_trials_own_vector_env_and_scales(framework):
    trial = TrialSpec("CartPole-v1", "ppo", 0, 1000, framework=framework, n_envs=2)
    spec = tts.SolveSpec(trial, "sync" if framework == "rlrobot" else "dummy", "mean_length", 1)
    env = tts.make_training_vec_env(spec)
    assert env.num_envs == 2
    # 1000 env steps = 500 vector steps; 100 timed in 2 s → 10 s.
    assert tts.simulator_seconds(env, 1000, 100, StepClock(2.0)) == pytest.approx(10.0)
    assert tts.simulator_seconds(env, 100, 100, StepClock(2.0)) == pytest.approx(2.0)
    env.close()


def test_a_real_trial_records_times_a_bound_and_its_curve():
    trial = TrialSpec(
        "CartPole-v1", "ppo", 0, 256, n_envs=2, eval_interval=128, eval_episodes=1,
        config={"n_steps": 64, "batch_size": 64, "n_epochs": 1},
    )  # fmt: skip
    spec = tts.SolveSpec(trial, "sync", "mean_length", 475, bound_steps=50)
    result = tts.execute_solve_trial(spec.to_dict())
    assert result["status"] == "ok", result.get("error")
    assert not result["solved"] and result["trained_steps"] == 256
    assert 0 < result["bound_s"] < result["time_to_solve_s"] < result["wall_time_s"]
    assert result["train_over_bound"] == result["time_to_solve_s"] / result["bound_s"]
    assert [c["step"] for c in result["curve"]] == [128, 256]


def fake_results(plan, solved_time):
    """One successful result per distinct spec of ``plan``: sb3 solves in 10 s, ours in
    ``solved_time`` seconds (None: never)."""
    results = {}
    for planned in plan:
        ours = planned.spec.trial.framework == "rlrobot"
        time_s = solved_time if ours else 10.0
        results[planned.spec.key] = {
            "key": planned.spec.key,
            "spec": planned.spec.to_dict(),
            "status": "ok",
            "solved": time_s is not None,
            "time_to_solve_s": time_s or 50.0,
            "solve_step": 20_000 if time_s else None,
            "trained_steps": 20_000,
            "eval_time_s": 1.0,
            "setup_s": 0.1,
            "bound_s": 1.0,
            "train_over_bound": (time_s or 50.0) / 1.0,
            "wall_time_s": 60.0,
            "machine": {"load_average": [1.0, 1.0, 1.0]},
        }
    return list(results.values())


def test_the_page_reports_each_series_and_the_cases_not_run(tmp_path):
    plan = tts.build_plan(tts.CASES[:1], seeds=[0, 1, 2])
    cases = tts.case_results(plan, fake_results(plan, solved_time=4.0))
    entry = cases["CartPole-v1:ppo"]
    assert len(entry["runs"]) == 15
    assert entry["summaries"]["rlrobot"]["median_s"] == 4.0
    assert entry["comparisons"]["rlrobot"]["time_ratio"] == 0.4
    assert entry["comparisons"]["rlrobot"]["p_sooner"] == 1.0
    assert "sb3, SubprocVecEnv" not in entry["comparisons"]  # SB3 is the baseline, not ours
    results = {"command": "rlrobot bench --time-to-solve", "machine": {"cpu_count": 2}}
    (tmp_path / tts.RESULTS_FILE).write_text(json.dumps({**results, "cases": cases}))
    page = tts.rewrite_report(tmp_path).read_text()
    assert "| rlrobot | `sync` × 8 | 3/3 | 4 [4, 4] | 20000 | 0.2 |" in page
    assert "rlrobot, SB3's hyperparameters (= rlrobot: the same trials)" in page
    assert "| rlrobot | 0.4× | 1.00 [1.00, 1.00] | 0.4× |" in page
    assert "--only Pendulum-v1:sac" in page and "`LunarLander-v3`" in page
    never = tts.case_results(plan, fake_results(plan, solved_time=None))["CartPole-v1:ppo"]
    assert never["summaries"]["rlrobot"]["median_s"] is None
    assert np.isclose(never["comparisons"]["rlrobot"]["p_sooner"], 0.0)


def test_time_to_solve_flag_runs_the_study(tmp_path, monkeypatch):
    fake = FakeStudy("time_to_solve", parts=tts.PARTS)
    monkeypatch.setattr(studies, "STUDIES", {"time_to_solve": fake})
    argv = ["bench", "--time-to-solve", "--only", "Pendulum-v1:sac", "--out", str(tmp_path)]
    assert main(argv) == 0
    (options,) = fake.calls
    assert list(options.only) == ["Pendulum-v1:sac"]
    assert options.command.startswith("rlrobot bench --study time_to_solve --seeds 5")


def test_the_study_is_registered_with_its_report_and_parts():
    study = studies.STUDIES["time_to_solve"]
    assert study.report == "rewrite_report" and not study.in_all
    assert study.part_names() == tts.PARTS
