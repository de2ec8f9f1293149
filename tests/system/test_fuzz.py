"""Fuzzing the PDF/image entry point (``ingest.open_document`` + iterating pages) with mutated
real PDFs from ../shared/eval/docs (and small generated PNG/JPEG/TIFF/WebP images): byte
flips, truncations, duplicated and zeroed chunks, spliced bytes, hostile numbers in structural
keys (/Length, /Count, /W, /Size, ...) and commented-out keywords (obj, stream, xref, ...).

Any exception other than a :class:`rag.errors.MmragError` subclass is a bug. The default run
is deterministic (~60 examples); ``-m slow`` keeps going with fresh random examples for
``MMRAG_FUZZ_SECONDS`` (default 900) seconds and logs how many it ran.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SHARED_EVAL
from ingest import open_document
from rag.config import IngestConfig
from rag.errors import MmragError

log = logging.getLogger("mmrag.tests.fuzz")

CONFIG = IngestConfig(ocr="never", dpi=36, max_page_pixels=20_000_000)
MAX_PAGES = 2  # pages read per example
_NUMBER_KEY = re.compile(
    rb"/(Length|Count|Size|W|Width|Height|BitsPerComponent|Columns|Predictor|First|N|Prev|Index|Colors|K|Rotate)(\s*\[?\s*)(-?\d+)"
)
HOSTILE_NUMBERS = [0, -1, 1, 2, 3, 255, 65535, 2**31 - 1, 2**31, 2**32 + 1, 10**12, -(2**31)]


def _seeds() -> list[bytes]:
    docs = SHARED_EVAL / "docs"
    if not docs.is_dir():
        return []
    import pymupdf

    seeds = []
    for path in sorted(docs.glob("*.pdf")):
        data = path.read_bytes()
        with pymupdf.open(path) as doc:
            if doc.page_count <= MAX_PAGES or len(data) <= 1_100_000:
                seeds.append(data)  # the real file as published (its own xref, object streams)
            if doc.page_count > MAX_PAGES:  # a small excerpt, so that damage lands on pages that are read
                n = doc.page_count
                doc.select(sorted({0, n // 2, n - 1}))
                seeds.append(doc.tobytes(garbage=3, deflate=True))
    import _pdfgen as g

    seeds += [g.png_bytes(120, 80, fmt=fmt) for fmt in ("PNG", "JPEG", "TIFF", "WEBP")]  # the image path too
    return seeds


SEEDS = _seeds()
pytestmark = pytest.mark.skipif(not SEEDS, reason=f"real PDFs not found in {SHARED_EVAL / 'docs'} (../shared/eval beside the repository)")

_mutation = st.one_of(
    st.tuples(st.just("flip"), st.floats(0, 1), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.floats(0.02, 1)),
    st.tuples(st.just("duplicate"), st.floats(0, 1), st.integers(1, 8192), st.floats(0, 1)),
    st.tuples(st.just("zero"), st.floats(0, 1), st.integers(1, 4096)),
    st.tuples(st.just("splice"), st.floats(0, 1), st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("number"), st.integers(0, 10**6), st.sampled_from(HOSTILE_NUMBERS)),
    st.tuples(st.just("keyword"), st.integers(0, 10**6), st.sampled_from([b"obj", b"endobj", b"stream", b"endstream", b"xref", b"trailer", b"<<", b">>", b"R"])),
)


def mutate(data: bytes, mutations: list[tuple]) -> bytes:
    buf = bytearray(data)
    for m in mutations:
        if not buf:
            break
        kind, n = m[0], len(buf)
        if kind == "flip":
            buf[min(int(m[1] * n), n - 1)] ^= m[2]
        elif kind == "truncate":
            del buf[max(int(m[1] * n), 1):]
        elif kind == "duplicate":
            start = min(int(m[1] * n), n - 1)
            chunk = bytes(buf[start : start + m[2]])
            at = int(m[3] * len(buf))
            buf[at:at] = chunk
        elif kind == "zero":
            start = min(int(m[1] * n), n - 1)
            end = min(start + m[2], n)
            buf[start:end] = bytes(end - start)
        elif kind == "splice":
            at = int(m[1] * n)
            buf[at:at] = m[2]
        elif kind == "number":
            found = list(_NUMBER_KEY.finditer(bytes(buf)))
            if found:
                hit = found[m[1] % len(found)]
                buf[hit.start(3) : hit.end(3)] = str(m[2]).encode()
        elif kind == "keyword":
            found = [x.start() for x in re.finditer(re.escape(m[2]), bytes(buf))]
            if found:
                at = found[m[1] % len(found)]
                buf[at : at + len(m[2])] = b"%" * len(m[2])  # comment it out
    return bytes(buf)


def read_mutant(data: bytes) -> str:
    """Open and read up to MAX_PAGES pages; only MmragError subclasses may escape."""
    with tempfile.TemporaryDirectory(prefix="mmrag-fuzz-") as tmp:
        path = Path(tmp) / "mutant.pdf"
        path.write_bytes(data)
        try:
            with open_document(path, CONFIG, image_dir=Path(tmp) / "images") as reader:
                pages = reader.pages(progress=False)
                for i, content in enumerate(pages):
                    assert content.page.page == i + 1
                    if i + 1 >= MAX_PAGES:
                        pages.close()
                        break
            return "ok"
        except MmragError as exc:
            assert str(path) in str(exc), exc  # the message names the file
            return type(exc).__name__


def _example(seed: int, mutations: list[tuple]) -> None:
    read_mutant(mutate(SEEDS[seed % len(SEEDS)], mutations))


_given = given(seed=st.integers(0, 10**6), mutations=st.lists(_mutation, min_size=1, max_size=6))


@settings(max_examples=60, deadline=timedelta(seconds=120), derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@_given
def test_mutated_real_pdfs_raise_only_typed_errors(seed, mutations):
    _example(seed, mutations)


_long = settings(max_examples=200, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])(_given(_example))


@pytest.mark.slow
def test_long_fuzz_run():
    budget = float(os.environ.get("MMRAG_FUZZ_SECONDS", "900"))
    started = time.monotonic()
    rounds = 0
    while time.monotonic() - started < budget:
        _long()
        rounds += 1
        log.warning("fuzz: %d rounds of 200 examples, %.0f s without a failure", rounds, time.monotonic() - started)
