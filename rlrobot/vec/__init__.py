"""Vector envs: ``make_vec_env``, the shared-memory vector env and the worker errors.

This layer sits above ``envs`` and ``common`` and below the agents. Every vector env it makes
uses ``AutoresetMode.SAME_STEP`` (see ``rlrobot.common.env_util``); vector envs of other kinds
(SB3 VecEnvs, other autoreset modes) are adapted to it (``rlrobot.vec.adapters``).
"""

from rlrobot.vec.adapters import get_sb3_vec_env, get_vec_normalize
from rlrobot.vec.make import VEC_ENV_CHOICES, VecEnvName, make_vec_env
from rlrobot.vec.shared_memory import SharedMemoryVectorEnv, default_main_envs
from rlrobot.vec.workers import EnvWorkerError, ReportingAsyncVectorEnv

__all__ = [
    "VEC_ENV_CHOICES",
    "EnvWorkerError",
    "ReportingAsyncVectorEnv",
    "SharedMemoryVectorEnv",
    "VecEnvName",
    "default_main_envs",
    "get_sb3_vec_env",
    "get_vec_normalize",
    "make_vec_env",
]
