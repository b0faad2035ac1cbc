"""Run many trials in parallel — a local process pool or Ray tasks — with caching and one retry.

Results are JSON files ``DIR/trials/<key>.json`` written atomically. A trial whose file says
``"status": "ok"`` is never run again (restarting a bench or sweep only runs what is missing);
a failed trial is retried once in the same run, as soon as it fails, and, if it fails again,
recorded as failed (and tried again on the next restart).

Both backends run ``rlrobot.benchmark.trial.execute_trial`` on the spec's dict, with one torch
thread per trial, so a spec gives the same result on either.

Code versions: every result records ``code_version`` (a hash of the package's files). The
cache key leaves it out, so that the stored trials of the studies (hours of compute) survive
edits. On Ray, where nodes may run other code, results must match: workers refuse to run a
trial with code other than the driver's, and a stored result of other code is run again. On the
local pool (the driver's own code) such results are kept, with a warning line; results stored
before versions were recorded are kept on both.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlrobot.benchmark.trial import TrialSpec, code_version, execute_trial, failure_result
from rlrobot.common.files import atomic_write_bytes
from rlrobot.errors import RLRobotError

BACKENDS = ("local", "ray")
# Seconds between checks that the Ray cluster can still run the unfinished tasks, and between
# progress lines while none finishes.
RAY_WAIT_S = 60.0
# Tasks of one Ray node that fail before their trial runs (other code, a failed import, a
# worker that cannot start) after which no more trials are sent there.
NODE_FAULT_LIMIT = 2
RAY_WAITING_LOG_S = 600.0

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


class ClusterError(RLRobotError):
    """The Ray cluster cannot be reached (or was lost), or has no node that can run a trial of
    the size asked."""


def with_partial_report(error: ClusterError, write_report: Callable[[], Path]) -> ClusterError:
    """Return ``error`` naming the report of what finished, which ``write_report`` writes now
    (``error`` itself when nothing finished)."""
    try:
        path = write_report()
    except (FileNotFoundError, KeyError):  # no finished trial to report
        return error
    return ClusterError(f"{error}; partial report: {path}")


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


def _run_local(
    function: Callable[..., Any], calls: list[tuple], workers: int
) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, function(*calls[index]))`` as calls finish in a pool of processes.

    Calls appended to ``calls`` meanwhile (a retry) are submitted as soon as the caller asks
    for the next result. A call whose worker died yields the exception instead of a result.
    """
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    # "forkserver": workers fork from a clean single-threaded server (safe with torch's thread
    # pools and PyBullet clients, unlike forking this process) that has imported the heavy
    # modules once, so a pool starts in well under a second instead of a fresh import each.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch", "stable_baselines3", "rlrobot.benchmark.trial"])
    with ProcessPoolExecutor(
        max_workers=min(workers, len(calls)), mp_context=context, initializer=_init_local_worker
    ) as pool:
        futures: dict[Any, int] = {}
        submitted = 0
        while submitted < len(calls) or futures:
            for index in range(submitted, len(calls)):
                futures[pool.submit(function, *calls[index])] = index
            submitted = len(calls)
            done, _ = wait(list(futures), return_when=FIRST_COMPLETED)
            for future in done:
                index = futures.pop(future)
                try:
                    outcome = future.result()
                except Exception as error:  # a worker that died (BrokenProcessPool) …
                    outcome = error
                yield index, outcome


def _connect_ray(ray: Any, execution: Execution, log: Log) -> None:
    """Connect to the cluster of ``--ray-address``, else one found here, else start Ray here.

    ``ray.init(address="auto")`` finds a cluster from ``RAY_ADDRESS`` (how ``ray job submit``
    points a driver) or from a ``ray start`` on this machine; Ray refuses ``num_cpus`` for an
    existing cluster, so it is given only to an instance started here. On a cluster the
    workers get this package's code (``py_modules``): nodes need its dependencies, not a
    checkout of the same commit.
    """
    import rlrobot

    runtime_env = {
        "py_modules": [str(Path(rlrobot.__file__).parent)],
        "excludes": ["__pycache__", "*.pyc"],
    }
    try:
        ray.init(
            address=execution.ray_address or "auto",
            log_to_driver=False,
            runtime_env=runtime_env,
        )
    except ConnectionError as error:
        if execution.ray_address is not None:
            raise ClusterError(
                f"cannot connect to the Ray cluster at --ray-address {execution.ray_address} "
                f"({str(error).splitlines()[0]}); a cluster with token authentication also "
                "needs RAY_AUTH_MODE=token and its token (RAY_AUTH_TOKEN or ~/.ray/auth_token)"
            ) from None
        ray.init(
            num_cpus=execution.workers or os.cpu_count() or 1,
            include_dashboard=False,
            log_to_driver=False,
        )
        return
    if execution.workers is not None:
        log(f"--workers {execution.workers} is ignored on a Ray cluster: its CPUs decide")


def check_ray_fits(ray: Any, cpus_per_trial: float) -> None:
    """Raise ``ClusterError`` unless some live Ray node has ``cpus_per_trial`` CPUs.

    Ray would queue such a task forever, its complaint going only to its own log.
    """
    nodes = [node for node in ray.nodes() if node.get("Alive")]
    node_cpus = [node["Resources"].get("CPU", 0.0) for node in nodes]
    if not any(cpus >= cpus_per_trial for cpus in node_cpus):
        raise ClusterError(
            f"a trial asks for {cpus_per_trial:g} CPUs (--cpus-per-trial), but no Ray node has "
            f"that many: {len(nodes)} live node(s) with {[f'{c:g}' for c in node_cpus]} CPUs "
            f"(cluster: {ray.cluster_resources()})"
        )


def _run_ray(
    function: Callable[..., Any], calls: list[tuple], execution: Execution, log: Log
) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, result)`` as Ray tasks finish (connects to or starts Ray if needed).

    Calls appended to ``calls`` meanwhile (a retry) are submitted as soon as the caller asks
    for the next result. A task whose worker died yields the exception instead of a result.

    Raises:
        ClusterError: No node can run a task (checked before submitting and while waiting).
    """
    try:
        import ray
    except ImportError as error:
        raise RuntimeError(
            "the ray backend needs Ray: pip install 'rlrobot[ray]' (or pip install ray)"
        ) from error
    started_here = not ray.is_initialized()
    if started_here:
        _connect_ray(ray, execution, log)
    try:
        check_ray_fits(ray, execution.cpus_per_trial)
        # max_retries=0: retries are ours (same policy as the local backend).
        remote = ray.remote(num_cpus=execution.cpus_per_trial, max_retries=0)(function)
        pending: dict[Any, int] = {}
        submitted, waited = 0, 0.0
        faults: dict[str, int] = {}
        excluded: set[str] = set()
        while submitted < len(calls) or pending:
            for index in range(submitted, len(calls)):
                task = _placed(ray, remote, excluded, execution.cpus_per_trial, index)
                pending[task.remote(*calls[index])] = index
            submitted = len(calls)
            try:
                done, _ = ray.wait(list(pending), num_returns=1, timeout=RAY_WAIT_S)
                if not done:
                    # Nodes may have left since the start: fail rather than wait forever.
                    check_ray_fits(ray, execution.cpus_per_trial)
            except ConnectionError as error:  # the head node (its GCS) is gone
                detail = (str(error).strip() or type(error).__name__).splitlines()[0]
                raise ClusterError(
                    f"lost the Ray cluster with {len(pending)} of {len(calls)} task(s) "
                    f"unfinished ({detail}); finished trials are saved: run the same command "
                    "again to resume"
                ) from None
            if not done:
                waited += RAY_WAIT_S
                if waited % RAY_WAITING_LOG_S < RAY_WAIT_S:
                    log(f"waiting for Ray: {len(pending)} task(s) unfinished after {waited:.0f} s")
                continue
            waited = 0.0
            for reference in done:
                index = pending.pop(reference)
                try:
                    outcome = ray.get(reference)
                except Exception as error:  # a task whose worker died (RayError …)
                    outcome = error
                node = _faulty_node(ray, outcome)
                if node is not None and node not in excluded:
                    faults[node] = faults.get(node, 0) + 1
                    if faults[node] >= NODE_FAULT_LIMIT:
                        excluded.add(node)
                        log(
                            f"Ray node {node}: {faults[node]} tasks failed before their trial "
                            "ran (other code or a failed import): no more trials go there"
                        )
                yield index, outcome
    finally:
        if started_here:
            ray.shutdown()


def _faulty_node(ray: Any, outcome: Any) -> str | None:
    """Return the node of a task that failed before its trial ran, else None.

    Such a task returns a failure naming other code or an import error (its ``machine``
    names the node), or raises a Ray error whose ``ip`` is one live node's address.
    """
    if isinstance(outcome, dict):
        error = outcome.get("error", "") if outcome.get("status") == "failed" else ""
        before_running = error.startswith("this worker runs rlrobot code") or any(
            name in error for name in ("ModuleNotFoundError", "ImportError")
        )
        return (outcome.get("machine") or {}).get("ray_node") if before_running else None
    address = getattr(outcome, "ip", None)
    nodes = [
        node["NodeID"]
        for node in ray.nodes()
        if node.get("Alive") and address and node.get("NodeManagerAddress") == address
    ]
    return nodes[0] if len(nodes) == 1 else None


def _placed(ray: Any, remote: Any, excluded: set[str], cpus: float, index: int) -> Any:
    """Return ``remote``, pinned (round robin by ``index``) to a live node not ``excluded``.

    Raises:
        ClusterError: Every node that could run a trial is excluded.
    """
    if not excluded:
        return remote
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    healthy = [
        node["NodeID"]
        for node in ray.nodes()
        if node.get("Alive")
        and node["NodeID"] not in excluded
        and node["Resources"].get("CPU", 0.0) >= cpus
    ]
    if not healthy:
        raise ClusterError(
            f"every Ray node that can run a trial failed {NODE_FAULT_LIMIT} tasks before their "
            f"trial ran (other code or a failed import): {sorted(excluded)}; fix their "
            "environment (the runs' errors say what failed) and run the same command again"
        )
    node = healthy[index % len(healthy)]
    return remote.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False))


def run_calls(
    function: Callable[..., Any], calls: list[tuple], execution: Execution, log: Log = print
) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, function(*calls[index]))`` as calls finish on the execution's backend.

    ``function`` must be importable by module and name (workers import it). A call whose
    worker died yields the exception instead of a result.
    """
    if execution.backend == "local":
        return _run_local(function, calls, execution.workers or os.cpu_count() or 1)
    return _run_ray(function, calls, execution, log)


def run_trials(
    specs: list[TrialSpec],
    store: TrialStore,
    execution: Execution | None = None,
    log: Log = print,
    labels: Mapping[str, str] | None = None,
    function: Callable[..., dict[str, Any]] = execute_trial,
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
        function: The worker entry, ``function(spec.to_dict(), expected_code_version)``:
            ``execute_trial``, or a study's own for its own spec class (a module-level
            function, so that workers can import it).

    Returns:
        One result dict per spec (``status`` ``"ok"`` or ``"failed"`` with ``error``).
    """
    execution = execution or Execution()
    retries = execution.retries
    current = code_version()
    results: dict[str, dict[str, Any]] = {}
    pending: dict[str, TrialSpec] = {}
    other_code = 0
    for spec in specs:
        cached = store.load(spec.key)
        if cached is None or cached.get("status") != "ok":
            pending[spec.key] = spec
            continue
        # Results stored before code versions were recorded carry none: kept.
        if cached.get("code_version", current) != current:
            other_code += 1
            if execution.backend == "ray":
                pending[spec.key] = spec
                continue
        results[spec.key] = cached
    if results:
        log(f"{len(results)} trial(s) already done in {store.directory}, {len(pending)} to run")
    if other_code:
        action = "run again (ray backend)" if execution.backend == "ray" else "kept"
        log(f"{other_code} stored trial(s) were run by other rlrobot code: {action}")
    # Ray workers check that they run this code (a node with another checkout fails).
    expected = current if execution.backend == "ray" else None
    batch = list(pending.values())
    calls = [(spec.to_dict(), expected) for spec in batch]
    attempts = [1] * len(batch)
    # A failed trial is submitted again as soon as it fails, not after the others: on a bench
    # of hours its retry runs alongside them.
    for index, outcome in run_calls(function, calls, execution, log) if calls else ():
        spec, attempt = batch[index], attempts[index]
        result = outcome if isinstance(outcome, dict) else failure_result(spec, outcome)
        label = (labels or {}).get(spec.key, spec.label)
        result["attempts"] = attempt
        results[spec.key] = result
        if result["status"] == "ok":
            store.save(result)
            log(
                f"done   {label}: return {result['final_return']:.4g}, "
                f"{result['steps_per_second']:.0f} steps/s, {result['wall_time_s']:.0f} s"
            )
            continue
        last_line = result["error"].strip().splitlines()[-1]
        log(f"FAILED {label} (attempt {attempt}): {last_line}")
        if attempt <= retries:
            batch.append(spec)
            attempts.append(attempt + 1)
            calls.append(calls[index])
        else:
            store.save(result)
    return [results[spec.key] for spec in specs]
