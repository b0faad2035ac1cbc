"""Parts 1a and 1b of the perception study: Reach's target position from one or two cameras.

A NatureCNN regresses the target's (x, y, z) (m) from 84×84 images, once per training-set
size (the first n episodes of the training split), and is scored on held-out episodes. With
one camera the error is split along and across the camera ray and compared with the
ray-ambiguity bound; two orthogonal views (``TWO_VIEW_CAMERAS``) remove that ambiguity.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from rlrobot.benchmark.studies.perception import cached
from rlrobot.envs.perturbations import SceneRandomization
from rlrobot.envs.wrappers import MultiViewImages
from rlrobot.perception.collect import collect_images
from rlrobot.perception.dataset import Dataset
from rlrobot.perception.models import PerceptionModel
from rlrobot.perception.training import model_spec_for, train_model
from rlrobot.sim import Camera

REACH_FRAMES = {"frame_interval": 5, "max_steps": 20}  # 5 frames per episode: t = 0, 5, …, 20
# Two orthogonal cameras (side: yaw 0°, front: yaw 90°) at the height of the goal box's centre:
# each sees two of the target's coordinates across its rays, so no coordinate is left to depth.
TWO_VIEW_CAMERAS = tuple(
    Camera(target=(0.0, 0.0, 0.2), distance=0.75, yaw=yaw, pitch=0.0, fov=40.0)
    for yaw in (0.0, 90.0)
)
REACH2_FRAMES = {"frame_interval": 10, "max_steps": 20}  # 3 frames per episode: more targets
REACH2_SPLIT = (0.9, 0.05, 0.05)


def camera_eye(camera: Any) -> np.ndarray:
    """World position (m) of a yaw/pitch/distance camera (PyBullet's convention, z up)."""
    yaw, pitch = np.radians(camera.yaw), np.radians(camera.pitch)
    direction = np.array(
        [np.sin(yaw) * np.cos(pitch), -np.cos(yaw) * np.cos(pitch), -np.sin(pitch)]
    )
    return np.asarray(camera.target) + camera.distance * direction


def ray_ambiguity_bound(
    eye: np.ndarray, low: np.ndarray, high: np.ndarray, n: int = 200_000, seed: int = 0
) -> float:
    """Median error (m) of the best estimate from a target's exact image position alone.

    Targets are uniform in the box ``[low, high]``. The image position fixes the ray from the
    camera; along the ray, inside the box, the target's distance ``t`` has density ``∝ t²``
    (uniform volume), and the estimate with the least expected error is that density's median
    ``((t0³ + t1³) / 2)^(1/3)``. Apparent size is ignored (a 4 cm sphere spans 2–3 pixels).
    """
    points = np.random.default_rng(seed).uniform(low, high, (n, 3))
    offsets = points - eye
    distances = np.linalg.norm(offsets, axis=1)
    directions = offsets / distances[:, None]
    with np.errstate(divide="ignore"):
        inverse = 1.0 / directions
    entry, exit_ = (low - eye) * inverse, (high - eye) * inverse
    t0 = np.minimum(entry, exit_).max(axis=1)
    t1 = np.maximum(entry, exit_).min(axis=1)
    median = ((t0**3 + t1**3) / 2.0) ** (1.0 / 3.0)
    return float(np.median(np.abs(distances - median)))


def error_components(
    predictions: np.ndarray, targets: np.ndarray, eye: np.ndarray
) -> dict[str, float]:
    """Median error (m) along the camera ray through each target (depth) and across it."""
    rays = targets - eye
    rays /= np.linalg.norm(rays, axis=1, keepdims=True)
    errors = predictions - targets
    along = np.sum(errors * rays, axis=1)
    across = np.linalg.norm(errors - along[:, None] * rays, axis=1)
    return {
        "median_depth_error": float(np.median(np.abs(along))),
        "median_lateral_error": float(np.median(across)),
    }


def train_size_series(
    dataset: Dataset,
    budget: dict[str, Any],
    prefix: str,
    work: Path,
    describe: Any = None,
) -> tuple[list[dict[str, Any]], Path]:
    """Train a NatureCNN on the first n training episodes for each n of the budget.

    Args:
        dataset: Images labelled with ``target_position``.
        budget: ``<prefix>_train_episodes``, ``<prefix>_epochs`` and ``<prefix>_min_steps``.
        prefix: Budget key prefix and run-folder prefix (``work/<prefix>_<images>``).
        work: Folder of the runs.
        describe: Optional ``(predictions, targets) -> dict`` of extra test columns.

    Returns:
        ``(rows, run folder of the largest training set)``.
    """
    test = dataset.split("test")
    rows, run_dir = [], work
    for n_episodes in budget[f"{prefix}_train_episodes"]:
        subset = dataset.limit_train_episodes(n_episodes)
        n_train = subset.split_sizes()["train"]["samples"]
        # Small sets get more epochs: the CNN needs ~1,000 updates to find the small target.
        epochs = max(
            budget[f"{prefix}_epochs"],
            int(np.ceil(budget[f"{prefix}_min_steps"] * 64 / n_train)),
        )
        run_dir = work / f"{prefix}_{n_train}"

        def train(subset: Dataset = subset, run_dir: Path = run_dir, epochs: int = epochs) -> dict:
            started = time.perf_counter()
            result = train_model(
                subset,
                "target_position",
                PerceptionModel(model_spec_for(subset, "target_position", "nature_cnn")),
                out_dir=run_dir,
                epochs=min(epochs, 300),
                patience=max(10, epochs // 4),
                learning_rate=3e-4,
                seed=0,
            )
            metrics = result.test_metrics
            extra = {}
            if describe is not None:
                extra = describe(result.model.predict(test.inputs), test.labels["target_position"])
            return {
                "train_images": subset.split_sizes()["train"]["samples"],
                "train_episodes": subset.split_sizes()["train"]["episodes"],
                "epochs_run": len(result.history),
                "best_epoch": result.best_epoch,
                "median_error": metrics["median_error"],
                "mean_error": metrics["mean_error"],
                "mae_per_dim": metrics["mae_per_dim"],
                "baseline_median_error": metrics["baseline_median_error"],
                **extra,
                "train_s": time.perf_counter() - started,
            }

        rows.append(cached(run_dir / "bench_row.json", train))
        print(
            f"[{prefix}] {n_train} images: median error {rows[-1]['median_error'] * 100:.2f} cm",
            flush=True,
        )
    return rows, run_dir


def collect_reach_images(
    path: Path, env: str | gym.Env, n_episodes: int, **settings: Any
) -> tuple[Dataset, float]:
    """Return Reach images (colours ±0.15 and light randomised per episode) and the seconds
    their collection took; a dataset an earlier run saved at ``path`` is reused (0 s)."""
    start = time.perf_counter()
    if path.is_file():
        return Dataset.load(path), 0.0
    dataset = collect_images(
        env,
        n_episodes=n_episodes,
        labels=("target_position",),
        randomization=SceneRandomization(color_jitter=0.15),
        seed=0,
        **settings,
    )
    dataset.save(path)
    return dataset, time.perf_counter() - start


def run_reach_regression(budget: dict[str, Any], out: Path, work: Path) -> dict[str, Any]:
    """Study 1a: Reach's own camera; a NatureCNN per training-set size, scored on held-out."""
    dataset, collect_s = collect_reach_images(
        work / "reach_images.npz",
        "rlrobot/Reach-v0",
        budget["reach_episodes"],
        **REACH_FRAMES,
    )
    env = gym.make("rlrobot/Reach-v0", **dataset.card["env_kwargs"])
    camera, task = env.unwrapped.camera, env.unwrapped.task
    eye = camera_eye(camera)
    bound = ray_ambiguity_bound(eye, task.goal_low, task.goal_high)
    env.close()
    rows, best_dir = train_size_series(
        dataset,
        budget,
        "reach",
        work,
        lambda predictions, targets: error_components(predictions, targets, eye),
    )
    for name in ("loss_curves.png", "test_predicted_vs_true.png"):
        (out / f"perception_reach_{name}").write_bytes((best_dir / name).read_bytes())
    plot_error_vs_size(
        rows,
        {
            "median_error": "CNN: 3-D error",
            "median_lateral_error": "CNN: across the camera ray",
            "median_depth_error": "CNN: along the camera ray (depth)",
            "baseline_median_error": "predict the train mean",
        },
        out / "perception_reach_error_vs_size.png",
        xlabel="training images (84×84)",
        title="Reach target position from one camera image",
        bound=bound,
    )
    return {
        "rows": rows,
        "ray_ambiguity_bound": bound,
        "camera": {"eye": eye.tolist(), "target": list(camera.target), "fov": camera.fov},
        "dataset": {k: dataset.card[k] for k in ("env_kwargs", "splits", "randomization")},
        "collect_s": collect_s,
        "encoder_checkpoint": str(best_dir / "model"),
        "reused": any(row.get("reused", False) for row in rows),
    }


def make_two_view_reach() -> gym.Env:
    """Reach observed by ``TWO_VIEW_CAMERAS``: uint8 (84, 168, 3), two 84×84 views."""
    return MultiViewImages(gym.make("rlrobot/Reach-v0"), TWO_VIEW_CAMERAS, size=84)


def run_two_view_reach(budget: dict[str, Any], out: Path, work: Path) -> dict[str, Any]:
    """Study 1b: two orthogonal 84×84 views side by side; error vs training-set size."""
    env = make_two_view_reach()
    try:
        dataset, collect_s = collect_reach_images(
            work / "reach_two_view_images.npz",
            env,
            budget["reach2_episodes"],
            split_fractions=REACH2_SPLIT,
            **REACH2_FRAMES,
        )
    finally:
        env.close()
    rows, best_dir = train_size_series(dataset, budget, "reach2", work)
    for name in ("loss_curves.png", "test_predicted_vs_true.png"):
        (out / f"perception_reach2_{name}").write_bytes((best_dir / name).read_bytes())
    plot_error_vs_size(
        rows,
        {"median_error": "CNN: 3-D", "baseline_median_error": "predict the train mean"},
        out / "perception_reach2_error_vs_size.png",
        xlabel="training images (two 84×84 views each)",
        title="Reach target position from two orthogonal views",
    )
    return {
        "rows": rows,
        "cameras": [dataclasses.asdict(camera) for camera in TWO_VIEW_CAMERAS],
        "dataset": {k: dataset.card[k] for k in ("splits", "randomization")},
        "collect_s": collect_s,
        "reused": any(row.get("reused", False) for row in rows),
    }


def plot_error_vs_size(
    rows: list[dict[str, Any]],
    curves: dict[str, str],
    path: Path,
    xlabel: str,
    title: str,
    bound: float | None = None,
) -> None:
    """Median test errors (cm) against training images, one line per ``{row key: label}``.

    Args:
        rows: One result per dataset size (``train_images`` and the ``curves`` keys, in m).
        curves: Which errors to draw, with their legend labels.
        path: The PNG to write.
        xlabel: Label of the (log) size axis.
        title: Figure title.
        bound: A ray-ambiguity bound (m) to draw, if any.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [row["train_images"] for row in rows]
    figure, axis = plt.subplots(figsize=(6, 4))
    for key, label in curves.items():
        axis.plot(sizes, [100 * row[key] for row in rows], marker="o", label=label)
    if bound is not None:
        axis.axhline(100 * bound, color="black", linestyle="--", label="ray-ambiguity bound (3-D)")
    axis.axhline(1.0, color="green", linestyle=":", label="goal: 1 cm")
    axis.set(
        xscale="log",
        yscale="log" if bound is None else "linear",
        xlabel=xlabel,
        ylabel="median error on held-out episodes [cm]",
        title=title,
    )
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
