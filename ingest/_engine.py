"""PyMuPDF, imported so that its table finder's layout model runs on one thread.

``import pymupdf`` also imports ``pymupdf.layout`` when it is installed (the ``pymupdf_layout``
package), which opens the ONNX sessions of the layout model that ``page.find_tables`` runs on
every page it is given. Those sessions take onnxruntime's default intra-op thread count (one per
core), and an ingest already keeps the cores busy with its own processes: two extraction
workers, each with its table finder in a forked child, beside the embedding process. Measured
on the 25 pages of the public evaluation set that reach the finder, back to back (2 cores,
loaded machine): 22.1 / 19.1 / 20.6 s of CPU with the default threads, 13.8 / 16.0 s with one,
the same 18 tables found, and less wall time too (the second thread mostly spins waiting).

:func:`import_pymupdf` is the ingest's first import of PyMuPDF: while it runs, an onnxruntime
session opened without an explicit thread count gets :data:`LAYOUT_THREADS`. A session that
names its own count (the text encoder, OCR) keeps it; a PyMuPDF imported earlier by someone
else keeps its sessions as they are (said at debug level).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from importlib.util import find_spec
from types import ModuleType
from typing import Any

__all__ = ["LAYOUT_THREADS", "import_pymupdf"]

logger = logging.getLogger("ingest")

#: intra-op threads of the layout model's onnxruntime sessions
LAYOUT_THREADS = 1
_imported_here = False


@contextlib.contextmanager
def _sessions_default_to(threads: int) -> Iterator[None]:
    """While open, onnxruntime sessions created without an intra-op thread count get ``threads``."""
    import onnxruntime as ort

    original = ort.InferenceSession

    class _Session(original):  # type: ignore[misc, valid-type]
        def __init__(self, path_or_bytes: Any, sess_options: Any = None, *args: Any, **kwargs: Any) -> None:
            options = ort.SessionOptions() if sess_options is None else sess_options
            if options.intra_op_num_threads == 0:  # 0: onnxruntime's default, one per core
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
            super().__init__(path_or_bytes, options, *args, **kwargs)

    ort.InferenceSession = _Session
    try:
        yield
    finally:
        ort.InferenceSession = original


def import_pymupdf() -> ModuleType:
    """``import pymupdf``, the first time with the layout model's sessions on :data:`LAYOUT_THREADS`."""
    global _imported_here
    if "pymupdf" in sys.modules:
        if "pymupdf.layout" in sys.modules and not _imported_here:
            logger.debug("PyMuPDF was imported before ingest: its layout model keeps onnxruntime's default threads")
        return sys.modules["pymupdf"]
    if find_spec("onnxruntime") is None:  # no layout model can be loaded either
        import pymupdf

        return pymupdf
    with _sessions_default_to(LAYOUT_THREADS):
        import pymupdf
    _imported_here = True
    return pymupdf
