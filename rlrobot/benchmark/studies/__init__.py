"""Studies: planned sets of benchmark trials with a report, run by ``rlrobot bench --study``.

Each study is a module with ``main(out_dir, trials_dir, seeds, execution, budget_scale, quick,
command) -> report path``; ``STUDIES`` names them for the CLI.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


def _delayed_rewards(function: str) -> Callable[..., Path]:
    """Return a runner of ``studies.delayed_rewards.<function>``, imported when it runs."""

    def run(**options: Any) -> Path:
        from rlrobot.benchmark.studies import delayed_rewards

        return getattr(delayed_rewards, function)(**options)

    return run


# Name → runner; imported on use, so that ``rlrobot --help`` loads no study.
STUDIES: dict[str, Callable[..., Path]] = {
    "delayed_rewards": _delayed_rewards("main"),
    "delayed_rewards_margins": _delayed_rewards("main_margins"),
}
