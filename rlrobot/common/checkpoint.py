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
import math
import os
import re
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
from rlrobot.envs.checks import Interval, check_number
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
# Limits of metadata.json, checked before it is parsed: ours is a few hundred kB at most (the
# episodes of 64 envs) and nests 12 levels deep; Python's json parser recurses per level and
# fails with RecursionError near 1000.
MAX_METADATA_BYTES = 64 << 20
MAX_METADATA_DEPTH = 64
# Elements of one space (a bound array is allocated from it): 2**24 holds the largest image
# observation the envs allow (2048 x 2048 x 3, see envs.checks.MAX_IMAGE_SIDE) and keeps each
# bound array under 128 MB; a forged [10**6, 10**6] shape is refused before any allocation.
MAX_SPACE_ELEMENTS = 2**24
SPACE_DTYPES = (
    "float16", "float32", "float64", "int8", "int16", "int32", "int64",
    "uint8", "uint16", "uint32", "uint64", "bool",
)  # fmt: skip
# Every integer a training state holds is a count, an index or an RNG word; RNG states (up to
# 128-bit words) are checked by the generator they restore.
MAX_COUNT = 2**62
COUNT = Interval(0, MAX_COUNT)
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


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
            tensors[key] = torch.from_numpy(node.copy(order="C"))  # 0-d arrays stay 0-d
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


def unpack_state(tree: Any, tensors: dict[str, torch.Tensor], field: str = "state") -> Any:
    """Rebuild the structure packed by ``pack_state`` (tuples come back as lists).

    Raises:
        ValueError: A reference to a tensor that is not in ``tensors``, or a malformed entry.
    """
    if isinstance(tree, dict):
        for marker in ("__tensor__", "__ndarray__"):
            if set(tree) == {marker}:
                key = tree[marker]
                if not isinstance(key, str) or key not in tensors:
                    raise ValueError(
                        f"field {field!r} names tensor {key!r}, which is not in the file"
                    )
                return tensors[key] if marker == "__tensor__" else tensors[key].numpy()
        if set(tree) == {"__int_keys__"}:
            pairs = tree["__int_keys__"]
            if not isinstance(pairs, list) or not all(
                isinstance(pair, list) and len(pair) == 2 and type(pair[0]) is int for pair in pairs
            ):
                raise ValueError(f"field {field!r} must be a list of [integer, value] pairs")
            return {k: unpack_state(v, tensors, f"{field}.{k}") for k, v in pairs}
        return {k: unpack_state(v, tensors, f"{field}.{k}") for k, v in tree.items()}
    if isinstance(tree, list):
        return [unpack_state(v, tensors, f"{field}[{i}]") for i, v in enumerate(tree)]
    return tree


def state_tensor_names(tree: Any) -> set[str]:
    """Return the names of the tensors a packed tree refers to."""
    if isinstance(tree, dict):
        if len(tree) == 1 and set(tree) <= {"__tensor__", "__ndarray__"}:
            return {str(next(iter(tree.values())))}
        return set().union(*(state_tensor_names(value) for value in tree.values()))
    if isinstance(tree, list):
        return set().union(*(state_tensor_names(value) for value in tree))
    return set()


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
    metadata = parse_metadata(location, metadata_text)
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
            f"checkpoint {location} holds a {algorithm!r} agent, not {expected_algorithm!r} "
            f"({METADATA_FILE} field 'algorithm'); load it with the {algorithm!r} class"
        )
    return tensors, metadata


def parse_metadata(location: Path, text: bytes) -> dict[str, Any]:
    """Parse ``metadata.json`` within the size and depth limits and check ``format_version``.

    The nesting depth is measured on the raw bytes (strings removed) before parsing, so a
    forged ``[[[[…]]]]`` is refused at once instead of exhausting the parser's recursion.
    Non-finite numbers (``NaN``, ``Infinity``, ``1e999``) are refused wherever they stand.

    Raises:
        CheckpointError: Too large, too deep, not JSON, non-finite numbers, or a
            ``format_version`` that is no supported integer.
    """
    where = f"checkpoint {location}: {METADATA_FILE}"
    if len(text) > MAX_METADATA_BYTES:
        raise CheckpointError(
            f"{where} has {len(text)} bytes; allowed: at most {MAX_METADATA_BYTES}"
        )
    depth = _nesting_depth(text)
    if depth > MAX_METADATA_DEPTH:
        raise CheckpointError(
            f"{where} nests {depth} levels deep; allowed: at most {MAX_METADATA_DEPTH}"
        )
    try:
        metadata = json.loads(text)
        _check_finite(metadata, "")
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as error:
        raise CheckpointError(f"{where} is corrupt ({error})") from None
    if not isinstance(metadata, dict) or "format_version" not in metadata:
        raise CheckpointError(f"{where} has no format_version")
    version = metadata["format_version"]
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {location} has format_version {version!r}, newer than this rlrobot "
            f"supports ({FORMAT_VERSION}); upgrade rlrobot to load it"
        )
    try:
        check_number("field 'format_version'", version, int, Interval(1, FORMAT_VERSION))
    except ValueError as error:
        raise CheckpointError(f"{where} {error}") from None
    return metadata


def _nesting_depth(text: bytes) -> int:
    """Return the deepest ``[``/``{`` nesting of JSON ``text`` (strings skipped)."""
    skeleton = np.frombuffer(_JSON_STRING.sub(b"", text), dtype=np.uint8)
    steps = (np.isin(skeleton, (ord("["), ord("{")))).astype(np.int64)
    steps -= np.isin(skeleton, (ord("]"), ord("}")))
    return int(np.cumsum(steps).max(initial=0))


def _check_finite(tree: Any, path: str) -> None:
    """Raise ValueError at the first non-finite float of a parsed JSON tree."""
    if isinstance(tree, float) and not math.isfinite(tree):
        raise ValueError(f"field {path!r} is the non-finite number {tree!r}")
    children = (
        tree.items()
        if isinstance(tree, dict)
        else enumerate(tree)
        if isinstance(tree, list)
        else ()
    )
    for key, value in children:
        _check_finite(value, f"{path}.{key}" if path else str(key))


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


def _bound_from_json(bound: Any, shape: tuple[int, ...], field: str) -> np.ndarray:
    """Return a bound (one value or one per element; ``"inf"``/``"-inf"`` allowed) as float64."""
    size = math.prod(shape)
    values = bound if isinstance(bound, list) else [bound]
    if len(values) not in (1, size):
        raise ValueError(f"field {field!r} must hold 1 or {size} values, got {len(values)}")
    for index, value in enumerate(values):
        if value not in ("inf", "-inf"):
            check_number(f"field '{field}[{index}]'", value)
    array = np.asarray(values, dtype=np.float64)
    return np.broadcast_to(array, (size,)).reshape(shape)


def _check_type(field: str, value: Any, kind: type | tuple[type, ...]) -> Any:
    """Return ``value``; raise ValueError naming ``field`` unless it is a ``kind``."""
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ValueError(f"field {field!r} must be a {names}, got {value!r}")
    return value


def _check_shape(field: str, shape: Any) -> tuple[int, ...]:
    """Return a space's shape: non-negative ints with at most ``MAX_SPACE_ELEMENTS`` elements."""
    _check_type(field, shape, list)
    sizes = tuple(
        check_number(f"field '{field}[{i}]'", size, int, COUNT) for i, size in enumerate(shape)
    )
    if math.prod(sizes) > MAX_SPACE_ELEMENTS:
        raise ValueError(
            f"field {field!r} is {list(sizes)}, {math.prod(sizes)} elements; allowed: at most "
            f"{MAX_SPACE_ELEMENTS} (the largest image observation fits)"
        )
    return sizes


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


def space_from_dict(description: Any, field: str = "space") -> gym.Space:
    """Rebuild a space described by ``space_to_dict``, checking every field before use.

    Raises:
        ValueError: A field (named as ``field.key``) of the wrong type, size or range.
    """
    _check_type(field, description, dict)
    kind = description.get("type")
    keys = {
        "Box": {"type", "shape", "dtype", "low", "high"},
        "Discrete": {"type", "n", "start"},
        "MultiDiscrete": {"type", "nvec"},
        "MultiBinary": {"type", "n"},
        "Dict": {"type", "spaces"},
    }
    if not isinstance(kind, str) or kind not in keys:
        raise ValueError(f"field '{field}.type' must be one of {sorted(keys)}, got {kind!r}")
    if set(description) - keys[kind] or not (keys[kind] - {"start"}) <= set(description):
        raise ValueError(
            f"field {field!r} must hold the keys {sorted(keys[kind])}, got {sorted(description)}"
        )
    if kind == "Box":
        shape = _check_shape(f"{field}.shape", description["shape"])
        dtype = description["dtype"]
        if dtype not in SPACE_DTYPES:
            raise ValueError(f"field '{field}.dtype' must be one of {SPACE_DTYPES}, got {dtype!r}")
        low = _bound_from_json(description["low"], shape, f"{field}.low")
        high = _bound_from_json(description["high"], shape, f"{field}.high")
        if np.any(low > high):
            raise ValueError(f"field '{field}.low' is above '{field}.high'")
        return gym.spaces.Box(low.astype(dtype), high.astype(dtype), shape, dtype)
    if kind == "Discrete":
        n = check_number(f"field '{field}.n'", description["n"], int, Interval(1, MAX_COUNT))
        limit = Interval(-MAX_COUNT, MAX_COUNT)
        start = check_number(f"field '{field}.start'", description.get("start", 0), int, limit)
        return gym.spaces.Discrete(n, start=start)
    if kind == "MultiDiscrete":
        nvec = description["nvec"]
        _check_shape(f"{field}.nvec", list(np.shape(nvec)) if isinstance(nvec, list) else nvec)
        flat = np.asarray(nvec, dtype=object).reshape(-1).tolist()
        positive = Interval(1, MAX_COUNT)
        for index, value in enumerate(flat):
            check_number(f"field '{field}.nvec[{index}]'", value, int, positive)
        return gym.spaces.MultiDiscrete(nvec)
    if kind == "MultiBinary":
        n = description["n"]
        if isinstance(n, list):
            return gym.spaces.MultiBinary(_check_shape(f"{field}.n", n))
        return gym.spaces.MultiBinary(_check_shape(f"{field}.n", [n])[0])
    spaces = _check_type(f"{field}.spaces", description["spaces"], dict)
    if not spaces:
        raise ValueError(f"field '{field}.spaces' must hold at least one space")
    return gym.spaces.Dict(
        {key: space_from_dict(value, f"{field}.spaces.{key}") for key, value in spaces.items()}
    )


def check_spaces_match(saved: gym.Space, actual: gym.Space, name: str) -> None:
    """Raise ``CheckpointError`` naming the difference if two spaces are not the same."""
    saved_description, actual_description = space_to_dict(saved), space_to_dict(actual)
    if saved_description != actual_description:
        raise CheckpointError(
            f"the env's {name} space {actual} differs from the checkpoint's {saved} "
            f"({METADATA_FILE} field '{name}_space'); a checkpoint can only be used with an env "
            f"of the same {name} space"
        )


def check_like_template(field: str, saved: Any, template: Any) -> None:
    """Raise ValueError naming the first place where ``saved`` differs from ``template``.

    ``template`` is the same structure as the live object would save it: dicts must hold the
    same keys, lists as many items, tensors and arrays the same dtype and shape (and finite
    values if floating), and scalars the same kind (an int is a count in [0, 2**62], a float
    finite, a bool, string or None the same type).
    """
    if isinstance(template, (torch.Tensor, np.ndarray)):
        check_array_like(field, saved, template)
    elif isinstance(template, dict):
        _check_type(field, saved, dict)
        if set(saved) != set(template):
            missing, unknown = (
                sorted(set(template) - set(saved)),
                sorted(set(saved) - set(template)),
            )
            raise ValueError(f"field {field!r} lacks {missing} and has unknown {unknown}")
        for key, value in template.items():
            check_like_template(f"{field}.{key}", saved[key], value)
    elif isinstance(template, (list, tuple)):
        _check_type(field, saved, (list, tuple))  # JSON gives lists; a live state dict tuples
        if len(saved) != len(template):
            raise ValueError(f"field {field!r} must hold {len(template)} items, got {len(saved)}")
        for index, (item, expected) in enumerate(zip(saved, template, strict=True)):
            check_like_template(f"{field}[{index}]", item, expected)
    elif isinstance(template, bool) or template is None or isinstance(template, str):
        if type(saved) is not type(template):
            raise ValueError(f"field {field!r} must be a {type(template).__name__}, got {saved!r}")
    elif isinstance(template, int):
        check_number(f"field {field!r}", saved, int, COUNT)
    elif isinstance(template, float):
        check_number(f"field {field!r}", saved)
    else:
        raise TypeError(f"cannot check {type(template).__name__} at {field!r}")


def check_array_like(field: str, saved: Any, template: torch.Tensor | np.ndarray) -> None:
    """Raise ValueError unless ``saved`` is a tensor/array of ``template``'s dtype and shape,
    with finite values if floating."""
    kind = torch.Tensor if isinstance(template, torch.Tensor) else np.ndarray
    expected = f"{str(template.dtype).removeprefix('torch.')}{list(template.shape)}"
    if kind is np.ndarray and template.ndim == 0 and isinstance(saved, float):
        saved = np.asarray(saved)  # earlier checkpoints stored 0-d statistics as numbers
    if not isinstance(saved, kind):
        raise ValueError(f"field {field!r} must be an array {expected}, got {type(saved).__name__}")
    found = f"{str(saved.dtype).removeprefix('torch.')}{list(saved.shape)}"
    shape = tuple(saved.shape)
    if kind is np.ndarray and template.ndim == 0 and shape == (1,):
        shape = ()  # earlier checkpoints stored 0-d arrays (normaliser counts) as 1-d
    if saved.dtype != template.dtype or shape != tuple(template.shape):
        raise ValueError(f"field {field!r} is an array {found}, expected {expected}")
    floating = saved.is_floating_point() if kind is torch.Tensor else saved.dtype.kind in "fc"
    if floating and not bool((torch if kind is torch.Tensor else np).isfinite(saved).all()):
        raise ValueError(f"field {field!r} holds non-finite values (NaN or inf)")


def check_json_leaves(field: str, tree: Any) -> None:
    """Raise ValueError where a JSON tree holds an int beyond ±2**62 (outside RNG states,
    whose bit generators check their own words)."""
    if isinstance(tree, dict):
        if "bit_generator" in tree:
            return
        for key, value in tree.items():
            check_json_leaves(f"{field}.{key}", value)
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            check_json_leaves(f"{field}[{index}]", value)
    elif isinstance(tree, int) and not isinstance(tree, bool):
        check_number(f"field {field!r}", tree, int, Interval(-MAX_COUNT, MAX_COUNT))


# Optimizer state entries that are running averages of squares: negative ones make sqrt NaN.
NON_NEGATIVE_OPTIMIZER_STATE = ("step", "exp_avg_sq", "max_exp_avg_sq", "square_avg")


def check_optimizer_state(field: str, optimizer: torch.optim.Optimizer, saved: Any) -> None:
    """Raise ValueError unless ``saved`` is a state dict that ``optimizer`` can take as is.

    The param groups must list the same parameters with the same flags and finite numbers
    (which ``load_optimizer_state`` does not use); each parameter's state must hold exactly
    the entries this optimizer keeps (found by one step of a throwaway copy), each of the
    shape and dtype of its parameter (``step`` a scalar), finite, and non-negative where a
    square.
    """
    own = optimizer.state_dict()
    _check_type(field, saved, dict)
    if set(saved) != {"state", "param_groups"}:
        raise ValueError(
            f"field {field!r} must hold 'state' and 'param_groups', got {sorted(saved)}"
        )
    groups = saved["param_groups"]
    _check_type(f"{field}.param_groups", groups, list)
    if len(groups) != len(own["param_groups"]):
        raise ValueError(
            f"field '{field}.param_groups' must hold {len(own['param_groups'])} groups, "
            f"got {len(groups)}"
        )
    parameters: dict[int, torch.Tensor] = {}
    for index, (group, expected) in enumerate(zip(groups, own["param_groups"], strict=True)):
        where = f"{field}.param_groups[{index}]"
        _check_type(where, group, dict)
        if set(group) != set(expected) or group["params"] != expected["params"]:
            raise ValueError(f"field {where!r} does not describe this optimizer's parameters")
        for key, value in expected.items():
            if isinstance(value, (bool, str)) or value is None:
                if group[key] != value or type(group[key]) is not type(value):
                    raise ValueError(f"field '{where}.{key}' must be {value!r}, got {group[key]!r}")
            elif key != "params":  # numbers: checked, then replaced by the config's on load
                check_like_template(f"{where}.{key}", group[key], value)
        live = optimizer.param_groups[index]["params"]
        parameters.update(zip(expected["params"], live, strict=True))
    entries = _optimizer_entries(optimizer)
    state = saved["state"]
    _check_type(f"{field}.state", state, dict)
    for key, value in state.items():
        where = f"{field}.state.{key}"
        if key not in parameters:
            raise ValueError(f"field {where!r} is for no parameter of this optimizer")
        _check_type(where, value, dict)
        if set(value) != set(entries):
            raise ValueError(f"field {where!r} must hold {sorted(entries)}, got {sorted(value)}")
        parameter = parameters[key].detach()
        for name, scalar in entries.items():
            template = torch.zeros((), dtype=scalar.dtype) if scalar.ndim == 0 else parameter
            check_array_like(f"{where}.{name}", value[name], template)
            if name in NON_NEGATIVE_OPTIMIZER_STATE and bool((value[name] < 0).any()):
                raise ValueError(f"field '{where}.{name}' holds negative values")


def _optimizer_entries(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """Return the state entries ``optimizer``'s class keeps per parameter, by one step of a
    throwaway copy on a two-element parameter (scalars stay 0-d, the rest take its shape)."""
    parameter = torch.zeros(2, requires_grad=True)
    defaults = {k: v for k, v in optimizer.param_groups[0].items() if k != "params"}
    # The copy runs on the CPU: flags that need CUDA are not what decides the entries.
    defaults.update({k: False for k in ("fused", "capturable") if k in defaults})
    probe = type(optimizer)([parameter], **defaults)
    parameter.grad = torch.ones(2)
    probe.step()
    return {name: value for name, value in probe.state[parameter].items()}


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Load a state checked by ``check_optimizer_state``, keeping the optimizer's own numbers.

    The step size, betas, eps and weight decay of a live optimizer come from the agent's
    config (checked there, and overridable at load); the file's copies, which a forger could
    set to 1e30, are not used. A genuine checkpoint holds the config's values anyway (the
    step size is set again from its schedule at every update).
    """
    own = [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]
    optimizer.load_state_dict(state)
    for group, numbers in zip(optimizer.param_groups, own, strict=True):
        group.update(numbers)
