"""Benchmark the document registry: SQLite (``rag._registry``) vs the JSON file it replaces.

Not a test. Run::

    .venv/bin/python bench/bench_registry.py                 # 100k documents
    .venv/bin/python bench/bench_registry.py --n 20000 --peer-cap 1000

Registers ``--n`` synthetic document records one ``put`` at a time (each put durable, as
ingest does it; ingest makes two puts per document, pending then complete) and reports the mean put time over the
``--window`` puts that end at 1k, 10k, 100k documents, then the time to open the registry
of ``--n`` documents in a fresh process, its RSS, the reads that searches and the CLI do
(``all``, ``complete``, ``find`` by name, ``get``, and what a search asks: ``pending``,
``complete_ids`` of its hits, ``generation``), and the one-time migration of a JSON
registry of ``--n`` documents. The peer, measured in the same run: the JSON registry of
earlier versions (the whole file rewritten atomically and durably on every put), up to
``--peer-cap`` documents, since it is quadratic.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag._manifest import write_json_atomic  # noqa: E402
from rag._registry import DocumentRecord, DocumentRegistry  # noqa: E402


def record(i: int) -> DocumentRecord:
    return DocumentRecord(
        doc_id=f"{i:064x}", name=f"report-{i:06d}.pdf", path=f"/data/reports/{i // 1000:03d}/report-{i:06d}.pdf",
        pages=12, kind="pdf", status="complete", size_bytes=250_000 + i, title=f"Quarterly report {i}",
        points={"text": 60, "figures": 4, "pages": 12}, ingested_at=1.7e9 + i, seconds=3.5,
    )


def marks(n: int) -> list[int]:
    return [m for m in (1_000, 10_000, 100_000, 1_000_000) if m <= n] or [n]


def bench_sqlite(folder: Path, n: int, window: int) -> dict[str, float]:
    reg = DocumentRegistry(folder / "documents.sqlite")
    wanted = marks(n)
    out, started = {}, 0.0
    for i in range(n):
        if any(i == m - window for m in wanted) or (i == 0 and window >= wanted[0]):
            started = time.perf_counter()
        reg.put(record(i))
        if i + 1 in wanted:
            out[f"put_ms_at_{i + 1}"] = (time.perf_counter() - started) / min(window, i + 1) * 1e3
    reg.close()
    out["writer_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


class JsonPeer:
    """The registry of earlier versions: every record in memory, the file rewritten on each put."""

    def __init__(self, path: Path) -> None:
        self.path, self.docs = path, {}

    def put(self, rec: DocumentRecord) -> None:
        self.docs[rec.doc_id] = rec
        write_json_atomic(self.path, {"documents": {k: asdict(v) for k, v in self.docs.items()}})


def bench_json(folder: Path, cap: int, window: int) -> dict[str, float]:
    peer = JsonPeer(folder / "documents.json")
    wanted = marks(cap)
    out, started = {}, 0.0
    for i in range(wanted[-1]):
        if any(i == m - window for m in wanted) or i == 0:
            started = time.perf_counter()
        peer.put(record(i))
        if i + 1 in wanted:
            out[f"put_ms_at_{i + 1}"] = (time.perf_counter() - started) / min(window, i + 1) * 1e3
    return out


_OPEN = """
import json, sys, time
sys.path.insert(0, {root!r})
def rss():  # this process's peak resident set in kB (ru_maxrss would carry the parent's peak over exec)
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1])
from pathlib import Path
from rag._registry import DocumentRegistry
imported = rss()
t = time.perf_counter(); reg = DocumentRegistry(Path({db!r})); opened = time.perf_counter() - t
rss_open = rss()
ids = [f"{{i:064x}}" for i in range(0, len(reg), max(1, len(reg) // 10))]
t = time.perf_counter()
for _ in range(20): reg.pending(); reg.complete_ids(among=ids); reg.generation()
search_s = (time.perf_counter() - t) / 20
t = time.perf_counter(); n = len(reg.all()); all_s = time.perf_counter() - t
rss_all = rss()
t = time.perf_counter(); reg.complete(); complete_s = time.perf_counter() - t
t = time.perf_counter()
for i in range(0, n, max(1, n // 100)): reg.find(f"report-{{i:06d}}.pdf")
find_s = (time.perf_counter() - t) / len(range(0, n, max(1, n // 100)))
t = time.perf_counter()
for i in range(0, n, max(1, n // 100)): reg.get(f"{{i:064x}}")
get_s = (time.perf_counter() - t) / len(range(0, n, max(1, n // 100)))
print(json.dumps({{"search_registry_ms": search_s * 1e3, "documents": n, "open_ms": opened * 1e3, "rss_after_import_mb": imported / 1024,
    "rss_after_open_mb": rss_open / 1024, "all_ms": all_s * 1e3, "rss_after_all_mb": rss_all / 1024,
    "complete_ms": complete_s * 1e3, "find_by_name_ms": find_s * 1e3, "get_ms": get_s * 1e3}}))
"""


def bench_open(db: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", _OPEN.format(root=str(ROOT), db=str(db))], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def bench_migration(folder: Path, n: int) -> dict[str, float]:
    legacy = folder / "documents.json"
    write_json_atomic(legacy, {"documents": {f"{i:064x}": asdict(record(i)) for i in range(n)}})
    size = legacy.stat().st_size
    started = time.perf_counter()
    reg = DocumentRegistry(folder / "documents.sqlite")
    seconds = time.perf_counter() - started
    assert len(reg) == n
    return {"json_mb": size / 1e6, "migrate_s": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--window", type=int, default=1_000, help="puts averaged at each mark")
    parser.add_argument("--peer-cap", type=int, default=1_000, help="documents the JSON peer registers")
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: a temporary folder)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-registry-", dir=args.dir))
    for sub in ("sqlite", "json", "migrate"):
        (base / sub).mkdir()
    print(f"folder {base} (file system of {os.path.realpath(base)})")
    t = time.perf_counter()
    sqlite = bench_sqlite(base / "sqlite", args.n, args.window)
    print(f"sqlite: {args.n:,} puts in {time.perf_counter() - t:.1f} s", json.dumps(sqlite))
    peer = bench_json(base / "json", args.peer_cap, min(args.window, args.peer_cap))
    print("json peer:", json.dumps(peer))
    first = f"put_ms_at_{marks(args.n)[0]}"
    last = f"put_ms_at_{marks(args.n)[-1]}"
    print(f"put time at {marks(args.n)[-1]:,} / at {marks(args.n)[0]:,}: {sqlite[last] / sqlite[first]:.2f}x (target: within 2x)")
    if first in peer:
        print(f"json peer / sqlite put time at {marks(args.n)[0]:,}: {peer[first] / sqlite[first]:.2f}x")
    opened = bench_open(base / "sqlite" / "documents.sqlite")
    print("open:", json.dumps(opened))
    migrated = bench_migration(base / "migrate", args.n)
    print("migration:", json.dumps(migrated))
    db = base / "sqlite" / "documents.sqlite"
    print(f"database size: {db.stat().st_size / 1e6:.1f} MB for {args.n:,} documents")


if __name__ == "__main__":
    main()
