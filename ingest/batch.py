"""Many files at once: expand folders, inspect each file, report every outcome.

A bad file never stops a batch and is never skipped silently: it gets a ``FileReport``
with ``status="failed"``, the message and the error class name. A folder walk
(:func:`scan_paths`) reports every entry it passes over as ``status="skipped"`` with the
rule that skipped it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.config import IngestConfig
from rag.errors import DocumentError, MissingDependencyError
from rag.types import DocumentInfo, FileReport, PageContent

from ingest._files import SUPPORTED_SUFFIXES
from ingest._subtitles import media_of
from ingest.reader import open_document

__all__ = ["PathScan", "scan_paths", "iter_files", "pages_in_range", "inspect_file", "inspect_batch", "inspect_json", "inspect_summary", "summarize_reports", "InspectResult"]

logger = logging.getLogger("ingest")
InspectResult = tuple[FileReport, "DocumentInfo | None", list[PageContent]]


@dataclass(frozen=True, slots=True)
class PathScan:
    """What a walk of the given paths found: the files to read, in order, and every entry it
    passed over, each a ``FileReport`` with ``status="skipped"`` and its ``reason``."""

    files: tuple[Path, ...]
    skipped: tuple[FileReport, ...]


def scan_paths(paths: Iterable[str | Path], exclude: Mapping[Path, str] | None = None) -> PathScan:
    """Expand folders recursively, reporting every entry that is not read, with its reason.

    Explicit file paths are kept as given, whatever they are, so a bad explicit file gets
    reported (failed) rather than dropped. Inside a folder (sorted, depth first):

    - a file whose extension is not in :data:`SUPPORTED_SUFFIXES`: skipped, "unsupported format"
      (a sidecar subtitle file beside its video: skipped, "subtitles of NAME, read with it");
    - a hidden entry (name starts with a dot): skipped, one report for a hidden folder
      (its contents are not walked, so ``.git`` is one line, not thousands);
    - a folder of ``exclude`` (``{folder: reason}``, e.g. the knowledge base's own folder):
      skipped with that reason, not walked; a given folder inside one is skipped whole;
    - a symbolic link: a link to a file inside the walked folder is read like the file; a
      link out of the folder, a broken link and a link to a folder (never followed: loops and
      second copies) are skipped;
    - a folder that cannot be listed (permission): skipped with the system's reason;
    - anything that is not a regular file (a FIFO, socket or device): skipped.
    """
    excluded = {_resolved(folder): reason for folder, reason in (exclude or {}).items()}
    files: list[Path] = []
    skipped: list[FileReport] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            files.append(path)
            continue
        root = _resolved(path)
        inside = next((reason for folder, reason in excluded.items() if root == folder or folder in root.parents), None)
        if inside is not None:
            skipped.append(_skip(path, inside))
            continue
        found: list[Path] = []
        _walk(path, root, excluded, found, skipped)
        files.extend(sorted(found))
    return PathScan(tuple(files), tuple(skipped))


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop on the way (RuntimeError before 3.13)
        return path.absolute()


def _skip(path: Path, reason: str) -> FileReport:
    logger.debug("skipped %s: %s", path, reason)  # the report carries it to the user
    return FileReport(path, "skipped", reason=reason)


def _unsupported(path: Path) -> str:
    media = media_of(path)
    if media is not None:  # a sidecar subtitle file is read with its video, not on its own
        return f"subtitles of {media.name}, read with it"
    suffix = path.suffix.lower() or "(no extension)"
    return f"unsupported format {suffix}; supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}"


def _walk(folder: Path, root: Path, excluded: Mapping[Path, str], found: list[Path], skipped: list[FileReport]) -> None:
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        skipped.append(_skip(folder, f"cannot read the folder: {exc.strerror or exc}"))
        return
    for entry in entries:
        path = folder / entry.name
        if entry.name.startswith("."):
            skipped.append(_skip(path, "hidden folder, not walked" if entry.is_dir() else "hidden"))
            continue
        try:
            if entry.is_symlink():
                reason = _link_reason(path, root)
                if reason is not None:
                    skipped.append(_skip(path, reason))
                    continue
            elif entry.is_dir():
                reason = excluded.get(_resolved(path))
                if reason is not None:
                    skipped.append(_skip(path, reason))
                else:
                    _walk(path, root, excluded, found, skipped)
                continue
            is_file = entry.is_file()  # follows a link (checked above to stay inside)
        except OSError as exc:
            skipped.append(_skip(path, f"cannot read: {exc.strerror or exc}"))
            continue
        if not is_file:
            skipped.append(_skip(path, "not a regular file (a FIFO, socket or device)"))
        elif path.suffix.lower() not in SUPPORTED_SUFFIXES:
            skipped.append(_skip(path, _unsupported(path)))
        else:
            found.append(path)


def _link_reason(path: Path, root: Path) -> str | None:
    """Why a symbolic link is skipped, or None when it is a link to a file inside ``root``."""
    try:
        target = path.resolve(strict=True)
    except FileNotFoundError:
        return f"broken symbolic link: its target {os.readlink(path)} does not exist"
    except (OSError, RuntimeError):
        return "symbolic link loop"
    if target.is_dir():
        parent = path.parent.resolve()
        if target == parent or target in parent.parents:
            return f"symbolic link loop: points back to {target}"
        return f"symbolic link to a folder, not followed: give {target} itself to ingest it"
    if root not in target.parents:
        return f"symbolic link to a file outside the ingested folder: {target}"
    return None


def iter_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """The files :func:`scan_paths` would read (folders expanded, explicit files as given);
    what it skips, and why, is in ``scan_paths(paths).skipped``."""
    yield from scan_paths(paths).files


def pages_in_range(page_count: int, page_range: tuple[int, int] | None) -> int:
    """How many pages ``reader.pages(page_range=...)`` yields for a document of ``page_count``
    pages (the range is clipped to the document)."""
    if page_range is None:
        return page_count
    return max(0, min(page_range[1], page_count) - max(1, page_range[0]) + 1)


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
    """Inspect every file under ``paths``; goes on after a failure; one result per file, the
    entries a folder walk skipped first (``status="skipped"``, no info, no pages)."""
    scan = scan_paths(paths)
    skipped: list[InspectResult] = [(r, None, []) for r in scan.skipped]
    return skipped + [inspect_file(p, config, image_dir, progress) for p in scan.files]


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
                # a video frame's or an audio stretch's seconds; other pages have no such keys
                **({"start": p.start, "end": p.end} if p.start is not None else {}),
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
    """One line per skipped or failed file plus a total, for the end of a batch."""
    reports = list(reports)
    failed = [r for r in reports if not r.ok]
    skipped = [r for r in reports if r.status == "skipped"]
    lines = [f"{len(reports) - len(failed) - len(skipped)} ok, {len(skipped)} skipped, {len(failed)} failed"]
    lines += [f"  skipped {r.path}: {r.reason}" for r in skipped]
    lines += [f"  FAILED {r.error_type}: {r.error or r.path}" for r in failed]
    return "\n".join(lines)
