"""Import a Stable-Baselines3 ``.zip`` without unpickling anything.

SB3's ``save`` writes a zip file with ``data`` (JSON; objects that JSON cannot hold are pickled
inside it, base64-encoded, next to a readable description), ``policy.pth`` (the policy's state
dict), the optimizer's state, ``pytorch_variables.pth`` and ``_stable_baselines3_version``.
We read only what needs no pickle: the plain JSON values of ``data`` (hyperparameters, the
readable fields of the spaces and of ``policy_kwargs``) and ``policy.pth`` with
``torch.load(weights_only=True)``, which refuses anything but tensors. SB3's parameter names
are then mapped onto our modules, and ``load_state_dict`` checks every shape.

Supported: ``MlpPolicy``, ``CnnPolicy`` and ``MultiInputPolicy`` models of PPO and A2C
(``Box`` or ``Discrete`` actions, actor and critic sharing one feature extractor or each with
its own) and of SAC and TD3 (actor, twin critics and their targets, the critics with their own
feature extractor, SAC's ``log_ent_coef`` from ``pytorch_variables.pth``; HER settings), with
SB3's built-in extractors: our
``NatureCNN`` has SB3's layers under SB3's names (``cnn.0/2/4``, ``linear.0``), and our
``DictExtractor`` is SB3's ``CombinedExtractor`` (keys in sorted order, 256 CNN features per
image key). SB3 trains image policies on channel-first images (``VecTransposeImage``) and saves
that space; given an env with the same images channel-last, the agent takes the env's space
(our CNN reads either order with the same weights). The optimizer state is not imported (it is
in SB3's own layout); training continues with a fresh optimizer. Everything else is refused
with a message saying how to convert the model.
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

from rlrobot.agents.config import FIXED_BUFFER_KWARGS
from rlrobot.common.checkpoint import SB3_VERSION_FILE, read_zip_member
from rlrobot.common.networks import ACTIVATIONS, is_channels_last, is_image_space
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
# ``policy_kwargs`` keys accepted with the value our networks match (SB3 saves some always),
# per family: our SAC and TD3 critics always have a feature extractor of their own.
_MATCHING_POLICY_KWARGS = {
    "on-policy": {"use_sde": False, "normalize_images": True},
    "off-policy": {
        "use_sde": False,
        "n_critics": 2,
        "share_features_extractor": False,
        "normalize_images": True,
    },
}
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
# SB3's policy classes we import → (family, policy name); SAC's and TD3's ``MlpPolicy`` is an
# alias of ``SACPolicy``/``TD3Policy``, the others are classes of their own.
_POLICY_CLASSES = {
    ("stable_baselines3.common.policies", "ActorCriticPolicy"): ("on-policy", "MlpPolicy"),
    ("stable_baselines3.common.policies", "ActorCriticCnnPolicy"): ("on-policy", "CnnPolicy"),
    ("stable_baselines3.common.policies", "MultiInputActorCriticPolicy"): (
        "on-policy",
        "MultiInputPolicy",
    ),
    **{
        (f"stable_baselines3.{family}.policies", name): (family, policy)
        for family in ("sac", "td3")
        for name, policy in (
            (f"{family.upper()}Policy", "MlpPolicy"),
            ("CnnPolicy", "CnnPolicy"),
            ("MultiInputPolicy", "MultiInputPolicy"),
        )
    },
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
    data: dict[str, Any]  # the zip's ``data`` as read (unchecked): its attributes, by SB3's names


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
    algorithm, policy_name = _algorithm_of(location, data)
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
    family = "on-policy" if algorithm in ("ppo", "a2c") else algorithm
    config = _policy_kwargs_config(location, data.get("policy_kwargs"), family)
    if algorithm in ("ppo", "a2c"):
        weights, (actor, critic) = _actor_critic_weights(
            location, state_dict, spaces[1], config["share_features_extractor"]
        )
    else:
        variables_bytes = read_zip_member(location, "pytorch_variables.pth", SB3_MEMBERS)
        variables = _load_tensors(location, variables_bytes) if variables_bytes else {}
        weights, (actor, critic) = _off_policy_weights(location, algorithm, state_dict, variables)
    config.update(
        {key: data[key] for key in _PLAIN_HYPERPARAMETERS if _is_plain(data.get(key, []))}
    )
    config.update(_constant_schedules(data))
    config.update(_replay_buffer_config(location, data))
    config.update(
        policy_name=policy_name, net_arch=actor, critic_net_arch=None if critic == actor else critic
    )
    if algorithm == "sac" and _is_plain(data.get("ent_coef")):
        # A fixed coefficient (SB3's "auto…" strings learn it, from log_ent_coef).
        config["auto_ent_coef"] = False
        weights["entropy"] = {"log_ent_coef": torch.tensor(math.log(data["ent_coef"]))}
    return SB3Import(algorithm, config, spaces, int(data.get("n_envs", 1)), weights, data)


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


def _algorithm_of(location: Path, data: dict[str, Any]) -> tuple[str, str]:
    """Return the algorithm (``"ppo"``, ``"a2c"``, ``"sac"``, ``"td3"``) and the policy name."""
    policy_class = data.get("policy_class")
    description = policy_class if isinstance(policy_class, dict) else {}
    match = re.match(r"<function (\w+)\.__init__", str(description.get("__init__", "")))
    name = match.group(1) if match else "an unknown policy"
    module = str(description.get("__module__", ""))
    family, policy_name = _POLICY_CLASSES.get((module, name), (None, None))
    if family is None or policy_name is None:
        raise CheckpointError(
            f"{location} holds a Stable-Baselines3 model with {name} ({module or 'unknown'}); "
            "only PPO, A2C, SAC and TD3 with MlpPolicy, CnnPolicy or MultiInputPolicy can be "
            f"imported; {_CONVERT_HINT}"
        )
    if family != "on-policy":
        return family, policy_name
    # PPO's data has its clipping parameter; A2C's has none.
    return ("ppo" if "clip_range" in data else "a2c"), policy_name


def _space_of(location: Path, data: dict[str, Any], key: str) -> gym.Space:
    """Rebuild a ``Box``, ``Discrete`` or ``Dict`` space from the readable fields SB3 stores."""
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
            low = _bounds_of(description["low"], shape, dtype, 0)
            high = _bounds_of(description["high"], shape, dtype, 255)
            return gym.spaces.Box(low.astype(dtype), high.astype(dtype), shape, dtype)
        if kind.endswith(".Dict'>"):
            return _dict_space_of(str(description["spaces"]))
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{location}: cannot read its {key} ({error})") from None
    raise CheckpointError(
        f"{location}: its {key} is {kind or 'unknown'}; only Box, Discrete and Dict spaces can "
        f"be imported; {_CONVERT_HINT}"
    )


# The ``repr`` of one Dict entry: ``'key': Box(low, high, (shape), dtype)`` or
# ``'key': Discrete(n)`` / ``Discrete(n, start=s)``; NumPy prints arrays without commas.
_DICT_ENTRY = re.compile(
    r"'(?P<key>[^']+)': (?:Box\((?P<low>[^,]+), (?P<high>[^,]+), \((?P<shape>[\d, ]*)\), "
    r"(?P<dtype>\w+)\)|Discrete\((?P<n>\d+)(?:, start=(?P<start>-?\d+))?\))(?:, |$)"
)


def _dict_space_of(text: str) -> gym.spaces.Dict:
    """Parse the ``str`` of a ``Dict`` space's ``spaces`` (Box and Discrete entries only)."""
    body = text.strip()
    if not (body.startswith("{") and body.endswith("}")):
        raise ValueError(f"unreadable Dict spaces {text!r}")
    body, position, spaces = body[1:-1], 0, {}
    while position < len(body):
        match = _DICT_ENTRY.match(body, position)
        if match is None:
            raise ValueError(
                f"a Dict entry other than a Box or Discrete at {body[position:][:60]!r}"
            )
        position = match.end()
        if match["n"] is not None:
            spaces[match["key"]] = gym.spaces.Discrete(
                int(match["n"]), start=int(match["start"] or 0)
            )
            continue
        shape = tuple(int(n) for n in match["shape"].replace(",", " ").split())
        dtype = np.dtype(match["dtype"])
        low = _array_of(match["low"], shape)
        high = _array_of(match["high"], shape)
        spaces[match["key"]] = gym.spaces.Box(low.astype(dtype), high.astype(dtype), shape, dtype)
    if list(spaces) != sorted(spaces):
        # SB3 concatenates the keys in the space's order, our DictExtractor in sorted order.
        raise ValueError(f"Dict keys {list(spaces)} are not in sorted order")
    return gym.spaces.Dict(spaces)


def _bounds_of(text: str, shape: tuple[int, ...], dtype: np.dtype, image_bound: int) -> np.ndarray:
    """Parse a Box bound; an image's is abbreviated, read as ``image_bound`` if all it shows is."""
    if "..." in text and dtype == np.uint8 and len(shape) == 3:
        shown = {
            float(x) for x in text.replace("...", " ").replace("[", " ").replace("]", " ").split()
        }
        if shown == {image_bound}:
            return np.full(shape, image_bound)
    return _array_of(text, shape)


def _array_of(text: str, shape: tuple[int, ...]) -> np.ndarray:
    """Parse a NumPy array's ``str`` (as SB3 stores a space's bounds) of the given shape."""
    if "..." in text:
        raise ValueError("the bounds are abbreviated ('...'), too large to read back")
    values = np.array([float(x) for x in text.replace("[", " ").replace("]", " ").split()])
    return np.broadcast_to(values, (int(np.prod(shape)),)).reshape(shape)


def fit_channel_order(saved: gym.Space, actual: gym.Space) -> gym.Space:
    """Return ``actual`` where it is ``saved`` with its images channel-last, else ``saved``
    (for a ``Dict``, key by key).

    SB3 saves the channel-first space its ``VecTransposeImage`` made of an env's HWC images;
    our CNN reads HWC images with the same weights, so the agent can take the env's space.
    """
    if isinstance(saved, gym.spaces.Dict) and isinstance(actual, gym.spaces.Dict):
        if list(saved) != list(actual):
            return saved
        return gym.spaces.Dict({key: fit_channel_order(saved[key], actual[key]) for key in saved})
    if not (is_image_space(saved) and is_image_space(actual) and is_channels_last(actual.shape)):
        return saved
    same = all(
        np.array_equal(np.transpose(getattr(actual, bound), (2, 0, 1)), getattr(saved, bound))
        for bound in ("low", "high")
    )
    return actual if same else saved


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


def _replay_buffer_config(location: Path, data: dict[str, Any]) -> dict[str, Any]:
    """Return our HER fields where SB3's ``replay_buffer_class`` was its ``HerReplayBuffer``."""
    description = data.get("replay_buffer_class")
    module = description.get("__module__") if isinstance(description, dict) else None
    if module != "stable_baselines3.her.her_replay_buffer":
        return {}  # SB3's ReplayBuffer or DictReplayBuffer: our standard buffer
    kwargs = data.get("replay_buffer_kwargs") or {}
    if not isinstance(kwargs, dict):
        raise CheckpointError(f"{location}: damaged Stable-Baselines3 zip (replay_buffer_kwargs)")
    # A dict holding an enum (GoalSelectionStrategy.FUTURE) is pickled, next to its str.
    readable = {k: v for k, v in kwargs.items() if not k.startswith(":")}
    config: dict[str, Any] = {"replay_buffer": "her"}
    for key, value in readable.items():
        if key == "goal_selection_strategy" and isinstance(value, str):
            config[key] = value.removeprefix("GoalSelectionStrategy.").lower()
        elif key == "n_sampled_goal" and isinstance(value, int):
            config[key] = value
        elif key not in FIXED_BUFFER_KWARGS or value != FIXED_BUFFER_KWARGS[key][0]:
            raise CheckpointError(
                f"{location}: replay_buffer_kwargs {key}={value!r} cannot be imported (allowed: "
                f"n_sampled_goal, goal_selection_strategy, and "
                f"{ {k: v for k, (v, _) in FIXED_BUFFER_KWARGS.items()} }); {_CONVERT_HINT}"
            )
    return config


def _policy_kwargs_config(location: Path, policy_kwargs: Any, family: str) -> dict[str, Any]:
    """Return our ``activation`` (and on-policy ``share_features_extractor``) from SB3's
    ``policy_kwargs``, refusing what we cannot map."""
    on_policy = family == "on-policy"
    matching = _MATCHING_POLICY_KWARGS["on-policy" if on_policy else "off-policy"]
    # A dict holding non-JSON values (classes) is pickled, next to the str of each value.
    readable = {}
    if isinstance(policy_kwargs, dict):
        readable = {k: v for k, v in policy_kwargs.items() if not k.startswith(":")}
    mapped = (
        "net_arch",
        "activation_fn",
        "features_extractor_kwargs",
        *(("share_features_extractor",) if on_policy else ()),
    )
    unknown = {
        key
        for key, value in readable.items()
        if key not in (*_IGNORED_POLICY_KWARGS, *mapped)
        and str(value) != str(matching.get(key, object()))
    }
    if unknown:
        raise CheckpointError(
            f"{location}: policy_kwargs {sorted(unknown)} cannot be imported (allowed: "
            f"{', '.join(mapped)}, {', '.join(sorted(_IGNORED_POLICY_KWARGS))}, and "
            f"{matching}); {_CONVERT_HINT}"
        )
    config: dict[str, Any] = {"activation": _DEFAULT_ACTIVATIONS[family]}
    if "features_extractor_kwargs" in readable:
        # Our built-in extractors take SB3's (checked when the agent builds them).
        config["features_extractor_kwargs"] = readable["features_extractor_kwargs"]
        if not isinstance(config["features_extractor_kwargs"], dict):
            raise CheckpointError(
                f"{location}: policy_kwargs features_extractor_kwargs "
                f"{config['features_extractor_kwargs']!r} is no JSON dict; {_CONVERT_HINT}"
            )
    if on_policy:
        config["share_features_extractor"] = readable.get("share_features_extractor") is not False
    if "activation_fn" in readable:
        match = re.search(r"\.(\w+)'>$", str(readable["activation_fn"]))
        config["activation"] = match.group(1).lower() if match else ""
        if config["activation"] not in ACTIVATIONS:
            raise CheckpointError(
                f"{location}: activation_fn {readable['activation_fn']!r} cannot be imported; "
                f"allowed: {sorted(ACTIVATIONS)}"
            )
    return config


def _actor_critic_weights(
    location: Path,
    state_dict: dict[str, torch.Tensor],
    action_space: gym.Space,
    share_features_extractor: bool,
) -> tuple[dict[str, dict[str, torch.Tensor]], tuple[list[int], list[int]]]:
    """Rename an ``ActorCriticPolicy`` state dict to our policy's; infer actor and critic sizes.

    SB3 registers the actor's extractor twice (``features_extractor``,
    ``pi_features_extractor``), and a shared one a third time (``vf_features_extractor``);
    those copies must be equal. An unshared ``vf_features_extractor`` is our
    ``critic_features_extractor``.
    """
    copies = ("pi_features_extractor.", "vf_features_extractor.")
    if not share_features_extractor:
        copies = copies[:1]
    for name, tensor in state_dict.items():
        shared = state_dict.get("features_extractor." + name.split(".", 1)[-1])
        if name.startswith(copies) and (shared is None or not torch.equal(shared, tensor)):
            raise CheckpointError(
                f"{location}: damaged Stable-Baselines3 zip ({name} differs from the "
                "features_extractor it is a copy of)"
            )
    state_dict = {k: v for k, v in state_dict.items() if not k.startswith(copies)}
    head = "logits" if isinstance(action_space, gym.spaces.Discrete) else "mean"
    renames = {
        "features_extractor.": "features_extractor.",
        "vf_features_extractor.": "critic_features_extractor.",
        "mlp_extractor.policy_net.": "actor.",
        "mlp_extractor.value_net.": "critic.",
        "action_net.": f"action_head.{head}.",
        "value_net.": "value_head.",
        "log_std": "action_head.log_std",
    }
    weights = _rename(location, state_dict, renames)
    actor = _hidden_sizes(state_dict, "mlp_extractor.policy_net.")
    critic = _hidden_sizes(state_dict, "mlp_extractor.value_net.")
    return {"policy": weights}, (actor, critic)


def _off_policy_weights(
    location: Path,
    algorithm: str,
    state_dict: dict[str, torch.Tensor],
    variables: dict[str, torch.Tensor],
) -> tuple[dict[str, dict[str, torch.Tensor]], tuple[list[int], list[int]]]:
    """Rename a ``SACPolicy``/``TD3Policy`` state dict to our modules'; infer the layer sizes.

    SB3 keeps each Q-network apart (``critic.qf0.0.weight``, ``(out, in)``); ours stacks them
    as one ensemble layer (``hidden_layers.0.weight``, ``(n_critics, in, out)``).
    """
    modules: dict[str, dict[str, torch.Tensor]] = {}
    if algorithm == "sac":
        renames = {
            "actor.features_extractor.": "features_extractor.",
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
            renames = {f"{name}.features_extractor.": "features_extractor.", f"{name}.mu.": "mu."}
            modules[name] = _rename(location, keys, renames)
        actor = _hidden_sizes(state_dict, "actor.mu.")[:-1]
    for name in ("critic", "critic_target"):
        modules[name] = _ensemble_critic(location, state_dict, name)
    critic = _hidden_sizes(state_dict, "critic.qf0.")[:-1]
    known = {"actor.", "actor_target.", "critic.", "critic_target."}
    unknown = [k for k in state_dict if not k.startswith(tuple(known))]
    if unknown:
        raise CheckpointError(
            f"{location}: policy.pth holds {unknown[0]!r}, which rlrobot's {algorithm.upper()} "
            f"has not; {_CONVERT_HINT}"
        )
    return modules, (actor, critic)


def _ensemble_critic(
    location: Path, state_dict: dict[str, torch.Tensor], name: str
) -> dict[str, torch.Tensor]:
    """Stack SB3's ``<name>.qf<k>.<i>`` linear layers into our ensemble critic's layers; its
    ``<name>.features_extractor`` becomes the ensemble's."""
    n_critics = len({k.split(".")[1] for k in state_dict if k.startswith(f"{name}.qf")})
    indices = sorted({int(k.split(".")[2]) for k in state_dict if k.startswith(f"{name}.qf0.")})
    if n_critics == 0 or not indices:
        raise CheckpointError(f"{location}: policy.pth has no {name} Q-networks; {_CONVERT_HINT}")
    extractor = f"{name}.features_extractor."
    weights = {
        key[len(name) + 1 :]: tensor
        for key, tensor in state_dict.items()
        if key.startswith(extractor)
    }
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
                f"{location}: policy.pth holds {name!r}, which rlrobot's networks have not; "
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
