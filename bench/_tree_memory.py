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

import psutil

__all__ = ["TreePss", "tree_pss_bytes"]


def tree_pss_bytes(pid: int) -> int:
    """The PSS of ``pid`` and all its descendants now, in bytes (processes that end while
    being read count 0)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_full_info().pss
        except psutil.Error:  # ended meanwhile, or a zombie
            continue
    return total


class TreePss:
    """Samples :func:`tree_pss_bytes` of ``pid`` in a thread until the ``with`` block ends."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_bytes = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-pss", daemon=True)

    def _run(self) -> None:
        while True:
            self.peak_bytes = max(self.peak_bytes, tree_pss_bytes(self.pid))
            self.samples += 1
            if self._stop.wait(self.interval):
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
