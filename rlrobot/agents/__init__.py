"""From-scratch PyTorch agents with an SB3-like API, and the algorithm registry."""

from rlrobot.agents.a2c import A2C, A2CConfig
from rlrobot.agents.base import BaseAgent
from rlrobot.agents.config import OffPolicyConfig, OnPolicyConfig
from rlrobot.agents.her import HerReplayBuffer
from rlrobot.agents.off_policy import OffPolicyAgent
from rlrobot.agents.on_policy import OnPolicyAgent
from rlrobot.agents.ppo import PPO, PPOConfig
from rlrobot.agents.reinforce import REINFORCE, REINFORCEConfig
from rlrobot.agents.sac import SAC, SACConfig
from rlrobot.agents.td3 import TD3, TD3Config

ALGORITHMS: dict[str, type[BaseAgent]] = {
    "reinforce": REINFORCE,
    "a2c": A2C,
    "ppo": PPO,
    "sac": SAC,
    "td3": TD3,
}

__all__ = [
    "A2C",
    "ALGORITHMS",
    "PPO",
    "REINFORCE",
    "SAC",
    "TD3",
    "A2CConfig",
    "BaseAgent",
    "HerReplayBuffer",
    "OffPolicyAgent",
    "OffPolicyConfig",
    "OnPolicyAgent",
    "OnPolicyConfig",
    "PPOConfig",
    "REINFORCEConfig",
    "SACConfig",
    "TD3Config",
]
