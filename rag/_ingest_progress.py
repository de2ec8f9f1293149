"""One live line for a multi-file ingest: files done / total, and the pages read so far of
each file being read, by name (``ingest:  50%|█████     | 1/2 files [00:04], b.pdf 3/12 pages``).

Page counts come from wherever the pages are read: this process (the indexer's page loop)
or the extraction workers (their page messages, relayed by :class:`ingest.parallel.ExtractionPool`);
a file's count only goes up, so both may report it. Lines written through :meth:`IngestBar.report`
(a finished file) appear above the bar, which is redrawn under them. A disabled bar draws
nothing at all: no ``\\r``, no escape codes, so a pipe or a ``--json`` run stays clean.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag._terminal import shown
from rag.types import FileReport

__all__ = ["IngestBar"]

_REFRESH_S = 0.1  # redraw at most this often on page progress (a finished file redraws at once)
_FORMAT = "{desc}: {percentage:3.0f}%|{bar:16}| {n_fmt}/{total_fmt} files [{elapsed}]{postfix}"
_FIXED = 45  # characters of the line besides the file names (with a two-digit file count)


class IngestBar:
    """A tqdm bar over the files of one ingest, with the files being read as its postfix.

    ``enabled=False``: every method does nothing (and tqdm is not imported)."""

    def __init__(self, files: int, enabled: bool, stream: Any = None) -> None:
        self.enabled = enabled
        self._stream = sys.stderr if stream is None else stream
        self._reading: dict[Path, tuple[int, int]] = {}
        self._drawn = 0.0
        self._bar: Any = None
        if enabled:
            from tqdm.auto import tqdm

            self._tqdm = tqdm
            columns, rows = _size(self._stream)
            self._bar = tqdm(
                total=files, desc="ingest", unit="file", bar_format=_FORMAT, leave=False, file=self._stream,
                ncols=columns, nrows=rows,
            )
            self._width = max(20, columns - _FIXED)

    def page(self, path: Path, done: int, total: int) -> None:
        """``done`` of ``total`` pages of ``path`` read (a :data:`rag._indexer.PageProgress`);
        ``total`` 0: the file is being opened (its page count is not known yet)."""
        if self._bar is None:
            return
        before, known = self._reading.get(path, (0, 0))
        self._reading[path] = (max(before, done), total or known)
        # a file's first page count is drawn at once: on a small file read within one refresh
        # interval of another file's redraw, "opening" would otherwise be all the bar ever showed
        if (total and not known) or time.monotonic() - self._drawn >= _REFRESH_S:
            self._draw()

    def report(self, report: FileReport, write: Callable[[FileReport], None] | None = None) -> None:
        """A file finished: count it, and let ``write`` print its line above the bar."""
        self._reading.pop(report.path, None)
        if self._bar is None:
            if write is not None:
                write(report)
            return
        self._bar.update(1)
        if write is not None:
            with self._tqdm.external_write_mode(file=self._stream):
                write(report)
        self._draw()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> IngestBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _draw(self) -> None:
        self._bar.set_postfix_str(self._postfix(), refresh=False)
        self._bar.refresh()
        self._drawn = time.monotonic()

    def _postfix(self) -> str:
        """The files being read, oldest first, cut to the terminal's width."""
        parts = [
            f"{_short(path.name)} {done}/{total} pages" if total else f"{_short(path.name)} opening"
            for path, (done, total) in self._reading.items()
        ]
        text = " · ".join(parts)
        if len(text) > self._width:
            text = text[: self._width - 1] + "…"
        return text


def _size(stream: Any) -> tuple[int, int]:
    """The terminal's columns and rows; 100 x 24 when it does not say (a terminal of size 0,
    where tqdm would draw nothing at all)."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, ValueError, OSError):
        size = shutil.get_terminal_size((100, 24))
    return size.columns or 100, size.lines or 24


def _short(name: str, n: int = 32) -> str:
    name = shown(name)  # a control character in a file name never reaches the terminal raw
    return name if len(name) <= n else f"{name[: n // 2 - 1]}…{name[-(n // 2):]}"
