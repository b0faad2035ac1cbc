"""Turn trial results into ``report.md`` and learning-curve PNGs (ours against SB3).

Everything here reads only the JSON results, so ``rlrobot bench --report-only DIR`` rebuilds
the report without training. Per env × algo it gives, across seeds: the final return's mean
with a 95 % bootstrap CI and its IQM, the probability that our run beats an SB3 run, the
steps each needs to reach SB3's final mean return, training speed and wall time, and ours/SB3
ratios.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rlrobot.common.stats import (
    bootstrap_ci,
    interquartile_mean,
    probability_of_improvement,
    safe_ratio,
    steps_to_threshold,
)

OURS, BASELINE = "rlrobot", "sb3"
# A study's page keeps everything from this line on when it is rewritten: the findings,
# written by hand.
FINDINGS_MARKER = "<!-- findings: written by hand below; the study keeps this part -->"


def mean_curve(results: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(steps, returns)`` of the checkpoints all runs share, returns ``(n_runs, k)``."""
    shared = set.intersection(*({c["step"] for c in r["curve"]} for r in results))
    steps = np.array(sorted(shared), dtype=np.int64)
    returns = np.array(
        [[{c["step"]: c["mean_return"] for c in r["curve"]}[s] for s in steps] for r in results]
    )
    return steps, returns


def summarize_framework(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Return the statistics of one framework's runs (one per seed) on one env × algo."""
    finals = np.array([r["final_return"] for r in results])
    steps, returns = mean_curve(results)
    summary: dict[str, Any] = {
        "n_runs": len(results),
        "finals": finals.tolist(),
        "mean": float(finals.mean()),
        "ci": bootstrap_ci(finals),
        "iqm": interquartile_mean(finals),
        "iqm_ci": bootstrap_ci(finals, statistic="iqm"),
        "steps_per_second": float(np.mean([r["steps_per_second"] for r in results])),
        "wall_time_s": float(np.mean([r["wall_time_s"] for r in results])),
        "train_time_s": float(np.mean([r["train_time_s"] for r in results])),
        "curve_steps": steps.tolist(),
        "curve_returns": returns.tolist(),
    }
    successes = [r["curve"][-1].get("success_rate") for r in results]
    if all(s is not None for s in successes):
        summary["success_rate"] = float(np.mean(successes))
    return summary


def compare_summaries(ours: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    """Compare two ``summarize_framework`` summaries (ours against a baseline).

    The baseline is usually SB3's run of the same algorithm; a benchmark may pass another one
    (e.g. SB3's A2C for our REINFORCE, which has no SB3 counterpart).

    Returns:
        ``threshold`` (the baseline's final mean), ``steps_to_threshold`` per framework,
        ``probability_of_improvement`` and ``ratios`` ours / baseline (``return``,
        ``steps_to_threshold``, ``steps_per_second``, ``wall_time``).
    """
    threshold = baseline["mean"]
    reached = {
        name: steps_to_threshold(
            summary["curve_steps"], np.mean(summary["curve_returns"], axis=0), threshold
        )
        for name, summary in ((OURS, ours), (BASELINE, baseline))
    }
    return {
        "threshold": threshold,
        "steps_to_threshold": reached,
        "probability_of_improvement": probability_of_improvement(
            ours["finals"], baseline["finals"]
        ),
        "ratios": {
            "return": safe_ratio(ours["mean"], baseline["mean"]),
            "steps_to_threshold": safe_ratio(reached[OURS], reached[BASELINE] or None),
            "steps_per_second": safe_ratio(ours["steps_per_second"], baseline["steps_per_second"]),
            "wall_time": safe_ratio(ours["wall_time_s"], baseline["wall_time_s"]),
        },
    }


def summarize(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Group successful results by env × algo and compare the frameworks.

    Returns:
        One row per env × algo: ``env_id``, ``algo``, ``rlrobot`` and (when present) ``sb3``
        summaries, and the comparisons ``threshold`` (SB3's final mean), ``steps_to_threshold``
        per framework, ``probability_of_improvement`` and ratios ours/SB3.
    """
    groups: dict[tuple[str, str], dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for result in results:
        if result.get("status") == "ok":
            spec = result["spec"]
            groups[(spec["env_id"], spec["algo"])][spec["framework"]].append(result)
    rows = []
    for (env_id, algo), by_framework in groups.items():
        row: dict[str, Any] = {"env_id": env_id, "algo": algo}
        for framework, runs in by_framework.items():
            runs.sort(key=lambda r: r["spec"]["seed"])
            row[framework] = summarize_framework(runs)
        ours, baseline = row.get(OURS), row.get(BASELINE)
        if ours and baseline:
            row.update(compare_summaries(ours, baseline))
        rows.append(row)
    rows.sort(key=lambda r: (r["env_id"], r["algo"]))
    return rows


def plot_summary_curve(
    axis: Any, summary: dict[str, Any], label: str, color: str, linestyle: str = "-"
) -> None:
    """Draw a summary's seed-mean evaluation return vs env steps with its 95 % bootstrap band.

    Args:
        axis: A Matplotlib ``Axes``.
        summary: A ``summarize_framework`` summary (``curve_steps``, ``curve_returns``).
        label: Legend label (the seed count is appended).
        color: Line and band colour.
        linestyle: Matplotlib line style.
    """
    steps = np.array(summary["curve_steps"])
    returns = np.array(summary["curve_returns"])
    bands = np.array([bootstrap_ci(returns[:, i], n_resamples=2000) for i in range(len(steps))])
    axis.plot(
        steps,
        returns.mean(axis=0),
        color=color,
        linestyle=linestyle,
        label=f"{label} ({len(returns)} seeds)",
    )
    axis.fill_between(steps, bands[:, 0], bands[:, 1], color=color, alpha=0.2)


def plot_curves(row: dict[str, Any], path: Path) -> None:
    """Plot the mean evaluation return vs env steps with a 95 % bootstrap band per framework."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4), dpi=100)
    for framework, label, color in ((OURS, "rlrobot", "tab:blue"), (BASELINE, "SB3", "tab:orange")):
        summary = row.get(framework)
        if summary is not None:
            plot_summary_curve(axis, summary, label, color)
    axis.set_xlabel("environment steps")
    axis.set_ylabel("evaluation return (deterministic)")
    axis.set_title(
        f"{row['algo'].upper()} on {row['env_id']}: mean, 95% bootstrap CI over seeds", fontsize=9
    )
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def format_number(value: float | None, digits: int = 3) -> str:
    """Return ``value`` with ``digits`` significant digits, or "—" when missing or NaN.

    Values of ``digits`` or more integer digits are rounded to integers instead (``-1523``,
    not ``-1.52e+03``): returns such as Pendulum's read better whole.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if math.isfinite(value) and abs(value) >= 10**digits:
        return f"{value:.0f}"
    return f"{value:.{digits}g}"


def format_interval(summary: dict[str, Any] | None, key: str = "mean", ci_key: str = "ci") -> str:
    """Return a summary's statistic with its CI, e.g. ``"402 [260, 500]"`` ("—" when None)."""
    if summary is None:
        return "—"
    low, high = summary[ci_key]
    return f"{format_number(summary[key])} [{format_number(low)}, {format_number(high)}]"


def _steps(value: int | None, start: int) -> str:
    """A step count of the efficiency table; ``start`` is the curve's first (untrained) step."""
    if value is None:
        return "not reached"
    return f"{value:,} (untrained)" if value == start else f"{value:,}"


def plot_file_name(row: dict[str, Any]) -> str:
    """Return the PNG name of a row's learning curves, e.g. ``curves_ppo_rlrobot-Reach-v0.png``."""
    safe_env = row["env_id"].replace("/", "-")
    return f"curves_{row['algo']}_{safe_env}.png"


def render_markdown(
    rows: Sequence[dict[str, Any]], results: Sequence[dict[str, Any]], run_info: dict[str, Any]
) -> str:
    """Return the report's Markdown (tables, plot links, failures, machine and versions)."""
    lines = ["# rlrobot vs Stable-Baselines3", ""]
    settings = run_info.get("settings", {})
    if settings:
        lines += ["Settings: " + ", ".join(f"{k} = {v}" for k, v in settings.items()), ""]
    if run_info.get("command"):
        lines += [f"Command: `{run_info['command']}`", ""]
    lines += [
        "Final return = deterministic evaluation return at the last checkpoint, one value per "
        "seed; mean and IQM with 95 % percentile-bootstrap CIs across seeds. "
        "P(ours > SB3) = probability that a random run of ours beats a random SB3 run. "
        "Ratios are ours / SB3 (return ratios only when both are positive).",
        "",
        "## Return",
        "",
        "| env | algo | seeds | ours: mean [95% CI] | SB3: mean [95% CI] | ours: IQM [95% CI] "
        "| SB3: IQM [95% CI] | ours − SB3 | ratio | P(ours > SB3) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ours, baseline = row.get(OURS), row.get(BASELINE)
        seeds = "/".join(str(s["n_runs"]) for s in (ours, baseline) if s)
        difference = ours["mean"] - baseline["mean"] if ours and baseline else None
        ratios = row.get("ratios", {})
        lines.append(
            f"| {row['env_id']} | {row['algo']} | {seeds} | {format_interval(ours)} "
            f"| {format_interval(baseline)} | {format_interval(ours, 'iqm', 'iqm_ci')} "
            f"| {format_interval(baseline, 'iqm', 'iqm_ci')} | {format_number(difference)} "
            f"| {format_number(ratios.get('return'))} "
            f"| {format_number(row.get('probability_of_improvement'))} |"
        )
    lines += [
        "",
        "## Sample efficiency and speed",
        "",
        "Steps to reach SB3's final mean return, read off the seed-mean learning curves "
        "(first checkpoint at or above it). Training steps/s leave evaluation time out; wall "
        "time is the whole trial (set-up, training, evaluation). One torch thread per trial.",
        "",
        "| env | algo | SB3 final (target) | steps: ours | steps: SB3 | ratio "
        "| train steps/s: ours | SB3 | ratio | wall s: ours | SB3 | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    untrained = False
    for row in rows:
        ours, baseline = row.get(OURS), row.get(BASELINE)
        if not (ours and baseline):
            speed = f"{ours['steps_per_second']:.0f}" if ours else "—"
            wall = f"{ours['wall_time_s']:.0f}" if ours else "—"
            lines.append(
                f"| {row['env_id']} | {row['algo']} | — | — | — | — | {speed} | — | — "
                f"| {wall} | — | — |"
            )
            continue
        reached, ratios = row["steps_to_threshold"], row["ratios"]
        starts = {name: row[name]["curve_steps"][0] for name in (OURS, BASELINE)}
        untrained |= any(reached[name] == starts[name] for name in (OURS, BASELINE))
        lines.append(
            f"| {row['env_id']} | {row['algo']} | {format_number(row['threshold'])} "
            f"| {_steps(reached[OURS], starts[OURS])} "
            f"| {_steps(reached[BASELINE], starts[BASELINE])} "
            f"| {format_number(ratios['steps_to_threshold'], 2)} "
            f"| {ours['steps_per_second']:.0f} | {baseline['steps_per_second']:.0f} "
            f"| {format_number(ratios['steps_per_second'], 2)} "
            f"| {ours['wall_time_s']:.0f} | {baseline['wall_time_s']:.0f} "
            f"| {format_number(ratios['wall_time'], 2)} |"
        )
    if untrained:
        lines += [
            "",
            "(untrained): the evaluation before any training already reaches SB3's final "
            "return, so that step count says nothing about learning speed; a ratio of two "
            "such counts is left out.",
        ]
    successes = [
        r for r in rows if any("success_rate" in (r.get(f) or {}) for f in (OURS, BASELINE))
    ]
    if successes:
        lines += ["", "Success rate at the last checkpoint (mean over seeds):", ""]
        for row in successes:
            rates = [
                f"{name} {format_number((row.get(framework) or {}).get('success_rate'), 2)}"
                for framework, name in ((OURS, "ours"), (BASELINE, "SB3"))
            ]
            lines.append(f"- {row['env_id']} {row['algo']}: " + ", ".join(rates))
    lines += ["", "## Learning curves", ""]
    for row in rows:
        lines.append(f"![{row['algo']} on {row['env_id']}]({plot_file_name(row)})")
    lines += ["", "## Failed trials", "", *failed_trial_lines(results)]
    retried = retried_trial_lines(results)
    if retried:
        lines += ["", "## Trials that needed a retry", "", *retried]
    lines += environment_lines(results)
    return "\n".join(lines) + "\n"


def failed_trial_lines(results: Sequence[dict[str, Any]]) -> list[str]:
    """Return one Markdown item per failed trial with its error's last line, or ``None.``."""
    lines = []
    for result in results:
        if result.get("status") != "ok":
            spec = result["spec"]
            last_line = (result.get("error") or "").strip().splitlines()[-1:] or ["?"]
            lines.append(
                f"- {spec['algo']}/{spec['framework']} {spec['env_id']} seed {spec['seed']} "
                f"(key {result['key']}, {result.get('attempts', 1)} attempt(s)): `{last_line[0]}`"
            )
    return lines or ["None."]


def retried_trial_lines(results: Sequence[dict[str, Any]]) -> list[str]:
    """Return one Markdown item per trial that completed only after a retry."""
    return [
        f"- {r['spec']['algo']}/{r['spec']['framework']} {r['spec']['env_id']} seed "
        f"{r['spec']['seed']} (key {r['key']}): ok at attempt {r['attempts']}"
        for r in results
        if r.get("status") == "ok" and r.get("attempts", 1) > 1
    ]


def environment_lines(results: Sequence[dict[str, Any]]) -> list[str]:
    """Return the "Machine and versions" Markdown section of the successful results."""
    done = [r for r in results if r.get("status") == "ok"]
    if not done:
        return []
    machine, versions = done[0]["machine"], done[0]["versions"]
    threads = sorted({r["torch_threads"] for r in done})
    lines = [
        "",
        "## Machine and versions",
        "",
        f"- machine: {machine['hostname']}, {machine['platform']}, {machine['processor']}, "
        f"{machine['cpu_count']} cores",
        f"- torch threads per trial: {', '.join(map(str, threads))}",
        "- versions: " + ", ".join(f"{name} {version}" for name, version in versions.items()),
    ]
    mixed = {tuple(sorted(r["versions"].items())) for r in done}
    if len(mixed) > 1:
        lines.append("- warning: the trials ran with different package versions")
    return lines


def write_keeping_findings(path: Path, generated: str) -> Path:
    """Write a study's page: ``generated``, then the findings of the page already at ``path``.

    The findings are everything from ``FINDINGS_MARKER`` on; a new page gets the marker and a
    placeholder. Returns ``path``.
    """
    findings = f"{FINDINGS_MARKER}\n## Findings\n\nNone written yet.\n"
    if path.is_file() and FINDINGS_MARKER in (old := path.read_text()):
        findings = old[old.index(FINDINGS_MARKER) :]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(generated + "\n" + findings)
    return path


def markdown_table(
    header: Sequence[str], rows: Iterable[Sequence[Any]], align: str | None = None
) -> list[str]:
    """Return the lines of a Markdown table; ``align`` is one ``l`` or ``r`` per column."""
    rule = [":---" if a == "l" else "---:" for a in align] if align else ["---"] * len(header)
    return [
        f"| {' | '.join(header)} |",
        f"|{'|'.join(rule)}|",
        *(f"| {' | '.join(map(str, row))} |" for row in rows),
    ]


def merge_results(path: Path, results: dict[str, Any]) -> dict[str, Any]:
    """Write ``results`` over the JSON at ``path`` (sections not rerun are kept); return all."""
    import json

    merged = {**(json.loads(path.read_text()) if path.is_file() else {}), **results}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(merged, indent=1) + "\n")
    return merged


def write_report(
    directory: str | Path, results: Sequence[dict[str, Any]], run_info: dict[str, Any]
) -> Path:
    """Write ``report.md``, ``summary.json`` and one PNG per env × algo into ``directory``.

    Returns:
        The path of ``report.md``.
    """
    import json

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rows = summarize(results)
    for row in rows:
        plot_curves(row, directory / plot_file_name(row))
    (directory / "summary.json").write_text(json.dumps(rows, indent=1))
    path = directory / "report.md"
    path.write_text(render_markdown(rows, results, run_info))
    return path
