"""Import a Stable-Baselines3 ``.zip`` without unpickling anything.

SB3's ``save`` writes a zip file with ``data`` (JSON; objects that JSON cannot hold are pickled
inside it, base64-encoded, next to a readable description), ``policy.pth`` (the policy's state
dict), the optimizer's state, ``pytorch_variables.pth`` and ``_stable_baselines3_version``.
We read only what needs no pickle: the plain JSON values of ``data`` (hyperparameters, the
readable fields of the spaces and of ``policy_kwargs``) and ``policy.pth`` with
``torch.load(weights_only=True)``, which refuses anything but tensors. SB3's parameter names
are then mapped onto our modules, and ``load_state_dict`` checks every shape.

Supported: PPO and A2C with ``MlpPolicy`` (``ActorCriticPolicy``) on a ``Box`` or ``Discrete``
action space. The optimizer state is not imported (it is in SB3's own layout); training
continues with a fresh optimizer. Everything else is refused with a message saying how to
convert the model.
"""

from __future__ import annotations

import io
import json
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
)
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
        state_dict = torch.load(io.BytesIO(policy_bytes), map_location="cpu", weights_only=True)
    except (ValueError, RuntimeError, EOFError, pickle.UnpicklingError) as error:
        # ValueError covers bad JSON and text; torch raises the others for a refused pickle.
        raise CheckpointError(f"{location}: damaged Stable-Baselines3 zip ({error})") from None
    if not isinstance(data, dict) or not isinstance(state_dict, dict):
        raise CheckpointError(f"{location}: damaged Stable-Baselines3 zip (unexpected layout)")
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
    weights, net_arch = _policy_weights(location, state_dict, spaces[1])
    config = {key: data[key] for key in _PLAIN_HYPERPARAMETERS if _is_plain(data.get(key, []))}
    config.update(_constant_schedules(data))
    config.update(net_arch=net_arch, activation=_activation_of(location, data.get("policy_kwargs")))
    return SB3Import(algorithm, config, spaces, int(data.get("n_envs", 1)), {"policy": weights})


def _is_plain(value: Any) -> bool:
    """Tell whether a ``data`` value is a JSON scalar (not a pickled object's description)."""
    return value is None or isinstance(value, (bool, int, float))


def _algorithm_of(location: Path, data: dict[str, Any]) -> str:
    """Return ``"ppo"`` or ``"a2c"`` for an ``MlpPolicy`` model; refuse anything else."""
    policy_class = data.get("policy_class")
    description = policy_class if isinstance(policy_class, dict) else {}
    match = re.match(r"<function (\w+)\.__init__", str(description.get("__init__", "")))
    name = match.group(1) if match else "an unknown policy"
    module = str(description.get("__module__", ""))
    if module != "stable_baselines3.common.policies" or name != "ActorCriticPolicy":
        raise CheckpointError(
            f"{location} holds a Stable-Baselines3 model with {name} ({module or 'unknown'}); "
            f"only PPO and A2C with MlpPolicy can be imported; {_CONVERT_HINT}"
        )
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


def _activation_of(location: Path, policy_kwargs: Any) -> str:
    """Return our activation name from SB3's ``policy_kwargs``, refusing what we cannot map."""
    if not isinstance(policy_kwargs, dict):
        return "tanh"
    # A dict holding non-JSON values (classes) is pickled, next to the str of each value.
    readable = {k: v for k, v in policy_kwargs.items() if not k.startswith(":")}
    unknown = set(readable) - _IGNORED_POLICY_KWARGS - {"net_arch", "activation_fn"}
    if unknown:
        raise CheckpointError(
            f"{location}: policy_kwargs {sorted(unknown)} cannot be imported (allowed: net_arch, "
            f"activation_fn, {', '.join(sorted(_IGNORED_POLICY_KWARGS))}); {_CONVERT_HINT}"
        )
    match = re.search(r"\.(\w+)'>$", str(readable.get("activation_fn", "<class 'nn.Tanh'>")))
    name = match.group(1).lower() if match else ""
    if name not in ACTIVATIONS:
        raise CheckpointError(
            f"{location}: activation_fn {readable.get('activation_fn')!r} cannot be imported; "
            f"allowed: {sorted(ACTIVATIONS)}"
        )
    return name


def _policy_weights(
    location: Path, state_dict: dict[str, Any], action_space: gym.Space
) -> tuple[dict[str, torch.Tensor], list[int]]:
    """Rename an ``ActorCriticPolicy`` state dict to our policy's and infer ``net_arch``."""
    head = "logits" if isinstance(action_space, gym.spaces.Discrete) else "mean"
    renames = {
        "mlp_extractor.policy_net.": "actor.",
        "mlp_extractor.value_net.": "critic.",
        "action_net.": f"action_head.{head}.",
        "value_net.": "value_head.",
        "log_std": "action_head.log_std",
    }
    weights = {}
    for name, tensor in state_dict.items():
        prefix = next((p for p in renames if name.startswith(p)), None)
        if prefix is None or not isinstance(tensor, torch.Tensor):
            raise CheckpointError(
                f"{location}: policy.pth holds {name!r}, which an MlpPolicy has not; "
                f"{_CONVERT_HINT}"
            )
        weights[renames[prefix] + name[len(prefix) :]] = tensor
    sizes = {
        side: [
            int(tensor.shape[0])
            for key, tensor in sorted(weights.items(), key=lambda item: _layer_index(item[0]))
            if key.startswith(f"{side}.") and key.endswith(".weight")
        ]
        for side in ("actor", "critic")
    }
    if sizes["actor"] != sizes["critic"]:
        raise CheckpointError(
            f"{location}: its policy has net_arch pi={sizes['actor']}, vf={sizes['critic']}; "
            "rlrobot's actor and critic share one net_arch, so only equal sizes can be imported"
        )
    return weights, sizes["actor"]


def _layer_index(key: str) -> int:
    """Return the layer index of ``actor.<i>.weight`` (so layer 10 sorts after layer 2)."""
    parts = key.split(".")
    return int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else -1
