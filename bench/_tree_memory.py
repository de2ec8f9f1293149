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

``TreePss(pid, detail=True)`` also keeps, for the sample with the highest sum, each process's
PSS split into anonymous memory and mapped files and its largest mappings by name (``[heap]``
is glibc's main heap, ``[anon]`` unnamed mappings such as onnxruntime's and numpy's large
buffers): ``pss.at_peak``, printed by :func:`describe`. Reading the mappings is slower, so it
is done only when a sample sets a new peak.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from typing import NamedTuple

import psutil

__all__ = ["ProcessMemory", "TreePss", "describe", "tree_pss_bytes"]


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


class ProcessMemory(NamedTuple):
    """One process of the tree at the peak: PSS in MB, split into anonymous memory and mapped
    files; ``maps``: its largest mappings by name, (name, PSS MB), largest first. (A named tuple:
    the bench scripts load this module by path, where a dataclass cannot find its module.)"""

    pid: int
    ppid: int
    pss_mb: float
    anon_mb: float
    file_mb: float
    rss_mb: float
    maps: tuple[tuple[str, float], ...] = ()


def _rollup(pid: int) -> dict[str, int]:
    """``/proc/PID/smaps_rollup`` in kB."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                out[parts[0][:-1]] = int(parts[1])
    return out


def _maps(pid: int, top: int = 8) -> tuple[tuple[str, float], ...]:
    """PSS by mapping name (a file's base name, ``[heap]``, ``[anon]``...), the ``top`` largest."""
    sizes: collections.Counter[str] = collections.Counter()
    name = "[anon]"
    with open(f"/proc/{pid}/smaps") as fh:
        for line in fh:
            parts = line.split()
            if not parts:
                continue
            if not parts[0].endswith(":") and "-" in parts[0]:  # a mapping's header line
                name = parts[5] if len(parts) >= 6 else "[anon]"
                name = os.path.basename(name) if name.startswith("/") else name
            elif parts[0] == "Pss:":
                sizes[name] += int(parts[1])
    return tuple((n, round(kb / 1024, 1)) for n, kb in sizes.most_common(top))


def _details(procs: list[psutil.Process]) -> list[ProcessMemory]:
    out = []
    for proc in procs:
        r = _rollup(proc.pid)
        out.append(ProcessMemory(proc.pid, proc.ppid(), r["Pss"] / 1024, r.get("Pss_Anon", 0) / 1024,
                                 r.get("Pss_File", 0) / 1024, r["Rss"] / 1024, _maps(proc.pid)))
    return out


def describe(processes: list[ProcessMemory]) -> str:
    """The table of :attr:`TreePss.at_peak`: one line per process, its largest mappings under it."""
    lines = [f"{'pid':>8}{'parent':>8}{'PSS MB':>9}{'anon':>8}{'files':>8}{'RSS MB':>9}  largest mappings (PSS MB)"]
    for p in processes:
        maps = ", ".join(f"{n} {mb:.0f}" for n, mb in p.maps if mb >= 1)
        lines.append(f"{p.pid:>8}{p.ppid:>8}{p.pss_mb:>9.0f}{p.anon_mb:>8.0f}{p.file_mb:>8.0f}{p.rss_mb:>9.0f}  {maps}")
    return "\n".join(lines)


class TreePss:
    """Samples :func:`tree_pss_bytes` of ``pid`` in a thread until the ``with`` block ends.

    Reading PSS walks every page table of the tree (~0.1-0.2 s of CPU for a 1.7 GB process on a
    loaded machine), so the pause between readings is ``interval`` or four times the last
    reading's duration, whichever is longer: the sampler takes at most a fifth of a core."""

    def __init__(self, pid: int, interval: float = 0.2, detail: bool = False) -> None:
        self.pid = pid
        self.interval = interval
        self.detail = detail
        self.at_peak: list[ProcessMemory] = []  # with ``detail``: the processes at the peak
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
                if now > self.peak_bytes and self.detail:
                    try:
                        self.at_peak = _details(_tree(self.pid))
                    except (psutil.Error, OSError, KeyError):  # ended meanwhile: keep the last
                        pass
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
