"""The reward model of RRD and its training, shared by the on- and off-policy agents.

The maths (chunks, the uniform split, the RRD loss) is in ``rlrobot.common.redistribution``.
Here ``RewardModel`` is ``r̂(s, a, s′)`` — the reference implementation's input, features of
``s``, the action and the change of features to ``s′`` — and ``RewardRedistributor`` owns the
model and its Adam optimiser, trains it on chunks drawn from a replay buffer and predicts
rewards for transitions. The model reads observations as the env gives them (not normalised:
its inputs must not drift with running statistics) and actions encoded by ``ActionEncoder``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from rlrobot.common.checkpoint import load_optimizer_state
from rlrobot.common.networks import make_features_extractor, mlp, to_tensors
from rlrobot.common.redistribution import rrd_loss
from rlrobot.common.replay_buffer import ReplayBuffer


class ActionEncoder(nn.Module):
    """Map actions to reward-model inputs ``(batch, features_dim)``.

    Discrete actions become one-hot vectors; Box actions with finite bounds are scaled to
    ``[-1, 1]``, others are flattened as they are.
    """

    def __init__(self, action_space: gym.Space) -> None:
        super().__init__()
        self.action_space = action_space
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        if self.discrete:
            self.features_dim = int(action_space.n)
            return
        self.features_dim = int(np.prod(action_space.shape))
        low, high = action_space.low.reshape(-1), action_space.high.reshape(-1)
        bounded = np.isfinite(low).all() and np.isfinite(high).all()
        center = (high + low) / 2.0 if bounded else np.zeros_like(low)
        scale = np.maximum((high - low) / 2.0, 1e-8) if bounded else np.ones_like(low)
        # Fixed by the space, not learned: kept out of checkpoints.
        self.register_buffer("center", torch.as_tensor(center, dtype=torch.float32), False)
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32), False)

    def forward(self, actions: torch.Tensor) -> torch.Tensor:
        """Encode a batch of actions."""
        if self.discrete:
            start = self.action_space.start
            return F.one_hot((actions.long() - start).reshape(-1), self.features_dim).float()
        return (actions.float().reshape(actions.shape[0], -1) - self.center) / self.scale


class RewardModel(nn.Module):
    """``r̂(s, a, s′)``: an MLP on ``[φ(s), a, φ(s′) − φ(s)]`` → one reward per transition.

    Args:
        observation_space: The env's observation space (``Box``, images or ``Dict``).
        action_space: The space of the actions it is given (see ``ActionEncoder``).
        net_arch: Hidden layer sizes.
    """

    def __init__(
        self, observation_space: gym.Space, action_space: gym.Space, net_arch: tuple[int, ...]
    ) -> None:
        super().__init__()
        self.features_extractor = make_features_extractor(observation_space)
        self.action_encoder = ActionEncoder(action_space)
        features_dim = self.features_extractor.features_dim
        in_dim = 2 * features_dim + self.action_encoder.features_dim
        self.net = mlp(in_dim, net_arch, 1, "relu")

    def forward(self, observations: Any, actions: torch.Tensor, next_observations: Any) -> Any:
        """Return ``r̂`` of a batch of transitions, ``(batch,)``."""
        features = self.features_extractor(observations)
        next_features = self.features_extractor(next_observations)
        inputs = [features, self.action_encoder(actions), next_features - features]
        return self.net(torch.cat(inputs, dim=1)).squeeze(-1)


class RewardRedistributor:
    """RRD's reward model, its optimiser and its training on a replay buffer's chunks.

    Args:
        observation_space: The env's observation space.
        action_space: The space of the actions the buffer stores.
        config: An agent config with the ``rrd_*`` fields.
        device: Where the model lives.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        config: Any,
        device: torch.device,
    ) -> None:
        self.config, self.device = config, device
        self.model = RewardModel(observation_space, action_space, tuple(config.rrd_net_arch))
        self.model.to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.rrd_learning_rate)

    def train(self, buffer: ReplayBuffer) -> torch.Tensor | None:
        """Take ``rrd_gradient_steps`` steps on chunks drawn from ``buffer``; return the last loss.

        Returns None, without a step, while no chunk stored whole has ended.
        """
        config, loss = self.config, None
        for _ in range(config.rrd_gradient_steps):
            rows, envs, returns, lengths = buffer.sample_chunks(
                config.rrd_batch_size, config.rrd_subset_size
            )
            if len(returns) == 0:
                return loss
            flat_rows, flat_envs = rows.reshape(-1), envs.reshape(-1)
            predicted = self.predict_at(buffer, flat_rows, flat_envs, grad=True)
            loss = rrd_loss(
                predicted.reshape(rows.shape),
                torch.as_tensor(returns, dtype=torch.float32, device=self.device),
                torch.as_tensor(lengths, dtype=torch.float32, device=self.device),
            )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        return None if loss is None else loss.detach()

    def predict_at(
        self, buffer: ReplayBuffer, rows: np.ndarray, envs: np.ndarray, grad: bool = False
    ) -> torch.Tensor:
        """Return ``r̂`` of the buffer's transitions at ``(rows, envs)``, ``(batch,)``."""
        observations = to_tensors(buffer.get_observations(rows, envs), self.device)
        next_observations = to_tensors(buffer.get_next_observations(rows, envs), self.device)
        actions = to_tensors(buffer.actions[rows, envs], self.device)
        with torch.set_grad_enabled(grad):
            return self.model(observations, actions, next_observations)

    def predict(self, observations: Any, actions: torch.Tensor, next_observations: Any) -> Any:
        """Return ``r̂`` of a batch of transitions given as tensors, ``(batch,)``, no gradient."""
        with torch.no_grad():
            return self.model(observations, actions, next_observations)

    def state_dict(self) -> dict[str, Any]:
        """Return the optimiser's state (the weights go with the agent's modules)."""
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a ``state_dict``."""
        load_optimizer_state(self.optimizer, state["optimizer"])
