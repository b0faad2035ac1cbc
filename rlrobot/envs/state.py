"""An env's state in the middle of an episode, saved and restored: what exact resume needs.

A training run's checkpoint holds the episodes in progress, so that a resumed run continues them
step for step (see ``rlrobot.run.training``). ``get_env_state`` walks an env's wrapper stack
from the outside in and collects the state of every layer:

* Gymnasium's wrappers that ``gym.make`` adds, through the attributes that change during an
  episode (``_GYMNASIUM_WRAPPER_STATE``: the time limit's step counter, the order and checker
  flags);
* any layer whose class has ``get_state()`` and ``set_state(state)`` (rlrobot's envs and
  wrappers; third-party envs can opt in the same way), whose state is a dict of JSON values
  and NumPy arrays;

plus the RNG of the env's action space. An env with a layer of neither kind has no state to
save (``None``): a run then abandons its episodes at each checkpoint, and says so.

``EpisodeStateAccess`` wraps every env a vector env of ``rlrobot.vec`` makes, so that the state
crosses to worker processes as the vector env attribute ``episode_state``.

This module imports no PyBullet: layers are found by their methods, not by their classes.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import OrderEnforcing, PassiveEnvChecker, TimeLimit

from rlrobot.errors import CheckpointError

# The vector env attribute that reads and writes ``EpisodeStateAccess.episode_state``.
EPISODE_STATE_ATTRIBUTE = "episode_state"

# Gymnasium's wrappers added by ``gym.make``, and their attributes that change in an episode.
_GYMNASIUM_WRAPPER_STATE: dict[type, tuple[str, ...]] = {
    TimeLimit: ("_elapsed_steps",),
    OrderEnforcing: ("_has_reset",),
    PassiveEnvChecker: ("checked_reset", "checked_step", "checked_render"),
}


def check_like(name: str, saved: Any, current: Any) -> Any:
    """Return ``saved`` (arrays copied) if it has the kind of ``current``, else raise.

    Kinds: bool; number (int or float); str; None; NumPy array of the same dtype and shape
    (with finite values if floating: observations, returns and such are never NaN or inf).

    Raises:
        CheckpointError: ``saved`` is of another kind, dtype or shape, or not finite.
    """
    if isinstance(current, np.ndarray):
        if (
            isinstance(saved, np.ndarray)
            and saved.dtype == current.dtype
            and saved.shape == current.shape
        ):
            if saved.dtype.kind == "f" and not np.isfinite(saved).all():
                raise CheckpointError(f"saved env state {name!r} holds NaN or inf")
            return np.array(saved)
        allowed = f"an array {current.dtype}{list(current.shape)}"
    elif isinstance(current, bool) or current is None or isinstance(current, str):
        if type(saved) is type(current):
            return saved
        allowed = type(current).__name__
    elif isinstance(current, (int, float)):
        if isinstance(saved, (int, float)) and not isinstance(saved, bool):
            return type(current)(saved)
        allowed = "a number"
    else:
        raise TypeError(f"{name}: cannot check a value of type {type(current).__name__}")
    found = (
        f"an array {saved.dtype}{list(saved.shape)}"
        if isinstance(saved, np.ndarray)
        else repr(saved)
    )
    raise CheckpointError(f"saved env state {name!r} is {found}, expected {allowed}")


def check_dict(name: str, saved: Any, keys: Any) -> dict[str, Any]:
    """Return ``saved`` if it is a dict with exactly ``keys``, else raise ``CheckpointError``."""
    if not isinstance(saved, dict) or set(saved) != set(keys):
        found = sorted(saved) if isinstance(saved, dict) else type(saved).__name__
        raise CheckpointError(f"saved env state {name!r} has keys {found}, expected {sorted(keys)}")
    return saved


def restore_generator_state(name: str, generator: np.random.Generator, state: Any) -> None:
    """Restore ``generator.bit_generator.state`` from a saved state of the same bit generator.

    Raises:
        CheckpointError: ``state`` is not a state of that bit generator.
    """
    expected = generator.bit_generator.state["bit_generator"]
    if not isinstance(state, dict) or state.get("bit_generator") != expected:
        raise CheckpointError(f"saved env state {name!r} is not a {expected} RNG state")
    try:
        # Tried on a fresh bit generator first: a refused state leaves ``generator`` as it was.
        type(generator.bit_generator)().state = state
    except (TypeError, ValueError, KeyError, OverflowError) as error:
        raise CheckpointError(f"saved env state {name!r} is not valid: {error}") from None
    generator.bit_generator.state = state


def get_attributes(owner: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """Return ``{name: owner.name}`` for ``names`` (arrays copied)."""
    return {
        name: np.array(value) if isinstance(value, np.ndarray) else value
        for name in names
        for value in [getattr(owner, name)]
    }


def set_attributes(owner: Any, names: tuple[str, ...], state: Any, where: str) -> None:
    """Restore what ``get_attributes`` returned, each value checked against the current one."""
    check_dict(where, state, names)
    for name in names:
        setattr(owner, name, check_like(f"{where}.{name}", state[name], getattr(owner, name)))


def get_space_rng_state(space: gym.Space) -> dict[str, Any] | None:
    """Return the state of a space's RNG, or None if it has none yet.

    ``space.np_random`` would make one, seeded from OS entropy, so the space's private
    ``_np_random`` is read instead: saving must change nothing and be the same in every run.
    """
    generator = space._np_random
    return None if generator is None else generator.bit_generator.state


def _layers(env: gym.Env) -> list[gym.Env]:
    """Return the wrappers of ``env`` from the outside in, then the unwrapped env."""
    layers = [env]
    while isinstance(layers[-1], gym.Wrapper):
        layers.append(layers[-1].env)
    return layers


def _has_own_state(layer: gym.Env) -> bool:
    return callable(getattr(layer, "get_state", None)) and callable(
        getattr(layer, "set_state", None)
    )


def get_env_state(env: gym.Env) -> dict[str, Any] | None:
    """Return the state of ``env`` mid-episode, or None if a layer of it cannot give one.

    Returns:
        ``{"layers": [{"layer": class name, "state": …}, …], "action_space_rng": …}``, JSON
        values and NumPy arrays only.
    """
    layers = []
    for layer in _layers(env):
        attributes = _GYMNASIUM_WRAPPER_STATE.get(type(layer))
        if attributes is not None:
            state = get_attributes(layer, attributes)
        elif _has_own_state(layer):
            state = layer.get_state()
        else:
            return None
        layers.append({"layer": type(layer).__name__, "state": state})
    return {"layers": layers, "action_space_rng": get_space_rng_state(env.action_space)}


def set_env_state(env: gym.Env, state: Any) -> None:
    """Restore a state returned by ``get_env_state`` into an env built the same way.

    Raises:
        CheckpointError: The state does not fit this env's wrapper stack or values.
    """
    check_dict("env", state, ("layers", "action_space_rng"))
    layers = _layers(env)
    names = [type(layer).__name__ for layer in layers]
    saved = state["layers"]
    saved_names = [
        entry.get("layer") if isinstance(entry, dict) else None
        for entry in (saved if isinstance(saved, list) else [])
    ]
    if not isinstance(saved, list) or saved_names != names:
        raise CheckpointError(
            f"saved env state 'layers' is of the wrappers {saved_names}, this env has {names}"
        )
    for layer, entry in zip(layers, saved, strict=True):
        check_dict(type(layer).__name__, entry, ("layer", "state"))
        attributes = _GYMNASIUM_WRAPPER_STATE.get(type(layer))
        if attributes is not None:
            set_attributes(layer, attributes, entry["state"], type(layer).__name__)
        else:
            layer.set_state(entry["state"])
    if state["action_space_rng"] is not None:
        restore_generator_state(
            "action_space_rng", env.action_space.np_random, state["action_space_rng"]
        )


class EpisodeStateAccess(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Expose ``get_env_state``/``set_env_state`` of the wrapped env as ``episode_state``.

    A vector env reads it with ``get_attr("episode_state")`` and restores it with
    ``set_attr("episode_state", states)``, one state per env, in worker processes too.
    """

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)

    @property
    def episode_state(self) -> dict[str, Any] | None:
        """The wrapped env's state mid-episode (None: it cannot give one)."""
        return get_env_state(self.env)

    @episode_state.setter
    def episode_state(self, state: dict[str, Any]) -> None:
        set_env_state(self.env, state)
