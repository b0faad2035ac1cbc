"""Metrics: hand-computed values, thresholds, ensembles, the trivial baseline, ranking scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlrobot.perception.dataset import Dataset
from rlrobot.perception.metrics import (
    average_precision,
    choose_threshold,
    classification_metrics,
    ensemble_probabilities,
    precision_recall_curve,
    regression_metrics,
    resample_positive_rate,
    roc_auc,
    trivial_baseline,
)
from rlrobot.perception.models import ModelSpec, PerceptionModel


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


def test_trivial_baseline_is_the_mean_or_the_majority_class() -> None:
    targets = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 8.0]])
    np.testing.assert_allclose(trivial_baseline(targets, True, 0), [2.0, 4.0])
    assert trivial_baseline(np.array([2, 0, 2, 1]), False, 3) == 2
    assert trivial_baseline(np.array([1, 1]), False, 3) == 1


def test_roc_auc_is_the_fraction_of_positive_negative_pairs_ranked_right() -> None:
    # Positive 0.35 beats negative 0.1 but not 0.4; positive 0.8 beats both: 3 of 4 pairs.
    assert roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    assert roc_auc(np.array([0.5, 0.5]), np.array([0, 1])) == 0.5  # a tie counts one half
    assert roc_auc(np.array([3.0, 2.0, 1.0]), np.array([1, 1, 0])) == 1.0
    with pytest.raises(ValueError, match="both classes"):
        roc_auc(np.array([0.1, 0.2]), np.array([1, 1]))


def test_precision_recall_and_average_precision_match_hand_computed_values() -> None:
    scores, targets = np.array([0.8, 0.4, 0.35, 0.1]), np.array([1, 0, 1, 0])
    precision, recall, thresholds = precision_recall_curve(scores, targets)
    np.testing.assert_allclose(precision, [1.0, 0.5, 2 / 3, 0.5])
    np.testing.assert_allclose(recall, [0.5, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(thresholds, [0.8, 0.4, 0.35, 0.1])
    # AP = Σ ΔR·P = 0.5·1 + 0.5·(2/3).
    assert average_precision(scores, targets) == pytest.approx(0.5 + 1 / 3)
    # Tied scores are one threshold: both samples enter together.
    precision, recall, _ = precision_recall_curve(np.array([0.9, 0.9, 0.1]), np.array([1, 0, 1]))
    np.testing.assert_allclose(precision, [0.5, 2 / 3])
    np.testing.assert_allclose(recall, [0.5, 1.0])


def test_resample_positive_rate_keeps_every_negative_and_enough_positives() -> None:
    targets = np.r_[np.zeros(10, int), np.ones(10, int)]
    indices = resample_positive_rate(targets, 1 / 6, np.random.default_rng(0))
    assert len(indices) == 12 and targets[indices].sum() == 2  # 2 / 12 = 1/6
    assert set(np.flatnonzero(targets == 0)) <= set(indices)
    with pytest.raises(ValueError, match="positive_rate must be in"):
        resample_positive_rate(targets, 0.6, np.random.default_rng(0))
