"""Tables found per document and page, to check that a change to table finding keeps every table.

    .venv/bin/python bench/table_counts.py DOC_OR_FOLDER... --out after.json [--before before.json]

Reads each PDF with the default ``[ingest]`` settings through the reader API (no embedding, no
images written) and writes ``{document: {page: tables}}`` with the CPU seconds spent (this
process and its children). With ``--before``, lists every page that had more tables before and
exits 1 when there is one. Run it once on the old code (``PYTHONPATH`` at the old checkout) and
once on the new.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path


def _cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def count(path: Path) -> tuple[dict[str, int], int, float]:
    from ingest import open_document

    started = _cpu()
    tables: dict[str, int] = {}
    with open_document(path) as reader:
        pages = 0
        for content in reader.pages(progress=False):
            pages += 1
            found = sum(1 for f in content.figures if f.kind == "table")
            if found:
                tables[str(content.page.page)] = found
    return tables, pages, _cpu() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--before", type=Path)
    args = parser.parse_args(argv)
    files = sorted(p for a in args.paths for p in ([a] if a.is_file() else a.glob("*.pdf")))
    result: dict[str, dict[str, object]] = {}
    for path in files:
        tables, pages, cpu = count(path)
        result[path.name] = {"tables": tables, "pages": pages, "cpu_s": round(cpu, 2)}
        print(f"{path.name}: {sum(tables.values())} tables on {pages} pages, {1000 * cpu / max(pages, 1):.0f} CPU ms/page",
              file=sys.stderr)
    args.out.write_text(json.dumps(result, indent=1, sort_keys=True))
    if args.before is None:
        return 0
    before = json.loads(args.before.read_text())
    lost = [f"{doc} page {page}: {n} tables before, {result.get(doc, {}).get('tables', {}).get(page, 0)} now"  # type: ignore[union-attr]
            for doc, rec in before.items() for page, n in rec["tables"].items()
            if result.get(doc, {}).get("tables", {}).get(page, 0) < n]  # type: ignore[union-attr]
    for line in lost:
        print("LOST", line, file=sys.stderr)
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
