"""Tasks: start states, goals, reward terms, success and failure."""

from rlrobot.envs.tasks.balance import Balance
from rlrobot.envs.tasks.goal import PointGoalTask, goal_distance
from rlrobot.envs.tasks.locomotion import WalkForward
from rlrobot.envs.tasks.navigate import Navigate
from rlrobot.envs.tasks.push import Push
from rlrobot.envs.tasks.reach import Reach

__all__ = ["Balance", "Navigate", "PointGoalTask", "Push", "Reach", "WalkForward", "goal_distance"]
