"""Argparse ``type`` functions for the numbers of every ``rlrobot`` sub-command.

A bad value becomes argparse's usage error (exit code 2, no traceback) naming the option, the
value and what is allowed. The parsers of every layer's command (``run``, ``benchmark``,
``perception``, ``envs``) share them, so they live here, below all of those layers.
"""

from __future__ import annotations

import argparse
import math


def positive_int(text: str) -> int:
    """Parse an integer >= 1 (an argparse ``type``: a bad value is a one-line usage error)."""
    return _bounded_int(text, 1)


def non_negative_int(text: str) -> int:
    """Parse an integer >= 0 (seeds, counts that may be zero)."""
    return _bounded_int(text, 0)


def positive_float(text: str) -> float:
    """Parse a finite number > 0 (an argparse ``type``: a bad value is a one-line usage error)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    """Parse a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}") from None
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


def _bounded_int(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
    return value
