"""One training loop for perception models, supervised or self-supervised.

``train_model`` fits a ``PerceptionModel`` to one label of a ``Dataset``, or an
``AutoencoderModel`` (AE, β-VAE) to its inputs alone: AdamW on shuffled
minibatches of the train split, a learning-rate schedule, validation after every epoch with
early stopping on the validation loss or F1 (the best weights are restored), per-epoch metrics
(``progress.csv``), a tqdm bar on a terminal, and at the end test metrics, PNG plots and a
checkpoint. Regression uses MSE on standardised labels, classification (optionally
class-balanced) cross-entropy, reconstruction ``vae_loss``; the metrics (``metrics.py``) and
plots (``plots.py``) are in the label's units, each beside the trivial baseline's value
(train-set mean / majority class / mean input).
``evaluate_model`` scores a trained model on one split.
"""

from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.nn import functional as F

from rlrobot.common.config import COUNT, SEED, BaseConfig, option
from rlrobot.common.logger import Logger
from rlrobot.common.progress import make_progress_bar
from rlrobot.envs.checks import NON_NEGATIVE, POSITIVE
from rlrobot.errors import DatasetError
from rlrobot.perception.dataset import Dataset
from rlrobot.perception.metrics import compute_metrics, trivial_baseline
from rlrobot.perception.models import (
    OBJECTIVES,
    AutoencoderModel,
    ModelSpec,
    PerceptionModel,
    make_model,
    save_model,
)
from rlrobot.perception.plots import plot_loss_curves, write_evaluation

Model = PerceptionModel | AutoencoderModel


@dataclass
class TrainConfig(BaseConfig):
    """Hyperparameters of ``train_model``."""

    epochs: int = option(30, "maximum passes over the train split", COUNT)
    batch_size: int = option(64, "minibatch size", COUNT)
    learning_rate: float = option(1e-3, "AdamW step size (the schedule's peak)", POSITIVE)
    weight_decay: float = option(1e-4, "AdamW decoupled weight decay", NON_NEGATIVE)
    lr_schedule: Literal["cosine", "constant", "plateau"] = option(
        "cosine", "cosine: anneal to 0 over `epochs`; plateau: ×0.3 after 3 flat val epochs"
    )
    patience: int = option(8, "stop after this many epochs without a better monitored value", COUNT)
    monitor: Literal["loss", "f1"] = option(
        "loss", "early stopping and model selection: lowest val loss or highest val F1 (classes)"
    )
    class_weights: Literal["balanced", "none"] = option(
        "balanced", "classification: weight the loss by inverse train class frequency"
    )
    eval_batch_size: int = option(256, "batch size of validation and test passes", COUNT)
    seed: int = option(0, "seeds the initialisation and the minibatch order", SEED)


@dataclass
class TrainResult:
    """What ``train_model`` returns.

    Attributes:
        model: The model with the best validation weights, in eval mode.
        history: One dict per epoch (``epoch``, ``train/loss``, ``val/loss``, ``val/…``).
        best_epoch: Epoch (1-based) of the restored weights.
        val_metrics: Metrics of the best model on the validation split.
        test_metrics: Metrics on the test split (each with its ``baseline_`` counterpart).
        files: Paths written (checkpoint, plots, CSV, metrics JSON) by name.
    """

    model: Model
    history: list[dict[str, float]]
    best_epoch: int
    val_metrics: dict[str, Any]
    test_metrics: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)


# A VAE's default β by input (docs/benchmarks/perception.md, part 4): the plain VAE's 1 lets
# the KL term win over the reconstruction of images in [0, 1] (the code collapses); 0.1 suits
# standardised proprioceptive windows.
VAE_BETA = {"image": 0.01, "vector": 0.1}


def model_spec_for(
    dataset: Dataset,
    label: str | None,
    architecture: str | None = None,
    objective: str = "supervised",
    latent_dim: int = 32,
    **spec_kwargs: Any,
) -> ModelSpec:
    """Return the ``ModelSpec`` that fits a dataset's inputs and a label (or no label).

    Args:
        dataset: The dataset.
        label: The label to learn (supervised), or None (autoencoders).
        architecture: One of ``models.ARCHITECTURES``; default: NatureCNN
            for uint8 images, MLP otherwise.
        objective: ``"supervised"``, ``"ae"`` or ``"vae"`` (``models.OBJECTIVES``).
        latent_dim: Dimensions of an autoencoder's code.
        **spec_kwargs: Other ``ModelSpec`` fields (``features_dim``, ``beta`` …); a VAE without
            ``beta`` takes ``VAE_BETA`` for its inputs.
    """
    is_image = dataset.inputs.dtype == np.uint8 and dataset.inputs.ndim == 4
    if architecture is None:
        architecture = "nature_cnn" if is_image else "mlp"
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    if objective != "supervised":
        if label is not None:
            raise ValueError(f"the {objective} objective learns without a label, got {label!r}")
        variational = objective == "vae"
        if variational and "beta" not in spec_kwargs:
            spec_kwargs["beta"] = VAE_BETA["image" if is_image else "vector"]
        return ModelSpec(
            architecture,
            "reconstruction",
            dataset.inputs.shape[1:],
            latent_dim,
            variational=variational,
            **spec_kwargs,
        )
    if label is None:
        raise ValueError("the supervised objective needs a label")
    info = dataset.label_info(label)
    if info["task"] == "regression":
        output_dim = dataset.labels[label].shape[1]
    else:
        output_dim = len(info["classes"])
    return ModelSpec(
        architecture, info["task"], dataset.inputs.shape[1:], output_dim, **spec_kwargs
    )


def mean_preprocessed_input(model: AutoencoderModel, train: Dataset) -> np.ndarray:
    """The train split's mean input after the model's preprocessing: the best constant."""
    # Both preprocessings are affine, so the image of the mean input is the mean of the images.
    mean_input = torch.as_tensor(train.inputs.mean(axis=0, dtype=np.float64)[None])
    with torch.no_grad():
        return model.preprocess(mean_input)[0].float().numpy()


def _fit_normalisation(model: Model, train: Dataset, label: str | None) -> np.ndarray | int:
    """Set input/label standardisation from the train split; return the trivial baseline."""
    if model.spec.architecture == "mlp":
        flat = train.inputs.reshape(len(train), -1).astype(np.float64)
        model.preprocess.mean.copy_(torch.as_tensor(flat.mean(axis=0)))
        model.preprocess.std.copy_(torch.as_tensor(flat.std(axis=0) + 1e-6))
    if isinstance(model, AutoencoderModel):
        mean_input = mean_preprocessed_input(model, train)
        model.start_at_mean(mean_input)
        return mean_input
    targets = train.labels[label]
    if model.is_regression:
        model.target_mean.copy_(torch.as_tensor(targets.mean(axis=0)))
        model.target_std.copy_(torch.as_tensor(targets.std(axis=0) + 1e-8))
    return trivial_baseline(targets, model.is_regression, model.spec.output_dim)


def _loss_function(model: Model, train: Dataset, label: str | None, config: TrainConfig) -> Any:
    """Return ``(inputs, targets) -> loss`` for the model's task."""
    if isinstance(model, AutoencoderModel):

        def reconstruction_loss(inputs: torch.Tensor, _: torch.Tensor) -> torch.Tensor:
            return model.loss(inputs)

        return reconstruction_loss
    if model.is_regression:

        def regression_loss(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            return F.mse_loss(model(inputs), (targets - model.target_mean) / model.target_std)

        return regression_loss
    weights = None
    if config.class_weights == "balanced":
        counts = np.bincount(train.labels[label], minlength=model.spec.output_dim)
        balanced = len(train) / (model.spec.output_dim * np.maximum(counts, 1))
        weights = torch.as_tensor(balanced, dtype=torch.float32)

    def classification_loss(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(inputs), targets, weight=weights)

    return classification_loss


def _mean_loss(
    model: Model,
    loss_function: Any,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    batch_size: int,
) -> float:
    model.eval()
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(inputs), batch_size):
            batch = slice(start, start + batch_size)
            total += float(loss_function(inputs[batch], targets[batch])) * len(inputs[batch])
    return total / max(1, len(inputs))


def _make_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int
) -> Any:
    if config.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=config.epochs * steps_per_epoch
        )
    if config.lr_schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.3, patience=3)
    return None


def train_model(
    dataset: Dataset,
    label: str | None,
    model: Model | None = None,
    config: TrainConfig | None = None,
    out_dir: str | os.PathLike | None = None,
    progress_bar: bool = False,
    **config_fields: Any,
) -> TrainResult:
    """Train a perception model on one label of a dataset, or an autoencoder on its inputs.

    Args:
        dataset: A dataset with non-empty train and val splits (test is optional).
        label: Which label to learn; None for an ``AutoencoderModel``, which needs none.
        model: The model to train; default ``PerceptionModel(model_spec_for(dataset, label))``.
        config: Training hyperparameters; ``config_fields`` override its fields.
        out_dir: If given, receives ``model/`` (checkpoint), ``progress.csv``,
            ``loss_curves.png``, ``test_metrics.json`` and the test plot.
        progress_bar: Show a tqdm bar over epochs (on a terminal, outside CI).
        **config_fields: Any ``TrainConfig`` field.

    Returns:
        The ``TrainResult`` with the best-validation model.
    """
    config = TrainConfig.from_dict({**(config.to_dict() if config else {}), **config_fields})
    is_autoencoder = isinstance(model, AutoencoderModel)
    if is_autoencoder and label is not None:
        raise DatasetError(f"an autoencoder learns without a label, got label {label!r}")
    info = None if is_autoencoder else dataset.label_info(label)
    train, val = dataset.split("train"), dataset.split("val")
    has_test = bool((dataset.splits == 2).any())
    torch.manual_seed(config.seed)
    if model is None:
        model = make_model(model_spec_for(dataset, label))
    if model.spec.input_shape != tuple(dataset.inputs.shape[1:]):
        raise DatasetError(
            f"the model expects inputs of shape {model.spec.input_shape}, the dataset has "
            f"{tuple(dataset.inputs.shape[1:])}"
        )
    if info is not None and model.spec.task != info["task"]:
        raise DatasetError(
            f"label {label!r} is a {info['task']} label, the model does {model.spec.task}"
        )
    baseline = _fit_normalisation(model, train, label)
    loss_function = _loss_function(model, train, label, config)
    train_inputs, val_inputs = torch.as_tensor(train.inputs), torch.as_tensor(val.inputs)
    # An autoencoder's targets are its inputs (the loss preprocesses them).
    train_targets = train_inputs if is_autoencoder else torch.as_tensor(train.labels[label])
    val_targets = val_inputs if is_autoencoder else torch.as_tensor(val.labels[label])
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    scheduler = _make_scheduler(optimizer, config, steps_per_epoch)
    out_path = Path(out_dir) if out_dir is not None else None
    logger = Logger(out_path, outputs=("csv",) if out_path is not None else ())
    generator = torch.Generator().manual_seed(config.seed)

    bar = make_progress_bar(progress_bar, config.epochs, "epoch")
    if config.monitor == "f1" and model.spec.task != "classification":
        raise DatasetError("monitor='f1' needs a classification label; use monitor='loss'")
    best_score, best_epoch, best_state = -math.inf, 0, copy.deepcopy(model.state_dict())
    history: list[dict[str, float]] = []
    try:
        for epoch in range(1, config.epochs + 1):
            start_time = time.perf_counter()
            model.train()
            permutation = torch.randperm(len(train), generator=generator)
            total_loss = 0.0
            for start in range(0, len(train), config.batch_size):
                indices = permutation[start : start + config.batch_size]
                loss = loss_function(train_inputs[indices], train_targets[indices])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if config.lr_schedule == "cosine":
                    scheduler.step()
                total_loss += float(loss.detach()) * len(indices)
            val_loss = _mean_loss(
                model, loss_function, val_inputs, val_targets, config.eval_batch_size
            )
            if config.lr_schedule == "plateau":
                scheduler.step(val_loss)
            metrics, _ = compute_metrics(model, val, label, baseline, config.eval_batch_size)
            row = {
                "epoch": float(epoch),
                "train/loss": total_loss / len(train),
                "val/loss": val_loss,
                "train/learning_rate": optimizer.param_groups[0]["lr"],
                "time/epoch_s": time.perf_counter() - start_time,
            }
            summary = {
                "regression": ("mae", "rmse", "median_error"),
                "classification": ("accuracy", "precision", "recall", "f1"),
                "reconstruction": ("reconstruction_mse", "kl"),
            }[model.spec.task]
            row.update({f"val/{key}": metrics[key] for key in summary})
            history.append(row)
            for key, value in row.items():
                if key != "epoch":
                    logger.record(key, value)
            logger.dump(epoch)
            score = metrics["f1"] if config.monitor == "f1" else -val_loss
            if score > best_score:
                best_score, best_epoch = score, epoch
                best_state = copy.deepcopy(model.state_dict())
            if bar is not None:
                bar.update(1)
                bar.set_postfix(val_loss=f"{val_loss:.3g}", best=best_epoch)
            if epoch - best_epoch >= config.patience:
                break
    finally:
        if bar is not None:
            bar.close()
        logger.close()
    model.load_state_dict(best_state)
    model.eval()
    val_metrics, _ = compute_metrics(model, val, label, baseline, config.eval_batch_size)
    test_metrics: dict[str, Any] = {}
    files: dict[str, Path] = {}
    test_predictions = None
    if has_test:
        test = dataset.split("test")
        test_metrics, test_predictions = compute_metrics(
            model, test, label, baseline, config.eval_batch_size
        )
    if out_path is not None:
        files["progress"] = out_path / "progress.csv"
        files["loss_curves"] = plot_loss_curves(history, best_epoch, out_path / "loss_curves.png")
        if has_test:
            files.update(write_evaluation(test_metrics, test_predictions, test, label, out_path))
        files["model"] = out_path / "model"
        save_model(
            model,
            files["model"],
            {
                "label": label,
                "label_info": info,
                # An autoencoder's baseline is a whole mean input: the train split recomputes it.
                "baseline": None if is_autoencoder else np.asarray(baseline).tolist(),
                "dataset": {k: v for k, v in dataset.card.items() if k != "versions"},
                "train_config": config.to_dict(),
                "best_epoch": best_epoch,
                "val_metrics": val_metrics,
                "test_metrics": test_metrics,
            },
        )
    return TrainResult(model, history, best_epoch, val_metrics, test_metrics, files)


def evaluate_model(
    model: Model,
    dataset: Dataset,
    label: str | None,
    baseline: np.ndarray | int | None = None,
    split: str = "test",
    out_dir: str | os.PathLike | None = None,
    batch_size: int = 256,
) -> dict[str, Any]:
    """Score a trained model on one split of a dataset, optionally writing metrics and a plot.

    Args:
        model: The trained model.
        dataset: The dataset (the whole of it; ``split`` selects the samples).
        label: Label to score against (None for an autoencoder).
        baseline: Constant prediction to compare with; default: from the dataset's train split.
        split: ``"train"``, ``"val"``, ``"test"`` or ``"all"``.
        out_dir: Where ``<split>_metrics.json`` and the plot go (optional).
        batch_size: Samples per forward pass.

    Returns:
        The metrics (each with its ``baseline_`` twin).
    """
    subset = dataset if split == "all" else dataset.split(split)
    if baseline is None:
        train = dataset.split("train")
        if isinstance(model, AutoencoderModel):
            baseline = mean_preprocessed_input(model, train)
        else:
            targets = train.labels[label]
            baseline = trivial_baseline(targets, model.is_regression, model.spec.output_dim)
    metrics, predictions = compute_metrics(model, subset, label, baseline, batch_size)
    if out_dir is not None:
        write_evaluation(metrics, predictions, subset, label, Path(out_dir), prefix=split)
    return metrics
