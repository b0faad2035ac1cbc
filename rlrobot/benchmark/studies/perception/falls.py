"""Part 2 of the perception study: will the kicked quadruped fall within the next 10 steps?

An MLP reads windows of the ant's proprioception (torso height, orientation, velocities,
joint states; the last 4 or 1 observations, chosen on validation F1) while it moves with
random torques and is kicked at random; an ensemble of MLPs (seeds) and a decision threshold
are candidates chosen on validation F1; the test split scores the chosen predictor once.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from rlrobot.benchmark.studies.perception import cached
from rlrobot.envs.perturbations import RandomKicks
from rlrobot.perception.collect import collect_event_windows
from rlrobot.perception.dataset import Dataset
from rlrobot.perception.metrics import (
    choose_threshold,
    classification_metrics,
    ensemble_probabilities,
)
from rlrobot.perception.plots import plot_confusion_matrix
from rlrobot.perception.training import train_model

FALL_SETTINGS = {"window": 4, "horizon": 10, "max_steps": 300, "event_key": "fell"}
# Quadruped-v0's default motors (AntBulletEnv's 375 N·m), pinned so that the study stays
# reproducible if the default changes.
FALL_ENV_KWARGS = {"max_torque": 375.0}
FALL_MARGIN = 10  # windows whose fall is 11-20 steps ahead are left out (see perception.md)
FALL_WINDOWS = (4, 1)  # the MLP sees the last k of the 4 collected observations
# A fresh collection seed for the reported run: the prototypes that guided the choices below
# used seed 0's episodes (test split included), so the reported test episodes are new to them.
FALL_SEED = 1
# Unweighted cross-entropy and model selection on validation F1 (why: perception.md).
FALL_TRAINING = {
    "epochs": 30,
    "patience": 8,
    "batch_size": 256,
    "class_weights": "none",
    "monitor": "f1",
}


def run_fall_prediction(budget: dict[str, Any], out: Path, work: Path) -> dict[str, Any]:
    """Study 2: kicked quadruped, windows of proprioception → "falls within 10 steps"."""
    folder = fall_folder(budget, work)
    result = cached(folder / "bench_falls.json", lambda: fall_prediction(budget, work))
    chosen = folder / f"window_{result['selected_window']}_seed_0"
    (out / "perception_falls_loss_curves.png").write_bytes(
        (chosen / "loss_curves.png").read_bytes()
    )
    final = result["final"]
    plot_confusion_matrix(
        np.asarray(final["test"]["confusion_matrix"]),
        ["no fall ahead", "fall ahead"],
        out / "perception_falls_test_confusion_matrix.png",
    )
    print(f"[falls] {final['predictor']}: test F1 {final['test']['f1']:.3f}", flush=True)
    return result


def fall_folder(budget: dict[str, Any], work: Path) -> Path:
    """Where study 2 keeps its dataset, models and results for this budget."""
    return work / f"falls_{budget['fall_episodes']}_seed_{FALL_SEED}"


def collect_fall_windows(budget: dict[str, Any], work: Path) -> Dataset:
    """Return the kicked-quadruped windows of study 2 (reused when ``work`` holds them)."""
    path = fall_folder(budget, work) / "quadruped_falls_windows.npz"
    if path.is_file():
        return Dataset.load(path)
    dataset = collect_event_windows(
        "rlrobot/Quadruped-v0",
        n_episodes=budget["fall_episodes"],
        perturbation=RandomKicks("ant", probability=0.02),
        # No past window can foresee a kick in its look-ahead, and a label that flips one
        # step past the horizon is noise: leave both kinds of window out (see perception.md).
        exclude_unforeseeable=True,
        margin=FALL_MARGIN,
        split_fractions=(0.6, 0.2, 0.2),
        seed=FALL_SEED,
        env_kwargs=FALL_ENV_KWARGS,
        **FALL_SETTINGS,
    )
    dataset.save(path)
    return dataset


def last_observations(dataset: Dataset, n_observations: int) -> Dataset:
    """The same windows cut to their last ``n_observations`` observations."""
    inputs = np.ascontiguousarray(dataset.inputs[:, -n_observations:])
    card = {**dataset.card, "window": n_observations}
    return Dataset(inputs, dataset.labels, dataset.episodes, dataset.splits, card)


def threshold_metrics(probabilities: np.ndarray, targets: np.ndarray, threshold: float) -> dict:
    """Classification metrics of "fall ahead when p > threshold"."""
    predictions = (probabilities[:, 1] > threshold).astype(np.int64)
    return classification_metrics(predictions, targets, 2)


def fall_prediction(budget: dict[str, Any], work: Path) -> dict[str, Any]:
    """Window length, then ensemble and decision threshold, each chosen on validation F1.

    One MLP (seed 0) per window length; the window with the best validation F1 gets
    ``fall_seeds - 1`` more MLPs (other seeds). Four predictors are then scored on validation:
    seed 0 alone or the ensemble (mean probability), each at p > 0.5 or at the threshold with
    the best validation F1. The one with the best validation F1 is the result; the test split
    scores it once (the others' test scores are reported alongside, not used for any choice).
    """
    start = time.perf_counter()
    folder = fall_folder(budget, work)
    dataset = collect_fall_windows(budget, work)
    collect_s = time.perf_counter() - start
    label = "about_to_fall"

    def train(n_observations: int, seed: int) -> tuple[Any, dict[str, Any]]:
        started = time.perf_counter()
        result = train_model(
            last_observations(dataset, n_observations),
            label,
            out_dir=folder / f"window_{n_observations}_seed_{seed}",
            seed=seed,
            **FALL_TRAINING,
        )
        return result, {
            "window": n_observations,
            "seed": seed,
            "val_f1": result.val_metrics["f1"],
            "best_epoch": result.best_epoch,
            "epochs_run": len(result.history),
            "train_s": time.perf_counter() - started,
            **{
                k: result.test_metrics[k]
                for k in (
                    "f1",
                    "precision",
                    "recall",
                    "accuracy",
                    "confusion_matrix",
                    "baseline_f1",
                    "baseline_accuracy",
                    "n_samples",
                )
            },
        }

    rows, models = [], {}
    for n_observations in FALL_WINDOWS:
        models[n_observations], row = train(n_observations, seed=0)
        rows.append(row)
        print(f"[falls] window {n_observations}: val F1 {row['val_f1']:.3f}", flush=True)
    selected = max(rows, key=lambda row: row["val_f1"])["window"]
    members = [models[selected].model]
    seed_rows = []
    for seed in range(1, budget["fall_seeds"]):
        result, row = train(selected, seed)
        members.append(result.model)
        seed_rows.append(row)
        print(f"[falls] window {selected}, seed {seed}: val F1 {row['val_f1']:.3f}", flush=True)
    window_data = last_observations(dataset, selected)
    val, test = window_data.split("val"), window_data.split("test")
    val_targets, test_targets = val.labels[label], test.labels[label]
    predictors = []
    for name, predictor_models in (("one MLP", members[:1]), ("ensemble", members)):
        val_probabilities = ensemble_probabilities(predictor_models, val.inputs)
        test_probabilities = ensemble_probabilities(predictor_models, test.inputs)
        tuned, _ = choose_threshold(val_probabilities[:, 1], val_targets)
        # A tuned threshold of 0.5 is the untuned predictor: listed once.
        for threshold in dict.fromkeys((0.5, tuned)):
            predictors.append(
                {
                    "predictor": f"{name}, p > {threshold:g}",
                    "models": len(predictor_models),
                    "threshold": threshold,
                    "val": threshold_metrics(val_probabilities, val_targets, threshold),
                    "test": threshold_metrics(test_probabilities, test_targets, threshold),
                }
            )
    final = max(predictors, key=lambda predictor: predictor["val"]["f1"])
    labels = dataset.labels[label]
    return {
        "rows": rows,
        "seed_rows": seed_rows,
        "selected_window": selected,
        "predictors": predictors,
        "final": final,
        # The test split is the same for every window: its majority-class scores too.
        "metrics": {
            **final["test"],
            **{key: rows[0][key] for key in ("n_samples", "baseline_f1", "baseline_accuracy")},
        },
        "n_windows": len(dataset),
        "positive_fraction": float(labels.mean()),
        "n_events": dataset.card["n_events"],
        "splits": dataset.card["splits"],
        "collect_s": collect_s,
        "training": FALL_TRAINING,
        "seeds": budget["fall_seeds"],
        "settings": {
            **FALL_SETTINGS,
            "margin": FALL_MARGIN,
            "seed": FALL_SEED,
            "policy": dataset.card["policy"],
            "kicks": dataset.card["perturbation"],
        },
    }
