"""``rlrobot bench``: the trials of a side-by-side comparison, run and reported.

For each env × algo × seed there is one trial of ours and, when the algorithm has an SB3
counterpart and the baseline is on, one of SB3's with the same resolved config, env, number
of envs, seed, budget and evaluation schedule. ``DIR/bench.json`` records the settings so that
``--report-only`` can rebuild the report from ``DIR/trials/*.json`` alone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlrobot.benchmark.report import write_report
from rlrobot.benchmark.runner import (
    ClusterError,
    Execution,
    Log,
    TrialStore,
    run_trials,
    with_partial_report,
)
from rlrobot.benchmark.sb3 import SB3_ALGORITHMS
from rlrobot.benchmark.trial import TrialSpec
from rlrobot.errors import ConfigError

RUN_INFO_FILE = "bench.json"


@dataclass
class ResolvedTrialConfig:
    """Hyperparameters and env settings of one env × algo, as a trial needs them."""

    config: dict[str, Any]
    n_envs: int
    steps: int
    env_kwargs: dict[str, Any] = field(default_factory=dict)


def split_overrides(overrides: Sequence[str], algo: str) -> list[str]:
    """Return the ``key=value`` overrides that apply to ``algo``.

    ``key=value`` applies to every algorithm; ``algo:key=value`` only to ``algo``.
    """
    selected = []
    for text in overrides:
        prefix, separator, rest = text.partition(":")
        if separator and "=" not in prefix:
            if prefix == algo:
                selected.append(rest)
        else:
            selected.append(text)
    return selected


def resolve_trial_config(
    algo: str,
    env_id: str,
    overrides: Sequence[str] = (),
    n_envs: int | None = None,
    steps: int | None = None,
    config_dir: str | None = None,
) -> ResolvedTrialConfig:
    """Resolve hyperparameters as ``rlrobot train`` does: defaults, the tuned entry, --set.

    Args:
        algo: Algorithm name.
        env_id: Env id (selects the entry of ``rlrobot/configs/<algo>.yaml``).
        overrides: ``key=value`` strings for this algorithm.
        n_envs: Overrides the number of envs when given.
        steps: Overrides the training budget (``n_timesteps``) when given.
        config_dir: Folder of the per-algorithm YAML files (default: the package's).

    Raises:
        ConfigError: Unknown key, wrong type or bad value.
    """
    from rlrobot.run.config import resolve_config

    resolved = resolve_config(
        algo,
        env_id,
        overrides=list(overrides),
        explicit={"n_envs": n_envs, "n_timesteps": steps},
        config_dir=config_dir,
    )
    run = resolved.run
    if run.env_wrapper or run.frame_stack != 1:
        # Trials make their envs (ours and SB3's) from the env id and env_kwargs alone.
        raise ConfigError(
            "config keys 'env_wrapper' and 'frame_stack' apply to rlrobot train runs only; "
            "bench and sweep trials make their envs from the env id and env_kwargs"
        )
    return ResolvedTrialConfig(
        resolved.algorithm.to_dict(), run.n_envs, run.n_timesteps, dict(run.env_kwargs)
    )


def build_bench_specs(
    env_ids: Sequence[str],
    algos: Sequence[str],
    seeds: Sequence[int],
    steps: int | None = None,
    baseline: str | None = "sb3",
    overrides: Sequence[str] = (),
    n_envs: int | None = None,
    eval_interval: int | None = None,
    eval_episodes: int = 5,
    config_dir: str | None = None,
) -> list[TrialSpec]:
    """Return the trials of a bench: env × algo × seed × (ours, SB3 where it exists).

    Args:
        env_ids: Gymnasium ids.
        algos: Our algorithm names.
        seeds: Seeds, one trial per framework each.
        steps: Training budget per trial in env steps (default: ``n_timesteps`` of the
            config of each env × algo).
        baseline: ``"sb3"`` or None (ours only).
        overrides: ``key=value`` / ``algo:key=value`` hyperparameter overrides.
        n_envs: Number of envs for every trial (default: from the configs).
        eval_interval: Env steps between evaluations (default: a tenth of the budget).
        eval_episodes: Deterministic episodes per evaluation.
        config_dir: Folder of the per-algorithm YAML files.
    """
    specs = []
    for env_id in env_ids:
        for algo in algos:
            resolved = resolve_trial_config(
                algo, env_id, split_overrides(overrides, algo), n_envs, steps, config_dir
            )
            frameworks = ["rlrobot"]
            if baseline == "sb3" and algo in SB3_ALGORITHMS:
                frameworks.append("sb3")
            for seed in seeds:
                for framework in frameworks:
                    specs.append(
                        TrialSpec(
                            env_id=env_id,
                            algo=algo,
                            seed=seed,
                            steps=resolved.steps,
                            framework=framework,
                            config=resolved.config,
                            env_kwargs=resolved.env_kwargs,
                            n_envs=resolved.n_envs,
                            eval_interval=eval_interval or max(1, resolved.steps // 10),
                            eval_episodes=eval_episodes,
                        )
                    )
    return specs


def run_bench(
    specs: Sequence[TrialSpec],
    out: str | Path,
    execution: Execution | None = None,
    settings: dict[str, Any] | None = None,
    command: str = "",
    log: Log = print,
) -> Path:
    """Run the trials (cached ones are skipped), then write the report; return its path.

    Args:
        specs: The trials.
        out: Output folder.
        execution: Backend and parallelism.
        settings: Shown at the top of the report.
        command: The command line that reproduces the run, shown in the report.
        log: Receives progress lines.

    Raises:
        ClusterError: The Ray cluster was lost (or cannot run a trial); the report of the
            trials that finished is written first and named.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    execution = execution or Execution()
    run_info = {
        "command": command,
        "settings": {**(settings or {}), "backend": execution.backend},
        "keys": [spec.key for spec in specs],
    }
    (out / RUN_INFO_FILE).write_text(json.dumps(run_info, indent=1))
    store = TrialStore(out)
    try:
        results = run_trials(list(specs), store, execution, log=log)
    except ClusterError as error:
        finished = [result for spec in specs if (result := store.load(spec.key)) is not None]
        if not finished:
            raise
        # The report's settings say it is partial: a report that silently lacks trials misleads.
        settings = {**run_info["settings"], "finished": f"{len(finished)} of {len(specs)} trials"}
        partial = {**run_info, "settings": settings}
        raise with_partial_report(error, lambda: write_report(out, finished, partial)) from None
    return write_report(out, results, run_info)


def load_bench_results(out: str | Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Return a bench's stored trial results (in ``bench.json``'s order) and its run info.

    Raises:
        FileNotFoundError: No results, or some trial ``bench.json`` names has none (a report
            of the others would silently leave it out).
    """
    out = Path(out)
    store = TrialStore(out)
    info_path = out / RUN_INFO_FILE
    run_info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    results = store.load_all()
    if not results:
        raise FileNotFoundError(f"no trial results in {store.directory}")
    keys = list(dict.fromkeys(run_info.get("keys") or []))
    if keys:
        # Only this bench's trials (a folder may also hold trials of an earlier, larger run).
        by_key = {result["key"]: result for result in results}
        missing = [key for key in keys if key not in by_key]
        if missing:
            raise FileNotFoundError(
                f"{info_path} names {len(keys)} trials, {len(missing)} of them (e.g. "
                f"{missing[0]}) not in {store.directory}: rerun the bench to train them"
            )
        results = [by_key[key] for key in keys]
    return results, run_info


def rebuild_report(out: str | Path) -> Path:
    """Rebuild ``report.md`` and the plots from the stored trial results only."""
    results, run_info = load_bench_results(out)
    return write_report(out, results, run_info)
