"""Where the wall clock of an ingest goes: each process's CPU over time, and what each worker reads.

    .venv/bin/python bench/ingest_timeline.py [--step 1] [--json FILE] -- mmrag ingest --fast --kb /tmp/kb DOCS...

Runs the command and samples its process tree every 0.2 s (``psutil``): the CPU (user + system)
of the ingesting process (all its threads: the embedding thread, torch's) and of each extraction
worker (with the children it waited for, and the live ones: the table finder runs in a process
forked from the worker), and which PDF files each worker holds open. Printed: one row per
``--step`` seconds with each process's share of a core and the tree's sum, the documents each
worker held in it; then each process's CPU seconds, the core-seconds the tree left idle on a
machine of ``os.cpu_count()`` cores, and each worker's documents with the times it held them
(the critical path is the worker that holds files longest). The machine is shared: idle here
means "not used by this tree", which other processes may have taken; compare runs back to back.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

_INTERVAL_S = 0.2


@dataclass
class _Proc:
    """One process of the tree as sampled: CPU seconds and open PDF names at each sample time."""

    role: str
    cpu: list[tuple[float, float]] = field(default_factory=list)
    files: list[tuple[float, tuple[str, ...]]] = field(default_factory=list)


def _cpu(proc: psutil.Process, with_children: bool) -> float:
    t = proc.cpu_times()
    total = t.user + t.system
    if with_children:
        total += t.children_user + t.children_system
        for child in proc.children():  # live ones (a table finder's fork)
            try:
                c = child.cpu_times()
                total += c.user + c.system
            except psutil.Error:
                continue
    return total


def _pdfs(proc: psutil.Process) -> tuple[str, ...]:
    try:
        return tuple(sorted({Path(f.path).name for f in proc.open_files() if f.path.lower().endswith(".pdf")}))
    except psutil.Error:
        return ()


def sample(command: list[str]) -> tuple[float, dict[int, _Proc], int]:
    """Run ``command``; its wall seconds, the sampled processes by pid, its exit code."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    root = psutil.Process(child.pid)
    procs: dict[int, _Proc] = {child.pid: _Proc("caller")}
    while child.poll() is None:
        now = time.perf_counter() - start
        try:
            workers = root.children()
            procs[child.pid].cpu.append((now, _cpu(root, with_children=False)))
        except psutil.Error:
            break
        for worker in workers:
            try:
                entry = procs.setdefault(worker.pid, _Proc(f"worker {worker.pid}"))
                entry.cpu.append((now, _cpu(worker, with_children=True)))
                entry.files.append((now, _pdfs(worker)))
            except psutil.Error:
                continue
        time.sleep(_INTERVAL_S)
    return time.perf_counter() - start, procs, child.returncode


def _at(series: list[tuple[float, float]], t: float) -> float:
    """The CPU seconds at time ``t`` (the last sample at or before it; 0 before the first)."""
    value = 0.0
    for when, cpu in series:
        if when > t:
            break
        value = cpu
    return value


def report(wall: float, procs: dict[int, _Proc], step: float) -> dict:
    order = sorted(procs, key=lambda pid: procs[pid].role != "caller")
    names = [procs[pid].role for pid in order]
    print(f"{'t (s)':>6} " + " ".join(f"{n[-13:]:>13}" for n in names) + "    sum | documents held by each worker")
    cores = os.cpu_count() or 1
    idle = 0.0
    t = 0.0
    while t < wall:
        end = min(t + step, wall)
        rates = [(_at(procs[pid].cpu, end) - _at(procs[pid].cpu, t)) / (end - t) for pid in order]
        idle += max(cores - sum(rates), 0.0) * (end - t)
        held = [",".join(sorted({n[:12] for when, files in procs[pid].files if t <= when < end for n in files})) or "-"
                for pid in order if procs[pid].role != "caller"]
        print(f"{end:6.1f} " + " ".join(f"{r:13.2f}" for r in rates) + f" {sum(rates):6.2f} | " + " / ".join(held))
        t = end
    totals = {procs[pid].role: round(procs[pid].cpu[-1][1] if procs[pid].cpu else 0.0, 2) for pid in order}
    spans = {}
    for pid in order:
        held: dict[str, list[float]] = {}
        for when, files in procs[pid].files:
            for name in files:
                held.setdefault(name, [when, when])[1] = when
        if procs[pid].role != "caller":
            spans[procs[pid].role] = {n: [round(a, 1), round(b, 1)] for n, (a, b) in sorted(held.items(), key=lambda kv: kv[1])}
    print(f"wall {wall:.1f} s; CPU s {totals}, total {sum(totals.values()):.1f}; "
          f"idle core-seconds {idle:.1f} of {cores * wall:.1f} ({cores} cores)")
    for role, docs in spans.items():
        print(f"{role}: " + ", ".join(f"{n} {a}-{b} s" for n, (a, b) in docs.items()))
    return {"wall_s": wall, "cpu_s": totals, "idle_core_s": idle, "documents": spans}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        raise SystemExit("usage: ingest_timeline.py [--step S] [--json FILE] -- COMMAND...")
    split = argv.index("--")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--step", type=float, default=1.0, help="seconds per printed row")
    parser.add_argument("--json", type=Path, help="write the summary here")
    args = parser.parse_args(argv[:split])
    wall, procs, code = sample(argv[split + 1:])
    summary = report(wall, procs, args.step)
    if args.json is not None:
        args.json.write_text(json.dumps({**summary, "exit_code": code}, indent=2))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
