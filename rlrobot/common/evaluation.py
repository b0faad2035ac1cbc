"""The one evaluation loop: run a policy for whole episodes and keep each episode's outcome.

Every caller uses it: ``rlrobot train``'s periodic evaluation, ``rlrobot eval``, the demo, the
benchmark's checkpoints (for our agents and SB3's alike), the studies (the delayed-reward
study reads every transition through ``on_step``) and the tests. It needs only a single
Gymnasium env and something that predicts actions, so it sits in ``common``, below the agents.
Like SB3's ``stable_baselines3.common.evaluation.evaluate_policy`` it counts the undiscounted
rewards as ``env.step`` returns them; unlike it, it seeds every episode (so two policies can face
the same start states) and records ``info["is_success"]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from rlrobot.errors import UnsupportedEnvError

if TYPE_CHECKING:
    import gymnasium as gym


class Predictor(Protocol):
    """Anything with SB3's ``predict(observation, deterministic=…) -> (action, state)``."""

    def predict(self, observation: Any, deterministic: bool = ...) -> tuple[Any, Any]:
        """Return the action for one unbatched observation, and a recurrent state (or None)."""


PredictFunction = Callable[..., tuple[Any, Any]]
# Called after every step with (observation, action, reward, next observation).
StepCallback = Callable[[Any, Any, float, Any], None]


@dataclass
class EvaluationResult:
    """Per-episode results of an evaluation.

    Attributes:
        returns: Undiscounted return of each episode.
        lengths: Steps of each episode.
        successes: ``info["is_success"]`` at the end of each episode (empty if not reported).
    """

    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    successes: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float | int | None]:
        """Return mean/std of return and length, success rate (None if unreported), count."""
        return {
            "mean_reward": float(np.mean(self.returns)),
            "std_reward": float(np.std(self.returns)),
            "mean_ep_length": float(np.mean(self.lengths)),
            "std_ep_length": float(np.std(self.lengths)),
            "success_rate": float(np.mean(self.successes)) if self.successes else None,
            "n_episodes": len(self.returns),
        }


def evaluate_policy(
    policy: Predictor | PredictFunction,
    env: gym.Env,
    n_episodes: int,
    deterministic: bool = True,
    seed: int | None = None,
    on_step: StepCallback | None = None,
) -> EvaluationResult:
    """Run ``policy`` for ``n_episodes`` whole episodes in ``env``.

    Args:
        policy: An object with SB3's ``predict`` (our agents, SB3 models) or such a function
            itself, called as ``predict(observation, deterministic=deterministic)``.
        env: A single (non-vector) env whose episodes end (a time limit or termination).
        n_episodes: Number of episodes.
        deterministic: Take the most likely actions.
        seed: Episode ``i`` starts with ``env.reset(seed=seed + i)``; None for unseeded resets.
        on_step: Called after every step as ``on_step(observation, action, reward,
            next_observation)``, e.g. to compare a learned reward model with the env's reward.

    Returns:
        The returns, lengths and (where the env reports ``is_success``) successes.

    Raises:
        UnsupportedEnvError: ``env`` is a vector env (Gymnasium's or SB3's).
    """
    if hasattr(env, "num_envs"):
        raise UnsupportedEnvError(
            f"evaluate_policy runs one env, got a vector env of {env.num_envs}: pass a single "
            "env, e.g. gym.make(env_id)"
        )
    predict = policy.predict if hasattr(policy, "predict") else policy
    result = EvaluationResult()
    for episode in range(n_episodes):
        observation, info = env.reset(seed=None if seed is None else seed + episode)
        episode_return, length, done = 0.0, 0, False
        while not done:
            action, _ = predict(observation, deterministic=deterministic)
            next_observation, reward, terminated, truncated, info = env.step(action)
            if on_step is not None:
                on_step(observation, action, float(reward), next_observation)
            observation = next_observation
            episode_return += float(reward)
            length += 1
            done = terminated or truncated
        result.returns.append(episode_return)
        result.lengths.append(length)
        if "is_success" in info:
            result.successes.append(float(info["is_success"]))
    return result
