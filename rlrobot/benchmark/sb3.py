"""Stable-Baselines3 counterparts of our agents, with hyperparameters matched field by field.

``to_sb3(algo, config)`` is the one place that translates our config dataclasses into SB3's
constructor arguments; ``make_sb3_model`` builds the SB3 model on the same env construction
as ours (``gym.make`` of the same id and kwargs, the same number of envs, env ``i`` seeded with
``seed + i``). Every config field either has a destination or a documented reason in
``UNMAPPED_FIELDS``; the tests check both, field by field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlrobot.agents.sb3_arguments import config_to_sb3_arguments
from rlrobot.common.config import BaseConfig
from rlrobot.common.custom_extractor import resolve_module_class
from rlrobot.common.networks import get_activation

# Our algorithm name → SB3 class name.
SB3_ALGORITHMS: dict[str, str] = {"ppo": "PPO", "a2c": "A2C", "sac": "SAC", "td3": "TD3"}
ON_POLICY = ("ppo", "a2c")
# SB3's vector envs: every env in this process, or one subprocess per env.
SB3_VEC_ENVS = ("dummy", "subproc")

RRD_FIELD = "a setting of RRD's reward model, which SB3 does not have (see reward_redistribution)"
# Fields with no SB3 constructor argument, and why leaving them out keeps the match fair.
UNMAPPED_FIELDS: dict[str, str] = {
    "log_interval": "logging cadence only; SB3 takes it in learn(), it does not change training",
    "matmul_dtype": "numeric precision of our matmuls; SB3 computes in float32 only, so "
    "benchmarks that match hyperparameters keep ours at float32 (the default) or report "
    "bfloat16 as its own series",
    "reward_redistribution": "SB3 has no reward redistribution: it learns from the rewards as "
    "paid, so the benchmarks run it against ours with or without redistribution",
    "rrd_learning_rate": RRD_FIELD,
    "rrd_net_arch": RRD_FIELD,
    "rrd_batch_size": RRD_FIELD,
    "rrd_subset_size": RRD_FIELD,
    "rrd_gradient_steps": RRD_FIELD,
    "rrd_buffer_size": RRD_FIELD,
}


@dataclass
class SB3Setup:
    """What SB3 needs to reproduce one of our configs.

    Attributes:
        algorithm: SB3 class name (``"PPO"``, ``"A2C"``…).
        model_kwargs: Constructor arguments of the SB3 algorithm, ``policy_kwargs`` included.
        vec_normalize_kwargs: Arguments of SB3's ``VecNormalize`` wrapper, or None when our
            config normalises neither observations nor rewards.
        action_noise_std: Std of Gaussian exploration noise in units of the action scale,
            turned into SB3's ``NormalActionNoise`` once the action size is known (a noise
            object is in ``model_kwargs`` as it is).
    """

    algorithm: str
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    vec_normalize_kwargs: dict[str, Any] | None = None
    action_noise_std: float | None = None


def _schedule(value: Any, schedule: str) -> Any:
    """Return ``value`` (constant, or a callable schedule: SB3 takes both as they are) or SB3's
    schedule that decays it linearly to 0."""
    if callable(value) or schedule == "constant":
        return value
    from stable_baselines3.common.utils import LinearSchedule

    return LinearSchedule(value, 0.0, 1.0)


def to_sb3(algo: str, config: BaseConfig) -> SB3Setup:
    """Translate one of our configs into SB3 arguments for the same algorithm.

    Args:
        algo: Our algorithm name (a key of ``SB3_ALGORITHMS``).
        config: Our resolved config dataclass for that algorithm.

    Returns:
        The SB3 class name, constructor kwargs and ``VecNormalize`` kwargs.

    Raises:
        KeyError: ``algo`` has no SB3 counterpart (REINFORCE).
    """
    if algo not in SB3_ALGORITHMS:
        raise KeyError(
            f"{algo!r} has no Stable-Baselines3 counterpart (have {list(SB3_ALGORITHMS)})"
        )
    if algo in ON_POLICY:
        model_kwargs = _on_policy_kwargs(algo, config)
        normalize_rewards = config.normalize_rewards
    else:
        model_kwargs = _off_policy_kwargs(algo, config)
        normalize_rewards = False  # our off-policy agents only normalise observations
    vec_normalize_kwargs = None
    if config.normalize_observations or normalize_rewards:
        vec_normalize_kwargs = {
            "norm_obs": config.normalize_observations,
            "norm_reward": normalize_rewards,
            "clip_obs": config.clip_observations,
            "gamma": config.gamma,
        }
    noise = getattr(config, "action_noise", 0.0)
    action_noise_std = noise if isinstance(noise, float) and noise > 0 else None
    return SB3Setup(SB3_ALGORITHMS[algo], model_kwargs, vec_normalize_kwargs, action_noise_std)


def _on_policy_kwargs(algo: str, config: Any) -> dict[str, Any]:
    """PPO/A2C constructor kwargs (see ``to_sb3``)."""
    optimizer_class = torch.optim.Adam if config.optimizer == "adam" else torch.optim.RMSprop
    # SB3's A2C builds RMSprop with alpha=0.99; ours uses the same alpha.
    optimizer_kwargs = _optimizer_kwargs(config)
    if config.optimizer == "rmsprop":
        optimizer_kwargs.update(alpha=0.99)
    policy_kwargs = {
        "net_arch": {"pi": list(config.net_arch), "vf": list(critic_net_arch(config))},
        "activation_fn": get_activation(config.activation),
        "ortho_init": config.ortho_init,
        "log_std_init": config.log_std_init,
        "share_features_extractor": config.share_features_extractor,
        "optimizer_class": optimizer_class,
        "optimizer_kwargs": optimizer_kwargs,
    }
    model_kwargs: dict[str, Any] = {
        "learning_rate": _schedule(config.learning_rate, config.lr_schedule),
        "n_steps": config.n_steps,
        "gamma": config.gamma,
        "gae_lambda": config.gae_lambda,
        "ent_coef": config.ent_coef,
        "vf_coef": config.vf_coef,
        "max_grad_norm": config.max_grad_norm,
        "normalize_advantage": config.normalize_advantage,
        "policy_kwargs": {**policy_kwargs, **_features_extractor_kwargs(config)},
    }
    if algo == "ppo":
        model_kwargs.update(
            batch_size=config.batch_size,
            n_epochs=config.n_epochs,
            clip_range=_schedule(config.clip_range, config.clip_range_schedule),
            clip_range_vf=config.clip_range_vf,  # a float, a callable or None, as SB3's
            target_kl=config.target_kl,
        )
    else:
        # policy_kwargs["optimizer_class"] takes precedence in SB3; keep both consistent.
        model_kwargs.update(
            config_to_sb3_arguments(
                {"optimizer": config.optimizer, "optimizer_eps": config.optimizer_eps}
            )
        )
    return model_kwargs


def _off_policy_kwargs(algo: str, config: Any) -> dict[str, Any]:
    """SAC/TD3 constructor kwargs (see ``to_sb3``); TD3's action noise needs the env."""
    model_kwargs: dict[str, Any] = {
        "learning_rate": _schedule(config.learning_rate, config.lr_schedule),
        "buffer_size": config.buffer_size,
        "learning_starts": config.learning_starts,
        "batch_size": config.batch_size,
        "tau": config.tau,
        "gamma": config.gamma,
        "train_freq": config.train_freq,
        "gradient_steps": config.gradient_steps,
        "optimize_memory_usage": config.optimize_memory_usage,
        "n_steps": config.n_steps,
        "policy_kwargs": {
            "net_arch": (
                list(config.net_arch)
                if config.critic_net_arch is None
                else {"pi": list(config.net_arch), "qf": list(config.critic_net_arch)}
            ),
            "activation_fn": get_activation(config.activation),
            "n_critics": config.n_critics,
            "optimizer_class": torch.optim.Adam,
            "optimizer_kwargs": _optimizer_kwargs(config),
            **_features_extractor_kwargs(config),
        },
    }
    if not isinstance(config.action_noise, float):
        model_kwargs["action_noise"] = config.action_noise  # an SB3 noise object
    if config.replay_buffer == "her":
        from stable_baselines3 import HerReplayBuffer

        if config.n_steps > 1:
            # SB3 would ignore n_steps with a custom buffer class and train another algorithm.
            raise ValueError(
                f"n_steps={config.n_steps} with HER has no SB3 counterpart (SB3's "
                "HerReplayBuffer uses one-step returns); use n_steps=1 to compare with SB3"
            )

        model_kwargs["replay_buffer_class"] = HerReplayBuffer
        model_kwargs["replay_buffer_kwargs"] = {
            "goal_selection_strategy": config.goal_selection_strategy,
            "n_sampled_goal": config.n_sampled_goal,
        }
    if algo == "sac":
        model_kwargs.update(
            ent_coef=config.ent_coef,
            target_entropy=config.target_entropy,
            target_update_interval=config.target_update_interval,
        )
    else:
        model_kwargs.update(
            policy_delay=config.policy_delay,
            target_policy_noise=config.target_policy_noise,
            target_noise_clip=config.target_noise_clip,
        )
    return model_kwargs


def _optimizer_kwargs(config: Any) -> dict[str, float]:
    """SB3's ``optimizer_kwargs`` for our optimizer fields (both families)."""
    return {"eps": config.optimizer_eps, "weight_decay": config.optimizer_weight_decay}


def critic_net_arch(config: Any) -> tuple[int, ...]:
    """Return the critic's hidden layer sizes (``net_arch`` unless ``critic_net_arch`` is set)."""
    return config.net_arch if config.critic_net_arch is None else config.critic_net_arch


def _features_extractor_kwargs(config: Any) -> dict[str, Any]:
    """SB3's ``features_extractor_class``/``_kwargs`` (only the kwargs for a built-in one)."""
    if config.features_extractor_class is None:
        kwargs = config.features_extractor_kwargs
        return {} if kwargs is None else {"features_extractor_kwargs": dict(kwargs)}
    return {
        "features_extractor_class": resolve_module_class(
            config.features_extractor_class, "features_extractor_class"
        ),
        "features_extractor_kwargs": dict(config.features_extractor_kwargs or {}),
    }


def sb3_policy_name(observation_space: gym.Space) -> str:
    """Return SB3's policy name for an observation space (``Dict`` → ``MultiInputPolicy``)."""
    if isinstance(observation_space, gym.spaces.Dict):
        return "MultiInputPolicy"
    if isinstance(observation_space, gym.spaces.Box) and len(observation_space.shape) == 3:
        return "CnnPolicy"
    return "MlpPolicy"


class SB3Agent:
    """An SB3 model with the normalisation wrapper it was trained in, predicting like ours.

    Args:
        model: The SB3 algorithm instance.
        vec_normalize: The ``VecNormalize`` wrapper of its training env, or None.
    """

    def __init__(self, model: Any, vec_normalize: Any = None) -> None:
        self.model = model
        self.vec_normalize = vec_normalize
        self.env = model.get_env()

    @property
    def num_timesteps(self) -> int:
        """Env steps trained so far."""
        return int(self.model.num_timesteps)

    def predict(self, observation: Any, deterministic: bool = False) -> tuple[Any, None]:
        """Return ``(action, None)`` for one raw observation (normalised as in training)."""
        if self.vec_normalize is not None:
            observation = self.vec_normalize.normalize_obs(observation)
        action, _ = self.model.predict(observation, deterministic=deterministic)
        return action, None

    def learn(self, total_timesteps: int, callback: Callable[[Any], Any] | None = None) -> SB3Agent:
        """Train for ``total_timesteps`` env steps, calling ``callback(self)`` between updates.

        The callback runs when SB3 starts a rollout, i.e. right after the previous update:
        the same points at which our agents call theirs (after each rollout and update).
        """
        from stable_baselines3.common.callbacks import BaseCallback

        agent = self

        class _BetweenUpdates(BaseCallback):
            def _on_rollout_start(self) -> None:
                if callback is not None:
                    callback(agent)

            def _on_step(self) -> bool:
                return True

        self.model.learn(total_timesteps, callback=_BetweenUpdates())
        return self


def make_sb3_vec_env(
    env_id: str, env_kwargs: dict[str, Any], n_envs: int, seed: int, vec_env: str = "dummy"
) -> Any:
    """Return SB3's vector env of ``n_envs`` envs (env ``i`` seeded with ``seed + i``).

    Args:
        env_id: Gymnasium id (rlrobot ids are registered by importing rlrobot).
        env_kwargs: ``gym.make`` keywords.
        n_envs: Number of envs.
        seed: Seed of the first env.
        vec_env: ``"dummy"`` (``DummyVecEnv``: sequential, like our sync vector env) or
            ``"subproc"`` (``SubprocVecEnv``: one process per env, SB3's way to use cores).
    """
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    import rlrobot  # noqa: F401 - registers the rlrobot env ids in this process

    if vec_env not in SB3_VEC_ENVS:
        raise ValueError(f"vec_env must be one of {SB3_VEC_ENVS}, got {vec_env!r}")
    return make_vec_env(
        env_id,
        n_envs=n_envs,
        seed=seed,
        env_kwargs=dict(env_kwargs),
        vec_env_cls=DummyVecEnv if vec_env == "dummy" else SubprocVecEnv,
    )


def make_sb3_agent(
    algo: str,
    config: BaseConfig,
    env_id: str,
    env_kwargs: dict[str, Any],
    n_envs: int,
    seed: int,
    vec_env: str = "dummy",
) -> SB3Agent:
    """Build the SB3 counterpart of our agent on the same envs, seeds and hyperparameters.

    Args:
        algo: Our algorithm name.
        config: Our resolved config for it.
        env_id: Gymnasium id (rlrobot ids are registered by importing rlrobot).
        env_kwargs: ``gym.make`` keywords.
        n_envs: Number of envs.
        seed: Model seed; env ``i`` is seeded with ``seed + i``.
        vec_env: SB3's vector env, ``"dummy"`` or ``"subproc"`` (see ``make_sb3_vec_env``).
    """
    import stable_baselines3
    from stable_baselines3.common.vec_env import VecNormalize

    setup = to_sb3(algo, config)
    env = make_sb3_vec_env(env_id, env_kwargs, n_envs, seed, vec_env)
    vec_normalize = None
    if setup.vec_normalize_kwargs is not None:
        env = vec_normalize = VecNormalize(env, **setup.vec_normalize_kwargs)
    extra_kwargs = {}
    if setup.action_noise_std is not None:
        from stable_baselines3.common.noise import NormalActionNoise

        # SB3 adds it to actions scaled to [-1, 1] (the action scale), as our TD3 does.
        size = env.action_space.shape[0]
        extra_kwargs["action_noise"] = NormalActionNoise(
            np.zeros(size), np.full(size, setup.action_noise_std)
        )
    algorithm_class = getattr(stable_baselines3, setup.algorithm)
    policy = (
        config.policy_name
        if config.policy_name != "auto"
        else sb3_policy_name(env.observation_space)
    )
    model = algorithm_class(
        policy,
        env,
        seed=seed,
        device="cpu",
        verbose=0,
        **setup.model_kwargs,
        **extra_kwargs,
    )
    return SB3Agent(model, vec_normalize)
