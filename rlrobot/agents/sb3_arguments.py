"""Stable-Baselines3's constructor arguments, converted once into our config fields.

An SB3 user writes ``PPO("MlpPolicy", env, learning_rate=…, policy_kwargs=dict(…))``. This
module is the edge where those forms become our one internal form: the policy name becomes
``config.policy_name``, each ``policy_kwargs`` key a config field (an activation class its
name, a feature-extractor class its ``"module:qualname"``), and every SB3 argument we do not
implement an error that names it. ``SB3_ARGUMENTS`` is the single table of SB3 argument
names, read in both directions: here (SB3 → ours) and by ``rlrobot.benchmark.sb3.to_sb3``
(ours → SB3); ``SB3_ARGUMENT_OWNERS`` says which SB3 algorithms take each one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlrobot.common.config import COUNT, SEED, BaseConfig, check_argument
from rlrobot.common.custom_extractor import CustomExtractor, class_path, resolve_module_class
from rlrobot.common.networks import ACTIVATIONS, is_image_space, make_features_extractor
from rlrobot.envs.checks import Interval, check_bool, check_number
from rlrobot.errors import ConfigError

POLICY_NAMES = ("MlpPolicy", "CnnPolicy", "MultiInputPolicy")


@dataclass(frozen=True)
class Unsupported:
    """An SB3 argument we do not implement: refused, except at SB3's default, which asks for
    nothing we lack (``use_sde=False`` is our behaviour) and is accepted."""

    reason: str
    default: Any


GSDE = "generalized State-Dependent Exploration (gSDE) is not implemented; exploration is Gaussian"
ROLLOUT_BUFFER = "the on-policy agents have one rollout buffer, which cannot be replaced"
# SB3 constructor argument → our config field of the same meaning, or ``Unsupported``. SB3's
# names that are our field names too (learning_rate, n_steps, gamma, …) pass through unchanged
# and are not listed; nor are the constructor's own keywords (policy, env, policy_kwargs,
# verbose, seed, device, tensorboard_log, stats_window_size, _init_setup_model).
SB3_ARGUMENTS: dict[str, str | Unsupported] = {
    "rms_prop_eps": "optimizer_eps",
    "use_rms_prop": "optimizer",
    "use_sde": Unsupported(GSDE, False),
    "sde_sample_freq": Unsupported(GSDE, -1),
    "use_sde_at_warmup": Unsupported(GSDE, False),
    "rollout_buffer_class": Unsupported(ROLLOUT_BUFFER, None),
    "rollout_buffer_kwargs": Unsupported(ROLLOUT_BUFFER, None),
}

ON_POLICY, OFF_POLICY = ("A2C", "PPO"), ("SAC", "TD3")
# The SB3 algorithms whose constructor takes each argument (those not every one takes), so an
# argument given to the wrong class is named as such.
SB3_ARGUMENT_OWNERS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("gae_lambda", "vf_coef", "max_grad_norm", "normalize_advantage"), ON_POLICY),
    **dict.fromkeys(("rollout_buffer_class", "rollout_buffer_kwargs"), ON_POLICY),
    **dict.fromkeys(("n_epochs", "clip_range", "clip_range_vf", "target_kl"), ("PPO",)),
    **dict.fromkeys(("rms_prop_eps", "use_rms_prop"), ("A2C",)),
    "batch_size": ("PPO", *OFF_POLICY),
    "ent_coef": (*ON_POLICY, "SAC"),
    "sde_sample_freq": (*ON_POLICY, "SAC"),
    "use_sde": (*ON_POLICY, "SAC"),
    **dict.fromkeys(
        (
            "buffer_size",
            "learning_starts",
            "tau",
            "train_freq",
            "gradient_steps",
            "action_noise",
            "replay_buffer_class",
            "replay_buffer_kwargs",
            "optimize_memory_usage",
        ),
        OFF_POLICY,
    ),
    **dict.fromkeys(("target_update_interval", "target_entropy", "use_sde_at_warmup"), ("SAC",)),
    **dict.fromkeys(("policy_delay", "target_policy_noise", "target_noise_clip"), ("TD3",)),
}

# SB3's optimizer classes → our ``optimizer`` names (on-policy; off-policy agents use Adam).
OPTIMIZERS: dict[type[torch.optim.Optimizer], str] = {
    torch.optim.Adam: "adam",
    torch.optim.RMSprop: "rmsprop",
}
# SB3's ``optimizer_kwargs`` keys → our config fields (both families, Adam and RMSprop).
OPTIMIZER_KWARGS = {"eps": "optimizer_eps", "weight_decay": "optimizer_weight_decay"}
# The config fields that ``policy_kwargs`` keys of another name become, named as the user wrote
# them in messages (the others have the key's name).
POLICY_KWARGS_OF_FIELDS = {
    "critic_net_arch": "policy_kwargs['net_arch']",
    "activation": "policy_kwargs['activation_fn']",
    "optimizer": "policy_kwargs['optimizer_class']",
    "optimizer_eps": "policy_kwargs['optimizer_kwargs']['eps']",
    "optimizer_weight_decay": "policy_kwargs['optimizer_kwargs']['weight_decay']",
}
# What our RMSprop fixes (as SB3's A2C sets it); policy_kwargs may repeat these values only.
RMSPROP_FIXED = {"alpha": 0.99}


def split_policy_and_env(algorithm: str, policy: Any, env: Any) -> tuple[str, Any]:
    """Read SB3's ``(policy, env)`` positionals, or our ``(env,)``; return ``(policy, env)``.

    A first argument that is one of ``POLICY_NAMES`` is the policy; anything else is the env
    (an id, instance, factory or vector env) and the policy is ``"auto"``, as it is when only
    ``env=`` is given.

    Raises:
        ConfigError: A policy class, or an unknown policy name before an env.
    """
    if isinstance(policy, str) and policy in POLICY_NAMES:
        return policy, env
    if isinstance(policy, type) and issubclass(policy, nn.Module):  # other classes: env factories
        raise ConfigError(
            f"policy {policy.__qualname__}: policy classes are not supported; pass one of "
            f"{list(POLICY_NAMES)} and shape the networks with policy_kwargs"
        )
    if policy is None:  # ``env=`` by keyword, no policy name: ours, ``PPO(env)``
        return "auto", env
    if env is not None:
        raise ConfigError(
            f"policy {policy!r} is not one of {list(POLICY_NAMES)}; {algorithm}(policy, env) "
            f"takes a policy name first (or {algorithm}(env) alone)"
        )
    return "auto", policy


def check_policy(policy: str, observation_space: gym.Space) -> None:
    """Raise ``ConfigError`` where the policy name does not fit the observation space.

    SB3's meaning: ``MultiInputPolicy`` is for ``Dict`` spaces and the only one for them,
    ``CnnPolicy`` for image ``Box`` spaces (uint8, rank 3); ``MlpPolicy`` flattens anything
    else, images included (scaled to [0, 1]).
    """
    is_dict = isinstance(observation_space, gym.spaces.Dict)
    if policy in ("MlpPolicy", "CnnPolicy") and is_dict:
        raise ConfigError(
            f"policy {policy!r}: the observation space is a Dict ({observation_space}); use "
            "MultiInputPolicy"
        )
    if policy == "MultiInputPolicy" and not is_dict:
        raise ConfigError(
            f"policy 'MultiInputPolicy' needs a Dict observation space, got {observation_space}; "
            "use MlpPolicy (or CnnPolicy for images)"
        )
    if policy == "CnnPolicy" and not is_image_space(observation_space):
        raise ConfigError(
            f"policy 'CnnPolicy' needs image observations (a uint8 Box of rank 3), got "
            f"{observation_space}; use MlpPolicy"
        )


def check_common_arguments(verbose: Any, stats_window_size: Any, seed: Any) -> int | None:
    """Return ``seed`` as an int (NumPy integers too) or None; raise ``ConfigError`` unless
    ``verbose`` is 0, 1 or 2, ``stats_window_size`` an integer >= 1 and ``seed`` None or an
    integer in ``SEED``."""
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):  # True == 1, but is no level
        raise ConfigError(f"verbose must be 0 (silent), 1 (info) or 2 (debug), got {verbose!r}")
    if isinstance(stats_window_size, float):  # SB3 sizes a deque with it: an int only
        raise ConfigError(f"stats_window_size must be an integer, got {stats_window_size!r}")
    check_argument("stats_window_size", stats_window_size, int, COUNT)
    return check_seed(seed)


def check_seed(seed: Any) -> int | None:
    """Return ``seed`` as an int (``np.int64(3)`` is 3) or None; raise ``ConfigError`` unless
    it is None or an integer in ``SEED``."""
    if seed is None:
        return None
    if isinstance(seed, (float, np.floating)):  # a seed is an int: 1.5 and 1.0 are both mistakes
        raise ConfigError(f"seed must be an integer or None, got {seed!r}")
    return check_argument("seed", seed, int, SEED)


def check_learn_arguments(total_timesteps: Any, log_interval: Any) -> tuple[int, int | None]:
    """Return ``learn``'s budget and log interval as ints; raise ``ConfigError`` unless the
    budget is an integer >= 1 and the interval None or an integer >= 1.

    ``1e5`` reads as 100000, as SB3 users write it. SB3 runs no step for a budget of 0 (or
    NaN) without a word; here either is a mistake, said so.
    """
    total_timesteps = check_argument("total_timesteps", total_timesteps, int, COUNT)
    if log_interval is not None:
        log_interval = check_argument("log_interval", log_interval, int, COUNT)
    return total_timesteps, log_interval


def check_flag(name: str, value: Any) -> bool:
    """Return ``value`` as a bool; raise ``ConfigError`` naming ``name`` unless it is True or
    False (``"no"`` and ``"x"`` are truthy strings, not answers)."""
    try:
        return check_bool(name, value)
    except ValueError as error:
        raise ConfigError(str(error)) from None


def check_run_name(tb_log_name: Any) -> str | None:
    """Return ``learn``'s ``tb_log_name``; raise ``ConfigError`` unless it is None or a
    non-empty string (it names a folder)."""
    if tb_log_name is not None and not (isinstance(tb_log_name, str) and tb_log_name):
        raise ConfigError(f"tb_log_name must be a non-empty string or None, got {tb_log_name!r}")
    return tb_log_name


def convert_sb3_arguments(
    algorithm: str, arguments: dict[str, Any], field_names: list[str]
) -> dict[str, Any]:
    """Return the keyword arguments with SB3's names replaced by our config fields.

    Args:
        algorithm: The class name (``"PPO"`` …).
        arguments: The constructor's keyword arguments beyond its own.
        field_names: The fields of the algorithm's config.

    Raises:
        ConfigError: An SB3 argument that rlrobot does not support, or one of another SB3
            algorithm (said so, rather than a did-you-mean among our fields).
    """
    converted = {}
    for key, value in arguments.items():
        owners = SB3_ARGUMENT_OWNERS.get(key, ())
        if owners and algorithm not in owners and SB3_ARGUMENTS.get(key, key) not in field_names:
            raise ConfigError(
                f"{key!r} is an argument of SB3's {', '.join(owners)}, not of {algorithm}"
            )
        target = SB3_ARGUMENTS.get(key, key)
        if isinstance(target, Unsupported):
            if type(value) is type(target.default) and value == target.default:
                continue
            raise ConfigError(
                f"{algorithm} argument {key!r}={value!r} is not supported: {target.reason} "
                f"(only SB3's default {target.default!r} is accepted)"
            )
        if key == "use_rms_prop":
            if not isinstance(value, bool):
                raise ConfigError(
                    f"{algorithm} argument 'use_rms_prop': expected a bool, got {value!r}"
                )
            converted["optimizer"] = "rmsprop" if value else "adam"
        else:
            converted[target] = value
    return converted


def config_to_sb3_arguments(fields: dict[str, Any]) -> dict[str, Any]:
    """Return SB3's arguments for our renamed config fields (``convert_sb3_arguments`` reversed)."""
    renamed = {ours: sb3 for sb3, ours in SB3_ARGUMENTS.items() if isinstance(ours, str)}
    arguments = {}
    for key, value in fields.items():
        if key == "optimizer":
            arguments[renamed[key]] = value == "rmsprop"
        else:
            arguments[renamed[key]] = value
    return arguments


def convert_policy_kwargs(
    algorithm: str,
    policy_kwargs: dict[str, Any] | None,
    on_policy: bool,
    config_class: type[BaseConfig],
) -> dict[str, Any]:
    """Return the config fields that SB3's ``policy_kwargs`` mean for our networks.

    Each value is checked by its field's type and range, the message naming the
    ``policy_kwargs`` key it came from.

    Args:
        algorithm: The class name, for messages.
        policy_kwargs: SB3's dict (``net_arch``, ``activation_fn``, ``ortho_init``,
            ``log_std_init``, ``optimizer_class``, ``optimizer_kwargs``,
            ``share_features_extractor``, ``n_critics``, ``features_extractor_class``,
            ``features_extractor_kwargs``, ``normalize_images``).
        on_policy: A2C/PPO/REINFORCE (one shared extractor, value head) rather than SAC/TD3.
        config_class: The algorithm's config, whose fields check the values.

    Raises:
        ConfigError: A key we cannot honour, named with the reason, or a value of the wrong
            type or out of its field's range.
    """
    if policy_kwargs is None:
        return {}
    if not isinstance(policy_kwargs, dict):
        raise ConfigError(f"policy_kwargs: expected a dict, got {policy_kwargs!r}")
    fields: dict[str, Any] = {}

    def refuse(key: str, reason: str) -> ConfigError:
        return ConfigError(
            f"policy_kwargs[{key!r}]={policy_kwargs[key]!r} is not supported by {algorithm}: "
            f"{reason}"
        )

    for key, value in policy_kwargs.items():
        if key == "net_arch":
            fields.update(_convert_net_arch(value, on_policy))
        elif key == "activation_fn":
            names = {cls: name for name, cls in ACTIVATIONS.items()}
            if value not in names:
                raise refuse(
                    key, f"use one of torch.nn.{', torch.nn.'.join(c.__name__ for c in names)}"
                )
            fields["activation"] = names[value]
        elif key in ("ortho_init", "log_std_init") and on_policy:
            fields[key] = value
        elif key == "log_std_init":
            raise refuse(
                key, f"SB3's {algorithm} uses it only with use_sde, which is not supported"
            )
        elif key == "optimizer_class":
            allowed = OPTIMIZERS if on_policy else {torch.optim.Adam: "adam"}
            if value not in allowed:
                names = ", ".join(f"torch.optim.{c.__name__}" for c in allowed)
                raise refuse(key, f"use {names}")
            if on_policy:
                fields["optimizer"] = allowed[value]
        elif key == "optimizer_kwargs":
            fields.update(_convert_optimizer_kwargs(algorithm, value, policy_kwargs, on_policy))
        elif key == "share_features_extractor":
            if not isinstance(value, bool):
                raise refuse(key, "expected True or False")
            if on_policy:
                fields[key] = value
            elif value:
                # SB3's off-policy sharing trains the extractor by the actor loss alone.
                raise refuse(key, "the critics of SAC and TD3 always have their own extractor")
        elif key == "n_critics" and not on_policy:
            fields["n_critics"] = value
        elif key == "normalize_images":
            if value is not True:
                raise refuse(key, "uint8 images are always scaled to [0, 1]")
        elif key == "features_extractor_class":
            if not (isinstance(value, type) and issubclass(value, nn.Module)):
                raise refuse(
                    key, "expected a torch.nn.Module subclass (SB3's BaseFeaturesExtractor)"
                )
            if "<locals>" in value.__qualname__:
                raise refuse(key, "define the class at module level, where a checkpoint names it")
            fields["features_extractor_class"] = class_path(value)
        elif key == "features_extractor_kwargs":
            try:
                json.dumps(value)
            except (TypeError, ValueError):
                raise refuse(
                    key, "its values must be JSON (numbers, strings, lists, dicts)"
                ) from None
            if not isinstance(value, dict):
                raise refuse(key, "expected a dict")
            fields["features_extractor_kwargs"] = value
        else:
            raise ConfigError(f"policy_kwargs key {key!r} is not supported by {algorithm}")
    return {
        key: config_class.check_field(
            key, value, POLICY_KWARGS_OF_FIELDS.get(key, f"policy_kwargs[{key!r}]")
        )
        for key, value in fields.items()
    }


# The config fields that SB3's ``policy_kwargs`` set, by family: what ``load(policy_kwargs=…)``
# compares with the saved networks.
POLICY_KWARGS_FIELDS = {
    True: (
        "net_arch",
        "critic_net_arch",
        "activation",
        "ortho_init",
        "log_std_init",
        "optimizer",
        "optimizer_eps",
        "optimizer_weight_decay",
        "features_extractor_class",
        "features_extractor_kwargs",
    ),
    False: (
        "net_arch",
        "critic_net_arch",
        "activation",
        "n_critics",
        "optimizer_eps",
        "optimizer_weight_decay",
        "features_extractor_class",
        "features_extractor_kwargs",
    ),
}


def check_policy_kwargs_match(
    algorithm: str, policy_kwargs: Any, config: Any, on_policy: bool
) -> None:
    """Raise ``ConfigError`` unless ``policy_kwargs`` describe the networks ``config`` holds.

    SB3's ``load(…, policy_kwargs=…)`` requires them equal to the saved ``policy_kwargs`` (a
    ValueError otherwise). Ours saves config fields, so the given ``policy_kwargs`` are
    converted onto the defaults and every network field compared: the same dict as at
    construction passes, another (or a part of it) is refused, naming the differing fields.
    """
    fields = convert_policy_kwargs(algorithm, policy_kwargs or {}, on_policy, type(config))
    defaults = type(config)()
    differing = {}
    for name in POLICY_KWARGS_FIELDS[on_policy]:
        if not hasattr(config, name):
            continue
        given = fields.get(name, getattr(defaults, name))
        if given != getattr(config, name):
            differing[name] = (given, getattr(config, name))
    if differing:
        described = ", ".join(f"{k}={v[0]!r} (saved: {v[1]!r})" for k, v in differing.items())
        raise ConfigError(
            f"{algorithm}.load: the specified policy_kwargs do not equal the stored ones: "
            f"{described}; leave policy_kwargs out (the saved networks are rebuilt) or make a "
            "new agent"
        )


def _convert_net_arch(net_arch: Any, on_policy: bool) -> dict[str, Any]:
    """SB3's ``net_arch`` (a list, or ``dict(pi=…, vf=…)`` / ``dict(pi=…, qf=…)``) → fields."""
    critic_key = "vf" if on_policy else "qf"
    if isinstance(net_arch, (list, tuple)):
        return {"net_arch": tuple(net_arch), "critic_net_arch": None}
    if isinstance(net_arch, dict) and set(net_arch) <= {"pi", critic_key}:
        # SB3 gives a missing key an empty list: no hidden layer.
        return {
            "net_arch": tuple(net_arch.get("pi", ())),
            "critic_net_arch": tuple(net_arch.get(critic_key, ())),
        }
    raise ConfigError(
        f"policy_kwargs['net_arch']: expected a list of layer sizes or dict(pi=[…], "
        f"{critic_key}=[…]), got {net_arch!r}"
    )


def _convert_optimizer_kwargs(
    algorithm: str, kwargs: Any, policy_kwargs: dict[str, Any], on_policy: bool
) -> dict[str, Any]:
    """SB3's ``optimizer_kwargs`` → ``optimizer_eps``, ``optimizer_weight_decay`` (RMSprop's
    fixed ``alpha=0.99`` accepted); the agents' actor and critic optimizers take them, as
    SB3's ``optimizer_class(params, lr, **optimizer_kwargs)`` do."""
    if not isinstance(kwargs, dict):
        raise ConfigError(f"policy_kwargs['optimizer_kwargs']: expected a dict, got {kwargs!r}")
    fields = {}
    rmsprop = on_policy and policy_kwargs.get("optimizer_class") is torch.optim.RMSprop
    for key, value in kwargs.items():
        if key in OPTIMIZER_KWARGS:
            fields[OPTIMIZER_KWARGS[key]] = value
        elif rmsprop and key in RMSPROP_FIXED and value == RMSPROP_FIXED[key]:
            continue
        else:
            raise ConfigError(
                f"policy_kwargs['optimizer_kwargs'][{key!r}]={value!r} is not supported by "
                f"{algorithm} (allowed: {', '.join(OPTIMIZER_KWARGS)}; RMSprop's alpha=0.99)"
            )
    return fields


# SB3's default feature extractors and the keywords of each that ours honours, as the
# ``make_features_extractor`` keyword they set: NatureCNN's ``features_dim`` and
# CombinedExtractor's ``cnn_output_dim`` are our CNN's output width; FlattenExtractor takes none
# (SB3 raises TypeError). ``normalized_image=False``, what both CNN extractors do with uint8
# images, is accepted too.
DEFAULT_EXTRACTOR_KEYWORDS: dict[str, dict[str, str]] = {
    "FlattenExtractor": {},
    "NatureCNN": {"features_dim": "cnn_features_dim"},
    "CombinedExtractor": {"cnn_output_dim": "cnn_features_dim"},
}


def default_extractor_name(policy_name: str, observation_space: gym.Space) -> str:
    """Return SB3's name of the default extractor that ours builds for this policy and space."""
    if isinstance(observation_space, gym.spaces.Dict):
        return "CombinedExtractor"
    if is_image_space(observation_space) and policy_name != "MlpPolicy":
        return "NatureCNN"
    return "FlattenExtractor"


def default_extractor_options(config: Any, observation_space: gym.Space) -> dict[str, Any]:
    """Return the ``make_features_extractor`` keywords that ``features_extractor_kwargs`` set on
    the default extractor (no ``features_extractor_class``), as SB3 passes them to its default.

    Raises:
        ConfigError: A keyword the default extractor does not take (SB3: a TypeError), or a
            width that is not an integer >= 1.
    """
    name = default_extractor_name(config.policy_name, observation_space)
    keywords = DEFAULT_EXTRACTOR_KEYWORDS[name]
    options = {}
    for key, value in (config.features_extractor_kwargs or {}).items():
        entry = f"policy_kwargs['features_extractor_kwargs'][{key!r}]={value!r}"
        if key == "normalized_image" and keywords:
            if value is not False:
                raise ConfigError(
                    f"{entry}: uint8 images are always scaled to [0, 1] here; leave it False"
                )
        elif key in keywords:
            try:
                options[keywords[key]] = check_number(key, value, int, Interval(1))
            except ValueError as error:
                raise ConfigError(f"{entry}: {error}") from None
        else:
            takes = [*keywords, "normalized_image"] if keywords else "no keywords"
            raise ConfigError(
                f"{entry}: the default feature extractor for {observation_space} is SB3's "
                f"{name}, which takes {takes}; give features_extractor_class for other keywords"
            )
    return options


def build_features_extractor(
    config: Any,
    observation_space: gym.Space,
    image_encoder: nn.Module | None = None,
    freeze_encoder: bool = False,
) -> nn.Module:
    """Build the feature extractor that ``config.policy_name`` and the extractor fields describe.

    Raises:
        ConfigError: The extractor class cannot be resolved, or does not keep the contract.
    """
    if config.features_extractor_class is None:
        return make_features_extractor(
            observation_space,
            image_encoder,
            freeze_encoder,
            flatten_images=config.policy_name == "MlpPolicy",
            **default_extractor_options(config, observation_space),
        )
    try:
        extractor_class = resolve_module_class(
            config.features_extractor_class, "features_extractor_class"
        )
        return CustomExtractor(
            observation_space, extractor_class, config.features_extractor_kwargs or {}
        )
    except (TypeError, ValueError) as error:
        raise ConfigError(str(error)) from error


def check_extractor_choice(config: Any, observation_space: gym.Space, image_encoder: Any) -> None:
    """Raise ``ConfigError`` for a policy name or extractor that does not fit the space."""
    if config.policy_name != "auto":
        check_policy(config.policy_name, observation_space)
    if config.features_extractor_class is None:
        default_extractor_options(config, observation_space)
    if image_encoder is None:
        return
    if config.features_extractor_kwargs and config.features_extractor_class is None:
        raise ConfigError(
            "image_encoder replaces the default CNN, so policy_kwargs['features_extractor_kwargs']"
            f"={config.features_extractor_kwargs!r} would be unused; give one"
        )
    if config.features_extractor_class is not None:
        raise ConfigError(
            "image_encoder and policy_kwargs['features_extractor_class'] both replace the "
            "feature extractor; give one"
        )
    if config.policy_name == "MlpPolicy" and is_image_space(observation_space):
        raise ConfigError(
            "policy 'MlpPolicy' flattens the images, so image_encoder would be unused; use "
            "CnnPolicy with image_encoder"
        )
    if not getattr(config, "share_features_extractor", True):
        raise ConfigError(
            "image_encoder is one module, so actor and critic would share it; drop "
            "policy_kwargs['share_features_extractor']=False or the image_encoder"
        )
