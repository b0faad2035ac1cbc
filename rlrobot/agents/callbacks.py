"""What ``learn``'s ``callback`` may be, behind the one interface both training loops call.

A user passes ``None``, a plain ``callback(agent) -> bool | None`` (called after every
iteration: an on-policy rollout and its update, or one off-policy vector-env step), an SB3
``BaseCallback`` (anything with ``init_callback`` and ``on_step``, e.g. ``EvalCallback``,
``CheckpointCallback``, ``CallbackList``) or a list of these. ``make_callback`` turns it into a
``TrainingCallback`` whose hooks the loops call at SB3's points:

* ``on_training_start(locals)`` once, with ``learn``'s arguments (``total_timesteps`` is the step
  training ends at, as SB3's ``ProgressBarCallback`` reads it);
* ``on_rollout_start()`` / ``on_rollout_end()`` around each collection (off-policy: each
  ``train_freq`` chunk);
* ``on_step(locals)`` after every vector-env step, with the step's ``new_obs``, ``rewards``,
  ``dones``, ``terminated``, ``truncated``, ``infos`` and ``actions`` (SB3 callbacks read
  ``infos`` as SB3's VecEnvs give them: a list of one dict per env, see ``to_vec_env_infos``);
  False stops training;
* ``on_iteration_end()`` after each iteration (where plain callables are called); False stops;
* ``on_training_end()`` when ``learn`` returns.

SB3 is never imported here: its callbacks are recognised by their methods.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence
from typing import Any

import numpy as np


class TrainingCallback:
    """The hooks the training loops call; this base does nothing (``callback=None``)."""

    def on_training_start(self, locals_: dict[str, Any]) -> None:
        """Called once before the first env step of ``learn``."""

    def on_rollout_start(self) -> None:
        """Called before each collection of env steps."""

    def on_step(self, locals_: dict[str, Any]) -> bool:
        """Called after every vector-env step; return False to stop training."""
        return True

    def on_rollout_end(self) -> None:
        """Called after each collection, before the update that uses it."""

    def on_iteration_end(self) -> bool:
        """Called after each iteration of the loop; return False to stop training."""
        return True

    def on_training_end(self) -> None:
        """Called once when ``learn`` finishes (also after a stop)."""


class FunctionCallback(TrainingCallback):
    """A plain ``callback(agent) -> bool | None``, called after every iteration."""

    def __init__(self, function: Any, agent: Any) -> None:
        self.function, self.agent = function, agent

    def on_iteration_end(self) -> bool:
        """Call ``function(agent)``; only an explicit False stops."""
        return self.function(self.agent) is not False


class SB3Callback(TrainingCallback):
    """An SB3 ``BaseCallback``, initialised with the agent as its ``model``."""

    def __init__(self, callback: Any, agent: Any) -> None:
        self.callback, self.agent = callback, agent
        # Per-env return, length and start time, for the Monitor-style ``info["episode"]``; the
        # episodes in progress (a second ``learn`` call, a resume) count from their start.
        self._returns = agent.episode_tracker.returns.copy()
        self._lengths = agent.episode_tracker.lengths.copy()
        self._starts = np.full(agent.n_envs, time.time())
        callback.init_callback(agent)

    def on_training_start(self, locals_: dict[str, Any]) -> None:
        """SB3's ``on_training_start(locals, globals)``; no globals are shared."""
        self.callback.on_training_start(locals_, {})

    def on_rollout_start(self) -> None:
        """SB3's ``on_rollout_start``."""
        self.callback.on_rollout_start()

    def on_step(self, locals_: dict[str, Any]) -> bool:
        """``update_locals`` with SB3-style infos, then SB3's ``on_step``."""
        infos = self._to_vec_env_infos(locals_)
        self.callback.update_locals({**locals_, "infos": infos})
        return bool(self.callback.on_step())

    def on_rollout_end(self) -> None:
        """SB3's ``on_rollout_end``."""
        self.callback.on_rollout_end()

    def on_training_end(self) -> None:
        """SB3's ``on_training_end``."""
        self.callback.on_training_end()

    def _to_vec_env_infos(self, locals_: dict[str, Any]) -> list[dict[str, Any]]:
        """The step's infos as SB3's VecEnvs give them, with Monitor's ``episode`` entry."""
        self._returns += locals_["rewards"]
        self._lengths += 1
        infos = to_vec_env_infos(locals_["infos"], locals_["terminated"], locals_["truncated"])
        now = time.time()
        for i in np.flatnonzero(locals_["dones"]):
            infos[i]["episode"] = {
                "r": float(self._returns[i]),
                "l": int(self._lengths[i]),
                "t": round(now - self._starts[i], 6),
            }
            self._returns[i], self._lengths[i], self._starts[i] = 0.0, 0, now
        return infos


class CallbackGroup(TrainingCallback):
    """Several callbacks called in order; every one is called even after one says stop."""

    def __init__(self, callbacks: Sequence[TrainingCallback]) -> None:
        self.callbacks = list(callbacks)

    def on_training_start(self, locals_: dict[str, Any]) -> None:
        """Start every callback."""
        for callback in self.callbacks:
            callback.on_training_start(locals_)

    def on_rollout_start(self) -> None:
        """Tell every callback a collection starts."""
        for callback in self.callbacks:
            callback.on_rollout_start()

    def on_step(self, locals_: dict[str, Any]) -> bool:
        """Step every callback; False if any says stop."""
        return all([callback.on_step(locals_) for callback in self.callbacks])

    def on_rollout_end(self) -> None:
        """Tell every callback a collection ended."""
        for callback in self.callbacks:
            callback.on_rollout_end()

    def on_iteration_end(self) -> bool:
        """End the iteration in every callback; False if any says stop."""
        return all([callback.on_iteration_end() for callback in self.callbacks])

    def on_training_end(self) -> None:
        """End every callback."""
        for callback in self.callbacks:
            callback.on_training_end()


def is_sb3_callback(callback: Any) -> bool:
    """Whether ``callback`` is used like SB3's ``BaseCallback`` (duck-typed, SB3 not imported)."""
    return callable(getattr(callback, "init_callback", None)) and callable(
        getattr(callback, "on_step", None)
    )


def check_callback(callback: Any) -> None:
    """Raise ``TypeError`` unless ``callback`` is None, an SB3 callback, ``f(agent)`` or a list.

    Checked when ``learn`` starts, before anything changes, not after its first rollout.
    """
    if isinstance(callback, (list, tuple)):
        for member in callback:
            check_callback(member)
        return
    if callback is None or is_sb3_callback(callback):
        return
    expected = (
        "learn's callback is an SB3 BaseCallback, a list of callbacks, or a function called as "
        "callback(agent) that may return False to stop"
    )
    if not callable(callback):
        raise TypeError(f"{expected}; got a {type(callback).__name__}, which is not callable")
    try:
        inspect.signature(callback).bind(None)
    except TypeError as error:
        hint = ""
        try:
            inspect.signature(callback).bind(None, None)
            hint = " (SB3's callback(locals, globals) form: wrap it in SB3's ConvertCallback)"
        except TypeError:
            pass
        raise TypeError(f"{expected}; {callback!r} cannot be called so: {error}{hint}") from None
    except ValueError:
        pass  # no signature to inspect (some builtins): trusted


def make_callback(callback: Any, agent: Any) -> TrainingCallback:
    """Check ``learn``'s ``callback`` and wrap it as a ``TrainingCallback`` for ``agent``.

    Raises:
        TypeError: ``callback`` is none of the accepted forms (see the module docstring).
    """
    if callback is None:
        return TrainingCallback()
    if isinstance(callback, (list, tuple)):
        return CallbackGroup([make_callback(member, agent) for member in callback])
    check_callback(callback)
    if is_sb3_callback(callback):
        return SB3Callback(callback, agent)
    return FunctionCallback(callback, agent)


def to_vec_env_infos(
    infos: dict[str, Any], terminated: np.ndarray, truncated: np.ndarray
) -> list[dict[str, Any]]:
    """Turn a ``SAME_STEP`` Gymnasium vector step's info dict into SB3's list of env infos.

    Where an episode ended, env ``i``'s info is its last step's (``final_info``) with
    ``terminal_observation`` (the real final observation) and ``TimeLimit.truncated`` (cut by a
    time limit, not terminated), as SB3's ``DummyVecEnv`` gives it; elsewhere it is the step's.

    Args:
        infos: The vector env's info dict (arrays with ``_key`` masks).
        terminated: Shape ``(n_envs,)``.
        truncated: Shape ``(n_envs,)``.
    """

    def unbatch(batched: dict[str, Any], i: int) -> dict[str, Any]:
        return {
            key: unbatch(value, i) if isinstance(value, dict) else value[i]
            for key, value in batched.items()
            if not key.startswith("_") and batched.get(f"_{key}", everywhere)[i]
        }

    everywhere = np.ones(len(terminated), dtype=bool)
    step_infos = {
        key: value for key, value in infos.items() if key not in ("final_info", "final_obs")
    }
    result = []
    for i, done in enumerate(terminated | truncated):
        if done:
            info = unbatch(infos.get("final_info", {}), i)
            info["terminal_observation"] = infos["final_obs"][i]
            info["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        else:
            info = unbatch(step_infos, i)
        result.append(info)
    return result
