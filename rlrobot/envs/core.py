"""Robot / Task / RobotTaskEnv: the three layers every rlrobot env is built from."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rlrobot.sim import Camera, Simulation

RENDER_MODES = ("human", "rgb_array")


class Robot(ABC):
    """A robot in a simulation: its action space, how an action drives it, what it senses."""

    action_space: spaces.Space

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim

    @abstractmethod
    def reset(self, np_random: np.random.Generator) -> None:
        """Put the robot in its start state for a new episode."""

    @abstractmethod
    def set_action(self, action: np.ndarray) -> None:
        """Apply a (validated, clipped) action; the env steps the physics afterwards."""

    @abstractmethod
    def get_obs(self) -> np.ndarray:
        """The robot's proprioceptive observation, float shape (n,)."""


class Task(ABC):
    """What the robot should do: start state of the scene, reward terms, success, failure.

    A goal-conditioned task (`goal_conditioned = True`) also implements `get_achieved_goal`,
    `get_desired_goal` and a vectorised `compute_reward` so hindsight relabelling can
    recompute rewards for any goal.
    """

    goal_conditioned: ClassVar[bool] = False
    reward_modes: ClassVar[tuple[str, ...]] = ("dense",)

    def __init__(self, sim: Simulation, reward_mode: str = "dense") -> None:
        if reward_mode not in self.reward_modes:
            raise ValueError(
                f"{type(self).__name__} reward_mode must be one of {self.reward_modes}, "
                f"got {reward_mode!r}"
            )
        self.sim = sim
        self.reward_mode = reward_mode

    @abstractmethod
    def reset(self, np_random: np.random.Generator) -> None:
        """Set up the scene (and sample a goal) for a new episode."""

    def get_obs(self) -> np.ndarray:
        """Task-specific observation (objects, not goals), float shape (n,); empty by default."""
        return np.zeros(0)

    @abstractmethod
    def compute_reward_terms(self, action: np.ndarray) -> dict[str, float]:
        """The reward terms of the step just taken; the reward is their sum."""

    def is_success(self) -> bool:
        """Whether the task is solved in the current state."""
        return False

    def is_terminated(self) -> bool:
        """Whether the episode ends now (failure or final success), not a time limit."""
        return False

    def get_achieved_goal(self) -> np.ndarray:
        """The goal the robot achieves now (goal-conditioned tasks)."""
        raise NotImplementedError(f"{type(self).__name__} is not goal-conditioned")

    def get_desired_goal(self) -> np.ndarray:
        """The goal of the episode (goal-conditioned tasks)."""
        raise NotImplementedError(f"{type(self).__name__} is not goal-conditioned")

    def compute_reward(
        self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any
    ) -> np.ndarray | float:
        """Reward for achieved vs desired goals, batched over leading dims (goal tasks)."""
        raise NotImplementedError(f"{type(self).__name__} is not goal-conditioned")


class RobotTaskEnv(gym.Env):
    """A Gymnasium env that glues one Robot and one Task in one Simulation.

    Subclasses build the simulation, robot and task and document the env as a spec. The
    observation is `concat(robot.get_obs(), task.get_obs())` (float32), or for goal-conditioned
    tasks a `Dict` with `observation`, `achieved_goal` and `desired_goal`.

    Actions are checked: a wrong shape or a NaN/inf raises `ValueError`; out-of-bounds Box
    actions are clipped to the bounds. If the physics diverges (non-finite state), the
    episode ends with `terminated=True` and `info["sim_error"]` set.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": list(RENDER_MODES), "render_fps": 30}

    def __init__(
        self,
        sim: Simulation,
        robot: Robot,
        task: Task,
        render_mode: str | None = None,
        render_width: int = 480,
        render_height: int = 480,
        camera: Camera | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in RENDER_MODES:
            sim.close()
            raise ValueError(
                f"render_mode must be one of {RENDER_MODES} or None, got {render_mode!r}"
            )
        if render_width < 1 or render_height < 1:
            sim.close()
            raise ValueError(f"render size must be positive, got {render_width}x{render_height}")
        self.sim = sim
        self.robot = robot
        self.task = task
        self.render_mode = render_mode
        self.render_width = render_width
        self.render_height = render_height
        self.camera = camera or Camera()
        self.metadata = {**self.metadata, "render_fps": max(1, round(1.0 / sim.dt))}
        self.action_space = robot.action_space
        self._is_box_action = isinstance(self.action_space, spaces.Box)
        # Observation shapes come from one probe reset of the scene.
        self._reset_scene(np.random.default_rng(0))
        self.observation_space = self._make_observation_space(self._get_obs())
        self.sim.reset_debug_camera(self.camera)

    # -------------------------------------------------------------------- observation
    def _make_observation_space(self, obs: np.ndarray | dict[str, np.ndarray]) -> spaces.Space:
        def box(array: np.ndarray) -> spaces.Box:
            return spaces.Box(-np.inf, np.inf, shape=array.shape, dtype=np.float32)

        if isinstance(obs, dict):
            return spaces.Dict({key: box(value) for key, value in obs.items()})
        return box(obs)

    def _get_obs(self) -> np.ndarray | dict[str, np.ndarray]:
        observation = np.concatenate([self.robot.get_obs(), self.task.get_obs()]).astype(np.float32)
        if not self.task.goal_conditioned:
            return observation
        return {
            "observation": observation,
            "achieved_goal": self.task.get_achieved_goal().astype(np.float32),
            "desired_goal": self.task.get_desired_goal().astype(np.float32),
        }

    @staticmethod
    def _is_finite(obs: np.ndarray | dict[str, np.ndarray]) -> bool:
        if isinstance(obs, dict):
            return all(np.isfinite(value).all() for value in obs.values())
        return bool(np.isfinite(obs).all())

    # ----------------------------------------------------------------------- episode
    def _reset_scene(self, np_random: np.random.Generator) -> None:
        self.robot.reset(np_random)
        self.task.reset(np_random)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray | dict[str, np.ndarray], dict[str, Any]]:
        """Start a new episode; `seed` reseeds the env's random generator."""
        super().reset(seed=seed, options=options)
        self._reset_scene(self.np_random)
        observation = self._get_obs()
        if self.render_mode == "human":
            self.render()
        return observation, {"is_success": self.task.is_success()}

    def _check_action(self, action: Any) -> np.ndarray:
        if not self._is_box_action:
            if not self.action_space.contains(action):
                raise ValueError(f"action {action!r} is not in {self.action_space}")
            return np.asarray(action)
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action has shape {action.shape}, expected {self.action_space.shape}")
        if not np.isfinite(action).all():
            raise ValueError(f"action contains NaN or inf: {action}")
        return np.clip(action, self.action_space.low, self.action_space.high)

    def step(
        self, action: Any
    ) -> tuple[np.ndarray | dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Apply `action`, advance the physics one control period, and score the result."""
        action = self._check_action(action)
        self.robot.set_action(action)
        self.sim.step()
        observation = self._get_obs()
        terms = self.task.compute_reward_terms(action)
        info: dict[str, Any] = {f"reward_{name}": value for name, value in terms.items()}
        info["is_success"] = self.task.is_success()
        terminated = self.task.is_terminated()
        reward = float(sum(terms.values()))
        if not self._is_finite(observation):
            # A diverged simulation must not feed NaNs to a learner: end the episode cleanly.
            observation = self._zero_like(observation)
            reward, terminated, info["sim_error"] = 0.0, True, "non-finite physics state"
        if self.render_mode == "human":
            self.render()
        return observation, reward, terminated, False, info

    @staticmethod
    def _zero_like(obs: np.ndarray | dict[str, np.ndarray]) -> np.ndarray | dict[str, np.ndarray]:
        if isinstance(obs, dict):
            return {key: np.zeros_like(value) for key, value in obs.items()}
        return np.zeros_like(obs)

    # ------------------------------------------------------------------------ render
    def render(self) -> np.ndarray | None:
        """`rgb_array`: uint8 (render_height, render_width, 3); `human`: the GUI shows it."""
        if self.render_mode == "rgb_array":
            return self.sim.render(self.render_width, self.render_height, self.camera)
        return None

    def close(self) -> None:
        """Disconnect the physics client."""
        self.sim.close()


class GoalRobotTaskEnv(RobotTaskEnv):
    """A RobotTaskEnv of a goal-conditioned task, with the vectorised `compute_reward` of HER.

    Only goal envs define `compute_reward`: checkers (SB3's) treat any env that has one as a
    goal env.
    """

    def compute_reward(
        self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any
    ) -> np.ndarray | float:
        """Reward of achieved vs desired goals, batched over leading dims (for HER)."""
        return self.task.compute_reward(achieved_goal, desired_goal, info)
