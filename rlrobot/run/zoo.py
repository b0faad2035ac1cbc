"""RL Baselines3 Zoo hyperparameter entries, converted once into rlrobot's config keys.

A Zoo file (its ``hyperparams/ppo.yml``) is keyed by env id like ``rlrobot/configs/``, but its
entries use the Zoo's own forms: ``policy: MlpPolicy``, ``learning_rate: lin_0.001``,
``normalize: "{'norm_obs': True, 'norm_reward': False}"``, ``policy_kwargs: "dict(net_arch=[64,
64], activation_fn=nn.ReLU)"``, ``env_wrapper`` and ``frame_stack``, plus SB3's constructor
arguments. ``convert_zoo_entry`` turns one entry into our flat config keys; nothing else in
rlrobot knows these forms.

The Zoo builds objects from those strings with ``eval``. Here they are parsed, never run:
``parse_python_value`` reads Python literals, ``dict(...)`` calls and the names in
``ALLOWED_NAMES`` (``nn.ReLU``, ``th.optim.Adam`` …) from the syntax tree and refuses any other
node (calls, attribute access, lambdas, imports, comprehensions …), quoting the text.
"""

from __future__ import annotations

import ast
from typing import Any

from rlrobot.agents.sb3_arguments import (
    OPTIMIZERS,
    POLICY_NAMES,
    convert_policy_kwargs,
    convert_sb3_arguments,
)
from rlrobot.common.networks import ACTIVATIONS
from rlrobot.envs.checks import short_repr
from rlrobot.errors import ConfigError

# The prefixes under which Zoo files name torch's modules (``import torch as th``).
TORCH_PREFIXES = ("nn", "torch.nn", "th.nn")
OPTIMIZER_PREFIXES = ("optim", "torch.optim", "th.optim")
# Dotted names a policy_kwargs string may hold → the object it means; nothing else resolves.
ALLOWED_NAMES: dict[str, Any] = {
    **{
        f"{prefix}.{cls.__name__}": cls for prefix in TORCH_PREFIXES for cls in ACTIVATIONS.values()
    },
    **{f"{prefix}.{cls.__name__}": cls for prefix in OPTIMIZER_PREFIXES for cls in OPTIMIZERS},
}
# The Zoo's linear schedule: ``lin_0.001`` is 0.001 falling linearly to 0.
LINEAR_PREFIX = "lin_"
# Zoo keys with a schedule → the config field that holds the schedule's kind.
SCHEDULE_KINDS = {"learning_rate": "lr_schedule", "clip_range": "clip_range_schedule"}
# ``normalize`` keys (VecNormalize's arguments) → our config fields.
NORMALIZE_KEYS = {
    "norm_obs": "normalize_observations",
    "norm_reward": "normalize_rewards",
    "clip_obs": "clip_observations",
}
# Zoo keys that ask for something rlrobot does not do, and why.
UNSUPPORTED_KEYS = {
    "callback": "training callbacks cannot be named in a file; rlrobot train evaluates and "
    "checkpoints by itself (eval_freq, checkpoint_freq)",
    "vec_env_wrapper": "vector-env wrappers cannot be named; normalize and frame_stack are "
    "the ones supported",
}
# ``replay_buffer_class`` names → our ``replay_buffer``; HER's ``replay_buffer_kwargs`` that
# are config keys of ours.
REPLAY_BUFFERS = {"HerReplayBuffer": "her", "ReplayBuffer": "standard"}
HER_KEYS = ("goal_selection_strategy", "n_sampled_goal")


def parse_python_value(text: str, key: str) -> Any:
    """Read a Zoo string such as ``"dict(net_arch=[64, 64], activation_fn=nn.ReLU)"`` without
    running it: literals, ``dict(...)`` with keyword arguments and ``ALLOWED_NAMES`` only.

    Raises:
        ConfigError: A syntax error, or any other expression (quoting the text and naming it).
    """
    try:
        tree = ast.parse(text.strip(), mode="eval")
        return _read_node(tree.body, text, key)
    except SyntaxError as error:
        raise ConfigError(
            f"config key {key!r}: {short_repr(text)} is not a Python expression ({error.msg})"
        ) from None
    except RecursionError:
        raise ConfigError(f"config key {key!r}: {short_repr(text)} nests too deeply") from None


def _read_node(node: ast.expr, text: str, key: str) -> Any:
    """Return the value of one syntax node of ``parse_python_value``'s text."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, type(None))):
        return node.value
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, (ast.USub, ast.UAdd))
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, (int, float))
        and not isinstance(node.operand.value, bool)
    ):
        value = node.operand.value
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_read_node(item, text, key) for item in node.elts]
    if isinstance(node, ast.Dict) and all(
        isinstance(item, ast.Constant) and isinstance(item.value, str) for item in node.keys
    ):
        return {
            item.value: _read_node(value, text, key)
            for item, value in zip(node.keys, node.values, strict=True)
        }
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "dict"
        and not node.args
        and all(keyword.arg is not None for keyword in node.keywords)
    ):
        return {keyword.arg: _read_node(keyword.value, text, key) for keyword in node.keywords}
    name = _dotted_name(node)
    if name in ALLOWED_NAMES:
        return ALLOWED_NAMES[name]
    allowed = ", ".join(n for n in ALLOWED_NAMES if n.startswith("nn.") or n.startswith("th.o"))
    raise ConfigError(
        f"config key {key!r}: {short_repr(text)} is refused: {short_repr(ast.unparse(node))} is "
        f"not a literal, dict(...) or an allowed name ({allowed}); the text is parsed, never run"
    )


def _dotted_name(node: ast.expr) -> str | None:
    """Return ``"nn.ReLU"`` for the attribute chain ``nn.ReLU`` (None for any other node)."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def is_zoo_entry(values: dict[str, Any]) -> bool:
    """Tell an RL Zoo entry (every one names its ``policy``) from one of ours (``policy_name``)."""
    return "policy" in values


def convert_zoo_entry(
    values: dict[str, Any], algorithm: str, on_policy: bool, config_class: type
) -> dict[str, Any]:
    """Return one Zoo entry (or ``--hyperparams`` pairs) as our config keys; ours pass unchanged.

    Args:
        values: The entry: Zoo keys, SB3 constructor arguments and our own config keys.
        algorithm: The agent class name (``"PPO"``), for SB3's argument names and messages.
        on_policy: Whether the algorithm is A2C/PPO/REINFORCE (for ``policy_kwargs``).
        config_class: The algorithm's config class.

    Raises:
        ConfigError: A key we cannot honour (named, with the reason), a string that is not a
            plain value (``parse_python_value``) or a malformed Zoo value.
    """
    fields = set(config_class.field_names())
    converted: dict[str, Any] = {}
    arguments: dict[str, Any] = {}
    for key, value in values.items():
        if key in UNSUPPORTED_KEYS:
            raise ConfigError(f"RL Zoo key {key!r} is not supported: {UNSUPPORTED_KEYS[key]}")
        if key == "policy":
            if value not in POLICY_NAMES:
                raise ConfigError(
                    f"config key 'policy': expected one of {list(POLICY_NAMES)}, got "
                    f"{short_repr(value)}"
                )
            converted["policy_name"] = value
        elif (
            key in SCHEDULE_KINDS
            and isinstance(value, str)
            and value.startswith(LINEAR_PREFIX)
            and key in fields
        ):
            converted.update(_convert_schedule(key, value))
        elif key == "normalize":
            converted.update(_convert_normalize(value, algorithm, fields))
        elif key == "policy_kwargs":
            if isinstance(value, str):
                value = parse_python_value(value, key)
            converted.update(
                convert_policy_kwargs(algorithm, _upgrade_net_arch(value), on_policy, config_class)
            )
        elif key == "replay_buffer_class":
            name = value.rpartition(".")[2] if isinstance(value, str) else value
            if name not in REPLAY_BUFFERS:
                raise ConfigError(
                    f"config key 'replay_buffer_class': expected one of {list(REPLAY_BUFFERS)}, "
                    f"got {short_repr(value)}"
                )
            converted["replay_buffer"] = REPLAY_BUFFERS[name]
        elif key == "replay_buffer_kwargs":
            converted.update(_convert_her_kwargs(value))
        elif key == "env_wrapper":
            converted[key] = normalize_env_wrapper(value)
        else:
            arguments[key] = value
    converted.update(convert_sb3_arguments(algorithm, arguments, sorted(fields)))
    return converted


def _convert_schedule(key: str, value: str) -> dict[str, Any]:
    """``learning_rate: lin_0.001`` → ``learning_rate: 0.001, lr_schedule: linear``."""
    try:
        start = float(value[len(LINEAR_PREFIX) :])
    except ValueError:
        raise ConfigError(
            f"config key {key!r}: the RL Zoo's linear schedule is lin_<number> (e.g. "
            f"lin_0.001), got {short_repr(value)}"
        ) from None
    return {key: start, SCHEDULE_KINDS[key]: "linear"}


def _convert_normalize(value: Any, algorithm: str, fields: set[str]) -> dict[str, Any]:
    """``normalize: true`` (observations and rewards, as VecNormalize's defaults) or its
    keyword string → ``normalize_observations``, ``normalize_rewards``, ``clip_observations``."""
    if isinstance(value, str):
        value = parse_python_value(value, "normalize")
    if isinstance(value, bool):
        value = {"norm_obs": value, "norm_reward": value}
    if not isinstance(value, dict):
        raise ConfigError(
            f"config key 'normalize': expected true, false or a dict of VecNormalize's "
            f"{', '.join(NORMALIZE_KEYS)}, got {short_repr(value)}"
        )
    converted = {}
    for key, item in value.items():
        if key not in NORMALIZE_KEYS:
            raise ConfigError(
                f"config key 'normalize': {key!r} is not supported (allowed: "
                f"{', '.join(NORMALIZE_KEYS)})"
            )
        field = NORMALIZE_KEYS[key]
        if field not in fields:
            if item is False:
                continue
            raise ConfigError(
                f"config key 'normalize': {key}={short_repr(item)} is not supported by "
                f"{algorithm}, which normalises observations only; write normalize: "
                "\"{'norm_obs': True, 'norm_reward': False}\""
            )
        converted[field] = item
    return converted


def _convert_her_kwargs(value: Any) -> dict[str, Any]:
    """HER's ``replay_buffer_kwargs`` → ``goal_selection_strategy``, ``n_sampled_goal``
    (SB3 1.x's ``online_sampling=True`` is what HER always does here)."""
    if isinstance(value, str):
        value = parse_python_value(value, "replay_buffer_kwargs")
    if not isinstance(value, dict):
        raise ConfigError(
            f"config key 'replay_buffer_kwargs': expected a dict, got {short_repr(value)}"
        )
    converted = {}
    for key, item in value.items():
        if key == "online_sampling" and item is True:
            continue
        if key not in HER_KEYS:
            raise ConfigError(
                f"config key 'replay_buffer_kwargs': {key}={short_repr(item)} is not supported "
                f"(allowed: {', '.join(HER_KEYS)}, online_sampling=True)"
            )
        converted[key] = item
    return converted


def _upgrade_net_arch(policy_kwargs: Any) -> Any:
    """Read SB3 1.x's ``net_arch=[dict(pi=…, vf=…)]`` (in many Zoo files) as SB3 2's
    ``net_arch=dict(pi=…, vf=…)``, as SB3 2 itself does."""
    if not isinstance(policy_kwargs, dict):
        return policy_kwargs
    net_arch = policy_kwargs.get("net_arch")
    if isinstance(net_arch, list) and len(net_arch) == 1 and isinstance(net_arch[0], dict):
        return {**policy_kwargs, "net_arch": net_arch[0]}
    return policy_kwargs


def normalize_env_wrapper(value: Any) -> list[dict[str, dict[str, Any]]]:
    """Return the Zoo's ``env_wrapper`` (a class path, a list of them, or ``{path: kwargs}``
    items) as a list of one-key ``{path: kwargs}`` mappings, outermost last (the Zoo's order).

    Raises:
        ConfigError: Anything but those forms.
    """
    items = value if isinstance(value, list) else [value]
    wrappers = []
    for item in items:
        if isinstance(item, str) and item:
            wrappers.append({item: {}})
        elif (
            isinstance(item, dict)
            and len(item) == 1
            and isinstance(next(iter(item)), str)
            and isinstance(next(iter(item.values())), (dict, type(None)))
        ):
            path, kwargs = next(iter(item.items()))
            wrappers.append({path: dict(kwargs or {})})
        else:
            raise ConfigError(
                "config key 'env_wrapper': expected a wrapper class path, a list of them, or "
                f"items {{path: {{keyword: value}}}}, got {short_repr(item)}"
            )
    return wrappers
