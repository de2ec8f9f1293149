"""What an embedder records about itself so a knowledge base can refuse a mismatched one:
installed library versions and a cheap fingerprint of a local model folder."""

from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path

__all__ = ["library_versions", "folder_fingerprint"]


def library_versions(*distributions: str) -> dict[str, str]:
    """Installed versions of the named distributions (``"missing"`` when absent)."""
    out: dict[str, str] = {}
    for dist in distributions:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "missing"
    return out


_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".onnx")


def folder_fingerprint(folder: str | Path) -> str | None:
    """A cheap content fingerprint of a local model folder, or ``None`` if it is not a folder.

    sha256 over every ``*.json`` / tokenizer file's bytes plus each weights file's name and
    size and its first and last MiB: a changed checkpoint changes the fingerprint, and a
    multi-GB model is fingerprinted in milliseconds.
    """
    root = Path(folder)
    if not root.is_dir():
        return None
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(".") or "/." in rel:
            continue
        digest.update(rel.encode())
        size = path.stat().st_size
        digest.update(str(size).encode())
        if path.suffix in _WEIGHT_SUFFIXES:
            with open(path, "rb") as fh:
                digest.update(fh.read(1 << 20))
                if size > 2 << 20:
                    fh.seek(-(1 << 20), 2)
                    digest.update(fh.read(1 << 20))
        elif path.suffix in (".json", ".txt", ".model") and size <= 32 << 20:
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
