"""The export latency study: a quick run writes both pages with every policy and runtime."""

import json

import torch

from rlrobot.benchmark.studies import STUDIES, StudyOptions
from rlrobot.benchmark.studies import export_latency as study


def test_quick_run_times_every_runtime_and_checks_their_actions(tmp_path):
    threads = torch.get_num_threads()
    options = StudyOptions(tmp_path, tmp_path / "trials", seeds=[0], quick=True, command="quick")
    report = STUDIES["export_latency"].run(options)
    assert torch.get_num_threads() == threads  # one thread while measuring, then as before
    results = json.loads((tmp_path / "export_latency.json").read_text())
    assert list(results["policies"]) == ["state MLP", "pixel CNN"]
    for policy in results["policies"].values():
        assert policy["calls"] == study.QUICK_CALLS
        assert policy["max_abs_action_difference"] <= 1e-5
        runtimes = policy["runtimes"]
        assert list(runtimes) == [
            "predict (eager)",
            "module (eager)",
            "TorchScript",
            "ONNX Runtime",
        ]
        assert runtimes["predict (eager)"]["speedup_vs_predict"] == 1.0
        for row in runtimes.values():
            assert 0 < row["median_us"] <= row["p90_us"]
    text = report.read_text()
    assert "## pixel CNN" in text and "| ONNX Runtime |" in text and "## Findings" in text
    # The page is rebuilt from the JSON alone, keeping the hand-written findings.
    report.write_text(text.replace("None written yet.", "ONNX is fastest."))
    assert "ONNX is fastest." in study.rewrite_report(tmp_path).read_text()
    assert not (tmp_path / "trials").exists()


def test_side_by_side_timing_gives_every_runtime_the_same_calls():
    calls = []
    runtimes = {name: (lambda o, name=name: calls.append((name, o))) for name in "abc"}
    times = study.time_side_by_side(runtimes, observations=[0, 1, 2], calls=45)
    assert {name: len(values) for name, values in times.items()} == {"a": 45, "b": 45, "c": 45}
    measured = calls[3 * 3 :]  # after the warm-up (3 observations each)
    # Rounds of BLOCK calls, the first runtime of each round rotating: a, b, c, then b, c, a.
    assert [name for name, _ in measured[:: study.BLOCK]][:6] == ["a", "b", "c", "b", "c", "a"]
    assert [o for name, o in measured if name == "a"] == [i % 3 for i in range(45)]
