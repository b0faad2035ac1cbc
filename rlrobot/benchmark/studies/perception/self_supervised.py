"""Part 4 of the perception study: β-VAE features with few labels, and falls as anomalies.

- ``ssl_falls`` (4a, 4b): a β-VAE (MLP) learns the kicked ant's 4-observation windows without
  labels; a small head on its features (the posterior mean) and the supervised MLP of part 2
  learn "falls within 10 steps" from 1 %, 5 %, 20 % and 100 % of the training episodes'
  labels. A second β-VAE learns normal gait only (windows with no fall ahead): its
  reconstruction error, its negative ELBO and the Mahalanobis distance of its code are scored
  as fall detectors against the supervised classifier's probability, with ranking metrics at
  the data's fall rate and at 5 % and 1 % (positives subsampled).
- ``ssl_reach`` (4c): a β-VAE (NatureCNN encoder, mirrored decoder) learns Reach's 84×84
  images; a small head on its features and the NatureCNN of part 1a regress the target
  position from the same label fractions.

The label fractions are the first episodes of the training split; validation (early stopping,
model selection) and test are the full held-out splits for every arm. Each run is cached in
``work`` as in the other parts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rlrobot.benchmark.studies.perception import cached
from rlrobot.benchmark.studies.perception.falls import FALL_TRAINING, collect_fall_windows
from rlrobot.benchmark.studies.perception.reach import (
    REACH_FRAMES,
    collect_reach_images,
    train_size_series,
)
from rlrobot.errors import CheckpointError
from rlrobot.perception.dataset import Dataset
from rlrobot.perception.metrics import (
    average_precision,
    precision_recall_curve,
    resample_positive_rate,
    roc_auc,
)
from rlrobot.perception.models import AutoencoderModel, PerceptionModel, load_model
from rlrobot.perception.plots import plot_reconstructions
from rlrobot.perception.training import VAE_BETA, model_spec_for, train_model

LABEL_FRACTIONS = (0.01, 0.05, 0.2, 1.0)
FALL_LABEL = "about_to_fall"
REACH_LABEL = "target_position"
# 32-dimensional codes; the window VAE is as wide as part 2's MLP. β: the defaults per input,
# training.VAE_BETA (why: perception.md).
FALL_VAE = {"latent_dim": 32, "beta": VAE_BETA["vector"], "hidden_sizes": (256, 256)}
REACH_VAE = {"latent_dim": 32, "beta": VAE_BETA["image"]}
VAE_TRAINING = {"patience": 5, "learning_rate": 1e-3, "seed": 0}
HEAD = {"hidden_sizes": (64,)}  # the small head on the VAE's features: one hidden layer
REALISTIC_FALL_RATES = (0.05, 0.01)
RESAMPLES = 20  # draws of the kept positives per realistic rate


def encoded(dataset: Dataset, model: AutoencoderModel) -> Dataset:
    """The same samples, labels and splits with the autoencoder's features as inputs."""
    features = model.encode(dataset.inputs).astype(np.float32)
    card = {**dataset.card, "features": f"posterior mean of a {model.spec.objective}"}
    return Dataset(features, dataset.labels, dataset.episodes, dataset.splits, card)


def label_fraction_episodes(dataset: Dataset, fractions: tuple[float, ...]) -> list[int]:
    """Training episodes with labels for each fraction (at least one)."""
    n_episodes = dataset.split_sizes()["train"]["episodes"]
    return [max(1, round(fraction * n_episodes)) for fraction in fractions]


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The number-valued metrics (no per-class lists or matrices)."""
    return {k: v for k, v in metrics.items() if isinstance(v, int | float) and k != "n_samples"}


def label_fraction_series(
    dataset: Dataset,
    label: str,
    n_episodes: list[int],
    folder: Path,
    make_model: Callable[[Dataset], PerceptionModel],
    training: dict[str, Any],
    min_steps: int,
) -> list[dict[str, Any]]:
    """Train one model per number of labelled training episodes; cached rows of test metrics.

    Args:
        dataset: Inputs (raw or VAE features) with the label.
        label: The label to learn.
        n_episodes: Labelled training episodes per run (the first ones of the split).
        folder: Run folders go to ``folder/<n_train>``.
        make_model: Builds the untrained model for a subset.
        training: ``TrainConfig`` fields; ``epochs`` grows so that a run makes at least
            ``min_steps`` updates (a 1 % set is a few batches per epoch).
        min_steps: The fewest updates of a run.
    """
    rows = []
    for episodes in n_episodes:
        subset = dataset.limit_train_episodes(episodes)
        sizes = subset.split_sizes()["train"]
        min_epochs = math.ceil(min_steps * training["batch_size"] / sizes["samples"])
        epochs = max(training["epochs"], min_epochs)
        run_dir = folder / str(sizes["samples"])

        def train(subset: Dataset = subset, run_dir: Path = run_dir, epochs: int = epochs) -> dict:
            started = time.perf_counter()
            result = train_model(
                subset, label, make_model(subset), out_dir=run_dir, **{**training, "epochs": epochs}
            )
            return {
                "train_samples": subset.split_sizes()["train"]["samples"],
                "train_episodes": subset.split_sizes()["train"]["episodes"],
                "epochs_run": len(result.history),
                "best_epoch": result.best_epoch,
                "val": scalar_metrics(result.val_metrics),
                "test": scalar_metrics(result.test_metrics),
                "train_s": time.perf_counter() - started,
            }

        rows.append(cached(run_dir / "bench_row.json", train))
    return rows


def train_vae(dataset: Dataset, run_dir: Path, settings: dict[str, Any], **training: Any) -> dict:
    """Train (or reuse) a β-VAE on a dataset's inputs; return its summary row."""

    def train() -> dict[str, Any]:
        started = time.perf_counter()
        spec = model_spec_for(dataset, None, objective="vae", **settings)
        result = train_model(
            dataset, None, AutoencoderModel(spec), out_dir=run_dir, **VAE_TRAINING, **training
        )
        return {
            "train_samples": dataset.split_sizes()["train"]["samples"],
            "epochs_run": len(result.history),
            "best_epoch": result.best_epoch,
            "test": result.test_metrics,
            "train_s": time.perf_counter() - started,
        }

    return cached(run_dir / "bench_vae.json", train)


def load_vae(run_dir: Path) -> AutoencoderModel:
    """The β-VAE that ``train_vae`` saved in ``run_dir``."""
    model, _ = load_model(run_dir / "model")
    if not isinstance(model, AutoencoderModel):
        raise CheckpointError(f"{run_dir / 'model'} holds no autoencoder")
    return model


def head_model(subset: Dataset, label: str) -> PerceptionModel:
    """The small head on VAE features: an MLP with ``HEAD``'s hidden layer."""
    return PerceptionModel(model_spec_for(subset, label, "mlp", **HEAD))


def latent_projection(features: np.ndarray) -> np.ndarray:
    """The first two principal components of features ``(n, d)``, float ``(n, 2)``."""
    centred = features - features.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    return centred @ components[:2].T


def run_ssl_falls(budget: dict[str, Any], out: Path, work: Path) -> dict[str, Any]:
    """Parts 4a and 4b: few-label fall prediction on β-VAE features; falls as anomalies."""
    started = time.perf_counter()
    dataset = collect_fall_windows({"fall_episodes": budget["ssl_fall_episodes"]}, work)
    collect_s = time.perf_counter() - started
    folder = work / f"ssl_falls_{budget['ssl_fall_episodes']}"
    training = {"epochs": budget["ssl_vae_epochs"], "batch_size": 256}
    vae_row = train_vae(dataset, folder / "vae", FALL_VAE, **training)
    vae = load_vae(folder / "vae")
    n_episodes = label_fraction_episodes(dataset, LABEL_FRACTIONS)
    supervised = label_fraction_series(
        dataset,
        FALL_LABEL,
        n_episodes,
        folder / "supervised",
        lambda subset: PerceptionModel(model_spec_for(subset, FALL_LABEL)),
        FALL_TRAINING,
        budget["ssl_min_steps"],
    )
    features = encoded(dataset, vae)
    heads = label_fraction_series(
        features,
        FALL_LABEL,
        n_episodes,
        folder / "vae_head",
        lambda subset: head_model(subset, FALL_LABEL),
        FALL_TRAINING,
        budget["ssl_min_steps"],
    )
    anomaly = cached(
        folder / "bench_anomaly.json",
        lambda: fall_anomaly_scores(dataset, folder, budget, supervised_dir=folder / "supervised"),
    )
    plot_precision_recall(anomaly["curves"], out / "perception_ssl_falls_precision_recall.png")
    plot_vae_figures(
        vae,
        dataset.split("test"),
        features.split("test").labels[FALL_LABEL],
        out / "perception_ssl_falls",
        ("β-VAE of ant windows: 4 test windows (4 observations × 27 values)", 4),
        ("β-VAE codes of ant windows (test)", "fall within 10 steps (1) or not (0)"),
    )
    print(
        f"[ssl_falls] 5 % labels: VAE head F1 {heads[1]['test']['f1']:.3f}, supervised 100 % "
        f"{supervised[-1]['test']['f1']:.3f}",
        flush=True,
    )
    return {
        "vae": vae_row,
        "supervised": supervised,
        "vae_head": heads,
        "anomaly": {key: value for key, value in anomaly.items() if key != "curves"},
        "fractions": list(LABEL_FRACTIONS),
        "n_windows": len(dataset),
        "positive_fraction": float(dataset.labels[FALL_LABEL].mean()),
        "splits": dataset.card["splits"],
        "collect_s": collect_s,
        "settings": {
            "vae": FALL_VAE,
            "vae_training": {**VAE_TRAINING, **training},
            "min_steps": budget["ssl_min_steps"],
        },
        "head": HEAD,
        "training": FALL_TRAINING,
        "reused": bool(vae_row.get("reused")),
    }


def fall_anomaly_scores(
    dataset: Dataset, folder: Path, budget: dict[str, Any], supervised_dir: Path
) -> dict[str, Any]:
    """Part 4b: a β-VAE of normal gait scores falls; ranking metrics against the supervised MLP.

    The VAE learns the windows with no fall ahead (train and val splits); its scores on the
    test split are the reconstruction error, the negative ELBO (squared error summed over a
    window plus the KL term) and the Mahalanobis distance of its code under a Gaussian fitted
    to the normal training codes. The detector reported is the score with the best validation
    AUROC; the supervised MLP trained on all labels (4a) gives the reference probability.
    """
    labels = dataset.labels[FALL_LABEL]
    normal = dataset.select(labels == 0)
    training = {"epochs": budget["ssl_vae_epochs"], "batch_size": 256}
    vae_row = train_vae(normal, folder / "vae_normal", FALL_VAE, **training)
    vae = load_vae(folder / "vae_normal")
    codes = vae.encode(normal.split("train").inputs).astype(np.float64)
    code_mean = codes.mean(axis=0)
    precision_matrix = np.linalg.inv(np.cov(codes, rowvar=False) + 1e-6 * np.eye(codes.shape[1]))
    supervised_dir = sorted(supervised_dir.iterdir(), key=lambda path: int(path.name))[-1]
    supervised, _ = load_model(supervised_dir / "model")
    n_dimensions = int(np.prod(dataset.inputs.shape[1:]))

    def scores(split: Dataset) -> dict[str, np.ndarray]:
        errors = vae.sample_errors(split.inputs)
        offsets = vae.encode(split.inputs).astype(np.float64) - code_mean
        return {
            "reconstruction error": errors["reconstruction_mse"],
            "negative ELBO": errors["reconstruction_mse"] * n_dimensions + errors["kl"],
            "latent Mahalanobis": np.einsum("ni,ij,nj->n", offsets, precision_matrix, offsets),
            "supervised MLP": supervised.predict_probabilities(split.inputs)[:, 1],
        }

    val, test = dataset.split("val"), dataset.split("test")
    val_scores, test_scores = scores(val), scores(test)
    rng = np.random.default_rng(0)
    targets = test.labels[FALL_LABEL]
    # The same test subsets for every score: their metrics differ by the score alone.
    draws = {
        rate: [resample_positive_rate(targets, rate, rng) for _ in range(RESAMPLES)]
        for rate in REALISTIC_FALL_RATES
    }
    rows = []
    for name, score in test_scores.items():
        row = {
            "score": name,
            "val_auroc": roc_auc(val_scores[name], val.labels[FALL_LABEL]),
            "auroc": roc_auc(score, targets),
            "average_precision": {"data": average_precision(score, targets)},
            "precision_at_recall_0.5": {"data": precision_at_recall(score, targets, 0.5)},
        }
        for rate, subsets in draws.items():
            row["average_precision"][f"{rate:g}"] = float(
                np.mean([average_precision(score[i], targets[i]) for i in subsets])
            )
            row["precision_at_recall_0.5"][f"{rate:g}"] = float(
                np.mean([precision_at_recall(score[i], targets[i], 0.5) for i in subsets])
            )
        rows.append(row)
    detectors = [row for row in rows if row["score"] != "supervised MLP"]
    curves = {}
    for name, score in test_scores.items():
        precision, recall, _ = precision_recall_curve(score, targets)
        keep = np.unique(np.linspace(0, len(recall) - 1, 400).astype(int))  # enough to draw
        curves[name] = {"precision": precision[keep].tolist(), "recall": recall[keep].tolist()}
    return {
        "vae": vae_row,
        "rows": rows,
        "selected": max(detectors, key=lambda row: row["val_auroc"])["score"],
        "test_fall_rate": float(targets.mean()),
        "normal_train_windows": normal.split_sizes()["train"]["samples"],
        "supervised_run": supervised_dir.name,
        "curves": curves,
    }


def precision_at_recall(scores: np.ndarray, targets: np.ndarray, recall: float) -> float:
    """The best precision among thresholds that catch at least ``recall`` of the positives."""
    precisions, recalls, _ = precision_recall_curve(scores, targets)
    return float(precisions[recalls >= recall].max())


def run_ssl_reach(budget: dict[str, Any], out: Path, work: Path) -> dict[str, Any]:
    """Part 4c: target position from β-VAE features of Reach's 84×84 images, few labels."""
    dataset, collect_s = collect_reach_images(
        work / f"ssl_reach_images_{budget['ssl_reach_episodes']}.npz",
        "rlrobot/Reach-v0",
        budget["ssl_reach_episodes"],
        **REACH_FRAMES,
    )
    folder = work / f"ssl_reach_{budget['ssl_reach_episodes']}"
    training = {"epochs": budget["ssl_vae_epochs"], "batch_size": 64}
    vae_row = train_vae(dataset, folder / "vae", REACH_VAE, **training)
    vae = load_vae(folder / "vae")
    n_episodes = label_fraction_episodes(dataset, LABEL_FRACTIONS)
    supervised_budget = {
        "ssl_reach_train_episodes": tuple(n_episodes),
        "ssl_reach_epochs": budget["ssl_reach_epochs"],
        "ssl_reach_min_steps": budget["ssl_reach_min_steps"],
    }
    supervised, _ = train_size_series(dataset, supervised_budget, "ssl_reach", folder)
    features = encoded(dataset, vae)
    heads = label_fraction_series(
        features,
        REACH_LABEL,
        n_episodes,
        folder / "vae_head",
        lambda subset: head_model(subset, REACH_LABEL),
        {"epochs": 100, "batch_size": 64, "patience": 20, "seed": 0},
        budget["ssl_min_steps"],
    )
    plot_vae_figures(
        vae,
        dataset.split("test"),
        dataset.split("test").labels[REACH_LABEL][:, 0],
        out / "perception_ssl_reach",
        ("β-VAE of Reach's 84×84 images: test images (top), reconstructions (bottom)", 8),
        ("β-VAE codes of Reach images (test)", "target x [m]"),
    )
    print(
        f"[ssl_reach] 5 % labels: VAE head {100 * heads[1]['test']['median_error']:.1f} cm, "
        f"supervised 100 % {100 * supervised[-1]['median_error']:.1f} cm",
        flush=True,
    )
    return {
        "vae": vae_row,
        "supervised": supervised,
        "vae_head": heads,
        "fractions": list(LABEL_FRACTIONS),
        "splits": dataset.card["splits"],
        "collect_s": collect_s,
        "settings": {
            "vae": REACH_VAE,
            "vae_training": {**VAE_TRAINING, **training},
            "min_steps": budget["ssl_min_steps"],
        },
        "head": HEAD,
        "reused": bool(vae_row.get("reused")),
    }


def plot_vae_figures(
    vae: AutoencoderModel,
    test: Dataset,
    colour: np.ndarray,
    prefix: Path,
    reconstructions: tuple[str, int],
    latents: tuple[str, str],
) -> None:
    """Write ``<prefix>_reconstructions.png`` and ``<prefix>_latents.png`` of test samples.

    Args:
        vae: The β-VAE.
        test: The test samples.
        colour: ``(n,)`` value per test sample colouring the latent plot.
        prefix: Path prefix of the two PNGs.
        reconstructions: Title and number of samples of the reconstruction figure.
        latents: Title and colour-bar label of the latent plot.
    """
    title, n_shown = reconstructions
    pairs = np.stack(vae.reconstruct(test.inputs[:n_shown]), axis=1)
    plot_reconstructions(pairs, prefix.with_name(f"{prefix.name}_reconstructions.png"), title)
    points = latent_projection(vae.encode(test.inputs))
    plot_latents(points, colour, *latents, prefix.with_name(f"{prefix.name}_latents.png"))


def plot_precision_recall(curves: dict[str, dict[str, list[float]]], path: Path) -> None:
    """Precision against recall of each fall score on the test windows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5.5, 4))
    for name, curve in curves.items():
        axis.plot(curve["recall"], curve["precision"], label=name)
    axis.set(
        xlabel="recall (falls caught)",
        ylabel="precision",
        title="Falls within 10 steps: precision-recall (test)",
        xlim=(0, 1),
        ylim=(0, 1.02),
    )
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_latents(
    points: np.ndarray, colour: np.ndarray, title: str, colour_label: str, path: Path
) -> None:
    """Test samples' codes on their first two principal components, coloured by a label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5.5, 4))
    order = np.argsort(colour, kind="stable")  # the highest values (falls) drawn on top
    image = axis.scatter(
        points[order, 0], points[order, 1], c=colour[order], s=3, cmap="viridis", alpha=0.6
    )
    axis.set(xlabel="principal component 1", ylabel="principal component 2", title=title)
    figure.colorbar(image, ax=axis, label=colour_label)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
