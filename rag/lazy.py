"""Lazy imports of optional dependencies, failing with the exact ``pip install`` line.

Every stage imports its heavy libraries (torch, transformers, colpali-engine, httpx,
qdrant...) inside the function that needs them, through :func:`require`: a missing
extra then fails where it is needed, with :class:`rag.errors.MissingDependencyError`
naming the distribution, the mmrag extra that installs it and what needed it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from rag.errors import MissingDependencyError

__all__ = ["require", "DISTRIBUTIONS"]

#: Top-level module -> the PyPI distribution to name in the install hint, where the two differ
#: beyond ``_`` -> ``-``.
DISTRIBUTIONS: dict[str, str] = {
    "PIL": "pillow",
    "qdrant_edge": "qdrant-edge-py",
}


def require(module: str, extra: str | None = None, purpose: str = "", package: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` with the pip line.

    ``extra`` is the mmrag extra that installs it (``text``, ``vision``...), ``purpose``
    says what needs it, ``package`` overrides the distribution name in the message.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        name = package if package is not None else DISTRIBUTIONS.get(top, top.replace("_", "-"))
        raise MissingDependencyError(name, extra, purpose) from exc
