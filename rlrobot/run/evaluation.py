"""Make a run's env, load agents back from run folders, and format evaluation summaries.

The evaluation loop itself is ``rlrobot.common.evaluation.evaluate_policy``.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
import re
from typing import Any

import gymnasium as gym

from rlrobot.run.config import ResolvedConfig, algorithm_class, read_run_config
from rlrobot.run.folder import RunFolder


def make_env(resolved: ResolvedConfig, render_mode: str | None = None, **kwargs: Any) -> gym.Env:
    """Make one (non-vector) env of a run, with its ``env_kwargs`` and extra ``kwargs``, in
    its ``env_wrapper`` wrappers and ``frame_stack``."""
    from rlrobot.common.env_util import make_wrapped_env

    run = resolved.run
    env_kwargs = {**run.env_kwargs, "render_mode": render_mode, **kwargs}
    return make_wrapped_env(resolved.env, env_kwargs, run.env_wrapper, run.frame_stack)


def vector_env_arguments(resolved: ResolvedConfig) -> dict[str, Any]:
    """Return the ``env`` and ``env_kwargs`` an agent makes the run's vector env from: the env
    id and its keywords, or a (picklable) factory when the run wraps its envs."""
    run = resolved.run
    if not run.env_wrapper and run.frame_stack == 1:
        return {"env": resolved.env, "env_kwargs": run.env_kwargs}
    from rlrobot.common.env_util import make_wrapped_env

    factory = functools.partial(
        make_wrapped_env, resolved.env, run.env_kwargs, run.env_wrapper, run.frame_stack
    )
    return {"env": factory, "env_kwargs": None}


class EpisodeProgress(gym.Wrapper):
    """Advance a progress bar (tqdm's ``update``) by one at the end of every episode.

    ``rlrobot eval`` wraps its env in it, so a long evaluation shows how far it has come.
    """

    def __init__(self, env: gym.Env, bar: Any) -> None:
        super().__init__(env)
        self.bar = bar

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        """Step the env; count the episode once it ends."""
        observation, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            self.bar.update(1)
        return observation, reward, terminated, truncated, info


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


def describe_success(env: gym.Env) -> str:
    """Say what ``success`` counts: ``info["is_success"]`` at each episode's last step, for an
    rlrobot env as its task's ``is_success`` defines it (``success_angle`` and such with their
    values), e.g. ``the pole is within success_angle = 0.05 of upright``."""
    task = getattr(env.unwrapped, "task", None)
    definition = inspect.getdoc(getattr(task, "is_success", None)) if task is not None else None
    if not definition:
        return 'success: the env\'s info["is_success"] at the last step of each episode'

    def with_value(match: re.Match) -> str:
        name = match.group(1)
        value = getattr(task, name, None)
        return f"{name} = {value:g}" if isinstance(value, (int, float)) else name

    sentence = re.sub(r"`(\w+)`", with_value, definition.splitlines()[0]).rstrip(".")
    sentence = re.sub(r"^whether ", "", sentence, flags=re.IGNORECASE)
    return f"success: {sentence[:1].lower()}{sentence[1:]}, at the last step of each episode"


def format_summary(summary: dict[str, Any]) -> str:
    """Return ``return 475.2 ± 30.1 | success 90% | length 480.3 ± 20.0 (10 episodes)``."""
    text = f"return {summary['mean_reward']:.2f} ± {summary['std_reward']:.2f}"
    if summary.get("success_rate") is not None and not math.isnan(summary["success_rate"]):
        text += f" | success {100 * summary['success_rate']:.0f}%"
    text += f" | length {summary['mean_ep_length']:.1f} ± {summary['std_ep_length']:.1f}"
    return text + f" ({summary['n_episodes']} episodes)"
