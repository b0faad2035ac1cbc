"""``rlrobot plot``: learning curves of runs and seeds, mean and 95% confidence band.

Runs whose resolved configs differ only in the seed (and in bookkeeping keys such as
``checkpoint_freq``) form one group and one curve: the mean over seeds with a percentile-bootstrap
95% confidence band (``rlrobot.common.stats.bootstrap_ci``, as in the benchmark reports),
against environment steps. Each run's curve is linearly interpolated onto a grid covering the
steps that every run of the group reached. A second panel shows the success rate where the env
reports one. Runs of several envs get one row of panels per env, each with its own y-axis.
"""

from __future__ import annotations

import io
import os
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rlrobot.common.files import atomic_write_bytes
from rlrobot.common.stats import bootstrap_ci
from rlrobot.run.config import ResolvedConfig, read_run_config
from rlrobot.run.folder import RunFolder, read_csv_rows

Source = Literal["train", "eval"]
# Characters per legend line and panel (the legend spans the figure, under the panels).
LEGEND_WIDTH = 80
# Keys that do not change what is learned; runs differing only in them are seeds of one group.
BOOKKEEPING_KEYS = frozenset(
    {
        "seed",
        "n_timesteps",
        "device",
        "vec_env",
        "worker_timeout_s",
        "eval_freq",
        "eval_episodes",
        "eval_deterministic",
        "checkpoint_freq",
        "keep_checkpoints",
        "log_interval",
    }
)
_COLUMNS = {
    "train": ("rollout/ep_rew_mean", "rollout/success_rate"),
    "eval": ("mean_reward", "success_rate"),
}


@dataclass
class Curve:
    """One run's curve: env steps ``(n,)``, return ``(n,)``, success rate ``(n,)`` or None."""

    steps: np.ndarray
    returns: np.ndarray
    successes: np.ndarray | None


def read_curve(folder: RunFolder, source: Source = "train") -> Curve | None:
    """Read a run's curve from ``progress.csv`` (train) or ``evaluations.csv`` (eval).

    Returns:
        The curve, or None when the run has logged no episode yet.
    """
    rows = read_csv_rows(folder.progress_path if source == "train" else folder.evaluations_path)
    return_key, success_key = _COLUMNS[source]
    rows = [row for row in rows if not np.isnan(row.get(return_key, np.nan))]
    if not rows:
        return None
    steps = np.array([row["step"] for row in rows])
    returns = np.array([row[return_key] for row in rows])
    successes = np.array([row.get(success_key, np.nan) for row in rows])
    return Curve(steps, returns, None if np.isnan(successes).all() else successes)


def find_runs(paths: Sequence[str | os.PathLike]) -> list[RunFolder]:
    """Return the run folders at or below ``paths`` (folders holding a ``config.yaml``)."""
    runs: list[RunFolder] = []
    for path in map(Path, paths):
        if (path / "config.yaml").is_file():
            runs.append(RunFolder(path))
        else:
            found = sorted(config.parent for config in path.rglob("config.yaml"))
            # A sweep's trials log evaluations only (no progress.csv).
            runs += [
                RunFolder(folder)
                for folder in found
                if (folder / "progress.csv").exists() or (folder / "evaluations.csv").exists()
            ]
    return runs


def group_runs(runs: list[RunFolder]) -> dict[str, list[RunFolder]]:
    """Group runs that differ only in seed/bookkeeping keys; label groups by what differs."""
    configs: list[tuple[RunFolder, ResolvedConfig]] = [
        (run, read_run_config(run.config_path)) for run in runs
    ]
    groups: dict[tuple, list[tuple[RunFolder, dict]]] = {}
    for run, resolved in configs:
        values = {k: v for k, v in resolved.to_dict().items() if k not in BOOKKEEPING_KEYS}
        key = tuple(sorted((k, repr(v)) for k, v in values.items()))
        groups.setdefault(key, []).append((run, values))
    # The label "algo on env" tells groups of other algorithms or envs apart; the keys that
    # vary are looked for only among the groups it leaves alike (each algorithm has its own).
    alike: dict[tuple[str, str], list[dict]] = {}
    for members in groups.values():
        values = members[0][1]
        alike.setdefault((values["algo"], values["env"]), []).append(values)
    labelled: dict[str, list[RunFolder]] = {}
    for members in groups.values():
        values = members[0][1]
        label = f"{values['algo']} on {values['env']}"
        others = alike[values["algo"], values["env"]]
        extras = [
            f"{k}={v}"
            for k, v in values.items()
            if k not in ("algo", "env") and len({repr(other.get(k)) for other in others}) > 1
        ]
        if extras:
            label += " (" + ", ".join(extras) + ")"
        labelled[label] = [run for run, _ in members]
    return labelled


def mean_and_band(
    curves: list[Curve], attribute: str, max_points: int = 200
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Put curves on a shared step grid; return ``(steps, mean, band | None)``.

    The grid is the union of the curves' steps within the range every curve covers (thinned to
    ``max_points``); each curve is linearly interpolated onto it. ``band`` ``(2, n)`` is the
    percentile-bootstrap 95% confidence interval of the mean over curves (as in the
    benchmark reports), None for a single curve.
    """
    if len(curves) == 1:
        return curves[0].steps, getattr(curves[0], attribute), None
    start = max(curve.steps[0] for curve in curves)
    end = min(curve.steps[-1] for curve in curves)
    grid = np.unique(
        np.concatenate([c.steps[(c.steps >= start) & (c.steps <= end)] for c in curves])
    )
    if grid.size > max_points:
        grid = grid[np.linspace(0, grid.size - 1, max_points).round().astype(int)]
    values = np.stack([np.interp(grid, c.steps, getattr(c, attribute)) for c in curves])
    band = np.array([bootstrap_ci(values[:, i]) for i in range(grid.size)]).T
    return grid, values.mean(axis=0), band


def plot_runs(
    paths: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    source: Source | Literal["both"] = "both",
    title: str | None = None,
) -> Path:
    """Plot the learning curves of the runs at or below ``paths`` into the PNG ``out``.

    Args:
        paths: Run folders, or folders that hold run folders (e.g. one per seed).
        out: Where to write the image (``.png``; other matplotlib formats work too).
        source: ``train`` (``rollout/ep_rew_mean`` of progress.csv: stochastic actions, mean of
            the last 100 finished episodes), ``eval`` (``evaluations.csv``: the periodic
            evaluations), or ``both`` (solid and dashed lines of one colour per group).
        title: Figure title.

    Returns:
        ``out`` as a path.

    Raises:
        ValueError: No run with any logged episode under ``paths``.
    """
    import matplotlib

    matplotlib.use("Agg")  # headless: never open a window
    import matplotlib.pyplot as plt

    runs = find_runs(paths)
    if not runs:
        raise ValueError(f"no run folders (with config.yaml) under {[str(p) for p in paths]}")
    sources: tuple[Source, ...] = ("train", "eval") if source == "both" else (source,)
    # (env, group label, source) → curves of the group's runs that logged something.
    grouped: dict[tuple[str, str, Source], list[Curve]] = {}
    for label, members in group_runs(runs).items():
        env = read_run_config(members[0].config_path).env
        for curve_source in sources:
            curves = [c for run in members if (c := read_curve(run, curve_source)) is not None]
            if curves:
                grouped[env, label, curve_source] = curves
    if not grouped:
        raise ValueError(f"none of the runs has logged a finished episode ({source} curves)")
    # One row of panels per env: returns of different envs share no scale.
    envs = list(dict.fromkeys(env for env, _, _ in grouped))
    with_success = any(c.successes is not None for curves in grouped.values() for c in curves)
    n_panels = 2 if with_success else 1
    # Constrained layout makes room for the legend below the panels, however long its labels.
    figure, axes = plt.subplots(
        len(envs),
        n_panels,
        figsize=(6.4 * n_panels, 4.2 * len(envs)),
        squeeze=False,
        layout="constrained",
    )
    panels = [("returns", "episode return")]
    if with_success:
        panels.append(("successes", "success rate"))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    labels = list(dict.fromkeys(label for _, label, _ in grouped))
    for row, env in zip(axes, envs, strict=True):
        for axis, (attribute, y_label) in zip(row, panels, strict=True):
            drawn = _draw_panel(axis, grouped, env, attribute, sources, labels, colors, n_panels)
            if not drawn:  # this env reports no success: no empty panel
                axis.set_visible(False)
                continue
            axis.set_xlabel("environment steps")
            suffix = {"train": " (training)", "eval": " (evaluation)", "both": ""}[source]
            axis.set_ylabel(y_label + suffix)
            axis.grid(alpha=0.3)
            if len(envs) > 1:
                axis.set_title(env)
    # One legend for all panels (they share curves and colours), under them.
    handles, texts = [], []
    for row in axes:
        row_handles, row_texts = row[0].get_legend_handles_labels()
        handles += row_handles
        texts += row_texts
    figure.legend(handles, texts, loc="outside lower center", fontsize="small")
    if title:
        figure.suptitle(title)
    out = Path(out)
    # Rendered in memory and moved into place: a killed run never leaves half an image.
    image = io.BytesIO()
    figure.savefig(image, format=out.suffix.lstrip(".").lower() or "png", dpi=100)
    plt.close(figure)
    atomic_write_bytes(out, image.getvalue())
    return out


def _draw_panel(
    axis: Any,
    grouped: dict[tuple[str, str, Source], list[Curve]],
    env: str,
    attribute: str,
    sources: tuple[Source, ...],
    labels: list[str],
    colors: list[str],
    n_panels: int,
) -> bool:
    """Draw ``env``'s curves of ``attribute`` (returns or successes) on ``axis``, one colour
    per group label; return whether any curve was drawn."""
    drawn = False
    for (curve_env, label, curve_source), curves in grouped.items():
        usable = [c for c in curves if getattr(c, attribute) is not None]
        if curve_env != env or not usable:
            continue
        steps, mean, band = mean_and_band(usable, attribute)
        text = label + (f" [{len(usable)} runs]" if len(usable) > 1 else "")
        if len(sources) > 1:
            text += " (evaluation)" if curve_source == "eval" else " (training)"
        text = textwrap.fill(text, LEGEND_WIDTH * n_panels, subsequent_indent="  ")
        color = colors[labels.index(label) % len(colors)]
        style = {"linestyle": "--", "marker": "o", "markersize": 3}
        axis.plot(steps, mean, label=text, color=color, **(style if curve_source == "eval" else {}))
        if band is not None:
            axis.fill_between(steps, band[0], band[1], alpha=0.2, color=color)
        drawn = True
    return drawn
