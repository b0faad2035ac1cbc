"""Seeding and capture/restore of the Python, NumPy and torch global RNG states."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from rlrobot.common.checkpoint import check_like_template
from rlrobot.envs.checks import Interval, check_number

# The positions of MT19937's key (624 words; 624: the key is used up).
MT_POSITION = Interval(0, 624)


def set_seed(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global RNG and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - third-party code uses the global RNG
    torch.manual_seed(seed)


def get_rng_state() -> dict[str, Any]:
    """Return the global RNG states (JSON values and tensors only, checkpoint-friendly)."""
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
        "numpy": np.random.get_state(legacy=False),  # noqa: NPY002
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["torch_cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore RNG states captured by ``get_rng_state`` (also after a checkpoint round trip)."""
    python = state["python"]
    random.setstate((python["version"], tuple(python["internal"]), python["gauss"]))
    np.random.set_state(state["numpy"])  # noqa: NPY002
    torch.set_rng_state(torch.as_tensor(state["torch"], dtype=torch.uint8))
    if "torch_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.as_tensor(s) for s in state["torch_cuda"]])


def check_rng_state(state: Any) -> None:
    """Raise ValueError unless ``state`` is what ``get_rng_state`` returns, restorable as is.

    Each part is tried on a throwaway generator (Python's, NumPy's, torch's), so the global
    RNGs are only set from a state that is known to fit them.
    """
    if not isinstance(state, dict) or not {"python", "numpy", "torch"} <= set(state):
        raise ValueError("field 'state.rng' must hold 'python', 'numpy' and 'torch'")
    try:
        python = state["python"]
        internal = tuple(python["internal"])
        random.Random().setstate((python["version"], internal, python["gauss"]))
    except (KeyError, TypeError, ValueError, OverflowError) as error:
        raise ValueError(f"field 'state.rng.python' is not a valid RNG state ({error})") from None
    # NumPy's MT19937 takes any ``pos`` and then reads its key out of bounds: checked here.
    current_numpy = np.random.get_state(legacy=False)  # noqa: NPY002
    check_like_template("state.rng.numpy", state["numpy"], current_numpy)
    check_number(
        "field 'state.rng.numpy.state.pos'", state["numpy"]["state"]["pos"], int, MT_POSITION
    )
    check_number(
        "field 'state.rng.numpy.has_gauss'", state["numpy"]["has_gauss"], int, Interval(0, 1)
    )
    try:
        np.random.RandomState().set_state(state["numpy"])
    except (TypeError, ValueError, OverflowError) as error:
        raise ValueError(f"field 'state.rng.numpy' is not a valid RNG state ({error})") from None
    current = torch.get_rng_state()
    saved = state["torch"]
    if (
        not isinstance(saved, torch.Tensor)
        or saved.dtype != current.dtype
        or saved.shape != current.shape
    ):
        raise ValueError(
            f"field 'state.rng.torch' must be a uint8 tensor of {current.numel()} bytes"
        )
    try:
        torch.Generator().set_state(saved)
    except RuntimeError as error:
        raise ValueError(f"field 'state.rng.torch' is not a valid RNG state ({error})") from None
