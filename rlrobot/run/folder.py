"""The run folder: every file a training run writes, and how each is written safely.

Layout::

    RUN_DIR/
      config.yaml                  resolved config (algo, env, seed, every key)
      progress.csv, events.out.*   training log: SB3 key names, CSV and TensorBoard
      tensorboard.txt              with ``--tensorboard-log DIR`` only: the folder
                                   DIR/<run folder name>_N that holds the events instead
      evaluations.csv              one row per periodic evaluation
      checkpoints/step_0000020480/ periodic checkpoints (model.safetensors, metadata.json,
                                   run_state.json); the newest ``keep_checkpoints`` are kept
      latest/                      copy of the newest checkpoint (what ``--resume`` loads)
      best/                        the checkpoint with the best evaluation return so far
      learning_curve.png           written at the end of training
      eval.json, rollout.gif …     written by ``rlrobot eval`` (then eval-2.json …) /
                                   ``rlrobot record``
      run.lock                     while ``rlrobot train`` writes: its PID, host and start time

A checkpoint directory is built under a temporary name and moved into place with
``os.replace``, so a crash never leaves a half-written ``checkpoints/step_*``. ``latest`` and
``best`` are swapped in the same way; if a crash hits between the two renames of a swap,
``find_resume_checkpoint`` falls back to the newest complete ``checkpoints/step_*``. Every other
file is replaced atomically too, or only ever appended to in whole rows (the CSV logs) or
records (TensorBoard events); ``check_run_folder`` checks all of them.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import zipfile
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from rlrobot.common.checkpoint import METADATA_FILE, TENSORS_FILE, load_checkpoint
from rlrobot.common.files import TEMPORARY_PATTERN, atomic_write_bytes, temporary_path
from rlrobot.common.logger import latest_run_id, row_step
from rlrobot.errors import CheckpointError, RunFolderError
from rlrobot.run.lock import LOCK_FILE, hold_writer_lock, lock_state

RUN_STATE_FILE = "run_state.json"
EVALUATION_COLUMNS = (
    "step",
    "mean_reward",
    "std_reward",
    "mean_ep_length",
    "std_ep_length",
    "success_rate",
    "n_episodes",
)
_STEP_PATTERN = re.compile(r"^step_(\d+)$")
# Held by the one process writing the folder (``rlrobot train``); its text names that process.
_PNG_END = b"IEND\xaeB`\x82"


class RunFolder:
    """Paths and file operations of one run folder (see the module docstring).

    Args:
        path: The run folder; created on first write.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.config_path = self.path / "config.yaml"
        self.progress_path = self.path / "progress.csv"
        self.evaluations_path = self.path / "evaluations.csv"
        self.checkpoints_path = self.path / "checkpoints"
        self.latest_path = self.path / "latest"
        self.best_path = self.path / "best"
        self.curve_path = self.path / "learning_curve.png"
        self.eval_path = self.path / "eval.json"
        self.tensorboard_note_path = self.path / "tensorboard.txt"

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    # -- the one writer ---------------------------------------------------------------------------
    def writer_lock(self) -> AbstractContextManager[str | None]:
        """Hold ``run.lock`` while the block writes to the folder (see ``run.lock``)."""
        return hold_writer_lock(self.path)

    # -- config -------------------------------------------------------------------------------
    def check_unused(self) -> None:
        """Raise ``RunFolderError`` if the folder already holds a run."""
        if self.config_path.exists():
            raise RunFolderError(
                f"{self.path} already holds a run (config.yaml exists); add --resume to "
                "continue it or choose another --out"
            )

    def write_config(self, config_text: str) -> None:
        """Write ``config.yaml`` atomically (creating the folder)."""
        atomic_write_bytes(self.config_path, config_text.encode())

    def tensorboard_folder(self) -> Path:
        """Return where the run's TensorBoard events go: the folder ``tensorboard.txt`` names
        (a run trained with ``--tensorboard-log``), else the run folder itself."""
        if self.tensorboard_note_path.is_file():
            return Path(self.tensorboard_note_path.read_text().strip())
        return self.path

    def record_tensorboard_folder(self, tensorboard_log: str | os.PathLike) -> Path:
        """Choose ``tensorboard_log/<run folder name>_N`` (SB3's naming: N one above the latest
        there) for the events, write it into ``tensorboard.txt`` and return it."""
        name = self.path.resolve().name
        number = latest_run_id(tensorboard_log, name) + 1
        events = Path(tensorboard_log).resolve() / f"{name}_{number}"
        atomic_write_bytes(self.tensorboard_note_path, f"{events}\n".encode())
        return events

    def next_eval_path(self) -> Path:
        """Return ``eval.json``, else the first free ``eval-2.json``, ``eval-3.json`` …: an
        evaluation never replaces an earlier one."""
        path, number = self.eval_path, 1
        while path.exists():
            number += 1
            path = self.path / f"eval-{number}.json"
        return path

    def require_run(self) -> None:
        """Raise ``RunFolderError`` unless the folder holds a run's ``config.yaml``."""
        if self.config_path.is_file():
            return
        if any((self.path / name).is_file() for name in (METADATA_FILE, TENSORS_FILE)):
            raise RunFolderError(self._checkpoint_folder_hint())
        raise RunFolderError(
            f"{self.path} is not a run folder (no config.yaml); train one with "
            f"`rlrobot train … --out {self.path}`"
        )

    def check_layout(self) -> None:
        """Raise ``RunFolderError`` naming the first of the run's logs that is not a readable
        UTF-8 file, or of its checkpoint folders that is not a folder (before a resume
        appends to them: a damaged one would fail only after the training)."""
        for path in (self.progress_path, self.evaluations_path):
            if not path.exists():
                continue
            if not path.is_file():
                raise RunFolderError(f"{path} is not a regular file; move it away to resume")
            try:
                path.read_bytes().decode("utf-8")
            except UnicodeDecodeError as error:
                raise RunFolderError(
                    f"{path} is damaged: not UTF-8 text ({error.reason} at byte {error.start}); "
                    "restore it or move it away to resume"
                ) from None
            except OSError as error:
                raise RunFolderError(f"{path} cannot be read ({error.strerror})") from None
        for path in (self.checkpoints_path, self.latest_path, self.best_path):
            if path.exists() and not path.is_dir():
                raise RunFolderError(
                    f"{path} is not a folder (it holds the run's checkpoints); move it away "
                    "to resume"
                )

    def _checkpoint_folder_hint(self) -> str:
        """Explain that this folder is a checkpoint, naming its run folder and checkpoint."""
        message = f"{self.path} is a checkpoint folder, not a run folder"
        # ``RUN/latest``, ``RUN/best`` or ``RUN/checkpoints/step_*``.
        run = next((p for p in self.path.parents[:2] if (p / "config.yaml").is_file()), None)
        if run is None:
            return f"{message}; pass the run folder that holds it (the one with config.yaml)"
        step = _STEP_PATTERN.match(self.path.name)
        if step:
            name = str(int(step.group(1)))
        elif self.path.name in ("latest", "best"):
            name = self.path.name
        else:
            name = str(self.path)  # ``--checkpoint`` also takes a path
        choice = "" if name == "latest" else f" with --checkpoint {name}"
        return f"{message}; pass its run folder instead: {run}{choice}"

    def remove_temporaries(self) -> list[Path]:
        """Delete what a killed run left half-written under temporary names; return it.

        A ``latest`` or ``best`` whose swap a kill interrupted between its two renames is put
        back first: the new copy if it is complete, else the old one. Only for a folder no
        process is writing to (a run about to be resumed).
        """
        for target in (self.latest_path, self.best_path):
            if not target.exists():
                staged, displaced = temporary_path(target), temporary_path(target, "old")
                for candidate in (staged, displaced):
                    if candidate.is_dir() and is_complete_checkpoint(candidate):
                        os.replace(candidate, target)
                        break
        removed = []
        for parent in (self.path, self.checkpoints_path):
            if not parent.is_dir():
                continue
            for entry in parent.iterdir():
                if TEMPORARY_PATTERN.match(entry.name):
                    if entry.is_dir():
                        shutil.rmtree(entry)
                    else:
                        entry.unlink()
                    removed.append(entry)
        return removed

    # -- checkpoints --------------------------------------------------------------------------
    def step_checkpoint_path(self, step: int) -> Path:
        """Return ``checkpoints/step_<step>`` (zero-padded so names sort by step)."""
        return self.checkpoints_path / f"step_{step:010d}"

    def save_checkpoint(self, agent: Any, step: int, run_state: dict[str, Any]) -> Path:
        """Save ``agent`` and ``run_state`` as ``checkpoints/step_<step>`` and update ``latest``.

        Returns:
            The new checkpoint directory.
        """
        target = self.step_checkpoint_path(step)
        self._write_agent_directory(agent, run_state, target, resumable=True)
        staging = temporary_path(self.latest_path)
        shutil.rmtree(staging, ignore_errors=True)
        # Checkpoint files are never modified in place, so ``latest`` can share them.
        shutil.copytree(target, staging, copy_function=_link_or_copy)
        _replace_directory(staging, self.latest_path)
        return target

    def save_best(self, agent: Any, run_state: dict[str, Any]) -> Path:
        """Save ``agent`` and ``run_state`` as ``best`` (replacing the previous best)."""
        self._write_agent_directory(agent, run_state, self.best_path, resumable=False)
        return self.best_path

    def remove_best(self) -> None:
        """Delete ``best`` if there is one (for a run that starts again from step 0)."""
        if self.best_path.exists():
            _remove_directory(self.best_path)

    def _write_agent_directory(
        self, agent: Any, run_state: dict[str, Any], target: Path, resumable: bool
    ) -> None:
        staging = temporary_path(target)
        shutil.rmtree(staging, ignore_errors=True)
        # An existing directory is saved into as a checkpoint directory (not a .zip file).
        staging.mkdir(parents=True)
        # A checkpoint to resume from holds the replay buffer and the episodes in progress,
        # which ``load`` restores.
        agent.save(staging, include_replay_buffer=resumable, include_episodes=resumable)
        atomic_write_bytes(staging / RUN_STATE_FILE, json.dumps(run_state, indent=2).encode())
        _replace_directory(staging, target)

    def step_checkpoints(self) -> list[tuple[int, Path]]:
        """Return ``(step, path)`` of every ``checkpoints/step_*``, oldest first."""
        if not self.checkpoints_path.is_dir():
            return []
        found = []
        for path in self.checkpoints_path.iterdir():
            match = _STEP_PATTERN.match(path.name)
            if match and path.is_dir():
                found.append((int(match.group(1)), path))
        return sorted(found)

    def prune_checkpoints(self, keep: int) -> None:
        """Delete all but the newest ``keep`` step checkpoints (``keep=0`` keeps all)."""
        if keep > 0:
            for _, path in self.step_checkpoints()[:-keep]:
                _remove_directory(path)

    def find_resume_checkpoint(self) -> Path | None:
        """Return the newest complete checkpoint: ``latest`` or a newer ``checkpoints/step_*``.

        Returns:
            The checkpoint, or None when the run has none yet (``latest`` and
            ``checkpoints/step_*`` absent: it stopped before its first checkpoint).

        Raises:
            RunFolderError: Checkpoints exist but none of them is complete.
        """
        candidates = self.step_checkpoints()
        if not candidates and not self.latest_path.exists():
            return None
        latest_step = _checkpoint_step(self.latest_path)
        if latest_step is not None:
            candidates.append((latest_step, self.latest_path))
        # Newest first; at equal steps prefer ``latest`` (appended last, so reversed first).
        problems = []
        for _, path in sorted(candidates, key=lambda item: item[0], reverse=True):
            problem = checkpoint_problem(path)
            if problem is None:
                return path
            problems.append(problem)
        newest = f"; the newest: {problems[0]}" if problems else ""
        raise RunFolderError(
            f"{self.path} has no complete checkpoint to resume from (looked at latest/ and "
            f"checkpoints/step_*){newest}"
        )

    def resolve_checkpoint(self, name: str) -> Path:
        """Return the checkpoint called ``name``: ``latest``, ``best``, a step, or a path.

        Raises:
            RunFolderError: It does not exist.
        """
        if name.isdigit():
            path = self.step_checkpoint_path(int(name))
        elif name in ("latest", "best"):
            path = self.path / name
        else:
            path = Path(name)
        if not (path / "metadata.json").is_file():
            available = [a for a in ("latest", "best") if (self.path / a).is_dir()]
            available += [str(step) for step, _ in self.step_checkpoints()]
            raise RunFolderError(f"no checkpoint {name!r} in {self.path}; available: {available}")
        return path

    # -- evaluations --------------------------------------------------------------------------
    def append_evaluation(self, row: dict[str, Any]) -> None:
        """Append one row to ``evaluations.csv`` (header written on first use)."""
        new_file = not self.evaluations_path.exists()
        with self.evaluations_path.open("a", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=EVALUATION_COLUMNS)
            if new_file:
                writer.writeheader()
            writer.writerow({key: row.get(key, "") for key in EVALUATION_COLUMNS})

    def read_evaluations(self) -> list[dict[str, float]]:
        """Return the rows of ``evaluations.csv`` as floats (NaN where empty)."""
        return read_csv_rows(self.evaluations_path)

    def truncate_evaluations(self, max_step: int) -> None:
        """Drop evaluations after ``max_step`` (made by an interrupted run after its checkpoint)."""
        if not self.evaluations_path.exists():
            return
        with self.evaluations_path.open(newline="") as file:
            rows = [row for row in csv.DictReader(file) if row_step(row) <= max_step]
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=EVALUATION_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_bytes(self.evaluations_path, text.getvalue().encode())


def read_csv_rows(path: str | os.PathLike) -> list[dict[str, float]]:
    """Read a CSV of numbers into dicts of floats (empty cells become NaN)."""
    path = Path(path)
    if not path.is_file():
        return []
    with path.open(newline="") as file:
        return [
            {
                key: float(value) if value not in ("", None) else float("nan")
                for key, value in row.items()
            }
            for row in csv.DictReader(file)
        ]


def is_complete_checkpoint(path: Path) -> bool:
    """Tell whether ``path`` holds a loadable checkpoint and its ``run_state.json``."""
    return checkpoint_problem(path) is None


def checkpoint_problem(path: Path) -> str | None:
    """Return why ``path`` is no loadable checkpoint with its ``run_state.json`` (None: it is)."""
    if not (path / RUN_STATE_FILE).is_file():
        return f"{path} has no {RUN_STATE_FILE}"
    try:
        load_checkpoint(path)
        json.loads((path / RUN_STATE_FILE).read_text())
    except (CheckpointError, json.JSONDecodeError, OSError) as error:
        return str(error)
    return None


def check_run_folder(path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """Check that every file of a run folder is whole, e.g. after the run was killed.

    Checkpoint directories must load (their SHA-256 matches), JSON and YAML files parse, CSV
    rows have every column and a numeric ``step``, PNG images end with their end chunk, and
    TensorBoard event files are a sequence of whole records (a cut last record, which
    TensorBoard skips, is reported as a temporary). A ``run.lock`` held by a running writer is
    reported as damage (the folder is still changing), one left by a killed writer as a
    temporary.

    Returns:
        ``(damaged, temporaries)``: descriptions of damaged files, and the paths (relative to
        the folder) of files or directories still named as temporaries.
    """
    root = Path(path)
    damaged: list[str] = []
    temporaries: list[str] = []
    lock = lock_state(root)
    if lock is not None and lock[0] == "held":
        damaged.append(f"{LOCK_FILE}: held by {lock[1]}; a run is writing this folder")
    elif lock is not None:
        temporaries.append(f"{LOCK_FILE} (stale: {lock[1]}, which is no longer running)")
    for entry in sorted(root.rglob("*")):
        relative = entry.relative_to(root)
        if any(TEMPORARY_PATTERN.match(part) for part in relative.parts):
            if TEMPORARY_PATTERN.match(entry.name):
                temporaries.append(str(relative))
            continue
        in_checkpoint = (entry.parent / "metadata.json").exists()
        if entry.is_dir() and (entry.name in ("latest", "best") or _STEP_PATTERN.match(entry.name)):
            try:
                load_checkpoint(entry)
                for name in (RUN_STATE_FILE, "replay_buffer.npz"):
                    if (entry / name).exists():
                        _check_file(entry / name)
            except (CheckpointError, ValueError, OSError) as error:
                damaged.append(f"{relative}: {error}")
        elif entry.is_file() and not in_checkpoint:
            try:
                if _check_file(entry) == "cut":
                    temporaries.append(f"{relative} (last record cut)")
            except (ValueError, OSError) as error:
                damaged.append(f"{relative}: {error}")
    return damaged, temporaries


def _check_file(path: Path) -> str:
    """Raise ``ValueError`` unless ``path`` parses; return ``"cut"`` for a cut event record."""
    data = path.read_bytes()
    if path.suffix == ".json":
        json.loads(data)
    elif path.suffix == ".yaml":
        import yaml

        from rlrobot.common.yaml_loading import describe_yaml_error, load_yaml

        try:
            mapping = load_yaml(data)
        except yaml.YAMLError as error:
            raise ValueError(describe_yaml_error(error)) from None
        if not isinstance(mapping, dict):
            raise ValueError("not a YAML mapping")
    elif path.suffix == ".csv":
        rows = list(csv.reader(io.StringIO(data.decode())))
        if rows and any(len(row) != len(rows[0]) for row in rows[1:]):
            raise ValueError("a row has missing or extra columns")
        if rows and "step" in rows[0]:
            index = rows[0].index("step")
            for row in rows[1:]:
                float(row[index])
    elif path.suffix == ".png" and not data.endswith(_PNG_END):
        raise ValueError("PNG image without its end chunk")
    elif path.suffix == ".npz":
        import numpy as np

        try:
            with np.load(path, allow_pickle=False) as archive:
                for name in archive.files:
                    archive[name]  # reading checks the member's CRC
        except (EOFError, zipfile.BadZipFile) as error:
            raise ValueError(f"not a whole npz archive ({error})") from None
    elif path.name.startswith("events.out.tfevents"):
        # Records: uint64 length, uint32 CRC of the length, data, uint32 CRC of the data.
        offset = 0
        while offset < len(data):
            if offset + 12 > len(data):
                return "cut"
            offset += 16 + int.from_bytes(data[offset : offset + 8], "little")
            if offset > len(data):
                return "cut"
    return "ok"


def read_run_state(path: Path) -> dict[str, Any]:
    """Return the ``run_state.json`` of a checkpoint directory."""
    return json.loads((path / RUN_STATE_FILE).read_text())


def _checkpoint_step(path: Path) -> int | None:
    try:
        return int(json.loads((path / RUN_STATE_FILE).read_text())["num_timesteps"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _remove_directory(path: Path) -> None:
    """Delete a directory, first renamed to a temporary name: a crash never leaves it half gone."""
    doomed = temporary_path(path, "old")
    shutil.rmtree(doomed, ignore_errors=True)
    os.replace(path, doomed)
    shutil.rmtree(doomed)


def _replace_directory(source: Path, target: Path) -> None:
    """Move the directory ``source`` to ``target``, replacing it with two renames."""
    if target.exists():
        old = temporary_path(target, "old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(source, target)
        shutil.rmtree(old)
    else:
        os.replace(source, target)
