"""The envs study (rlrobot.benchmark.studies.env_speed and vector_speed): a quick run."""

import json

import rlrobot
from rlrobot.benchmark.report import FINDINGS_MARKER
from rlrobot.benchmark.studies import StudyOptions, env_speed, vector_speed
from rlrobot.cli import main


def test_quick_envs_study_measures_every_env_and_keeps_findings(tmp_path):
    (tmp_path / "envs.md").write_text(f"old tables\n{FINDINGS_MARKER}\nOur reading, kept.\n")
    argv = ["bench", "--study", "envs", "--quick", "--budget-scale", "0.4", "--out", str(tmp_path)]
    assert main([*argv, "--only", "overhead", "third_party", "pixels", "profile"]) == 0
    results = json.loads((tmp_path / "envs.json").read_text())
    assert [row["id"] for row in results["overhead"]] == rlrobot.ENV_IDS
    assert [row["id"] for row in results["pixels"]] == rlrobot.ENV_IDS
    for row in results["overhead"]:
        assert 0 < row["physics_s"] < row["step_s"] and row["calls"] >= 1
    assert results["settings"] == {"steps": 120, "repeats": 1}
    page = (tmp_path / "envs.md").read_text()
    assert "old tables" not in page and page.endswith("Our reading, kept.\n")
    assert "| `rlrobot/Push-v0` (heavy) |" in page and "pybullet.stepSimulation" in page
    assert "## Vector envs" not in page  # not run


def test_vector_part_merges_into_the_saved_results(tmp_path, monkeypatch):
    kind = "`SharedMemoryVectorEnv`, 2 workers"
    monkeypatch.setattr(vector_speed, "VECTOR_KINDS", {kind: vector_speed.VECTOR_KINDS[kind]})
    monkeypatch.setattr(env_speed, "VECTOR_ENV_IDS", ("rlrobot/Push-v0",))
    (tmp_path / "envs.json").write_text(json.dumps({"missing": ["panda_gym"], "third_party": []}))
    path = env_speed.main(
        StudyOptions(tmp_path, tmp_path, seeds=(0,), budget_scale=0.2, quick=True, only=("vector",))
    )
    results = json.loads((tmp_path / "envs.json").read_text())
    assert results["missing"] == ["panda_gym"]  # an earlier part, kept
    rows = {row["kind"]: row for row in results["vector"]}
    assert set(rows) == {kind, vector_speed.CEILING_KIND}
    assert rows[kind]["speedup"] > 0 and rows[kind]["capacity"] > 0
    page = path.read_text()
    assert "## Vector envs: 2 processes vs 1 env" in page
    assert f"**Goal (≥ {vector_speed.GOAL_SPEEDUP}× on Push and Quadruped)" in page
    assert "Not installed, so not measured: panda_gym." in page
