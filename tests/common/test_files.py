"""Atomic outputs: a target is either the old file or the complete new one."""

import stat

import numpy as np
import pytest

from rlrobot.common.files import atomic_output, atomic_write_bytes


def test_atomic_output_moves_the_finished_file_into_place(tmp_path):
    target = tmp_path / "sub" / "data.npz"
    with atomic_output(target) as temporary:
        assert temporary.parent == target.parent and temporary.suffix == ".npz"
        assert not target.exists()  # nothing at the target while writing
        np.savez(temporary, x=np.arange(3))
    np.testing.assert_array_equal(np.load(target)["x"], np.arange(3))
    assert sorted(p.name for p in target.parent.iterdir()) == ["data.npz"]
    assert stat.S_IMODE(target.stat().st_mode) & 0o044 == 0o044  # readable by others, not 0600


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "log.csv"
    atomic_write_bytes(target, b"old")
    with pytest.raises(RuntimeError, match="crash"), atomic_output(target) as temporary:
        temporary.write_bytes(b"half")
        raise RuntimeError("crash")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["log.csv"]
