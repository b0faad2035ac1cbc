"""The perception study (rlrobot.benchmark.studies.perception): a quick run, cached parts."""

import json

import numpy as np
import pytest

from rlrobot.benchmark.report import FINDINGS_MARKER
from rlrobot.benchmark.studies.perception import scaled_budget
from rlrobot.benchmark.studies.perception.reach import error_components, ray_ambiguity_bound
from rlrobot.cli import main


def test_budget_scale_scales_the_amounts_of_data_and_training_only():
    budget = scaled_budget(quick=False, budget_scale=0.5)
    assert budget["reach_episodes"] == 400 and budget["reach_train_episodes"] == (40, 80, 160, 320)
    assert budget["ppo_steps"] == 5120 and budget["fall_seeds"] == 5  # seeds are not scaled
    assert scaled_budget(quick=True, budget_scale=1.0)["fall_episodes"] == 30


def test_error_components_split_the_error_along_and_across_the_camera_ray():
    eye = np.zeros(3)
    targets = np.array([[1.0, 0.0, 0.0]])
    parts = error_components(np.array([[1.2, 0.1, 0.0]]), targets, eye)
    assert parts["median_depth_error"] == pytest.approx(0.2)
    assert parts["median_lateral_error"] == pytest.approx(0.1)
    # A box seen end-on: the depth along the ray is unknown over its whole length.
    bound = ray_ambiguity_bound(np.array([0.0, 0.0, -1.0]), np.zeros(3) - 0.01, np.zeros(3) + 0.01)
    assert 0.0 < bound < 0.02


def test_quick_study_runs_its_parts_reuses_the_cache_and_keeps_findings(tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "perception.md").write_text(f"old tables\n{FINDINGS_MARKER}\nOur reading, kept.\n")
    argv = ["bench", "--study", "perception", "--quick", "--budget-scale", "0.5", "--out", str(out)]
    assert main([*argv, "--only", "reach2", "falls", "ppo"]) == 0
    results = json.loads((out / "perception.json").read_text())
    assert {"reach", "reach2", "falls", "ppo"} <= set(results)  # ppo needs reach's encoder
    assert [row["train_images"] for row in results["reach"]["rows"]] == [40, 80]
    assert {run["condition"] for run in results["ppo"]["runs"]} == {
        "pretrained_frozen",
        "scratch",
        "state_oracle",
    }
    assert not any(results[part].get("reused") for part in ("reach", "reach2", "falls", "ppo"))
    for name in ("reach_error_vs_size", "falls_test_confusion_matrix", "pixel_ppo"):
        assert (out / f"perception_{name}.png").read_bytes()[:4] == b"\x89PNG"
    page = (out / "perception.md").read_text()
    assert "old tables" not in page and page.endswith("Our reading, kept.\n")
    assert "## 1b. Reach" in page and "## 3. Pixel-based Reach" in page

    assert main([*argv, "--only", "falls"]) == 0  # cached in perception_trials/quick_x0.5
    again = json.loads((out / "perception.json").read_text())
    assert again["falls"]["reused"] and again["falls"]["final"] == results["falls"]["final"]
    assert again["ppo"] == results["ppo"]  # not rerun: kept
    assert "(parts 2 reused from the cache)" in (out / "perception.md").read_text()


def test_quick_self_supervised_parts_write_their_sections_and_figures(tmp_path):
    out = tmp_path / "report"
    argv = ["bench", "--study", "perception", "--quick", "--budget-scale", "0.5"]
    assert main([*argv, "--out", str(out), "--only", "ssl_falls", "ssl_reach"]) == 0
    results = json.loads((out / "perception.json").read_text())
    falls, reach = results["ssl_falls"], results["ssl_reach"]
    assert falls["fractions"] == [0.01, 0.05, 0.2, 1.0] == reach["fractions"]
    assert len(falls["supervised"]) == len(falls["vae_head"]) == len(reach["vae_head"]) == 4
    # More labels never means fewer labelled windows; 100 % is the whole training split.
    samples = [row["train_samples"] for row in falls["vae_head"]]
    assert samples == sorted(samples) and samples[-1] == falls["splits"]["train"]["samples"]
    assert falls["vae"]["test"]["kl"] > 0
    scores = {row["score"] for row in falls["anomaly"]["rows"]}
    assert scores == {"reconstruction error", "negative ELBO", "latent Mahalanobis"} | {
        "supervised MLP"
    }
    assert falls["anomaly"]["selected"] in scores - {"supervised MLP"}
    for row in falls["anomaly"]["rows"]:
        assert 0.0 <= row["auroc"] <= 1.0 and set(row["average_precision"]) == {
            "data",
            "0.05",
            "0.01",
        }
    names = ("falls_reconstructions", "falls_latents", "falls_precision_recall")
    for name in (*names, "reach_reconstructions", "reach_latents"):
        assert (out / f"perception_ssl_{name}.png").read_bytes()[:4] == b"\x89PNG"
    page = (out / "perception.md").read_text()
    for heading in ("## 4. Self-supervised", "### 4a.", "### 4b.", "### 4c."):
        assert heading in page
    assert "Falls from 5 % of the labels" in page and "AUROC" in page
