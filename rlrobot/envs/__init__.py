"""rlrobot's Gymnasium envs: robots, tasks, and the env that glues them."""

from rlrobot.envs.core import GoalRobotTaskEnv, Robot, RobotTaskEnv, Task
from rlrobot.envs.registration import ENV_IDS, register_envs

__all__ = ["ENV_IDS", "GoalRobotTaskEnv", "Robot", "RobotTaskEnv", "Task", "register_envs"]
