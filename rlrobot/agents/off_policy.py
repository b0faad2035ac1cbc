"""The off-policy loop shared by SAC and TD3: act → store → sample → update, step by step.

Actions are kept in ``[-1, 1]`` inside the agent (policies end in ``tanh``) and mapped to the
Box bounds only when sent to the env, so the buffer, the critics and the target smoothing work
in one scale. The twin critics are one ``CriticEnsemble``: both Q-networks' layers are stacked
and evaluated by one batched matmul per layer, and the actor loss reads them with detached
weights so no critic weight gradient is computed that the actor step would throw away.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlrobot.agents.base import BaseAgent
from rlrobot.agents.callbacks import TrainingCallback
from rlrobot.agents.config import OffPolicyConfig
from rlrobot.agents.her import HerReplayBuffer, check_goal_space, get_compute_reward
from rlrobot.agents.policies import Actor, CriticEnsemble, OffPolicyPolicy
from rlrobot.agents.redistribution import RewardRedistributor
from rlrobot.agents.sb3_arguments import build_features_extractor
from rlrobot.common.env_util import EnvSpec, get_final_observations
from rlrobot.common.memory import check_memory
from rlrobot.common.networks import (
    MATMUL_DTYPES,
    hidden_matmul_dtype,
    make_adam,
    stats_to_floats,
    to_tensors,
)
from rlrobot.common.noise import (
    make_action_noise,
    reset_noise_at_episode_ends,
)
from rlrobot.common.normalization import ObservationNormalizer
from rlrobot.common.replay_buffer import ReplayBuffer, ReplaySample
from rlrobot.common.schedules import ConstantSchedule
from rlrobot.errors import ConfigError, UnsupportedEnvError


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
        if self.config.replay_buffer == "her":
            check_goal_space(self.observation_space)
        if self.config.normalize_observations:
            self.obs_normalizer = ObservationNormalizer(
                self.observation_space, clip=self.config.clip_observations
            )
        self.action_dim = int(self.action_space.shape[0])
        # A noise object (SB3's form); a float action_noise is added in _explore_actions.
        self.action_noise = None
        if not isinstance(self.config.action_noise, float):
            self.action_noise = make_action_noise(
                self.config.action_noise, self.n_envs, self.action_dim
            )
        low, high = self.action_space.low, self.action_space.high
        self._action_center, self._action_scale = (high + low) / 2.0, (high - low) / 2.0
        self.n_updates = 0
        self._phase_steps = 0
        self._setup_redistribution()
        self._check_buffer_size()
        # As SB3 allocates it in _setup_model: an empty buffer scripts can fill or save before
        # learn; an env without HER's compute_reward is refused here, not inside learn().
        if self.env is not None:
            self.replay_buffer = self._make_replay_buffer()

    def _check_buffer_size(self) -> None:
        """Refuse, before any learn() (and any run folder), a replay buffer or a minibatch the
        machine cannot hold (the minibatch counted at its least: the sampled arrays and one
        float32 per hidden unit of the actor and of the critic)."""
        config = self.config
        ReplayBuffer.check_size(
            config.buffer_size, self.observation_space, self.action_space, self.n_envs
        )
        batch = config.batch_size
        critic = config.critic_net_arch if config.critic_net_arch is not None else config.net_arch
        space = self.observation_space
        spaces = space.spaces.values() if isinstance(space, gym.spaces.Dict) else [space]
        arrays = [((batch, *space.shape), space.dtype) for space in spaces] * 2  # and next ones
        arrays += [((batch, self.action_dim + 2), np.float32)]  # actions, rewards, discounts
        arrays += [((batch, sum(config.net_arch) + sum(critic)), np.float32)]
        check_memory(f"batch_size={batch}", "minibatch and its activations", arrays)

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
        self.critic_optimizer = self.make_optimizer(list(self.critic.parameters()))

    def make_optimizer(self, parameters: list[Any]) -> torch.optim.Optimizer:
        """Build Adam for the actor or the critics: SB3's ``optimizer_class(params, lr,
        **optimizer_kwargs)``, with ``optimizer_eps`` and ``optimizer_weight_decay``."""
        config = self.config
        return make_adam(
            parameters,
            config.initial_value("learning_rate"),
            config.optimizer_eps,
            config.optimizer_weight_decay,
        )

    @property
    def policy(self) -> OffPolicyPolicy:
        """SB3's ``model.policy``: the networks (``actor``, ``critic`` …) and ``predict``."""
        return OffPolicyPolicy(self)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Return the actor optimizer (SAC's also steps ``log α``) and the critic optimizer."""
        return {"actor_optimizer": self.actor_optimizer, "critic_optimizer": self.critic_optimizer}

    def start_new_episodes(self, seed: int | None) -> None:
        """Start new episodes (see ``BaseAgent``), and the noise's processes with them."""
        super().start_new_episodes(seed)
        if self.action_noise is not None:
            self.action_noise.reset()

    # -- actions ------------------------------------------------------------------------------
    def actions_to_env(self, actions: np.ndarray) -> np.ndarray:
        """Map policy actions in ``[-1, 1]`` to the Box bounds."""
        return self._action_center + self._action_scale * np.clip(actions, -1.0, 1.0)

    def actions_from_env(self, actions: np.ndarray) -> np.ndarray:
        """Map env actions within the Box bounds back to the policy's ``[-1, 1]`` (the inverse
        of ``actions_to_env``), e.g. to evaluate the critics at actions an episode took."""
        return ((np.asarray(actions) - self._action_center) / self._action_scale).astype(np.float32)

    def _explore_actions(self, observations: Any) -> torch.Tensor:
        """Actions in ``[-1, 1]`` to collect data with: the policy's, plus Gaussian noise of
        std ``action_noise`` when that is a float > 0."""
        actions = self._predict_actions(observations, deterministic=False)
        sigma = self.config.action_noise
        if isinstance(sigma, float) and sigma > 0:
            actions = (actions + sigma * torch.randn_like(actions)).clamp(-1.0, 1.0)
        return actions

    # -- replay buffer ------------------------------------------------------------------------
    def set_env(self, env: EnvSpec | gym.vector.VectorEnv, force_reset: bool = True) -> None:
        """``BaseAgent.set_env``; an agent loaded without an env gets its empty replay buffer
        now, and HER's buffer relabels goals with the new env's ``compute_reward``."""
        super().set_env(env, force_reset)
        if self.replay_buffer is None:
            self.replay_buffer = self._make_replay_buffer()
        elif isinstance(self.replay_buffer, HerReplayBuffer):
            self.replay_buffer.compute_reward = get_compute_reward(self.env)

    def _make_replay_buffer(self) -> ReplayBuffer:
        config = self.config
        common = {
            "n_envs": self.n_envs,
            "gamma": config.gamma,
            "n_steps": config.n_steps,
            "seed": self.seed,
        }
        if config.replay_buffer == "her":
            return HerReplayBuffer(
                config.buffer_size,
                self.observation_space,
                self.action_space,
                get_compute_reward(self.env),
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

    @property
    def at_training_phase(self) -> bool:
        """Whether no env step was collected since the last training phase (or learn's start).

        ``learn`` counts ``train_freq`` from its start; a run split into ``learn`` calls at
        such points trains at the same steps as one call.
        """
        return self._phase_steps == 0

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
        if self.action_noise is not None:
            # As SB3: a noise object also perturbs the random actions before learning starts.
            noise = np.asarray(self.action_noise(), dtype=np.float32)
            actions = np.clip(actions + noise, -1.0, 1.0).astype(np.float32)
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
        if self.action_noise is not None:
            reset_noise_at_episode_ends(self.action_noise, episode_ends)
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

    def _run_loop(
        self, end: int, callbacks: TrainingCallback, log_interval: int | None, bar: Any
    ) -> None:
        """Step the envs, training in ``train_freq`` phases, until step ``end`` or a stop."""
        self._ensure_replay_buffer()
        config = self.config
        frequency, unit = config.get_train_freq()
        # Log at multiples of log_interval, so a resumed run logs at the same steps.
        next_log = (self.num_timesteps // config.log_interval + 1) * config.log_interval
        logged_episodes = self.episode_tracker.n_episodes
        stats, learning_rate = {}, self._update_learning_rate()
        # A constant step size is set once above, not again at every training phase.
        scheduled = not isinstance(config.get_schedule("learning_rate"), ConstantSchedule)
        # Vector steps and finished episodes since the last training phase (SB3's TrainFreq);
        # SB3's callbacks see each phase as a rollout.
        self._phase_steps = phase_episodes = 0
        while self.num_timesteps < end:
            if self._phase_steps == 0:
                callbacks.on_rollout_start()
            step = self.collect_step(self.num_timesteps < config.learning_starts)
            self._phase_steps += 1
            phase_episodes += int(step["dones"].sum())
            if not callbacks.on_step(step):
                break
            if (self._phase_steps if unit == "step" else phase_episodes) >= frequency:
                callbacks.on_rollout_end()
                if self.num_timesteps > config.learning_starts and self.replay_buffer.can_sample():
                    if scheduled:
                        learning_rate = self._update_learning_rate()
                    gradient_steps = config.gradient_steps
                    if gradient_steps == -1:  # as many as env steps collected, as SB3
                        gradient_steps = self._phase_steps * self.n_envs
                    stats = self.train(gradient_steps, config.batch_size)
                self._phase_steps = phase_episodes = 0
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
