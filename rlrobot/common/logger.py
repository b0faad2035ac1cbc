"""SB3-style logger: ``record(key, value)`` values, then ``dump(step)`` them to every output.

Outputs: stdout (a table), ``progress.csv`` and TensorBoard events in a run folder. Key names
follow SB3 (``rollout/ep_rew_mean``, ``train/policy_loss``, ``time/fps`` …) so runs can be
compared side by side.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from rlrobot.common.files import atomic_write_bytes


class Logger:
    """Collect scalar values and write them out once per ``dump``.

    Args:
        folder: Run folder for ``progress.csv`` and TensorBoard events; ``None`` for none.
        outputs: Any of ``"stdout"``, ``"csv"``, ``"tensorboard"``.
        stream: Where ``"stdout"`` writes.
        resume_step: Continue the logs of an interrupted run from this env step: keep the rows
            of ``progress.csv`` up to it (later ones are dropped) and append to the file, and
            hide TensorBoard events after it (``purge_step``). ``None`` starts new logs.
        tensorboard_folder: Where the TensorBoard events go (default: ``folder``), e.g. the
            ``--tensorboard-log`` folder of a run whose CSV stays in its run folder.
    """

    def __init__(
        self,
        folder: str | os.PathLike | None = None,
        outputs: tuple[str, ...] = ("stdout", "csv", "tensorboard"),
        stream: TextIO | None = None,
        resume_step: int | None = None,
        tensorboard_folder: str | os.PathLike | None = None,
    ) -> None:
        unknown = set(outputs) - {"stdout", "csv", "tensorboard"}
        if unknown:
            raise ValueError(f"unknown logger outputs {sorted(unknown)}")
        self.folder = Path(folder) if folder is not None else None
        self.outputs = outputs
        self.stream = stream if stream is not None else sys.stdout
        self.values: dict[str, float] = {}
        self._excluded: dict[str, tuple[str, ...]] = {}  # key → outputs that skip it
        self.history: list[dict[str, float]] = []
        self._csv_keys: list[str] = []
        self._writer = None
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            if resume_step is not None and self.csv_path is not None and self.csv_path.exists():
                self._truncate_csv(resume_step)
            if "tensorboard" in outputs:
                from torch.utils.tensorboard import SummaryWriter

                purge_step = resume_step + 1 if resume_step is not None else None
                log_dir = self.folder if tensorboard_folder is None else tensorboard_folder
                self._writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)

    @property
    def csv_path(self) -> Path | None:
        """Path of ``progress.csv`` (None without a folder or CSV output)."""
        if self.folder is None or "csv" not in self.outputs:
            return None
        return self.folder / "progress.csv"

    def record(self, key: str, value: Any, exclude: str | tuple[str, ...] | None = None) -> None:
        """Set ``key`` to a scalar for the next ``dump`` (a later value replaces an earlier one).

        ``exclude`` is SB3's: outputs (``"stdout"``, ``"csv"``, ``"tensorboard"``) that skip it.
        """
        self.values[key] = float(value)
        excluded = (exclude,) if isinstance(exclude, str) else tuple(exclude or ())
        if excluded:
            self._excluded[key] = excluded
        else:
            self._excluded.pop(key, None)

    def dump(self, step: int = 0) -> dict[str, float]:
        """Write the recorded values at env step ``step`` to every output and clear them."""
        if not self.values:
            return {}
        values = dict(sorted(self.values.items()))
        excluded, self.values, self._excluded = self._excluded, {}, {}
        self.history.append({"step": float(step), **values})

        def written_to(output: str) -> dict[str, float]:
            return {k: v for k, v in values.items() if output not in excluded.get(k, ())}

        if "stdout" in self.outputs and written_to("stdout"):
            self._write_stdout(written_to("stdout"))
        if self.csv_path is not None:
            self._write_csv(step, written_to("csv"))
        if self._writer is not None:
            for key, value in written_to("tensorboard").items():
                self._writer.add_scalar(key, value, step)
            self._writer.flush()
        return values

    def _write_stdout(self, values: dict[str, float]) -> None:
        width = max(len(key) for key in values)
        lines = ["-" * (width + 16)]
        lines += [f"| {key:<{width}} | {value:>10.4g} |" for key, value in values.items()]
        lines.append("-" * (width + 16))
        self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()

    def _write_csv(self, step: int, values: dict[str, float]) -> None:
        path = self.csv_path
        row = {"step": step, **values}
        new_keys = [key for key in row if key not in self._csv_keys]
        if new_keys:
            # A new key extends the header: rewrite the file with the wider header (SB3 does too).
            old_rows = []
            if path.exists() and self._csv_keys:
                with path.open(newline="") as file:
                    old_rows = list(csv.DictReader(file))
            self._csv_keys += new_keys
            self._rewrite_csv(old_rows)
        # One short row is one write() call: a killed process leaves whole rows or none.
        with path.open("a", newline="") as file:
            csv.DictWriter(file, fieldnames=self._csv_keys).writerow(row)

    def _rewrite_csv(self, rows: list[dict[str, Any]]) -> None:
        """Replace ``progress.csv`` atomically: a crash leaves the old file or the new one."""
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=self._csv_keys)
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_bytes(self.csv_path, text.getvalue().encode())

    def _truncate_csv(self, max_step: int) -> None:
        """Keep the rows of ``progress.csv`` up to ``max_step`` and adopt its header.

        Rows that do not parse (a partial last line) are dropped too.
        """
        with self.csv_path.open(newline="") as file:
            reader = csv.DictReader(file)
            self._csv_keys = list(reader.fieldnames or [])
            rows = [row for row in reader if row_step(row) <= max_step]
        self._rewrite_csv(rows)

    def close(self) -> None:
        """Close the TensorBoard writer."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def row_step(row: dict[str, Any]) -> float:
    """The ``step`` of a CSV row; infinity for a row with missing cells or a bad step."""
    if None in row or None in row.values():
        return math.inf
    try:
        return float(row["step"])
    except (KeyError, ValueError):
        return math.inf


def latest_run_id(log_path: str | os.PathLike, log_name: str) -> int:
    """Return the largest N of the folders ``{log_name}_N`` in ``log_path`` (0: none), as SB3."""
    folder = Path(log_path)
    numbers = [
        int(path.name.rpartition("_")[2])
        for path in (folder.glob(f"{log_name}_*") if folder.is_dir() else [])
        if path.name.rpartition("_")[0] == log_name and path.name.rpartition("_")[2].isdigit()
    ]
    return max(numbers, default=0)
