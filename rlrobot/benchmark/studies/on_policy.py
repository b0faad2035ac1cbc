"""On-policy study: our PPO, A2C and REINFORCE against Stable-Baselines3's PPO and A2C.

``build_bench_specs`` pairs each of our trials with SB3's on the same resolved config
(``rlrobot/configs/{algo}.yaml``, translated by ``to_sb3``), env, number of envs, seeds, budget and
evaluation schedule; ``run_bench`` runs them (one torch thread per trial, ours and SB3's
interleaved, finished trials cached by key) and writes the generic report, per-trial JSON and
per-row curves to the trials folder (``docs/benchmarks/on_policy/``). The study adds
``on_policy.md``: one table of every env × algo (REINFORCE, which SB3 lacks, against SB3's
A2C) with ours − SB3 and P(ours > SB3) and their CIs, each agent's aggregate over the envs, a
learning-curve figure per env and the goals of issue 3 checked row by row; its hand-written
findings are kept. ``on_policy.json`` next to it holds the rows (per-seed final returns
included) and the aggregate.

    rlrobot bench --study on_policy --out docs/benchmarks   # full run (see the report's time)
    rlrobot bench --study on_policy --quick                 # smoke run, temp folder
    rlrobot bench --study on_policy --report-only docs/benchmarks   # rebuild, no training

Rerunning with the same arguments trains nothing already finished and rewrites the reports.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rlrobot.benchmark.bench import (
    build_bench_specs,
    load_bench_results,
    resolve_trial_config,
    run_bench,
)
from rlrobot.benchmark.report import (
    BASELINE,
    OURS,
    aggregate_lines,
    aggregate_scores,
    compare_summaries,
    environment_lines,
    failed_trial_lines,
    format_difference,
    format_interval,
    format_probability,
    plot_summary_curve,
    summarize,
    write_keeping_findings,
    write_report,
)
from rlrobot.benchmark.runner import Execution, TrialStore
from rlrobot.benchmark.studies import StudyOptions
from rlrobot.benchmark.trial import TrialSpec

NAME = "on_policy"
# Slowest env first, so that both workers stay busy until the end.
ENV_IDS = ["rlrobot/Reach-v0", "rlrobot/CartPole-v0", "Acrobot-v1", "CartPole-v1"]
ALGOS = ["ppo", "a2c", "reinforce"]
# Algorithms without an SB3 counterpart are compared with SB3's run of this one.
REFERENCE_ALGO = {"reinforce": "a2c"}
# Fraction of each config's n_timesteps (times --budget-scale): the whole run then takes about
# 25 minutes on 2 cores shared with other work (the full budgets would take about an hour).
BUDGET_FRACTION = 0.4
EVAL_EPISODES = 10
# Trials run at a time unless --workers says otherwise (and for runs that did not record it).
DEFAULT_WORKERS = 2
# Issue 3's goals: return >= SB3's on every row; training throughput >= 1.5x SB3's.
SPEED_GOAL = 1.5
COLORS = {"ppo": "tab:blue", "a2c": "tab:orange", "reinforce": "tab:green"}


def build_specs(
    env_ids: Sequence[str], seeds: Sequence[int], budget_scale: float, quick: bool
) -> list[TrialSpec]:
    """Return the trials: env × algo × seed × (ours, SB3 where it has the algorithm).

    Each trial trains ``budget_scale`` × its config's ``n_timesteps`` (quick: 512 steps).
    """
    specs = []
    for env_id in env_ids:
        for algo in ALGOS:
            budget = resolve_trial_config(algo, env_id).steps
            steps = 512 if quick else max(1, round(budget * budget_scale))
            specs += build_bench_specs(
                [env_id],
                [algo],
                seeds,
                steps=steps,
                eval_episodes=2 if quick else EVAL_EPISODES,
            )
    return specs


def compare_rows(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return ``summarize``'s rows, with REINFORCE compared against SB3's A2C on the same env.

    Each row gains ``baseline_algo``: the SB3 algorithm its ``sb3`` summary comes from.
    """
    rows = summarize(results)
    by_key = {(row["env_id"], row["algo"]): row for row in rows}
    for row in rows:
        row["baseline_algo"] = REFERENCE_ALGO.get(row["algo"], row["algo"])
        reference = by_key.get((row["env_id"], row["baseline_algo"]), {})
        if BASELINE not in row and OURS in row and BASELINE in reference:
            row[BASELINE] = reference[BASELINE]
            row.update(compare_summaries(row[OURS], row[BASELINE]))
    order = {env_id: i for i, env_id in enumerate(ENV_IDS)}
    rows.sort(key=lambda r: (order.get(r["env_id"], len(order)), ALGOS.index(r["algo"])))
    return rows


def plot_envs(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """One panel per env: every agent's seed-mean evaluation return with its 95 % band."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    env_ids = list(dict.fromkeys(row["env_id"] for row in rows))
    n_columns = min(2, len(env_ids))
    n_rows = -(-len(env_ids) // n_columns)
    figure, axes = plt.subplots(
        n_rows, n_columns, figsize=(5.5 * n_columns, 4 * n_rows), squeeze=False
    )
    for axis in axes.flat[len(env_ids) :]:
        axis.axis("off")
    for axis, env_id in zip(axes.flat, env_ids, strict=False):
        for row in (r for r in rows if r["env_id"] == env_id):
            algo = row["algo"]
            if OURS in row:
                plot_summary_curve(axis, row[OURS], f"ours {algo.upper()}", COLORS[algo])
            if BASELINE in row and row["baseline_algo"] == algo:
                plot_summary_curve(
                    axis, row[BASELINE], f"SB3 {algo.upper()}", COLORS[algo], linestyle="--"
                )
        axis.set_title(env_id, fontsize=10)
        axis.set_xlabel("env steps")
        axis.set_ylabel("evaluation return")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def render_markdown(
    rows: Sequence[dict[str, Any]],
    results: Sequence[dict[str, Any]],
    specs: Sequence[TrialSpec],
    command: str,
    quick: bool,
    *,
    workers: int,
    folder: str = NAME,
) -> str:
    """Return ``on_policy.md`` without its findings: setup, results table, goals, curves.

    Args:
        rows: ``compare_rows`` of the results.
        results: The trials' results.
        specs: The trials.
        command: The command that wrote the page.
        quick: Whether it was a smoke run.
        workers: Trials run at a time.
        folder: The trials folder (generic report, curves), relative to the page.
    """
    done = [r for r in results if r.get("status") == "ok"]
    trial_minutes = sum(r["wall_time_s"] for r in done) / 60
    lines = [
        "# On-policy benchmark: rlrobot PPO / A2C / REINFORCE vs Stable-Baselines3",
        "",
        f"Written by `{command}`"
        + (" (smoke run, numbers meaningless)." if quick else ".")
        + f" {len(done)} trials, {trial_minutes:.1f} trial-minutes in all, {workers} at a time "
        f"(about {trial_minutes / workers:.0f} min of wall time).",
        "",
        "## Setup",
        "",
        "- **Matched**: for each env × algo, ours and SB3's get the same resolved config from "
        "`rlrobot/configs/{ppo,a2c,reinforce}.yaml` (translated by `rlrobot.benchmark.sb3.to_sb3`: "
        "network, activation, init, optimizer and ε, schedules, normalisation), the same env "
        "id, number of envs, seeds "
        f"{sorted({s.seed for s in specs})}, budget and evaluation schedule.",
        "- **REINFORCE** has no SB3 counterpart; its row is compared with SB3's **A2C** on the "
        "same env (same budget; A2C's own config).",
        "- **Final return**: deterministic evaluation at the last checkpoint "
        f"({specs[0].eval_episodes} episodes, the same start states for both libraries), one "
        "value per seed; mean with a 95 % percentile-bootstrap CI over seeds. ours − SB3: the "
        "difference of the means; P(ours > SB3): the chance that a random run of ours beats a "
        "random SB3 run (ties one half); both with 95 % two-sample bootstrap CIs (each "
        f"library's seeds resampled on their own). {seed_caveat(rows)}",
        "- **Training steps/s**: env steps / time in `learn()` minus the evaluations in it "
        "(env stepping included); **wall time**: the whole trial (set-up, training, "
        "evaluation). One torch thread per trial, "
        f"{workers} trials at a time, ours and SB3's interleaved.",
        f"- **Load caveat**: the machine has 2 cores shared with other engineers' jobs "
        f"({describe_load(done)}), so absolute steps/s are low and noisy; ours and SB3's "
        "ran side by side under the same load, so the ratios are the fair part.",
        "",
        "Budgets (env steps per trial, rounded up to whole rollouts; the configs' "
        "`n_timesteps` scaled down so that the run fits the machine — short-budget results, "
        "not converged performance):",
        "",
        "| env | algo | n_envs | steps |",
        "|---|---|---|---|",
        *dict.fromkeys(f"| {s.env_id} | {s.algo} | {s.n_envs} | {s.steps:,} |" for s in specs),
        "",
        "## Results",
        "",
        "| env | algo (SB3 baseline) | ours: return [95% CI] | SB3 | ours − SB3 [95% CI] "
        "| P(ours > SB3) [95% CI] | train steps/s: ours | SB3 | ratio | wall s: ours | SB3 "
        "| ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ours, baseline = row.get(OURS), row.get(BASELINE)
        if not (ours and baseline):
            continue
        ratios = row["ratios"]
        algo = row["algo"].upper()
        if row["baseline_algo"] != row["algo"]:
            algo += f" (vs {row['baseline_algo'].upper()})"
        lines.append(
            f"| {row['env_id']} | {algo} | {format_interval(ours)} | {format_interval(baseline)} "
            f"| {format_difference(row)} | {format_probability(row)} "
            f"| {ours['steps_per_second']:.0f} | {baseline['steps_per_second']:.0f} "
            f"| {ratios['steps_per_second']:.2f}× "
            f"| {ours['wall_time_s']:.0f} | {baseline['wall_time_s']:.0f} "
            f"| {ratios['wall_time']:.2f}× |"
        )
    lines += ["", *goal_lines(rows, specs), "", *aggregate_lines(aggregate_scores(rows))]
    lines += [
        "## Learning curves",
        "",
        "Seed-mean deterministic evaluation return with 95 % bootstrap bands; solid: ours, "
        "dashed: SB3.",
        "",
        f"![learning curves]({folder}/learning_curves.png)",
        "",
        f"Per env × algo plots, IQMs and steps to reach SB3's final return: "
        f"[{folder}/report.md]({folder}/report.md); per-trial results (curves, timings, "
        f"specs): `{folder}/trials/`.",
        "",
        "## Failed trials",
        "",
        *failed_trial_lines(results),
    ]
    lines += environment_lines(results)
    return "\n".join(lines) + "\n"


def seed_caveat(rows: Sequence[dict[str, Any]]) -> str:
    """Say how rough the intervals are when a side has 3 seeds or fewer ("" otherwise).

    With ``n <= 3`` values the 95 % percentile-bootstrap interval of their mean is their range,
    and the range of ``n`` runs holds the true median with probability ``1 − 2 · 0.5^n``.
    """
    counts = [row[f]["n_runs"] for row in rows for f in (OURS, BASELINE) if row.get(f)]
    if not counts or min(counts) > 3:
        return ""
    n = min(counts)
    return (
        f"With {n} seeds a side a 95 % interval of a mean is the range of the seeds, which "
        f"holds the true median only {100 * (1 - 2 * 0.5**n):.0f} % of the time: read the "
        "intervals as rough."
    )


def describe_load(results: Sequence[dict[str, Any]]) -> str:
    """Describe the 1-minute load average while the trials ran (each records it at its end)."""
    recorded = [
        r["machine"]["load_average"][0] for r in results if r["machine"].get("load_average")
    ]
    if not recorded:
        return "the load average was not recorded with these trials; other jobs came and went"
    return (
        f"1-minute load average {min(recorded):.1f}–{max(recorded):.1f} at the ends of the "
        f"trials, median {float(np.median(recorded)):.1f}"
    )


def goal_lines(rows: Sequence[dict[str, Any]], specs: Sequence[Any]) -> list[str]:
    """Return the Markdown that checks issue 3's goals (return ≥ SB3's, speed ≥ 1.5×) per row.

    The return goal is judged on the rows of the same algorithm by the 95 % CI of ours − SB3
    (above 0, below 0, or holding 0: not told apart). Each row below SB3's mean or under the
    speed goal gets the reason that can be read off the run: a difference within the noise, a
    comparison across algorithms, an env that costs more than the agent, or updates so rare
    that per-step work dominates.
    """
    compared = [row for row in rows if row.get(OURS) and row.get(BASELINE)]
    if not compared:
        return []
    spec_of = {(s.env_id, s.algo): s for s in specs}
    below = [r for r in compared if r["difference"] < 0]
    same = [r for r in compared if r["baseline_algo"] == r["algo"]]
    higher = sum(r["difference_ci"][0] > 0 for r in same)
    lower = sum(r["difference_ci"][1] < 0 for r in same)
    speeds = np.array([r["ratios"]["steps_per_second"] for r in compared])
    slow = [r for r in compared if r["ratios"]["steps_per_second"] < SPEED_GOAL]

    def name(row: dict[str, Any]) -> str:
        return f"{row['algo'].upper()} on {row['env_id']}"

    def rollout(row: dict[str, Any]) -> int:
        spec = spec_of[(row["env_id"], row["algo"])]
        return spec.config["n_steps"] * spec.n_envs

    def return_reason(row: dict[str, Any]) -> str:
        reasons = []
        if row["difference_ci"][1] >= 0:
            reasons.append("within the noise: the CI of ours − SB3 holds 0")
        if row["baseline_algo"] != row["algo"]:
            updates = -(-spec_of[(row["env_id"], row["algo"])].steps // rollout(row))
            reasons.append(
                f"another algorithm: REINFORCE updates once per {rollout(row):,} steps, "
                f"{updates} times in this budget"
            )
        return "; ".join(reasons)

    def speed_reason(row: dict[str, Any]) -> str:
        if "Reach" in row["env_id"]:
            return "env-bound: a PyBullet arm step costs ~0.7 ms, see [envs.md](envs.md)"
        if row["baseline_algo"] != row["algo"]:
            return "another algorithm"
        if rollout(row) <= 128:
            return (
                f"an update every {rollout(row)} steps: env steps and per-step inference, the "
                "same torch calls in both libraries, take most of the time"
            )
        return ""

    def line(row: dict[str, Any], text: str, reason: str) -> str:
        return f"  - below: {name(row)}: {text}" + (f" ({reason})" if reason else "")

    lines = [
        "**Against the goals of issue 3:**",
        "",
        f"- Final return against SB3's, on the {len(same)} rows of the same algorithm: the "
        f"95 % CI of ours − SB3 lies above 0 on {higher}, below 0 on {lower} and holds 0 (not "
        f"told apart) on {len(same) - higher - lower}. Not counted: the REINFORCE rows "
        f"({len(compared) - len(same)}), compared with another algorithm (SB3's A2C).",
        *(
            line(
                r,
                f"{format_difference(r)}, P(ours > SB3) = {format_probability(r)}",
                return_reason(r),
            )
            for r in below
        ),
        f"- Training throughput ≥ {SPEED_GOAL}× SB3's: {len(compared) - len(slow)} of "
        f"{len(compared)} rows; ratios {speeds.min():.2f}–{speeds.max():.2f}×, geometric mean "
        f"{float(np.exp(np.log(speeds).mean())):.2f}×.",
        *(line(r, f"{r['ratios']['steps_per_second']:.2f}×", speed_reason(r)) for r in slow),
    ]
    return lines


def main(options: StudyOptions) -> Path:
    """Run the trials not yet in the trials folder, write the reports; return ``on_policy.md``."""
    out_dir, trials_dir, quick = options.out_dir, options.trials_dir, options.quick
    execution = options.execution or Execution(workers=DEFAULT_WORKERS)
    fraction = BUDGET_FRACTION * options.budget_scale
    specs = build_specs(["CartPole-v1"] if quick else ENV_IDS, options.seeds, fraction, quick)
    workers = execution.workers or os.cpu_count() or 1
    settings = {
        "seeds": len(options.seeds),
        "budget scale": fraction,
        "eval interval": "a tenth of the steps",
        "eval episodes": specs[0].eval_episodes,
        "workers": workers,
        "quick": quick,
    }
    run_bench(specs, trials_dir, execution, settings, options.command)
    store = TrialStore(trials_dir)
    results = [r for r in (store.load(spec.key) for spec in specs) if r is not None]
    return write_page(out_dir, trials_dir, results, specs, options.command, quick, workers)


def rewrite_report(out_dir: Path) -> Path:
    """Rebuild the trials folder's report and ``on_policy.md`` from the stored trials alone.

    The trials folder is ``out_dir/on_policy`` (the study's default); its ``bench.json``
    names the trials, their specs come from their results.
    """
    trials_dir = Path(out_dir) / NAME
    results, run_info = load_bench_results(trials_dir)
    write_report(trials_dir, results, run_info)
    settings = run_info.get("settings", {})
    specs = [TrialSpec.from_dict(result["spec"]) for result in results]
    return write_page(
        Path(out_dir),
        trials_dir,
        results,
        specs,
        run_info.get("command", ""),
        settings.get("quick", False),
        settings.get("workers", DEFAULT_WORKERS),
    )


def write_page(
    out_dir: Path,
    trials_dir: Path,
    results: Sequence[dict[str, Any]],
    specs: Sequence[TrialSpec],
    command: str,
    quick: bool,
    workers: int,
) -> Path:
    """Write the learning-curve figure, ``on_policy.md`` and ``on_policy.json``; return the page.

    ``on_policy.json``: ``rows`` (``compare_rows``: per env × algo each library's summary with
    its per-seed final returns, and the comparison) and ``aggregate`` (``aggregate_scores``).
    """
    rows = compare_rows(results)
    plot_envs(rows, trials_dir / "learning_curves.png")
    markdown = out_dir / f"{NAME}.md"
    folder = os.path.relpath(trials_dir, out_dir)
    page = render_markdown(rows, results, specs, command, quick, workers=workers, folder=folder)
    write_keeping_findings(markdown, page)
    summary = {"rows": rows, "aggregate": aggregate_scores(rows)}
    (out_dir / f"{NAME}.json").write_text(json.dumps(summary, indent=1) + "\n")
    return markdown

    return markdown
