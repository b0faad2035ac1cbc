"""From-scratch PyTorch agents with an SB3-like API, and the algorithm registry."""

from rlrobot.agents.a2c import A2C, A2CConfig
from rlrobot.agents.base import BaseAgent
from rlrobot.agents.on_policy import OnPolicyAgent, OnPolicyConfig
from rlrobot.agents.ppo import PPO, PPOConfig
from rlrobot.agents.reinforce import REINFORCE, REINFORCEConfig

ALGORITHMS: dict[str, type[BaseAgent]] = {
    "reinforce": REINFORCE,
    "a2c": A2C,
    "ppo": PPO,
}

__all__ = [
    "A2C",
    "ALGORITHMS",
    "PPO",
    "REINFORCE",
    "A2CConfig",
    "BaseAgent",
    "OnPolicyAgent",
    "OnPolicyConfig",
    "PPOConfig",
    "REINFORCEConfig",
]
