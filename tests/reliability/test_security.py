"""Security: loading never runs code, and runs never write outside their folder.

A pickle payload that creates a marker file when unpickled is planted wherever a checkpoint,
a replay buffer or a dataset is read; loading must refuse it and the marker must not appear.
A scan of the package finds no unsafe deserialisation call. Config values cannot
name paths, so ``--set`` cannot send output anywhere; ``--out`` is the user's explicit choice.
"""

from __future__ import annotations

import ast
import dataclasses
import io
import json
import pickle
import shutil
import typing
from pathlib import Path

import numpy as np
import pytest
import torch

import rlrobot
from rlrobot.agents import ALGORITHMS, BaseAgent
from rlrobot.cli import main
from rlrobot.errors import CheckpointError, DatasetError
from rlrobot.perception.dataset import Dataset
from rlrobot.run.cli import default_run_dir
from rlrobot.run.config import RunConfig, resolve_config
from rlrobot.run.folder import RunFolder
from rlrobot.run.training import tracker_state
from tests.reliability.small_runs import REPOSITORY, make_small_agent


class Payload:
    """Unpickling this object creates the file ``marker``: a stand-in for arbitrary code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def _payload(marker: Path) -> bytes:
    return pickle.dumps(Payload(marker))


def _torch_payload(marker: Path) -> bytes:
    """A ``torch.save`` archive (what ``.pt`` / ``.bin`` checkpoints are) holding the payload."""
    buffer = io.BytesIO()
    torch.save({"policy/weight": torch.zeros(2), "extra": Payload(marker)}, buffer)
    return buffer.getvalue()


def test_the_payloads_do_run_code_when_unpickled(tmp_path):
    """The control: without our guards, loading these files runs the payload."""
    pickle.loads(_payload(tmp_path / "pickle_ran"))
    assert (tmp_path / "pickle_ran").exists()
    torch.load(io.BytesIO(_torch_payload(tmp_path / "torch_ran")), weights_only=False)
    assert (tmp_path / "torch_ran").exists()
    with pytest.raises(pickle.UnpicklingError):  # weights_only=True refuses it
        torch.load(io.BytesIO(_torch_payload(tmp_path / "refused")), weights_only=True)
    assert not (tmp_path / "refused").exists()


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A small checkpoint per algorithm, off-policy ones with their replay buffer."""
    root = tmp_path_factory.mktemp("checkpoints")
    for algo in sorted(ALGORITHMS):
        agent = make_small_agent(algo, seed=0)
        agent.learn(48)
        extra = {"include_replay_buffer": True} if algo in ("sac", "td3") else {}
        (root / algo).mkdir()  # checkpoint directories; tests/compat/test_savefmt.py plants zips
        agent.save(root / algo, **extra)
        agent.env.close()
    return root


def _plant_weights(path: Path, data: bytes) -> None:
    """Replace the tensor file and update its SHA-256 in the metadata, as an attacker would."""
    import hashlib

    (path / "model.safetensors").write_bytes(data)
    metadata = json.loads((path / "metadata.json").read_text())
    metadata["tensors_sha256"] = hashlib.sha256(data).hexdigest()
    (path / "metadata.json").write_text(json.dumps(metadata))


PLANTS = {
    "pickle as weights": lambda path, marker: _plant_weights(path, _payload(marker)),
    "torch.save archive as weights": lambda path, marker: _plant_weights(
        path, _torch_payload(marker)
    ),
    "pickle as metadata": lambda path, marker: (path / "metadata.json").write_bytes(
        _payload(marker)
    ),
}


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
@pytest.mark.parametrize("plant", sorted(PLANTS))
def test_planted_pickle_in_a_checkpoint_is_refused_without_running(
    algo, plant, checkpoints, tmp_path
):
    path, marker = tmp_path / "checkpoint", tmp_path / "payload_ran"
    shutil.copytree(checkpoints / algo, path)
    PLANTS[plant](path, marker)
    for loader in (ALGORITHMS[algo], BaseAgent):
        with pytest.raises(CheckpointError, match="corrupt"):
            loader.load(path)
    assert not marker.exists()


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_pickle_files_beside_a_checkpoint_are_never_read(algo, checkpoints, tmp_path):
    path, marker = tmp_path / "checkpoint", tmp_path / "payload_ran"
    shutil.copytree(checkpoints / algo, path)
    for name in ("model.pt", "pytorch_model.bin", "policy.pkl", "optimizer.pth"):
        (path / name).write_bytes(_torch_payload(marker))
    ALGORITHMS[algo].load(path)
    assert not marker.exists()


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_pickled_replay_buffer_is_refused_without_running(algo, checkpoints, tmp_path):
    path, marker = tmp_path / "checkpoint", tmp_path / "payload_ran"
    shutil.copytree(checkpoints / algo, path)
    with np.load(path / "replay_buffer.npz") as archive:
        arrays = {name: archive[name] for name in archive.files}
    name = next(iter(arrays))
    arrays[name] = np.array([Payload(marker)], dtype=object)
    np.savez(path / "replay_buffer.npz", **arrays)
    with pytest.raises(CheckpointError, match=r"replay_buffer\.npz is corrupt"):
        ALGORITHMS[algo].load(path, env="rlrobot/CartPoleContinuous-v0")
    assert not marker.exists()


def test_pickled_dataset_is_refused_without_running(tmp_path):
    marker = tmp_path / "payload_ran"
    card = {"labels": {"y": {"task": "regression", "units": "m", "meaning": "y"}}}
    n = 4
    splits = np.array([0, 0, 1, 2], np.int8)
    zeros = np.zeros((n, 1), np.float32)
    path = Dataset(zeros, {"y": zeros}, np.arange(n), splits, card).save(tmp_path / "d.npz")
    labels = np.array([Payload(marker)] * n, dtype=object)
    np.savez(path, inputs=zeros, episodes=np.arange(n), splits=splits, label_y=labels)
    with pytest.raises(DatasetError, match="corrupt or not an npz"):
        Dataset.load(path)
    assert not marker.exists()


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A run folder of an untrained PPO agent: config.yaml and one checkpoint (step 0)."""
    folder = RunFolder(tmp_path_factory.mktemp("runs") / "run")
    resolved = resolve_config("ppo", "rlrobot/CartPole-v0")
    agent = ALGORITHMS["ppo"](
        resolved.env, n_envs=resolved.run.n_envs, config=resolved.algorithm, seed=0
    )
    folder.write_config(resolved.to_yaml())
    state = {"num_timesteps": 0, "episode_tracker": tracker_state(agent.episode_tracker)}
    folder.save_checkpoint(agent, 0, {**state, "best_mean_reward": 0.0})
    agent.env.close()
    return folder


def test_cli_refuses_a_planted_checkpoint_without_running(run_folder, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(run_folder.path, run)
    marker = tmp_path / "payload_ran"
    _plant_weights(run / "latest", _payload(marker))
    assert main(["eval", str(run), "--episodes", "1"]) == 2
    assert "is corrupt" in capsys.readouterr().err
    assert not marker.exists()


# -- no unsafe deserialisation in the source --------------------------------------------------
UNSAFE_CALLS = {
    ("pickle", "load"),
    ("pickle", "loads"),
    ("pickle", "Unpickler"),
    ("cloudpickle", "load"),
    ("cloudpickle", "loads"),
    ("dill", "load"),
    ("dill", "loads"),
    ("joblib", "load"),
    ("marshal", "load"),
    ("marshal", "loads"),
    ("shelve", "open"),
    ("yaml", "unsafe_load"),
    ("yaml", "full_load"),
    ("torch.jit", "load"),
}


def _keyword(call: ast.Call, name: str, position: int | None = None) -> ast.expr | None:
    """The argument ``name`` of a call (keyword, or positional at ``position``), if given."""
    if position is not None and len(call.args) > position:
        return call.args[position]
    return next((keyword.value for keyword in call.keywords if keyword.arg == name), None)


def _is_constant(node: ast.expr | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def _is_unsafe_call(owner: str, function: str, call: ast.Call) -> bool:
    if (owner, function) in UNSAFE_CALLS:
        return True
    if owner == "torch" and function == "load":
        return not _is_constant(_keyword(call, "weights_only"), True)
    if owner in ("np", "numpy") and function == "load":
        allow_pickle = _keyword(call, "allow_pickle", 2)
        return allow_pickle is not None and not _is_constant(allow_pickle, False)
    if owner == "yaml" and function == "load":
        loader = _keyword(call, "Loader", 1)
        return loader is None or "Safe" not in ast.unparse(loader)
    return False


def find_unsafe_loads(source: str, filename: str = "<source>") -> list[str]:
    """Calls that may unpickle: ``torch.load`` without ``weights_only=True``, ``pickle.load``,
    ``np.load(allow_pickle=True)``, ``yaml.load`` without ``SafeLoader``, and imports of them."""
    findings = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.ImportFrom) and node.module in {m for m, _ in UNSAFE_CALLS}:
            names = {alias.name for alias in node.names}
            if names & {f for m, f in UNSAFE_CALLS if m == node.module}:
                findings.append(f"{filename}:{node.lineno}: from {node.module} import {names}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and _is_unsafe_call(ast.unparse(node.func.value), node.func.attr, node)
        ):
            findings.append(f"{filename}:{node.lineno}: {ast.unparse(node)[:80]}")
    return findings


def test_the_scanner_finds_every_unsafe_pattern():
    unsafe = """
import pickle, torch, yaml
import numpy as np
from pickle import loads
pickle.load(open("f", "rb"))
torch.load("f")
torch.load("f", weights_only=False)
np.load("f", allow_pickle=True)
yaml.load(text)
yaml.load(text, Loader=yaml.Loader)
yaml.unsafe_load(text)
"""
    safe = """
torch.load("f", weights_only=True)
np.load("f", allow_pickle=False)
np.load("f")
yaml.safe_load(text)
yaml.load(text, Loader=yaml.SafeLoader)
"""
    assert len(find_unsafe_loads(unsafe)) == 8
    assert find_unsafe_loads(safe) == []


def test_package_never_deserialises_unsafely():
    files = sorted((REPOSITORY / "rlrobot").rglob("*.py"))
    assert len(files) > 50
    findings = [
        finding
        for path in files
        for finding in find_unsafe_loads(path.read_text(), str(path.relative_to(REPOSITORY)))
    ]
    assert findings == []


# -- paths ------------------------------------------------------------------------------------
# Every config field that takes text: none of them is a path (a new one fails this test and
# must be checked against escaping the run folder before it is added here).
TEXT_FIELDS = {
    "activation",
    "reward_redistribution",
    "clip_range_schedule",
    "device",
    "ent_coef",
    "env_kwargs",
    "env_wrapper",
    "features_extractor_class",
    "features_extractor_kwargs",
    "goal_selection_strategy",
    "lr_schedule",
    "matmul_dtype",
    "optimizer",
    "policy_name",
    "replay_buffer",
    "target_entropy",
    "train_freq",
    "vec_env",
}


def _text_fields(config_class) -> set[str]:
    hints = typing.get_type_hints(config_class)
    return {
        field.name
        for field in dataclasses.fields(config_class)
        if "str" in str(hints[field.name]) or "Literal" in str(hints[field.name])
    }


def test_no_config_field_is_a_path():
    found = _text_fields(RunConfig).union(
        *(_text_fields(agent.config_class) for agent in ALGORITHMS.values())
    )
    assert found == TEXT_FIELDS


@pytest.mark.parametrize("value", ["../escaped", "/tmp/rlrobot-escaped", "~/escaped"])
@pytest.mark.parametrize(
    ("algo", "key"),
    [
        ("ppo", key)
        for key in sorted(
            TEXT_FIELDS
            - {"goal_selection_strategy", "replay_buffer", "matmul_dtype"}
            - {"ent_coef", "target_entropy", "train_freq"}
        )
    ]
    + [
        ("sac", "replay_buffer"),
        ("sac", "matmul_dtype"),
        ("sac", "goal_selection_strategy"),
        ("sac", "ent_coef"),
        ("sac", "target_entropy"),
        ("sac", "train_freq"),
        ("ppo", "env_kwargs.obs_mode"),
    ],
)
def test_set_with_a_path_value_is_refused_and_writes_nothing(
    algo, key, value, tmp_path, monkeypatch, capsys
):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    arguments = ["train", "--algo", algo, "--env", "rlrobot/CartPoleContinuous-v0"]
    assert main([*arguments, "--steps", "64", "--set", f"{key}={value}", "--out", "run"]) == 2
    assert "error:" in capsys.readouterr().err
    assert list(tmp_path.rglob("*")) == [work]
    assert not Path("/tmp/rlrobot-escaped").exists()


@pytest.mark.parametrize("env_id", ["../../etc/x", "/abs/y", "a/..", "..", *rlrobot.ENV_IDS])
def test_default_run_folder_stays_under_runs(env_id):
    runs = Path("runs").resolve()
    assert Path(default_run_dir("ppo", env_id, 0)).resolve().parent == runs


def test_eval_writes_only_where_out_says(run_folder, tmp_path, capsys):
    before = {path: path.stat().st_mtime_ns for path in run_folder.path.rglob("*")}
    out = tmp_path / "chosen" / "eval.json"
    assert main(["eval", str(run_folder.path), "--episodes", "1", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["n_episodes"] == 1
    assert list(tmp_path.rglob("*")) == [out.parent, out]
    assert {path: path.stat().st_mtime_ns for path in run_folder.path.rglob("*")} == before
    assert main(["eval", str(run_folder.path), "--checkpoint", "../../elsewhere"]) == 2
    assert "no checkpoint '../../elsewhere'" in capsys.readouterr().err
