"""Metrics of perception models in the labels' own units, each beside a trivial baseline.

Regression: MAE, RMSE and the median Euclidean error in the label's units; classification:
accuracy, precision, recall, F1 and the confusion matrix. ``compute_metrics`` scores a model
and the trivial baseline (train-set mean / majority class, ``trivial_baseline``) alike.

An autoencoder (``AutoencoderModel``) is scored by its reconstruction error in the
preprocessed space against the train-mean input's (``reconstruction_metrics``), and as an
anomaly detector by ranking metrics of its per-sample scores: ``roc_auc`` and
``average_precision`` (the area under the precision-recall curve, which depends on the
positive rate; ``resample_positive_rate`` sets that rate).

For an event detector, ``ensemble_probabilities`` averages the class probabilities of models
trained alike with different seeds, and ``choose_threshold`` picks the decision threshold on the
event probability with the best F1, to be chosen on the validation split and then applied,
unchanged, to the test split.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from rlrobot.perception.dataset import Dataset
from rlrobot.perception.models import AutoencoderModel, PerceptionModel, run_in_batches

N_RECONSTRUCTIONS_SHOWN = 8  # reconstruction pairs compute_metrics returns (for the figure)


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


def reconstruction_metrics(
    model: AutoencoderModel, dataset: Dataset, baseline: np.ndarray, batch_size: int = 256
) -> tuple[dict[str, Any], np.ndarray]:
    """Reconstruction error of an autoencoder and of the constant ``baseline`` reconstruction.

    Args:
        model: The autoencoder.
        dataset: Samples to score.
        baseline: The train-set mean of the preprocessed inputs (the best constant).
        batch_size: Samples per forward pass.

    Returns:
        ``(metrics, pairs)``: ``reconstruction_mse`` (per dimension, preprocessed units),
        ``baseline_reconstruction_mse``, the mean ``kl`` per sample (nats, 0 for an AE),
        ``n_samples``; ``pairs`` is float ``(m, 2, *preprocessed shape)``, (input,
        reconstruction) of the first ``m ≤ N_RECONSTRUCTIONS_SHOWN`` samples.
    """
    errors = model.sample_errors(dataset.inputs, batch_size)
    constant = torch.as_tensor(baseline, dtype=torch.float32)

    def baseline_errors(batch: torch.Tensor) -> torch.Tensor:
        return (model.preprocess(batch) - constant).pow(2).flatten(1).mean(dim=1)

    baseline_mse = run_in_batches(model, dataset.inputs, batch_size, baseline_errors)
    targets, reconstructions = model.reconstruct(dataset.inputs[:N_RECONSTRUCTIONS_SHOWN])
    metrics = {
        "reconstruction_mse": float(errors["reconstruction_mse"].mean()),
        "baseline_reconstruction_mse": float(baseline_mse.mean()),
        "kl": float(errors["kl"].mean()),
        "n_samples": len(dataset),
    }
    return metrics, np.stack([targets, reconstructions], axis=1)


def roc_auc(scores: np.ndarray, targets: np.ndarray) -> float:
    """Area under the ROC curve: the probability that a positive outranks a negative.

    Computed from ranks (the Mann-Whitney U statistic); tied scores count one half.

    Args:
        scores: ``(n,)`` scores, higher meaning "more likely positive".
        targets: ``(n,)`` true classes 0/1, both present.
    """
    scores, targets = np.asarray(scores, np.float64), np.asarray(targets).astype(bool)
    n_positive, n_negative = int(targets.sum()), int((~targets).sum())
    if n_positive == 0 or n_negative == 0:
        raise ValueError("roc_auc needs both classes among the targets")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    _, inverse = np.unique(scores, return_inverse=True)
    tied_mean = np.bincount(inverse, weights=ranks) / np.bincount(inverse)  # average ranks
    ranks = tied_mean[inverse]
    u_statistic = ranks[targets].sum() - n_positive * (n_positive + 1) / 2
    return float(u_statistic / (n_positive * n_negative))


def precision_recall_curve(
    scores: np.ndarray, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision and recall of "positive when score ≥ t" for every distinct score ``t``.

    Returns:
        ``(precision, recall, thresholds)``, thresholds in decreasing order.
    """
    scores, targets = np.asarray(scores, np.float64), np.asarray(targets).astype(bool)
    if not targets.any():
        raise ValueError("a precision-recall curve needs at least one positive target")
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores, sorted_targets = scores[order], targets[order]
    last_of_each = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(scores) - 1]
    true_positives = np.cumsum(sorted_targets)[last_of_each]
    predicted = last_of_each + 1
    return true_positives / predicted, true_positives / targets.sum(), sorted_scores[last_of_each]


def average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """Area under the precision-recall curve as ``Σ_k (R_k − R_{k−1}) P_k`` (step-wise)."""
    precision, recall, _ = precision_recall_curve(scores, targets)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def resample_positive_rate(
    targets: np.ndarray, positive_rate: float, rng: np.random.Generator
) -> np.ndarray:
    """Indices of all negatives and a random subset of positives making ``positive_rate``.

    Precision and average precision depend on how rare the event is: this sets the rate of a
    test set (e.g. to 1 % falls) without changing what each score is.

    Args:
        targets: ``(n,)`` classes 0/1.
        positive_rate: Wanted fraction of positives, in (0, current rate].
        rng: The generator that draws the kept positives.
    """
    targets = np.asarray(targets).astype(bool)
    negatives, positives = np.flatnonzero(~targets), np.flatnonzero(targets)
    current = len(positives) / len(targets)
    if not 0 < positive_rate <= current:
        raise ValueError(f"positive_rate must be in (0, {current:.4f}], got {positive_rate}")
    n_kept = max(1, round(positive_rate * len(negatives) / (1 - positive_rate)))
    kept = rng.choice(positives, size=min(n_kept, len(positives)), replace=False)
    return np.sort(np.r_[negatives, kept])


def compute_metrics(
    model: PerceptionModel | AutoencoderModel,
    dataset: Dataset,
    label: str | None,
    baseline: np.ndarray | int,
    batch_size: int = 256,
) -> tuple[dict[str, Any], np.ndarray]:
    """Metrics of ``model`` on ``dataset`` and of the constant ``baseline`` prediction.

    Args:
        model: The model.
        dataset: Samples to score (e.g. ``dataset.split("test")``).
        label: The label name (None for an autoencoder).
        baseline: Train-set label mean ``(k,)`` (regression), majority class
            (classification) or mean preprocessed input (reconstruction).
        batch_size: Samples per forward pass.

    Returns:
        ``(metrics, predictions)``; every metric has a ``baseline_<name>`` twin. For an
        autoencoder, ``reconstruction_metrics``' metrics and pairs.
    """
    if isinstance(model, AutoencoderModel):
        return reconstruction_metrics(model, dataset, np.asarray(baseline), batch_size)
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
