"""Scripted policies that drive an env while a dataset is collected.

A policy maps one observation to one action: ``make_policy`` turns ``"random"``,
``"goal_seeking"``, an agent (anything with ``predict``) or a callable into one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from rlrobot.errors import DatasetError

Policy = Callable[[Any], np.ndarray]


def goal_seeking_policy(env: gym.Env, noise: float = 0.3) -> Policy:
    """Return a policy that moves a goal-conditioned env's achieved goal towards the goal.

    The action is ``clip((desired_goal − achieved_goal) / 0.05, −1, 1)`` plus uniform noise in
    ``±noise``; it suits end-effector-controlled arms whose action is a displacement of the
    achieved goal (Reach with ``control_mode="ee"``).
    """
    space = env.action_space
    if not isinstance(space, gym.spaces.Box) or space.shape != (3,):
        raise DatasetError(f"the goal-seeking policy needs a Box action of shape (3,), got {space}")

    def policy(observation: dict[str, np.ndarray]) -> np.ndarray:
        if not isinstance(observation, dict) or "desired_goal" not in observation:
            raise DatasetError("the goal-seeking policy needs desired_goal in the observation")
        direction = (observation["desired_goal"] - observation["achieved_goal"]) / 0.05
        jitter = env.np_random.uniform(-noise, noise, 3)
        return np.clip(direction + jitter, -1, 1).astype(np.float32)

    return policy


def make_policy(policy: str | Policy | Any, env: gym.Env) -> tuple[Policy, str]:
    """Turn ``"random"``, ``"goal_seeking"``, an agent (``predict``) or a callable into a policy.

    Returns:
        ``(policy, description)``; the policy maps one observation to one action.
    """
    if isinstance(policy, str):
        if policy == "random":
            return (lambda observation: env.action_space.sample()), "random"
        if policy == "goal_seeking":
            return goal_seeking_policy(env), "goal_seeking"
        raise DatasetError(
            f"policy must be 'random', 'goal_seeking', an agent or a callable, got {policy!r}"
        )
    if hasattr(policy, "predict"):

        def agent_policy(observation: Any) -> np.ndarray:
            return policy.predict(observation, deterministic=False)[0]

        return agent_policy, f"agent:{type(policy).__name__}"
    if callable(policy):
        return policy, f"callable:{getattr(policy, '__name__', type(policy).__name__)}"
    raise DatasetError(f"cannot use {policy!r} as a policy")
