"""Training: metric maths, real small training runs that beat trivial baselines, outputs."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from rlrobot.perception.dataset import Dataset
from rlrobot.perception.models import ModelSpec, PerceptionModel, load_model
from rlrobot.perception.training import (
    choose_threshold,
    classification_metrics,
    ensemble_probabilities,
    evaluate_model,
    regression_metrics,
    train_model,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_regression_metrics_match_hand_computed_values() -> None:
    predictions = np.array([[0.0, 0.0], [3.0, 4.0], [1.0, 1.0]])
    targets = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 2.0]])
    metrics = regression_metrics(predictions, targets, "m")
    # errors: (0, 0), (3, 4), (0, -1); norms 0, 5, 1
    assert metrics["mae"] == pytest.approx(8 / 6)
    assert metrics["rmse"] == pytest.approx(np.sqrt(26 / 6))
    assert metrics["mae_per_dim"] == pytest.approx([1.0, 5 / 3])
    assert metrics["median_error"] == pytest.approx(1.0)
    assert metrics["mean_error"] == pytest.approx(2.0)


def test_classification_metrics_match_hand_computed_values() -> None:
    targets = np.array([0, 0, 0, 1, 1, 1, 1])
    predictions = np.array([0, 1, 0, 1, 1, 0, 1])
    metrics = classification_metrics(predictions, targets, 2)
    assert metrics["confusion_matrix"] == [[2, 1], [1, 3]]
    assert metrics["accuracy"] == pytest.approx(5 / 7)
    assert metrics["precision"] == pytest.approx(3 / 4)  # of class 1
    assert metrics["recall"] == pytest.approx(3 / 4)
    assert metrics["f1"] == pytest.approx(3 / 4)
    assert metrics["f1_per_class"] == pytest.approx([2 / 3, 3 / 4])
    never = classification_metrics(np.zeros(7, int), targets, 2)
    assert never["f1"] == 0.0 and never["precision"] == 0.0


def test_choose_threshold_maximises_f1_and_prefers_the_middle_on_ties() -> None:
    probabilities = np.array([0.1, 0.35, 0.4, 0.45, 0.7, 0.9])
    targets = np.array([0, 1, 0, 1, 1, 1])
    # p > 0.3: TP 4, FP 1 (0.4) → F1 8/9; p > 0.4: TP 3, FN 1 → F1 6/7; p > 0.2 ties 0.3.
    threshold, f1 = choose_threshold(probabilities, targets, candidates=(0.2, 0.3, 0.4, 0.5))
    assert threshold == 0.3 and f1 == pytest.approx(8 / 9)
    # Every threshold in [0.1, 0.35) gives the same F1: the one closest to 0.5 is chosen.
    threshold, _ = choose_threshold(probabilities, targets, candidates=(0.15, 0.2, 0.25))
    assert threshold == 0.25


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


def test_ensemble_probabilities_are_the_mean_of_its_members(cart_windows: Dataset) -> None:
    spec = ModelSpec("mlp", "classification", cart_windows.inputs.shape[1:], 2)
    torch.manual_seed(0)
    models = [PerceptionModel(spec), PerceptionModel(spec)]
    inputs = cart_windows.inputs[:50]
    members = [model.predict_probabilities(inputs) for model in models]
    assert members[0].shape == (50, 2)
    np.testing.assert_allclose(members[0].sum(axis=1), 1.0, rtol=1e-6)
    assert not np.allclose(members[0], members[1])
    np.testing.assert_allclose(
        ensemble_probabilities(models, inputs), (members[0] + members[1]) / 2, rtol=1e-6
    )
    assert (members[0].argmax(axis=1) == models[0].predict(inputs)).all()
    with pytest.raises(ValueError, match="classification"):
        PerceptionModel(ModelSpec("mlp", "regression", (8, 4), 1)).predict_probabilities(inputs)
