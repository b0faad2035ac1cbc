"""Robot / Task / RobotTaskEnv: the three layers every rlrobot env is built from.

The env layer also owns the options every robot env takes as `gym.make` keywords: reward
mode (dense, sparse, delayed), observation mode (state, pixels, both), domain randomisation
and rendering. Tasks only score the current state; the env withholds delayed rewards, renders
pixels, adds observation noise and delays actions, so no task re-implements any of these.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from typing import Annotated, Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rlrobot.envs.checks import MAX_IMAGE_SIDE, Interval, check_arguments, check_choice
from rlrobot.envs.ground_truth import GroundTruth
from rlrobot.envs.perturbations import DomainRandomization
from rlrobot.envs.reward_delay import RewardDelay
from rlrobot.envs.snapshot import EpisodeSnapshot
from rlrobot.sim import Camera, Simulation

RENDER_MODES = ("human", "rgb_array")
REWARD_MODES = ("dense", "sparse", "delayed")
OBS_MODES = ("state", "pixels", "state+pixels")
# dtype kinds of a Box action that convert to float64 exactly: bool, ints, floats, objects
# (objects convert element by element, and a complex element is a TypeError there).
_REAL_KINDS = frozenset("biufO")
PIXELS_CAMERAS = ("fixed", "robot")
ImageSide = Annotated[
    int, Interval(1, MAX_IMAGE_SIDE, unit="px", reason="larger frames take seconds each")
]

Observation = np.ndarray | dict[str, np.ndarray]
NO_OBSERVATION = np.zeros(0)
NO_OBSERVATION.flags.writeable = False


class Robot(ABC):
    """A robot in a simulation: its action space, how an action drives it, what it senses.

    `actuator_scale` multiplies every force/torque limit the robot applies; the env sets it per
    episode under domain randomisation (1.0 otherwise). `episode_attributes` names the
    attributes that change during an episode (besides the simulation), which `get_state` of
    the env saves for exact resume.

    Option values (forces, speeds, counts) arrive checked: the env that builds the robot
    declares each one's type and range in its own signature and checks it there, once, before
    the physics client starts (`rlrobot.envs.checks.check_arguments`).
    """

    action_space: spaces.Space
    episode_attributes: ClassVar[tuple[str, ...]] = ("actuator_scale",)

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.actuator_scale = 1.0

    @abstractmethod
    def reset(self, np_random: np.random.Generator) -> None:
        """Put the robot in its start state for a new episode."""

    @abstractmethod
    def set_action(self, action: np.ndarray) -> None:
        """Apply a (validated, clipped) action; the env steps the physics afterwards."""

    @abstractmethod
    def get_obs(self) -> np.ndarray:
        """The robot's proprioceptive observation, float shape (n,)."""

    def get_camera_pose(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Eye position (m), looked-at point (m) and up vector of the robot-mounted camera."""
        raise NotImplementedError(f"{type(self).__name__} has no mounted camera")

    def get_ground_truth(self) -> dict[str, np.ndarray]:
        """Named robot quantities beyond body poses (e.g. `ee_position`, m); none by default."""
        return {}


class Task(ABC):
    """What the robot should do: start state of the scene, reward terms, success, failure.

    Reward modes: "dense" sums `compute_dense_reward_terms`; "sparse" is one `success` term,
    `compute_sparse_reward()` (1 on success, else 0; goal tasks use 0 / −1); "delayed" scores
    like "dense" and the env withholds the reward until the episode ends.

    A goal-conditioned task (`goal_conditioned = True`) also implements `get_achieved_goal`,
    `get_desired_goal` and a vectorised `compute_reward` so hindsight relabelling can
    recompute rewards for any goal.

    `episode_attributes` names the attributes that change during an episode (a goal, a start
    position), which `get_state` of the env saves for exact resume.

    Option values arrive checked, as for `Robot`; a task checks only rules between options
    (a goal box's corners, a goal distance that fits the arena), which need them all.
    """

    goal_conditioned: ClassVar[bool] = False
    episode_attributes: ClassVar[tuple[str, ...]] = ()
    reward_modes: ClassVar[tuple[str, ...]] = REWARD_MODES

    def __init__(self, sim: Simulation, reward_mode: str = "dense") -> None:
        check_choice(f"{type(self).__name__} reward_mode", reward_mode, self.reward_modes)
        self.sim = sim
        self.reward_mode = reward_mode

    @abstractmethod
    def reset(self, np_random: np.random.Generator) -> None:
        """Set up the scene (and sample a goal) for a new episode."""

    def get_obs(self) -> np.ndarray:
        """Task-specific observation (objects, not goals), float shape (n,); empty by default."""
        return NO_OBSERVATION

    @abstractmethod
    def compute_dense_reward_terms(self, action: np.ndarray) -> dict[str, float]:
        """The dense reward terms of the step just taken; the dense reward is their sum."""

    def compute_sparse_reward(self) -> float:
        """The sparse reward of the current state: 1.0 on success, else 0.0."""
        return float(self.is_success())

    def compute_reward_terms(self, action: np.ndarray) -> dict[str, float]:
        """The reward terms of the step just taken in this task's reward mode."""
        if self.reward_mode == "sparse":
            return {"success": self.compute_sparse_reward()}
        return self.compute_dense_reward_terms(action)

    def is_success(self) -> bool:
        """Whether the task is solved in the current state."""
        return False

    def is_terminated(self) -> bool:
        """Whether the episode ends now (failure or final success), not a time limit."""
        return False

    def get_info(self) -> dict[str, Any]:
        """Task facts reported in `info` after every step (e.g. `fell`); none by default."""
        return {}

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


class RobotTaskEnv(GroundTruth, EpisodeSnapshot, gym.Env):
    """A Gymnasium env that glues one Robot and one Task in one Simulation.

    Subclasses pass a `build(sim, reward_mode) -> (robot, task)` function, the physics rates and
    the camera, and document the env as a spec. The state observation is
    `concat(robot.get_obs(), task.get_obs())` (float32); goal-conditioned tasks return a `Dict`
    with `observation`, `achieved_goal` and `desired_goal`.

    Actions are checked: a wrong shape, a NaN/inf or a value that is not a real number (complex,
    text) raises `ValueError`; out-of-bounds Box actions are clipped to the bounds. `step`,
    `reset` and `render` after `close()` raise `gymnasium.error.ClosedEnvironmentError`. If
    the physics diverges (non-finite state), the episode ends with `terminated=True` and
    `info["sim_error"]` set.

    Options every robot env takes (`gym.make` keywords):
        reward_mode: "dense", "sparse" (success only) or "delayed" (the dense rewards withheld
            and released in one piece at the step where the episode ends: on termination, and
            on a time-limit truncation through `ReleaseWithheldReward`, which `gym.make` puts
            outside the `TimeLimit` of every rlrobot id; the episode total is unchanged).
            `info["reward_<term>"]` always holds the terms earned at that step.
        obs_mode: "state"; "pixels" (uint8 image, shape (pixels_height, pixels_width, 3));
            "state+pixels" (`Dict` with `state` and `pixels`). Goal envs keep `achieved_goal`
            and `desired_goal`, add `pixels`, and keep `observation` only with state. Pixel
            envs draw bodies with their collision shapes (fast to render), in observations and
            in `render()` alike.
        pixels_width, pixels_height: Pixel observation size (default 84×84), at most
            `MAX_IMAGE_SIDE` (2048) px a side.
        pixels_camera: "fixed" (the env's scene camera, following mobile robots) or "robot"
            (mounted on the robot).
        randomization: Domain randomisation (see `DomainRandomization`); off by default.
        render_mode: "rgb_array" (headless TinyRenderer) or "human" (a GUI window).
        render_width, render_height: Size of `render()` frames in pixels (default 480×480), at
            most `MAX_IMAGE_SIDE` (2048) px a side.
        render_camera: The camera of `render()`, one of `metadata["render_cameras"]`: "fixed"
            (the scene camera, as `pixels_camera`'s) or "robot" (mounted on the robot).

    Every numeric and bool `gym.make` keyword (these and each env's own) declares its type and
    range in the signature of its constructor, which `check_arguments` checks before the
    physics client starts: NaN, ±inf, text, a bool for a number, a fraction for a count and
    values out of range raise `ValueError` naming the keyword, the value and the range.
    `rlrobot.envs.registration.get_options(env_id)` lists the keywords with their hints.

    Ground truth (body poses, label values, proprioception, camera views) comes through the
    public queries of `GroundTruth`; `camera` is the scene camera of `render()` and of fixed
    pixels.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": list(RENDER_MODES),
        "render_fps": 30,
        "render_cameras": list(PIXELS_CAMERAS),
    }

    # Checked before the physics client exists: an oversized frame must fail at once.
    @check_arguments
    def __init__(
        self,
        build: Callable[[Simulation, str], tuple[Robot, Task]],
        *,
        timestep: Annotated[float, Interval(0, low_open=True, unit="s")],
        n_substeps: Annotated[int, Interval(1)],
        camera: Camera,
        reward_mode: str = "dense",
        obs_mode: str = "state",
        pixels_width: ImageSide = 84,
        pixels_height: ImageSide = 84,
        pixels_camera: str = "fixed",
        randomization: DomainRandomization | dict[str, Any] | bool | None = None,
        render_mode: str | None = None,
        render_width: ImageSide = 480,
        render_height: ImageSide = 480,
        render_camera: str = "fixed",
    ) -> None:
        self._closed = False
        self.randomization = DomainRandomization.from_option(randomization)
        self.render_mode = check_choice("render_mode", render_mode, (*RENDER_MODES, None))
        self.render_width, self.render_height = render_width, render_height
        self.render_camera = check_choice("render_camera", render_camera, PIXELS_CAMERAS)
        self.obs_mode = check_choice("obs_mode", obs_mode, OBS_MODES)
        self.pixels_width, self.pixels_height = pixels_width, pixels_height
        self.pixels_camera = check_choice("pixels_camera", pixels_camera, PIXELS_CAMERAS)
        self.camera = camera
        self.sim = Simulation(
            connection_mode="gui" if render_mode == "human" else "direct",
            timestep=timestep,
            n_substeps=n_substeps,
            # Detailed visual meshes are most of the load time and make TinyRenderer frames
            # ~10× slower (Panda at 84×84: 48 ms vs 4 ms), so only state-observation envs that
            # render load them; pixel envs draw collision shapes in observations and renders
            # alike, so what an agent sees never depends on render_mode.
            visual_shapes=render_mode is not None and obs_mode == "state",
        )
        try:
            self._build(build, reward_mode)
        except Exception:
            self.sim.close()  # a half-built env must not leak its physics client
            raise

    def _build(
        self, build: Callable[[Simulation, str], tuple[Robot, Task]], reward_mode: str
    ) -> None:
        """Build robot and task, derive the spaces and take the snapshot every reset starts from."""
        self.robot, self.task = build(self.sim, reward_mode)
        self.metadata = {**self.metadata, "render_fps": max(1, round(1.0 / self.sim.dt))}
        self.action_space = self.robot.action_space
        self._is_box_action = isinstance(self.action_space, spaces.Box)
        self._state_only = self.obs_mode == "state" and not self.task.goal_conditioned
        self._pixels_projection = self._projection(self.pixels_width, self.pixels_height)
        self._render_projection = self._projection(self.render_width, self.render_height)
        self._reward_delay = RewardDelay() if reward_mode == "delayed" else None
        self._nominal_dynamics: dict[tuple[str, int], tuple[float, float]] | None = None
        self._observation_noise = 0.0
        self._action_latency = 0
        self._pending_actions: deque = deque()
        # Observation shapes come from one probe reset of the scene.
        self._reset_scene(np.random.default_rng(0))
        self.observation_space = self._make_observation_space(self._get_obs())
        # Every reset starts from this snapshot: its contact manifolds (objects resting on the
        # table or floor) make the restore reset the solver's warm-start caches too, so a seed
        # gives the same rollout whatever the episodes before it did.
        self.sim.perform_collision_detection()
        self._initial_state = self.sim.save_state()
        self.sim.reset_debug_camera(self.camera)

    # -------------------------------------------------------------------- observation
    def _make_observation_space(self, obs: Observation) -> spaces.Space:
        def box(array: np.ndarray) -> spaces.Box:
            if array.dtype == np.uint8:
                return spaces.Box(0, 255, shape=array.shape, dtype=np.uint8)
            return spaces.Box(-np.inf, np.inf, shape=array.shape, dtype=np.float32)

        if isinstance(obs, dict):
            return spaces.Dict({key: box(value) for key, value in obs.items()})
        return box(obs)

    def _get_state(self) -> np.ndarray:
        robot_obs, task_obs = self.robot.get_obs(), self.task.get_obs()
        if task_obs.size:
            state = np.concatenate([robot_obs, task_obs], dtype=np.float32)
        else:
            state = robot_obs.astype(np.float32)
        if self._observation_noise > 0:
            noise = self.np_random.normal(0.0, self._observation_noise, size=state.shape)
            state += noise.astype(np.float32)
        return state

    def _projection(self, width: int, height: int) -> Any:
        """The scene camera's projection matrix for frames of ``width``×``height`` px."""
        camera = self.camera
        return self.sim.compute_projection_matrix(
            camera.fov, width / height, camera.near, camera.far
        )

    def _view(self, camera: str, width: int, height: int, projection: Any) -> np.ndarray:
        """The scene from ``camera`` ("fixed" or "robot"), uint8 shape (height, width, 3)."""
        if camera == "robot":
            view = self.sim.compute_view_matrix(*self.robot.get_camera_pose())
            return self.sim.render_from_matrices(width, height, view, projection)
        return self.sim.render(width, height, self.camera)

    def get_pixels(self) -> np.ndarray:
        """The pixel observation now, uint8 shape (pixels_height, pixels_width, 3)."""
        return self._view(
            self.pixels_camera, self.pixels_width, self.pixels_height, self._pixels_projection
        )

    def _get_obs(self) -> Observation:
        if self._state_only:  # the common case, without the dict bookkeeping
            return self._get_state()
        with_state, with_pixels = self.obs_mode != "pixels", self.obs_mode != "state"
        obs: dict[str, np.ndarray] = {}
        if self.task.goal_conditioned:
            if with_state:
                obs["observation"] = self._get_state()
            obs["achieved_goal"] = self.task.get_achieved_goal().astype(np.float32)
            obs["desired_goal"] = self.task.get_desired_goal().astype(np.float32)
        elif with_state:
            obs["state"] = self._get_state()
        if with_pixels:
            obs["pixels"] = self.get_pixels()
        if not self.task.goal_conditioned and len(obs) == 1:
            return next(iter(obs.values()))
        return obs

    @staticmethod
    def _is_finite(obs: Observation) -> bool:
        """Whether the float parts of `obs` are finite (NaN and inf survive a sum; pixels can't
        be non-finite)."""
        if isinstance(obs, np.ndarray):
            return obs.dtype == np.uint8 or math.isfinite(obs.sum())
        values = obs.values()
        return math.isfinite(sum(float(v.sum()) for v in values if v.dtype != np.uint8))

    # ----------------------------------------------------------------------- episode
    def _reset_scene(self, np_random: np.random.Generator) -> None:
        self.robot.reset(np_random)
        self.task.reset(np_random)

    def _read_dynamics(self) -> dict[tuple[str, int], tuple[float, float]]:
        """The mass (kg) and lateral friction of every link of every body now."""
        return {
            (body, link): self.sim.get_dynamics_info(body, link)[:2]
            for body in self.sim.body_names
            for link in range(-1, self.sim.get_num_joints(body))
        }

    def _randomize(self, randomization: DomainRandomization) -> None:
        """Draw this episode's physics, actuator strength and action latency."""
        if self._nominal_dynamics is None:
            self._nominal_dynamics = self._read_dynamics()
        for (body, link), (mass, friction) in self._nominal_dynamics.items():
            self.sim.change_dynamics(
                body,
                link,
                mass=mass * self.np_random.uniform(*randomization.mass_scale),
                lateralFriction=friction * self.np_random.uniform(*randomization.friction_scale),
            )
        self.robot.actuator_scale = float(self.np_random.uniform(*randomization.actuator_scale))
        low, high = randomization.action_latency
        self._action_latency = int(self.np_random.integers(low, high + 1))
        self._observation_noise = randomization.observation_noise

    def release_withheld_reward(self) -> float:
        """Return the delayed reward withheld so far and forget it (0.0 unless delayed).

        Called by `ReleaseWithheldReward` when a time limit cuts the episode: the env cannot
        see the `TimeLimit` wrapped around it.
        """
        if self._reward_delay is None:
            return 0.0
        released = self._reward_delay.withheld
        self._reward_delay.reset()
        return released

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        """Start a new episode; `seed` reseeds the env's random generator."""
        self._check_open("reset")
        super().reset(seed=seed, options=options)
        if self._reward_delay is not None:
            self._reward_delay.reset()
        self.sim.restore_state(self._initial_state)
        self._pending_actions.clear()
        self._reset_scene(self.np_random)
        # Drawn after the scene, so a seed gives the same start state with or without it.
        if self.randomization is not None:
            self._randomize(self.randomization)
        observation = self._get_obs()
        if self.render_mode == "human":
            self.render()
        return observation, {"is_success": self.task.is_success()}

    def _check_action(self, action: Any) -> np.ndarray:
        if not self._is_box_action:
            if not self.action_space.contains(action):
                raise ValueError(f"action {action!r} is not in {self.action_space}")
            return np.asarray(action)
        action = np.asarray(action)
        # A float conversion would drop an imaginary part or parse text without a word.
        if action.dtype.kind not in _REAL_KINDS:
            raise ValueError(f"action must be real numbers, got dtype {action.dtype}: {action!r}")
        action = action.astype(np.float64, copy=False)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action has shape {action.shape}, expected {self.action_space.shape}")
        if not all(map(math.isfinite, action.tolist())):  # 5× faster than np.isfinite here
            raise ValueError(f"action contains NaN or inf: {action}")
        # minimum/maximum: np.clip's dispatch costs more than the whole clipping here.
        return np.minimum(np.maximum(action, self.action_space.low), self.action_space.high)

    def _delay_action(self, action: np.ndarray) -> np.ndarray:
        """The action chosen `latency` steps ago (the episode's first one until then)."""
        if self._action_latency == 0:
            return action
        self._pending_actions.append(action)
        if len(self._pending_actions) > self._action_latency:
            return self._pending_actions.popleft()
        return self._pending_actions[0]

    def step(self, action: Any) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        """Apply `action`, advance the physics one control period, and score the result."""
        self._check_open("step")
        applied = self._delay_action(self._check_action(action))
        self.robot.set_action(applied)
        self.sim.step()
        observation = self._get_obs()
        terms = self.task.compute_reward_terms(applied)
        info: dict[str, Any] = {f"reward_{name}": value for name, value in terms.items()}
        info["is_success"] = self.task.is_success()
        info.update(self.task.get_info())
        terminated = self.task.is_terminated()
        reward = float(sum(terms.values()))
        if not self._is_finite(observation):
            # A diverged simulation must not feed NaNs to a learner: end the episode cleanly.
            observation = self._zero_like(observation)
            reward, terminated, info["sim_error"] = 0.0, True, "non-finite physics state"
        if self._reward_delay is not None:
            reward = self._reward_delay.step(reward, terminated)
        if self.render_mode == "human":
            self.render()
        return observation, reward, terminated, False, info

    @staticmethod
    def _zero_like(obs: Observation) -> Observation:
        if isinstance(obs, dict):
            return {key: np.zeros_like(value) for key, value in obs.items()}
        return np.zeros_like(obs)

    # ------------------------------------------------------------------------ render
    def render(self) -> np.ndarray | None:
        """`rgb_array`: uint8 (render_height, render_width, 3); `human`: the GUI shows it."""
        self._check_open("render")
        if self.render_mode == "rgb_array":
            return self._view(
                self.render_camera, self.render_width, self.render_height, self._render_projection
            )
        return None

    def close(self) -> None:
        """Disconnect the physics client (idempotent)."""
        self._closed = True
        self.sim.close()

    def _check_open(self, call: str) -> None:
        """Raise `ClosedEnvironmentError` if `close()` was called (its bodies are gone)."""
        if self._closed:
            raise gym.error.ClosedEnvironmentError(
                f"{call}() called on a closed {type(self).__name__}; make a new env"
            )


class GoalRobotTaskEnv(RobotTaskEnv):
    """A RobotTaskEnv of a goal-conditioned task, with the vectorised `compute_reward` of HER.

    Only goal envs define `compute_reward`: checkers (SB3's) treat any env that has one as a
    goal env. With `reward_mode="delayed"` the reward depends on the whole episode, not on
    (achieved_goal, desired_goal), so the attribute is absent and hindsight relabelling
    refuses the env instead of computing wrong rewards.
    """

    @property
    def compute_reward(self) -> Callable[[np.ndarray, np.ndarray, Any], np.ndarray | float]:
        """Reward of achieved vs desired goals, batched over leading dims (for HER)."""
        if self.task.reward_mode == "delayed":
            raise AttributeError(
                "compute_reward is undefined with reward_mode='delayed': a delayed reward "
                "depends on the whole episode, not on (achieved_goal, desired_goal)"
            )
        return self.task.compute_reward
