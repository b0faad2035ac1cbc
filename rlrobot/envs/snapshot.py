"""A robot env's episode in progress as data: `get_state`/`set_state` for exact resume.

`RobotTaskEnv` inherits these two methods, so that a checkpoint can continue an episode where
it was (see `rlrobot.envs.state`, which walks the wrappers around the env). They sit apart
from `core.py` because they read the whole env at once, physics snapshot included.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from rlrobot.envs.perturbations import DomainRandomization
from rlrobot.envs.state import (
    check_dict,
    check_like,
    get_attributes,
    restore_generator_state,
    set_attributes,
)
from rlrobot.errors import CheckpointError

# Relative slack of a saved draw against its range (the values went through PyBullet).
DRAW_TOLERANCE = 1e-6


def _within(value: float, bounds: tuple[float, float]) -> bool:
    """Whether `value` lies in [low, high], within `DRAW_TOLERANCE`."""
    low, high = bounds
    slack = DRAW_TOLERANCE * max(abs(low), abs(high), 1.0)
    return bool(np.isfinite(value)) and low - slack <= value <= high + slack


# The keys of `EpisodeSnapshot.get_state`.
ENV_STATE_KEYS = (
    "sim",
    "np_random",
    "reward_delay",
    "pending_actions",
    "action_latency",
    "observation_noise",
    "dynamics",
    "robot",
    "task",
)


class EpisodeSnapshot:
    """`get_state`/`set_state` of a `RobotTaskEnv` (mixed into it; uses its attributes)."""

    # Set by `RobotTaskEnv`: typed loosely because core.py, which defines it, imports this.
    sim: Any
    robot: Any
    task: Any
    np_random: np.random.Generator
    action_space: Any
    _reward_delay: Any
    _pending_actions: deque
    _action_latency: int
    _observation_noise: float
    _nominal_dynamics: Any
    randomization: DomainRandomization | None
    _is_box_action: bool
    _read_dynamics: Any

    def _check_drawn(self, dynamics: Any, latency: int, noise: float, robot: Any) -> None:
        """Raise CheckpointError unless the saved episode's draws are ones this env's domain
        randomisation can give (none: the nominal values), so a forged latency of 10**9 or a
        noise of 1e30 is refused rather than trained on."""
        settings = self.randomization or DomainRandomization()
        low, high = settings.action_latency
        if not low <= latency <= high:
            raise CheckpointError(
                f"saved env state 'action_latency' is {latency}; this env draws it from "
                f"[{low}, {high}]"
            )
        if noise != settings.observation_noise:
            raise CheckpointError(
                f"saved env state 'observation_noise' is {noise}; this env's is "
                f"{settings.observation_noise}"
            )
        scale = robot.get("actuator_scale") if isinstance(robot, dict) else None
        if isinstance(scale, (int, float)) and not _within(scale, settings.actuator_scale):
            raise CheckpointError(
                f"saved env state 'actuator_scale' is {scale}; this env draws it from "
                f"{settings.actuator_scale}"
            )
        if dynamics is None:
            return
        nominal = np.asarray(list(self._nominal_dynamics.values()), dtype=np.float64)
        for column, (name, bounds) in enumerate(
            (("mass", settings.mass_scale), ("friction", settings.friction_scale))
        ):
            low, high = nominal[:, column] * bounds[0], nominal[:, column] * bounds[1]
            slack = DRAW_TOLERANCE * np.maximum(np.abs(high), 1.0)
            saved = dynamics[:, column]
            inside = (low - slack <= saved) & (saved <= high + slack)
            if not (np.isfinite(saved).all() and inside.all()):
                raise CheckpointError(
                    f"saved env state 'dynamics' holds a {name} outside this env's "
                    f"randomisation (nominal x {bounds})"
                )

    def get_state(self) -> dict[str, Any]:
        """Return the episode in progress as JSON values and arrays (see `rlrobot.envs.state`).

        It holds the physics (a `.bullet` snapshot as uint8 bytes), the env's RNG, the
        withheld delayed reward, the delayed actions, this episode's perturbations and the
        robot's and task's `episode_attributes`.
        """
        delay = self._reward_delay
        return {
            "sim": np.frombuffer(self.sim.export_state(), dtype=np.uint8).copy(),
            "np_random": self.np_random.bit_generator.state,
            "reward_delay": None if delay is None else [delay.withheld, delay.pending_steps],
            "pending_actions": [np.array(action) for action in self._pending_actions],
            "action_latency": self._action_latency,
            "observation_noise": self._observation_noise,
            # Masses and frictions drawn by domain randomisation, in `_nominal_dynamics` order.
            "dynamics": None
            if self._nominal_dynamics is None
            else [list(self.sim.get_dynamics_info(*key)[:2]) for key in self._nominal_dynamics],
            "robot": get_attributes(self.robot, self.robot.episode_attributes),
            "task": get_attributes(self.task, self.task.episode_attributes),
        }

    def set_state(self, state: Any) -> None:
        """Restore a state returned by `get_state` of an env made with the same options.

        Raises:
            CheckpointError: The state does not fit this env.
        """
        check_dict(type(self).__name__, state, ENV_STATE_KEYS)
        # Everything is checked before anything changes; the snapshot last, by PyBullet.
        sim = state["sim"]
        if not (isinstance(sim, np.ndarray) and sim.dtype == np.uint8 and sim.ndim == 1):
            raise CheckpointError("saved env state 'sim' is not a 1-D uint8 array")
        dynamics = None
        if state["dynamics"] is not None:
            if self._nominal_dynamics is None:
                self._nominal_dynamics = self._read_dynamics()  # before any is randomised
            try:
                dynamics = np.asarray(state["dynamics"], dtype=np.float64)
            except (TypeError, ValueError):
                dynamics = None
            if dynamics is None or dynamics.shape != (len(self._nominal_dynamics), 2):
                raise CheckpointError("saved env state 'dynamics' does not fit this env's bodies")
        delay = state["reward_delay"]
        if (delay is None) != (self._reward_delay is None) or (
            delay is not None and not (isinstance(delay, list) and len(delay) == 2)
        ):
            raise CheckpointError("saved env state 'reward_delay' does not fit this reward mode")
        if delay is not None:
            delay = [
                check_like("withheld", delay[0], 0.0),
                check_like("pending_steps", delay[1], 0),
            ]
        # `_check_action` gives float64 Box actions and keeps the space's dtype otherwise.
        dtype = np.float64 if self._is_box_action else self.action_space.dtype
        probe = np.zeros(self.action_space.shape, dtype=dtype)
        if not isinstance(state["pending_actions"], list):
            raise CheckpointError("saved env state 'pending_actions' is not a list")
        pending_actions = deque(
            check_like("pending_actions", np.asarray(action), probe)
            for action in state["pending_actions"]
        )
        latency = check_like("action_latency", state["action_latency"], 0)
        noise = check_like("observation_noise", state["observation_noise"], 0.0)
        self._check_drawn(dynamics, latency, noise, state["robot"])
        try:
            self.sim.import_state(sim.tobytes())
        except ValueError as error:
            raise CheckpointError(f"saved env state 'sim': {error}") from None
        if dynamics is not None:
            for (body, link), (mass, friction) in zip(
                self._nominal_dynamics, dynamics, strict=True
            ):
                self.sim.change_dynamics(body, link, mass=mass, lateralFriction=friction)
        restore_generator_state("np_random", self.np_random, state["np_random"])
        if self._reward_delay is not None:
            self._reward_delay.withheld, self._reward_delay.pending_steps = delay
        self._pending_actions, self._action_latency = pending_actions, latency
        self._observation_noise = noise
        set_attributes(self.robot, self.robot.episode_attributes, state["robot"], "robot")
        set_attributes(self.task, self.task.episode_attributes, state["task"], "task")
