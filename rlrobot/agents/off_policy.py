"""The off-policy loop shared by SAC and TD3: act → store → sample → update, step by step.

Actions are kept in ``[-1, 1]`` inside the agent (policies end in ``tanh``) and mapped to the
Box bounds only when sent to the env, so the buffer, the critics and the target smoothing work
in one scale. The twin critics are one ``CriticEnsemble``: both Q-networks' layers are stacked
and evaluated by one batched matmul per layer, and the actor loss reads them with detached
weights so no critic weight gradient is computed that the actor step would throw away.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlrobot.agents.base import BaseAgent, Callback
from rlrobot.agents.config import AgentConfig
from rlrobot.agents.her import ComputeReward, HerReplayBuffer, check_goal_space, get_compute_reward
from rlrobot.agents.redistribution import RewardRedistributor
from rlrobot.agents.sb3_arguments import build_features_extractor
from rlrobot.common.config import option
from rlrobot.common.env_util import get_final_observations
from rlrobot.common.networks import (
    MATMUL_DTYPES,
    activation_after_linear,
    hidden_layers_precision,
    hidden_matmul_dtype,
    make_adam,
    stats_to_floats,
    to_tensors,
)
from rlrobot.common.normalization import ObservationNormalizer
from rlrobot.common.replay_buffer import ReplayBuffer, ReplaySample
from rlrobot.errors import ConfigError, UnsupportedEnvError


@dataclass
class OffPolicyConfig(AgentConfig):
    """Hyperparameters shared by the off-policy agents (defaults as in SB3's SAC)."""

    learning_rate: float = option(3e-4, "Adam step size of the actor, critics and α")
    buffer_size: int = option(1_000_000, "transitions kept in the replay buffer")
    learning_starts: int = option(100, "env steps of uniform random actions before learning")
    batch_size: int = option(256, "minibatch size of each gradient step")
    tau: float = option(0.005, "Polyak coefficient τ of the target networks (1: hard copy)")
    train_freq: int = option(1, "vector-env steps between two training phases")
    gradient_steps: int = option(
        1, "gradient steps per training phase (-1: as many as env steps collected)"
    )
    n_steps: int = option(1, "length of the n-step returns (1: one-step TD targets)")
    net_arch: tuple[int, ...] = option((256, 256), "hidden layer sizes of the actor and critics")
    activation: str = option("relu", "hidden activation: relu, tanh, elu, gelu, silu")
    replay_buffer: Literal["standard", "her"] = option(
        "standard", "replay buffer: standard, or her (hindsight relabelling, goal envs)"
    )
    goal_selection_strategy: Literal["future", "final", "episode"] = option(
        "future", "HER: where relabelled goals come from"
    )
    n_sampled_goal: int = option(4, "HER: relabelled goals per real one (k)")
    n_critics: int = option(2, "Q-networks of the critic ensemble (targets use their minimum)")
    matmul_dtype: Literal["float32", "bfloat16"] = option(
        "float32",
        "precision of the hidden layers' matmuls in the updates: float32, or bfloat16 (mixed "
        "precision: weights, outputs, losses and acting stay float32)",
    )
    log_interval: int = option(1000, "log every this many env steps")

    def validate(self) -> None:
        """Check value ranges."""
        super().validate()
        self._require(self.buffer_size >= 1, "buffer_size", "must be >= 1")
        self._require(self.learning_starts >= 0, "learning_starts", "must be >= 0")
        self._require(self.batch_size >= 1, "batch_size", "must be >= 1")
        self._require(0 < self.tau <= 1, "tau", "must be in (0, 1]")
        self._require(self.train_freq >= 1, "train_freq", "must be >= 1")
        self._require(
            self.gradient_steps >= 1 or self.gradient_steps == -1,
            "gradient_steps",
            "must be >= 1 or -1",
        )
        self._require(self.n_steps >= 1, "n_steps", "must be >= 1")
        self._require(self.n_sampled_goal >= 1, "n_sampled_goal", "must be >= 1")
        self._require(self.n_critics >= 1, "n_critics", "must be >= 1")


class EnsembleLinear(nn.Module):
    """``n_members`` independent linear layers evaluated by one batched matmul (a broadcast
    multiply-and-sum when ``out_dim`` is 1).

    Weights ``(n_members, in_dim, out_dim)`` are initialised like ``nn.Linear``
    (uniform in ``±1/sqrt(in_dim)``).
    """

    def __init__(self, n_members: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_dim)
        self.weight = nn.Parameter(torch.empty(n_members, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n_members, 1, out_dim).uniform_(-bound, bound))

    def forward(self, inputs: torch.Tensor, detach: bool = False, members: int = 0) -> torch.Tensor:
        """Map ``(n_members, batch, in_dim)`` to ``(n_members, batch, out_dim)``.

        Args:
            inputs: Per-member inputs; a ``(batch, in_dim)`` input is shared by all members.
            detach: Use detached weights (gradients reach the inputs only).
            members: Evaluate only the first ``members`` members (0: all).
        """
        weight, bias = self.weight, self.bias
        if members:
            weight, bias = weight[:members], bias[:members]
        if detach:
            weight, bias = weight.detach(), bias.detach()
        if weight.shape[2] == 1:
            # A matrix-vector product: bmm is ~5× slower at it (forward and backward) than a
            # broadcast multiply and sum.
            return (inputs * weight.transpose(1, 2)).sum(dim=2, keepdim=True) + bias
        if inputs.dim() == 2:
            inputs = inputs.expand(weight.shape[0], *inputs.shape)
        return torch.baddbmm(bias, inputs, weight)


class CriticEnsemble(nn.Module):
    """``n_critics`` Q-networks ``Q_i(s, a)`` on a shared observation feature extractor.

    Args:
        features_extractor: The critic's own observation feature extractor.
        action_dim: Size of the (1-D) action.
        net_arch: Hidden layer sizes of each Q-network.
        activation: Hidden activation name.
        n_critics: Number of Q-networks (2 for clipped double Q-learning).

    The hidden layers follow ``hidden_matmul_dtype`` scopes; the output layer stays float32
    so Q-values keep their resolution.
    """

    def __init__(
        self,
        features_extractor: nn.Module,
        action_dim: int,
        net_arch: tuple[int, ...],
        activation: str,
        n_critics: int = 2,
    ) -> None:
        super().__init__()
        self.features_extractor = features_extractor
        sizes = [self.features_extractor.features_dim + action_dim, *net_arch]
        self.hidden_layers = nn.ModuleList(
            EnsembleLinear(n_critics, sizes[i], sizes[i + 1]) for i in range(len(net_arch))
        )
        self.output_layer = EnsembleLinear(n_critics, sizes[-1], 1)
        self.activation = activation_after_linear(activation)

    def forward(
        self,
        observations: Any,
        actions: torch.Tensor,
        detach: bool = False,
        members: int = 0,
    ) -> torch.Tensor:
        """Return Q-values ``(n_critics, batch)`` (or ``(members, batch)``).

        Args:
            observations: A batch of observations.
            actions: ``(batch, action_dim)`` actions in ``[-1, 1]``.
            detach: Treat the critic as a fixed function: gradients flow to ``actions`` only.
            members: Evaluate only the first ``members`` Q-networks (0: all).
        """
        if detach:
            with torch.no_grad():
                features = self.features_extractor(observations)
        else:
            features = self.features_extractor(observations)
        hidden = torch.cat([features, actions], dim=1)
        with hidden_layers_precision(hidden):
            for layer in self.hidden_layers:
                hidden = self.activation(layer(hidden, detach, members))
        return self.output_layer(hidden.float(), detach, members).squeeze(-1)


class Actor(nn.Module):
    """Base of SAC's and TD3's actors: the feature extractor every head reads from."""

    def __init__(self, features_extractor: nn.Module) -> None:
        super().__init__()
        self.features_extractor = features_extractor


class OffPolicyPolicy(nn.Module):
    """SB3's ``policy`` of SAC and TD3, a module holding the agent's networks (still the agent's).

    Args:
        agent: The agent whose ``modules()`` (``actor``, ``critic``, ``critic_target``, TD3's
            ``actor_target``, SAC's ``entropy``) it shows as attributes, with its ``predict``.
    """

    def __init__(self, agent: OffPolicyAgent) -> None:
        super().__init__()
        for name, module in agent.modules().items():
            self.add_module(name, module)
        self.predict = agent.predict


class OffPolicyAgent(BaseAgent):
    """Base of SAC and TD3: replay buffer, env interaction, training schedule, logging.

    Subclasses build their networks in ``_setup`` (after ``super()._setup()``, with
    ``_setup_actor_and_critics``, then their ``actor_optimizer``), implement
    ``_predict_actions`` (actions in ``[-1, 1]``) and ``train_step(batch) -> stats``.
    """

    config_class = OffPolicyConfig
    config: OffPolicyConfig

    def _setup(self) -> None:
        name, space = type(self).__name__, self.action_space
        if not (isinstance(space, gym.spaces.Box) and len(space.shape) == 1):
            raise UnsupportedEnvError(f"{name} needs a 1-D Box action space, got {space}")
        # The policy's actions in [-1, 1] are scaled to the bounds, which must exist.
        if not (np.isfinite(space.low).all() and np.isfinite(space.high).all()):
            raise UnsupportedEnvError(
                f"{name} needs finite action bounds, got {space}; declare the range the "
                "actions should take, e.g. gymnasium.wrappers.TransformAction(env, lambda a: "
                "a, Box(low, high))"
            )
        self._compute_reward: ComputeReward | None = None
        if self.config.replay_buffer == "her":
            check_goal_space(self.observation_space)
            if self.env is not None:
                # Taken now so that an env without one is refused here, not inside learn().
                self._compute_reward = get_compute_reward(self.env)
        if self.config.normalize_observations:
            self.obs_normalizer = ObservationNormalizer(
                self.observation_space, clip=self.config.clip_observations
            )
        self.action_dim = int(self.action_space.shape[0])
        low, high = self.action_space.low, self.action_space.high
        self._action_center, self._action_scale = (high + low) / 2.0, (high - low) / 2.0
        self.n_updates = 0
        self._setup_redistribution()

    def _setup_redistribution(self) -> None:
        """Check ``reward_redistribution`` against the buffer; build RRD's reward model."""
        config = self.config
        if config.reward_redistribution is None:
            return
        if config.replay_buffer == "her":
            raise ConfigError(
                "config key 'reward_redistribution': HER recomputes rewards with the env's "
                "compute_reward, which a delayed reward does not have; use replay_buffer=standard"
            )
        if config.reward_redistribution == "rrd":
            if config.n_steps != 1:
                raise ConfigError(
                    "config key 'reward_redistribution': rrd learns from one-step rewards r̂(s, "
                    f"a, s′); set n_steps=1 (got {config.n_steps}) or use uniform"
                )
            # The buffer stores actions in [-1, 1]: the reward model sees them so.
            stored_actions = gym.spaces.Box(-1.0, 1.0, (self.action_dim,), dtype=np.float32)
            self.reward_redistributor = RewardRedistributor(
                self.observation_space, stored_actions, config, self.device
            )

    def _setup_actor_and_critics(self, actor_class: Callable[..., Actor]) -> None:
        """Build the actor and the twin critics, their Polyak target and their optimizer.

        Args:
            actor_class: SAC's or TD3's actor, called as ``actor_class(features_extractor,
                action_dim, config)``.
        """
        config = self.config
        features_extractor = build_features_extractor(
            config, self.observation_space, self._image_encoder, self._freeze_encoder
        )
        self.actor = actor_class(features_extractor, self.action_dim, config).to(self.device)
        # The critic learns its own copy of the encoder, as it has its own default CNN.
        critic_extractor = build_features_extractor(
            config,
            self.observation_space,
            copy.deepcopy(self._image_encoder),
            self._freeze_encoder,
        )
        self.critic = CriticEnsemble(
            critic_extractor,
            self.action_dim,
            config.critic_net_arch if config.critic_net_arch is not None else config.net_arch,
            config.activation,
            config.n_critics,
        ).to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.critic_optimizer = make_adam(list(self.critic.parameters()), self.config.learning_rate)

    @property
    def policy(self) -> OffPolicyPolicy:
        """SB3's ``model.policy``: the networks (``actor``, ``critic`` …) and ``predict``."""
        return OffPolicyPolicy(self)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Return the actor optimizer (SAC's also steps ``log α``) and the critic optimizer."""
        return {"actor_optimizer": self.actor_optimizer, "critic_optimizer": self.critic_optimizer}

    # -- actions ------------------------------------------------------------------------------
    def actions_to_env(self, actions: np.ndarray) -> np.ndarray:
        """Map policy actions in ``[-1, 1]`` to the Box bounds."""
        return self._action_center + self._action_scale * np.clip(actions, -1.0, 1.0)

    def _explore_actions(self, observations: Any) -> torch.Tensor:
        """Actions in ``[-1, 1]`` to collect data with (SAC: samples; TD3 adds noise)."""
        return self._predict_actions(observations, deterministic=False)

    # -- replay buffer ------------------------------------------------------------------------
    def _make_replay_buffer(self) -> ReplayBuffer:
        config = self.config
        common = {
            "n_envs": self.n_envs,
            "gamma": config.gamma,
            "n_steps": config.n_steps,
            "seed": self.seed,
        }
        if config.replay_buffer == "her":
            assert self._compute_reward is not None  # set in _setup whenever there is an env
            return HerReplayBuffer(
                config.buffer_size,
                self.observation_space,
                self.action_space,
                self._compute_reward,
                n_sampled_goal=config.n_sampled_goal,
                goal_selection_strategy=config.goal_selection_strategy,
                **common,
            )
        return ReplayBuffer(
            config.buffer_size,
            self.observation_space,
            self.action_space,
            reward_redistribution=config.reward_redistribution,
            **common,
        )

    def get_training_state(self) -> dict[str, Any]:
        """Return ``BaseAgent``'s training state plus the update counter (TD3's policy delay)."""
        return {**super().get_training_state(), "n_updates": self.n_updates}

    def set_training_state(self, state: dict[str, Any], restore_rng: bool = True) -> None:
        """Restore a state returned by ``get_training_state``."""
        super().set_training_state(state, restore_rng)
        self.n_updates = int(state.get("n_updates", 0))

    def sample_batch(self, batch_size: int) -> ReplaySample:
        """Sample ``batch_size`` transitions as device tensors (observations normalised if enabled).

        Under RRD the rewards are the reward model's ``r̂(s, a, s′)`` of the sampled
        transitions instead of the rewards the env paid.
        """
        batch = self.replay_buffer.sample(batch_size)
        observations = to_tensors(batch.observations, self.device)
        next_observations = to_tensors(batch.next_observations, self.device)
        actions = to_tensors(batch.actions, self.device)
        rewards = to_tensors(batch.rewards, self.device)
        if self.reward_redistributor is not None:
            # The reward model reads observations as stored, before any normalisation.
            rewards = self.reward_redistributor.predict(observations, actions, next_observations)
        if self.obs_normalizer is not None:
            observations = to_tensors(
                self.obs_normalizer.normalize(batch.observations), self.device
            )
            next_observations = to_tensors(
                self.obs_normalizer.normalize(batch.next_observations), self.device
            )
        return ReplaySample(
            observations,
            actions,
            rewards,
            next_observations,
            to_tensors(batch.discounts, self.device),
        )

    # -- update -------------------------------------------------------------------------------
    def train_step(self, batch: ReplaySample) -> dict[str, torch.Tensor]:
        """One gradient step on a minibatch; return detached ``train/…`` statistics."""
        raise NotImplementedError

    def train(self, gradient_steps: int, batch_size: int) -> dict[str, torch.Tensor]:
        """Run ``gradient_steps`` updates on minibatches of ``batch_size`` (as SB3's ``train``).

        Returns:
            The statistics of the last update.
        """
        stats: dict[str, torch.Tensor] = {}
        reward_model_loss = None
        with hidden_matmul_dtype(MATMUL_DTYPES[self.config.matmul_dtype]):
            for _ in range(gradient_steps):
                if self.reward_redistributor is not None:
                    # RRD interleaves reward-model and agent updates (Ren et al., Alg. 1).
                    reward_model_loss = self.reward_redistributor.train(self.replay_buffer)
                stats = self.train_step(self.sample_batch(batch_size))
                self.n_updates += 1
        if reward_model_loss is not None:
            stats["train/reward_model_loss"] = reward_model_loss
        return stats

    # -- main loop ----------------------------------------------------------------------------
    def collect_step(self, random_actions: bool) -> dict[str, Any]:
        """Take one vector-env step, store its transitions and return them (callbacks' locals)."""
        observations = self._last_observations
        if random_actions:
            actions = np.random.uniform(-1.0, 1.0, (self.n_envs, self.action_dim))  # noqa: NPY002
            actions = actions.astype(np.float32)
        else:
            with torch.inference_mode():
                actions = self._explore_actions(self.obs_to_tensor(observations)).cpu().numpy()
        next_observations, rewards, terminated, truncated, infos = self.env.step(
            self.actions_to_env(actions)
        )
        episode_ends = terminated | truncated
        self.episode_tracker.update(rewards, episode_ends, infos)
        real_next_observations, _ = get_final_observations(next_observations, infos)
        self.replay_buffer.add(
            observations, actions, rewards, real_next_observations, terminated, episode_ends
        )
        if self.obs_normalizer is not None:
            self.obs_normalizer.update(next_observations)
        self._last_observations = next_observations
        self.num_timesteps += self.n_envs
        return {
            "actions": actions,
            "buffer_actions": actions,
            "new_obs": next_observations,
            "rewards": rewards,
            "dones": episode_ends,
            "terminated": terminated,
            "truncated": truncated,
            "infos": infos,
        }

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
    ) -> OffPolicyAgent:
        """Train for ``total_timesteps`` env steps (over all envs; SB3's signature).

        Args:
            total_timesteps: Env steps to run.
            callback: ``callback(agent)`` after every vector step, an SB3 ``BaseCallback`` or a
                list of them; returning False stops (see ``rlrobot.agents.callbacks``).
            log_interval: Log every this many episodes, as SB3 counts it (None: every
                ``log_interval`` env steps of the config).
            tb_log_name: The TensorBoard run name under ``tensorboard_log`` (None: the class name).
            reset_num_timesteps: Count ``num_timesteps`` from 0 (SB3's default); False continues
                the count (and the schedules), as a resumed run does.
            progress_bar: Show a tqdm bar (only on a terminal and outside CI).
            logger: Where statistics go (default: the ``set_logger`` one, else none kept
                beyond ``self.logger``).

        Returns:
            ``self``.
        """
        end, callbacks = self._begin_learn(
            total_timesteps, logger, reset_num_timesteps, callback, log_interval, tb_log_name
        )
        self._ensure_replay_buffer()
        config = self.config
        gradient_steps = (
            config.gradient_steps if config.gradient_steps > 0 else config.train_freq * self.n_envs
        )
        bar = self._make_progress_bar(progress_bar, total_timesteps)
        # Log at multiples of log_interval, so a resumed run logs at the same steps.
        next_log = (self.num_timesteps // config.log_interval + 1) * config.log_interval
        logged_episodes = self.episode_tracker.n_episodes
        vector_steps, stats, learning_rate = 0, {}, self._update_learning_rate()
        try:
            while self.num_timesteps < end:
                if vector_steps % config.train_freq == 0:
                    callbacks.on_rollout_start()
                step = self.collect_step(random_actions=self.num_timesteps < config.learning_starts)
                vector_steps += 1
                if not callbacks.on_step(step):
                    break
                if vector_steps % config.train_freq == 0:
                    callbacks.on_rollout_end()
                if (
                    vector_steps % config.train_freq == 0
                    and self.num_timesteps > config.learning_starts
                    and self.replay_buffer.can_sample()
                ):
                    if config.lr_schedule != "constant":
                        learning_rate = self._update_learning_rate()
                    stats = self.train(gradient_steps, config.batch_size)
                if bar is not None:
                    bar.update(self.n_envs)
                if log_interval is None:
                    log_now = self.num_timesteps >= next_log
                else:
                    episodes = self.episode_tracker.n_episodes
                    log_now = episodes // log_interval > logged_episodes // log_interval
                    logged_episodes = episodes
                if log_now or self.num_timesteps >= end:
                    next_log = (self.num_timesteps // config.log_interval + 1) * config.log_interval
                    values = {**self.episode_tracker.summary(), **stats_to_floats(stats)}
                    values["train/learning_rate"] = learning_rate
                    values["train/n_updates"] = self.n_updates
                    for key, value in values.items():
                        self.logger.record(key, value)
                    self._record_time()
                    self.logger.dump(self.num_timesteps)
                    if bar is not None and "rollout/ep_rew_mean" in values:
                        bar.set_postfix(ep_rew_mean=f"{values['rollout/ep_rew_mean']:.3g}")
                if not callbacks.on_iteration_end():
                    break
            callbacks.on_training_end()
        finally:
            self._end_learn()
            if bar is not None:
                bar.close()
        return self
