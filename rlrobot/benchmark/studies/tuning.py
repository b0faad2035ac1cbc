"""Tuning study: Optuna's TPE with median pruning against random search, at one trial budget.

For each env of ``PLAN``, each method of ``METHODS`` tunes A2C with the sweep's machinery
(``rlrobot.benchmark.sweep``: A2C's default search space, one seed per trial) for the same
number of trials, once per study seed (the sampler's seed). Each run records the best value
found (the best trial's final evaluation return), the CPU time this process spent (trials run
in it, one at a time, so the CPU time is the tuning's) and how many trials were pruned.
The results go to ``tuning.json`` and ``tuning.md``. Each run's study
(``TRIALS/<env>-<method>-seed<N>/study.db``; TRIALS is ``runs/tuning_study`` by default) and
``TRIALS/runs.json`` are kept, so that a rerun skips the runs already done.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from rlrobot.benchmark.report import markdown_table, write_keeping_findings
from rlrobot.benchmark.studies import StudyOptions

ALGO = "a2c"
# env id → (env steps per trial, trials per run); budget_scale scales the steps only, so
# that the methods always compare at the same number of trials.
PLAN = {"CartPole-v1": (20_000, 16), "Acrobot-v1": (20_000, 16)}
QUICK_PLAN = {"CartPole-v1": (256, 2), "Acrobot-v1": (256, 2)}
# method → (sampler, pruner)
METHODS = {"tpe+median": ("tpe", "median"), "random": ("random", "none")}
EVALUATIONS = 5  # per trial, besides the one at step 0
EVAL_EPISODES = 3


def run_one(
    env_id: str, method: str, seed: int, steps: int, n_trials: int, folder: Path
) -> dict[str, Any]:
    """Tune ``ALGO`` on ``env_id`` with one method and sampler seed; return the run's record."""
    from rlrobot.benchmark.bench import resolve_trial_config
    from rlrobot.benchmark.sweep import (
        SweepPlan,
        default_parameters,
        default_storage,
        open_study,
        optimize,
        parse_parameter,
    )

    resolved = resolve_trial_config(ALGO, env_id, steps=steps)
    sampler, pruner = METHODS[method]
    plan = SweepPlan(
        env_id=env_id,
        algo=ALGO,
        parameters=tuple(parse_parameter(text) for text in default_parameters(ALGO)),
        base_config=resolved.config,
        seeds=(0,),
        steps=resolved.steps,
        n_envs=resolved.n_envs,
        env_kwargs=resolved.env_kwargs,
        eval_interval=max(1, resolved.steps // EVALUATIONS),
        eval_episodes=EVAL_EPISODES,
        out=str(folder),
        storage=default_storage(folder),
        study_name="tuning",
        sampler=sampler,
        pruner=pruner,
        sampler_seed=seed,
    )
    folder.mkdir(parents=True, exist_ok=True)
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    optimize(plan, n_trials, log=lambda line: None)
    study = open_study(plan)
    states = [trial.state.name for trial in study.trials]
    complete = [trial for trial in study.trials if trial.state.name == "COMPLETE"]
    best = max(complete, key=lambda trial: trial.value) if complete else None
    return {
        "env_id": env_id,
        "method": method,
        "seed": seed,
        "steps": resolved.steps,
        "trials": len(states),
        "complete": states.count("COMPLETE"),
        "pruned": states.count("PRUNED"),
        "failed": states.count("FAIL"),
        "best_value": best.value if best else None,
        "best_params": best.params if best else None,
        "cpu_time_s": time.process_time() - cpu_start,
        "wall_time_s": time.perf_counter() - wall_start,
    }


def main(options: StudyOptions) -> Path:
    """Run every env × method × seed not yet done; write ``tuning.json`` and ``tuning.md``."""
    plan = QUICK_PLAN if options.quick else PLAN
    results_path = options.trials_dir / "runs.json"
    done = json.loads(results_path.read_text()) if results_path.is_file() else {}
    for env_id, (steps, n_trials) in plan.items():
        steps = max(1, round(steps * options.budget_scale))
        for method in METHODS:
            for seed in options.seeds:
                name = f"{env_id.replace('/', '-')}-{method.replace('+', '-')}-seed{seed}"
                record = done.get(name)
                if record is not None and (record["steps"], record["trials"]) == (
                    steps,
                    n_trials,
                ):
                    continue
                print(f"tuning: {name} ({n_trials} trials × {steps} steps)", flush=True)
                # A fresh study: a run cut short is redone, not continued with its CPU time lost.
                folder = options.trials_dir / name
                (folder / "study.db").unlink(missing_ok=True)
                done[name] = run_one(env_id, method, seed, steps, n_trials, folder)
                results_path.parent.mkdir(parents=True, exist_ok=True)
                results_path.write_text(json.dumps(done, indent=1))
    results = {
        "command": options.command,
        "algo": ALGO,
        "plan": {env_id: list(budget) for env_id, budget in plan.items()},
        "budget_scale": options.budget_scale,
        "runs": [done[name] for name in sorted(done)],
    }
    (options.out_dir / "tuning.json").write_text(json.dumps(results, indent=1))
    return rewrite_report(options.out_dir)


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return one row per env and method: best values across seeds, mean CPU time, pruned."""
    rows = []
    for env_id in dict.fromkeys(run["env_id"] for run in runs):
        for method in METHODS:
            group = [r for r in runs if r["env_id"] == env_id and r["method"] == method]
            if not group:
                continue
            values = [r["best_value"] for r in group if r["best_value"] is not None]
            rows.append(
                {
                    "env_id": env_id,
                    "method": method,
                    "seeds": len(group),
                    "trials": group[0]["trials"],
                    "steps": group[0]["steps"],
                    "best_values": values,
                    "mean_best": float(np.mean(values)) if values else None,
                    "cpu_time_s": float(np.mean([r["cpu_time_s"] for r in group])),
                    "pruned": float(np.mean([r["pruned"] for r in group])),
                }
            )
    return rows


def render_markdown(results: dict[str, Any]) -> str:
    """Return the generated part of ``tuning.md``."""
    rows = summarize(results["runs"])
    lines = [
        "# Tuning: TPE with median pruning against random search",
        "",
        f"{results['algo'].upper()} tuned over its default search space "
        "(`rlrobot.benchmark.sweep.DEFAULT_SPACES`), one seed per trial, the same number of "
        "trials per method; each run is repeated with other sampler seeds. Best value: the "
        "final evaluation return of the run's best trial; CPU time: the run's, trials "
        "included (one at a time, one torch thread).",
        "",
        f"Reproduce: `{results['command']}`",
        "",
    ]
    table = []
    for row in rows:
        values = ", ".join(f"{v:.1f}" for v in row["best_values"])
        mean = "—" if row["mean_best"] is None else f"{row['mean_best']:.1f}"
        table.append(
            [
                f"`{row['env_id']}`",
                row["method"],
                row["trials"],
                row["steps"],
                row["seeds"],
                f"{mean} ({values})",
                f"{row['cpu_time_s']:.0f}",
                f"{row['pruned']:.1f}",
            ]
        )
    header = ["env", "method", "trials", "steps/trial", "seeds", "best value: mean (each seed)"]
    header += ["CPU s per run", "pruned trials per run"]
    lines += markdown_table(header, table, "llrrrlrr")
    return "\n".join(lines) + "\n"


def rewrite_report(out_dir: Path) -> Path:
    """Rewrite ``out_dir/tuning.md`` from ``out_dir/tuning.json``; return its path."""
    results = json.loads((out_dir / "tuning.json").read_text())
    return write_keeping_findings(out_dir / "tuning.md", render_markdown(results))
