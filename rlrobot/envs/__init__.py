"""rlrobot's Gymnasium envs: robots, tasks, the env that glues them, and wrappers."""

from rlrobot.envs.core import (
    DomainRandomization,
    GoalRobotTaskEnv,
    RewardDelay,
    Robot,
    RobotTaskEnv,
    Task,
)
from rlrobot.envs.registration import ENV_IDS, register_envs
from rlrobot.envs.wrappers import DelayedReward

__all__ = [
    "ENV_IDS",
    "DelayedReward",
    "DomainRandomization",
    "GoalRobotTaskEnv",
    "RewardDelay",
    "Robot",
    "RobotTaskEnv",
    "Task",
    "register_envs",
]
