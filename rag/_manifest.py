"""The knowledge base's provenance manifest and its document registry.

``manifest.json`` records what built the vectors (embedder names, revisions and
dimensions, vector specs, DPI, pooling, library versions). Opening a knowledge base
with other models fails with a message that names the difference.

The manifest is written atomically and durably (:mod:`rag.atomic`). The document
registry (every document and its state) is :mod:`rag._registry`'s SQLite database;
:class:`DocumentRegistry` and :class:`DocumentRecord` are importable from here too.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from rag._registry import DocumentRecord, DocumentRegistry
from rag.atomic import atomic_write
from rag.errors import EmbedderMismatchError, StoreError

__all__ = ["Manifest", "DocumentRecord", "DocumentRegistry", "write_json_atomic", "library_versions"]

MANIFEST_VERSION = 1


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that a reader (or a crash) sees the old file or the new one, never half."""
    atomic_write(path, json.dumps(data, indent=2, sort_keys=True, default=str))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise StoreError(f"{path}: corrupt knowledge-base file ({exc}); restore it or rebuild the knowledge base") from exc


def library_versions() -> dict[str, str]:
    out = {}
    for dist in ("mmrag", "pymupdf", "qdrant-edge-py", "qdrant-client", "sentence-transformers", "transformers", "colpali-engine", "torch"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


#: Provenance keys that must match for vectors to be comparable.
_IDENTITY_KEYS = ("name", "source", "family", "dimension", "fingerprint", "pool_factor", "pooling", "k1", "b", "avg_len", "language", "phrase_weight")


@dataclass(frozen=True)
class Manifest:
    """What built a knowledge base."""

    models: dict[str, dict[str, Any]]
    collections: dict[str, list[dict[str, Any]]]
    ingest: dict[str, Any]
    store: dict[str, Any]
    model_settings: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=library_versions)
    created: float = field(default_factory=time.time)
    version: int = MANIFEST_VERSION

    @classmethod
    def read(cls, path: Path) -> Manifest:
        data = _read_json(path)
        known = {k: data[k] for k in ("models", "collections", "ingest", "store", "model_settings", "versions", "created", "version") if k in data}
        return cls(**known)

    def write(self, path: Path) -> None:
        write_json_atomic(path, asdict(self))

    def check_models(self, wanted: dict[str, dict[str, Any]], where: Path) -> None:
        """Raise :class:`EmbedderMismatchError` when ``wanted`` differs from what built the index."""
        problems = []
        for role in sorted(set(self.models) | set(wanted)):
            have, want = self.models.get(role), wanted.get(role)
            if (have is None) != (want is None):
                problems.append(f"{role}: built with {_describe(have)}, asked for {_describe(want)}")
                continue
            if have is None or want is None:
                continue
            # a model folder with a content fingerprint on both sides is the same model wherever it
            # lies: the knowledge base opens from another virtualenv or machine with the same files
            same_files = bool(have.get("revision")) and bool(want.get("revision"))
            keys = [k for k in _IDENTITY_KEYS if k != "source"] + ["revision"] if same_files else _IDENTITY_KEYS
            for key in keys:
                if key in have and key in want and have[key] != want[key]:
                    problems.append(f"{role}: {key} was {have[key]!r}, now {want[key]!r}")
        if problems:
            raise EmbedderMismatchError(
                f"{where}: this knowledge base was built with other models ({'; '.join(problems)}). "
                "Open it with the models it was built with, or build a new knowledge base in another folder."
            )


def _describe(prov: dict[str, Any] | None) -> str:
    return "nothing" if prov is None else str(prov.get("name") or prov.get("source"))
