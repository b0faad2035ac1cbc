"""Import a Stable-Baselines3 ``.zip`` without unpickling anything.

SB3's ``save`` writes a zip file with ``data`` (JSON; objects that JSON cannot hold are pickled
inside it, base64-encoded, next to a readable description), ``policy.pth`` (the policy's state
dict), the optimizer's state, ``pytorch_variables.pth`` and ``_stable_baselines3_version``.
We read only what needs no pickle: the plain JSON values of ``data`` (hyperparameters, the
readable fields of the spaces and of ``policy_kwargs``) and ``policy.pth`` with
``torch.load(weights_only=True)``, which refuses anything but tensors. SB3's parameter names
are then mapped onto our modules, and ``load_state_dict`` checks every shape.

Supported: ``MlpPolicy`` models of PPO and A2C (``ActorCriticPolicy``, ``Box`` or ``Discrete``
actions) and of SAC and TD3 (actor, twin critics and their targets, SAC's ``log_ent_coef``
from ``pytorch_variables.pth``), with equal actor and critic hidden sizes. The optimizer state
is not imported (it is in SB3's own layout); training continues with a fresh optimizer.
Everything else is refused with a message saying how to convert the model.
"""

from __future__ import annotations

import io
import json
import math
import pickle  # only for the error torch raises on a refused pickle; nothing is unpickled
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlrobot.common.checkpoint import SB3_VERSION_FILE, read_zip_member
from rlrobot.common.networks import ACTIVATIONS
from rlrobot.errors import CheckpointError

SB3_MEMBERS = (
    "data",
    "policy.pth",
    "pytorch_variables.pth",
    "policy.optimizer.pth",
    "actor.optimizer.pth",
    "critic.optimizer.pth",
    "ent_coef_optimizer.pth",
    SB3_VERSION_FILE,
    "system_info.txt",
)
# ``policy_kwargs`` keys that change nothing once the weights are loaded (the optimizer is not
# imported, and initialisation is overwritten).
_IGNORED_POLICY_KWARGS = {"optimizer_class", "optimizer_kwargs", "ortho_init", "log_std_init"}
# ``policy_kwargs`` keys accepted with the value our networks match (SB3 saves some always).
_MATCHING_POLICY_KWARGS = {"use_sde": False, "n_critics": 2}
# SB3 hyperparameters stored as plain JSON values that have a config field of the same name
# and meaning (where the algorithm has them).
_PLAIN_HYPERPARAMETERS = (
    "learning_rate",
    "gamma",
    "gae_lambda",
    "ent_coef",
    "vf_coef",
    "max_grad_norm",
    "n_steps",
    "batch_size",
    "n_epochs",
    "normalize_advantage",
    "target_kl",
    "clip_range_vf",
    "buffer_size",
    "learning_starts",
    "tau",
    "gradient_steps",
    "target_update_interval",
    "policy_delay",
    "target_policy_noise",
    "target_noise_clip",
    "target_entropy",
)
# SB3's policy class of each algorithm we import (``MlpPolicy`` is an alias of it).
_POLICY_CLASSES = {
    ("stable_baselines3.common.policies", "ActorCriticPolicy"): "on-policy",
    ("stable_baselines3.sac.policies", "SACPolicy"): "sac",
    ("stable_baselines3.td3.policies", "TD3Policy"): "td3",
}
# SB3's default activation per policy class.
_DEFAULT_ACTIVATIONS = {"on-policy": "tanh", "sac": "relu", "td3": "relu"}
_CONVERT_HINT = (
    "convert it by loading it with stable_baselines3 and copying the weights, or retrain it "
    "with rlrobot"
)


@dataclass(frozen=True)
class SB3Import:
    """What an SB3 ``.zip`` holds, in our terms."""

    algorithm: str
    config: dict[str, Any]
    spaces: tuple[gym.Space, gym.Space]
    n_envs: int
    weights: dict[str, dict[str, torch.Tensor]]


def read_sb3_archive(location: Path, expected_algorithm: str | None) -> SB3Import:
    """Read an SB3 ``.zip`` into our algorithm name, config values, spaces and module weights.

    Args:
        location: The zip file.
        expected_algorithm: The loading class's algorithm (None for a family class).

    Raises:
        CheckpointError: The file is damaged, or holds a model we cannot import.
    """
    data_bytes = read_zip_member(location, "data", SB3_MEMBERS)
    policy_bytes = read_zip_member(location, "policy.pth", SB3_MEMBERS)
    if data_bytes is None or policy_bytes is None:
        raise CheckpointError(f"{location}: Stable-Baselines3 zip without data or policy.pth")
    try:
        data = json.loads(data_bytes)
    except ValueError as error:
        raise CheckpointError(f"{location}: damaged Stable-Baselines3 zip ({error})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{location}: damaged Stable-Baselines3 zip (data is no object)")
    state_dict = _load_tensors(location, policy_bytes)
    algorithm = _algorithm_of(location, data)
    if expected_algorithm is not None and algorithm != expected_algorithm:
        raise CheckpointError(
            f"{location} holds a Stable-Baselines3 {algorithm.upper()} model, not "
            f"{expected_algorithm.upper()}; load it with the {algorithm.upper()} class"
        )
    if data.get("use_sde"):
        raise CheckpointError(
            f"{location}: models trained with use_sde=True cannot be imported; {_CONVERT_HINT}"
        )
    spaces = (
        _space_of(location, data, "observation_space"),
        _space_of(location, data, "action_space"),
    )
    if algorithm in ("ppo", "a2c"):
        weights, net_arch = _actor_critic_weights(location, state_dict, spaces[1])
    else:
        variables_bytes = read_zip_member(location, "pytorch_variables.pth", SB3_MEMBERS)
        variables = _load_tensors(location, variables_bytes) if variables_bytes else {}
        weights, net_arch = _off_policy_weights(location, algorithm, state_dict, variables)
    config = {key: data[key] for key in _PLAIN_HYPERPARAMETERS if _is_plain(data.get(key, []))}
    config.update(_constant_schedules(data))
    family = "on-policy" if algorithm in ("ppo", "a2c") else algorithm
    activation = _activation_of(location, data.get("policy_kwargs"), _DEFAULT_ACTIVATIONS[family])
    config.update(net_arch=net_arch, activation=activation)
    if algorithm == "sac" and _is_plain(data.get("ent_coef")):
        # A fixed coefficient (SB3's "auto…" strings learn it, from log_ent_coef).
        config["auto_ent_coef"] = False
        weights["entropy"] = {"log_ent_coef": torch.tensor(math.log(data["ent_coef"]))}
    return SB3Import(algorithm, config, spaces, int(data.get("n_envs", 1)), weights)


def _load_tensors(location: Path, data: bytes) -> dict[str, torch.Tensor]:
    """Read a ``torch.save``'d dict of tensors with ``weights_only=True`` (no code can run)."""
    try:
        tensors = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (ValueError, RuntimeError, EOFError, pickle.UnpicklingError) as error:
        # torch raises these for a damaged file and for a pickle it refuses.
        raise CheckpointError(f"{location}: damaged Stable-Baselines3 zip ({error})") from None
    if not isinstance(tensors, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in tensors.items()
    ):
        raise CheckpointError(f"{location}: damaged Stable-Baselines3 zip (not a dict of tensors)")
    return tensors


def _is_plain(value: Any) -> bool:
    """Tell whether a ``data`` value is a JSON scalar (not a pickled object's description)."""
    return value is None or isinstance(value, (bool, int, float))


def _algorithm_of(location: Path, data: dict[str, Any]) -> str:
    """Return ``"ppo"``, ``"a2c"``, ``"sac"`` or ``"td3"`` for an ``MlpPolicy`` model."""
    policy_class = data.get("policy_class")
    description = policy_class if isinstance(policy_class, dict) else {}
    match = re.match(r"<function (\w+)\.__init__", str(description.get("__init__", "")))
    name = match.group(1) if match else "an unknown policy"
    module = str(description.get("__module__", ""))
    family = _POLICY_CLASSES.get((module, name))
    if family is None:
        raise CheckpointError(
            f"{location} holds a Stable-Baselines3 model with {name} ({module or 'unknown'}); "
            f"only PPO, A2C, SAC and TD3 with MlpPolicy can be imported; {_CONVERT_HINT}"
        )
    if family != "on-policy":
        return family
    # PPO's data has its clipping parameter; A2C's has none.
    return "ppo" if "clip_range" in data else "a2c"


def _space_of(location: Path, data: dict[str, Any], key: str) -> gym.Space:
    """Rebuild a ``Box`` or ``Discrete`` space from the readable fields SB3 stores beside it."""
    description = data.get(key)
    if not isinstance(description, dict):
        raise CheckpointError(f"{location}: data has no {key}")
    kind = str(description.get(":type:", ""))
    try:
        if kind.endswith(".Discrete'>"):
            return gym.spaces.Discrete(int(description["n"]), start=int(description["start"]))
        if kind.endswith(".Box'>"):
            shape = tuple(int(n) for n in description["_shape"])
            dtype = np.dtype(description["dtype"])
            low = _array_of(description["low"], shape)
            high = _array_of(description["high"], shape)
            return gym.spaces.Box(low.astype(dtype), high.astype(dtype), shape, dtype)
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{location}: cannot read its {key} ({error!r})") from None
    raise CheckpointError(
        f"{location}: its {key} is {kind or 'unknown'}; only Box and Discrete spaces can be "
        f"imported; {_CONVERT_HINT}"
    )


def _array_of(text: str, shape: tuple[int, ...]) -> np.ndarray:
    """Parse a NumPy array's ``str`` (as SB3 stores a space's bounds) of the given shape."""
    if "..." in text:
        raise ValueError("the bounds are abbreviated ('...'), too large to read back")
    values = np.array([float(x) for x in text.replace("[", " ").replace("]", " ").split()])
    return np.broadcast_to(values, (int(np.prod(shape)),)).reshape(shape)


def _constant_schedules(data: dict[str, Any]) -> dict[str, float]:
    """Return ``learning_rate``/``clip_range`` where SB3 stored them as constant schedules."""
    found = {}
    for sb3_key, key in (("lr_schedule", "learning_rate"), ("clip_range", "clip_range")):
        entry = data.get(sb3_key)
        text = str(entry.get("value_schedule", "")) if isinstance(entry, dict) else ""
        match = re.fullmatch(r"ConstantSchedule\(val=([-+0-9.eE]+)\)", text)
        if match:
            found[key] = float(match.group(1))
    return found


def _activation_of(location: Path, policy_kwargs: Any, default: str) -> str:
    """Return our activation name from SB3's ``policy_kwargs``, refusing what we cannot map."""
    if not isinstance(policy_kwargs, dict):
        return default
    # A dict holding non-JSON values (classes) is pickled, next to the str of each value.
    readable = {k: v for k, v in policy_kwargs.items() if not k.startswith(":")}
    unknown = {
        key
        for key, value in readable.items()
        if key not in (*_IGNORED_POLICY_KWARGS, "net_arch", "activation_fn")
        and str(value) != str(_MATCHING_POLICY_KWARGS.get(key, object()))
    }
    if unknown:
        raise CheckpointError(
            f"{location}: policy_kwargs {sorted(unknown)} cannot be imported (allowed: net_arch, "
            f"activation_fn, {', '.join(sorted(_IGNORED_POLICY_KWARGS))}, and "
            f"{_MATCHING_POLICY_KWARGS}); {_CONVERT_HINT}"
        )
    if "activation_fn" not in readable:
        return default
    match = re.search(r"\.(\w+)'>$", str(readable["activation_fn"]))
    name = match.group(1).lower() if match else ""
    if name not in ACTIVATIONS:
        raise CheckpointError(
            f"{location}: activation_fn {readable.get('activation_fn')!r} cannot be imported; "
            f"allowed: {sorted(ACTIVATIONS)}"
        )
    return name


def _actor_critic_weights(
    location: Path, state_dict: dict[str, torch.Tensor], action_space: gym.Space
) -> tuple[dict[str, dict[str, torch.Tensor]], list[int]]:
    """Rename an ``ActorCriticPolicy`` state dict to our policy's and infer ``net_arch``."""
    head = "logits" if isinstance(action_space, gym.spaces.Discrete) else "mean"
    renames = {
        "mlp_extractor.policy_net.": "actor.",
        "mlp_extractor.value_net.": "critic.",
        "action_net.": f"action_head.{head}.",
        "value_net.": "value_head.",
        "log_std": "action_head.log_std",
    }
    weights = _rename(location, state_dict, renames)
    actor = _hidden_sizes(state_dict, "mlp_extractor.policy_net.")
    critic = _hidden_sizes(state_dict, "mlp_extractor.value_net.")
    _check_same_sizes(location, actor, critic)
    return {"policy": weights}, actor


def _off_policy_weights(
    location: Path,
    algorithm: str,
    state_dict: dict[str, torch.Tensor],
    variables: dict[str, torch.Tensor],
) -> tuple[dict[str, dict[str, torch.Tensor]], list[int]]:
    """Rename a ``SACPolicy``/``TD3Policy`` state dict to our modules' and infer ``net_arch``.

    SB3 keeps each Q-network apart (``critic.qf0.0.weight``, ``(out, in)``); ours stacks them
    as one ensemble layer (``hidden_layers.0.weight``, ``(n_critics, in, out)``).
    """
    modules: dict[str, dict[str, torch.Tensor]] = {}
    if algorithm == "sac":
        renames = {
            "actor.latent_pi.": "latent.",
            "actor.mu.": "head.mean.",
            "actor.log_std.": "head.log_std.",
        }
        actor_keys = {k: v for k, v in state_dict.items() if k.startswith("actor.")}
        modules["actor"] = _rename(location, actor_keys, renames)
        actor = _hidden_sizes(state_dict, "actor.latent_pi.")
        if "log_ent_coef" in variables:
            modules["entropy"] = {"log_ent_coef": variables["log_ent_coef"].reshape(())}
    else:
        for name in ("actor", "actor_target"):
            keys = {k: v for k, v in state_dict.items() if k.startswith(f"{name}.")}
            modules[name] = _rename(location, keys, {f"{name}.mu.": "mu."})
        actor = _hidden_sizes(state_dict, "actor.mu.")[:-1]
    for name in ("critic", "critic_target"):
        modules[name] = _ensemble_critic(location, state_dict, name)
    critic = _hidden_sizes(state_dict, "critic.qf0.")[:-1]
    _check_same_sizes(location, actor, critic)
    known = {"actor.", "actor_target.", "critic.", "critic_target."}
    unknown = [k for k in state_dict if not k.startswith(tuple(known))]
    if unknown:
        raise CheckpointError(
            f"{location}: policy.pth holds {unknown[0]!r}, which an MlpPolicy has not; "
            f"{_CONVERT_HINT}"
        )
    return modules, actor


def _ensemble_critic(
    location: Path, state_dict: dict[str, torch.Tensor], name: str
) -> dict[str, torch.Tensor]:
    """Stack SB3's ``<name>.qf<k>.<i>`` linear layers into our ensemble critic's layers."""
    n_critics = len({k.split(".")[1] for k in state_dict if k.startswith(f"{name}.qf")})
    indices = sorted({int(k.split(".")[2]) for k in state_dict if k.startswith(f"{name}.qf0.")})
    if n_critics == 0 or not indices:
        raise CheckpointError(f"{location}: policy.pth has no {name} Q-networks; {_CONVERT_HINT}")
    weights = {}
    for position, index in enumerate(indices):
        layer = "output_layer" if position == len(indices) - 1 else f"hidden_layers.{position}"
        try:
            weights[f"{layer}.weight"] = torch.stack(
                [state_dict[f"{name}.qf{k}.{index}.weight"].T for k in range(n_critics)]
            )
            weights[f"{layer}.bias"] = torch.stack(
                [state_dict[f"{name}.qf{k}.{index}.bias"][None] for k in range(n_critics)]
            )
        except KeyError as error:
            raise CheckpointError(
                f"{location}: policy.pth lacks {error}; {_CONVERT_HINT}"
            ) from None
    return weights


def _rename(
    location: Path, state_dict: dict[str, torch.Tensor], renames: dict[str, str]
) -> dict[str, torch.Tensor]:
    """Return ``state_dict`` with SB3's prefixes replaced by ours; refuse a name we lack."""
    weights = {}
    for name, tensor in state_dict.items():
        prefix = next((p for p in renames if name.startswith(p)), None)
        if prefix is None:
            raise CheckpointError(
                f"{location}: policy.pth holds {name!r}, which an MlpPolicy has not; "
                f"{_CONVERT_HINT}"
            )
        weights[renames[prefix] + name[len(prefix) :]] = tensor
    return weights


def _hidden_sizes(state_dict: dict[str, torch.Tensor], prefix: str) -> list[int]:
    """Return the output sizes of SB3's linear layers ``<prefix><i>.weight``, in layer order."""
    found = {
        int(key[len(prefix) :].split(".")[0]): int(tensor.shape[0])
        for key, tensor in state_dict.items()
        if key.startswith(prefix) and key.endswith(".weight")
    }
    return [found[index] for index in sorted(found)]


def _check_same_sizes(location: Path, actor: list[int], critic: list[int]) -> None:
    """Refuse an actor and critic of other hidden sizes: ours share one ``net_arch``."""
    if actor != critic:
        raise CheckpointError(
            f"{location}: its policy has net_arch pi={actor}, vf/qf={critic}; rlrobot's actor "
            "and critic share one net_arch, so only equal sizes can be imported"
        )
