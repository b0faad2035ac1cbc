"""Registration of every rlrobot env id with Gymnasium (`rlrobot/<Name>-v0`)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

# id → (entry point, max_episode_steps, fixed kwargs)
_ENV_SPECS: dict[str, tuple[str, int, dict[str, Any]]] = {
    "rlrobot/CartPole-v0": ("rlrobot.envs.cartpole:CartPoleEnv", 500, {}),
    "rlrobot/CartPoleContinuous-v0": (
        "rlrobot.envs.cartpole:CartPoleEnv",
        500,
        {"continuous": True},
    ),
    "rlrobot/Reach-v0": ("rlrobot.envs.reach:ReachEnv", 50, {}),
    "rlrobot/Push-v0": ("rlrobot.envs.push:PushEnv", 50, {}),
    "rlrobot/Navigate-v0": ("rlrobot.envs.navigate:NavigateEnv", 200, {}),
    "rlrobot/Quadruped-v0": ("rlrobot.envs.quadruped:QuadrupedEnv", 1000, {}),
}

ENV_IDS: list[str] = list(_ENV_SPECS)

# Applied by gym.make outside the TimeLimit: pays a delayed reward at a time-limit cut-off.
_RELEASE_WRAPPER = gym.envs.registration.WrapperSpec(
    name="ReleaseWithheldReward",
    entry_point="rlrobot.envs.wrappers:ReleaseWithheldReward",
    kwargs={},
)


# Any registered env with delayed rewards: gym.make(DELAYED_ENV_ID, env_id="Pendulum-v1").
DELAYED_ENV_ID = "rlrobot/Delayed-v0"


def register_envs() -> None:
    """Register all rlrobot envs with Gymnasium (idempotent)."""
    if DELAYED_ENV_ID not in gym.registry:
        # No time limit of its own: the inner env's applies, inside the DelayedReward wrapper.
        gym.register(id=DELAYED_ENV_ID, entry_point="rlrobot.envs.wrappers:make_delayed_env")
    for env_id, (entry_point, max_episode_steps, kwargs) in _ENV_SPECS.items():
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point=entry_point,
                max_episode_steps=max_episode_steps,
                kwargs=kwargs,
                additional_wrappers=(_RELEASE_WRAPPER,),
            )
