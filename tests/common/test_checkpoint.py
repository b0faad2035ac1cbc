"""Checkpoint round trips and the clear errors for missing, corrupt and newer checkpoints."""

import json

import pytest
import torch

from rlrobot.common.checkpoint import (
    find_checkpoint,
    load_checkpoint,
    pack_state,
    read_checkpoint_file,
    resolve_save_path,
    save_checkpoint,
    unpack_state,
)
from rlrobot.errors import CheckpointError


def test_round_trip_with_optimizer_state(tmp_path):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    tensors, tree = pack_state({"optimizer": optimizer.state_dict()}, "state")
    save_checkpoint(tmp_path / "ckpt", tensors, {"algorithm": "test", "state": tree})
    loaded_tensors, metadata = load_checkpoint(tmp_path / "ckpt", expected_algorithm="test")
    restored = unpack_state(metadata["state"], loaded_tensors)["optimizer"]
    other = torch.optim.Adam(torch.nn.Linear(3, 2).parameters(), lr=1e-3)
    other.load_state_dict(restored)
    for key in ("exp_avg", "exp_avg_sq"):
        torch.testing.assert_close(
            other.state_dict()["state"][0][key], optimizer.state[model.weight][key]
        )
    assert metadata["format_version"] == 1


def test_zip_and_directory_hold_the_same_checkpoint(tmp_path):
    tensors, extra = {"w": torch.arange(4.0)}, {"replay_buffer.npz": b"arrays"}
    archive = save_checkpoint(tmp_path / "m.zip", tensors, {"algorithm": "t"}, extra)
    directory = save_checkpoint(tmp_path / "d", tensors, {"algorithm": "t"}, extra)
    assert archive.is_file() and directory.is_dir()
    for path in (archive, directory):
        loaded, _ = load_checkpoint(path, expected_algorithm="t")
        torch.testing.assert_close(loaded["w"], tensors["w"])
        assert read_checkpoint_file(path, "replay_buffer.npz") == b"arrays"
    assert find_checkpoint(tmp_path / "m") == archive  # "m" means "m.zip", as in SB3
    with pytest.raises(ValueError, match="unknown checkpoint file"):
        save_checkpoint(tmp_path / "x.zip", tensors, {}, {"policy.pkl": b""})


def test_save_path_is_a_zip_unless_a_directory_is_named(tmp_path):
    (tmp_path / "existing").mkdir()
    assert resolve_save_path(tmp_path / "m") == tmp_path / "m.zip"
    assert resolve_save_path(tmp_path / "m.zip") == tmp_path / "m.zip"
    assert resolve_save_path(tmp_path / "m.ckpt") == tmp_path / "m.ckpt"  # a suffix is kept
    assert resolve_save_path(tmp_path / "existing") == tmp_path / "existing"
    assert resolve_save_path(f"{tmp_path}/new/") == tmp_path / "new"


def test_pack_state_refuses_arbitrary_objects():
    with pytest.raises(TypeError, match="cannot store"):
        pack_state({"x": object()})


@pytest.fixture
def checkpoint(tmp_path):
    return save_checkpoint(tmp_path / "ckpt", {"w": torch.ones(4)}, {"algorithm": "ppo"})


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nowhere")


def test_run_folder_names_its_checkpoints(tmp_path):
    save_checkpoint(tmp_path / "run" / "latest", {"w": torch.ones(4)}, {"algorithm": "ppo"})
    (tmp_path / "run" / "config.yaml").write_text("algo: ppo\n")
    with pytest.raises(CheckpointError, match=r"is a run folder, not a checkpoint; load .*latest"):
        load_checkpoint(tmp_path / "run")


def test_missing_file(checkpoint):
    (checkpoint / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"model\.safetensors missing"):
        load_checkpoint(checkpoint)


def test_truncated_tensors(checkpoint):
    data = (checkpoint / "model.safetensors").read_bytes()
    (checkpoint / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(checkpoint)


def test_corrupt_metadata(checkpoint):
    (checkpoint / "metadata.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"metadata\.json is corrupt"):
        load_checkpoint(checkpoint)


def test_newer_format_version(checkpoint):
    metadata = json.loads((checkpoint / "metadata.json").read_text())
    metadata["format_version"] = 99
    (checkpoint / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(CheckpointError, match="newer than this rlrobot supports"):
        load_checkpoint(checkpoint)


def test_wrong_algorithm(checkpoint):
    with pytest.raises(CheckpointError, match="holds a 'ppo' agent, not 'a2c'"):
        load_checkpoint(checkpoint, expected_algorithm="a2c")


def test_pickle_file_is_never_loaded(checkpoint):
    # A planted pickle is not a safetensors file: the hash check rejects it before parsing.
    (checkpoint / "model.safetensors").write_bytes(b"\x80\x04cos\nsystem\n.")
    with pytest.raises(CheckpointError):
        load_checkpoint(checkpoint)
