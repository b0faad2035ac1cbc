"""Run many trials in parallel — a local process pool or Ray tasks — with caching and one retry.

Results are JSON files ``DIR/trials/<key>.json`` written atomically. A trial whose file says
``"status": "ok"`` is never run again (restarting a bench or sweep only runs what is missing);
a failed trial is retried once in the same run and, if it fails again, recorded as failed
(and tried again on the next restart).

Both backends run ``rlrobot.benchmark.trial.execute_trial`` on the spec's dict, with one torch
thread per trial, so a spec gives the same result on either.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlrobot.benchmark.trial import TrialSpec, execute_trial, failure_result
from rlrobot.common.files import atomic_write_bytes

BACKENDS = ("local", "ray")

Log = Callable[[str], None]


@dataclass
class Execution:
    """Where and how trials run.

    Attributes:
        backend: ``"local"`` (process pool) or ``"ray"`` (Ray tasks).
        workers: Parallel trials; default: the machine's cores (local, and a Ray instance
            started here).
        ray_address: Address of an existing Ray cluster (``"auto"``, ``"ray://host:10001"``…);
            None starts a local instance unless Ray is already initialised.
        cpus_per_trial: CPUs Ray reserves per trial.
        retries: Extra attempts for a failed trial.
    """

    backend: str = "local"
    workers: int | None = None
    ray_address: str | None = None
    cpus_per_trial: float = 1.0
    retries: int = 1

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")


class TrialStore:
    """The folder of per-trial result files.

    Args:
        directory: Run folder; results go to ``directory/trials/<key>.json``.
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory) / "trials"

    def path(self, key: str) -> Path:
        """Return the result file of a trial key."""
        return self.directory / f"{key}.json"

    def load(self, key: str) -> dict[str, Any] | None:
        """Return the stored result of a trial, or None (missing or unreadable file)."""
        try:
            return json.loads(self.path(key).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def save(self, result: dict[str, Any]) -> None:
        """Write a result atomically (temporary file, then rename)."""
        atomic_write_bytes(self.path(result["key"]), json.dumps(result, indent=1).encode())

    def load_all(self) -> list[dict[str, Any]]:
        """Return every stored result (for rebuilding a report)."""
        if not self.directory.is_dir():
            return []
        results = []
        for path in sorted(self.directory.glob("*.json")):
            result = self.load(path.stem)
            if result is not None:
                results.append(result)
        return results


def _init_local_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _run_local(specs: list[TrialSpec], workers: int) -> Iterator[tuple[TrialSpec, dict]]:
    """Yield ``(spec, result)`` as trials finish in a pool of ``workers`` processes."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # "forkserver": workers fork from a clean single-threaded server (safe with torch's thread
    # pools and PyBullet clients, unlike forking this process) that has imported the heavy
    # modules once, so a pool starts in well under a second instead of a fresh import each.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch", "stable_baselines3", "rlrobot.benchmark.trial"])
    with ProcessPoolExecutor(
        max_workers=min(workers, len(specs)), mp_context=context, initializer=_init_local_worker
    ) as pool:
        futures = {pool.submit(execute_trial, spec.to_dict()): spec for spec in specs}
        for future in as_completed(futures):
            spec = futures[future]
            try:
                yield spec, future.result()
            except Exception as error:  # a worker that died (BrokenProcessPool) …
                yield spec, failure_result(spec, error)


def _run_ray(
    specs: list[TrialSpec], workers: int, address: str | None, cpus_per_trial: float
) -> Iterator[tuple[TrialSpec, dict]]:
    """Yield ``(spec, result)`` as Ray tasks finish (connects to or starts Ray if needed)."""
    try:
        import ray
    except ImportError as error:
        raise RuntimeError(
            "the ray backend needs Ray: pip install 'rlrobot[ray]' (or pip install ray)"
        ) from error
    started_here = not ray.is_initialized()
    if started_here:
        if address is None:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    try:
        # max_retries=0: retries are ours (same policy as the local backend).
        remote = ray.remote(num_cpus=cpus_per_trial, max_retries=0)(execute_trial)
        pending = {remote.remote(spec.to_dict()): spec for spec in specs}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for reference in done:
                spec = pending.pop(reference)
                try:
                    yield spec, ray.get(reference)
                except Exception as error:  # a task whose worker died (RayError …)
                    yield spec, failure_result(spec, error)
    finally:
        if started_here:
            ray.shutdown()


def run_trials(
    specs: list[TrialSpec],
    store: TrialStore,
    execution: Execution | None = None,
    log: Log = print,
    labels: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Run the trials not already completed in ``store``; return every result in spec order.

    Call it under ``if __name__ == "__main__":`` in a script: the local pool's workers are
    started with ``forkserver``, which re-imports the main module.

    Args:
        specs: Trials to run (duplicates by key are run once).
        store: Where results are cached and written.
        execution: Backend, parallelism and retries (default: local pool, one retry).
        log: Receives one progress line per finished trial.
        labels: Names of trials in the progress lines, by key (default: ``spec.label``).

    Returns:
        One result dict per spec (``status`` ``"ok"`` or ``"failed"`` with ``error``).
    """
    execution = execution or Execution()
    workers = execution.workers or os.cpu_count() or 1
    retries = execution.retries
    results: dict[str, dict[str, Any]] = {}
    pending: dict[str, TrialSpec] = {}
    for spec in specs:
        cached = store.load(spec.key)
        if cached is not None and cached.get("status") == "ok":
            results[spec.key] = cached
        else:
            pending[spec.key] = spec
    if results:
        log(f"{len(results)} trial(s) already done in {store.directory}, {len(pending)} to run")
    for attempt in range(1, retries + 2):
        if not pending:
            break
        if execution.backend == "local":
            outcomes = _run_local(list(pending.values()), workers)
        else:
            outcomes = _run_ray(
                list(pending.values()), workers, execution.ray_address, execution.cpus_per_trial
            )
        failed: dict[str, TrialSpec] = {}
        for spec, result in outcomes:
            label = (labels or {}).get(spec.key, spec.label)
            result["attempts"] = attempt
            results[spec.key] = result
            if result["status"] == "ok":
                store.save(result)
                log(
                    f"done   {label}: return {result['final_return']:.4g}, "
                    f"{result['steps_per_second']:.0f} steps/s, {result['wall_time_s']:.0f} s"
                )
            else:
                failed[spec.key] = spec
                last_line = result["error"].strip().splitlines()[-1]
                will_retry = attempt <= retries
                log(f"FAILED {label} (attempt {attempt}): {last_line}")
                if not will_retry:
                    store.save(result)
        pending = failed
    return [results[spec.key] for spec in specs]
