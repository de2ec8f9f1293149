"""Atomic, durable file writes: a reader (or a crash) sees the old file or the new one, never half.

The new bytes go to a temporary file beside the target (same folder, so the rename never
crosses a file system), which is flushed to disk, renamed over the target with
``os.replace`` and then the folder itself is flushed, so the rename survives a power cut.
A temporary file is named ``<target name>.<random>.tmp``; a crash between writing and
renaming leaves one behind, which is harmless (``Indexer.recover`` removes those of the
knowledge base's JSON files).

:func:`atomic_write` writes bytes or text; :func:`replace_durably` finishes a temporary file
some other writer produced (an upload received in chunks, a model exported by a library);
:func:`atomic_folder` writes a whole folder (a prepared model or table in the cache) once.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write", "replace_durably", "atomic_folder"]


def atomic_write(path: str | Path, data: str | bytes, encoding: str = "utf-8") -> None:
    """Replace ``path`` with ``data`` (text is encoded with ``encoding``), atomically and durably.

    The folder is created when missing. On any error the target is untouched and the
    temporary file is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode(encoding) if isinstance(data, str) else data
    fd, name = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        replace_durably(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_folder(target: Path, done: str, fill: Callable[[Path], None], unwritable: Callable[[OSError], Exception]) -> bool:
    """Write the folder ``target`` once: ``fill(tmp)`` writes its files into a fresh folder beside it,
    which is then renamed into place whole, so a crash or a second process never leaves half of
    one. ``done``: a file of the folder whose presence means it is there (then nothing is
    written and the result is False). ``unwritable(error)``: the error raised when the folder's
    parent cannot be written. When another process renamed its folder into place first, theirs
    (the same) is kept."""
    if (target / done).is_file():
        return False
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        tmp.chmod(0o755)  # a folder like any other in the cache, not mkdtemp's private one
    except OSError as exc:
        raise unwritable(exc) from exc
    try:
        fill(tmp)
        try:
            os.rename(tmp, target)
        except OSError:  # another process wrote it first: theirs is the same
            if not (target / done).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return True


def replace_durably(tmp: str | Path, path: str | Path) -> None:
    """Move the finished file ``tmp`` onto ``path`` (same folder): flush ``tmp`` to disk,
    ``os.replace`` it, then flush the folder so the new name is on disk too."""
    _fsync(Path(tmp))
    os.replace(tmp, path)
    _fsync_folder(Path(path).parent)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY if os.name == "posix" else os.O_RDWR)  # Windows flushes only writable handles
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    if os.name != "posix":  # Windows cannot open a folder as a file; NTFS journals the rename
        return
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
