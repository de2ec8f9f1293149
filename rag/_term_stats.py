"""The knowledge base's corpus term statistics (:class:`generators.term_stats.TermStats`),
counted once from the page texts in the store and cached in ``term_stats.json``.

The cache carries a fingerprint of the complete documents (id, page range, ingest time) and
the tokenizer version; when either differs (a document added, deleted or re-ingested, a new
tokenizer) the statistics are counted again from the store, which takes about a second per
thousand pages. Pages are the unit: the ``pages`` corpus's text (text layer, captions, OCR);
a knowledge base without that corpus counts its text chunks grouped by page.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from generators.term_stats import TOKENIZER_VERSION, TermStats
from rag._manifest import DocumentRecord
from rag.atomic import atomic_write

__all__ = ["TERM_STATS", "fingerprint", "load_term_stats"]

log = logging.getLogger("mmrag")

TERM_STATS = "term_stats.json"


def fingerprint(records: Iterable[DocumentRecord]) -> str:
    """What the statistics were counted from: the complete documents, each with its page range
    and ingest time, and the tokenizer version."""
    rows = sorted(
        (r.doc_id, r.page_range, r.ingested_at) for r in records if r.status == "complete"
    )
    return hashlib.sha256(json.dumps([TOKENIZER_VERSION, rows]).encode()).hexdigest()[:32]


def _page_texts(store: Any, specs: Mapping[str, Any], doc_ids: set[str]) -> Iterator[str]:
    from retrievers.payloads import decode

    if "pages" in specs:
        for point in store.scroll(specs["pages"].name):
            record = decode(point.payload)
            if record.doc_id in doc_ids:
                yield record.text
        return
    if "text" in specs:
        pages: dict[tuple[str, int], list[str]] = defaultdict(list)
        for point in store.scroll(specs["text"].name):
            record = decode(point.payload)
            if record.doc_id in doc_ids:
                pages[(record.doc_id, record.page)].append(record.text)
        yield from ("\n".join(texts) for texts in pages.values())


def load_term_stats(folder: Path, records: Iterable[DocumentRecord], store: Any, specs: Mapping[str, Any]) -> TermStats:
    """The cached statistics in ``folder`` when they match ``records``; else counted from
    ``store`` and cached (a cache that cannot be written is only logged)."""
    records = list(records)
    key = fingerprint(records)
    path = folder / TERM_STATS
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("fingerprint") == key:
            return TermStats.from_json(data["stats"])
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("term statistics: %s unreadable (%s); counting them again", path, exc)
    t0 = time.perf_counter()
    docs = {r.doc_id for r in records if r.status == "complete"}
    stats = TermStats.count(_page_texts(store, specs, docs))
    try:
        atomic_write(path, json.dumps({"fingerprint": key, "stats": stats.to_json()}))
    except OSError as exc:
        log.warning("term statistics: could not cache them in %s (%s)", path, exc)
    log.info("term statistics: %d pages, %d terms counted in %.2fs", stats.pages, len(stats.df), time.perf_counter() - t0)
    return stats
