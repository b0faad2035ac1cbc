"""A process-parallel vector env whose step data lives in shared memory.

Gymnasium's ``AsyncVectorEnv`` sends every step through a pipe, pickling the action to each
worker and the reward, flags and info dict back. ``SharedMemoryVectorEnv`` keeps actions,
observations (``Dict`` and ``Tuple`` ones too), rewards, ``terminated`` and ``truncated`` in
shared arrays that both sides map once, wakes each worker with a semaphore and the main process
once per vector step, and uses the pipe only for what is rare or arbitrary: infos (every step
only with ``step_infos=True``, otherwise on episode ends), ``reset`` seeds, ``call``/
``get_attr``/``set_attr`` and errors. A worker may step several envs, and with
``n_main_envs > 0`` the main process steps the first envs itself between waking the workers and
waiting for them. ``docs/vector_envs.md`` has the profile behind this design. The main side
(``SharedMemoryVectorEnv``) and the worker side (``_worker``) are one file on purpose: they
share the command codes, the status protocol and the layout of the shared arrays.

Semantics are those of ``gym.vector.AsyncVectorEnv(..., autoreset_mode=SAME_STEP)``: an env
that ends is reset in the same step, its real final observation and info are in
``info["final_obs"][i]`` and ``info["final_info"]`` (masks ``_final_obs``, ``_final_info``);
``reset(options={"reset_mask": mask})`` resets only the envs where ``mask`` is True, as
Gymnasium's vector envs do.
A worker that dies or raises becomes an ``EnvWorkerError`` naming the env, the worker's pid,
its exit status and the vector step; the other workers are then stopped. So does a worker
that hangs, with ``worker_timeout_s``. An env of the main process that raises raises its own
exception (with a note naming the env and the vector step), after stopping the workers: they
were in the middle of the same command.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import pickle
import signal
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import (
    CloudpickleWrapper,
    batch_space,
    create_shared_memory,
    read_from_shared_memory,
)

from rlrobot.vec.workers import (
    EnvWorkerError,
    check_action_rows,
    check_worker_timeout,
    describe_exit_code,
)

# How often a waiting side checks that the other side is still alive (s): only a failure
# waits this long, a normal wake-up is immediate.
_LIVENESS_PERIOD_S = 0.2


# Commands (in the shared ``commands`` array) and statuses (``statuses``), one slot per worker;
# plain ints, as enum members cost microseconds to look up.
_STEP, _RESET, _CALL, _SET_ATTR, _CLOSE = range(1, 6)
# Nothing in the pipe / a reply follows / an error report follows / still running the command.
_OK, _MESSAGE, _ERROR, _BUSY = range(4)


class _Countdown:
    """Wakes the main process once the last worker has finished a command.

    One wake-up per vector step instead of one per worker: under load each wake-up of the
    main process can wait for a core.
    """

    def __init__(self, ctx: multiprocessing.context.BaseContext) -> None:
        self.lock, self.remaining, self.done = ctx.Lock(), ctx.RawValue("i", 0), ctx.Semaphore(0)

    def start(self, n_workers: int) -> None:
        """Expect ``n_workers`` calls of ``finish`` (main process, before waking workers)."""
        self.remaining.value = n_workers

    def finish(self) -> None:
        """Count one worker as finished (worker process)."""
        with self.lock:
            self.remaining.value -= 1
            last = self.remaining.value == 0
        if last:
            self.done.release()

    def wait(self, timeout_s: float) -> bool:
        """Wait until every worker has finished; False after ``timeout_s`` s."""
        return self.done.acquire(timeout=timeout_s)


def _copy_into(destination: Any, source: Any) -> None:
    """Copy a (nested dict/tuple of) array(s) into preallocated arrays of the same structure."""
    if isinstance(destination, dict):
        for key, value in destination.items():
            _copy_into(value, source[key])
    elif isinstance(destination, tuple):
        for value, part in zip(destination, source, strict=True):
            _copy_into(value, part)
    else:
        destination[...] = source


def _take(batch: Any, index: int | slice) -> Any:
    """A copy of row(s) ``index`` of a (nested dict/tuple of) batched array(s)."""
    if isinstance(batch, dict):
        return {key: _take(value, index) for key, value in batch.items()}
    if isinstance(batch, tuple):
        return tuple(_take(value, index) for value in batch)
    return batch[index].copy()


def _split(first: int, n_envs: int, n_workers: int) -> list[range]:
    """Consecutive env indices ``first…n_envs-1`` of each worker, sizes differing by at most one."""
    bounds = np.linspace(first, n_envs, n_workers + 1).round().astype(int).tolist()
    return [range(start, stop) for start, stop in itertools.pairwise(bounds)]


def default_main_envs(n_envs: int, n_cores: int | None = None) -> int:
    """Envs the main process should step itself: its even share of the usable cores.

    With ``n_envs <= n_cores`` every process, the main one included, steps one env; with more
    envs each of the ``n_cores`` processes steps ``n_envs // n_cores`` or one more, the main
    process (which also runs the policy) the fewer. One env (or one core): none, all in one
    worker.
    """
    n_processes = min(n_envs, n_cores or len(os.sched_getaffinity(0)))
    return n_envs // n_processes if n_processes > 1 else 0


class SharedMemoryVectorEnv(gym.vector.VectorEnv):
    """Vector env stepping its envs in worker processes (and the main one) through shared memory.

    Args:
        env_fns: One factory per env; each is called in the process that steps the env.
        n_workers: Worker processes (default: one per env not in the main process, at most one
            per usable CPU core not taken by the main process's envs: more would only take
            turns); each steps a consecutive block of envs, block sizes differing by at most
            one.
        n_main_envs: Envs ``0…n_main_envs-1`` that the main process steps itself while the
            workers step the others (0: every env in a worker). ``default_main_envs`` gives
            one env per process for ``n_envs <= cores``, what ``make_vec_env(...,
            vec_env="shm")`` uses (``vec_env="shm_workers"``: 0).
        step_infos: Send every step's infos, as Gymnasium does. ``False`` sends infos only when
            an episode ends (``final_obs``, ``final_info`` and the reset info), saving a pipe
            round trip per worker and step; rlrobot's agents read nothing else.
        copy: Return copies of the shared observation arrays (``False``: views that the next
            ``step`` overwrites).
        context: ``multiprocessing`` start method (``"fork"``, ``"spawn"``…; default: the
            platform's).
        daemon: Make the workers daemonic (killed when the main process exits).
        worker_timeout_s: Seconds a worker may take to build its envs or to run one command
            (a step, a reset, a call) before the vector env stops every worker and raises
            ``EnvWorkerError`` naming it (``None``: wait as long as it takes). The main
            process's own envs are not timed.

    Attributes:
        vector_steps: ``step`` calls since construction (named in ``EnvWorkerError``).
        env_fns: The factories (HER builds a probe env from the first).
        processes: The worker processes, ``(n_workers,)``.
        worker_envs: Env indices of each worker.
        main_envs: Env indices stepped in the main process (empty with ``n_main_envs=0``).
    """

    def __init__(
        self,
        env_fns: Sequence[Callable[[], gym.Env]],
        n_workers: int | None = None,
        n_main_envs: int = 0,
        step_infos: bool = True,
        copy: bool = True,
        context: str | None = None,
        daemon: bool = True,
        worker_timeout_s: float | None = None,
    ) -> None:
        self.closed = True  # until the workers are up, close() has nothing to stop
        self.env_fns = list(env_fns)
        self.num_envs = len(self.env_fns)
        if not 0 <= n_main_envs < self.num_envs:
            raise ValueError(f"n_main_envs must be in [0, {self.num_envs - 1}], got {n_main_envs}")
        self.worker_timeout_s = check_worker_timeout(worker_timeout_s)
        n_worker_envs = self.num_envs - n_main_envs
        if n_workers is None:
            free_cores = len(os.sched_getaffinity(0)) - (n_main_envs > 0)
            n_workers = min(n_worker_envs, max(1, free_cores))
        if not 1 <= n_workers <= n_worker_envs:
            raise ValueError(f"n_workers must be in [1, {n_worker_envs}], got {n_workers}")
        self.step_infos, self.copy = step_infos, copy
        self.vector_steps = 0
        self.processes: list[multiprocessing.process.BaseProcess] = []
        self.main_envs = range(n_main_envs)
        self._main: _EnvGroup | None = None

        # A probe env in this process gives the spaces (shared arrays must exist before the
        # workers start), as in Gymnasium's AsyncVectorEnv.
        probe = self.env_fns[0]()
        self.metadata = {**probe.metadata, "autoreset_mode": AutoresetMode.SAME_STEP}
        self.render_mode, self.spec = probe.render_mode, probe.spec
        self.single_observation_space = probe.observation_space
        self.single_action_space = probe.action_space
        probe.close()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

        ctx = multiprocessing.get_context(context)
        buffers = {
            "observations": create_shared_memory(self.single_observation_space, self.num_envs, ctx),
            "actions": create_shared_memory(self.single_action_space, self.num_envs, ctx),
            "rewards": ctx.RawArray("d", self.num_envs),
            "terminated": ctx.RawArray("b", self.num_envs),
            "truncated": ctx.RawArray("b", self.num_envs),
            "commands": ctx.RawArray("i", n_workers),
            "statuses": ctx.RawArray("i", n_workers),
        }
        self._arrays = _map_buffers(buffers, self.single_observation_space, self.num_envs)
        self._arrays["actions"] = read_from_shared_memory(
            self.single_action_space, buffers["actions"], self.num_envs
        )
        self.worker_envs = _split(n_main_envs, self.num_envs, n_workers)
        self._wakes = [ctx.Semaphore(0) for _ in range(n_workers)]
        self._countdown = _Countdown(ctx)
        self._pipes: list[Connection] = []
        self._phase = "construction"
        deadline = self._deadline()
        for worker, envs in enumerate(self.worker_envs):
            parent_pipe, child_pipe = ctx.Pipe()
            process = ctx.Process(
                target=_worker,
                name=f"Worker<{type(self).__name__}>-{worker}",
                args=(
                    worker,
                    envs,
                    [CloudpickleWrapper(self.env_fns[i]) for i in envs],
                    child_pipe,
                    parent_pipe,
                    buffers,
                    self.single_observation_space,
                    self.single_action_space,
                    self._wakes[worker],
                    self._countdown,
                    step_infos,
                ),
                daemon=daemon,
            )
            process.start()
            child_pipe.close()
            self._pipes.append(parent_pipe)
            self.processes.append(process)
        self.closed = False
        if self.main_envs:  # built while the workers build theirs (after the fork: not copied)
            self._main = _EnvGroup(
                self.main_envs,
                buffers,
                self.single_observation_space,
                self.single_action_space,
                step_infos,
            )
            self._in_main(lambda: self._main.make(self.env_fns[:n_main_envs]))
        for worker in range(n_workers):  # each worker reports once its envs are built
            self._receive(worker, deadline)

    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[Any, dict[str, Any]]:
        """Reset every env, or only those where ``options["reset_mask"]`` is True.

        Env ``i`` gets ``seed + i`` (an int) or ``seed[i]`` (a sequence) if it is reset. As in
        Gymnasium's vector envs, the mask must be a bool array ``(n_envs,)`` with at least one
        True; the other options go to each env's ``reset``.

        Returns:
            ``(observations, infos)``: the new observations of the reset envs and the current
            ones of the others; infos (with their ``_key`` masks) of the reset envs only.
        """
        if seed is None or isinstance(seed, (int, np.integer)):
            seeds = [None if seed is None else int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"expected {self.num_envs} seeds, got {len(seeds)}")
        reset_mask, options = _split_reset_mask(options, self.num_envs)
        replies = self._run(
            _RESET,
            f"reset after vector step {self.vector_steps}",
            lambda envs: (
                [seeds[i] for i in envs],
                [reset_mask is None or bool(reset_mask[i]) for i in envs],
                options,
            ),
            reset_mask,
        )
        return self._observations(), self._collect_infos(replies)

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every env with its row of ``actions`` (batched as ``action_space``).

        Returns:
            ``(observations, rewards (n_envs,) float64, terminated (n_envs,) bool, truncated
            (n_envs,) bool, infos)``; ended envs are already reset (see the module docstring).
        """
        check_action_rows(actions, self.num_envs)
        _copy_into(self._arrays["actions"], actions)
        replies = self._run(_STEP, f"vector step {self.vector_steps + 1}")
        self.vector_steps += 1
        arrays = self._arrays
        return (
            self._observations(),
            arrays["rewards"].copy(),
            arrays["terminated"].copy(),
            arrays["truncated"].copy(),
            self._collect_infos(replies),
        )

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Call method ``name`` of every env (or read the attribute); one result per env."""
        replies = self._run(_CALL, f"call {name!r}", lambda envs: (name, args, kwargs))
        return tuple(result for reply in replies for result in reply)

    def get_attr(self, name: str) -> tuple[Any, ...]:
        """Attribute ``name`` of every env (through its wrappers)."""
        return self.call(name)

    def set_attr(self, name: str, values: Any) -> None:
        """Set attribute ``name`` of every env: one value each (list/tuple) or the same one."""
        if not isinstance(values, (list, tuple)):
            values = [values] * self.num_envs
        if len(values) != self.num_envs:
            raise ValueError(f"expected {self.num_envs} values, got {len(values)}")
        self._run(_SET_ATTR, f"set_attr {name!r}", lambda envs: (name, [values[i] for i in envs]))

    def render(self) -> tuple[Any, ...] | None:
        """The frames of every env (``render_mode`` of the envs)."""
        return self.call("render")

    def close_extras(self, timeout_s: float = 5.0, terminate: bool = False) -> None:
        """Stop the workers (closing their envs unless ``terminate``), release the pipes and
        close the main process's envs."""
        if not terminate:
            for worker, process in enumerate(self.processes):
                if process.is_alive():
                    self._arrays["commands"][worker] = _CLOSE
                    self._wakes[worker].release()
            for process in self.processes:
                process.join(timeout_s)
        for process in self.processes:
            if process.is_alive():
                process.terminate()
        for process in self.processes:
            process.join()
        for pipe in self._pipes:
            pipe.close()
        if self._main is not None:
            self._main.close()

    def __del__(self) -> None:
        """Stop the workers of a vector env that was never closed."""
        if not getattr(self, "closed", True):
            self.close(terminate=True)

    def _observations(self) -> Any:
        observations = self._arrays["observations"]
        return _take(observations, slice(None)) if self.copy else observations

    def _collect_infos(
        self, replies: list[list[tuple[int, dict[str, Any]]] | None]
    ) -> dict[str, Any]:
        """Batch the ``(env index, info)`` pairs of ``step``/``reset`` replies, in env order."""
        infos: dict[str, Any] = {}
        for reply in replies:
            for i, info in reply or ():
                infos = self._add_info(infos, info, i)
        return infos

    def _run(
        self,
        command: int,
        phase: str,
        payload: Callable[[range], Any] | None = None,
        env_mask: np.ndarray | None = None,
    ) -> list[Any]:
        """Run ``command`` on the groups holding an env of ``env_mask`` (default: every group):
        wake their workers, run it on the main process's envs meanwhile, wait for the workers;
        the replies of those groups in env order (main process first).

        ``payload(envs)`` gives the arguments for the group stepping ``envs`` (none for a step).
        """
        if self.closed:
            raise gym.error.ClosedEnvironmentError(f"{type(self).__name__} is closed")
        self._phase = phase
        workers = [
            worker
            for worker, envs in enumerate(self.worker_envs)
            if env_mask is None or env_mask[envs.start : envs.stop].any()
        ]
        commands, statuses = self._arrays["commands"], self._arrays["statuses"]
        deadline = self._deadline()
        self._countdown.start(len(workers))
        for worker in workers:
            commands[worker] = command
            statuses[worker] = _BUSY
            if payload is not None:
                self._send(worker, payload(self.worker_envs[worker]))
            self._wakes[worker].release()
        replies = []
        if self._main is not None and (env_mask is None or env_mask[: len(self.main_envs)].any()):
            arguments = None if payload is None else payload(self.main_envs)
            replies.append(self._in_main(lambda: self._main.run(command, arguments)))
        # With no worker woken nobody counts down (a reset of main-process envs only).
        while workers and not self._countdown.wait(_LIVENESS_PERIOD_S):
            self._raise_if_dead()
            self._raise_if_late(deadline, [w for w in workers if statuses[w] == _BUSY])
        return replies + [
            None if statuses[worker] == _OK else self._receive(worker, deadline)
            for worker in workers
        ]

    def _in_main(self, run: Callable[[], Any]) -> Any:
        """``run()`` on the main process's envs; if it raises, stop the workers (they are in
        the middle of the same command) and let the exception through, noting the env."""
        try:
            return run()
        except BaseException as error:
            error.add_note(
                f"in env {self._main.current} of {self.num_envs} (main process) during "
                f"{self._phase}"
            )
            self.close(terminate=True)
            raise

    def _send(self, worker: int, payload: Any) -> None:
        try:
            self._pipes[worker].send(payload)
        except (BrokenPipeError, ConnectionError) as error:
            self._fail(self._describe_dead(), error)

    def _receive(self, worker: int, deadline: float | None) -> Any:
        """The next pipe message of ``worker``; its error report becomes ``EnvWorkerError``."""
        pipe, process = self._pipes[worker], self.processes[worker]
        try:
            while not wait([pipe, process.sentinel], timeout=_LIVENESS_PERIOD_S):
                self._raise_if_late(deadline, [worker])
            kind, content = pipe.recv()
        except (EOFError, OSError) as error:
            self._fail(self._describe_dead(), error)
        if kind == "error":
            env_index, error, worker_traceback = content
            error.add_note(f"traceback in worker {worker} (pid {process.pid}):\n{worker_traceback}")
            self._fail(
                f"env {env_index} of {self.num_envs} (worker pid {process.pid}) raised "
                f"{type(error).__name__}: {error}",
                error,
            )
        return content

    def _raise_if_dead(self) -> None:
        """Raise ``EnvWorkerError`` if a worker has exited (with its error report, if any)."""
        statuses = self._arrays["statuses"]
        for worker, process in enumerate(self.processes):
            if process.exitcode is not None and statuses[worker] == _ERROR:
                self._receive(worker, None)  # it reported an error, then exited
        if any(process.exitcode is not None for process in self.processes):
            self._fail(self._describe_dead(), None)

    def _deadline(self) -> float | None:
        """When a command started now times out (``time.monotonic``), or None."""
        if self.worker_timeout_s is None:
            return None
        return time.monotonic() + self.worker_timeout_s

    def _raise_if_late(self, deadline: float | None, workers: list[int]) -> None:
        """Raise ``EnvWorkerError`` naming ``workers`` (those still busy) past ``deadline``."""
        if deadline is None or time.monotonic() < deadline or not workers:
            return
        self._fail(
            "; ".join(
                f"{_name_envs(self.worker_envs[worker])} of {self.num_envs} (worker pid "
                f"{self.processes[worker].pid}) did not answer within {self.worker_timeout_s:g} s"
                for worker in workers
            ),
            None,
        )

    def _describe_dead(self) -> str:
        # A closed pipe can precede the exit by a moment.
        wait([process.sentinel for process in self.processes], timeout=0.5)
        dead = [
            (envs, process)
            for envs, process in zip(self.worker_envs, self.processes, strict=True)
            if process.exitcode is not None
        ]
        if not dead:
            return f"a worker of this {self.num_envs}-env {type(self).__name__} closed its pipe"
        return "; ".join(
            f"{_name_envs(envs)} of {self.num_envs} (worker pid {process.pid}) died "
            f"({describe_exit_code(process.exitcode)})"
            for envs, process in dead
        )

    def _fail(self, message: str, cause: BaseException | None) -> None:
        """Stop every worker, mark the vector env closed and raise ``EnvWorkerError``."""
        phase = self._phase
        self.close(terminate=True)
        raise EnvWorkerError(f"{message} during {phase}") from cause


def _split_reset_mask(
    options: dict[str, Any] | None, n_envs: int
) -> tuple[np.ndarray | None, dict[str, Any] | None]:
    """Split ``options`` into its checked ``reset_mask`` (None: reset every env) and the rest.

    The checks and exception types are Gymnasium's (``SyncVectorEnv.reset``), but the
    caller's dict is left as it is.
    """
    if options is None or "reset_mask" not in options:
        return None, options
    options = dict(options)
    reset_mask = options.pop("reset_mask")
    if not isinstance(reset_mask, np.ndarray):
        raise TypeError(
            f"options['reset_mask'] must be a numpy array, got {type(reset_mask).__name__}"
        )
    if reset_mask.shape != (n_envs,):
        raise ValueError(
            f"options['reset_mask'] must have shape ({n_envs},), got {reset_mask.shape}"
        )
    if reset_mask.dtype != np.bool_:
        raise TypeError(f"options['reset_mask'] must have dtype bool, got {reset_mask.dtype}")
    if not reset_mask.any():
        raise ValueError("options['reset_mask'] must select at least one env, got all False")
    return reset_mask, options


def _name_envs(envs: range) -> str:
    return f"env {envs[0]}" if len(envs) == 1 else f"envs {envs[0]}-{envs[-1]}"


def _map_buffers(buffers: dict[str, Any], observation_space: gym.Space, n_envs: int) -> dict:
    """Numpy views of the shared buffers (actions are mapped by the caller)."""
    return {
        "observations": read_from_shared_memory(observation_space, buffers["observations"], n_envs),
        "rewards": np.frombuffer(buffers["rewards"], dtype=np.float64),
        "terminated": np.frombuffer(buffers["terminated"], dtype=np.bool_),
        "truncated": np.frombuffer(buffers["truncated"], dtype=np.bool_),
        "commands": np.frombuffer(buffers["commands"], dtype=np.int32),
        "statuses": np.frombuffer(buffers["statuses"], dtype=np.int32),
    }


class _EnvGroup:
    """The envs of one process (a worker or the main one) and the commands it runs on them.

    ``current`` is the index of the env being worked on, named when one raises.
    """

    def __init__(
        self,
        env_indices: range,
        buffers: dict[str, Any],
        observation_space: gym.Space,
        action_space: gym.Space,
        step_infos: bool,
    ) -> None:
        self.env_indices, self.step_infos = env_indices, step_infos
        n_envs = len(buffers["rewards"])
        self.arrays = _map_buffers(buffers, observation_space, n_envs)
        self.actions = read_from_shared_memory(action_space, buffers["actions"], n_envs)
        self.observation_rows = {i: _row(self.arrays["observations"], i) for i in env_indices}
        self.envs: list[gym.Env] = []
        self.current = env_indices[0]

    def make(self, env_fns: Sequence[Callable[[], gym.Env]]) -> None:
        """Build the envs, one factory each (``close`` closes those built if one raises)."""
        for i, env_fn in zip(self.env_indices, env_fns, strict=True):
            self.current = i
            self.envs.append(env_fn())

    def _each(self, *columns: list[Any]) -> Iterator[tuple[Any, ...]]:
        """``(env index, env, *column values)`` of every env, keeping ``current`` up to date."""
        for i, env, *values in zip(self.env_indices, self.envs, *columns, strict=True):
            self.current = i
            yield i, env, *values

    def step(self) -> list[tuple[int, dict[str, Any]]] | None:
        """Step every env with its shared action; the infos to send, if any."""
        arrays, infos = self.arrays, []
        for i, env in self._each():
            observation, reward, terminated, truncated, info = env.step(_take(self.actions, i))
            if terminated or truncated:
                final_observation, final_info = observation, info
                observation, info = env.reset()
                info = {"final_info": final_info, "final_obs": final_observation, **info}
                infos.append((i, info))
            elif self.step_infos and info:
                infos.append((i, info))
            _copy_into(self.observation_rows[i], observation)
            arrays["rewards"][i] = reward
            arrays["terminated"][i] = terminated
            arrays["truncated"][i] = truncated
        return infos or None

    def reset(
        self, seeds: list[int | None], resets: list[bool], options: dict[str, Any] | None
    ) -> list[tuple[int, dict[str, Any]]]:
        """Reset the envs whose ``resets`` entry is True, each with its seed; their
        ``(env index, reset info)``."""
        infos = []
        for i, env, seed, reset in self._each(seeds, resets):
            if reset:
                observation, info = env.reset(seed=seed, options=options)
                _copy_into(self.observation_rows[i], observation)
                infos.append((i, info))
        return infos

    def call(self, name: str, args: tuple, kwargs: dict[str, Any]) -> list[Any]:
        """Call method ``name`` of every env, or read the attribute."""
        results = []
        for _, env in self._each():
            attribute = env.get_wrapper_attr(name)
            results.append(attribute(*args, **kwargs) if callable(attribute) else attribute)
        return results

    def set_attr(self, name: str, values: list[Any]) -> bool:
        """Set attribute ``name`` of every env to its value."""
        for _, env, value in self._each(values):
            env.set_wrapper_attr(name, value)
        return True

    def run(self, command: int, payload: Any) -> Any:
        """Run one command with its arguments (None for a step); the reply or None."""
        if command == _STEP:
            return self.step()
        if command == _RESET:
            return self.reset(*payload)
        if command == _CALL:
            return self.call(*payload)
        return self.set_attr(*payload)

    def close(self) -> None:
        """Close every env."""
        for env in self.envs:
            env.close()


def _worker(
    worker: int,
    env_indices: range,
    env_fns: list[CloudpickleWrapper],
    pipe: Connection,
    parent_pipe: Connection,
    buffers: dict[str, Any],
    observation_space: gym.Space,
    action_space: gym.Space,
    wake: Any,
    countdown: _Countdown,
    step_infos: bool,
) -> None:
    """Worker loop: wait for a command, run it on this worker's envs, report, repeat."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    parent_pipe.close()
    parent = multiprocessing.parent_process()
    commands = np.frombuffer(buffers["commands"], dtype=np.int32)
    statuses = np.frombuffer(buffers["statuses"], dtype=np.int32)
    envs = None
    try:
        envs = _EnvGroup(env_indices, buffers, observation_space, action_space, step_infos)
        envs.make(env_fns)
        pipe.send(("ready", None))
        while True:
            while not wake.acquire(timeout=_LIVENESS_PERIOD_S * 5):
                if parent is not None and not parent.is_alive():
                    return  # orphaned: nobody will send another command
            command = commands[worker]
            if command == _CLOSE:
                return
            reply = envs.run(command, None if command == _STEP else pipe.recv())
            # Released before sending: a large reply blocks until the main process reads it.
            statuses[worker] = _OK if reply is None else _MESSAGE
            countdown.finish()
            if reply is not None:
                pipe.send(("reply", reply))
    except Exception as error:  # reported to the main process, which stops every worker
        try:
            pickle.dumps(error)
        except Exception:
            error = RuntimeError(f"{type(error).__name__}: {error}")
        env_index = env_indices[0] if envs is None else envs.current
        statuses[worker] = _ERROR
        countdown.finish()
        pipe.send(("error", (env_index, error, traceback.format_exc())))
    finally:
        if envs is not None:
            envs.close()
        pipe.close()


def _row(batch: Any, index: int) -> Any:
    """Row ``index`` of a (nested dict/tuple of) batched array(s), as views."""
    if isinstance(batch, dict):
        return {key: _row(value, index) for key, value in batch.items()}
    if isinstance(batch, tuple):
        return tuple(_row(value, index) for value in batch)
    return batch[index]
