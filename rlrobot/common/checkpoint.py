"""Checkpoints without pickles: tensors in ``model.safetensors``, the rest in ``metadata.json``.

A checkpoint is a directory, or one ``.zip`` file holding the same files::

    model/ (or model.zip)      # the path given to save_checkpoint
      model.safetensors        # every tensor (weights, optimizer moments, normaliser stats, RNG)
      metadata.json            # format_version, algorithm, config, spaces, versions, sha256 …
      replay_buffer.npz        # when asked for: the replay buffer's arrays

Each file (or the zip file) is written to a temporary file and moved into place with ``os.replace``;
``metadata.json`` is written last and records the SHA-256 of the tensor file, so a checkpoint
interrupted half-way, truncated or corrupted is detected on load. Nested state (optimizer state
dicts, RNG states) is split by ``pack_state`` into tensors and a JSON tree.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save

from rlrobot.common.files import atomic_output, atomic_write_bytes
from rlrobot.errors import CheckpointError

FORMAT_VERSION = 1
TENSORS_FILE = "model.safetensors"
METADATA_FILE = "metadata.json"
REPLAY_BUFFER_FILE = "replay_buffer.npz"
EXTRA_FILES = (REPLAY_BUFFER_FILE,)
ARCHIVE_SUFFIX = ".zip"
# The member by which a Stable-Baselines3 .zip is recognised.
SB3_VERSION_FILE = "_stable_baselines3_version"
# Limits for reading an archive: a member larger than this, or deflated further, is refused
# (a zip bomb). 64 GiB leaves room for a large replay buffer; our own members are stored.
MAX_MEMBER_BYTES = 64 << 30
MAX_COMPRESSION_RATIO = 100


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


def resolve_save_path(path: str | os.PathLike) -> Path:
    """Return where a checkpoint named ``path`` goes: a directory, or one ``.zip`` file.

    An existing directory, or a path written with a trailing separator, is a checkpoint
    directory (the run folders' ``latest/``, ``checkpoints/step_N/``). Anything else names one
    file, as in SB3: ``.zip`` is appended when the name has no suffix.
    """
    text = os.fspath(path)
    target = Path(text)
    if target.is_dir() or text.endswith(("/", os.sep)):
        return target
    return target if target.suffix else target.with_name(target.name + ARCHIVE_SUFFIX)


def find_checkpoint(path: str | os.PathLike) -> Path:
    """Return the checkpoint directory or archive that ``path`` names (``m`` may mean ``m.zip``).

    Raises:
        CheckpointError: Nothing is there.
    """
    location = Path(path)
    if location.name in (TENSORS_FILE, METADATA_FILE) and location.is_file():
        return location.parent
    if location.exists():
        return location
    archive = location.with_name(location.name + ARCHIVE_SUFFIX)
    if not location.suffix and archive.is_file():
        return archive
    raise CheckpointError(
        f"no checkpoint at {location}: it does not exist (nor {archive.name}); a checkpoint is "
        "a directory or a .zip file"
    )


def save_checkpoint(
    path: str | os.PathLike,
    tensors: dict[str, torch.Tensor],
    metadata: dict[str, Any],
    extra_files: dict[str, bytes] | None = None,
) -> Path:
    """Save tensors and JSON metadata as a checkpoint directory, or one ``.zip`` file.

    Args:
        path: A path ending in ``.zip`` gives one zip file (its members are the files a
            directory would hold, stored uncompressed); any other path a directory (created if
            needed). ``resolve_save_path`` turns a user's name into one of these.
        tensors: Flat ``{name: tensor}``; tensors are copied to CPU.
        metadata: JSON-serialisable dict; ``format_version`` and ``tensors_sha256`` are added.
        extra_files: Further files by name (one of ``EXTRA_FILES``), e.g. the replay buffer.

    Returns:
        The checkpoint directory or file.
    """
    target = Path(path)
    extra_files = extra_files or {}
    for name in extra_files:
        if name not in EXTRA_FILES:
            raise ValueError(f"unknown checkpoint file {name!r}; allowed: {list(EXTRA_FILES)}")
    cpu_tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    data = safetensors_save(cpu_tensors)
    metadata = {
        **metadata,
        "format_version": FORMAT_VERSION,
        "tensors_sha256": hashlib.sha256(data).hexdigest(),
    }
    # metadata.json comes last: a directory whose metadata.json is there is complete.
    files = {TENSORS_FILE: data, **extra_files}
    files[METADATA_FILE] = json.dumps(metadata, indent=2, sort_keys=True).encode()
    if target.suffix != ARCHIVE_SUFFIX:
        for name, content in files.items():
            atomic_write_bytes(target / name, content)
        return target
    # Stored, not deflated: safetensors and .npz data hardly compress. The zip file is closed
    # (complete) before it is moved into place.
    with (
        atomic_output(target) as temporary,
        zipfile.ZipFile(temporary, "w", zipfile.ZIP_STORED) as archive,
    ):
        for name, content in files.items():
            archive.writestr(name, content)
    return target


def load_checkpoint(
    path: str | os.PathLike, expected_algorithm: str | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load a checkpoint directory or ``.zip`` file written by ``save_checkpoint``.

    Args:
        path: The checkpoint directory (or its ``metadata.json``/``model.safetensors``), or
            its ``.zip`` file (``m`` stands for ``m.zip`` when there is no ``m``).
        expected_algorithm: If given, the ``algorithm`` recorded in the metadata must match.

    Returns:
        ``(tensors, metadata)``.

    Raises:
        CheckpointError: Missing files, corrupt data, a newer format or another algorithm.
    """
    location = find_checkpoint(path)
    if location.is_dir():
        metadata_text, data = _read_directory(location)
    else:
        metadata_text = read_checkpoint_file(location, METADATA_FILE)
        data = read_checkpoint_file(location, TENSORS_FILE)
        if metadata_text is None or data is None:
            missing = METADATA_FILE if metadata_text is None else TENSORS_FILE
            raise CheckpointError(f"checkpoint {location} is incomplete: {missing} missing")
    try:
        metadata = json.loads(metadata_text)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        message = f"checkpoint {location}: {METADATA_FILE} is corrupt ({error})"
        raise CheckpointError(message) from None
    if not isinstance(metadata, dict) or "format_version" not in metadata:
        raise CheckpointError(f"checkpoint {location}: {METADATA_FILE} has no format_version")
    version = metadata["format_version"]
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {location} has format_version {version!r}, newer than this rlrobot "
            f"supports ({FORMAT_VERSION}); upgrade rlrobot to load it"
        )
    if hashlib.sha256(data).hexdigest() != metadata.get("tensors_sha256"):
        raise CheckpointError(
            f"checkpoint {location}: {TENSORS_FILE} is corrupt or truncated "
            "(its SHA-256 does not match metadata.json)"
        )
    try:
        tensors = safetensors_load(data)
    except (SafetensorError, ValueError) as error:
        message = f"checkpoint {location}: {TENSORS_FILE} is corrupt ({error})"
        raise CheckpointError(message) from None
    algorithm = metadata.get("algorithm")
    if expected_algorithm is not None and algorithm != expected_algorithm:
        raise CheckpointError(
            f"checkpoint {location} holds a {algorithm!r} agent, not {expected_algorithm!r}; "
            f"load it with the {algorithm!r} class"
        )
    return tensors, metadata


def _read_directory(directory: Path) -> tuple[bytes, bytes]:
    """Return the ``metadata.json`` and ``model.safetensors`` bytes of a checkpoint directory."""
    metadata_path, tensors_path = directory / METADATA_FILE, directory / TENSORS_FILE
    if not metadata_path.is_file() and (directory / "config.yaml").is_file():
        # A run folder of `rlrobot train`: its checkpoints are subfolders.
        raise CheckpointError(
            f"{directory} is a run folder, not a checkpoint; load {directory / 'latest'} "
            f"(or {directory / 'best'})"
        )
    for required in (metadata_path, tensors_path):
        if not required.is_file():
            raise CheckpointError(f"checkpoint {directory} is incomplete: {required.name} missing")
    return metadata_path.read_bytes(), tensors_path.read_bytes()


def read_checkpoint_file(path: str | os.PathLike, name: str) -> bytes | None:
    """Return the bytes of file ``name`` of a checkpoint directory or archive (None: absent).

    Raises:
        CheckpointError: The archive is not a valid checkpoint archive (see ``read_zip_member``).
    """
    location = find_checkpoint(path)
    if location.is_dir():
        file = location / name
        return file.read_bytes() if file.is_file() else None
    return read_zip_member(location, name, (TENSORS_FILE, METADATA_FILE, *EXTRA_FILES))


def read_zip_member(location: Path, name: str, allowed: tuple[str, ...]) -> bytes | None:
    """Return member ``name`` of the zip file at ``location`` (None: absent), read safely.

    The archive is checked whole first: every member must be one of ``allowed``, stored once,
    uncompressed or deflated, and no larger than ``MAX_MEMBER_BYTES`` (nor deflated more than
    ``MAX_COMPRESSION_RATIO`` times), so a tampered or hostile file (unknown members, a zip
    bomb) is refused before anything is read. Nothing is extracted to disk, so member names
    cannot reach outside it.

    Raises:
        CheckpointError: Not a zip file, an unexpected member, or corrupt data (CRC mismatch).
    """
    try:
        with zipfile.ZipFile(location) as archive:
            members = _check_archive(location, archive, allowed)
            if name not in members:
                return None
            with archive.open(members[name]) as member:
                # Reads no more than the size checked above, whatever the data claims.
                return member.read()
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as error:
        raise CheckpointError(
            f"checkpoint {location} is not a valid zip file ({type(error).__name__}: {error})"
        ) from None


def is_sb3_archive(location: Path) -> bool:
    """Tell whether ``location`` is a zip file written by Stable-Baselines3's ``save``."""
    if not location.is_file() or not zipfile.is_zipfile(location):
        return False
    with zipfile.ZipFile(location) as archive:
        return SB3_VERSION_FILE in archive.namelist()


def _check_archive(
    location: Path, archive: zipfile.ZipFile, allowed: tuple[str, ...]
) -> dict[str, zipfile.ZipInfo]:
    """Return the members of an archive by name, refusing anything unexpected."""
    if SB3_VERSION_FILE in archive.namelist() and SB3_VERSION_FILE not in allowed:
        raise CheckpointError(
            f"{location} is a Stable-Baselines3 .zip, not an rlrobot checkpoint; load it with "
            "the agent's class (e.g. PPO.load), which imports its weights"
        )
    members: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        if info.filename not in allowed:
            raise CheckpointError(
                f"checkpoint {location} holds an unexpected member {info.filename!r}; "
                f"allowed: {list(allowed)}"
            )
        if info.filename in members:
            raise CheckpointError(f"checkpoint {location} holds {info.filename!r} twice")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise CheckpointError(
                f"checkpoint {location}: {info.filename} uses compression method "
                f"{info.compress_type}; allowed: stored (0) or deflated (8)"
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > MAX_MEMBER_BYTES or ratio > MAX_COMPRESSION_RATIO:
            raise CheckpointError(
                f"checkpoint {location}: {info.filename} unpacks to {info.file_size} bytes "
                f"from {info.compress_size}; allowed: at most {MAX_MEMBER_BYTES} bytes and "
                f"{MAX_COMPRESSION_RATIO}x compression"
            )
        members[info.filename] = info
    return members


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
