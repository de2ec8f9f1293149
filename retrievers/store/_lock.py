"""A folder lock so two processes never open the same embedded store."""

from __future__ import annotations

import os
from pathlib import Path

from rag.errors import KnowledgeBaseLockedError

__all__ = ["FolderLock"]


class FolderLock:
    """An exclusive, non-blocking flock on ``<folder>/.lock`` (no-op where fcntl is missing)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / ".lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            import fcntl
        except ImportError:  # Windows: rely on the shard's own WAL lock
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise KnowledgeBaseLockedError(
                f"{self.path.parent} is open in another store (pid {holder}): the embedded store serves one "
                "process at a time (its threads may search while it ingests). Wait for that process to finish, "
                "or use a Qdrant server (store.backend = \"qdrant\") to share a knowledge base between processes"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
