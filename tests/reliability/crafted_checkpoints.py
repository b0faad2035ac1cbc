"""Crafted checkpoints: variants of real checkpoints, generated from what each file holds.

A small checkpoint is saved per agent kind (``KINDS``). ``make_variants`` walks what it holds:
every tensor of ``model.safetensors`` (another shape, NaN, inf, int8, negative values,
removed; and one unknown tensor), every leaf of ``metadata.json`` (replaced by a foreign
value of each kind; and every key removed), every array of ``replay_buffer.npz`` (another
shape, another dtype, NaN) and every counter of the buffer (−7, 10⁹), plus a few whole-file
forgeries (100000-deep nesting, a [10⁶, 10⁶] space). The SHA-256 in the metadata is
rewritten to match, as a forger would. The leaves under ``config`` are the agent's
hyperparameters, which ``load`` hands to the config class's ``from_dict`` as it does a user's
keywords: the hyperparameter sweep covers them, so they are not varied here. ``classify``
loads a variant in a child process, with a time limit, and says what happened (``OUTCOMES``).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.numpy import load as safetensors_load
from safetensors.numpy import save as safetensors_save

from rlrobot.agents import ALGORITHMS, BaseAgent
from rlrobot.errors import CheckpointError
from tests.reliability.small_runs import ALGORITHM_ENV, make_small_agent

# Agent kinds whose checkpoints are varied: every algorithm, one with both normalisers (their
# statistics are tensors too) and one with RRD's reward model and its optimizer.
KINDS: dict[str, tuple[str, dict[str, Any]]] = {
    "reinforce": ("reinforce", {}),
    "a2c": ("a2c", {}),
    "ppo": ("ppo", {"normalize_observations": True, "normalize_rewards": True}),
    "sac": ("sac", {"buffer_size": 256}),
    "td3": ("td3", {"buffer_size": 256}),
    "sac_rrd": ("sac", {"buffer_size": 256, "reward_redistribution": "rrd", "rrd_net_arch": [8]}),
}
LOADERS = ("algorithm", "base")
# What a variant did: refused with a CheckpointError naming the file and the field ("clear"),
# or loaded and then trained 64 steps with finite weights (also "clear": the value was one
# the field may hold); loaded and then failed or gave non-finite weights ("silent"); ran
# past TIME_LIMIT_S ("hang"); died by a signal or raised anything but a CheckpointError
# ("crash"); or a CheckpointError that does not name the file and the field ("vague").
OUTCOMES = ("clear", "silent", "hang", "crash", "vague")
TIME_LIMIT_S = 10.0
# Foreign values put in place of every metadata leaf, one variant each (inf is written as
# JSON's Infinity, which Python's json would read back).
FOREIGN_VALUES: dict[str, Any] = {
    "-1000": -1000,
    "1e30": 1e30,
    "'12'": "12",
    "inf": float("inf"),
    "null": None,
    "true": True,
    "[1]": [1],
}
BUFFER_COUNTERS = ("pos", "full", "final_head", "final_count", "final_capacity")


@dataclass
class Content:
    """What a checkpoint directory holds, as plain arrays and JSON."""

    tensors: dict[str, np.ndarray]
    metadata: Any
    buffer: dict[str, np.ndarray] | None
    raw_metadata: bytes | None = None  # written as is instead of ``metadata`` when set


@dataclass(frozen=True)
class Variant:
    """One crafted checkpoint: ``change`` turns a checkpoint's content into it.

    ``field`` is what a refusal must name (one of the names, for a path of keys); ``part`` is
    the part of the checkpoint it damages (a sample takes some of every part and damage).
    """

    kind: str
    name: str
    field: tuple[str, ...]
    change: Callable[[Content], None]
    part: str = "whole"


def save_checkpoints(root: Path) -> dict[str, Path]:
    """Save one small checkpoint directory per kind under ``root`` (after 64 steps)."""
    paths = {}
    for kind, (algo, options) in KINDS.items():
        agent = make_small_agent(algo, seed=0, **options)
        agent.learn(64)
        (root / kind).mkdir(parents=True)  # an existing directory: a checkpoint directory
        paths[kind] = agent.save(
            root / kind,
            include_replay_buffer=agent.replay_buffer is not None,
            include_episodes=True,
        )
        agent.env.close()
    return paths


def read_content(path: Path) -> Content:
    """Read a checkpoint directory."""
    buffer = None
    if (path / "replay_buffer.npz").exists():
        with np.load(path / "replay_buffer.npz") as archive:
            buffer = {name: archive[name] for name in archive.files}
    tensors = safetensors_load((path / "model.safetensors").read_bytes())
    return Content(tensors, json.loads((path / "metadata.json").read_text()), buffer)


def write_content(path: Path, content: Content) -> None:
    """Write ``content`` as a checkpoint directory, with the SHA-256 of its tensors updated."""
    path.mkdir(parents=True)
    data = safetensors_save(content.tensors)
    (path / "model.safetensors").write_bytes(data)
    if content.raw_metadata is not None:
        (path / "metadata.json").write_bytes(content.raw_metadata)
    else:
        metadata = content.metadata
        if isinstance(metadata, dict):
            metadata = {**metadata, "tensors_sha256": hashlib.sha256(data).hexdigest()}
        (path / "metadata.json").write_text(json.dumps(metadata))
    if content.buffer is not None:
        np.savez(path / "replay_buffer.npz", **content.buffer)


def _leaves(tree: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """Yield ``(path, value)`` for every leaf and every dict entry of a JSON tree."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(tree, list) and tree:
        for index in _representative_indices(tree):
            yield from _leaves(tree[index], (*path, index))
    elif path:
        yield path, tree


def _representative_indices(items: list) -> list[int]:
    """Indices of a list whose items are varied: all of them, except that of a long list of
    scalars (an RNG's 625 words) the first, middle and last stand for the rest."""
    if len(items) > 4 and not any(isinstance(item, (dict, list)) for item in items):
        return [0, len(items) // 2, len(items) - 1]
    return list(range(len(items)))


def _keys(tree: Any, path: tuple = ()) -> Iterator[tuple]:
    """Yield the path of every dict entry of a JSON tree."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield (*path, key)
            yield from _keys(value, (*path, key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            yield from _keys(value, (*path, index))


def _parent(tree: Any, path: tuple) -> Any:
    for key in path[:-1]:
        tree = tree[key]
    return tree


def _set_leaf(path: tuple, value: Any) -> Callable[[Content], None]:
    def change(content: Content) -> None:
        _parent(content.metadata, path)[path[-1]] = value

    return change


def _delete_key(path: tuple) -> Callable[[Content], None]:
    def change(content: Content) -> None:
        del _parent(content.metadata, path)[path[-1]]

    return change


def _field_names(path: tuple) -> tuple[str, ...]:
    """The names a message may use for a leaf: its last two keys (a list index is no name)."""
    names = [str(key) for key in path if isinstance(key, str)]
    return tuple(names[-2:]) or ("metadata.json",)


def _tensor_changes(array: np.ndarray) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """The ways one tensor is damaged, by name (NaN, inf and negative only where floating)."""
    changes: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "another shape": lambda a: np.concatenate([a.reshape(-1), a.reshape(-1)[:1]]),
        "int8": lambda a: a.astype(np.int8),
    }
    if array.dtype.kind == "f" and array.size:
        for name, value in (("NaN", np.nan), ("inf", np.inf), ("negative", -1.0)):
            changes[name] = lambda a, value=value: np.full_like(a, value)
    return changes


def _set_tensor(name: str, damage: Callable[[np.ndarray], np.ndarray]) -> Callable:
    def change(content: Content) -> None:
        content.tensors[name] = np.array(damage(content.tensors[name]), order="C")

    return change


def _set_array(name: str, damage: Callable[[np.ndarray], np.ndarray]) -> Callable:
    def change(content: Content) -> None:
        content.buffer[name] = damage(content.buffer[name])

    return change


def _set_counter(index: int, value: int) -> Callable[[Content], None]:
    def change(content: Content) -> None:
        counters = content.buffer["counters"].copy()
        counters[index] = value
        content.buffer["counters"] = counters

    return change


def _whole_file_variants(kind: str) -> list[Variant]:
    """Forgeries of the whole metadata: deep nesting, huge spaces, unknown tensors."""
    deep = b"[" * 100_000 + b"]" * 100_000

    def nested(content: Content) -> None:
        content.raw_metadata = deep

    def nested_leaf(content: Content) -> None:
        content.metadata["env_id"] = json.loads("[" * 500 + "]" * 500)

    def unknown_tensor(content: Content) -> None:
        content.tensors["policy/planted"] = np.zeros(3, np.float32)

    variants = [
        Variant(kind, "100000-deep metadata.json", ("metadata.json",), nested),
        Variant(kind, "500-deep env_id", ("metadata.json",), nested_leaf),
        Variant(kind, "unknown tensor", ("policy/planted",), unknown_tensor),
    ]
    for space in ("observation_space", "action_space"):
        variants.append(
            Variant(
                kind,
                f"{space} [10**6, 10**6]",
                (space, "shape"),
                _set_leaf((space, "shape"), [10**6, 10**6]),
            )
        )
    return variants


def make_variants(kind: str, content: Content) -> list[Variant]:
    """Every variant of one checkpoint's content, generated from what it holds."""
    variants = _whole_file_variants(kind)
    for name, array in content.tensors.items():
        field = (name.rsplit("/", 1)[-1],)
        # The module, or the part of the training state (state/optimizers, state/rng …).
        part = "tensor " + "/".join(name.split("/")[: 2 if name.startswith("state/") else 1])
        for label, damage in _tensor_changes(array).items():
            variants.append(
                Variant(kind, f"tensor {name}: {label}", field, _set_tensor(name, damage), part)
            )

        def remove(content: Content, name: str = name) -> None:
            del content.tensors[name]

        variants.append(Variant(kind, f"tensor {name}: removed", field, remove, part))
    for path, _ in _leaves(content.metadata):
        if path == ("tensors_sha256",) or path[0] == "config":
            continue  # what the forger rewrites, and what the config class checks (see below)
        part = "metadata " + ".".join(map(str, path[:2]))
        for label, value in FOREIGN_VALUES.items():
            change = _set_leaf(path, value)
            variants.append(
                Variant(kind, f"metadata {path}: {label}", _field_names(path), change, part)
            )
    for path in _keys(content.metadata):
        if path != ("tensors_sha256",) and path[:1] != ("config",):
            names, part = _field_names(path), "metadata " + ".".join(map(str, path[:2]))
            change = _delete_key(path)
            variants.append(Variant(kind, f"metadata {path}: removed", names, change, part))
    for name, array in (content.buffer or {}).items():
        changes = {
            "another shape": lambda a: a.reshape(-1)[:-1] if a.size else np.zeros(1, a.dtype),
            "int8": lambda a: a.astype(np.int8) if a.dtype.kind != "U" else np.zeros(3, np.int8),
        }
        if array.dtype.kind == "f":
            changes["NaN"] = lambda a: np.full_like(a, np.nan)
        if array.dtype.kind == "U":
            changes["not JSON"] = lambda a: np.array("{" * 5000)
        for label, damage in changes.items():
            variants.append(
                Variant(
                    kind, f"buffer {name}: {label}", (name,), _set_array(name, damage), "buffer"
                )
            )
    if content.buffer is not None:
        for index, counter in enumerate(BUFFER_COUNTERS):
            for value in (-7, 10**9):
                variants.append(
                    Variant(
                        kind,
                        f"buffer {counter}: {value}",
                        (counter,),
                        _set_counter(index, value),
                        "buffer counters",
                    )
                )
    return variants


def _load_and_train(path: str, loader: str, algo: str, field: tuple[str, ...], answer: Any) -> None:
    """Child process: load the variant, train 64 steps, report the outcome through ``answer``."""
    torch.set_num_threads(1)
    # A variant may hold a relative path that is valid (tensorboard_log "12"): it writes there.
    os.chdir(Path(path).parent)
    cls = ALGORITHMS[algo] if loader == "algorithm" else BaseAgent
    try:
        agent = cls.load(path, env=ALGORITHM_ENV, device="cpu")
    except CheckpointError as error:
        named = str(path) in str(error) and any(name in str(error) for name in field)
        answer.send(("clear" if named else "vague", str(error)))
        return
    except BaseException as error:  # anything else is the crash this sweep looks for
        answer.send(("crash", f"{type(error).__name__}: {error}"))
        return
    try:
        agent.learn(64, reset_num_timesteps=False)
        finite = all(
            bool(torch.isfinite(value).all())
            for module in agent.checkpoint_modules().values()
            for value in module.state_dict().values()
            if value.is_floating_point()
        )
        answer.send(
            (
                "clear" if finite else "silent",
                "loaded; trained with finite weights"
                if finite
                else "non-finite weights after learn",
            )
        )
    except BaseException as error:
        answer.send(("silent", f"loaded, then learn raised {type(error).__name__}: {error}"))
    finally:
        agent.env.close()


def classify(path: Path, loader: str, algo: str, field: tuple[str, ...]) -> tuple[str, str]:
    """Load a crafted checkpoint in a child process; return ``(outcome, detail)``."""
    return classify_call(lambda answer: _load_and_train(str(path), loader, algo, field, answer))


def classify_call(
    function: Callable[[Any], None], time_limit_s: float = TIME_LIMIT_S
) -> tuple[str, str]:
    """Run ``function(answer)`` in a child; return what it sent, or how the child ended."""
    # Forked from this process, which has imported and run everything once: a child starts
    # in milliseconds instead of the second a fresh interpreter takes.
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=function, args=(send,))
    child.start()
    send.close()
    if not receive.poll(time_limit_s):
        child.kill()
        child.join()
        return "hang", f"no answer within {time_limit_s} s"
    try:
        outcome = receive.recv()
    except EOFError:
        child.join()
        return "crash", f"died with exit code {child.exitcode}"
    child.join(time_limit_s)
    return outcome


def run_variant(variant: Variant, original: Path, work: Path, loader: str) -> tuple[str, str]:
    """Write ``variant`` of the checkpoint at ``original`` under ``work`` and classify it."""
    content = read_content(original)
    variant.change(content)
    target = work / "checkpoint"
    if target.exists():
        shutil.rmtree(target)
    write_content(target, content)
    return classify(target, loader, KINDS[variant.kind][0], variant.field)
