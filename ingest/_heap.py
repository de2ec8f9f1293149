"""Give the C heap's free memory back to the system: glibc's ``malloc_trim`` (elsewhere nothing).

glibc keeps what a process frees in its heap and reuses it, returning pages to the system
only from the heap's top and only past a threshold that rises with the largest block freed
(up to 64 MB). A page's extraction allocates and frees hundreds of MB at once (an OCR run of a
rendered page: ~300 MB of model activations and page pixels), so without a trim an extraction
process keeps its largest page's high-water mark for as long as it lives, idle or not:
on the public set two extraction workers held 450-700 MB each while they waited for the
ingesting process to take their pages (``bench/bench_memory.py``, session 13).

Trimming costs a few milliseconds and the next large allocation faults its pages in again,
so it is done where memory is about to sit unused: every few dozen pages of a long read,
while a worker waits for the caller, and when a document is done.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["trim"]

_LIBC: Any = None  # the C library once looked up; False: no malloc_trim here


def _libc() -> Any:
    global _LIBC
    if _LIBC is None:
        import ctypes
        import ctypes.util

        name = ctypes.util.find_library("c") if sys.platform.startswith("linux") else None
        try:
            _LIBC = ctypes.CDLL(name) if name else False
            if _LIBC and not hasattr(_LIBC, "malloc_trim"):
                _LIBC = False
        except OSError:
            _LIBC = False
    return _LIBC


def trim() -> bool:
    """Return the heap's free pages to the system; False where there is no ``malloc_trim``."""
    libc = _libc()
    if not libc:
        return False
    libc.malloc_trim(0)
    return True
