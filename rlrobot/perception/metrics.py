"""Metrics of perception models in the labels' own units, each beside a trivial baseline.

Regression: MAE, RMSE and the median Euclidean error in the label's units; classification:
accuracy, precision, recall, F1 and the confusion matrix. ``compute_metrics`` scores a model
and the trivial baseline (train-set mean / majority class, ``trivial_baseline``) alike.

For an event detector, ``ensemble_probabilities`` averages the class probabilities of models
trained alike with different seeds, and ``choose_threshold`` picks the decision threshold on the
event probability with the best F1, to be chosen on the validation split and then applied,
unchanged, to the test split.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rlrobot.perception.dataset import Dataset
from rlrobot.perception.models import PerceptionModel


def trivial_baseline(targets: np.ndarray, is_regression: bool, n_classes: int) -> np.ndarray | int:
    """The constant prediction to beat: mean label ``(k,)`` or the majority class."""
    if is_regression:
        return targets.mean(axis=0)
    return int(np.bincount(targets, minlength=n_classes).argmax())


def regression_metrics(
    predictions: np.ndarray, targets: np.ndarray, units: str = ""
) -> dict[str, Any]:
    """MAE, RMSE (overall and per component) and Euclidean error statistics, in label units.

    Args:
        predictions: ``(n, k)`` predictions.
        targets: ``(n, k)`` ground truth.
        units: The label's units, recorded alongside.

    Returns:
        ``mae``, ``rmse``, ``mae_per_dim``, ``rmse_per_dim``, ``median_error`` and
        ``mean_error`` (norm of the error vector per sample), ``units``.
    """
    errors = np.asarray(predictions, np.float64) - np.asarray(targets, np.float64)
    norms = np.linalg.norm(errors, axis=1)
    return {
        "mae": float(np.abs(errors).mean()),
        "rmse": float(np.sqrt((errors**2).mean())),
        "mae_per_dim": np.abs(errors).mean(axis=0).tolist(),
        "rmse_per_dim": np.sqrt((errors**2).mean(axis=0)).tolist(),
        "median_error": float(np.median(norms)),
        "mean_error": float(norms.mean()),
        "units": units,
    }


def confusion_matrix(predictions: np.ndarray, targets: np.ndarray, n_classes: int) -> np.ndarray:
    """Return int64 ``(n_classes, n_classes)`` counts: row = true class, column = predicted."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(targets), np.asarray(predictions)), 1)
    return matrix


def classification_metrics(
    predictions: np.ndarray, targets: np.ndarray, n_classes: int
) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/F1, macro F1 and the confusion matrix.

    ``f1``, ``precision`` and ``recall`` are those of class 1 for two classes (the event class)
    and macro averages otherwise. A class never predicted has precision 0 (likewise recall/F1).
    """
    matrix = confusion_matrix(predictions, targets, n_classes)
    true_positives = np.diag(matrix).astype(np.float64)
    predicted, actual = matrix.sum(axis=0), matrix.sum(axis=1)
    precision = np.divide(true_positives, predicted, out=np.zeros(n_classes), where=predicted > 0)
    recall = np.divide(true_positives, actual, out=np.zeros(n_classes), where=actual > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros(n_classes), where=total > 0)
    summary = 1 if n_classes == 2 else slice(None)
    return {
        "accuracy": float(true_positives.sum() / max(1, matrix.sum())),
        "precision": float(np.mean(precision[summary])),
        "recall": float(np.mean(recall[summary])),
        "f1": float(np.mean(f1[summary])),
        "macro_f1": float(f1.mean()),
        "precision_per_class": precision.tolist(),
        "recall_per_class": recall.tolist(),
        "f1_per_class": f1.tolist(),
        "confusion_matrix": matrix.tolist(),
    }


def ensemble_probabilities(
    models: Sequence[PerceptionModel], inputs: np.ndarray, batch_size: int = 256
) -> np.ndarray:
    """Mean class probabilities of several classifiers (an ensemble), float ``(n, n_classes)``.

    Averaging the probabilities of models that differ only in their seed (initial weights,
    minibatch order) cancels part of each model's variance (Lakshminarayanan et al., 2017).
    """
    if not models:
        raise ValueError("the ensemble needs at least one model")
    return np.mean([model.predict_probabilities(inputs, batch_size) for model in models], axis=0)


def choose_threshold(
    event_probabilities: np.ndarray,
    targets: np.ndarray,
    candidates: Sequence[float] = tuple(np.round(np.arange(0.05, 0.951, 0.025), 3)),
) -> tuple[float, float]:
    """The decision threshold (event when ``p > threshold``) with the best F1 of the event class.

    Choose it on the validation split, then apply it unchanged to the test split. Of thresholds
    with equal F1, the one closest to 0.5 wins.

    Args:
        event_probabilities: ``(n,)`` probability of class 1 (the event).
        targets: ``(n,)`` true classes 0/1.
        candidates: Thresholds to try, in (0, 1).

    Returns:
        ``(threshold, f1)``.
    """
    probabilities, targets = np.asarray(event_probabilities), np.asarray(targets)
    scores = [
        (classification_metrics((probabilities > t).astype(np.int64), targets, 2)["f1"], t)
        for t in candidates
    ]
    f1, threshold = max(scores, key=lambda score: (score[0], -abs(score[1] - 0.5)))
    return float(threshold), float(f1)


def compute_metrics(
    model: PerceptionModel,
    dataset: Dataset,
    label: str,
    baseline: np.ndarray | int,
    batch_size: int = 256,
) -> tuple[dict[str, Any], np.ndarray]:
    """Metrics of ``model`` on ``dataset`` and of the constant ``baseline`` prediction.

    Args:
        model: The model.
        dataset: Samples to score (e.g. ``dataset.split("test")``).
        label: The label name.
        baseline: Train-set label mean ``(k,)`` (regression) or majority class (classification).
        batch_size: Samples per forward pass.

    Returns:
        ``(metrics, predictions)``; every metric has a ``baseline_<name>`` twin.
    """
    info = dataset.label_info(label)
    targets = dataset.labels[label]
    predictions = model.predict(dataset.inputs, batch_size)
    constant = np.broadcast_to(baseline, targets.shape)
    if model.is_regression:
        metrics = regression_metrics(predictions, targets, info.get("units", ""))
        baseline_metrics = regression_metrics(constant, targets, info.get("units", ""))
    else:
        n_classes = model.spec.output_dim
        metrics = classification_metrics(predictions, targets, n_classes)
        baseline_metrics = classification_metrics(constant, targets, n_classes)
    metrics.update({f"baseline_{k}": v for k, v in baseline_metrics.items() if k != "units"})
    metrics["n_samples"] = len(targets)
    return metrics, predictions
