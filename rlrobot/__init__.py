"""rlrobot: robot reinforcement learning on PyBullet, Gymnasium and PyTorch."""

__version__ = "0.1.0"

from rlrobot.envs.registration import ENV_IDS, register_envs

register_envs()

__all__ = ["ENV_IDS", "__version__", "register_envs"]
