"""Single-vector image/text embedders of the dual-encoder families: CLIP, Chinese-CLIP,
SigLIP and SigLIP2, through ``transformers``.

The families differ by data (:data:`DUAL_ENCODERS`): the model and processor classes, how
text is padded (SigLIP was trained on ``max_length`` padding), the longest text it takes,
and where the config keeps the embedding size. Inputs are prepared with the checkpoint's own
image processor and tokenizer, the model runs, and both towers' pooled outputs are
L2-normalised, so a dot product is the cosine similarity the model was trained with.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import ModelError
from rag.lazy import require
from rag.vectors import l2_normalize
from retrievers.embedders._batching import batched, progress, wants_progress
from retrievers.embedders._hf import PretrainedEmbedder, check_settings, checked_dimension
from retrievers.embedders._images import open_rgb
from retrievers.embedders._provenance import folder_fingerprint, library_versions

__all__ = ["DualEncoderFamily", "DUAL_ENCODERS", "ClipEmbedder"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DualEncoderFamily:
    """How one dual-encoder family is loaded and fed.

    ``text_padding``: tokenizer padding strategy (``"max_length"`` for SigLIP, which was
    trained on fixed-length text). ``max_text_tokens``: the family's text context; the
    effective cap is also bounded by the tokenizer and the position embeddings.
    ``dimension_path``: attributes leading from the model config to the embedding size.
    """

    model_class: str
    processor_class: str
    text_padding: bool | str = True
    max_text_tokens: int = 77
    dimension_path: tuple[str, ...] = ("projection_dim",)
    tokenizer_options: Mapping[str, Any] = field(default_factory=dict)


DUAL_ENCODERS: dict[str, DualEncoderFamily] = {
    "clip": DualEncoderFamily("CLIPModel", "CLIPProcessor", True, 77, ("projection_dim",)),
    "chinese-clip": DualEncoderFamily("ChineseCLIPModel", "ChineseCLIPProcessor", True, 52, ("projection_dim",)),
    "siglip": DualEncoderFamily("SiglipModel", "SiglipProcessor", "max_length", 64, ("vision_config", "hidden_size")),
    "siglip2": DualEncoderFamily("Siglip2Model", "Siglip2Processor", "max_length", 64, ("vision_config", "hidden_size")),
}


class ClipEmbedder(PretrainedEmbedder):
    """Images and texts into one shared space (implements ``retrievers.base.ImageEmbedder``).

    Construction is cheap; :meth:`load` reads the weights (idempotent, and called by the
    first ``embed_*``). ``show_progress=None`` shows a bar when the module logger is at INFO.
    ``dtype``: ``None`` means float32 on CPU and the checkpoint's dtype on other devices.
    """

    def __init__(
        self,
        model: str,
        *,
        family: str = "clip",
        device: str = "cpu",
        batch_size: int = 16,
        show_progress: bool | None = None,
        dtype: str | None = None,
        dimension: int | None = None,
    ) -> None:
        self._spec = check_settings("ClipEmbedder", model, family, DUAL_ENCODERS, batch_size)
        self._setup(model, family, device, batch_size, show_progress, dtype, dimension)
        self._max_text_tokens = self._spec.max_text_tokens

    # ---------------------------------------------------------------- loading
    def load(self) -> None:
        """Load model and processor (once). Raises :class:`ModelError` naming the model."""
        if self._model is not None:
            return
        require("torch", "vision", f"the {self.family} image embedder")
        transformers = require("transformers", "vision", f"the {self.family} image embedder")
        start = time.perf_counter()
        model_cls = getattr(transformers, self._spec.model_class)
        processor_cls = getattr(transformers, self._spec.processor_class)
        try:
            model = model_cls.from_pretrained(self.name, dtype=self.dtype)
            processor = processor_cls.from_pretrained(self.name)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(
                f"cannot load {self.family} model {self.name!r} as {self._spec.model_class}: {exc}. "
                "Give a registered name, a hub id available offline, or a folder saved with save_pretrained."
            ) from exc
        model = model.to(self.device).eval()
        config = model.config
        dim: Any = config
        for attr in self._spec.dimension_path:
            dim = getattr(dim, attr)
        self._dimension = checked_dimension(self.name, self._dimension, int(dim))
        tokenizer_cap = getattr(processor.tokenizer, "model_max_length", None) or self._spec.max_text_tokens
        positions = getattr(config.text_config, "max_position_embeddings", None) or self._spec.max_text_tokens
        self._max_text_tokens = int(min(self._spec.max_text_tokens, tokenizer_cap, positions))
        self._revision = folder_fingerprint(self.name) or getattr(config, "_commit_hash", None)
        self._model, self._processor = model, processor
        logger.info(
            "loaded %s (%s, dim %d) on %s in %.2fs", self.name, self.family, self._dimension, self.device, time.perf_counter() - start
        )

    # -------------------------------------------------------------- embedding
    def embed_images(self, paths: Sequence[Path | str]) -> np.ndarray:
        """L2-normalised float32 ``(len(paths), dimension)``; images are read with Pillow as RGB."""
        self.load()
        return self._run(list(paths), self._image_batch, "images")

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 ``(len(texts), dimension)`` in the images' space."""
        self.load()
        if isinstance(texts, str):
            raise TypeError("embed_texts takes a sequence of strings, not one string")
        return self._run(list(texts), self._text_batch, "texts")

    def _run(self, items: list[Any], embed_batch: Any, what: str) -> np.ndarray:
        if not items:
            return np.zeros((0, self.dimension), dtype=np.float32)
        start = time.perf_counter()
        n_batches = -(-len(items) // self.batch_size)
        show = wants_progress(self.show_progress, logger)
        chunks = [embed_batch(batch) for batch in progress(batched(items, self.batch_size), show=show, total=n_batches, desc=f"{self.family} {what}")]
        out = l2_normalize(np.concatenate(chunks, axis=0))
        logger.debug("embedded %d %s with %s in %.2fs", len(items), what, self.name, time.perf_counter() - start)
        return out

    def _image_batch(self, paths: list[Path | str]) -> np.ndarray:
        images = [open_rgb(p) for p in paths]
        # The image processor alone: the processor's class-level defaults (e.g. SigLIP2's
        # patch_size=16) would override the checkpoint's saved image-processor settings.
        inputs = self._processor.image_processor(images=images, return_tensors="pt")
        return self._forward(self._model.get_image_features, inputs)

    def _text_batch(self, texts: list[str]) -> np.ndarray:
        inputs = self._processor.tokenizer(
            texts,
            padding=self._spec.text_padding,
            truncation=True,
            max_length=self._max_text_tokens,
            return_tensors="pt",
            **self._spec.tokenizer_options,
        )
        return self._forward(self._model.get_text_features, inputs)

    def _forward(self, method: Any, inputs: Mapping[str, Any]) -> np.ndarray:
        import torch

        accepted = inspect.signature(method).parameters
        feed = {k: v.to(self.device) for k, v in inputs.items() if k in accepted}
        with torch.inference_mode():
            out = method(**feed)
        vectors = out.pooler_output if hasattr(out, "pooler_output") else out
        return vectors.float().cpu().numpy()

    # ------------------------------------------------------------- provenance
    def provenance(self) -> dict[str, Any]:
        """What a knowledge base must match to be queried with this embedder (loads the model)."""
        self.load()
        return {
            "name": self.name,
            "family": self.family,
            "kind": "image",
            "model_class": self._spec.model_class,
            "revision": self._revision,
            "dimension": self._dimension,
            "dtype": self.dtype,
            "normalized": True,
            "max_text_tokens": self._max_text_tokens,
            "versions": library_versions("transformers", "torch"),
        }

    def __repr__(self) -> str:
        state = "loaded" if self.loaded else "not loaded"
        return f"ClipEmbedder({self.name!r}, family={self.family!r}, device={self.device!r}, {state})"
