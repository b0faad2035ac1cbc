"""The on-policy study (``rlrobot.benchmark.studies.on_policy``): its trials and its report,
on made-up results (no training)."""

import json

import pytest

from rlrobot.benchmark.bench import resolve_trial_config
from rlrobot.benchmark.report import FINDINGS_MARKER
from rlrobot.benchmark.runner import TrialStore
from rlrobot.benchmark.studies import StudyOptions
from rlrobot.benchmark.studies import on_policy as study
from rlrobot.benchmark.trial import TrialSpec


def make_result(algo, framework, seed, returns, speed, env_id="CartPole-v1"):
    """A successful trial result with evaluation ``returns`` at steps 0, 100, 200…"""
    return {
        "key": f"{algo}-{framework}-{seed}",
        "status": "ok",
        "spec": {"env_id": env_id, "algo": algo, "framework": framework, "seed": seed},
        "curve": [{"step": 100 * i, "mean_return": r} for i, r in enumerate(returns)],
        "final_return": returns[-1],
        "steps_per_second": speed,
        "wall_time_s": 20.0 if framework == "rlrobot" else 40.0,
        "train_time_s": 15.0,
        "torch_threads": 1,
        "machine": {"hostname": "h", "platform": "p", "processor": "x", "cpu_count": 2},
        "versions": {"torch": "t"},
    }


@pytest.fixture
def results():
    """PPO and A2C, ours and SB3's, and REINFORCE (ours only), two seeds each."""
    made = []
    for seed in (0, 1):
        made += [
            make_result("ppo", "rlrobot", seed, [10.0, 200.0 + seed], 2000.0),
            make_result("ppo", "sb3", seed, [10.0, 100.0 + seed], 1000.0),
            make_result("a2c", "rlrobot", seed, [10.0, 50.0], 1200.0),
            make_result("a2c", "sb3", seed, [10.0, 80.0], 1000.0),
            make_result("reinforce", "rlrobot", seed, [10.0, 120.0], 3000.0),
        ]
    return made


def test_reinforce_is_compared_with_sb3_a2c(results):
    rows = study.compare_rows(results)
    by_algo = {row["algo"]: row for row in rows}
    assert [row["algo"] for row in rows] == ["ppo", "a2c", "reinforce"]
    reinforce, a2c, ppo = by_algo["reinforce"], by_algo["a2c"], by_algo["ppo"]
    assert (reinforce["baseline_algo"], a2c["baseline_algo"]) == ("a2c", "a2c")
    assert reinforce["sb3"] is a2c["sb3"]
    assert reinforce["ratios"]["steps_per_second"] == pytest.approx(3.0)
    assert reinforce["ratios"]["return"] == pytest.approx(120.0 / 80.0)
    assert reinforce["probability_of_improvement"] == 1.0
    assert a2c["probability_of_improvement"] == 0.0
    assert ppo["ratios"]["steps_per_second"] == pytest.approx(2.0)
    assert ppo["sb3"]["mean"] == pytest.approx(100.5)


def test_report_table_and_goals(results):
    rows = study.compare_rows(results)
    rollouts = {"ppo": (32, 8), "a2c": (5, 8), "reinforce": (250, 4)}
    specs = [
        TrialSpec("CartPole-v1", algo, 0, 2000, config={"n_steps": n_steps}, n_envs=n_envs)
        for algo, (n_steps, n_envs) in rollouts.items()
    ]
    text = study.render_markdown(rows, results, specs, "cmd", quick=False, workers=2)
    assert (
        "| CartPole-v1 | REINFORCE (vs A2C) | 120 [120, 120] | 80 [80, 80] | 40 [40, 40] "
        "| 1 [1, 1] |"
    ) in text
    assert "| 3e+03 |" not in text and "| 3000 | 1000 | 3.00× |" in text
    # PPO beats SB3 on every resample, A2C loses on every one; REINFORCE is not counted.
    assert (
        "- Final return against SB3's, on the 2 rows of the same algorithm: the 95 % CI of "
        "ours − SB3 lies above 0 on 1, below 0 on 1 and holds 0 (not told apart) on 0. "
        "Not counted: the REINFORCE rows (1), compared with another algorithm (SB3's A2C)."
    ) in text
    assert "  - below: A2C on CartPole-v1: -30 [-30, -30], P(ours > SB3) = 0 [0, 0]\n" in text
    # A2C is also the one row under 1.5× throughput.
    assert "- Training throughput ≥ 1.5× SB3's: 2 of 3 rows" in text
    assert "  - below: A2C on CartPole-v1: 1.20× (an update every 40 steps: env steps" in text
    # Why a row misses the return goal: overlapping CIs, or another algorithm.
    results += [make_result("reinforce", "rlrobot", 2, [10.0, -100.0], 3000.0)]
    text = study.render_markdown(
        study.compare_rows(results), results, specs, "cmd", False, workers=2
    )
    # Ours 120, 120, −100 against 80, 80: the resampled mean difference runs from
    # −100 − 80 = −180 (all three −100, 1/27 of the resamples) to 120 − 80 = 40 (8/27).
    assert (
        "  - below: REINFORCE on CartPole-v1: -33.3 [-180, 40], P(ours > SB3) = 0.667 [0, 1] "
        "(within the noise: the CI of ours − SB3 holds 0; another algorithm: REINFORCE "
        "updates once per 1,000 steps, 2 times in this budget)"
    ) in text
    # 2 seeds a side: the intervals are the seeds' range, which holds the median half the time.
    assert "holds the true median only 50 % of the time" in text
    assert "torch threads per trial: 1" in text
    assert "the load average was not recorded with these trials" in text
    for load, result in zip([3.0, 9.0, 4.0], results, strict=False):
        result["machine"]["load_average"] = [load, 0.0, 0.0]
    load_text = study.describe_load(results)
    assert load_text == "1-minute load average 3.0–9.0 at the ends of the trials, median 4.0"


def test_trials_follow_the_configs_scaled():
    specs = study.build_specs(["CartPole-v1"], [0, 1], 0.5, quick=False)
    by_algo = {}
    for spec in specs:
        by_algo.setdefault(spec.algo, set()).add(spec.framework)
    assert by_algo == {
        "ppo": {"rlrobot", "sb3"},
        "a2c": {"rlrobot", "sb3"},
        "reinforce": {"rlrobot"},
    }
    assert len(specs) == 10
    for spec in specs:
        resolved = resolve_trial_config(spec.algo, "CartPole-v1")
        assert spec.steps == round(resolved.steps * 0.5)
        assert spec.n_envs == resolved.n_envs
        assert spec.eval_episodes == study.EVAL_EPISODES


def test_main_writes_the_page_next_to_its_trials_and_keeps_the_findings(tmp_path, monkeypatch):
    def fake_run_bench(specs, out, execution, settings, command):
        """Store made-up results and the run info, as ``run_bench`` does."""
        store = TrialStore(out)
        for spec in specs:
            speed = 2000.0 if spec.framework == "rlrobot" else 1000.0
            result = make_result(spec.algo, spec.framework, spec.seed, [10.0, 100.0], speed)
            store.save({**result, "key": spec.key, "spec": spec.to_dict()})
        keys = [spec.key for spec in specs]
        run_info = {"command": command, "settings": settings, "keys": keys}
        (out / "bench.json").write_text(json.dumps(run_info))

    monkeypatch.setattr(study, "run_bench", fake_run_bench)
    page = tmp_path / "on_policy.md"
    page.write_text(f"old tables\n{FINDINGS_MARKER}\nOur reading, kept.\n")
    trials = tmp_path / "on_policy"
    options = StudyOptions(tmp_path, trials, [0], quick=True, command="cmd")
    path = study.main(options)
    assert path == page
    text = page.read_text()
    assert "old tables" not in text and text.endswith("Our reading, kept.\n")
    assert "Written by `cmd` (smoke run, numbers meaningless). 5 trials" in text
    assert "[on_policy/report.md](on_policy/report.md)" in text
    assert (trials / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"
    # The JSON next to the page holds the page's rows, per-seed finals and comparisons.
    saved = json.loads((tmp_path / "on_policy.json").read_text())
    rows = {row["algo"]: row for row in saved["rows"]}
    assert rows["reinforce"]["baseline_algo"] == "a2c"
    assert rows["ppo"]["rlrobot"]["finals"] == [100.0]
    assert rows["ppo"]["difference_ci"] == [0.0, 0.0]
    assert saved["aggregate"] is None  # one env
    # --report-only rebuilds the same page from the trials folder, without training.
    monkeypatch.setattr(study, "run_bench", None)
    page.unlink()
    assert study.rewrite_report(tmp_path) == page
    assert page.read_text().startswith(text[: text.index(FINDINGS_MARKER)])
