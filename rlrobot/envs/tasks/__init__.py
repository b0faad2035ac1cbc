"""Tasks: start states, goals, reward terms, success and failure."""

from rlrobot.envs.tasks.balance import Balance
from rlrobot.envs.tasks.reach import Reach

__all__ = ["Balance", "Reach"]
