"""Plots and evaluation files: PNGs and the metrics JSON of a split."""

from __future__ import annotations

import json

import numpy as np

from rlrobot.perception.dataset import Dataset
from rlrobot.perception.metrics import regression_metrics
from rlrobot.perception.plots import plot_confusion_matrix, plot_loss_curves, write_evaluation

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_plots_are_png_files(tmp_path) -> None:
    history = [{"epoch": 1.0, "train/loss": 1.0, "val/loss": 2.0}]
    history.append({"epoch": 2.0, "train/loss": 0.5, "val/loss": 1.5})
    loss = plot_loss_curves(history, 2, tmp_path / "loss.png")
    matrix = plot_confusion_matrix(np.array([[3, 1], [0, 2]]), ["no", "yes"], tmp_path / "cm.png")
    for path in (loss, matrix):
        assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_write_evaluation_writes_the_metrics_and_the_regression_plot(tmp_path) -> None:
    card = {"labels": {"y": {"task": "regression", "units": "m", "meaning": "y"}}}
    targets = np.arange(8, dtype=np.float32).reshape(4, 2)
    dataset = Dataset(
        np.zeros((4, 3), np.float32), {"y": targets}, np.arange(4), np.full(4, 2, np.int8), card
    )
    predictions = targets + 0.5
    metrics = regression_metrics(predictions, targets, "m")
    files = write_evaluation(metrics, predictions, dataset, "y", tmp_path / "out")
    assert json.loads(files["metrics"].read_text())["mae"] == 0.5
    assert files["metrics"].name == "test_metrics.json"
    assert files["predicted_vs_true"].read_bytes()[:8] == PNG_SIGNATURE
