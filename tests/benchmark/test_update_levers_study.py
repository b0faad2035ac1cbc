"""The update levers study: its plan, its optimizer rebuild and its page."""

import json

import torch

from rlrobot.benchmark.studies import STUDIES
from rlrobot.benchmark.studies import update_levers as study
from rlrobot.common.networks import make_adam


def test_plan_measures_every_lever_against_the_agents_own_adam():
    parameters = [torch.nn.Parameter(torch.zeros(3))]
    # The baseline is what the agents build: make_adam's fused kernel on a CPU.
    assert make_adam(parameters, 1e-3).defaults["fused"] is True
    assert study.BASELINE.adam == {"fused": True}
    full, quick = study.plan(quick=False), study.plan(quick=True)
    assert [lever.name for lever in full["SAC"]] == [lever.name for lever in study.LEVERS]
    assert full["SAC"][0] == study.BASELINE and full["PPO"][0] == study.BASELINE
    # bfloat16 matmuls are an off-policy option; a quick run skips the minutes of compiling.
    assert "matmul_dtype=bfloat16" not in [lever.name for lever in full["PPO"]]
    assert any(lever.compiled for lever in full["PPO"])
    assert not any(lever.compiled for levers in quick.values() for lever in levers)
    assert STUDIES["update_levers"].report == "rewrite_report"


def test_rebuilt_adam_keeps_each_groups_options_and_takes_the_new_implementation():
    first, second = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(1))
    groups = [{"params": [first]}, {"params": [second], "eps": 1e-3, "weight_decay": 0.0}]
    optimizer = torch.optim.Adam(groups, lr=0.01, eps=1e-5, weight_decay=0.1, fused=True)
    rebuilt = study.rebuild_adam(optimizer, foreach=True)
    assert [group["params"] for group in rebuilt.param_groups] == [[first], [second]]
    assert [(g["lr"], g["eps"], g["weight_decay"]) for g in rebuilt.param_groups] == [
        (0.01, 1e-5, 0.1),
        (0.01, 1e-3, 0.0),
    ]
    assert [(g["foreach"], g["fused"]) for g in rebuilt.param_groups] == [(True, None)] * 2


def test_round_medians_take_one_median_per_block():
    values = [float(i) for i in range(2 * study.BLOCK)]
    assert study.round_medians(values) == [
        (study.BLOCK - 1) / 2,
        study.BLOCK + (study.BLOCK - 1) / 2,
    ]


def test_page_is_rebuilt_from_the_json_keeping_the_findings(tmp_path):
    row = {
        "median_ms": 12.5,
        "speedup_vs_baseline": 1.0,
        "round_speedups_quartiles": [0.97, 1.04],
        "first_call_extra_s": 0.0,
        "max_abs_loss_difference": 0.0,
    }
    results = {
        "command": "rlrobot bench --study update_levers",
        "load_start": 1.5,
        "load_end": 2.0,
        "machine": {
            "cpus": 2,
            "python": "3.11",
            "torch": "2.13",
            "model": "a CPU",
            "bf16_flags": ["avx512_bf16"],
            "compiler": "/usr/bin/gcc",
        },
        "threads": 1,
        "check_steps": 20,
        "updates": {
            "SAC": {
                "description": "SAC train_step",
                "calls": 300,
                "minibatches_per_call": 1,
                "levers": {
                    "fused=True (ours)": row,
                    "torch.compile": {
                        **row,
                        "median_ms": 25.0,
                        "speedup_vs_baseline": 0.5,
                        "first_call_extra_s": 61.0,
                    },
                },
            }
        },
    }
    (tmp_path / "update_levers.json").write_text(json.dumps(results))
    text = study.rewrite_report(tmp_path).read_text()
    assert "bfloat16 instructions: avx512_bf16" in text and "load average 1.5" in text
    assert "| fused=True (ours) | 12.500 | 1.00× | 0.97–1.04× | 0.0e+00 | 0.0 |" in text
    assert "| torch.compile | 25.000 | 0.50× | 0.97–1.04× | 0.0e+00 | 61.0 |" in text
    (tmp_path / "update_levers.md").write_text(text.replace("None written yet.", "Fused wins."))
    assert "Fused wins." in study.rewrite_report(tmp_path).read_text()


def test_loss_check_compares_the_last_losses_from_the_same_torch_seed():
    def update(offset: float) -> study.Update:
        # Losses drawn from torch's generator: equal only when each run starts from seed 0.
        return study.Update(lambda i: {"loss": float(torch.rand(())) + offset + i})

    checks = study.check_losses({"base": update(0.0), "same": update(0.0), "off": update(1e-3)}, 3)
    assert checks["base"]["max_abs_loss_difference"] == 0.0
    assert checks["same"]["max_abs_loss_difference"] == 0.0
    assert abs(checks["off"]["max_abs_loss_difference"] - 1e-3) < 1e-9
    assert all(check["first_call_s"] >= 0.0 for check in checks.values())
