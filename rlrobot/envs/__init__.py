"""rlrobot's Gymnasium envs: robots, tasks, the env that glues them, perturbations, wrappers.

Registration needs no PyBullet; the env classes and wrappers are imported on first use.
"""

from rlrobot.envs.registration import ENV_IDS, register_envs
from rlrobot.lazy import lazy_attributes

_EXPORTS = {
    "rlrobot.envs.core": ["GoalRobotTaskEnv", "Robot", "RobotTaskEnv", "Task"],
    "rlrobot.envs.reward_delay": ["RewardDelay"],
    "rlrobot.envs.perturbations": ["DomainRandomization", "RandomKicks", "SceneRandomization"],
    "rlrobot.envs.wrappers": ["DelayedReward", "MultiViewImages"],
}
__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS)
__all__ = ["ENV_IDS", "register_envs", *sorted(n for names in _EXPORTS.values() for n in names)]
