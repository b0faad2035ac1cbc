"""Update levers study: one agent update step under each optimizer/compile/precision lever, on
one CPU thread → ``update_levers.md`` and ``update_levers.json``.

Two updates, each the agent's own code on real data:

- SAC's ``train_step`` (critics, actor, α and the Polyak targets) on Pendulum-v1 at its
  defaults (batch 256, 256×256 networks), on minibatches sampled beforehand from a replay
  buffer filled by 1,000 random-action steps (the sampling is not timed);
- PPO's ``update_policy`` on one 640-step Pendulum-v1 rollout with ``batch_size=64`` and one
  epoch (its default 64×64 networks), reported per minibatch (the call's time ÷ 10).

The levers: Adam as the agents build it (``make_adam``: ``fused=True``, the baseline), torch's
own default (``foreach=None``), ``foreach=False``, ``foreach=True``, ``torch.compile`` (of
SAC's whole ``train_step``; of PPO's ``evaluate_actions``, forward and backward, its optimizer
step staying eager) and, for SAC, ``matmul_dtype="bfloat16"``. Each lever has its own agent,
all from the same seed; first each runs ``CHECK_STEPS`` updates from the same torch seed on the
same data, so that the losses can be compared with the baseline's (the first of these calls
includes ``torch.compile``'s compilation, reported apart); then they are timed side by side
in rotating rounds (``export_latency.time_side_by_side``), so that the load of the shared
machine reaches them all alike. Ratios: the baseline's median over the lever's (> 1: faster),
with the quartiles of the per-round ratios as the noise.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlrobot.agents import PPO, SAC
from rlrobot.benchmark.report import markdown_table, write_keeping_findings
from rlrobot.benchmark.studies import StudyOptions
from rlrobot.benchmark.studies.export_latency import BLOCK, time_side_by_side
from rlrobot.common.networks import MATMUL_DTYPES, hidden_matmul_dtype

ENV_ID = "Pendulum-v1"
SAC_FILL_STEPS = 1000  # random-action transitions in the replay buffer
SAC_BATCHES = 8  # minibatches sampled beforehand, cycled through
PPO_ROLLOUT = 640
PPO_BATCH = 64
PPO_MINIBATCHES = PPO_ROLLOUT // PPO_BATCH
CALLS = 300  # timed calls per lever: 15 rounds of BLOCK
QUICK_CALLS = BLOCK
CHECK_STEPS = 20  # updates after which the losses are compared with the baseline's
QUICK_CHECK_STEPS = 2
SAME_LOSS_TOLERANCE = 1e-5


@dataclass(frozen=True)
class Lever:
    """One variant of the update.

    Attributes:
        name: Its row in the report.
        adam: Adam's ``foreach``/``fused`` arguments; every lever gets a fresh Adam, so that
            none keeps the state of the update PPO's ``learn`` ran.
        compiled: Whether the update runs under ``torch.compile``.
        matmul_dtype: The agent's ``matmul_dtype`` (SAC only).
    """

    name: str
    adam: dict[str, Any] = field(default_factory=lambda: {"fused": True})
    compiled: bool = False
    matmul_dtype: str = "float32"


# What make_adam builds on a CPU (tests/benchmark/test_update_levers_study.py checks it).
BASELINE = Lever("fused=True (ours)")
LEVERS: tuple[Lever, ...] = (
    BASELINE,
    Lever("torch default (foreach=None)", adam={"foreach": None}),
    Lever("foreach=False", adam={"foreach": False}),
    Lever("foreach=True", adam={"foreach": True}),
    Lever("torch.compile", compiled=True),
    Lever("matmul_dtype=bfloat16", matmul_dtype="bfloat16"),
)


@dataclass
class Update:
    """An agent's update, ready to run.

    Attributes:
        step: ``step(i)`` runs one call on the ``i``-th data and returns its losses.
        per_call: Gradient steps (minibatches) in each call.
        batches: The minibatches it cycles through (SAC; the other levers reuse them).
    """

    step: Callable[[int], dict[str, float]]
    per_call: int = 1
    batches: list[Any] = field(default_factory=list)


def plan(quick: bool) -> dict[str, list[Lever]]:
    """Return the levers measured per update (a quick run leaves ``torch.compile`` out)."""
    levers = [lever for lever in LEVERS if not (quick and lever.compiled)]
    return {
        "SAC": levers,
        "PPO": [lever for lever in levers if lever.matmul_dtype == "float32"],
    }


def rebuild_adam(optimizer: torch.optim.Optimizer, **flags: Any) -> torch.optim.Optimizer:
    """Return a fresh Adam over ``optimizer``'s parameter groups (their own lr, eps, weight
    decay) with ``flags`` (``foreach``/``fused``) in place of its implementation choice."""
    groups = [
        {key: value for key, value in group.items() if key not in ("foreach", "fused")}
        for group in optimizer.param_groups
    ]
    return torch.optim.Adam(groups, **flags)


def make_sac_update(lever: Lever, batches: list[Any] | None = None) -> Update:
    """Build SAC at its Pendulum defaults with ``lever``; ``batches``: the shared minibatches
    (None: sample them from this agent's buffer)."""
    agent = SAC(
        ENV_ID,
        seed=0,
        device="cpu",
        learning_starts=SAC_FILL_STEPS,
        matmul_dtype=lever.matmul_dtype,
    )
    agent.learn(SAC_FILL_STEPS)  # random actions only: no update before learning_starts
    if batches is None:
        batches = [agent.sample_batch(agent.config.batch_size) for _ in range(SAC_BATCHES)]
    agent.actor_optimizer = rebuild_adam(agent.actor_optimizer, **lever.adam)
    agent.critic_optimizer = rebuild_adam(agent.critic_optimizer, **lever.adam)
    train_step = torch.compile(agent.train_step) if lever.compiled else agent.train_step
    dtype = MATMUL_DTYPES[lever.matmul_dtype]

    def step(i: int) -> dict[str, float]:
        with hidden_matmul_dtype(dtype):  # as OffPolicyAgent.train enters it
            stats = train_step(batches[i % len(batches)])
        return {key: float(value) for key, value in stats.items()}

    return Update(step, batches=batches)


def make_ppo_update(lever: Lever) -> Update:
    """Build PPO at its defaults (64×64) on one Pendulum rollout with ``lever``."""
    agent = PPO(ENV_ID, seed=0, device="cpu", n_steps=PPO_ROLLOUT, batch_size=PPO_BATCH, n_epochs=1)
    agent.learn(PPO_ROLLOUT)  # collects the rollout (and runs one update on it)
    batch = agent.buffer.flatten(agent.device)
    agent.optimizer = rebuild_adam(agent.optimizer, **lever.adam)
    if lever.compiled:
        agent.policy.evaluate_actions = torch.compile(agent.policy.evaluate_actions)

    def step(_: int) -> dict[str, float]:
        stats = agent.update_policy(batch)
        return {key: stats[key] for key in ("train/policy_loss", "train/value_loss")}

    return Update(step, per_call=PPO_MINIBATCHES)


def build_updates(name: str, levers: list[Lever]) -> dict[str, Update]:
    """Return one ``Update`` per lever of the named update, all on the same data."""
    if name == "PPO":
        return {lever.name: make_ppo_update(lever) for lever in levers}
    first = make_sac_update(levers[0])
    updates = {levers[0].name: first}
    for lever in levers[1:]:
        updates[lever.name] = make_sac_update(lever, first.batches)
    return updates


def check_losses(updates: dict[str, Update], steps: int) -> dict[str, dict[str, float]]:
    """Run ``steps`` updates of each from torch seed 0; return its first call's seconds and the
    largest difference of its last losses from the first update's."""
    losses, first_call = {}, {}
    for name, update in updates.items():
        torch.manual_seed(0)
        start = time.perf_counter()
        update.step(0)
        first_call[name] = time.perf_counter() - start
        for i in range(1, steps):
            last = update.step(i)
        losses[name] = last if steps > 1 else {}
    reference = next(iter(losses.values()))
    return {
        name: {
            "first_call_s": first_call[name],
            "max_abs_loss_difference": max(
                (abs(values[key] - reference[key]) for key in reference), default=0.0
            ),
        }
        for name, values in losses.items()
    }


def bench_update(name: str, levers: list[Lever], calls: int, check_steps: int) -> dict[str, Any]:
    """Check and time every lever of one update side by side; return its results."""
    updates = build_updates(name, levers)
    checks = check_losses(updates, check_steps)
    times = time_side_by_side(
        {lever: update.step for lever, update in updates.items()}, list(range(SAC_BATCHES)), calls
    )
    per_call = next(iter(updates.values())).per_call
    baseline = next(iter(times))
    baseline_rounds = round_medians(times[baseline])
    rows = {}
    for lever, values in times.items():
        median = statistics.median(values) / per_call
        ratios = [b / v for b, v in zip(baseline_rounds, round_medians(values), strict=True)]
        rows[lever] = {
            "median_ms": median / 1e3,
            "speedup_vs_baseline": statistics.median(times[baseline]) / statistics.median(values),
            "round_speedups_quartiles": [float(q) for q in np.percentile(ratios, [25, 75])],
            # Compilation: what the first call took beyond a steady call.
            "first_call_extra_s": max(0.0, checks[lever]["first_call_s"] - median * per_call / 1e6),
            "max_abs_loss_difference": checks[lever]["max_abs_loss_difference"],
        }
    return {"calls": calls, "minibatches_per_call": per_call, "levers": rows}


def round_medians(values: list[float]) -> list[float]:
    """Return the median of each round of ``BLOCK`` consecutive times."""
    return [statistics.median(values[i : i + BLOCK]) for i in range(0, len(values), BLOCK)]


def cpu_facts() -> dict[str, Any]:
    """Return the CPU model, its bfloat16 instruction sets and whether a C compiler exists."""
    flags: set[str] = set()
    model = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "flags":
                flags = set(value.split())
            elif key.strip() == "model name":
                model = value.strip()
    return {
        "model": model,
        "bf16_flags": sorted(flags & {"avx512_bf16", "amx_bf16", "amx_tile"}),
        "compiler": shutil.which("gcc") or shutil.which("cc") or "",
    }


DESCRIPTIONS = {
    "SAC": f"SAC `train_step` on {ENV_ID}, batch 256, 256×256 actor and twin critics, automatic α",
    "PPO": f"PPO `update_policy` on a {PPO_ROLLOUT}-step {ENV_ID} rollout, minibatch "
    f"{PPO_BATCH}, 64×64 actor and critic (time per minibatch)",
}


def main(options: StudyOptions) -> Path:
    """Measure every lever of both updates on one thread; write the JSON and the page."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    load_start = os.getloadavg()[0]
    calls = QUICK_CALLS if options.quick else max(BLOCK, round(CALLS * options.budget_scale))
    check_steps = QUICK_CHECK_STEPS if options.quick else CHECK_STEPS
    try:
        updates = {
            name: {
                "description": DESCRIPTIONS[name],
                **bench_update(name, levers, calls, check_steps),
            }
            for name, levers in plan(options.quick).items()
        }
    finally:
        torch.set_num_threads(threads)
    results = {
        "command": options.command,
        "load_start": load_start,
        "load_end": os.getloadavg()[0],
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            **cpu_facts(),
        },
        "threads": 1,
        "check_steps": check_steps,
        "updates": updates,
    }
    options.out_dir.mkdir(parents=True, exist_ok=True)
    (options.out_dir / "update_levers.json").write_text(json.dumps(results, indent=2) + "\n")
    return rewrite_report(options.out_dir)


def render_markdown(results: dict[str, Any]) -> str:
    """Return the generated part of ``update_levers.md``."""
    machine = results["machine"]
    bf16 = ", ".join(machine["bf16_flags"]) or "none"
    lines = [
        "# Update levers: optimizer implementation, torch.compile and bfloat16, one CPU thread",
        "",
        f"Written by `rlrobot bench --study update_levers`; last run `{results['command']}`. "
        f"Machine: {machine['model']}, {machine['cpus']} CPU cores shared with other jobs "
        f"(load average {results['load_start']:.1f} at the start, {results['load_end']:.1f} at "
        f"the end), bfloat16 instructions: {bf16}; C compiler: "
        f"{machine['compiler'] or 'none'}; Python {machine['python']}, torch {machine['torch']}, "
        "1 thread. Each lever has its own agent on the same data; they are timed side by side "
        f"in rotating rounds of {BLOCK} calls. Speed-up: the baseline's median over the "
        "lever's (> 1: faster); the quartiles of the per-round speed-ups are the noise. "
        "Loss difference: the largest "
        f"difference of the losses from the baseline's after {results['check_steps']} updates "
        "from the same torch seed. First-call extra: what the first call took beyond a steady "
        "one (`torch.compile`'s compilation).",
        "",
    ]
    for name, update in results["updates"].items():
        lines += [
            f"## {name}: {update['description']}",
            "",
            f"{update['calls']:,} timed calls per lever.",
            "",
            *markdown_table(
                [
                    "lever",
                    "median ms",
                    "speed-up",
                    "per-round quartiles",
                    "loss difference",
                    "first-call extra s",
                ],
                [
                    [
                        lever,
                        f"{row['median_ms']:.3f}",
                        f"{row['speedup_vs_baseline']:.2f}×",
                        "{:.2f}–{:.2f}×".format(*row["round_speedups_quartiles"]),
                        f"{row['max_abs_loss_difference']:.1e}",
                        f"{row['first_call_extra_s']:.1f}",
                    ]
                    for lever, row in update["levers"].items()
                ],
                "lrrrrr",
            ),
            "",
        ]
    return "\n".join(lines)


def rewrite_report(out_dir: Path) -> Path:
    """Rewrite ``out_dir/update_levers.md`` from ``update_levers.json``; return its path."""
    results = json.loads((out_dir / "update_levers.json").read_text())
    return write_keeping_findings(out_dir / "update_levers.md", render_markdown(results))
