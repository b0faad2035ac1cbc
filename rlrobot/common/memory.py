"""Refuse an allocation the machine cannot hold, before NumPy or torch tries (and fails late).

A buffer sized by a config key (``buffer_size``, ``n_steps × n_envs``) checks its arrays' bytes
against the machine's physical memory first, so a typo such as ``buffer_size=10**12`` is one
``ConfigError`` naming the key, the bytes needed and the bytes there are, not an
``_ArrayMemoryError`` traceback (or swapping) from inside ``learn``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from typing import Any

import numpy as np

from rlrobot.errors import ConfigError

# Where the OS does not say (no ``sysconf``): assume a small machine rather than none.
FALLBACK_MEMORY_BYTES = 8 * 2**30
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def machine_memory_bytes() -> int:
    """Return the machine's physical memory in bytes (``FALLBACK_MEMORY_BYTES`` if unknown)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return FALLBACK_MEMORY_BYTES


def format_bytes(n_bytes: int) -> str:
    """Return ``n_bytes`` in binary units with one decimal (``"14.6 TiB"``)."""
    value, unit = float(n_bytes), 0
    while value >= 1024 and unit < len(_UNITS) - 1:
        value, unit = value / 1024, unit + 1
    return f"{value:.1f} {_UNITS[unit]}" if unit else f"{n_bytes} B"


def array_bytes(shape: Iterable[int], dtype: Any) -> int:
    """Return the bytes of an array of ``shape`` and ``dtype`` (exact: Python ints, no overflow)."""
    return math.prod(int(size) for size in shape) * np.dtype(dtype).itemsize


def check_memory(keys: str, what: str, arrays: Iterable[tuple[Iterable[int], Any]]) -> int:
    """Return the bytes of ``arrays`` (``(shape, dtype)`` pairs); raise ``ConfigError`` naming
    ``keys`` when they exceed the machine's physical memory."""
    needed = sum(array_bytes(shape, dtype) for shape, dtype in arrays)
    available = machine_memory_bytes()
    if needed > available:
        raise ConfigError(
            f"{keys} needs {format_bytes(needed)} for the {what}; this machine has "
            f"{format_bytes(available)}"
        )
    return needed
