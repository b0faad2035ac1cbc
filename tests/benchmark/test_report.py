"""The bench report's efficiency table on synthetic trial results."""

from rlrobot.benchmark.report import render_markdown, summarize


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
