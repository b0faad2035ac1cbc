"""The off-policy study (``rlrobot.benchmark.studies.off_policy``): its plan, its report on
made-up results, and the matmul profile behind the update-step table."""

import json

import pytest
import torch

from rlrobot.benchmark.report import FINDINGS_MARKER
from rlrobot.benchmark.studies import StudyOptions
from rlrobot.benchmark.studies import off_policy as study


def test_matmul_profile_counts_only_matmul_kernels_and_their_flops():
    left, right = torch.randn(64, 48), torch.randn(48, 32)
    batch_left, batch_right = torch.randn(3, 64, 48), torch.randn(3, 48, 32)
    elementwise = torch.randn(512, 512)

    def train(steps: int) -> None:
        for _ in range(steps):
            torch.mm(left, right)
            torch.bmm(batch_left, batch_right)
            elementwise.exp()

    milliseconds, gflops = study.matmul_profile(train, steps=4)
    flops_per_step = 2 * 64 * 48 * 32 * (1 + 3)
    assert milliseconds > 0
    # GFLOP/s × seconds per step gives back each step's matmul FLOPs, exp's work excluded.
    assert gflops * 1e9 * milliseconds / 1e3 == pytest.approx(flops_per_step, rel=1e-6)


def test_matmul_peak_is_a_plausible_float32_rate():
    previous_threads = torch.get_num_threads()
    try:
        peak = study.matmul_peak_gflops(size=256, repeats=2)
    finally:
        torch.set_num_threads(previous_threads)
    # Any CPU with a BLAS does more than 0.1 GFLOP/s and less than 10 TFLOP/s on one thread.
    assert 0.1 < peak < 10_000


def test_plan_pairs_every_case_with_sb3_and_adds_bfloat16_on_pendulum():
    specs = study.build_specs([0, 1], quick=False, budget_scale=0.5)
    bfloat16 = [s for s in specs if s.config.get("matmul_dtype") == "bfloat16"]
    assert len(specs) == len(study.CASES) * 2 * 2 + len(study.MIXED_PRECISION_CASES) * 2
    assert {(s.env_id, s.algo) for s in bfloat16} == set(study.MIXED_PRECISION_CASES)
    assert {s.framework for s in bfloat16} == {"rlrobot"}
    for spec in specs:
        assert spec.steps == int(study.BUDGETS[spec.env_id] * 0.5)
        assert spec.eval_interval == spec.steps // 5
    # Each seed's float32, SB3 and bfloat16 trials of a case stand together.
    assert [(s.env_id, s.algo, s.seed) for s in specs[:3]] == [("Pendulum-v1", "sac", 0)] * 3


def fake_result(algo, framework, seed, final, bfloat16=False):
    config = {"matmul_dtype": "bfloat16"} if bfloat16 else {}
    spec = {"env_id": "Pendulum-v1", "algo": algo, "framework": framework, "seed": seed,
            "steps": 600, "config": config}  # fmt: skip
    return {
        "key": f"{algo}-{framework}-{seed}-{bfloat16}",
        "status": "ok",
        "spec": spec,
        "curve": [{"step": 0, "mean_return": -1000.0}, {"step": 600, "mean_return": final}],
        "final_return": final,
        "steps_per_second": 100.0 if framework == "rlrobot" else 50.0,
        "cpu_steps_per_second": 110.0 if framework == "rlrobot" else 55.0,
        "wall_time_s": 10.0,
        "train_time_s": 8.0,
        "torch_threads": 1,
        "machine": {"hostname": "h", "platform": "p", "processor": "x", "cpu_count": 2},
        "versions": {"torch": "t"},
    }


def test_report_tables_from_made_up_results():
    results = [
        fake_result("sac", "rlrobot", 0, -150.0),
        fake_result("sac", "sb3", 0, -200.0),
        fake_result("sac", "rlrobot", 0, -160.0, bfloat16=True),
        {**fake_result("sac", "sb3", 1, 0.0), "status": "failed", "error": "x\nBoom"},
    ]
    update = {"env_id": "Pendulum-v1", "algo": "sac", "rlrobot": 2.0, "rlrobot_bf16": 1.0,
              "sb3": 4.0, "speedup": 2.0, "speedup_bf16": 4.0, "matmul_rlrobot": 1.0,
              "matmul_sb3": 2.0, "gflops_rlrobot": 50.0, "gflops_sb3": 40.0}  # fmt: skip
    memory = [{"case": "1M", "ours_mb": 162.0, "observations_mb": 120.0, "sb3_mb": 284.0}]
    text = study.render_markdown(
        results, [update], memory, 95.0, quick=False, wall=60.0, command="cmd"
    )
    assert (
        text.startswith("# Off-policy benchmark") and "Written by `cmd`. Whole run: 1.0 min" in text
    )
    assert (
        "| Pendulum-v1 | sac | -150 [-150, -150] | -200 [-200, -200] | 50 [50, 50] | — | — "
        "| 1 [1, 1] |"
    ) in text
    assert "| 100 | 50 | 2.00× | 110 | 55 | 2.00× |" in text
    assert "| Pendulum-v1 | sac | -160 [-160, -160] |" in text  # the bfloat16 table
    assert "| Pendulum-v1 | sac | 2.00 | 1.00 | 4.00 | 2.00× | 4.00× |" in text
    assert "holds 162 MB (< 300 MB)" in text
    assert "- sac/sb3 Pendulum-v1 seed 1 (key sac-sb3-1-False, 1 attempt(s)): `Boom`" in text
    assert "torch threads per trial: 1" in text


def test_main_writes_the_json_behind_the_page_and_report_only_rebuilds_it(tmp_path, monkeypatch):
    results = [
        fake_result("sac", "rlrobot", 0, -150.0),
        fake_result("sac", "sb3", 0, -200.0),
        fake_result("sac", "rlrobot", 0, -160.0, bfloat16=True),
    ]
    update = {"env_id": "Pendulum-v1", "algo": "sac", "rlrobot": 2.0, "rlrobot_bf16": 1.0,
              "sb3": 4.0, "speedup": 2.0, "speedup_bf16": 4.0, "matmul_rlrobot": 1.0,
              "matmul_sb3": 2.0, "gflops_rlrobot": 50.0, "gflops_sb3": 40.0}  # fmt: skip
    memory = [{"case": "1M", "ours_mb": 162.0, "observations_mb": 120.0, "sb3_mb": 284.0}]
    monkeypatch.setattr(study, "run_trials", lambda specs, store, execution: results)
    monkeypatch.setattr(study, "time_update_step", lambda *args: update)
    monkeypatch.setattr(study, "measure_memory", lambda: memory)
    monkeypatch.setattr(study, "matmul_peak_gflops", lambda: 95.0)
    page = tmp_path / "off_policy.md"
    page.write_text(f"old\n{FINDINGS_MARKER}\nKept.\n")
    study.main(StudyOptions(tmp_path, tmp_path / "trials", [0], quick=True, command="cmd"))
    text = page.read_text()
    saved = json.loads((tmp_path / "off_policy.json").read_text())
    # Per-seed results, and the rows of both tables with their comparisons.
    assert [r["final_return"] for r in saved["results"]] == [-150.0, -200.0, -160.0]
    assert saved["rows"][0]["difference"] == 50.0
    assert saved["rows_bfloat16"][0]["rlrobot"]["finals"] == [-160.0]
    assert saved["updates"] == [update] and saved["peak_gflops"] == 95.0
    assert saved["aggregate"] is None  # one env
    # --report-only: the same page from the JSON, nothing measured again.
    monkeypatch.setattr(study, "time_update_step", None)
    page.write_text(f"stale\n{FINDINGS_MARKER}\nKept.\n")
    assert study.rewrite_report(tmp_path) == page
    assert page.read_text() == text and text.endswith("Kept.\n")
