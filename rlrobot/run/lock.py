"""One writer per run folder: ``run.lock``, an OS file lock that names its holder.

The kernel drops the lock when its process dies, so a lock left by a killed run is free and
is taken over; the file's text (PID, host, start) names the holder for a writer that is refused.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rlrobot.errors import RunFolderError

LOCK_FILE = "run.lock"


@contextmanager
def hold_writer_lock(path: Path) -> Iterator[str | None]:
    """Hold ``path``'s ``run.lock`` (creating the folder) while the block writes to it.

    The lock is an OS file lock, which the kernel drops when its process dies, so a lock
    left by a killed run is free and is taken over; the file's text names the holder for
    the writer that is refused. Yields the holder of such a stale lock (None if the last
    writer ended cleanly). A folder the lock created is removed again if it stays empty.

    Raises:
        RunFolderError: Another process holds the lock (naming its PID, host and start).
    """
    created = not path.is_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # a file of that name, or a path under a file
        raise RunFolderError(f"cannot make the run folder {path}: {error.strerror}") from None
    lock_path = path / LOCK_FILE
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        # ``lock_state`` (``check_run_folder``) holds the lock for an instant: wait it out.
        deadline = time.monotonic() + 0.5
        while not (locked := _try_lock(fd)) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not locked:
            holder = describe_lock_holder(_read_all(fd))
            os.close(fd)
            raise RunFolderError(
                f"{path} is being written by another run ({holder}); wait for it to "
                "end, stop it, or choose another --out"
            )
        # A holder that was releasing may have unlinked the file we opened: lock a fresh one.
        try:
            if os.stat(lock_path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    stale = _read_all(fd)
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, _lock_holder_text().encode())
    os.fsync(fd)
    try:
        yield describe_lock_holder(stale) if stale else None
    finally:
        os.unlink(lock_path)  # before the unlock, so no writer takes a lock being removed
        os.close(fd)
        if created and not any(path.iterdir()):
            path.rmdir()


def lock_state(path: str | os.PathLike) -> tuple[str, str] | None:
    """Return ``("held" or "stale", holder)`` for the run folder's ``run.lock``; None if absent."""
    lock_path = Path(path) / LOCK_FILE
    try:
        fd = os.open(lock_path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        holder = describe_lock_holder(_read_all(fd))
        return ("stale", holder) if _try_lock(fd) else ("held", holder)
    finally:
        os.close(fd)  # also drops the lock this check took


def describe_lock_holder(text: str) -> str:
    """Describe the process that ``run.lock``'s text names: PID, host and start time."""
    try:
        holder = json.loads(text)
        return f"PID {int(holder['pid'])} on {holder['host']}, since {holder['since']}"
    except (ValueError, KeyError, TypeError):
        return "a process that left no record of itself"


def _lock_holder_text() -> str:
    since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": since})


def _read_all(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 1 << 16).decode(errors="replace")


def _try_lock(fd: int) -> bool:
    """Take the exclusive OS lock of ``fd`` without waiting; tell whether it was free."""
    if os.name == "nt":
        import msvcrt

        os.lseek(fd, 1 << 20, os.SEEK_SET)  # a byte past the text, so others can still read it
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as error:  # e.g. a network file system without file locks
        raise RunFolderError(f"cannot lock {LOCK_FILE} ({error.strerror})") from None
    return True
