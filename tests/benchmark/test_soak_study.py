"""The soak study (rlrobot.benchmark.studies.soak): its env choice and a quick run."""

import json

import gymnasium as gym

import rlrobot
from rlrobot.benchmark.report import FINDINGS_MARKER
from rlrobot.benchmark.studies import soak
from rlrobot.cli import main


def test_short_rollouts_cover_every_other_env_class_once_whatever_the_id_order(monkeypatch):
    chosen = soak.short_rollout_env_ids()
    classes = [gym.spec(env_id).entry_point for env_id in chosen]
    long_class = gym.spec(soak.LONG_ROLLOUT_ENV_ID).entry_point
    expected = {gym.spec(env_id).entry_point for env_id in rlrobot.ENV_IDS} - {long_class}
    assert sorted(classes) == sorted(expected)  # each class once, the long rollout's left out
    monkeypatch.setattr(rlrobot, "ENV_IDS", list(reversed(rlrobot.ENV_IDS)))
    assert soak.short_rollout_env_ids() == chosen


def test_quick_soak_merges_its_parts_into_the_saved_results_and_keeps_findings(tmp_path, capsys):
    earlier = {"algo": "ppo", "1_vs_2_max_weight_difference": 0.0}
    earlier.update(dict.fromkeys(["1_thread_repeatable", "2_threads_repeatable"], True))
    earlier.update(dict.fromkeys(["1_vs_2_threads_identical", "1_vs_2_threads_same_returns"], True))
    (tmp_path / "soak.json").write_text(json.dumps({"threads": [earlier], "command": "old"}))
    (tmp_path / "soak.md").write_text(f"old tables\n{FINDINGS_MARKER}\nOur reading, kept.\n")
    argv = ["bench", "--study", "soak", "--quick", "--budget-scale", "0.1", "--out", str(tmp_path)]
    assert main([*argv, "--only", "cycles", "fuzz"]) == 0
    results = json.loads((tmp_path / "soak.json").read_text())
    assert results["threads"] == [earlier]  # not rerun: kept
    assert results["cycles"]["cycles"] == 6 and results["cycles"]["client_growth"] == 0
    assert [row["env_id"] for row in results["fuzz"]] == rlrobot.ENV_IDS
    assert all(row["non_finite"] == 0 and row["steps"] == 30 for row in results["fuzz"])
    assert "--only cycles fuzz" in results["command"]
    page = (tmp_path / "soak.md").read_text()
    assert "old tables" not in page and page.endswith("Our reading, kept.\n")
    assert "## 1 vs 2 torch threads" in page and "| `rlrobot/Quadruped-v0` | 30 |" in page
    (tmp_path / "soak.md").write_text(f"{FINDINGS_MARKER}\nOurs.\n")
    assert main(["bench", "--study", "soak", "--report-only", str(tmp_path)]) == 0
    assert "## Make/step/close cycles" in (tmp_path / "soak.md").read_text()


def test_study_parts_are_checked_against_the_study(capsys):
    assert main(["bench", "--study", "soak", "--quick", "--only", "cycle"]) == 2
    assert (
        "no part(s) ['cycle']; parts: cycles rollout fuzz kills threads" in capsys.readouterr().err
    )
