"""Progress bars for long loops (training steps, collected episodes, epochs), for every layer."""

from __future__ import annotations

import os
import sys
from typing import Any


def should_show_progress(progress_bar: bool) -> bool:
    """Show a progress bar only on a terminal and outside CI."""
    return progress_bar and sys.stderr.isatty() and not os.environ.get("CI")


def make_progress_bar(progress_bar: bool, total: int, unit: str) -> Any:
    """Return a tqdm bar over ``total`` ``unit``s, or None where none should show."""
    if not should_show_progress(progress_bar):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit=unit, dynamic_ncols=True)
