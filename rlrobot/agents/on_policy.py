"""The on-policy loop shared by REINFORCE, A2C and PPO: collect rollout → advantages → update.

The three algorithms differ only in ``compute_advantages`` (REINFORCE: Monte Carlo reward-to-go)
and ``update_policy`` (PPO: epochs of clipped minibatch steps). Rollouts are stored in
preallocated NumPy arrays of shape ``(n_steps, n_envs, …)``; one batched forward pass per env
step, no per-step tensor rebuilding.

Delayed rewards (``reward_redistribution``, see ``rlrobot.common.redistribution``) are
redistributed between the rollout and the advantages, and episodes that span rollouts are
handled so that no step gets a return its episode has not paid yet:

* ``"uniform"``: a step's reward ``R_c / L_c`` is known only once its chunk is released. The
  steps after each env's last release are *pending*: they are held back (observations,
  actions, behaviour log-probabilities) and join the next rollout in front of that env's
  steps, and they are trained on in the first update after their chunk is released, their
  values recomputed by the current critic. The advantages of the released steps are cut at
  the last release and bootstrapped from ``V`` of the next state, which estimates the
  redistributed rewards still to come. Pending steps are saved with the episodes in progress
  at a checkpoint, and dropped when episodes restart from outside (a checkpoint of envs that
  cannot save their state), as the episode is.
* ``"rrd"``: every step gets ``r̂(s, a, s′)`` from the reward model, so nothing waits. The
  model trains before each update on whole released chunks kept in a replay buffer of
  ``rrd_buffer_size`` transitions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from rlrobot.agents.base import BaseAgent
from rlrobot.agents.callbacks import TrainingCallback
from rlrobot.agents.config import OnPolicyConfig
from rlrobot.agents.policies import ActorCriticPolicy
from rlrobot.agents.redistribution import RewardRedistributor
from rlrobot.common.env_util import get_final_observations
from rlrobot.common.losses import normalize_advantages, policy_gradient_loss
from rlrobot.common.networks import (
    make_adam,
    stats_to_floats,
    to_tensors,
)
from rlrobot.common.normalization import ObservationNormalizer, RewardNormalizer
from rlrobot.common.redistribution import uniform_redistribution
from rlrobot.common.replay_buffer import ReplayBuffer
from rlrobot.common.returns import gae
from rlrobot.common.rollout_buffer import RolloutBuffer
from rlrobot.errors import CheckpointError, ConfigError


def make_optimizer(
    name: str,
    parameters: list[nn.Parameter],
    learning_rate: float,
    eps: float,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """Build Adam (``make_adam``) or RMSprop (α = 0.99 as in SB3's A2C)."""
    if name == "adam":
        return make_adam(parameters, learning_rate, eps, weight_decay)
    return torch.optim.RMSprop(
        parameters, lr=learning_rate, alpha=0.99, eps=eps, weight_decay=weight_decay, foreach=True
    )


class OnPolicyAgent(BaseAgent):
    """Base of REINFORCE, A2C and PPO: rollout collection, advantages, logging, checkpoints.

    ``update_policy(batch) -> dict[str, float]`` is the update on one rollout: one actor-critic
    gradient step (REINFORCE, A2C), which PPO overrides with its clipped minibatch epochs. The
    keywords ``image_encoder``/``freeze_encoder`` (see ``BaseAgent``) plug a (pretrained) image
    encoder in.
    """

    config_class = OnPolicyConfig
    config: OnPolicyConfig
    on_policy = True

    @property
    def steps_per_iteration(self) -> int:
        """Env steps of one rollout, ``n_steps × n_envs``: what ``learn`` advances by."""
        return self.config.n_steps * self.n_envs

    def _setup(self) -> None:
        config = self.config
        self.policy = ActorCriticPolicy(
            self.observation_space,
            self.action_space,
            config,
            self._image_encoder,
            self._freeze_encoder,
        ).to(self.device)
        # SB3's ``model.policy.predict``: the agent's, which normalises observations first.
        self.policy.predict = self.predict
        parameters = [p for p in self.policy.parameters() if p.requires_grad]
        self.optimizer = make_optimizer(
            config.optimizer,
            parameters,
            config.initial_value("learning_rate"),
            config.optimizer_eps,
            config.optimizer_weight_decay,
        )
        if config.normalize_observations:
            self.obs_normalizer = ObservationNormalizer(
                self.observation_space, clip=config.clip_observations
            )
        if config.normalize_rewards:
            self.reward_normalizer = RewardNormalizer(self.n_envs, config.gamma)
        # Before any learn() (and any run folder): a rollout the machine cannot hold.
        RolloutBuffer.check_size(
            config.n_steps, self.n_envs, self.observation_space, self.action_space
        )
        self.buffer: RolloutBuffer | None = None
        # Uniform redistribution: each env's steps since its last release, right-aligned.
        self.pending: RolloutBuffer | None = None
        if config.reward_redistribution == "rrd":
            if config.rrd_buffer_size < self.steps_per_iteration:
                raise ConfigError(
                    f"config key 'rrd_buffer_size': {config.rrd_buffer_size} is smaller than "
                    f"the rollout (n_steps × n_envs = {self.steps_per_iteration})"
                )
            ReplayBuffer.check_size(
                config.rrd_buffer_size,
                self.observation_space,
                self.action_space,
                self.n_envs,
                key="rrd_buffer_size",
            )
            self.reward_redistributor = RewardRedistributor(
                self.observation_space, self.action_space, config, self.device
            )

    def _make_replay_buffer(self) -> ReplayBuffer:
        """The reward model's buffer (RRD): raw observations, env actions, rewards as paid."""
        return ReplayBuffer(
            self.config.rrd_buffer_size,
            self.observation_space,
            self.action_space,
            n_envs=self.n_envs,
            gamma=self.config.gamma,
            seed=self.seed,
            reward_redistribution="rrd",
        )

    def start_new_episodes(self, seed: int | None) -> None:
        """``BaseAgent.start_new_episodes``; pending steps go with their abandoned episodes."""
        self.pending = None
        super().start_new_episodes(seed)

    def get_episode_state(self) -> dict[str, Any] | None:
        """``BaseAgent.get_episode_state`` plus the held-back steps (uniform redistribution)."""
        state = super().get_episode_state()
        if state is not None:
            state["pending"] = None if self.pending is None else self.pending.state_dict()
        return state

    def set_episode_state(self, state: Any) -> None:
        """Restore what ``get_episode_state`` returned."""
        pending = state["pending"]
        if pending is not None and self.config.reward_redistribution != "uniform":
            raise CheckpointError(
                f"saved episodes field 'pending' is {type(pending).__name__}, expected null: only "
                "uniform reward redistribution holds steps back"
            )
        super().set_episode_state(state)
        self.pending = (
            None
            if pending is None
            else RolloutBuffer.from_state_dict(
                pending, self.n_envs, self.observation_space, self.action_space
            )
        )

    def _episode_state_keys(self) -> tuple[str, ...]:
        return (*super()._episode_state_keys(), "pending")

    def modules(self) -> dict[str, nn.Module]:
        """Return ``{"policy": ActorCriticPolicy}``."""
        return {"policy": self.policy}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Return ``{"optimizer": …}``."""
        return {"optimizer": self.optimizer}

    def _predict_actions(self, observations: Any, deterministic: bool) -> torch.Tensor:
        distribution, _ = self.policy(observations)
        return distribution.mode() if deterministic else distribution.sample()

    # -- rollout ------------------------------------------------------------------------------
    def collect_rollout(self, callback: TrainingCallback | None = None) -> bool:
        """Run the policy for ``n_steps`` steps in every env and fill ``self.buffer``.

        Args:
            callback: Its ``on_step`` follows every vector-env step, as in SB3.

        Returns:
            False when the callback stopped training (the rollout is then incomplete).
        """
        env, buffer, config = self.env, self.buffer, self.config
        callback = callback if callback is not None else TrainingCallback()
        observations = self._last_observations
        self.policy.eval()
        callback.on_rollout_start()
        for step in range(config.n_steps):
            model_observations = (
                self.obs_normalizer.normalize(observations)
                if self.obs_normalizer is not None
                else observations
            )
            with torch.inference_mode():
                actions, values, log_probs = self.policy.act(
                    to_tensors(model_observations, self.device)
                )
            actions_np = actions.cpu().numpy()
            env_actions = self.actions_to_env(actions_np)
            next_observations, rewards, terminated, truncated, infos = env.step(env_actions)
            episode_ends = terminated | truncated
            self.episode_tracker.update(rewards, episode_ends, infos)
            raw_rewards = rewards
            if self.reward_normalizer is not None:
                self.reward_normalizer.update(rewards, episode_ends)
                rewards = self.reward_normalizer.normalize(rewards)
            if self.replay_buffer is not None or truncated.any():
                real_next_observations, _ = get_final_observations(next_observations, infos)
            if self.replay_buffer is not None:
                self.replay_buffer.add(
                    observations,
                    env_actions,
                    rewards,
                    real_next_observations,
                    terminated,
                    episode_ends,
                )
            buffer.store_observations(step, model_observations)
            buffer.actions[step] = actions_np
            buffer.rewards[step] = rewards
            buffer.terminated[step] = terminated
            buffer.episode_ends[step] = episode_ends
            buffer.values[step] = values.cpu().numpy()
            buffer.log_probs[step] = log_probs.cpu().numpy()
            if truncated.any():
                # Bootstrap time-limit cut-offs from the value of the real final observation.
                buffer.next_values[step] = self._predict_values(real_next_observations)
            if self.obs_normalizer is not None:
                self.obs_normalizer.update(next_observations)
            observations = next_observations
            self.num_timesteps += self.n_envs
            step_locals = {
                "actions": actions_np,
                "clipped_actions": env_actions,
                "values": buffer.values[step],
                "log_probs": buffer.log_probs[step],
                "new_obs": next_observations,
                "rewards": raw_rewards,
                "dones": episode_ends,
                "terminated": terminated,
                "truncated": truncated,
                "infos": infos,
                "n_steps": step,
            }
            if not callback.on_step(step_locals):
                # The partial rollout is dropped (as in SB3). Under uniform redistribution its
                # steps belong to chunks still pending: their episodes are abandoned with them.
                uniform = config.reward_redistribution == "uniform"
                self._last_observations = None if uniform else observations
                return False
        self._last_observations = observations
        # next_values[t] = values[t + 1] except after truncations (set above) and the last step.
        continuing = ~buffer.episode_ends[:-1]
        buffer.next_values[:-1][continuing] = buffer.values[1:][continuing]
        buffer.next_values[-1] = self._predict_values(observations, normalized=False)
        callback.on_rollout_end()
        return True

    def _predict_values(self, observations: Any, normalized: bool = False) -> np.ndarray:
        if self.obs_normalizer is not None and not normalized:
            observations = self.obs_normalizer.normalize(observations)
        with torch.inference_mode():
            return self.policy.predict_values(to_tensors(observations, self.device)).cpu().numpy()

    def redistribute_rewards(self) -> tuple[RolloutBuffer, dict[str, float]]:
        """Redistribute the rollout's delayed rewards (see the module docstring).

        Returns:
            The buffer to update on (under ``"uniform"``, the held-back steps followed by the
            rollout, with ``valid`` marking the released steps) and ``train/…`` statistics.
        """
        method = self.config.reward_redistribution
        if method == "rrd":
            return self.buffer, self._predict_rollout_rewards()
        if method != "uniform":
            return self.buffer, {}
        earlier = self.pending if self.pending is not None else self.buffer.tail(0)
        buffer = self.buffer.prepend(earlier)
        padding = ~buffer.valid
        split = uniform_redistribution(buffer.rewards, buffer.episode_ends | padding)
        # Each env's pending steps follow its last release: a suffix of its column.
        rows = np.arange(buffer.n_steps)[:, None]
        last_release = np.where(split.released, rows, -1).max(axis=0)
        pending_lengths = buffer.n_steps - 1 - last_release
        self.pending = buffer.hold_back(pending_lengths)
        if earlier.n_steps:
            # Held-back steps are trained on with today's critic: recompute their values.
            n_earlier = earlier.n_steps
            values = self._predict_values(earlier.flat_observations(), normalized=True)
            values = values.reshape(n_earlier, self.n_envs)
            buffer.values[:n_earlier] = np.where(earlier.valid, values, 0.0)
            # Pending steps never end an episode: the next value is the next row's.
            buffer.next_values[:n_earlier] = buffer.values[1 : n_earlier + 1]
        cut = (last_release >= 0) & (last_release < buffer.n_steps - 1)
        buffer.episode_ends[last_release[cut], np.flatnonzero(cut)] = True
        buffer.rewards = split.rewards
        buffer.valid = split.released & ~padding
        return buffer, {"train/pending_fraction": float(1.0 - buffer.valid.mean())}

    def _predict_rollout_rewards(self) -> dict[str, float]:
        """RRD: train the reward model, then set the rollout's rewards to its ``r̂``."""
        loss = self.reward_redistributor.train(self.replay_buffer)
        buffer, replay = self.buffer, self.replay_buffer
        # The rollout is the replay buffer's newest n_steps rows.
        rows = (replay.pos - buffer.n_steps + np.arange(buffer.n_steps)) % replay.n_rows
        rows = np.repeat(rows, self.n_envs)
        envs = np.tile(np.arange(self.n_envs), buffer.n_steps)
        chunk = 4096  # bounds the memory of image observations
        predicted = [
            self.reward_redistributor.predict_at(replay, rows[i : i + chunk], envs[i : i + chunk])
            for i in range(0, len(rows), chunk)
        ]
        buffer.rewards[:] = torch.cat(predicted).cpu().numpy().reshape(buffer.rewards.shape)
        return {} if loss is None else {"train/reward_model_loss": float(loss)}

    def compute_advantages(self, buffer: RolloutBuffer) -> None:
        """Fill ``buffer.advantages`` and ``buffer.returns`` with GAE(λ)."""
        buffer.advantages[:], buffer.returns[:] = gae(
            buffer.rewards,
            buffer.values,
            buffer.next_values,
            buffer.terminated,
            buffer.episode_ends,
            self.config.gamma,
            self.config.gae_lambda,
        )

    # -- update -------------------------------------------------------------------------------
    def _gradient_step(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.policy.parameters(), self.config.max_grad_norm)
        self.optimizer.step()

    def update_policy(self, batch: dict[str, Any]) -> dict[str, float]:
        """Update the policy on one flattened rollout; return ``train/…`` statistics.

        One vanilla actor-critic gradient step on the whole rollout (REINFORCE and A2C; PPO
        overrides it): ``loss = −mean(A·log π(a|s)) + vf_coef·mean((G − V(s))²) −
        ent_coef·mean(H[π])``.
        """
        log_prob, entropy, values = self.policy.evaluate_actions(
            batch["observations"], batch["actions"]
        )
        advantages = batch["advantages"]
        if self.config.normalize_advantage:
            advantages = normalize_advantages(advantages)
        policy_loss = policy_gradient_loss(advantages, log_prob)
        value_loss = F.mse_loss(values, batch["returns"])
        entropy_loss = -entropy.mean()
        loss = policy_loss + self.config.ent_coef * entropy_loss + self.config.vf_coef * value_loss
        self._gradient_step(loss)
        return stats_to_floats(
            {
                "train/policy_loss": policy_loss.detach(),
                "train/value_loss": value_loss.detach(),
                "train/entropy_loss": entropy_loss.detach(),
            }
        )

    # -- main loop ----------------------------------------------------------------------------
    def _run_loop(
        self, end: int, callbacks: TrainingCallback, log_interval: int | None, bar: Any
    ) -> None:
        """Collect rollouts and update the policy until step ``end`` or a callback stops."""
        log_interval = log_interval if log_interval is not None else self.config.log_interval
        if self.buffer is None:
            self.buffer = RolloutBuffer(
                self.config.n_steps, self.n_envs, self.observation_space, self.action_space
            )
        if self.config.reward_redistribution == "rrd":
            self._ensure_replay_buffer()
        rollout_size = self.steps_per_iteration
        while self.num_timesteps < end:
            if not self.collect_rollout(callbacks):
                break
            # After the rollout, as SB3: the update runs at the progress it has reached.
            learning_rate = self._update_learning_rate()
            buffer, redistribution_stats = self.redistribute_rewards()
            self.compute_advantages(buffer)
            self.policy.train()
            batch = buffer.flatten(self.device)
            stats = self.update_policy(batch) if batch["advantages"].numel() else {}
            stats.update(redistribution_stats)
            # Counted from step 0, so a resumed run logs the same iterations.
            iteration = self.num_timesteps // rollout_size
            if bar is not None:
                bar.update(rollout_size)
                summary = self.episode_tracker.summary()
                if summary:
                    bar.set_postfix(ep_rew_mean=f"{summary['rollout/ep_rew_mean']:.3g}")
            if iteration % log_interval == 0:
                for key, value in self.episode_tracker.summary().items():
                    self.logger.record(key, value)
                for key, value in stats.items():
                    self.logger.record(key, value)
                self.logger.record("train/learning_rate", learning_rate)
                self.logger.record("time/iterations", iteration)
                self._record_time()
                self.logger.dump(self.num_timesteps)
            if not callbacks.on_iteration_end():
                break
