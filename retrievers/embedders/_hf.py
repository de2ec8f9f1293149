"""Loading Hugging Face ``transformers`` checkpoints for the single-vector embedders (CLIP/SigLIP,
vision-only, VLM): settings checks, dtype defaults, the dimension check, and the state they share.

Nothing here reads the model catalogue: the registry passes the registered vector size to
each constructor as ``dimension=``, and :func:`checked_dimension` holds the checkpoint to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rag.errors import ConfigError, ModelError
from rag.lazy import require

__all__ = ["load_pretrained", "check_settings", "default_dtype", "checked_dimension", "PretrainedEmbedder"]


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
    settings, the registered dimension (``None`` for a folder: known after load()), and the
    load state. Subclasses set ``_model``/``_processor``/``_dimension``/``_revision`` in ``load``."""

    def _setup(self, model: str, family: str, device: str, batch_size: int, show_progress: bool | None,
               dtype: str | None, dimension: int | None) -> None:
        if dimension is not None and (isinstance(dimension, bool) or not isinstance(dimension, int) or dimension < 1):
            raise ConfigError(f"{type(self).__name__}: dimension must be a positive integer or None, got {dimension!r}")
        self.name = str(model)
        self.family = family
        self.device = device
        self.batch_size = int(batch_size)
        self.show_progress = show_progress
        self.dtype = default_dtype(device, dtype)
        self._dimension: int | None = dimension
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
