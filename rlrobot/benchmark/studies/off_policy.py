"""Off-policy study: our SAC and TD3 (with HER on sparse Reach) against Stable-Baselines3.

Three parts, written to ``off_policy.md`` (its hand-written findings kept) and ``off_policy.png``,
with every number behind them (per-trial results with their per-seed curves, the comparison
rows, the update-step and memory measurements) in ``off_policy.json``:

1. Learning runs (``rlrobot.benchmark`` trials): for each env × algo, ours and SB3's with the
   same resolved config from ``rlrobot/configs/{sac,td3}.yaml`` (translated field by field by
   ``rlrobot.benchmark.sb3.to_sb3``, HER included), the same seeds, budgets, evaluation
   schedule and one torch thread, two trials at a time with ours and SB3's interleaved.
   Pendulum also runs ours with bfloat16 matmuls (``matmul_dtype: bfloat16``, mixed
   precision), compared with the same SB3 trials.
2. The update step, the hot path: milliseconds of CPU time per gradient step (sampling
   included) of ours (float32 and bfloat16 matmuls) and SB3's on the same filled buffer,
   measured in alternating rounds, and the part of it spent inside matmul kernels.
3. Replay-buffer memory: bytes held for 1M transitions of 30-dim observations and for 100k
   84×84 RGB image observations, ours against SB3's ``ReplayBuffer``.

    rlrobot bench --study off_policy --out docs/benchmarks   # full run (see the report's time)
    rlrobot bench --study off_policy --quick                 # smoke run, temp folder
    rlrobot bench --study off_policy --report-only docs/benchmarks   # rebuild from the JSON
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rlrobot.benchmark.bench import build_bench_specs, resolve_trial_config
from rlrobot.benchmark.report import (
    aggregate_lines,
    aggregate_scores,
    environment_lines,
    failed_trial_lines,
    format_difference,
    format_interval,
    format_probability,
    summarize,
    write_keeping_findings,
)
from rlrobot.benchmark.runner import Execution, TrialStore, run_trials
from rlrobot.benchmark.studies import StudyOptions
from rlrobot.benchmark.trial import TrialSpec

CASES = [("Pendulum-v1", "sac"), ("Pendulum-v1", "td3"), ("rlrobot/Reach-v0", "sac"),
         ("rlrobot/Reach-v0", "td3")]  # fmt: skip
MIXED_PRECISION_CASES = CASES[:2]
BFLOAT16 = "matmul_dtype=bfloat16"
BUDGETS = {"Pendulum-v1": 20_000, "rlrobot/Reach-v0": 5000}
# Profiler names of the dense matmul kernels (nn.Linear lowers to addmm, the critic ensemble
# to baddbmm, and their backward passes to mm / bmm).
MATMUL_OPS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"}
EVAL_EPISODES = 10
JSON_NAME = "off_policy.json"


def build_specs(seeds: Sequence[int], quick: bool, budget_scale: float) -> list[TrialSpec]:
    """Return the learning trials: every case × seed × (ours, SB3), plus ours in bfloat16."""
    specs = []
    for cases, precision in ((CASES, {}), (MIXED_PRECISION_CASES, {"overrides": [BFLOAT16]})):
        for env_id, algo in cases[:1] if quick else cases:
            steps = 600 if quick else int(BUDGETS[env_id] * budget_scale)
            specs += build_bench_specs(
                [env_id],
                [algo],
                seeds,
                steps=steps,
                baseline=None if precision else "sb3",
                eval_interval=steps // 5,
                eval_episodes=2 if quick else EVAL_EPISODES,
                **precision,
            )
    # Each seed's float32, SB3 and bfloat16 trials run back to back, so the load of the shared
    # machine changes as little as possible between the runs that are compared.
    order = {case: index for index, case in enumerate(CASES)}
    return sorted(specs, key=lambda spec: (order[(spec.env_id, spec.algo)], spec.seed))


def is_bfloat16(result: dict[str, Any]) -> bool:
    """Whether a trial ran our agent with bfloat16 matmuls."""
    return result["spec"]["config"].get("matmul_dtype") == "bfloat16"


def split_series(
    results: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return the float32 comparison's trials and the bfloat16 one's (with the same SB3 ones).

    Cases without a bfloat16 run have only SB3's trials in the second, hence no row there.
    """
    fp32 = [r for r in results if not is_bfloat16(r)]
    mixed = [r for r in results if is_bfloat16(r) or r["spec"]["framework"] == "sb3"]
    return fp32, mixed


def label(result: dict[str, Any]) -> str:
    """The series a trial belongs to: ``rlrobot``, ``rlrobot bf16`` or ``sb3``."""
    return result["spec"]["framework"] + (" bf16" if is_bfloat16(result) else "")


# -- the update step --------------------------------------------------------------------------
def make_agents(env_id: str, algo: str, seed: int = 0) -> tuple[Any, Any, Any]:
    """Return ours (float32), ours (bfloat16 matmuls) and SB3's from one resolved config."""
    from rlrobot.agents import ALGORITHMS
    from rlrobot.benchmark.sb3 import make_sb3_agent

    resolved = resolve_trial_config(algo, env_id)
    config = ALGORITHMS[algo].config_class.from_dict(resolved.config)
    ours, ours_bf16 = (
        ALGORITHMS[algo](
            env_id, env_kwargs=resolved.env_kwargs, seed=seed, device="cpu", config=variant
        )
        for variant in (config, config.replace(matmul_dtype="bfloat16"))
    )
    theirs = make_sb3_agent(algo, config, env_id, resolved.env_kwargs, 1, seed).model
    return ours, ours_bf16, theirs


def time_update_step(env_id: str, algo: str, rounds: int, steps_per_round: int) -> dict[str, Any]:
    """Return CPU milliseconds per gradient step (sampling included), ours and SB3's.

    Ours runs twice, with float32 and with bfloat16 matmuls (same seed and config).

    Both first collect ``learning_starts + 500`` steps; then ``rounds`` alternating rounds of
    ``steps_per_round`` gradient steps each are timed with ``time.process_time`` (CPU time of
    this process, so other processes on a shared machine disturb it less than wall time).
    """
    import torch

    torch.set_num_threads(1)
    ours, ours_bf16, theirs = make_agents(env_id, algo)
    warmup = ours.config.learning_starts + 500
    for agent in (ours, ours_bf16, theirs):
        agent.learn(warmup)
    trainers = {
        "rlrobot": lambda n: ours.train(n, ours.config.batch_size),
        "rlrobot_bf16": lambda n: ours_bf16.train(n, ours_bf16.config.batch_size),
        "sb3": lambda n: theirs.train(gradient_steps=n, batch_size=theirs.batch_size),
    }
    times: dict[str, list[float]] = {name: [] for name in trainers}
    for _ in range(rounds):
        for name, train in trainers.items():
            start = time.process_time()
            train(steps_per_round)
            times[name].append((time.process_time() - start) / steps_per_round * 1e3)
    matmuls: dict[str, list[tuple[float, float]]] = {"rlrobot": [], "sb3": []}
    for _ in range(3):
        for name, values in matmuls.items():
            values.append(matmul_profile(trainers[name], steps_per_round))
    ours.env.close()
    ours_bf16.env.close()
    theirs.get_env().close()
    medians = {name: float(np.median(values)) for name, values in times.items()}
    return {
        "env_id": env_id,
        "algo": algo,
        **medians,
        "speedup": medians["sb3"] / medians["rlrobot"],
        "speedup_bf16": medians["sb3"] / medians["rlrobot_bf16"],
        **{
            f"{quantity}_{name}": float(np.median([value[i] for value in values]))
            for name, values in matmuls.items()
            for i, quantity in enumerate(("matmul", "gflops"))
        },
    }


def matmul_profile(train: Any, steps: int) -> tuple[float, float]:
    """Return the CPU milliseconds per gradient step inside matmul kernels, and their GFLOP/s.

    Measured under ``torch.profiler`` in one extra round (self time and FLOP count of the
    ``MATMUL_OPS`` calls), so the matmuls run on the same buffers, caches and neighbours as in
    training.
    """
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as profiler:
        train(steps)
    events = [event for event in profiler.key_averages() if event.key in MATMUL_OPS]
    matmul_us = sum(event.self_cpu_time_total for event in events)
    flops = sum(event.flops for event in events)
    return matmul_us / 1e3 / steps, flops / matmul_us / 1e3


def matmul_peak_gflops(size: int = 1024, repeats: int = 5) -> float:
    """Return this CPU's float32 matmul GFLOP/s on one thread (best of ``repeats`` products).

    ``size``³ products are large enough for the BLAS kernel to run at its peak.
    """
    import torch

    torch.set_num_threads(1)
    left, right = torch.randn(size, size), torch.randn(size, size)
    out = torch.empty(size, size)
    torch.mm(left, right, out=out)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(left, right, out=out)
        seconds.append(time.perf_counter() - start)
    return 2 * size**3 / min(seconds) / 1e9


# -- memory -----------------------------------------------------------------------------------
def measure_memory() -> list[dict[str, Any]]:
    """Return the bytes held by ours and SB3's replay buffers for two observation kinds.

    Arrays are allocated with ``np.zeros`` (pages are only touched when written), so even the
    large buffers cost no real memory here; ``nbytes`` is what a filled buffer holds.
    """
    import gymnasium as gym
    from stable_baselines3.common.buffers import ReplayBuffer as SB3ReplayBuffer

    from rlrobot.common.replay_buffer import ReplayBuffer

    cases = [
        ("1M × 30 float32 obs, 8-dim actions", 1_000_000, gym.spaces.Box(-1, 1, (30,), np.float32)),
        ("100k × 84×84×3 uint8 images", 100_000, gym.spaces.Box(0, 255, (84, 84, 3), np.uint8)),
    ]
    action_space = gym.spaces.Box(-1, 1, (8,), np.float32)
    rows = []
    for name, size, observation_space in cases:
        ours = ReplayBuffer(size, observation_space, action_space)
        theirs = SB3ReplayBuffer(size, observation_space, action_space, device="cpu")
        sb3_bytes = sum(
            array.nbytes
            for array in (
                theirs.observations,
                theirs.next_observations,
                theirs.actions,
                theirs.rewards,
                theirs.dones,
                theirs.timeouts,
            )
        )
        rows.append(
            {
                "case": name,
                "ours_mb": ours.nbytes / 1e6,
                "observations_mb": ours.observations[""].nbytes / 1e6,
                "sb3_mb": sb3_bytes / 1e6,
            }
        )
    return rows


# -- report -----------------------------------------------------------------------------------
def final_success(result: dict[str, Any]) -> float | None:
    """Success rate at the last checkpoint of a trial (None when the env reports none)."""
    return result["curve"][-1].get("success_rate")


def cpu_steps_per_second(results: list[dict[str, Any]]) -> dict[tuple[str, str, str], float]:
    """Mean env steps per CPU-second of training per (env, algo, series ``label``)."""
    groups: dict[tuple[str, str, str], list[float]] = {}
    for result in results:
        if result.get("status") == "ok" and "cpu_steps_per_second" in result:
            spec = result["spec"]
            key = (spec["env_id"], spec["algo"], label(result))
            groups.setdefault(key, []).append(result["cpu_steps_per_second"])
    return {key: float(np.mean(values)) for key, values in groups.items()}


def plot_curves(results: list[dict[str, Any]], path: Path) -> None:
    """One panel per case: mean evaluation return (success rate on Reach) vs env steps."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    cases = list(dict.fromkeys((r["spec"]["env_id"], r["spec"]["algo"]) for r in results))
    figure, axes = plt.subplots(1, len(cases), figsize=(4 * len(cases), 3.3), squeeze=False)
    for axis, (env_id, algo) in zip(axes.flat, cases, strict=True):
        series = (("rlrobot", "tab:blue"), ("rlrobot bf16", "tab:green"), ("sb3", "tab:orange"))
        for framework, color in series:
            runs = [
                r for r in results
                if (r["spec"]["env_id"], r["spec"]["algo"], label(r)) == (env_id, algo, framework)
            ]  # fmt: skip
            if not runs:
                continue
            key = "success_rate" if final_success(runs[0]) is not None else "mean_return"
            length = min(len(r["curve"]) for r in runs)
            steps = [c["step"] for c in runs[0]["curve"][:length]]
            values = np.array([[c[key] for c in r["curve"][:length]] for r in runs])
            mean = values.mean(axis=0)
            axis.plot(steps, mean, color=color, label=f"{framework} ({len(runs)} seeds)")
            axis.fill_between(steps, values.min(axis=0), values.max(axis=0), color=color, alpha=0.2)
            axis.set_ylabel("success rate" if key == "success_rate" else "evaluation return")
        her = " + HER (sparse)" if "Reach" in env_id else ""
        axis.set_title(f"{algo.upper()}{her} on {env_id}", fontsize=9)
        axis.set_xlabel("env steps")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def comparison_table(results: list[dict[str, Any]]) -> list[str]:
    """Markdown table of one series of ours (float32 or bfloat16) against SB3's trials."""
    rows = summarize(results)
    table = [
        "| env | algo | ours: final return [95% CI] | SB3 | ours − SB3 [95% CI] | ours: success "
        "| SB3 | P(ours > SB3) [95% CI] | steps/s (wall): ours | SB3 | ratio "
        "| steps/CPU-s: ours | SB3 | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    cpu_speed = cpu_steps_per_second(results)
    ours_label = "rlrobot bf16" if any(is_bfloat16(r) for r in results) else "rlrobot"
    for row in rows:
        ours, sb3 = row.get("rlrobot"), row.get("sb3")
        if not (ours and sb3):
            continue

        def success(summary: dict[str, Any]) -> str:
            return f"{summary['success_rate']:.2f}" if "success_rate" in summary else "—"

        speed = ours["steps_per_second"] / sb3["steps_per_second"]
        cpu = [cpu_speed.get((row["env_id"], row["algo"], f)) for f in (ours_label, "sb3")]
        cpu_cells = (
            f"{cpu[0]:.0f} | {cpu[1]:.0f} | {cpu[0] / cpu[1]:.2f}×"
            if None not in cpu
            else "— | — | —"
        )
        table.append(
            f"| {row['env_id']} | {row['algo']} | {format_interval(ours)} | {format_interval(sb3)} "
            f"| {format_difference(row)} | {success(ours)} | {success(sb3)} "
            f"| {format_probability(row)} "
            f"| {ours['steps_per_second']:.0f} | {sb3['steps_per_second']:.0f} | {speed:.2f}× "
            f"| {cpu_cells} |"
        )
    return table


def render_markdown(
    results: list[dict[str, Any]],
    updates: list[dict[str, Any]],
    memory: list[dict[str, Any]],
    peak_gflops: float,
    quick: bool,
    wall: float,
    reused_keys: Collection[str] = (),
    command: str = "rlrobot bench --study off_policy",
) -> str:
    """Return the report's Markdown without its findings.

    ``reused_keys``: trials loaded from the trials folder, finished by an earlier run.
    """
    fp32, mixed = split_series(results)
    table = comparison_table(fp32)
    mixed_table = comparison_table(mixed)
    update_table = [
        "| env | algo | ours: ms/update | ours, bfloat16 matmuls | SB3: ms/update "
        "| speed-up | speed-up, bfloat16 | ours: in matmuls | SB3: in matmuls "
        "| ours: matmul GFLOP/s | SB3 | ceiling |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *(
            f"| {u['env_id']} | {u['algo']} | {u['rlrobot']:.2f} | {u['rlrobot_bf16']:.2f} "
            f"| {u['sb3']:.2f} | {u['speedup']:.2f}× | {u['speedup_bf16']:.2f}× "
            f"| {u['matmul_rlrobot']:.2f} | {u['matmul_sb3']:.2f} "
            f"| {u['gflops_rlrobot']:.0f} | {u['gflops_sb3']:.0f} "
            f"| {u['sb3'] / u['matmul_rlrobot']:.2f}× |"
            for u in updates
        ),
    ]
    memory_table = [
        "| buffer | ours (MB) | of which observations | SB3 `ReplayBuffer` (MB) |",
        "|---|---|---|---|",
        *(
            f"| {m['case']} | {m['ours_mb']:.1f} | {m['observations_mb']:.1f} | {m['sb3_mb']:.1f} |"
            for m in memory
        ),
    ]
    reused = [r for r in results if r.get("key") in reused_keys]
    budgets = sorted({(r["spec"]["env_id"], r["spec"]["steps"]) for r in results})
    lines = [
        "# Off-policy benchmark: rlrobot SAC / TD3 / HER vs Stable-Baselines3",
        "",
        f"Written by `{command}`"
        + (" (smoke run, numbers meaningless)." if quick else ".")
        + f" Whole run: {wall / 60:.1f} min"
        + (
            f"; {len(reused)} of the {len(results)} learning trials are cached results in "
            f"the trials folder ({sum(r['wall_time_s'] for r in reused) / 60:.1f} trial-minutes "
            "of an earlier run)."
            if reused
            else "."
        ),
        "",
        "## Learning runs",
        "",
        f"- Seeds {sorted({r['spec']['seed'] for r in results})}; budgets "
        + ", ".join(f"{env} {steps:,} steps" for env, steps in budgets)
        + " (RL Zoo trains Pendulum for 20k steps; sparse Reach with HER is solved within "
        "5k).",
        "- Hyperparameters: `rlrobot/configs/sac.yaml` and `rlrobot/configs/td3.yaml` "
        "(RL Zoo settings), "
        "translated field by field for SB3 by `rlrobot.benchmark.sb3.to_sb3`: same net_arch, "
        "activation, learning rate, buffer, batch, τ, γ, learning_starts, train_freq, "
        "gradient_steps, entropy tuning / policy delay and target noise, Gaussian exploration "
        "noise 0.1 for TD3, and SB3's `HerReplayBuffer` with the same strategy and k on Reach.",
        f"- Final return / success: {EVAL_EPISODES} deterministic evaluation episodes at the "
        "last checkpoint (the same start states for both), mean over seeds with a 95 % "
        "percentile-bootstrap CI; ours − SB3 (difference of the means) and P(ours > SB3) "
        "(random pairs of runs, ties one half) with 95 % two-sample bootstrap CIs.",
        "- Train steps/s: env steps / time of `learn()` without evaluation, one torch "
        "thread per trial, two trials in parallel on a 2-core machine shared with other "
        "engineers' jobs. Wall-clock figures depend on how busy the machine was during each "
        "trial; steps per CPU-second (the trial process's CPU time, env steps included) are "
        "much less disturbed and are the ones to compare. Both include the env step (about "
        "2 ms for Reach) that the two libraries pay alike.",
        "",
        *table,
        "",
        *aggregate_lines(aggregate_scores(summarize(fp32))),
        "![learning curves](off_policy.png)",
        "",
        "Bands: min–max over seeds. Reach curves show the success rate of the sparse task.",
        "",
        "## Mixed precision: bfloat16 matmuls",
        "",
        "With `matmul_dtype: bfloat16` the hidden layers of the actor and critics multiply in "
        "bfloat16 under `torch.autocast` during the gradient updates (float32 accumulation, "
        "about twice the matmul throughput of float32 on this CPU's AVX512-BF16); weights, "
        "gradients, Adam state, the output layers (Q-values, action means and log-stds), every "
        "loss, and acting stay float32. "
        "Same trials, seeds and SB3 runs as the table above; SB3 has no such option and runs "
        "float32. float32 remains the default.",
        "",
        *mixed_table,
        "",
        "## The update step",
        "",
        "CPU milliseconds per gradient step (minibatch sampling, HER relabelling, critic, actor, "
        "entropy coefficient and target updates), median over alternating rounds on the same "
        "process and buffer fill. *in matmuls*: the float32 step's CPU milliseconds inside "
        "matmul kernels (forward and backward; self time of `aten::mm`, `addmm`, `bmm`, "
        "`baddbmm` under `torch.profiler`, median of 3 extra rounds, so they run on the same "
        "buffers and caches as in training). "
        "*ceiling* = SB3's step / our matmul time: the float32 speed-up ours would reach if "
        "everything besides its matmuls took no time at all. *matmul GFLOP/s*: the FLOPs of "
        "those kernels (as the profiler counts them) per second of their time; this CPU's "
        f"float32 peak, one thread on a 1024×1024 product in the same run: {peak_gflops:.0f} "
        "GFLOP/s.",
        "",
        *update_table,
        "",
        "## Replay-buffer memory",
        "",
        "Bytes a filled buffer holds (`nbytes`). Ours counts its ring of the final observations "
        "of ended episodes at its initial 1024 entries; SB3's `ReplayBuffer` runs without "
        "`optimize_memory_usage`.",
        "",
        *memory_table,
        "",
        "A 1M-transition buffer of 30-dim float observations holds "
        f"{memory[0]['ours_mb']:.0f} MB (< 300 MB).",
        "",
        "## Failed trials",
        "",
        *failed_trial_lines(results),
        *environment_lines(results),
    ]
    return "\n".join(lines) + "\n"


def main(options: StudyOptions) -> Path:
    """Run the learning trials not yet in the trials folder, time the update step, measure the
    buffers and write the report and its JSON; return ``off_policy.md``."""
    start = time.perf_counter()
    quick = options.quick
    store = TrialStore(options.trials_dir)
    specs = build_specs(options.seeds, quick, options.budget_scale)
    reused_keys = {spec.key for spec in specs if (store.load(spec.key) or {}).get("status") == "ok"}
    results = run_trials(specs, store, options.execution or Execution(workers=2))
    rounds, steps = (2, 20) if quick else (7, 100)
    cases = CASES[:1] if quick else CASES
    measured = {
        "updates": [time_update_step(env_id, algo, rounds, steps) for env_id, algo in cases],
        "memory": measure_memory(),
        "peak_gflops": matmul_peak_gflops(),
    }
    run = {
        "command": options.command,
        "quick": quick,
        "wall_s": time.perf_counter() - start,
        "reused_keys": sorted(reused_keys),
        **measured,
        "results": results,
    }
    fp32, mixed = split_series(results)
    summary = {"rows": summarize(fp32), "rows_bfloat16": summarize(mixed)}
    options.out_dir.mkdir(parents=True, exist_ok=True)
    (options.out_dir / JSON_NAME).write_text(
        json.dumps({**run, **summary, "aggregate": aggregate_scores(summary["rows"])}, indent=1)
        + "\n"
    )
    return write_page(options.out_dir, run)


def rewrite_report(out_dir: Path) -> Path:
    """Rewrite ``off_policy.md`` and ``off_policy.png`` from ``off_policy.json`` alone."""
    return write_page(Path(out_dir), json.loads((Path(out_dir) / JSON_NAME).read_text()))


def write_page(out_dir: Path, run: dict[str, Any]) -> Path:
    """Write the learning-curve figure and ``off_policy.md`` of a run; return the page.

    Args:
        out_dir: The page's folder.
        run: What ``off_policy.json`` holds: ``results``, ``updates``, ``memory``,
            ``peak_gflops``, ``quick``, ``wall_s``, ``reused_keys`` and ``command``.
    """
    results = run["results"]
    plot_curves([r for r in results if r.get("status") == "ok"], out_dir / "off_policy.png")
    page = render_markdown(
        results,
        run["updates"],
        run["memory"],
        run["peak_gflops"],
        run["quick"],
        run["wall_s"],
        run["reused_keys"],
        run["command"],
    )
    markdown = out_dir / "off_policy.md"
    write_keeping_findings(markdown, page)
    return markdown
    write_keeping_findings(markdown, page)
    return markdown
