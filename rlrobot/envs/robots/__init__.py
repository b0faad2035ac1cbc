"""Robots: what can be driven, and what it senses."""

from rlrobot.envs.robots.cartpole import CartPoleRobot
from rlrobot.envs.robots.panda import Panda

__all__ = ["CartPoleRobot", "Panda"]
