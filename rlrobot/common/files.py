"""Files that survive a crash: every output is written beside its target and renamed onto it.

A reader sees either the old file or the complete new one, never a half-written file, because
``os.replace`` within one folder is atomic on POSIX and Windows. Every name something is written
under before it is moved into place matches ``TEMPORARY_PATTERN``, so whatever a killed process
leaves half-written is recognised (and removed) by one rule.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rlrobot.errors import CommandError

# The process umask (reading it means setting it; done once, at import).
_UMASK = os.umask(0o022)
os.umask(_UMASK)

# Names of files and directories still being written: ``.NAME.tmp`` (a directory being built),
# ``.NAME.old`` (the displaced copy during a directory swap) and ``.NAME.XXXX.tmp.SUFFIX``
# (``atomic_output``, which keeps the suffix for writers that choose the format by extension).
TEMPORARY_PATTERN = re.compile(r"^\..+\.(tmp|old)(\.[A-Za-z0-9]+)?$")


def temporary_path(path: str | os.PathLike, kind: str = "tmp") -> Path:
    """Return ``.NAME.tmp`` (or ``.NAME.old`` for ``kind="old"``) beside ``path``."""
    path = Path(path)
    return path.parent / f".{path.name}.{kind}"


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` when the block succeeds.

    The temporary name keeps ``path``'s suffix, so writers that choose the format by extension
    (NumPy's ``.npz``, imageio's ``.gif``/``.mp4``) work on it. If the block raises, the
    temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}"
    )
    os.close(fd)
    temporary = Path(name)
    try:
        # mkstemp creates the file readable by its owner only; give it the usual permissions.
        os.chmod(temporary, 0o666 & ~_UMASK)
        yield temporary
        with open(temporary, "rb+") as file:
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see ``atomic_output``)."""
    with atomic_output(path) as temporary:
        temporary.write_bytes(data)


def check_writable(path: str | os.PathLike, flag: str, is_folder: bool) -> None:
    """Raise ``CommandError`` unless ``path`` can be written (as a folder, or as a file).

    Commands call it before their work starts, so a bad ``--out`` fails at once, not after
    every episode. The folder that would hold ``path`` is tried with a real write: permission
    bits say nothing for root, or on a read-only file system.
    """
    try:
        _check_writable(Path(path), flag, is_folder)
    except OSError as error:  # a name too long for the file system, a loop of links
        raise CommandError(f"{flag} {path}: {error.strerror}") from None


def _check_writable(path: Path, flag: str, is_folder: bool) -> None:
    """Do ``check_writable``'s work; an ``OSError`` of a look at ``path`` passes through."""
    if path.exists() and path.is_dir() != is_folder:
        found, wanted = ("a folder", "a file") if path.is_dir() else ("a file", "a folder")
        raise CommandError(f"{flag} {path} is {found}; it must name {wanted}")
    candidates = [path] if is_folder else []
    existing = next(p for p in [*candidates, *path.absolute().parents] if p.exists())
    if not existing.is_dir():
        raise CommandError(f"{flag} {path} lies under {existing}, which is a file, not a folder")
    try:
        fd, name = tempfile.mkstemp(dir=existing, prefix=".rlrobot-write-check.", suffix=".tmp")
    except OSError as error:
        raise CommandError(
            f"{flag} {path}: cannot write in {existing} ({error.strerror})"
        ) from None
    os.close(fd)
    os.unlink(name)
    # A name the file system cannot hold fails only when written, after the command's work.
    name_max = os.pathconf(existing, "PC_NAME_MAX")
    for part in path.absolute().relative_to(existing.absolute()).parts:
        if len(os.fsencode(part)) > name_max:
            raise CommandError(
                f"{flag} {path}: the name {part[:40]}… is longer than the {name_max} bytes "
                f"a name can have in {existing}"
            )
