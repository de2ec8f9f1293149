"""Peak memory of a whole process tree, sampled: the sum of PSS over a process and all its
descendants, every ``interval`` seconds, for ``bench/peers.py`` and ``bench/bench_memory.py``.

PSS (proportional set size) charges a page shared by n processes 1/n to each, so the sum over
a tree counts a forked worker's copy-on-write pages once, and its own pages fully: what the
tree holds at once, unlike the parent's ``ru_maxrss`` (its own high-water mark only) or a sum
of RSS (shared pages counted once per process).

::

    with TreePss(proc.pid) as pss:
        proc.wait()
    pss.peak_mb
"""

from __future__ import annotations

import threading
import time

import psutil

__all__ = ["TreePss", "tree_pss_bytes"]


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def tree_pss_bytes(pid: int) -> int | None:
    """The PSS of ``pid`` and all its descendants now, in bytes; ``None`` when the tree changed
    while it was read (a process forked or ended between two reads can count its shared pages
    one and a half times: such a reading is dropped, not guessed) or ``pid`` has ended."""
    try:
        procs = _tree(pid)
        total = sum(proc.memory_full_info().pss for proc in procs)
        after = _tree(pid)
    except psutil.Error:  # ended meanwhile, or a zombie
        return None
    if {(p.pid, p.create_time()) for p in procs} != {(p.pid, p.create_time()) for p in after}:
        return None
    return total


class TreePss:
    """Samples :func:`tree_pss_bytes` of ``pid`` in a thread until the ``with`` block ends.

    Reading PSS walks every page table of the tree (~0.1-0.2 s of CPU for a 1.7 GB process on a
    loaded machine), so the pause between readings is ``interval`` or four times the last
    reading's duration, whichever is longer: the sampler takes at most a fifth of a core."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_bytes = 0
        self.samples = 0
        self.dropped = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-pss", daemon=True)

    def _run(self) -> None:
        while True:
            started = time.perf_counter()
            now = tree_pss_bytes(self.pid)
            if now is None:
                self.dropped += 1
            else:
                self.peak_bytes = max(self.peak_bytes, now)
                self.samples += 1
            if self._stop.wait(max(self.interval, 4 * (time.perf_counter() - started))):
                return

    @property
    def peak_mb(self) -> float:
        return self.peak_bytes / 2**20

    def __enter__(self) -> TreePss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
