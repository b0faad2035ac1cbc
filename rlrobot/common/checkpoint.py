"""Checkpoints without pickles: tensors in ``model.safetensors``, the rest in ``metadata.json``.

A checkpoint is a directory::

    model/                     # the path given to save_checkpoint
      model.safetensors        # every tensor (weights, optimizer moments, normaliser stats, RNG)
      metadata.json            # format_version, algorithm, config, spaces, versions, sha256 …

Each file is written to a temporary file and moved into place with ``os.replace``;
``metadata.json`` is written last and records the SHA-256 of the tensor file, so a checkpoint
interrupted half-way, truncated or corrupted is detected on load. Nested state (optimizer state
dicts, RNG states) is split by ``pack_state`` into tensors and a JSON tree.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save

from rlrobot.common.files import atomic_write_bytes
from rlrobot.errors import CheckpointError

FORMAT_VERSION = 1
TENSORS_FILE = "model.safetensors"
METADATA_FILE = "metadata.json"


def pack_state(state: Any, prefix: str = "") -> tuple[dict[str, torch.Tensor], Any]:
    """Split a nested structure into a flat tensor dict and a JSON-serialisable tree.

    Tensors and NumPy arrays become ``{"__tensor__": key}`` (or ``"__ndarray__"``) references;
    tuples become lists; dicts with int keys (optimizer state) are kept as ``{"__int_keys__":
    [[k, v], …]}``. ``unpack_state`` reverses it.

    Args:
        state: Nested dicts/lists/tuples of tensors, arrays, numbers, strings, bools and None.
        prefix: Prefix for the tensor keys.

    Returns:
        ``(tensors, tree)``.
    """
    tensors: dict[str, torch.Tensor] = {}

    def visit(node: Any, key: str) -> Any:
        if isinstance(node, torch.Tensor):
            tensors[key] = node.detach().cpu().contiguous().clone()
            return {"__tensor__": key}
        if isinstance(node, np.ndarray):
            tensors[key] = torch.from_numpy(np.ascontiguousarray(node).copy())
            return {"__ndarray__": key}
        if isinstance(node, dict):
            if node and all(isinstance(k, int) for k in node):
                return {"__int_keys__": [[k, visit(v, f"{key}/{k}")] for k, v in node.items()]}
            for k in node:
                if not isinstance(k, str):
                    raise TypeError(f"cannot store dict key {k!r} of type {type(k).__name__}")
            return {k: visit(v, f"{key}/{k}") for k, v in node.items()}
        if isinstance(node, (list, tuple)):
            return [visit(v, f"{key}/{i}") for i, v in enumerate(node)]
        if isinstance(node, np.generic):
            return node.item()
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        raise TypeError(f"cannot store {type(node).__name__} at {key!r} in a checkpoint")

    tree = visit(state, prefix)
    return tensors, tree


def unpack_state(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Rebuild the structure packed by ``pack_state`` (tuples come back as lists)."""
    if isinstance(tree, dict):
        if set(tree) == {"__tensor__"}:
            return tensors[tree["__tensor__"]]
        if set(tree) == {"__ndarray__"}:
            return tensors[tree["__ndarray__"]].numpy()
        if set(tree) == {"__int_keys__"}:
            return {int(k): unpack_state(v, tensors) for k, v in tree["__int_keys__"]}
        return {k: unpack_state(v, tensors) for k, v in tree.items()}
    if isinstance(tree, list):
        return [unpack_state(v, tensors) for v in tree]
    return tree


def save_checkpoint(
    path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]
) -> Path:
    """Save tensors and JSON metadata as a checkpoint directory.

    Args:
        path: The checkpoint directory (created if needed).
        tensors: Flat ``{name: tensor}``; tensors are copied to CPU.
        metadata: JSON-serialisable dict; ``format_version`` and ``tensors_sha256`` are added.

    Returns:
        The checkpoint directory.
    """
    directory = Path(path)
    cpu_tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    data = safetensors_save(cpu_tensors)
    metadata = {
        **metadata,
        "format_version": FORMAT_VERSION,
        "tensors_sha256": hashlib.sha256(data).hexdigest(),
    }
    text = json.dumps(metadata, indent=2, sort_keys=True)
    atomic_write_bytes(directory / TENSORS_FILE, data)
    atomic_write_bytes(directory / METADATA_FILE, text.encode())
    return directory


def load_checkpoint(
    path: str | os.PathLike, expected_algorithm: str | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load a checkpoint directory written by ``save_checkpoint``.

    Args:
        path: The checkpoint directory (or its ``metadata.json``/``model.safetensors``).
        expected_algorithm: If given, the ``algorithm`` recorded in the metadata must match.

    Returns:
        ``(tensors, metadata)``.

    Raises:
        CheckpointError: Missing files, corrupt data, a newer format or another algorithm.
    """
    directory = Path(path)
    if directory.name in (TENSORS_FILE, METADATA_FILE):
        directory = directory.parent
    metadata_path, tensors_path = directory / METADATA_FILE, directory / TENSORS_FILE
    if not directory.is_dir():
        raise CheckpointError(f"no checkpoint at {directory}: directory does not exist")
    if not metadata_path.is_file() and (directory / "config.yaml").is_file():
        # A run folder of `rlrobot train`: its checkpoints are subfolders.
        raise CheckpointError(
            f"{directory} is a run folder, not a checkpoint; load {directory / 'latest'} "
            f"(or {directory / 'best'})"
        )
    for required in (metadata_path, tensors_path):
        if not required.is_file():
            raise CheckpointError(f"checkpoint {directory} is incomplete: {required.name} missing")
    try:
        metadata = json.loads(metadata_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        message = f"checkpoint {directory}: {METADATA_FILE} is corrupt ({error})"
        raise CheckpointError(message) from None
    if not isinstance(metadata, dict) or "format_version" not in metadata:
        raise CheckpointError(f"checkpoint {directory}: {METADATA_FILE} has no format_version")
    version = metadata["format_version"]
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {directory} has format_version {version!r}, newer than this rlrobot "
            f"supports ({FORMAT_VERSION}); upgrade rlrobot to load it"
        )
    data = tensors_path.read_bytes()
    if hashlib.sha256(data).hexdigest() != metadata.get("tensors_sha256"):
        raise CheckpointError(
            f"checkpoint {directory}: {TENSORS_FILE} is corrupt or truncated "
            "(its SHA-256 does not match metadata.json)"
        )
    try:
        tensors = safetensors_load(data)
    except (SafetensorError, ValueError) as error:
        message = f"checkpoint {directory}: {TENSORS_FILE} is corrupt ({error})"
        raise CheckpointError(message) from None
    algorithm = metadata.get("algorithm")
    if expected_algorithm is not None and algorithm != expected_algorithm:
        raise CheckpointError(
            f"checkpoint {directory} holds a {algorithm!r} agent, not {expected_algorithm!r}; "
            f"load it with the {algorithm!r} class"
        )
    return tensors, metadata


def _bound_to_json(bound: np.ndarray) -> Any:
    flat = bound.reshape(-1)
    if flat.size and np.all(flat == flat[0]):
        return _float_to_json(flat[0])
    return [_float_to_json(x) for x in flat]


def _float_to_json(value: Any) -> Any:
    value = float(value)
    if np.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def _bound_from_json(bound: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    values = np.asarray(bound if isinstance(bound, list) else [bound], dtype=np.float64)
    return np.broadcast_to(values.reshape(-1), (int(np.prod(shape)),)).reshape(shape).astype(dtype)


def space_to_dict(space: gym.Space) -> dict[str, Any]:
    """Describe a ``Box``/``Discrete``/``MultiDiscrete``/``MultiBinary``/``Dict`` space as JSON."""
    if isinstance(space, gym.spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": str(space.dtype),
            "low": _bound_to_json(space.low),
            "high": _bound_to_json(space.high),
        }
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, gym.spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": space.nvec.tolist()}
    if isinstance(space, gym.spaces.MultiBinary):
        return {"type": "MultiBinary", "n": np.asarray(space.n).tolist()}
    if isinstance(space, gym.spaces.Dict):
        return {"type": "Dict", "spaces": {k: space_to_dict(v) for k, v in space.spaces.items()}}
    raise TypeError(f"cannot describe space {space}")


def space_from_dict(description: dict[str, Any]) -> gym.Space:
    """Rebuild a space described by ``space_to_dict``."""
    kind = description["type"]
    if kind == "Box":
        shape, dtype = tuple(description["shape"]), np.dtype(description["dtype"])
        low = _bound_from_json(description["low"], shape, np.float64)
        high = _bound_from_json(description["high"], shape, np.float64)
        return gym.spaces.Box(low.astype(dtype), high.astype(dtype), shape, dtype)
    if kind == "Discrete":
        return gym.spaces.Discrete(description["n"], start=description.get("start", 0))
    if kind == "MultiDiscrete":
        return gym.spaces.MultiDiscrete(description["nvec"])
    if kind == "MultiBinary":
        return gym.spaces.MultiBinary(description["n"])
    if kind == "Dict":
        return gym.spaces.Dict({k: space_from_dict(v) for k, v in description["spaces"].items()})
    raise CheckpointError(f"unknown space type {kind!r} in checkpoint metadata")


def check_spaces_match(saved: gym.Space, actual: gym.Space, name: str) -> None:
    """Raise ``CheckpointError`` naming the difference if two spaces are not the same."""
    saved_description, actual_description = space_to_dict(saved), space_to_dict(actual)
    if saved_description != actual_description:
        raise CheckpointError(
            f"the env's {name} space {actual} differs from the checkpoint's {saved}; "
            f"a checkpoint can only be used with an env of the same {name} space"
        )
