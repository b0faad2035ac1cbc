"""Training: real small training runs that beat trivial baselines, outputs, early stopping."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from rlrobot.perception.dataset import Dataset
from rlrobot.perception.models import ModelSpec, PerceptionModel, load_model
from rlrobot.perception.training import evaluate_model, train_model

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_mlp_predicts_falls_far_better_than_the_majority_class(
    cart_windows: Dataset, tmp_path
) -> None:
    result = train_model(cart_windows, "about_to_fall", epochs=20, seed=0, out_dir=tmp_path)
    metrics = result.test_metrics
    # Majority class ("no fall") has F1 0 on the fall class and accuracy ~0.83.
    assert metrics["baseline_f1"] == 0.0
    assert metrics["f1"] >= 0.8, metrics
    assert metrics["accuracy"] >= metrics["baseline_accuracy"] + 0.08, metrics
    assert (tmp_path / "test_confusion_matrix.png").read_bytes()[:8] == PNG_SIGNATURE
    assert (tmp_path / "loss_curves.png").read_bytes()[:8] == PNG_SIGNATURE
    with (tmp_path / "progress.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == len(result.history)
    assert {"train/loss", "val/loss", "val/f1", "val/precision", "train/learning_rate"} <= set(
        rows[0]
    )
    loaded, metadata = load_model(tmp_path / "model")
    assert metadata["label"] == "about_to_fall" and metadata["best_epoch"] == result.best_epoch
    reloaded = evaluate_model(loaded, cart_windows, "about_to_fall")
    assert reloaded["f1"] == pytest.approx(metrics["f1"])


def test_cnn_regresses_cart_position_far_better_than_the_mean(
    cart_images: Dataset, tmp_path
) -> None:
    spec = ModelSpec("nature_cnn", "regression", (84, 84, 3), 1, features_dim=64)
    result = train_model(
        cart_images, "cart_position", PerceptionModel(spec), epochs=15, seed=1, out_dir=tmp_path
    )
    metrics = result.test_metrics
    # The mean predictor is off by ~0.22 m; the CNN must at least halve that.
    assert metrics["mae"] <= 0.5 * metrics["baseline_mae"], metrics
    assert metrics["units"] == "m"
    assert (tmp_path / "test_predicted_vs_true.png").read_bytes()[:8] == PNG_SIGNATURE
    assert result.history[-1]["train/learning_rate"] < result.history[0]["train/learning_rate"]


def test_early_stopping_restores_the_best_epoch(cart_windows: Dataset) -> None:
    result = train_model(
        cart_windows, "about_to_fall", epochs=40, patience=2, learning_rate=3e-2, seed=0
    )
    val_losses = [row["val/loss"] for row in result.history]
    assert result.best_epoch == int(np.argmin(val_losses)) + 1
    assert len(result.history) == min(40, result.best_epoch + 2)
    by_f1 = train_model(cart_windows, "about_to_fall", epochs=4, monitor="f1", seed=0)
    f1_scores = [row["val/f1"] for row in by_f1.history]
    assert by_f1.best_epoch == int(np.argmax(f1_scores)) + 1
    assert by_f1.val_metrics["f1"] == pytest.approx(max(f1_scores))


def test_training_rejects_a_label_of_the_wrong_kind(cart_windows: Dataset) -> None:
    model = PerceptionModel(ModelSpec("mlp", "regression", (8, 4), 1))
    with pytest.raises(ValueError, match="classification label"):
        train_model(cart_windows, "about_to_fall", model, epochs=1)
