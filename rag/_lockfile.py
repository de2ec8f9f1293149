"""Who holds a knowledge base's write lock: the pid its holder wrote into the lock file, and that
process's command line where the system shows it (``/proc``). Pure reads, never a lock."""

from __future__ import annotations

import time
from pathlib import Path

from rag._terminal import shown

__all__ = ["lock_holder"]

_MAX_COMMAND = 200


def lock_holder(lock_file: Path, *, wait_s: float = 0.2) -> str:
    """``"pid 1234: mmrag ingest docs/ --kb kb"``; ``"pid 1234"`` when its command cannot be
    read; ``"an unknown process"`` when the file holds no pid (its holder has taken the lock but
    not written the pid yet: read again for up to ``wait_s``)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            text = lock_file.read_text(encoding="ascii", errors="replace").strip()
        except OSError:
            text = ""
        if text.isdigit() or time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    if not text.isdigit():
        return "an unknown process"
    command = _command(int(text))
    return f"pid {text}: {command}" if command else f"pid {text}"


def _command(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # not Linux, the process is gone, or not ours to see
        return ""
    words = [w.decode("utf-8", "surrogateescape") for w in raw.split(b"\0") if w]
    if not words:
        return ""
    words[0] = Path(words[0]).name
    if words[0].startswith("python") and len(words) > 1 and not words[1].startswith("-"):
        words = [Path(words[1]).name, *words[2:]]  # "python /venv/bin/mmrag ingest ..." -> "mmrag ingest ..."
    text = shown(" ".join(words))
    return text if len(text) <= _MAX_COMMAND else text[: _MAX_COMMAND - 1] + "…"
