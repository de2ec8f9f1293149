"""Reading images for the encoders and rerankers: Pillow, fully decoded, RGB."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rag.errors import UnreadableFileError, UnsupportedFormatError
from rag.lazy import require

__all__ = ["open_rgb"]


def open_rgb(path: str | Path) -> Any:
    """Open an image with Pillow, fully decoded and converted to RGB (a ``PIL.Image.Image``).

    Raises :class:`rag.errors.UnreadableFileError` for a missing/unreadable file and
    :class:`rag.errors.UnsupportedFormatError` when Pillow cannot decode it.
    """
    image_mod = require("PIL.Image", None, "reading images", package="pillow")
    p = Path(path)
    if not p.is_file():
        raise UnreadableFileError(p, "no such image file")
    try:
        with image_mod.open(p) as img:
            img.load()
            return img.convert("RGB")
    except image_mod.UnidentifiedImageError as exc:
        raise UnsupportedFormatError(p, f"not an image Pillow can read: {exc}") from exc
    except OSError as exc:
        raise UnreadableFileError(p, f"cannot read image: {exc}") from exc
