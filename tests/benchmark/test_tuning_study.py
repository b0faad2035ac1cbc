"""The tuning study (rlrobot.benchmark.studies.tuning): a quick run, its rerun and its page."""

import json

import pytest

pytest.importorskip("optuna", reason="the tuning study needs Optuna: pip install 'rlrobot[tune]'")

from rlrobot.benchmark.report import FINDINGS_MARKER
from rlrobot.cli import main


def test_quick_tuning_study_compares_both_methods_on_both_envs(tmp_path, capsys):
    argv = ["bench", "--study", "tuning", "--quick", "--budget-scale", "0.25"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "tuning.json").read_text())
    runs = {(run["env_id"], run["method"]): run for run in results["runs"]}
    assert set(runs) == {
        (env_id, method)
        for env_id in ("CartPole-v1", "Acrobot-v1")
        for method in ("tpe+median", "random")
    }
    for run in runs.values():
        assert (run["steps"], run["trials"], run["failed"]) == (64, 2, 0)
        assert run["complete"] + run["pruned"] == 2
        assert run["best_value"] is not None and run["cpu_time_s"] > 0
    page = (tmp_path / "tuning.md").read_text()
    assert "| `CartPole-v1` | random | 2 | 64 | 1 |" in page
    assert FINDINGS_MARKER in page
    # A rerun finds every run done and trains nothing.
    capsys.readouterr()
    assert main([*argv, "--out", str(tmp_path)]) == 0
    assert "tuning:" not in capsys.readouterr().out
