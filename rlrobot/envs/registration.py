"""Registration of every rlrobot env id with Gymnasium (`rlrobot/<Name>-v0`)."""

from __future__ import annotations

import inspect
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


def get_options(env_id: str) -> dict[str, inspect.Parameter]:
    """Return the `gym.make` keywords of a registered env id, each with its resolved type hint.

    The keywords are the constructor parameters that have a default, followed through
    `**options` to the base classes' constructors (a robot env's `RobotTaskEnv` options);
    for an entry-point function (`rlrobot/Delayed-v0`), its own. The hints (`annotation`)
    are what `check_arguments` checks: the spec of what each keyword may hold.
    """
    from rlrobot.envs.checks import checked_hints  # the envs import it; registering must not

    entry_point = gym.envs.registration.load_env_creator(gym.spec(env_id).entry_point)
    if isinstance(entry_point, type):
        functions = [cls.__init__ for cls in entry_point.__mro__ if "__init__" in vars(cls)]
    else:
        functions = [entry_point]
    options: dict[str, inspect.Parameter] = {}
    for function in functions:
        parameters = inspect.signature(function).parameters.values()
        hints = checked_hints(function)
        for parameter in parameters:
            if parameter.default is not parameter.empty and parameter.name not in options:
                hint = hints.get(parameter.name, parameter.empty)
                options[parameter.name] = parameter.replace(annotation=hint)
        if not any(parameter.kind == parameter.VAR_KEYWORD for parameter in parameters):
            break
    return options
