"""Turn trial results into ``report.md`` and learning-curve PNGs (ours against SB3).

Everything here reads only the JSON results, so ``rlrobot bench --report-only DIR`` rebuilds
the report without training. Per env × algo it gives, across seeds: the final return's mean
and IQM with 95 % bootstrap CIs, the difference ours − SB3 and the probability that our run
beats an SB3 run (each with a two-sample bootstrap CI), the steps each needs to reach SB3's
final mean return (marked when the untrained policy already does), training speed and wall
time, and ours/SB3 ratios. A report that spans several envs adds, per agent, the IQM and the
optimality gap of normalised scores with stratified-bootstrap CIs.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rlrobot.common.stats import (
    aggregate_iqm,
    bootstrap_ci,
    bootstrap_ci_two_sample,
    first_crossing,
    interquartile_mean,
    mean_difference,
    normalize_scores,
    optimality_gap,
    probability_of_improvement,
    safe_ratio,
    stratified_bootstrap_ci,
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


def node_of(result: dict[str, Any]) -> str:
    """The Ray node a trial ran on, or ``"local"`` for a trial run without Ray."""
    return (result.get("machine") or {}).get("ray_node") or "local"


def speeds_by_node(results: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Return the mean env steps/s of ``results`` per node (``node_of``)."""
    speeds: dict[str, list[float]] = defaultdict(list)
    for result in results:
        speeds[node_of(result)].append(result["steps_per_second"])
    return {node: float(np.mean(values)) for node, values in sorted(speeds.items())}


def speed_ratio(ours: dict[str, Any], baseline: dict[str, Any]) -> float | None:
    """Ours ÷ the baseline's steps/s, compared only within a node (None: no node ran both).

    On a Ray cluster of mixed machines a mean over nodes would compare hardware, not code: the
    ratio is the geometric mean of the per-node ratios on the nodes that ran both frameworks.
    """
    shared = sorted(
        set(ours["steps_per_second_by_node"]) & set(baseline["steps_per_second_by_node"])
    )
    ratios = [
        safe_ratio(ours["steps_per_second_by_node"][n], baseline["steps_per_second_by_node"][n])
        for n in shared
    ]
    ratios = [ratio for ratio in ratios if ratio is not None and ratio > 0]
    return float(np.exp(np.mean(np.log(ratios)))) if ratios else None


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
        "steps_per_second_by_node": speeds_by_node(results),
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
        ``threshold`` (the baseline's final mean); per framework ``steps_to_threshold`` (None:
        never) and ``threshold_at_start`` (its first checkpoint already reaches it);
        ``difference`` (mean ours − baseline) and ``probability_of_improvement`` (P(ours >
        baseline)), each with a two-sample bootstrap ``…_ci``; ``ratios`` ours / baseline
        (``return``, ``steps_to_threshold``, ``steps_per_second`` within nodes: ``speed_ratio``,
        ``wall_time``).
    """
    threshold = baseline["mean"]
    crossings = {
        name: first_crossing(
            summary["curve_steps"], np.mean(summary["curve_returns"], axis=0), threshold
        )
        for name, summary in ((OURS, ours), (BASELINE, baseline))
    }
    # A count that the untrained policy already meets measures no learning: no ratio of it.
    learned = {name: None if c.at_start else c.step for name, c in crossings.items()}
    return {
        "threshold": threshold,
        "steps_to_threshold": {name: crossing.step for name, crossing in crossings.items()},
        "threshold_at_start": {name: crossing.at_start for name, crossing in crossings.items()},
        "difference": mean_difference(ours["finals"], baseline["finals"]),
        "difference_ci": bootstrap_ci_two_sample(ours["finals"], baseline["finals"]),
        "probability_of_improvement": probability_of_improvement(
            ours["finals"], baseline["finals"]
        ),
        "probability_of_improvement_ci": bootstrap_ci_two_sample(
            ours["finals"], baseline["finals"], "probability_of_improvement"
        ),
        "ratios": {
            "return": safe_ratio(ours["mean"], baseline["mean"]),
            "steps_to_threshold": safe_ratio(learned[OURS], learned[BASELINE]),
            "steps_per_second": speed_ratio(ours, baseline),
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


def agent_summaries(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Return each agent's summary per env: ``{(framework, algo): {env_id: summary}}``.

    A row's baseline counts under ``baseline_algo`` when the row has one (the on-policy study
    compares REINFORCE with SB3's A2C), so a baseline shared by two rows counts once.
    """
    agents: dict[tuple[str, str], dict[str, Any]] = defaultdict(dict)
    for row in rows:
        for framework, algo in ((OURS, row["algo"]), (BASELINE, row.get("baseline_algo"))):
            if row.get(framework) is not None:
                agents[(framework, algo or row["algo"])][row["env_id"]] = row[framework]
    return dict(agents)


def score_references(agents: dict[tuple[str, str], dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Return each env's normalisation: its ``untrained`` return maps to 0, its ``best`` to 1.

    ``untrained``: the mean return of every run of every agent at its first checkpoint (the
    policy before training, on the same evaluation episodes); ``best``: the highest final
    return of any run. Both are measured in the runs themselves.
    """
    starts: dict[str, list[float]] = defaultdict(list)
    finals: dict[str, list[float]] = defaultdict(list)
    for by_env in agents.values():
        for env_id, summary in by_env.items():
            starts[env_id] += [curve[0] for curve in summary["curve_returns"]]
            finals[env_id] += summary["finals"]
    # Sorted: the stratified bootstrap then draws the same resamples whatever the rows' order.
    return {
        env_id: {"untrained": float(np.mean(starts[env_id])), "best": float(max(finals[env_id]))}
        for env_id in sorted(starts)
    }


def aggregate_scores(
    rows: Sequence[dict[str, Any]], n_resamples: int = 2000
) -> dict[str, Any] | None:
    """Return each agent's aggregate over envs of normalised final returns (None: one env).

    Scores are ``normalize_scores`` of the final returns with ``score_references``; per agent,
    their IQM and optimality gap (shortfall from the best run, 1) with stratified-bootstrap
    95 % CIs (seeds resampled within each env). An env where no run ends above the untrained
    return, or an agent without the same number of runs on every env, is left out and named.

    Returns:
        ``references`` (per env ``untrained`` and ``best``), ``agents`` (``framework``,
        ``algo``, ``envs``, ``n_runs`` per env, ``iqm``, ``iqm_ci``, ``optimality_gap``,
        ``optimality_gap_ci``) and ``left_out`` (one sentence each).
    """
    agents = agent_summaries(rows)
    references = score_references(agents)
    if len(references) < 2:
        return None
    envs = [env_id for env_id, r in references.items() if r["best"] > r["untrained"]]
    left_out = [
        f"{env_id}: no run ends above the untrained return"
        for env_id in references
        if env_id not in envs
    ]
    low = [references[env_id]["untrained"] for env_id in envs]
    high = [references[env_id]["best"] for env_id in envs]
    aggregates = []
    # With fewer than two envs left there is nothing to aggregate.
    for (framework, algo), by_env in agents.items() if len(envs) > 1 else ():
        counts = {len(by_env[env_id]["finals"]) for env_id in envs if env_id in by_env}
        if not set(envs) <= set(by_env) or len(counts) != 1:
            left_out.append(f"{framework} {algo}: not the same number of runs on every env")
            continue
        scores = normalize_scores(np.array([by_env[e]["finals"] for e in envs]).T, low, high)
        aggregates.append(
            {
                "framework": framework,
                "algo": algo,
                "envs": envs,
                "n_runs": counts.pop(),
                "iqm": aggregate_iqm(scores),
                "iqm_ci": stratified_bootstrap_ci(scores, aggregate_iqm, n_resamples=n_resamples),
                "optimality_gap": optimality_gap(scores),
                "optimality_gap_ci": stratified_bootstrap_ci(
                    scores, optimality_gap, n_resamples=n_resamples
                ),
            }
        )
    aggregates.sort(key=lambda a: (a["algo"], a["framework"] != OURS))
    return {"references": references, "agents": aggregates, "left_out": left_out}


def aggregate_lines(aggregate: dict[str, Any] | None) -> list[str]:
    """Return the Markdown section of ``aggregate_scores``, blank line last (none: no lines)."""
    if aggregate is None:
        return []
    names = {OURS: "ours", BASELINE: "SB3"}
    lines = [
        "## Across envs",
        "",
        "Final returns normalised per env: 0 = the untrained policy (mean return of every run "
        "at its first checkpoint), 1 = the best final return of any run of either library. "
        "Per agent, over all its runs on every env: the IQM of the normalised scores, and the "
        "optimality gap (1 − the mean of the scores capped at 1: how far the runs fall short "
        "of the best one), each with a 95 % stratified-bootstrap CI (seeds resampled within "
        "each env).",
        "",
        *markdown_table(
            ["agent", "envs × runs", "IQM [95% CI]", "optimality gap [95% CI]"],
            (
                [
                    f"{names[a['framework']]} {a['algo'].upper()}",
                    f"{len(a['envs'])} × {a['n_runs']}",
                    format_interval(a, "iqm", "iqm_ci"),
                    format_interval(a, "optimality_gap", "optimality_gap_ci"),
                ]
                for a in aggregate["agents"]
            ),
        ),
        "",
        *markdown_table(
            ["env", "0: untrained return", "1: best final return"],
            (
                [env_id, format_number(r["untrained"]), format_number(r["best"])]
                for env_id, r in aggregate["references"].items()
            ),
        ),
        "",
    ]
    if aggregate["left_out"]:
        lines += ["Left out: " + "; ".join(aggregate["left_out"]) + ".", ""]
    return lines


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


def format_difference(row: dict[str, Any] | None) -> str:
    """Return a row's ours − baseline with its two-sample CI ("—" when None)."""
    return format_interval(row, "difference", "difference_ci")


def format_probability(row: dict[str, Any] | None) -> str:
    """Return a row's P(ours > baseline) with its two-sample CI ("—" when None)."""
    return format_interval(row, "probability_of_improvement", "probability_of_improvement_ci")


def format_steps(step: int | None, at_start: bool) -> str:
    """Return a step count to a threshold: ``"not reached"``, or marked when untrained."""
    if step is None:
        return "not reached"
    return f"{step:,} (untrained)" if at_start else f"{step:,}"


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
        "seed; mean and IQM with 95 % percentile-bootstrap CIs across seeds. ours − SB3 (the "
        "difference of the means) and P(ours > SB3) (the chance that a random run of ours "
        "beats a random SB3 run, ties counting one half) have 95 % two-sample bootstrap CIs: "
        "each library's seeds resampled on their own. Ratios are ours / SB3 (return ratios "
        "only when both are positive).",
        "",
        "## Return",
        "",
        "| env | algo | seeds | ours: mean [95% CI] | SB3: mean [95% CI] | ours: IQM [95% CI] "
        "| SB3: IQM [95% CI] | ours − SB3 [95% CI] | ratio | P(ours > SB3) [95% CI] |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ours, baseline = row.get(OURS), row.get(BASELINE)
        seeds = "/".join(str(s["n_runs"]) for s in (ours, baseline) if s)
        compared = row if "difference" in row else None
        lines.append(
            f"| {row['env_id']} | {row['algo']} | {seeds} | {format_interval(ours)} "
            f"| {format_interval(baseline)} | {format_interval(ours, 'iqm', 'iqm_ci')} "
            f"| {format_interval(baseline, 'iqm', 'iqm_ci')} "
            f"| {format_difference(compared)} "
            f"| {format_number(row.get('ratios', {}).get('return'))} "
            f"| {format_probability(compared)} |"
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
        reached, at_start, ratios = (
            row["steps_to_threshold"],
            row["threshold_at_start"],
            row["ratios"],
        )
        untrained |= any(at_start.values())
        lines.append(
            f"| {row['env_id']} | {row['algo']} | {format_number(row['threshold'])} "
            f"| {format_steps(reached[OURS], at_start[OURS])} "
            f"| {format_steps(reached[BASELINE], at_start[BASELINE])} "
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
            "return, so that step count says nothing about learning speed; a ratio with such "
            "a count is left out.",
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
    lines += ["", *aggregate_lines(aggregate_scores(rows)), "## Learning curves", ""]
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

    ``summary.json`` holds ``rows`` (``summarize``) and ``aggregate`` (``aggregate_scores``).

    Returns:
        The path of ``report.md``.
    """
    import json

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rows = summarize(results)
    for row in rows:
        plot_curves(row, directory / plot_file_name(row))
    summary = {"rows": rows, "aggregate": aggregate_scores(rows)}
    (directory / "summary.json").write_text(json.dumps(summary, indent=1))
    path = directory / "report.md"
    path.write_text(render_markdown(rows, results, run_info))
    return path
