"""Plots and files of a perception model's training and evaluation (PNG via matplotlib's Agg).

Loss curves per epoch, predicted-vs-true scatters for regression, confusion matrices for
classification, inputs above their reconstructions for autoencoders, and
``write_evaluation``, which writes a split's metrics JSON with its plot.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from rlrobot.common.files import atomic_write_bytes
from rlrobot.perception.dataset import Dataset


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_loss_curves(history: list[dict[str, float]], best_epoch: int, path: Path) -> Path:
    """Plot train and validation loss per epoch (log scale), marking the restored epoch."""
    plt = _pyplot()
    epochs = [row["epoch"] for row in history]
    figure, axis = plt.subplots(figsize=(5, 3.5))
    axis.plot(epochs, [row["train/loss"] for row in history], label="train")
    axis.plot(epochs, [row["val/loss"] for row in history], label="validation")
    axis.axvline(best_epoch, color="grey", linestyle=":", label=f"best (epoch {best_epoch})")
    axis.set(xlabel="epoch", ylabel="loss", yscale="log", title="Loss curves")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def plot_predicted_vs_true(
    predictions: np.ndarray, targets: np.ndarray, label: str, units: str, path: Path
) -> Path:
    """Scatter predicted against true value for every label component, with ``y = x``."""
    plt = _pyplot()
    k = targets.shape[1]
    figure, axes = plt.subplots(1, k, figsize=(3.2 * k, 3.3), squeeze=False)
    for index, axis in enumerate(axes[0]):
        true, predicted = targets[:, index], predictions[:, index]
        low, high = float(min(true.min(), predicted.min())), float(max(true.max(), predicted.max()))
        axis.plot([low, high], [low, high], color="grey", linewidth=1)
        axis.scatter(true, predicted, s=4, alpha=0.5)
        mae = float(np.abs(predicted - true).mean())
        axis.set(
            xlabel=f"true [{units}]",
            ylabel=f"predicted [{units}]",
            title=f"{label}[{index}]  MAE {mae:.3g} {units}",
        )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def plot_confusion_matrix(matrix: np.ndarray, classes: list[str], path: Path) -> Path:
    """Draw a confusion matrix (rows: true class, columns: predicted) with counts."""
    plt = _pyplot()
    matrix = np.asarray(matrix)
    figure, axis = plt.subplots(figsize=(1.6 + 1.3 * len(classes), 1.4 + 1.1 * len(classes)))
    axis.imshow(matrix, cmap="Blues")
    for (row, column), count in np.ndenumerate(matrix):
        color = "white" if count > matrix.max() / 2 else "black"
        axis.text(column, row, str(count), ha="center", va="center", color=color)
    ticks = range(len(classes))
    axis.set_xticks(ticks, classes, rotation=20, ha="right")
    axis.set_yticks(ticks, classes)
    axis.set(xlabel="predicted", ylabel="true", title="Confusion matrix")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def plot_reconstructions(
    pairs: np.ndarray, path: Path, title: str = "Inputs and their reconstructions"
) -> Path:
    """Draw inputs (top row) above their reconstructions (bottom row).

    Args:
        pairs: ``(m, 2, C, H, W)`` images in [0, 1], or ``(m, 2, n_features)`` standardised
            vectors (drawn as one heat-map row per sample, as ``input / reconstruction``).
        path: The PNG to write.
        title: Figure title.
    """
    plt = _pyplot()
    pairs = np.asarray(pairs)
    if pairs.ndim == 5:
        m = len(pairs)
        figure, axes = plt.subplots(2, m, figsize=(1.6 * m, 3.6), squeeze=False)
        for column in range(m):
            for row, name in enumerate(("input", "reconstruction")):
                axis = axes[row, column]
                axis.imshow(np.clip(pairs[column, row].transpose(1, 2, 0), 0.0, 1.0))
                axis.set_xticks([])
                axis.set_yticks([])
                if column == 0:
                    axis.set_ylabel(name)
    else:
        figure, axis = plt.subplots(figsize=(8, 1.2 + 0.45 * len(pairs) * 2))
        rows = pairs.reshape(-1, pairs.shape[-1])  # input, reconstruction, input, …
        limit = float(np.abs(rows).max()) or 1.0
        image = axis.imshow(rows, aspect="auto", cmap="coolwarm", vmin=-limit, vmax=limit)
        names = [f"#{i + 1} {kind}" for i in range(len(pairs)) for kind in ("input", "output")]
        axis.set_yticks(range(len(rows)), names, fontsize=8)
        for boundary in range(2, len(rows), 2):  # a line between samples
            axis.axhline(boundary - 0.5, color="black", linewidth=1.5)
        axis.set_xlabel("input dimension (standardised value)")
        figure.colorbar(image, ax=axis)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def write_evaluation(
    metrics: dict[str, Any],
    predictions: np.ndarray,
    dataset: Dataset,
    label: str | None,
    out_dir: Path,
    prefix: str = "test",
) -> dict[str, Path]:
    """Write ``<prefix>_metrics.json`` and the task's plot (predicted-vs-true, confusion, or,
    for an autoencoder (``label`` None, ``predictions`` its pairs), reconstructions)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"metrics": out_dir / f"{prefix}_metrics.json"}
    atomic_write_bytes(files["metrics"], json.dumps(metrics, indent=2).encode())
    if label is None:
        files["reconstructions"] = plot_reconstructions(
            predictions, out_dir / f"{prefix}_reconstructions.png"
        )
        return files
    info = dataset.label_info(label)
    if info["task"] == "regression":
        files["predicted_vs_true"] = plot_predicted_vs_true(
            predictions,
            dataset.labels[label],
            label,
            info.get("units", ""),
            out_dir / f"{prefix}_predicted_vs_true.png",
        )
    else:
        files["confusion_matrix"] = plot_confusion_matrix(
            np.asarray(metrics["confusion_matrix"]),
            info["classes"],
            out_dir / f"{prefix}_confusion_matrix.png",
        )
    return files
