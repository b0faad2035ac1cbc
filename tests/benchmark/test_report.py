"""The bench report's rows (returns, comparisons, steps to SB3's return) and its aggregate
over envs, on synthetic trial results with hand-computed values."""

import pytest

from rlrobot.benchmark.report import aggregate_lines, aggregate_scores, render_markdown, summarize


def result(framework: str, seed: int, curve: list[tuple[int, float]]) -> dict:
    """A successful trial result holding what the report reads."""
    return {
        "status": "ok",
        "key": f"{framework}{seed}",
        "spec": {"env_id": "CartPole-v1", "algo": "ppo", "framework": framework, "seed": seed},
        "final_return": curve[-1][1],
        "curve": [{"step": step, "mean_return": value} for step, value in curve],
        "steps_per_second": 1000.0,
        "wall_time_s": 10.0,
        "train_time_s": 8.0,
        "torch_threads": 1,
        "machine": {"hostname": "h", "platform": "p", "processor": "x", "cpu_count": 2},
        "versions": {"torch": "2.13.0"},
    }


def efficiency_row(results: list[dict]) -> tuple[str, str]:
    """Return the efficiency table's CartPole row and the report."""
    report = render_markdown(summarize(results), results, {})
    section = report.split("## Sample efficiency and speed")[1]
    (row,) = [line for line in section.splitlines() if line.startswith("| CartPole-v1 |")]
    return row, report


def test_a_target_the_untrained_policy_already_reaches_is_said_so_not_0_over_0():
    # Both frameworks evaluate 30 before training; SB3 ends at 20, so step 0 "reaches" it.
    curve = [(0, 30.0), (100, 25.0), (200, 20.0)]
    results = [
        result(framework, seed, curve) for framework in ("rlrobot", "sb3") for seed in (0, 1)
    ]
    row, report = efficiency_row(results)
    assert "| 0 (untrained) | 0 (untrained) | — |" in row
    assert "(untrained): the evaluation before any training already reaches SB3's final" in report


def test_steps_to_the_target_after_training_are_plain_counts():
    results = [result("rlrobot", s, [(0, 10.0), (100, 55.0), (200, 60.0)]) for s in (0, 1)]
    results += [result("sb3", s, [(0, 10.0), (100, 30.0), (200, 50.0)]) for s in (0, 1)]
    row, report = efficiency_row(results)
    assert "| 100 | 200 | 0.5 |" in row
    assert "untrained" not in report


def two_env_results() -> list[dict]:
    """Two seeds a side on two envs, with final returns chosen so every number is by hand.

    A: every run starts at 0; ours ends at 10 and 8, SB3's at 6 and 4.
    B: every run starts at −10; ours ends at 0 and −5, SB3's at −5 and −10.
    """
    finals = {("A-v0", "rlrobot"): (10.0, 8.0), ("A-v0", "sb3"): (6.0, 4.0),
              ("B-v0", "rlrobot"): (0.0, -5.0), ("B-v0", "sb3"): (-5.0, -10.0)}  # fmt: skip
    made = []
    for (env_id, framework), values in finals.items():
        for seed, final in enumerate(values):
            start = 0.0 if env_id == "A-v0" else -10.0
            middle = {"rlrobot": 9.0, "sb3": 3.0}[framework] if env_id == "A-v0" else start
            made.append(result(framework, seed, [(0, start), (100, middle), (200, final)]))
            made[-1]["spec"] = {**made[-1]["spec"], "env_id": env_id}
            made[-1]["key"] += env_id
    return made


def test_rows_carry_the_difference_and_p_improvement_with_two_sample_cis():
    rows = {row["env_id"]: row for row in summarize(two_env_results())}
    a, b = rows["A-v0"], rows["B-v0"]
    # A: 9 − 5; each resampled mean takes its extremes (8 and 6) in 1/4 of the draws, so
    # both ends of the 95 % interval are the extremes: 8 − 6 = 2 and 10 − 4 = 6.
    assert a["difference"] == 4.0 and a["difference_ci"] == (2.0, 6.0)
    assert a["probability_of_improvement"] == 1.0
    assert a["probability_of_improvement_ci"] == (1.0, 1.0)
    # B: −2.5 − (−7.5); pairs 0 > −5, 0 > −10, −5 = −5 (one half), −5 > −10: 3.5 / 4.
    assert b["difference"] == 5.0 and b["difference_ci"] == (0.0, 10.0)
    assert b["probability_of_improvement"] == 0.875
    assert b["probability_of_improvement_ci"] == (0.5, 1.0)
    # SB3's curve mean is 3 at step 100 and 5 (its own final mean) at 200; ours 9 at 100.
    assert a["steps_to_threshold"] == {"rlrobot": 100, "sb3": 200}
    assert a["threshold_at_start"] == {"rlrobot": False, "sb3": False}
    assert a["ratios"]["steps_to_threshold"] == 0.5
    report = render_markdown(list(rows.values()), two_env_results(), {})
    assert "| A-v0 | ppo | 2/2 | 9 [8, 10] | 5 [4, 6] | 9 [8, 10] | 5 [4, 6] | 4 [2, 6] " in report
    assert "| 0.875 [0.5, 1] |" in report


def test_aggregate_over_envs_normalises_to_the_untrained_and_the_best_run():
    aggregate = aggregate_scores(summarize(two_env_results()))
    assert aggregate["references"] == {
        "A-v0": {"untrained": 0.0, "best": 10.0},
        "B-v0": {"untrained": -10.0, "best": 0.0},
    }
    ours, sb3 = aggregate["agents"]
    assert (ours["framework"], sb3["framework"], ours["n_runs"]) == ("rlrobot", "sb3", 2)
    # Ours scores 1, 0.8 (A) and 1, 0.5 (B): the IQM of 4 drops one at each end, (0.8 + 1) / 2;
    # the gap is 1 − mean(1, 0.8, 1, 0.5). SB3 scores 0.6, 0.4 and 0.5, 0.
    assert ours["iqm"] == pytest.approx(0.9) and ours["optimality_gap"] == pytest.approx(0.175)
    assert sb3["iqm"] == pytest.approx(0.45) and sb3["optimality_gap"] == pytest.approx(0.625)
    # Stratified resamples: each env's pair is drawn alike with chance 1/4, so the extremes
    # (A 0.8, 0.8 with B 0.5, 0.5; or all 1) have 1/16 > 2.5 % and are the interval's ends.
    assert ours["iqm_ci"] == pytest.approx((0.65, 1.0))
    assert ours["optimality_gap_ci"] == pytest.approx((0.0, 0.35))
    assert aggregate["left_out"] == []
    section = "\n".join(aggregate_lines(aggregate))
    assert "| ours PPO | 2 × 2 | 0.9 [0.65, 1] | 0.175 [0, 0.35] |" in section
    assert "| B-v0 | -10 | 0 |" in section


def test_aggregate_names_what_it_leaves_out_and_needs_two_envs():
    results = two_env_results()
    one_env = [r for r in results if r["spec"]["env_id"] == "A-v0"]
    assert aggregate_scores(summarize(one_env)) is None
    # A third env where every run ends below where it started: nothing to normalise by.
    for framework in ("rlrobot", "sb3"):
        results.append(result(framework, 0, [(0, 5.0), (100, 1.0), (200, 1.0)]))
        results[-1]["spec"] = {**results[-1]["spec"], "env_id": "C-v0"}
    aggregate = aggregate_scores(summarize(results))
    assert aggregate["left_out"] == ["C-v0: no run ends above the untrained return"]
    assert [a["envs"] for a in aggregate["agents"]] == [["A-v0", "B-v0"]] * 2
    # An agent missing an env is left out, not aggregated over fewer envs.
    results = [r for r in two_env_results() if r["key"] != "sb30B-v0" and r["key"] != "sb31B-v0"]
    aggregate = aggregate_scores(summarize(results))
    assert [a["framework"] for a in aggregate["agents"]] == ["rlrobot"]
    assert aggregate["left_out"] == ["sb3 ppo: not the same number of runs on every env"]


def test_a_learned_count_is_not_divided_by_an_untrained_one():
    # Ours starts above SB3's final mean (untrained); SB3 gets there at step 200.
    results = [result("rlrobot", s, [(0, 60.0), (100, 55.0), (200, 60.0)]) for s in (0, 1)]
    results += [result("sb3", s, [(0, 10.0), (100, 30.0), (200, 50.0)]) for s in (0, 1)]
    row, _ = efficiency_row(results)
    assert "| 0 (untrained) | 200 | — |" in row


def test_speed_is_compared_within_a_ray_node():
    def on_node(framework, seed, node, speed):
        trial = result(framework, seed, [(0, 1.0), (100, 2.0)])
        trial["machine"] = {**trial["machine"], "ray_node": node}
        trial["steps_per_second"] = speed
        return trial

    # A fast node (4,000 vs 2,000 steps/s) and a slow one (1,000 vs 250): ours is 2× and 4×
    # as fast where both ran; a mean over nodes would compare hardware.
    mixed = [
        on_node("rlrobot", 0, "fast", 4000.0),
        on_node("sb3", 0, "fast", 2000.0),
        on_node("rlrobot", 1, "slow", 1000.0),
        on_node("sb3", 1, "slow", 250.0),
        on_node("sb3", 2, "other", 10.0),  # no run of ours there: not compared
    ]
    (row,) = summarize(mixed)
    assert row["rlrobot"]["steps_per_second_by_node"] == {"fast": 4000.0, "slow": 1000.0}
    assert row["ratios"]["steps_per_second"] == pytest.approx(8**0.5)  # √(2 × 4)
    apart = [on_node("rlrobot", 0, "fast", 4000.0), on_node("sb3", 0, "slow", 250.0)]
    (row,) = summarize(apart)
    assert row["ratios"]["steps_per_second"] is None
    # Trials run without Ray are one machine: the plain ratio.
    (row,) = summarize([result("rlrobot", 0, [(0, 1.0)]), result("sb3", 0, [(0, 1.0)])])
    assert row["ratios"]["steps_per_second"] == 1.0
