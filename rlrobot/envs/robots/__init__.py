"""Robots: what can be driven, and what it senses."""

from rlrobot.envs.robots.ant import Ant
from rlrobot.envs.robots.cartpole import CartPoleRobot
from rlrobot.envs.robots.panda import Panda
from rlrobot.envs.robots.racecar import Racecar

__all__ = ["Ant", "CartPoleRobot", "Panda", "Racecar"]
