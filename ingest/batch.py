"""Many files at once: expand folders, inspect each file, report every outcome.

A bad file never stops a batch and is never skipped silently: it gets a ``FileReport``
with ``status="failed"``, the message and the error class name.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from rag.config import IngestConfig
from rag.errors import DocumentError, MissingDependencyError
from rag.types import DocumentInfo, FileReport, PageContent

from ingest._files import SUPPORTED_SUFFIXES
from ingest.reader import open_document

__all__ = ["iter_files", "inspect_file", "inspect_batch", "inspect_json", "inspect_summary", "summarize_reports", "InspectResult"]

logger = logging.getLogger("ingest")
InspectResult = tuple[FileReport, "DocumentInfo | None", list[PageContent]]


def iter_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Expand folders recursively (sorted; supported extensions only; hidden files and
    folders skipped). Explicit file paths are yielded as given, whatever they are, so a
    bad explicit file gets reported rather than dropped."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = []
            for child in path.rglob("*"):
                rel = child.relative_to(path)
                if any(part.startswith(".") for part in rel.parts):
                    continue
                if child.suffix.lower() in SUPPORTED_SUFFIXES and child.is_file():
                    found.append(child)
            yield from sorted(found)
        else:
            yield path


def inspect_file(
    path: str | Path, config: IngestConfig | None = None, image_dir: Path | None = None, progress: bool | None = None
) -> InspectResult:
    """Read one file completely; failures become a failed report instead of an exception."""
    path = Path(path)
    started = time.perf_counter()
    contents: list[PageContent] = []
    info: DocumentInfo | None = None
    try:
        with open_document(path, config, image_dir) as reader:
            info = reader.info
            contents.extend(reader.pages(progress=progress))
    except (DocumentError, MissingDependencyError) as exc:
        logger.warning("failed: %s", exc)  # the message names the file
        report = FileReport(
            path, "failed", info.doc_id if info else None, len(contents),
            error=str(exc), error_type=type(exc).__name__, seconds=time.perf_counter() - started,
        )
        return report, info, contents
    assert info is not None
    report = FileReport(path, "ok", info.doc_id, len(contents), seconds=time.perf_counter() - started)
    return report, info, contents


def inspect_batch(
    paths: Iterable[str | Path], config: IngestConfig | None = None, image_dir: Path | None = None,
    progress: bool | None = None,
) -> list[InspectResult]:
    """Inspect every file under ``paths``; goes on after a failure; one result per file."""
    return [inspect_file(p, config, image_dir, progress) for p in iter_files(paths)]


def inspect_json(info: DocumentInfo, contents: Iterable[PageContent]) -> dict[str, Any]:
    """The JSON-ready description of one document that ``mmrag inspect --json`` prints."""
    pages = []
    for c in contents:
        p = c.page
        pages.append(
            {
                "page": p.page,
                "label": p.label,
                "width": round(p.width, 2),
                "height": round(p.height, 2),
                "text_chars": len(p.text),
                "ocr": p.ocr,
                "figures": [
                    {"kind": f.kind, "bbox": f.bbox.as_list(), "caption": f.caption, "section": list(f.section)}
                    for f in c.figures
                ],
                "chunks": [{"index": ch.index, "section": list(ch.section), "chars": len(ch.text)} for ch in c.chunks],
                "notes": list(p.notes),  # what was refused or skipped on the page, and why
            }
        )
    return {
        "doc_id": info.doc_id,
        "path": str(info.path),
        "name": info.name,
        "kind": info.kind,
        "title": info.title,
        "pages": pages,
    }


def _short(text: str, n: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def inspect_summary(info: DocumentInfo, contents: Iterable[PageContent]) -> str:
    """A readable summary of one document: one line per page, one per figure or table."""
    contents = list(contents)
    n_fig = sum(1 for c in contents for f in c.figures if f.kind == "figure")
    n_tab = sum(1 for c in contents for f in c.figures if f.kind == "table")
    n_ocr = sum(1 for c in contents if c.page.ocr)
    title = f" — {info.title}" if info.title else ""
    lines = [
        f"{info.name}{title}",
        f"  {info.kind}, {info.page_count} pages, {info.size_bytes:,} bytes, doc_id {info.doc_id[:12]}",
        f"  {n_fig} figures, {n_tab} tables, {n_ocr} pages OCR'd",
    ]
    for c in contents:
        p = c.page
        label = f" (label {p.label})" if p.label and p.label != str(p.page) else ""
        ocr = ", OCR" if p.ocr else ""
        lines.append(f"  page {p.page}{label}: {len(p.text):,} chars{ocr}, {len(c.chunks)} chunks, {len(c.figures)} figures/tables")
        for f in c.figures:
            cap = _short(f.caption) if f.caption else "(no caption)"
            box = ", ".join(f"{v:.0f}" for v in f.bbox.as_list())
            lines.append(f"    {f.kind:<6} [{box}] {cap}")
    return "\n".join(lines)


def summarize_reports(reports: Iterable[FileReport]) -> str:
    """One line per failed file plus a total, for the end of a batch."""
    reports = list(reports)
    failed = [r for r in reports if not r.ok]
    lines = [f"{len(reports) - len(failed)} ok, {len(failed)} failed"]
    lines += [f"  FAILED {r.error_type}: {r.error or r.path}" for r in failed]
    return "\n".join(lines)
