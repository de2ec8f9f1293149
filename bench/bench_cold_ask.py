"""`mmrag ask` from a cold process on the demo knowledge base: the median of N runs (wall and
CPU of the child process, user + system) and the ten slowest imports of one run.

    .venv/bin/python bench/bench_cold_ask.py [--dir .mmrag-demo] [--runs 5] [--question "..."]

Builds the demo knowledge base first (``mmrag demo --dir DIR``) when ``DIR/kb`` does not exist.
Target (issue 23): 3 s wall on a quiet machine. The machines here are shared: compare CPU
seconds, and wall time only between runs made back to back.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

QUESTION = "How often should the inverter be inspected?"


ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cold_run(args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one ``python -m rag.cli ARGS`` process."""
    cpu0, wall0 = _child_cpu(), time.perf_counter()
    subprocess.run([sys.executable, "-m", "rag.cli", *args], env=_env(), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=600, cwd=ROOT)  # python -m puts the cwd first on the path
    return time.perf_counter() - wall0, _child_cpu() - cpu0


def import_times(args: list[str], top: int = 10) -> list[tuple[int, int, str]]:
    """(self us, cumulative us, module) of the ``top`` slowest imports by cumulative time."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "rag.cli", *args], env=_env(), check=True,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=600, cwd=ROOT)
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, cumulative, name = line.removeprefix("import time:").split("|")
        rows.append((int(own), int(cumulative), name.rstrip()))
    return sorted(rows, key=lambda r: -r[1])[:top]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default=".mmrag-demo", type=Path, help="the demo folder (mmrag demo --dir)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--question", default=QUESTION)
    args = parser.parse_args(argv)
    kb = args.dir.resolve() / "kb"
    if not (kb / "manifest.json").exists():
        print(f"building the demo knowledge base in {kb} ...", flush=True)
        subprocess.run([sys.executable, "-m", "rag.cli", "demo", "--dir", str(args.dir.resolve()), "--no-progress"],
                       env=_env(), check=True, stdout=subprocess.DEVNULL, timeout=1800, cwd=ROOT)
    ask = ["ask", args.question, "--kb", str(kb)]
    cold_run(ask)  # the first run may fill the OS page cache: not counted
    runs = [cold_run(ask) for _ in range(args.runs)]
    wall = statistics.median(w for w, _ in runs)
    cpu = statistics.median(c for _, c in runs)
    print(f"cold mmrag ask, median of {args.runs}: {wall:.2f} s wall, {cpu:.2f} s CPU (user + system); target 3 s wall")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (wall time grows with it, CPU time much less)")
    print("slowest imports (cumulative, self) in ms:")
    for own, cumulative, name in import_times(ask):
        print(f"  {cumulative / 1000:8.1f} {own / 1000:8.1f}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
