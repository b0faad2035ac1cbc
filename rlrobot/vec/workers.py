"""Errors and checks shared by the vector envs (action batches; worker processes), Gymnasium's
``AsyncVectorEnv`` made to name a failing worker and its ``SyncVectorEnv`` checking actions."""

from __future__ import annotations

import multiprocessing
import signal
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np


class EnvWorkerError(RuntimeError):
    """A sub-env process of a vector env died, raised or hung; names the env and the step."""


def check_worker_timeout(worker_timeout_s: float | None) -> float | None:
    """Return ``worker_timeout_s`` as a float (or None); raise ``ValueError`` unless > 0."""
    if worker_timeout_s is None:
        return None
    if isinstance(worker_timeout_s, bool) or not float(worker_timeout_s) > 0:
        raise ValueError(f"worker_timeout_s must be > 0 or None, got {worker_timeout_s!r}")
    return float(worker_timeout_s)


def check_action_rows(actions: Any, n_envs: int) -> None:
    """Raise ValueError unless every array of ``actions`` (nested dicts/tuples too) has one row
    per env: Gymnasium's vector envs would zip them with the envs and fail half-way, or drop
    the extra rows."""
    if isinstance(actions, dict):
        parts: Any = actions.values()
    elif isinstance(actions, tuple):
        parts = actions
    else:
        rows = len(actions) if np.ndim(actions) else 0
        if rows != n_envs:
            raise ValueError(
                f"actions have {rows} rows (shape {np.shape(actions)}) for {n_envs} envs; "
                f"step takes one action per env, a batch of {n_envs}"
            )
        return
    for part in parts:
        check_action_rows(part, n_envs)


class CheckedSyncVectorEnv(gym.vector.SyncVectorEnv):
    """Gymnasium's ``SyncVectorEnv`` whose ``step`` checks there is one action per env."""

    def step(self, actions: Any) -> Any:
        """Gymnasium's ``step``, after ``check_action_rows``."""
        check_action_rows(actions, self.num_envs)
        return super().step(actions)


class ReportingAsyncVectorEnv(gym.vector.AsyncVectorEnv):
    """``AsyncVectorEnv`` that turns a dead or failing worker into an ``EnvWorkerError``.

    Gymnasium reports a worker killed by a signal or ``os._exit`` as a bare ``EOFError`` from
    the pipe, and an exception inside a worker as that exception without the env's index.
    This subclass names the env, its process and exit status, and the vector step (counted
    from construction), stops the remaining workers, and marks the vector env closed.
    ``worker_timeout_s`` (seconds, ``None``: no limit) is the default ``timeout`` of
    ``step_wait`` and ``reset_wait``: a worker that has not answered by then is reported the
    same way. A worker that died between calls (its pipe broken when the next command is sent)
    is reported as ``EnvWorkerError`` too, and ``close()`` then stops and reaps the others
    without raising.
    """

    def __init__(self, *args: Any, worker_timeout_s: float | None = None, **kwargs: Any) -> None:
        # Set first: the parent constructor already talks to the workers.
        self.vector_steps = 0
        self._call_name = "construction"
        self.worker_timeout_s = check_worker_timeout(worker_timeout_s)
        super().__init__(*args, **kwargs)

    def reset_async(self, *args: Any, **kwargs: Any) -> None:
        """Gymnasium's ``reset_async``; a worker that died since the last call is reported."""
        self._call_name = f"reset after vector step {self.vector_steps}"
        self._guarded(super().reset_async, *args, **kwargs)

    def reset_wait(self, timeout: float | None = None) -> Any:
        """Gymnasium's ``reset_wait``, with worker failures reported as ``EnvWorkerError``."""
        self._call_name = f"reset after vector step {self.vector_steps}"
        return self._reporting(super().reset_wait, timeout)

    def step_async(self, actions: Any) -> None:
        """Gymnasium's ``step_async``; a worker that died since the last call is reported."""
        check_action_rows(actions, self.num_envs)
        self._call_name = f"vector step {self.vector_steps + 1}"
        self._guarded(super().step_async, actions)

    def step_wait(self, timeout: float | None = None) -> Any:
        """Gymnasium's ``step_wait``, with worker failures reported as ``EnvWorkerError``."""
        self._call_name = f"vector step {self.vector_steps + 1}"
        result = self._reporting(super().step_wait, timeout)
        self.vector_steps += 1
        return result

    def call_async(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Gymnasium's ``call_async``; a worker that died since the last call is reported."""
        self._call_name = f"call {name!r} after vector step {self.vector_steps}"
        self._guarded(super().call_async, name, *args, **kwargs)

    def call_wait(self, timeout: float | None = None) -> Any:
        """Gymnasium's ``call_wait``, with worker failures reported as ``EnvWorkerError``."""
        return self._reporting(super().call_wait, timeout)

    def set_attr(self, name: str, values: Any) -> None:
        """Gymnasium's ``set_attr``, with worker failures reported as ``EnvWorkerError``."""
        self._call_name = f"set_attr {name!r} after vector step {self.vector_steps}"
        self._guarded(super().set_attr, name, values)

    def close_extras(self, timeout: float | None = None, terminate: bool = False) -> None:
        """Stop the workers (Gymnasium's ``close_extras``) and close the error queue's pipe.

        A dead worker cannot answer "close" (its pipe is broken), so then the others are
        terminated instead; either way every worker is joined (no zombie processes).
        """
        from gymnasium.vector.async_vector_env import AsyncState

        terminate = terminate or any(not process.is_alive() for process in self.processes)
        try:
            super().close_extras(timeout=timeout, terminate=terminate)
        except (EnvWorkerError, EOFError, ConnectionError):
            # A worker died during the close itself (or a pending call failed): what is left
            # to do is stopping and reaping the others; the caller asked for nothing more.
            self._state = AsyncState.DEFAULT
            super().close_extras(terminate=True)
        self.error_queue.close()  # its pipe would stay open until garbage collection

    def _guarded(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``function(*args, **kwargs)``; a broken worker pipe becomes ``EnvWorkerError``."""
        try:
            return function(*args, **kwargs)
        except (EOFError, ConnectionError) as error:  # BrokenPipeError is a ConnectionError
            message = self._describe_dead_workers()
            self._stop_workers()
            raise EnvWorkerError(f"{message} during {self._call_name}") from error

    def _reporting(self, wait: Callable[..., Any], timeout: float | None) -> Any:
        timeout = timeout if timeout is not None else self.worker_timeout_s
        try:
            return self._guarded(wait, timeout=timeout)
        except EnvWorkerError:
            raise
        except multiprocessing.TimeoutError as error:
            late = [index for index, pipe in enumerate(self.parent_pipes) if not pipe.poll()]
            message = (
                "; ".join(
                    f"env {index} of {self.num_envs} (worker pid {self.processes[index].pid}) did "
                    f"not answer within {timeout:g} s"
                    for index in late
                )
                or f"a worker of this {self.num_envs}-env AsyncVectorEnv answered after "
                f"{timeout:g} s"
            )
            self._stop_workers()
            raise EnvWorkerError(f"{message} during {self._call_name}") from error

    def _raise_if_errors(self, successes: Any) -> None:
        successes = list(successes)
        failed = [index for index, success in enumerate(successes) if not success]
        try:
            super()._raise_if_errors(successes)
        except Exception as error:
            self._stop_workers()
            raise EnvWorkerError(
                f"env {failed[-1] if failed else '?'} of {self.num_envs} raised "
                f"{type(error).__name__}: {error} during {self._call_name} (the worker's "
                "traceback was logged above)"
            ) from error

    def _describe_dead_workers(self, wait_s: float = 2.0) -> str:
        """Name the workers that exited, waiting briefly for them to be reaped."""
        deadline = time.monotonic() + wait_s
        while True:
            dead = [(i, p) for i, p in enumerate(self.processes) if not p.is_alive()]
            if dead or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        if not dead:
            return f"a worker of this {self.num_envs}-env AsyncVectorEnv closed its pipe"
        return "; ".join(
            f"env {index} of {self.num_envs} (worker pid {process.pid}) died "
            f"({describe_exit_code(process.exitcode)})"
            for index, process in dead
        )

    def _stop_workers(self) -> None:
        """Terminate every worker and mark the vector env closed (it cannot go on)."""
        from gymnasium.vector.async_vector_env import AsyncState

        self._state = AsyncState.DEFAULT
        self.close(terminate=True)


def describe_exit_code(exit_code: int | None) -> str:
    """Describe a process exit code: "exit code 1", "killed by SIGKILL", "still exiting"."""
    if exit_code is None:
        return "still exiting"
    if exit_code < 0:
        try:
            return f"killed by {signal.Signals(-exit_code).name}"
        except ValueError:
            return f"killed by signal {-exit_code}"
    return f"exit code {exit_code}"
