"""``BaseAgent``: the SB3-like API every rlrobot agent shares (learn, predict, save, load).

Subclasses (one level: ``OnPolicyAgent``/``OffPolicyAgent``, then the algorithms) implement
``_setup`` (networks, optimizers, normalisers), ``_predict_actions`` and ``learn``; the base
class handles envs, seeding, devices, observation conversion, action post-processing and the
training state for resume. Checkpoint I/O is in ``checkpointing.py`` and the shared
hyperparameters in ``config.py``; what stays here is one unit, the surface an SB3 user calls
(``learn``, ``predict``, ``save``, ``load``, the replay-buffer and progress methods), so it is
a little over 500 lines.
"""

from __future__ import annotations

import inspect
import math
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlrobot.agents.checkpointing import (
    LoadTarget,
    capture_episodes,
    load_agent,
    merge_custom_objects,
    restore_episodes,
    save_agent,
)
from rlrobot.agents.config import AgentConfig, resolve_device
from rlrobot.common.config import BaseConfig
from rlrobot.common.env_util import EnvSpec, EpisodeTracker
from rlrobot.common.logger import Logger
from rlrobot.common.normalization import ObservationNormalizer, RewardNormalizer
from rlrobot.common.progress import make_progress_bar
from rlrobot.common.replay_buffer import ReplayBuffer
from rlrobot.common.seeding import get_rng_state, set_rng_state, set_seed
from rlrobot.envs.state import (
    check_dict,
)
from rlrobot.errors import CheckpointError, ConfigError
from rlrobot.vec import make_vec_env

AgentT = TypeVar("AgentT", bound="BaseAgent")
Observation = np.ndarray | dict[str, np.ndarray]
# What ``learn`` calls after each iteration; returning False stops training.
Callback = Callable[["BaseAgent"], bool | None]


def check_callback(callback: Any) -> None:
    """Raise ``TypeError`` unless ``callback`` can be called as ``callback(agent)``.

    Checked when ``learn`` starts, not after its first rollout; SB3's ``BaseCallback`` objects
    and ``callback(locals, globals)`` functions are the usual mistakes.
    """
    expected = "learn's callback is called as callback(agent) and may return False to stop"
    if not callable(callback):
        raise TypeError(f"{expected}; got a {type(callback).__name__}, which is not callable")
    try:
        inspect.signature(callback).bind(None)
    except TypeError as error:
        raise TypeError(f"{expected}; {callback!r} cannot be called so: {error}") from None
    except ValueError:
        pass  # no signature to inspect (some builtins): trusted


class BaseAgent(ABC):
    """Common machinery of all agents.

    Args:
        env: Env id, env instance, env factory or ``SAME_STEP`` vector env; ``None`` only when
            ``observation_space`` and ``action_space`` are given (a predict-only agent).
        n_envs: Number of parallel envs.
        vec_env: ``"sync"``, ``"async"``, ``"shm"`` or ``"shm_workers"`` (see ``make_vec_env``).
        env_kwargs: Keyword arguments for ``gym.make``.
        worker_timeout_s: Seconds an env worker process may take for a step or reset before
            training stops with ``EnvWorkerError`` (``None``: no limit; see ``make_vec_env``).
        seed: Seeds the global RNGs, the network initialisation and the envs.
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``….
        config: A config dataclass; keyword hyperparameters override its fields.
        observation_space: Used when ``env`` is None.
        action_space: Used when ``env`` is None.
        image_encoder: Replaces the default ``NatureCNN`` on image observations (e.g. a
            pretrained ``rlrobot.perception.load_encoder``); an encoder with an
            ``encoder_spec`` is rebuilt by ``load``.
        freeze_encoder: Keep ``image_encoder``'s weights fixed.
        **hyperparameters: Any field of the algorithm's config dataclass.
    """

    algorithm: ClassVar[str] = ""
    config_class: ClassVar[type[AgentConfig]] = AgentConfig
    config: AgentConfig

    def __init__(
        self,
        env: EnvSpec | gym.vector.VectorEnv | None = None,
        *,
        n_envs: int = 1,
        vec_env: str = "sync",
        env_kwargs: dict[str, Any] | None = None,
        worker_timeout_s: float | None = None,
        seed: int | None = None,
        device: str | torch.device = "auto",
        config: BaseConfig | None = None,
        observation_space: gym.Space | None = None,
        action_space: gym.Space | None = None,
        image_encoder: nn.Module | None = None,
        freeze_encoder: bool = False,
        **hyperparameters: Any,
    ) -> None:
        self._image_encoder, self._freeze_encoder = image_encoder, freeze_encoder
        base_values = config.to_dict() if config is not None else {}
        self.config = self.config_class.from_dict({**base_values, **hyperparameters})
        if seed is not None and (
            not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0
        ):
            raise ConfigError(f"seed must be an integer >= 0 or None, got {seed!r}")
        self.seed = seed
        self.device = resolve_device(device)
        self.env_id = env if isinstance(env, str) else None
        self.num_timesteps = 0
        # Seconds spent in ``learn`` over the whole run, resumed segments included.
        self.time_elapsed = 0.0
        self._clock: tuple[float, int] | None = None
        self.logger = Logger(outputs=())
        self.obs_normalizer: ObservationNormalizer | None = None
        self.reward_normalizer: RewardNormalizer | None = None
        self.replay_buffer: ReplayBuffer | None = None
        # RRD's reward model (``rlrobot.agents.redistribution``), built by the agent families.
        self.reward_redistributor: Any = None
        if seed is not None:
            set_seed(seed)
        self.env: gym.vector.VectorEnv | None = None
        if env is not None:
            self.env = make_vec_env(env, n_envs, vec_env, seed, env_kwargs, worker_timeout_s)
            observation_space = self.env.single_observation_space
            action_space = self.env.single_action_space
            n_envs = self.env.num_envs
        elif observation_space is None or action_space is None:
            raise ValueError("give an env, or both observation_space and action_space")
        self.observation_space: gym.Space = observation_space
        self.action_space: gym.Space = action_space
        self.n_envs = n_envs
        self._last_observations: Any = None  # where the next env step starts (None: reset first)
        self.episode_tracker = EpisodeTracker(n_envs)
        try:
            self._setup()
        except BaseException:
            if self.env is not None:
                self.env.close()  # a refused config leaves no worker or physics client behind
            raise

    # -- to implement -------------------------------------------------------------------------
    @abstractmethod
    def _setup(self) -> None:
        """Build networks, optimizers and normalisers from ``self.config`` and the spaces."""

    @abstractmethod
    def _predict_actions(self, observations: Any, deterministic: bool) -> torch.Tensor:
        """Return raw actions ``(batch, *action_shape)`` for preprocessed observations."""

    @abstractmethod
    def learn(
        self,
        total_timesteps: int,
        progress_bar: bool = False,
        logger: Any = None,
        callback: Any = None,
        reset_num_timesteps: bool = False,
    ) -> BaseAgent:
        """Train for ``total_timesteps`` more env steps."""

    @abstractmethod
    def modules(self) -> dict[str, nn.Module]:
        """Return the networks whose weights go into checkpoints, by name."""

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Return the optimizers whose state goes into checkpoints, by name."""
        return {}

    # -- observations and actions -------------------------------------------------------------
    def _is_batched(self, observations: Observation) -> bool:
        space = self.observation_space
        if isinstance(space, gym.spaces.Dict):
            key = next(iter(space.spaces))
            return np.ndim(observations[key]) > len(space[key].shape)
        return np.ndim(observations) > len(space.shape)

    def _check_observation_shape(self, observations: Observation, batched: bool) -> None:
        spaces = (
            self.observation_space.spaces
            if isinstance(self.observation_space, gym.spaces.Dict)
            else {None: self.observation_space}
        )
        for key, space in spaces.items():
            value = observations if key is None else observations.get(key)
            if value is None:
                raise ValueError(f"observation is missing key {key!r}")
            shape = np.shape(value)[1:] if batched else np.shape(value)
            if tuple(shape) != tuple(space.shape):
                name = "observation" if key is None else f"observation[{key!r}]"
                raise ValueError(
                    f"{name} has shape {tuple(shape)}, expected {tuple(space.shape)} "
                    f"(or a batch of them) for {space}"
                )

    def obs_to_tensor(self, observations: Observation) -> torch.Tensor | dict[str, torch.Tensor]:
        """Normalise (if enabled) batched observations and move them to the device."""
        if self.obs_normalizer is not None:
            observations = self.obs_normalizer.normalize(observations)
        if isinstance(observations, dict):
            return {
                k: torch.as_tensor(np.asarray(v), device=self.device)
                for k, v in observations.items()
            }
        return torch.as_tensor(np.asarray(observations), device=self.device)

    def actions_to_env(self, actions: np.ndarray) -> np.ndarray:
        """Map raw policy outputs to valid env actions (Box: clipped to bounds)."""
        if isinstance(self.action_space, gym.spaces.Box):
            return np.clip(actions, self.action_space.low, self.action_space.high)
        if isinstance(self.action_space, gym.spaces.Discrete) and self.action_space.start != 0:
            return actions + self.action_space.start
        return actions

    def predict(
        self,
        observation: Observation,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, Any]:
        """Return actions for an observation or a batch of them (SB3's signature).

        Args:
            observation: One observation or a batch ``(batch, *obs_shape)`` (dicts for ``Dict``).
            state: Recurrent state; unused (feed-forward policies), returned unchanged.
            episode_start: Unused, for SB3 compatibility.
            deterministic: Take the most likely action instead of sampling.

        Returns:
            ``(actions, state)``; actions have shape ``action_shape`` or ``(batch, *action_shape)``.
        """
        batched = self._is_batched(observation)
        self._check_observation_shape(observation, batched)
        if not batched:
            if isinstance(observation, dict):
                observation = {k: np.asarray(v)[None] for k, v in observation.items()}
            else:
                observation = np.asarray(observation)[None]
        with torch.inference_mode():
            actions = self._predict_actions(self.obs_to_tensor(observation), deterministic)
        actions = self.actions_to_env(actions.cpu().numpy())
        return (actions if batched else actions[0]), state

    # -- the training loop's shared parts ----------------------------------------------------
    def start_new_episodes(self, seed: int | None) -> None:
        """Abandon the episodes in progress and start new ones (env ``i`` seeded ``seed + i``).

        The action spaces are reseeded too, and the per-episode accumulators (episode tracker,
        reward normaliser's running return) restart from zero. A replay buffer's newest
        transitions become truncated ends, bootstrapped from their real next observations as
        at a time limit.
        """
        if self.replay_buffer is not None:
            self.replay_buffer.truncate_episodes()
        observations, _ = self.env.reset(seed=seed)
        if seed is not None:
            self.env.action_space.seed(seed)
            self.env.single_action_space.seed(seed)
        if self.obs_normalizer is not None:
            self.obs_normalizer.update(observations)
        if self.reward_normalizer is not None:
            self.reward_normalizer.returns[:] = 0.0
        self.episode_tracker.returns[:] = 0.0
        self.episode_tracker.lengths[:] = 0
        self._last_observations = observations

    @property
    def episodes_in_progress(self) -> bool:
        """Whether the envs hold episodes that the next env step continues (reset or restored)."""
        return self._last_observations is not None

    def get_episode_state(self) -> dict[str, Any] | None:
        """Return the episodes in progress, for a checkpoint that continues them exactly.

        It holds every env's state (``rlrobot.vec.state``), the observations the next step
        starts from, the per-episode accumulators (episode returns and lengths, the reward
        normaliser's running return) and the RNGs of the vector env's action spaces.

        Returns:
            JSON values and arrays; None when there are no episodes yet or an env cannot save
            its state.
        """
        return capture_episodes(self)

    def set_episode_state(self, state: Any) -> None:
        """Restore what ``get_episode_state`` returned, into envs made like the saved ones.

        Raises:
            CheckpointError: The state does not fit these envs, spaces or accumulators.
        """
        restore_episodes(self, state, self._episode_state_keys())

    def _episode_state_keys(self) -> tuple[str, ...]:
        """The keys of ``get_episode_state`` (the agent families add theirs)."""
        return (
            "envs",
            "last_observations",
            "episode_returns",
            "episode_lengths",
            "reward_normalizer_returns",
            "action_space_rngs",
        )

    def _begin_learn(
        self,
        total_timesteps: int,
        logger: Logger | None,
        reset_num_timesteps: bool,
        callback: Any,
    ) -> int:
        """Check the arguments, start the clock and the first episodes; return the end step."""
        if self.env is None:
            raise RuntimeError("this agent has no env; load it with env=… to train it")
        if total_timesteps < 1:
            raise ValueError(f"total_timesteps must be >= 1, got {total_timesteps}")
        if callback is not None:
            check_callback(callback)
        if reset_num_timesteps:
            self.num_timesteps = 0
        self.logger = logger if logger is not None else Logger(outputs=())
        if self._last_observations is None:
            self.start_new_episodes(self.seed)
        self._learn_start, self._learn_total = self.num_timesteps, total_timesteps
        self._clock = (time.perf_counter(), self.num_timesteps)
        return self.num_timesteps + total_timesteps

    def _end_learn(self) -> None:
        """Stop the clock of this ``learn`` call."""
        self.time_elapsed = self.get_time_elapsed()
        self._clock = None

    def get_time_elapsed(self) -> float:
        """Return the seconds spent in ``learn`` so far, earlier run segments included."""
        if self._clock is None:
            return self.time_elapsed
        return self.time_elapsed + time.perf_counter() - self._clock[0]

    def _record_time(self) -> None:
        """Log SB3's ``time/…`` keys (``fps`` over this ``learn`` call, as SB3 counts it)."""
        start_time, start_steps = self._clock
        elapsed = max(time.perf_counter() - start_time, 1e-9)
        self.logger.record("time/fps", (self.num_timesteps - start_steps) / elapsed)
        self.logger.record("time/time_elapsed", self.get_time_elapsed())
        self.logger.record("time/total_timesteps", self.num_timesteps)

    @property
    def steps_per_iteration(self) -> int:
        """Env steps ``learn`` advances by at a time (off-policy: one step of every env)."""
        return self.n_envs

    def steps_to_run(self, total_timesteps: int) -> int:
        """Return the env steps ``learn(total_timesteps)`` runs: whole iterations, rounded up."""
        return math.ceil(total_timesteps / self.steps_per_iteration) * self.steps_per_iteration

    def _make_progress_bar(self, progress_bar: bool, total_timesteps: int) -> Any:
        """Return a tqdm bar over the steps ``learn`` will run, or None where none should show."""
        return make_progress_bar(progress_bar, self.steps_to_run(total_timesteps), "step")

    def current_progress_remaining(self) -> float:
        """Fraction of training still to go: ``1 − num_timesteps / end`` (SB3's definition).

        ``end`` is the step the current ``learn`` call stops at. Measured from step 0 rather
        than from the start of the call, so a run resumed from a checkpoint (``learn`` called
        again with the remaining steps) follows the same schedule as the uninterrupted run.
        """
        end = self._learn_start + self._learn_total
        return max(0.0, 1.0 - self.num_timesteps / max(1, end))

    def _update_learning_rate(self) -> float:
        """Set every optimizer's step size from ``learning_rate`` and ``lr_schedule``."""
        learning_rate = self.config.learning_rate
        if self.config.lr_schedule == "linear":
            learning_rate *= self.current_progress_remaining()
        for optimizer in self.optimizers().values():
            for group in optimizer.param_groups:
                group["lr"] = learning_rate
        return learning_rate

    # -- training state and checkpoints -------------------------------------------------------
    def normalizers(self) -> dict[str, ObservationNormalizer | RewardNormalizer]:
        """Return the active normalisers by name."""
        found = {"obs_normalizer": self.obs_normalizer, "reward_normalizer": self.reward_normalizer}
        return {name: value for name, value in found.items() if value is not None}

    def get_training_state(self) -> dict[str, Any]:
        """Return everything needed to resume training besides the weights.

        Holds ``num_timesteps``, the training time, optimizer state dicts, normaliser
        statistics and the global RNG states (tensors, arrays and JSON values only).
        """
        return {
            "num_timesteps": self.num_timesteps,
            "time_elapsed": self.get_time_elapsed(),
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers().items()},
            "normalizers": {name: n.state_dict() for name, n in self.normalizers().items()},
            "reward_redistributor": (
                self.reward_redistributor.state_dict()
                if self.reward_redistributor is not None
                else None
            ),
            "rng": get_rng_state(),
        }

    def set_training_state(self, state: dict[str, Any], restore_rng: bool = True) -> None:
        """Restore a state returned by ``get_training_state`` (normalisers always restored)."""
        self.num_timesteps = int(state["num_timesteps"])
        self.time_elapsed = float(state.get("time_elapsed", 0.0))
        for name, optimizer in self.optimizers().items():
            if name in state.get("optimizers", {}):
                optimizer.load_state_dict(state["optimizers"][name])
        for name, normalizer in self.normalizers().items():
            if name not in state.get("normalizers", {}):
                raise CheckpointError(f"checkpoint has no statistics for {name}")
            normalizer.load_state_dict(
                {k: np.asarray(v) for k, v in state["normalizers"][name].items()}
            )
        if self.reward_redistributor is not None and state.get("reward_redistributor"):
            self.reward_redistributor.load_state_dict(state["reward_redistributor"])
        if restore_rng and "rng" in state:
            set_rng_state(state["rng"])
        episodes = state.get("episodes")
        # Continued only where everything else continues too (no new seed), in as many envs.
        if restore_rng and episodes is not None and self.env is not None:
            check_dict("episodes", episodes, self._episode_state_keys())
            if len(episodes["envs"]) == self.n_envs:
                self.set_episode_state(episodes)

    def checkpoint_modules(self) -> dict[str, nn.Module]:
        """Return ``modules()`` plus the reward model of RRD, if any: what checkpoints hold."""
        modules = dict(self.modules())
        if self.reward_redistributor is not None:
            modules["reward_model"] = self.reward_redistributor.model
        return modules

    # -- replay buffer (off-policy agents; on-policy ones under RRD, for the reward model) ---
    def _make_replay_buffer(self) -> ReplayBuffer:
        raise RuntimeError(f"{type(self).__name__} has no replay buffer")

    def _ensure_replay_buffer(self) -> ReplayBuffer:
        if self.replay_buffer is None:
            if self.env is None:
                raise RuntimeError("this agent has no env; load it with env=… to use a buffer")
            self.replay_buffer = self._make_replay_buffer()
        return self.replay_buffer

    def save_replay_buffer(self, path: str | os.PathLike) -> Path:
        """Write the replay buffer to an ``.npz`` file (arrays only; suffix added if missing)."""
        if self.replay_buffer is None:
            raise RuntimeError("there is no replay buffer yet (call learn first)")
        return self.replay_buffer.save(path)

    def load_replay_buffer(self, path: str | os.PathLike) -> None:
        """Fill the replay buffer from a file written by ``save_replay_buffer``."""
        self._ensure_replay_buffer().load(path)

    def save(
        self,
        path: str | os.PathLike,
        include_training_state: bool = True,
        include_replay_buffer: bool = False,
        include_episodes: bool = False,
    ) -> Path:
        """Save weights, normalisers, config and spaces (and optimizer/RNG state) to ``path``.

        As in SB3, ``save("model")`` writes one file, ``model.zip`` (a name with a suffix is
        kept as given); it holds ``model.safetensors`` and ``metadata.json``, no pickle. An
        existing directory, or a path ending in ``/``, gets those files as a checkpoint
        directory instead (what ``rlrobot train`` writes). ``include_replay_buffer`` adds the
        replay buffer as ``replay_buffer.npz``, and ``include_episodes`` (with the training
        state) the episodes in progress (``get_episode_state``; env snapshots as uint8
        tensors), which ``load`` continues. Returns the file or directory written.
        """
        return save_agent(
            self, path, include_training_state, include_replay_buffer, include_episodes
        )

    @classmethod
    def load(
        cls: type[AgentT],
        path: str | os.PathLike,
        env: EnvSpec | gym.vector.VectorEnv | None = None,
        device: str | torch.device = "auto",
        custom_objects: dict[str, Any] | None = None,
        *,
        n_envs: int | None = None,
        vec_env: str = "sync",
        env_kwargs: dict[str, Any] | None = None,
        worker_timeout_s: float | None = None,
        seed: int | None = None,
        load_replay_buffer: bool = True,
        **hyperparameters: Any,
    ) -> AgentT:
        """Load an agent saved with ``save``, or the policy of a Stable-Baselines3 ``.zip``.

        Args:
            path: The ``.zip`` file (``"model"`` finds ``model.zip``) or checkpoint directory.
                An SB3 ``MlpPolicy`` zip (PPO, A2C, SAC, TD3) is imported without unpickling (see
                ``rlrobot.agents.sb3_import``): its weights and hyperparameters, with a fresh
                optimizer.
            env: Env to keep training in; ``None`` gives a predict-only agent (``learn`` needs
                an env). Its spaces must equal the checkpoint's.
            device: Where to put the networks.
            custom_objects: SB3's way to replace saved values, e.g. ``{"learning_rate": 0.0,
                "clip_range": 0.1}``; keys are config fields (``lr_schedule`` is SB3's name
                for the learning rate, a constant or a schedule). Merged with
                ``hyperparameters``.
            n_envs: Number of envs for ``env`` (default: as many as the agent was saved with,
                which its ``batch_size`` may need; 1 for an env instance).
            vec_env: ``"sync"``, ``"async"``, ``"shm"`` or ``"shm_workers"`` (see ``make_vec_env``).
            env_kwargs: Keyword arguments for ``gym.make``.
            worker_timeout_s: Limit of an env worker's step or reset (see ``make_vec_env``).
            seed: Seed for the new envs (the RNG state of the checkpoint is restored otherwise,
                and the episodes it holds, if any, are continued where ``n_envs`` is the same).
            load_replay_buffer: Also restore ``replay_buffer.npz`` when present (with an env).
            **hyperparameters: Config fields to change (e.g. ``learning_rate``).

        Raises:
            CheckpointError: Missing/corrupt checkpoint, another algorithm, other spaces.
        """
        target = LoadTarget(env, device, n_envs, vec_env, env_kwargs, worker_timeout_s, seed)
        hyperparameters = merge_custom_objects(cls.config_class, custom_objects, hyperparameters)
        return load_agent(cls, path, target, load_replay_buffer, hyperparameters)
