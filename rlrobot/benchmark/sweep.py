"""``rlrobot sweep``: grid or random search over config keys, on the bench's trial machinery.

Each candidate config is trained with every seed (ours), through the same runner as the bench,
so sweeps run on a process pool or Ray, retry failures once and skip finished trials when
restarted. Candidates are ranked by the mean final evaluation return across seeds.

Parameter syntax (``--param``):
- ``learning_rate=[1e-4, 3e-4, 1e-3]``: a list of values (YAML), for grid and random search;
- ``learning_rate=loguniform(1e-5, 1e-2)``, ``clip_range=uniform(0.1, 0.3)``,
  ``n_epochs=randint(3, 20)`` (both ends included): distributions, for random search.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlrobot.benchmark.runner import Execution, Log, TrialStore, run_trials
from rlrobot.benchmark.trial import TrialSpec
from rlrobot.common.stats import bootstrap_ci, interquartile_mean
from rlrobot.errors import ConfigError

# YAML 1.1 reads exponent notation without a dot ("1e-4") as a string.
EXPONENT_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")
DISTRIBUTION = re.compile(r"^(loguniform|uniform|randint)\(\s*([^,]+?)\s*,\s*([^,]+?)\s*\)$")
SWEEP_FILE = "sweep.json"


@dataclass(frozen=True)
class Parameter:
    """One swept config key: a list of ``choices`` or a distribution over ``[low, high]``."""

    key: str
    choices: tuple[Any, ...] = ()
    distribution: str | None = None
    low: float = 0.0
    high: float = 0.0

    def sample(self, rng: np.random.Generator) -> Any:
        """Draw one value (uniformly among choices, or from the distribution)."""
        if self.distribution is None:
            return self.choices[int(rng.integers(len(self.choices)))]
        if self.distribution == "loguniform":
            return float(np.exp(rng.uniform(np.log(self.low), np.log(self.high))))
        if self.distribution == "uniform":
            return float(rng.uniform(self.low, self.high))
        return int(rng.integers(int(self.low), int(self.high) + 1))


def parse_parameter(text: str) -> Parameter:
    """Parse ``key=[v1, v2]``, ``key=value`` or ``key=loguniform(a, b)`` (see module docstring).

    Raises:
        ConfigError: Malformed text, an empty list or a bad range.
    """
    import yaml

    from rlrobot.common.yaml_loading import load_yaml

    key, separator, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not separator or not key or not raw:
        raise ConfigError(f"--param expects key=[values] or key=distribution(a, b), got {text!r}")
    match = DISTRIBUTION.match(raw)
    if match:
        name, low, high = match.group(1), float(match.group(2)), float(match.group(3))
        if not low < high or (name == "loguniform" and low <= 0):
            raise ConfigError(f"--param {key}: need 0 < low < high for {name}, got {raw}")
        return Parameter(key, distribution=name, low=low, high=high)
    try:
        value = load_yaml(raw)
    except yaml.YAMLError:
        raise ConfigError(f"--param {key}: {raw!r} is not a valid YAML value") from None
    choices = tuple(
        float(choice) if isinstance(choice, str) and EXPONENT_NUMBER.match(choice) else choice
        for choice in (value if isinstance(value, list) else [value])
    )
    if not choices:
        raise ConfigError(f"--param {key}: the list of values is empty")
    return Parameter(key, choices=choices)


def candidate_configs(
    parameters: Sequence[Parameter], search: str, n_trials: int = 10, seed: int = 0
) -> list[dict[str, Any]]:
    """Return the configs to try: every grid combination, or ``n_trials`` random draws.

    Raises:
        ConfigError: A distribution in a grid search, or an unknown search.
    """
    if search == "grid":
        continuous = [p.key for p in parameters if p.distribution is not None]
        if continuous:
            raise ConfigError(f"grid search needs lists of values, not distributions: {continuous}")
        keys = [p.key for p in parameters]
        grid = itertools.product(*(p.choices for p in parameters))
        return [dict(zip(keys, values, strict=True)) for values in grid]
    if search == "random":
        rng = np.random.default_rng(seed)
        return [{p.key: p.sample(rng) for p in parameters} for _ in range(n_trials)]
    raise ConfigError(f"search must be 'grid' or 'random', got {search!r}")


def build_sweep_specs(
    env_id: str,
    algo: str,
    candidates: Sequence[dict[str, Any]],
    base_config: dict[str, Any],
    seeds: Sequence[int],
    steps: int,
    n_envs: int,
    env_kwargs: dict[str, Any],
    eval_interval: int,
    eval_episodes: int,
) -> list[list[TrialSpec]]:
    """Return, per candidate, its trials (one per seed), with the config validated."""
    from rlrobot.agents import ALGORITHMS

    config_class = ALGORITHMS[algo].config_class
    groups = []
    for candidate in candidates:
        config = config_class.from_dict({**base_config, **candidate}).to_dict()
        groups.append(
            [
                TrialSpec(
                    env_id=env_id,
                    algo=algo,
                    seed=seed,
                    steps=steps,
                    config=config,
                    env_kwargs=env_kwargs,
                    n_envs=n_envs,
                    eval_interval=eval_interval,
                    eval_episodes=eval_episodes,
                )
                for seed in seeds
            ]
        )
    return groups


def fixed_entry(
    algo: str,
    env_id: str,
    overrides: Sequence[str],
    run_values: dict[str, Any],
    config_dir: str | None = None,
) -> dict[str, Any]:
    """Return the ``rlrobot/configs/<algo>.yaml`` entry of ``env_id`` as every trial used it.

    The tuned entry (``tuned_entry``: ``default`` merged with the env's entry, the ``delayed``
    sub-entries kept under their key), updated by the sweep's ``--set`` overrides and then by
    ``run_values`` (``n_envs``, ``n_timesteps``). With a candidate's parameters on top, it is the
    entry that reproduces the candidate's trials when it replaces the env's entry in the file.
    """
    from rlrobot.run.config import deep_merge, parse_override, tuned_entry

    entry = tuned_entry(algo, env_id, config_dir=config_dir).as_file_entry()
    for text in overrides:
        entry = deep_merge(entry, parse_override(text))
    return {**entry, **run_values}


def describe_candidate(candidate: dict[str, Any]) -> str:
    """Return ``learning_rate=0.001 n_epochs=4``: a candidate's values, for progress lines."""
    return " ".join(f"{key}={value}" for key, value in candidate.items())


def rank_candidates(
    candidates: Sequence[dict[str, Any]], results: Sequence[Sequence[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Return one row per candidate, best mean final return first (all-failed ones last)."""
    rows = []
    for candidate, trials in zip(candidates, results, strict=True):
        finals = [r["final_return"] for r in trials if r.get("status") == "ok"]
        row: dict[str, Any] = {
            "params": candidate,
            "n_ok": len(finals),
            "n_failed": len(trials) - len(finals),
            "keys": [r["key"] for r in trials],
        }
        if finals:
            row.update(
                mean=float(np.mean(finals)),
                ci=bootstrap_ci(finals),
                iqm=interquartile_mean(finals),
                finals=finals,
                steps_per_second=float(
                    np.mean([r["steps_per_second"] for r in trials if r.get("status") == "ok"])
                ),
            )
        rows.append(row)
    rows.sort(key=lambda row: -row["mean"] if "mean" in row else float("inf"))
    return rows


def render_sweep_markdown(rows: Sequence[dict[str, Any]], info: dict[str, Any]) -> str:
    """Return ``sweep.md``: the ranked table and the best entry as YAML for the tuned configs."""
    import yaml

    lines = [f"# Sweep: {info['algo']} on {info['env_id']}", ""]
    lines += ["Settings: " + ", ".join(f"{k} = {v}" for k, v in info["settings"].items()), ""]
    lines += [
        "Ranked by mean final evaluation return across seeds (95 % bootstrap CI).",
        "",
        "| rank | " + " | ".join(info["keys"]) + " | mean [95% CI] | IQM | steps/s | failed |",
        "|---|" + "---|" * len(info["keys"]) + "---|---|---|---|",
    ]
    for rank, row in enumerate(rows, start=1):
        values = " | ".join(f"{row['params'][key]!r}" for key in info["keys"])
        if "mean" in row:
            low, high = row["ci"]
            score = f"{row['mean']:.4g} [{low:.4g}, {high:.4g}] | {row['iqm']:.4g} "
            score += f"| {row['steps_per_second']:.0f}"
        else:
            score = "— | — | —"
        lines.append(f"| {rank} | {values} | {score} | {row['n_failed']} |")
    if rows and "mean" in rows[0]:
        best = {info["env_id"]: {**info.get("fixed", {}), **rows[0]["params"]}}
        where = f"`rlrobot/configs/{info['algo']}.yaml`"
        heading = f"Best config: the env's whole entry for {where}, `--set` overrides included:"
        lines += ["", heading, "", "```yaml"]
        lines += [yaml.safe_dump(best, sort_keys=False).strip(), "```"]
    return "\n".join(lines) + "\n"


def run_sweep(
    groups: Sequence[Sequence[TrialSpec]],
    candidates: Sequence[dict[str, Any]],
    out: str | Path,
    info: dict[str, Any],
    execution: Execution | None = None,
    log: Log = print,
) -> Path:
    """Run every candidate's trials (cached ones skipped), rank them and write ``sweep.md``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    info = {
        **info,
        "candidates": list(candidates),
        "keys_by_candidate": [[spec.key for spec in group] for group in groups],
    }
    (out / SWEEP_FILE).write_text(json.dumps(info, indent=1))
    flat = [spec for group in groups for spec in group]
    # Trials of different candidates share env, algo and seed: name them by their values.
    labels = {
        spec.key: f"{spec.label} [{describe_candidate(candidate)}]"
        for candidate, group in zip(candidates, groups, strict=True)
        for spec in group
    }
    run_trials(flat, TrialStore(out), execution, log=log, labels=labels)
    return write_sweep_report(out)


def write_sweep_report(out: str | Path) -> Path:
    """Rank the stored results of the sweep in ``out`` and write ``sweep.md``; return its path."""
    out = Path(out)
    info = json.loads((out / SWEEP_FILE).read_text())
    store = TrialStore(out)
    missing = {"key": "?", "status": "failed", "error": "no result stored"}
    results = [
        [store.load(key) or {**missing, "key": key} for key in keys]
        for keys in info["keys_by_candidate"]
    ]
    rows = rank_candidates(info["candidates"], results)
    (out / "ranking.json").write_text(json.dumps(rows, indent=1))
    path = out / "sweep.md"
    path.write_text(render_sweep_markdown(rows, info))
    return path
