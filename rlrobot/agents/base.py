"""``BaseAgent``: the SB3-like API every rlrobot agent shares (learn, predict, save, load).

Subclasses (one level: ``OnPolicyAgent``/``OffPolicyAgent``, then the algorithms) implement
``_setup`` (networks, optimizers, normalisers), ``_predict_actions`` and ``learn``; the base
class handles envs, seeding, devices, observation conversion, action post-processing and the
training state for resume. Checkpoint I/O is in ``checkpointing.py``, the shared
hyperparameters in ``config.py``, the conversion of SB3's constructor arguments in
``sb3_arguments.py`` and ``learn``'s callbacks in ``callbacks.py``; what stays here is one
unit, the surface an SB3 user calls (the constructor, ``learn``, ``predict``, ``save``,
``load``, ``get_env``/``set_env``, ``get_parameters``/``set_parameters``, ``set_logger``, the
replay-buffer and progress methods), so it is over 500 lines.
"""

from __future__ import annotations

import math
import os
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlrobot.agents.callbacks import TrainingCallback, check_callback, make_callback
from rlrobot.agents.checkpointing import (
    LoadTarget,
    capture_episodes,
    load_agent,
    resolve_save_contents,
    restore_episodes,
    save_agent,
)
from rlrobot.agents.config import AgentConfig, resolve_device
from rlrobot.agents.sb3_arguments import (
    check_common_arguments,
    check_extractor_choice,
    check_flag,
    check_learn_arguments,
    check_run_name,
    check_seed,
    convert_policy_kwargs,
    convert_sb3_arguments,
    split_policy_and_env,
)
from rlrobot.common.checkpoint import check_optimizer_state, load_optimizer_state
from rlrobot.common.config import TORCH_THREADS, BaseConfig, check_argument
from rlrobot.common.env_util import EnvSpec, EpisodeTracker
from rlrobot.common.logger import Logger, latest_run_id
from rlrobot.common.normalization import ObservationNormalizer, RewardNormalizer
from rlrobot.common.progress import make_progress_bar
from rlrobot.common.replay_buffer import ReplayBuffer
from rlrobot.common.seeding import get_rng_state, set_rng_state, set_seed
from rlrobot.envs.state import (
    check_dict,
)
from rlrobot.errors import CheckpointError, ConfigError, UnsupportedEnvError
from rlrobot.vec import get_sb3_vec_env, get_vec_normalize, make_vec_env

AgentT = TypeVar("AgentT", bound="BaseAgent")
Observation = np.ndarray | dict[str, np.ndarray]
# ``learn``'s callback: ``callback(agent)``, an SB3 ``BaseCallback`` or a list (see callbacks.py).
Callback = Any


# torch's CPU threads in ``learn`` when neither the agent nor the user chose a count: one is
# the fastest for RL's small networks on a few shared cores (docs/benchmarks/threads.md).
DEFAULT_TORCH_THREADS = 1
# torch's thread count when rlrobot's agents were imported: torch's own default. Another count
# at ``learn`` was set by the script (``torch.set_num_threads``), and is its choice.
STARTING_TORCH_THREADS = torch.get_num_threads()
# Environment variables through which a user gives torch its thread count before it starts.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def resolve_torch_threads(torch_threads: int | str | None) -> int | None:
    """Return the thread count ``learn`` runs with (None: the process's, left alone).

    ``"auto"`` is ``DEFAULT_TORCH_THREADS`` unless the user chose a count: through
    ``OMP_NUM_THREADS``/``MKL_NUM_THREADS``, or with ``torch.set_num_threads`` after importing
    rlrobot's agents. An integer is that count.
    """
    if not (isinstance(torch_threads, str) and torch_threads == "auto"):
        return torch_threads
    if any(os.environ.get(name) for name in THREAD_VARIABLES):
        return None
    if torch.get_num_threads() != STARTING_TORCH_THREADS:
        return None
    return DEFAULT_TORCH_THREADS


@contextmanager
def torch_threads_set(count: int | None) -> Iterator[None]:
    """Run the block with ``count`` torch CPU threads (None: as they are), then restore them."""
    previous = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _optimizer_key(name: str) -> str:
    """SB3's key of an optimizer: ``optimizer`` → ``policy.optimizer``, ``actor_optimizer`` → …"""
    return f"{name.removesuffix('optimizer').removesuffix('_') or 'policy'}.optimizer"


def _expected_shapes(space: gym.Space) -> str:
    """Return the shapes ``predict`` takes for ``space``: one observation or a batch."""
    shape = tuple(space.shape)
    batch = "(n,)" if not shape else f"(n, {', '.join(map(str, shape))})"
    return f"shape {shape} or {batch} for {space}"


def _check_observation_array(name: str, value: Any, space: gym.Space) -> tuple[np.ndarray, bool]:
    """Return ``value`` as an array of real numbers and whether it is a batch of ``space``'s
    observations; raise ValueError naming ``name``, what was given and what is expected."""
    try:
        array = np.asarray(value)
    except ValueError as error:  # ragged nested lists
        raise ValueError(
            f"{name} is no array ({error}); expected {_expected_shapes(space)}"
        ) from None
    if array.dtype.kind not in "biuf":
        raise ValueError(
            f"{name} has dtype {array.dtype} ({type(value).__name__}); expected real numbers of "
            f"{_expected_shapes(space)}"
        )
    shape = tuple(space.shape)
    batched = array.ndim == len(shape) + 1
    if array.ndim not in (len(shape), len(shape) + 1) or array.shape[batched:] != shape:
        raise ValueError(f"{name} has shape {array.shape}, expected {_expected_shapes(space)}")
    if batched and len(array) == 0:
        raise ValueError(f"{name} is an empty batch {array.shape}; give at least one observation")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        raise ValueError(
            f"{name} holds NaN or inf at index {index}; a policy must not act on a "
            "non-finite reading"
        )
    return array, batched


class BaseAgent(ABC):
    """Common machinery of all agents.

    Takes SB3's form, ``PPO("MlpPolicy", env, …)``, and ours, ``PPO(env, …)``: a first
    argument that is a policy name is the policy, anything else the env.

    Args:
        policy: ``"MlpPolicy"``, ``"CnnPolicy"`` or ``"MultiInputPolicy"`` (see
            ``sb3_arguments.check_policy``; ``MlpPolicy`` flattens image observations, scaled
            to [0, 1], as SB3 does), or the env when no policy name is given (policy
            ``"auto"``: a CNN on images, per-key extractors on ``Dict``, flattening otherwise).
        env: Env id, env instance, env factory, Gymnasium vector env (any autoreset mode) or
            SB3 VecEnv (see ``make_vec_env``); ``None`` only when ``observation_space`` and
            ``action_space`` are given (a predict-only agent).
        n_envs: Number of parallel envs.
        vec_env: ``"sync"``, ``"async"``, ``"shm"`` or ``"shm_workers"`` (see ``make_vec_env``).
        env_kwargs: Keyword arguments for ``gym.make``.
        worker_timeout_s: Seconds an env worker process may take for a step or reset before
            training stops with ``EnvWorkerError`` (``None``: no limit; see ``make_vec_env``).
        seed: Seeds the global RNGs, the network initialisation and the envs.
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``….
        torch_threads: torch's CPU threads during ``learn`` (``torch.set_num_threads``, the
            previous count restored when ``learn`` returns); ``None`` leaves the process's
            count alone. ``"auto"`` (the default): one thread, on which RL's small networks
            train fastest (docs/benchmarks/threads.md), unless you chose a count yourself
            (``OMP_NUM_THREADS``, or ``torch.set_num_threads`` after importing rlrobot's
            agents), which is then left alone.
        config: A config dataclass; keyword hyperparameters override its fields.
        observation_space: Used when ``env`` is None.
        action_space: Used when ``env`` is None.
        image_encoder: Replaces the default ``NatureCNN`` on image observations (e.g. a
            pretrained ``rlrobot.perception.load_encoder``); an encoder with an
            ``encoder_spec`` is rebuilt by ``load``.
        freeze_encoder: Keep ``image_encoder``'s weights fixed.
        policy_kwargs: SB3's network keywords (``net_arch``, ``activation_fn``,
            ``features_extractor_class`` …), converted into config fields by
            ``sb3_arguments.convert_policy_kwargs``; a key we cannot honour is a ``ConfigError``.
            A custom extractor class is saved as ``"module:qualname"``: ``load`` finds it in
            a module already imported (or in rlrobot/SB3), never importing other code.
        verbose: 0 silent; 1 prints the device and a table of statistics at each log (to
            stdout, unless ``learn`` gets a logger); 2 the same (SB3's debug messages have no
            counterpart here).
        tensorboard_log: Folder where ``learn`` writes TensorBoard events, in a run folder
            ``{tb_log_name}_{N}`` (SB3's convention: N one above the latest, the latest
            reused when ``learn`` continues with ``reset_num_timesteps=False``).
        stats_window_size: Episodes the ``rollout/ep_*_mean`` statistics average over.
        _init_setup_model: False builds no networks until ``_setup_model()`` is called.
        **hyperparameters: Any field of the algorithm's config dataclass, or an SB3 argument
            (renamed ones converted; unsupported ones, such as ``use_sde``, a ``ConfigError``).
    """

    algorithm: ClassVar[str] = ""
    # On-policy agents share one feature extractor between actor and critic (SB3's defaults).
    on_policy: ClassVar[bool] = False
    config_class: ClassVar[type[AgentConfig]] = AgentConfig
    config: AgentConfig

    def __init__(
        self,
        policy: str | EnvSpec | gym.vector.VectorEnv | None = None,
        env: EnvSpec | gym.vector.VectorEnv | None = None,
        *,
        n_envs: int = 1,
        vec_env: str = "sync",
        env_kwargs: dict[str, Any] | None = None,
        worker_timeout_s: float | None = None,
        seed: int | None = None,
        device: str | torch.device = "auto",
        torch_threads: int | str | None = "auto",
        config: BaseConfig | None = None,
        observation_space: gym.Space | None = None,
        action_space: gym.Space | None = None,
        image_encoder: nn.Module | None = None,
        freeze_encoder: bool = False,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        tensorboard_log: str | os.PathLike | None = None,
        stats_window_size: int = 100,
        _init_setup_model: bool = True,
        **hyperparameters: Any,
    ) -> None:
        name = type(self).__name__
        policy, env = split_policy_and_env(name, policy, env)
        self._image_encoder, self._freeze_encoder = image_encoder, freeze_encoder
        base_values = config.to_dict() if config is not None else {}
        sb3_values = convert_sb3_arguments(name, hyperparameters, self.config_class.field_names())
        sb3_values.update(
            convert_policy_kwargs(name, policy_kwargs, self.on_policy, self.config_class)
        )
        if policy != "auto":
            sb3_values["policy_name"] = policy
        self.config = self.config_class.from_dict({**base_values, **sb3_values})
        seed = check_common_arguments(verbose, stats_window_size, seed)
        self.seed = seed
        if torch_threads is not None and not (
            isinstance(torch_threads, str) and torch_threads == "auto"
        ):
            try:
                torch_threads = check_argument("torch_threads", torch_threads, int, TORCH_THREADS)
            except ConfigError as error:
                raise ConfigError(
                    f'{error}; "auto" (the default) and None are allowed too'
                ) from None
        self.torch_threads = torch_threads
        self.verbose = verbose
        self.tensorboard_log = tensorboard_log
        self.device = resolve_device(device)
        self.env_id = env if isinstance(env, str) else None
        self.num_timesteps = 0
        # Where the current learn() call started and how long it runs (for the schedules).
        self._learn_start, self._learn_total = 0, 0
        # Seconds spent in ``learn`` over the whole run, resumed segments included.
        self.time_elapsed = 0.0
        self._clock: tuple[float, int] | None = None
        self.logger = Logger(outputs=())
        self._custom_logger = False  # set_logger's logger outlives learn calls, as in SB3
        self.obs_normalizer: ObservationNormalizer | None = None
        self.reward_normalizer: RewardNormalizer | None = None
        self.replay_buffer: ReplayBuffer | None = None
        # RRD's reward model (``rlrobot.agents.redistribution``), built by the agent families.
        self.reward_redistributor: Any = None
        if seed is not None:
            set_seed(seed)
        self.env: gym.vector.VectorEnv | None = None
        self._env_view: Any = None  # get_env()'s VecEnv, made once per env
        if env is not None:
            self.env = make_vec_env(env, n_envs, vec_env, seed, env_kwargs, worker_timeout_s)
            observation_space = self.env.single_observation_space
            action_space = self.env.single_action_space
            n_envs = self.env.num_envs
        elif observation_space is None or action_space is None:
            if policy != "auto":
                raise ConfigError(
                    f"{name}({policy!r}) has no env: pass one, {name}({policy!r}, env) (an env "
                    "id, instance or vector env), or observation_space= and action_space= for "
                    "a predict-only agent"
                )
            raise ValueError("give an env, or both observation_space and action_space")
        self.observation_space: gym.Space = observation_space
        self.action_space: gym.Space = action_space
        self.n_envs = n_envs
        self._last_observations: Any = None  # where the next env step starts (None: reset first)
        self.episode_tracker = EpisodeTracker(n_envs, stats_window_size)
        if verbose >= 1:
            print(f"Using {self.device} device")
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        """Build the networks (SB3's name; called by ``__init__`` unless ``_init_setup_model``
        is False, which leaves an agent that holds its env and config but no networks yet)."""
        try:
            check_extractor_choice(self.config, self.observation_space, self._image_encoder)
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

    def learn(
        self,
        total_timesteps: int,
        callback: Callback = None,
        log_interval: int | None = None,
        tb_log_name: str | None = None,
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
        *,
        logger: Any = None,
    ) -> BaseAgent:
        """Train for ``total_timesteps`` env steps over all envs (SB3's signature).

        On-policy agents round the budget up to whole rollouts.

        Args:
            total_timesteps: Env steps to run.
            callback: ``callback(agent)`` after every iteration (a rollout and its update, or
                a vector-env step off-policy), an SB3 ``BaseCallback`` (its ``on_step`` after
                every vector-env step) or a list of them; returning False stops (see
                ``rlrobot.agents.callbacks``).
            log_interval: Log every this many rollouts (on-policy) or episodes (off-policy), as
                SB3 counts them (None: every ``log_interval`` of the config).
            tb_log_name: The TensorBoard run name under ``tensorboard_log`` (None: the class name).
            reset_num_timesteps: Count ``num_timesteps`` from 0 (SB3's default); False continues
                the count (and the schedules), as a resumed run does.
            progress_bar: Show a tqdm bar (only on a terminal and outside CI).
            logger: Where statistics go (default: the ``set_logger`` one, else none kept
                beyond ``self.logger``).

        Returns:
            ``self``.
        """
        total_timesteps, log_interval = check_learn_arguments(total_timesteps, log_interval)
        tb_log_name = check_run_name(tb_log_name)
        reset_num_timesteps = check_flag("reset_num_timesteps", reset_num_timesteps)
        progress_bar = check_flag("progress_bar", progress_bar)
        with torch_threads_set(resolve_torch_threads(self.torch_threads)):
            end, callbacks = self._begin_learn(
                total_timesteps, logger, reset_num_timesteps, callback, log_interval, tb_log_name
            )
            bar = self._make_progress_bar(progress_bar, total_timesteps)
            try:
                self._run_loop(end, callbacks, log_interval, bar)
                callbacks.on_training_end()
            finally:
                self._end_learn()
                if bar is not None:
                    bar.close()
        return self

    @abstractmethod
    def _run_loop(
        self, end: int, callbacks: TrainingCallback, log_interval: int | None, bar: Any
    ) -> None:
        """Collect experience and update until step ``end`` or a callback stops (the family's
        loop); ``bar`` is the progress bar or None."""

    @abstractmethod
    def modules(self) -> dict[str, nn.Module]:
        """Return the networks whose weights go into checkpoints, by name."""

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Return the optimizers whose state goes into checkpoints, by name."""
        return {}

    # -- observations and actions -------------------------------------------------------------
    def _check_observations(self, observations: Any) -> tuple[Observation, bool]:
        """Return ``predict``'s observations as arrays and whether they are a batch.

        Raises:
            ValueError: None, a mapping for a non-``Dict`` space (or a non-mapping for one),
                a missing key, values that are not real numbers (str, object, complex), a
                shape that is neither the space's nor a batch of it, an empty batch, keys with
                batches of different sizes, or NaN/inf (a robot must not act on them).
        """
        space = self.observation_space
        if not isinstance(space, gym.spaces.Dict):
            if observations is None:
                raise ValueError(f"observation is None; expected {_expected_shapes(space)}")
            if isinstance(observations, Mapping):  # e.g. a goal env's observation
                raise ValueError(
                    f"this agent takes a {type(space).__name__} observation, got a dict with "
                    f"keys {sorted(map(str, observations))}; expected {_expected_shapes(space)}"
                )
            return _check_observation_array("observation", observations, space)
        if not isinstance(observations, Mapping):
            raise ValueError(
                f"observation must be a dict with keys {sorted(space.spaces)} for {space}, got "
                f"{type(observations).__name__}"
            )
        arrays, batch_sizes = {}, {}
        for key, item in space.spaces.items():
            if key not in observations:
                raise ValueError(f"observation is missing key {key!r} (has {sorted(observations)})")
            arrays[key], batched = _check_observation_array(
                f"observation[{key!r}]", observations[key], item
            )
            batch_sizes[key] = len(arrays[key]) if batched else None
        if len(set(batch_sizes.values())) > 1:
            raise ValueError(f"observation keys hold different batch sizes: {batch_sizes}")
        return arrays, next(iter(batch_sizes.values())) is not None

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
        deterministic = check_flag("deterministic", deterministic)
        observation, batched = self._check_observations(observation)
        if not batched:
            if isinstance(observation, dict):
                observation = {k: np.asarray(v)[None] for k, v in observation.items()}
            else:
                observation = np.asarray(observation)[None]
        with torch.inference_mode():
            actions = self._predict_actions(self.obs_to_tensor(observation), deterministic)
        actions = self.actions_to_env(actions.cpu().numpy())
        return (actions if batched else actions[0]), state

    # -- SB3's methods and attributes ---------------------------------------------------------
    def get_env(self) -> Any:
        """Return the env ``learn`` trains in as SB3 does: a ``VecEnv``, or None without an env.

        It is the SB3 VecEnv the agent was given, or a ``VecEnvView`` of the agent's own
        Gymnasium vector env (``agent.env``) in a ``VecMonitor``, so SB3 scripts step it with
        SB3's API (``obs = env.reset()``; ``obs, rewards, dones, infos = env.step(actions)``)
        and SB3's ``evaluate_policy`` and callbacks take it.
        """
        if self.env is None:
            return None
        given = get_sb3_vec_env(self.env)
        if given is not None:
            return given
        if self._env_view is None or self._env_view.env is not self.env:
            # SB3 is imported only here: agents that no one asks for a VecEnv run without it.
            from stable_baselines3.common.vec_env import VecMonitor

            from rlrobot.vec.sb3_view import VecEnvView

            # SB3's own get_env() gives Monitor-wrapped envs: evaluate_policy and EvalCallback
            # read info["episode"] (the env's own returns) and do not warn.
            self._env_view = VecMonitor(VecEnvView(self.env))
        return self._env_view

    def set_env(self, env: EnvSpec | gym.vector.VectorEnv, force_reset: bool = True) -> None:
        """Train in ``env`` from now on (SB3's ``set_env``): same spaces, same number of envs.

        Args:
            env: Env id, env instance, factory or vector env (made as ``make_vec_env`` makes
                them, with this agent's ``n_envs``).
            force_reset: Start new episodes at the next ``learn`` (else continue from the
                observations the old env was at, as SB3 does).

        Raises:
            UnsupportedEnvError: The spaces or the number of envs differ from the agent's.
        """
        vector_env = make_vec_env(env, self.n_envs)
        found = {
            "observation space": (vector_env.single_observation_space, self.observation_space),
            "action space": (vector_env.single_action_space, self.action_space),
            "number of envs": (vector_env.num_envs, self.n_envs),
        }
        for name, (given, expected) in found.items():
            if given != expected:
                if vector_env is not env:
                    vector_env.close()  # made here: nothing else holds it
                raise UnsupportedEnvError(
                    f"set_env: the env's {name} {given} differs from the agent's {expected}; "
                    f"make a new agent, or load one with {type(self).__name__}.load(path, env=…)"
                )
        self.env = vector_env
        if force_reset:
            self._last_observations = None

    def get_vec_normalize_env(self) -> Any:
        """Return the SB3 ``VecNormalize`` of the training env, or None (as SB3's method does).

        An SB3 ``VecNormalize`` passed as ``env`` runs as under SB3: it normalises what the
        agent sees and is saved by the user (``vec_normalize.save(path)``), not by ``save``.
        """
        return get_vec_normalize(self.env)

    def set_logger(self, logger: Any) -> None:
        """Log through ``logger`` from now on, in every ``learn`` call (SB3's ``set_logger``).

        Any object with SB3's ``record(key, value, exclude=None)`` and ``dump(step)`` works: ours
        (``rlrobot.common.logger.Logger``) or SB3's ``stable_baselines3.common.logger.configure``.
        """
        self.logger, self._custom_logger = logger, True

    @property
    def ep_info_buffer(self) -> deque[dict[str, float]]:
        """SB3's recent finished episodes, ``{"r": return, "l": length}``, oldest first."""
        tracker = self.episode_tracker
        episodes = zip(tracker.recent_returns, tracker.recent_lengths, strict=True)
        return deque(
            ({"r": ret, "l": length} for ret, length in episodes),
            maxlen=tracker.recent_returns.maxlen,
        )

    @property
    def ep_success_buffer(self) -> deque[float]:
        """SB3's success flags (1.0/0.0) of the recent episodes that reported ``is_success``."""
        successes = self.episode_tracker.recent_successes
        return deque(successes, maxlen=successes.maxlen)

    def dump_logs(self) -> None:
        """Write the episode statistics (and, inside ``learn``, SB3's ``time/…`` keys) now."""
        for key, value in self.episode_tracker.summary().items():
            self.logger.record(key, value)
        if self._clock is not None:
            self._record_time()
        self.logger.dump(self.num_timesteps)

    def get_parameters(self) -> dict[str, dict[str, Any]]:
        """Return the weights and optimizer states, keyed like SB3's ``get_parameters``.

        ``"policy"`` holds the networks' state dict (for agents with several networks, each
        one's keys prefixed by its name: ``actor.…``, ``critic.…``, ``critic_target.…``, as in
        SB3's SAC policy); each optimizer is ``"<network>.optimizer"`` (``"policy.optimizer"``,
        ``"actor.optimizer"``, ``"critic.optimizer"``).
        """
        parameters: dict[str, dict[str, Any]] = {"policy": self._policy_state_dict()}
        for name, optimizer in self.optimizers().items():
            parameters[_optimizer_key(name)] = optimizer.state_dict()
        return parameters

    def set_parameters(
        self,
        load_path_or_dict: str | os.PathLike | dict[str, dict[str, Any]],
        exact_match: bool = True,
        device: str | torch.device = "auto",
    ) -> None:
        """Load what ``get_parameters`` returns, or the parameters of a saved agent.

        Args:
            load_path_or_dict: A dict as ``get_parameters`` returns, or a checkpoint's path.
            exact_match: Require every entry and every key of each state dict (as SB3 does);
                False loads what is given.
            device: Where a checkpoint is read to (the weights then go to this agent's device).

        Raises:
            ValueError: ``exact_match`` and the entries or keys differ from this agent's, or an
                optimizer state does not fit its optimizer (``check_optimizer_state``).
        """
        if isinstance(load_path_or_dict, dict):
            parameters = load_path_or_dict
        else:
            parameters = type(self).load(load_path_or_dict, device=device).get_parameters()
        expected = set(self.get_parameters())
        unknown = set(parameters) - expected
        if unknown or (exact_match and set(parameters) != expected):
            raise ValueError(
                f"set_parameters: names of parameters do not match the agent's: expected "
                f"{sorted(expected)}, got {sorted(parameters)}"
            )
        optimizers = {
            _optimizer_key(name): optimizer
            for name, optimizer in self.optimizers().items()
            if _optimizer_key(name) in parameters
        }
        # Checked as a checkpoint's are, all before anything is loaded.
        for key, optimizer in optimizers.items():
            check_optimizer_state(f"set_parameters: {key}", optimizer, parameters[key])
        if "policy" in parameters:
            self._load_policy_state_dict(parameters["policy"], exact_match)
        for key, optimizer in optimizers.items():
            load_optimizer_state(optimizer, parameters[key])

    def _policy_state_dict(self) -> dict[str, torch.Tensor]:
        modules = self.modules()
        if list(modules) == ["policy"]:
            return modules["policy"].state_dict()
        return {
            f"{name}.{key}": value
            for name, module in modules.items()
            for key, value in module.state_dict().items()
        }

    def _load_policy_state_dict(self, state: dict[str, torch.Tensor], strict: bool) -> None:
        modules = self.modules()
        if list(modules) == ["policy"]:
            modules["policy"].load_state_dict(state, strict=strict)
            return
        for name, module in modules.items():
            prefix = f"{name}."
            own = {key[len(prefix) :]: v for key, v in state.items() if key.startswith(prefix)}
            module.load_state_dict(own, strict=strict)
        known = {f"{name}.{key}" for name, m in modules.items() for key in m.state_dict()}
        if strict and set(state) - known:
            raise ValueError(f"set_parameters: unexpected policy keys {sorted(set(state) - known)}")

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
        logger: Any,
        reset_num_timesteps: bool,
        callback: Callback,
        log_interval: int | None = None,
        tb_log_name: str | None = None,
    ) -> tuple[int, TrainingCallback]:
        """Check the arguments, start the clock, the first episodes and the callback.

        Args:
            total_timesteps: Env steps to run.
            logger: ``learn``'s logger (None: the one ``set_logger`` set, else one writing
                where ``verbose`` and ``tensorboard_log`` say).
            reset_num_timesteps: Count steps from 0 (the episodes in progress go on).
            callback: ``learn``'s callback, in any form ``make_callback`` takes.
            log_interval: ``learn``'s (None: the config's).
            tb_log_name: ``learn``'s: the TensorBoard run name (None: the class name, as
                SB3's default is), also given to the callback's locals.

        Returns:
            ``(end, callback)``: the step training stops at, and the callback's hooks (their
            ``on_training_start`` already called).
        """
        if self.env is None:
            raise RuntimeError("this agent has no env; load it with env=… to train it")
        check_callback(callback)
        if reset_num_timesteps:
            self.num_timesteps = 0
        tb_log_name = tb_log_name or type(self).__name__
        if logger is not None:
            self.logger = logger
        elif not self._custom_logger:
            self.logger = self._make_default_logger(tb_log_name, reset_num_timesteps)
        if self._last_observations is None:
            self.start_new_episodes(self.seed)
        self._learn_start, self._learn_total = self.num_timesteps, total_timesteps
        end = self.num_timesteps + total_timesteps
        # Made after the logger is set: SB3 callbacks read ``model.logger``.
        hooks = make_callback(callback, self)
        self._clock = (time.perf_counter(), self.num_timesteps)
        hooks.on_training_start(
            {
                "total_timesteps": end,
                "callback": callback,
                "reset_num_timesteps": reset_num_timesteps,
                "log_interval": log_interval,
                "tb_log_name": tb_log_name,
            }
        )
        return end, hooks

    def _make_default_logger(self, tb_log_name: str, reset_num_timesteps: bool) -> Logger:
        """SB3's ``configure_logger``: stdout if verbose, TensorBoard under tensorboard_log."""
        outputs = ("stdout",) if self.verbose >= 1 else ()
        if self.tensorboard_log is None:
            return Logger(outputs=outputs)
        run_id = latest_run_id(self.tensorboard_log, tb_log_name)
        if reset_num_timesteps:
            run_id += 1  # a new run; continuing training keeps writing to the latest one
        folder = Path(self.tensorboard_log) / f"{tb_log_name}_{max(run_id, 1)}"
        return Logger(folder, outputs=(*outputs, "tensorboard"))

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
        learning_rate = self.config.schedule_value(
            "learning_rate", self.current_progress_remaining()
        )
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
                load_optimizer_state(optimizer, state["optimizers"][name])
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

    def _check_env_for_replay_buffer(self) -> None:
        """Raise unless the agent has an env, which a replay buffer is built for."""
        if self.env is None:
            name = type(self).__name__
            raise RuntimeError(
                f"this {name} has no env, so no replay buffer; give it one: {name}(policy, env), "
                f"set_env(env) or {name}.load(path, env=env)"
            )

    def _ensure_replay_buffer(self) -> ReplayBuffer:
        if self.replay_buffer is None:
            self._check_env_for_replay_buffer()
            self.replay_buffer = self._make_replay_buffer()
        return self.replay_buffer

    def save_replay_buffer(self, path: str | os.PathLike) -> Path:
        """Write the replay buffer to an ``.npz`` file (arrays only; suffix added if missing).

        An off-policy agent has its (empty) buffer from the moment it has an env, as in SB3.
        """
        if self.replay_buffer is None:
            self._check_env_for_replay_buffer()
            raise RuntimeError(
                f"{type(self).__name__} has no replay buffer (an on-policy agent holds one only "
                "with reward_redistribution='rrd', from its first learn)"
            )
        return self.replay_buffer.save(path)

    def load_replay_buffer(self, path: str | os.PathLike) -> None:
        """Fill the replay buffer from a file written by ``save_replay_buffer``."""
        self._ensure_replay_buffer().load(path)

    def save(
        self,
        path: str | os.PathLike,
        exclude: Iterable[str] | None = None,
        include: Iterable[str] | None = None,
        *,
        include_training_state: bool = True,
        include_replay_buffer: bool = False,
        include_episodes: bool = False,
    ) -> Path:
        """Save weights, normalisers, config and spaces (and optimizer/RNG state) to ``path``.

        As in SB3, ``save("model")`` writes one file, ``model.zip`` (a name with a suffix is
        kept as given); it holds ``model.safetensors`` and ``metadata.json``, no pickle. An
        existing directory, or a path ending in ``/``, gets those files as a checkpoint
        directory instead (what ``rlrobot train`` writes). ``verbose``, ``tensorboard_log``,
        ``seed`` and ``stats_window_size`` are saved too, and ``load`` sets them again.

        Args:
            path: The file (``.zip`` added to a name without suffix) or directory.
            exclude: SB3's attribute names to leave out: ``verbose``, ``tensorboard_log``,
                ``seed``, ``_stats_window_size`` (``load`` then gives the default), or those
                SB3 leaves out anyway (``env``, ``replay_buffer`` …: no change).
            include: SB3's names to add: ``replay_buffer`` (``include_replay_buffer``),
                ``_last_obs`` (``include_episodes``); see ``checkpointing.resolve_save_contents``.
            include_training_state: Save optimizer, RNG and training-time state (False: only
                what ``predict`` and the step count need).
            include_replay_buffer: Add the replay buffer as ``replay_buffer.npz``.
            include_episodes: With the training state, add the episodes in progress
                (``get_episode_state``; env snapshots as uint8 tensors), which ``load(…,
                force_reset=False)`` continues.

        Returns:
            The file or directory written.

        Raises:
            ConfigError: An ``exclude``/``include`` name an rlrobot checkpoint has no part for,
                or one it cannot hold (a live object such as ``env``).
        """
        contents = resolve_save_contents(
            exclude, include, include_training_state, include_replay_buffer, include_episodes
        )
        return save_agent(self, path, contents)

    @classmethod
    def load(
        cls: type[AgentT],
        path: str | os.PathLike,
        env: EnvSpec | gym.vector.VectorEnv | None = None,
        device: str | torch.device = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        *,
        n_envs: int | None = None,
        vec_env: str = "sync",
        env_kwargs: dict[str, Any] | None = None,
        worker_timeout_s: float | None = None,
        seed: int | None = None,
        load_replay_buffer: bool = True,
        **kwargs: Any,
    ) -> AgentT:
        """Load an agent saved with ``save``, or the policy of a Stable-Baselines3 ``.zip``.

        SB3's signature; the keywords after ``force_reset`` are ours.

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
                for the learning rate, a constant or a schedule). Merged with ``kwargs``.
            print_system_info: Print the versions the checkpoint was saved with and today's.
            force_reset: Start new episodes at the next ``learn`` (SB3's default); False
                continues the episodes a checkpoint saved with ``include_episodes=True`` holds
                (where ``seed`` is None and ``n_envs`` the same).
            n_envs: Number of envs for ``env`` (default: as many as the agent was saved with,
                which its ``batch_size`` may need; 1 for an env instance).
            vec_env: ``"sync"``, ``"async"``, ``"shm"`` or ``"shm_workers"`` (see ``make_vec_env``).
            env_kwargs: Keyword arguments for ``gym.make``.
            worker_timeout_s: Limit of an env worker's step or reset (see ``make_vec_env``).
            seed: Seed for the new envs (the RNG state of the checkpoint is restored otherwise,
                and the saved ``seed`` seeds the next new episodes, as in SB3).
            load_replay_buffer: Also restore ``replay_buffer.npz`` when present (with an env).
            **kwargs: As in SB3, saved values to change: any config field (e.g.
                ``learning_rate=1e-4``; SB3's argument names converted as the constructor does),
                ``verbose``, ``tensorboard_log``, ``stats_window_size``; ``policy_kwargs`` must
                describe the saved networks. Anything else is a ``ConfigError`` naming it.

        Raises:
            CheckpointError: Missing/corrupt checkpoint, another algorithm, other spaces.
            ConfigError: An unknown keyword, a bad value, or ``policy_kwargs`` that differ from
                the saved networks (SB3 raises ValueError, which ConfigError is).
        """
        for name, value in (("print_system_info", print_system_info), ("force_reset", force_reset)):
            if not isinstance(value, bool):
                raise ConfigError(f"load: {name} must be True or False, got {value!r}")
        seed = check_seed(seed)
        target = LoadTarget(
            env, device, n_envs, vec_env, env_kwargs, worker_timeout_s, seed, force_reset
        )
        return load_agent(
            cls, path, target, load_replay_buffer, custom_objects, kwargs, print_system_info
        )
