"""Trials, cache and retry: specs, keys, the local process pool and failure handling."""

import json
import sys
import types

import pytest

from rlrobot.agents import PPOConfig
from rlrobot.benchmark.report import retried_trial_lines
from rlrobot.benchmark.runner import Execution, TrialStore, run_trials
from rlrobot.benchmark.trial import (
    CheckpointEvaluator,
    TrialSpec,
    checkpoint_record,
    code_version,
    execute_trial,
    run_trial,
)
from rlrobot.common.evaluation import EvaluationResult
from tests.benchmark import fake_ray
from tests.benchmark.fake_ray import BadNode, LostCluster

FLAKY_ID = "tests.benchmark.flaky_env:FlakyCartPole-v0"
TINY_PPO = PPOConfig(n_steps=32, batch_size=32, n_epochs=1).to_dict()


def tiny_spec(**changes) -> TrialSpec:
    values = {
        "env_id": "CartPole-v1",
        "algo": "ppo",
        "seed": 0,
        "steps": 64,
        "config": TINY_PPO,
        "eval_interval": 32,
        "eval_episodes": 1,
    }
    return TrialSpec(**{**values, **changes})


def test_trial_key_changes_with_everything_that_changes_the_outcome():
    spec = tiny_spec()
    assert spec.key == tiny_spec().key
    assert TrialSpec.from_dict(json.loads(json.dumps(spec.to_dict()))).key == spec.key
    variants = [
        tiny_spec(seed=1),
        tiny_spec(steps=128),
        tiny_spec(framework="sb3"),
        tiny_spec(env_id="Acrobot-v1"),
        tiny_spec(algo="a2c"),
        tiny_spec(config={**TINY_PPO, "gamma": 0.9}),
        tiny_spec(n_envs=2),
        tiny_spec(env_kwargs={"sutton_barto_reward": True}),
    ]
    assert len({spec.key, *(v.key for v in variants)}) == len(variants) + 1
    with pytest.raises(ValueError, match="framework"):
        tiny_spec(framework="cleanrl")


class CountingAgent:
    """Stands in for an agent: ``predict`` pushes right; ``num_timesteps`` is set by the test."""

    num_timesteps = 0

    def predict(self, observation, deterministic=False):
        return 1, None


def test_checkpoint_evaluator_evaluates_on_the_interval_grid():
    import gymnasium as gym

    env = gym.make("CartPole-v1")
    evaluator = CheckpointEvaluator(env, interval=100, n_episodes=2, seed=5)
    agent = CountingAgent()
    for steps in (0, 40, 80, 120, 160, 200, 330, 340):
        agent.num_timesteps = steps
        evaluator(agent)
    evaluator.finish(agent)
    # 0, then the first update at or past 100, 200, 300; then the final step.
    assert [c["step"] for c in evaluator.curve] == [0, 120, 200, 330, 340]
    # Always pushing right: the same short episodes from the same seeds every time.
    assert len({c["mean_return"] for c in evaluator.curve}) == 1
    assert evaluator.curve[0]["returns"] == [
        evaluator.curve[0]["returns"][0],
        evaluator.curve[0]["returns"][1],
    ]
    evaluator.finish(agent)
    assert len(evaluator.curve) == 5  # the final step was evaluated already


def test_checkpoint_record_keeps_the_stored_keys():
    result = EvaluationResult(returns=[1.0, 3.0], lengths=[5, 7], successes=[1.0, 0.0])
    assert checkpoint_record(result) == {
        "mean_return": 2.0,
        "std_return": 1.0,
        "returns": [1.0, 3.0],
        "mean_length": 6.0,
        "success_rate": 0.5,
    }
    unreported = EvaluationResult(returns=[1.0, 3.0], lengths=[5, 7])
    assert "success_rate" not in checkpoint_record(unreported)


def test_run_trial_is_deterministic_and_reports_its_speed():
    first, second = run_trial(tiny_spec()), run_trial(tiny_spec())
    assert first["status"] == "ok"
    assert [c["step"] for c in first["curve"]] == [0, 32, 64]
    assert first["curve"] == second["curve"]
    assert first["total_timesteps"] == 64
    assert first["steps_per_second"] == pytest.approx(64 / first["train_time_s"])
    assert first["train_time_s"] < first["wall_time_s"]
    assert first["torch_threads"] == 1
    assert set(first["versions"]) >= {"torch", "stable_baselines3", "gymnasium", "rlrobot"}


def test_failed_trials_are_retried_once_and_reported(tmp_path):
    flaky = tiny_spec(env_id=FLAKY_ID, env_kwargs={"marker": str(tmp_path / "marker")})
    broken = tiny_spec(env_id=FLAKY_ID, env_kwargs={"always_fail": True})
    store, lines = TrialStore(tmp_path), []
    flaky_result, broken_result = run_trials(
        [flaky, broken], store, Execution(workers=2), lines.append
    )
    assert flaky_result["status"] == "ok"
    assert flaky_result["attempts"] == 2
    assert broken_result["status"] == "failed"
    assert broken_result["attempts"] == 2
    assert "planned failure (always)" in broken_result["error"]
    assert sum("FAILED" in line for line in lines) == 3  # flaky once, broken twice
    # The report lists the trial that needed a retry.
    assert retried_trial_lines([flaky_result, broken_result]) == [
        f"- ppo/rlrobot {FLAKY_ID} seed 0 (key {flaky.key}): ok at attempt 2"
    ]
    # Both are stored; only the completed one counts as done on a restart.
    assert store.load(flaky.key)["status"] == "ok"
    assert store.load(broken.key)["status"] == "failed"
    lines.clear()
    again = run_trials([flaky], store, Execution(workers=1), lines.append)
    assert again[0]["curve"] == flaky_result["curve"]
    assert lines == [f"1 trial(s) already done in {store.directory}, 0 to run"]


def test_a_failed_trial_is_retried_as_soon_as_it_fails_not_after_the_others(tmp_path):
    flaky = tiny_spec(env_id=FLAKY_ID, env_kwargs={"marker": str(tmp_path / "marker")})
    long = tiny_spec(steps=2048, eval_interval=1024)  # seconds: the flaky one fails and retries
    lines = []
    run_trials([long, flaky], TrialStore(tmp_path), Execution(workers=2), lines.append)
    events = [line.split(": ")[0] for line in lines]
    assert events == [
        f"FAILED {flaky.label} (attempt 1)",
        f"done   {flaky.label}",
        f"done   {long.label}",
    ]


def test_code_versions_are_recorded_and_checked(tmp_path):
    version = code_version()
    assert len(version) == 12 and version == code_version()
    # A worker running other code than the driver's refuses the trial.
    refused = execute_trial(tiny_spec().to_dict(), expected_code_version="0123456789ab")
    assert refused["status"] == "failed"
    assert f"this worker runs rlrobot code {version}" in refused["error"]
    assert "the driver 0123456789ab" in refused["error"]
    # Locally, a stored result of other code is kept, and said so; one of before the code
    # versions (none recorded) is kept silently.
    store = TrialStore(tmp_path)
    old, older = tiny_spec(seed=1), tiny_spec(seed=2)
    stored = {"status": "ok", "final_return": 1.0, "curve": []}
    store.save({**stored, "key": old.key, "code_version": "0123456789ab"})
    store.save({**stored, "key": older.key})
    lines = []
    results = run_trials([old, older], store, log=lines.append)
    assert [result["final_return"] for result in results] == [1.0, 1.0]
    assert lines == [
        f"2 trial(s) already done in {store.directory}, 0 to run",
        "1 stored trial(s) were run by other rlrobot code: kept",
    ]


def test_a_lost_ray_cluster_is_one_error_naming_the_partial_report(tmp_path, monkeypatch):
    from rlrobot.benchmark.bench import run_bench
    from rlrobot.benchmark.runner import ClusterError

    monkeypatch.setitem(sys.modules, "ray", LostCluster(lost_after=1))
    specs = [tiny_spec(seed=0), tiny_spec(seed=1)]
    with pytest.raises(ClusterError) as error:
        run_bench(specs, tmp_path, Execution("ray", retries=0), log=lambda line: None)
    message = str(error.value)
    assert len(message.splitlines()) == 1
    assert message.startswith("lost the Ray cluster with 1 of 2 task(s) unfinished (GCS has been")
    assert message.endswith(
        f"run the same command again to resume; partial report: {tmp_path / 'report.md'}"
    )
    report = (tmp_path / "report.md").read_text()
    assert "finished = 1 of 2 trials" in report and "| CartPole-v1 | ppo | 1 |" in report
    # The rerun resumes: the finished trial is kept, the other runs.
    monkeypatch.setitem(sys.modules, "ray", LostCluster(lost_after=None))
    lines = []
    results = run_trials(specs, TrialStore(tmp_path), Execution("ray"), lines.append)
    assert [result["status"] for result in results] == ["ok", "ok"]
    assert lines[0] == f"1 trial(s) already done in {tmp_path / 'trials'}, 1 to run"


def test_a_node_whose_tasks_fail_before_running_gets_no_more_trials(tmp_path, monkeypatch):
    fake = BadNode()
    strategies = types.ModuleType("ray.util.scheduling_strategies")
    strategies.NodeAffinitySchedulingStrategy = fake_ray.NodeAffinitySchedulingStrategy
    monkeypatch.setitem(sys.modules, "ray", fake)
    monkeypatch.setitem(sys.modules, "ray.util.scheduling_strategies", strategies)
    specs = [tiny_spec(seed=seed) for seed in range(4)]
    lines = []
    results = run_trials(specs, TrialStore(tmp_path), Execution("ray", retries=2), lines.append)
    # Unpinned tasks alternate: seeds 0 and 2 and seed 0's first retry (sent before the node
    # was out) went to the bad node, whose code is other. After its second such failure it is
    # out: seed 2's retry and seed 0's second one run on the good node, and nothing else goes
    # to the bad one.
    assert [result["status"] for result in results] == ["ok"] * 4
    assert fake.ran_on == ["bad", "good", "bad", "good", "bad", "good", "good"]
    assert "Ray node bad: 2 tasks failed before their trial ran" in "\n".join(lines)
    assert [result["attempts"] for result in results] == [3, 1, 2, 1]
