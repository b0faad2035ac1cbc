"""Evaluate a policy for whole episodes, and load agents back from run folders."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from rlrobot.run.config import ResolvedConfig, algorithm_class, read_run_config
from rlrobot.run.folder import RunFolder


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


def make_env(resolved: ResolvedConfig, render_mode: str | None = None, **kwargs: Any) -> gym.Env:
    """Make one (non-vector) env of a run, with its ``env_kwargs`` and extra ``kwargs``."""
    from rlrobot.common.env_util import make_env as make_checked_env

    env_kwargs = {**resolved.run.env_kwargs, "render_mode": render_mode, **kwargs}
    return make_checked_env(resolved.env, env_kwargs)


def evaluate_agent(
    agent: Any,
    env: gym.Env,
    n_episodes: int,
    deterministic: bool = True,
    seed: int | None = None,
) -> EvaluationResult:
    """Run ``agent.predict`` for ``n_episodes`` whole episodes in ``env``.

    Args:
        agent: Anything with SB3's ``predict(observation, deterministic=…)``.
        env: A single (non-vector) env.
        n_episodes: Number of episodes.
        deterministic: Take the most likely actions.
        seed: Episode ``i`` starts with ``env.reset(seed=seed + i)``; None for unseeded resets.

    Returns:
        The returns, lengths and (where the env reports ``is_success``) successes.
    """
    result = EvaluationResult()
    for episode in range(n_episodes):
        observation, info = env.reset(seed=None if seed is None else seed + episode)
        episode_return, length, done = 0.0, 0, False
        while not done:
            action, _ = agent.predict(observation, deterministic=deterministic)
            observation, reward, terminated, truncated, info = env.step(action)
            episode_return += float(reward)
            length += 1
            done = terminated or truncated
        result.returns.append(episode_return)
        result.lengths.append(length)
        if "is_success" in info:
            result.successes.append(float(info["is_success"]))
    return result


def load_run_agent(
    run_dir: str | os.PathLike, checkpoint: str = "latest", device: str = "cpu"
) -> tuple[Any, ResolvedConfig, RunFolder]:
    """Load a predict-only agent from a run folder.

    Args:
        run_dir: The run folder.
        checkpoint: ``latest``, ``best``, a step number or a checkpoint path.
        device: Where to put the networks.

    Returns:
        ``(agent, resolved config, run folder)``.
    """
    folder = RunFolder(run_dir)
    folder.require_run()
    resolved = read_run_config(folder.config_path)
    path = folder.resolve_checkpoint(checkpoint)
    agent = algorithm_class(resolved.algo).load(path, device=device)
    return agent, resolved, folder


def format_summary(summary: dict[str, Any]) -> str:
    """Return ``return 475.2 ± 30.1 | success 90% | length 480.3 ± 20.0 (10 episodes)``."""
    text = f"return {summary['mean_reward']:.2f} ± {summary['std_reward']:.2f}"
    if summary.get("success_rate") is not None and not math.isnan(summary["success_rate"]):
        text += f" | success {100 * summary['success_rate']:.0f}%"
    text += f" | length {summary['mean_ep_length']:.1f} ± {summary['std_ep_length']:.1f}"
    return text + f" ({summary['n_episodes']} episodes)"
