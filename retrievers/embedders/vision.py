"""Image-only embedders: one vector per image from a vision encoder (ViT, DINOv2, WebSSL-DINO,
InternVL's vision tower), for image -> image search ("pages and figures that look like this").

These models have no text tower: they fill the ``image`` vector of the figures corpus and
are queried with an example image, never with a question (``embed_texts`` does not exist, so
they do not satisfy :class:`retrievers.base.ImageEmbedder`; see :class:`ImageOnlyEmbedder`).

The families differ by data (:data:`VISION_ENCODERS`): the ``transformers`` model class and
how the token features become one vector (``cls``: the first token of the final, normed
hidden states; ``mean``: the mean of the patch tokens). InternVL's vision tower chooses by
its config (``use_mean_pooling``). Inputs go through the checkpoint's own image processor
(``AutoImageProcessor``); outputs are L2-normalised float32.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from retrievers.base import ImageOnlyEmbedder

from rag.vectors import l2_normalize
from retrievers.embedders._batching import batched, progress, wants_progress
from retrievers.embedders._hf import PretrainedEmbedder, check_settings, checked_dimension, load_pretrained
from retrievers.embedders._images import open_rgb
from retrievers.embedders._provenance import folder_fingerprint, library_versions

__all__ = [
    "ImageOnlyEmbedder",
    "VisionFamily",
    "VISION_ENCODERS",
    "POOLINGS",
    "cls_pool",
    "mean_patch_pool",
    "VisionEmbedder",
]

logger = logging.getLogger(__name__)


def cls_pool(hidden: np.ndarray, prefix_tokens: int = 1) -> np.ndarray:
    """``(batch, tokens, dim)`` -> the first ([CLS]) token ``(batch, dim)``."""
    return np.asarray(hidden)[:, 0, :]


def mean_patch_pool(hidden: np.ndarray, prefix_tokens: int = 1) -> np.ndarray:
    """``(batch, tokens, dim)`` -> the mean of the patch tokens (after ``prefix_tokens`` CLS/register tokens)."""
    arr = np.asarray(hidden)
    if arr.shape[1] <= prefix_tokens:
        raise ValueError(f"no patch tokens to average: {arr.shape[1]} tokens, {prefix_tokens} prefix tokens")
    return arr[:, prefix_tokens:, :].mean(axis=1)


#: pooling name -> f(hidden states, number of prefix tokens) -> one vector per image
POOLINGS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {"cls": cls_pool, "mean": mean_patch_pool}


@dataclass(frozen=True)
class VisionFamily:
    """How one vision-encoder family loads and pools.

    ``pooling``: a key of :data:`POOLINGS`. ``pooling_flag``: a boolean config attribute that,
    when present, picks ``mean`` (true) or ``cls`` (false) instead. ``prefix_tokens``: tokens
    before the patches ([CLS] and any registers).
    """

    family: str
    model_class: str
    pooling: str = "cls"
    pooling_flag: str | None = None
    prefix_tokens: int = 1
    backbone: str = ""


VISION_ENCODERS: dict[str, VisionFamily] = {
    f.family: f
    for f in (
        VisionFamily("vit", "ViTModel", "cls", backbone="ViT (ImageNet-21k)"),
        VisionFamily("dinov2", "Dinov2Model", "cls", backbone="DINOv2"),
        # WebSSL-DINO checkpoints are DINOv2 architectures (config.json: Dinov2Model) trained on web data
        VisionFamily("webssl-dino", "Dinov2Model", "cls", backbone="DINOv2 (WebSSL)"),
        VisionFamily("internvl-vision", "InternVLVisionModel", "mean", pooling_flag="use_mean_pooling",
                     backbone="InternViT (InternVL, transformers-native)"),
    )
}


class VisionEmbedder(PretrainedEmbedder):
    """Image-only vectors from a vision encoder (implements :class:`ImageOnlyEmbedder`).

    ``model``: a hub id or a folder saved with ``save_pretrained`` (model + image processor).
    ``pooling``: override the family's pooling (``"cls"`` or ``"mean"``). Construction is
    cheap; :meth:`load` reads the weights once.
    """

    def __init__(
        self,
        model: str,
        *,
        family: str,
        device: str = "cpu",
        batch_size: int = 16,
        show_progress: bool | None = None,
        pooling: str | None = None,
        dtype: str | None = None,
        dimension: int | None = None,
    ) -> None:
        self.spec = check_settings("VisionEmbedder", model, family, VISION_ENCODERS, batch_size, pooling, POOLINGS)
        self._setup(model, family, device, batch_size, show_progress, dtype, dimension)
        self._pooling_override = pooling
        self.pooling = pooling or self.spec.pooling

    def load(self) -> None:
        """Load model and image processor (once); :class:`ModelError` names the model and the reason."""
        if self._model is not None:
            return
        started = time.perf_counter()
        model, processor = load_pretrained(self.name, self.family, self.spec.model_class, "AutoImageProcessor", self.dtype)
        config = model.config
        dim = checked_dimension(self.name, self._dimension, int(config.hidden_size))
        if self._pooling_override is None and self.spec.pooling_flag is not None and hasattr(config, self.spec.pooling_flag):
            self.pooling = "mean" if getattr(config, self.spec.pooling_flag) else "cls"
        self._dimension = dim
        self._revision = folder_fingerprint(self.name) or getattr(config, "_commit_hash", None)
        self._model, self._processor = model.to(self.device).eval(), processor
        logger.info("loaded %s (%s, dim %d, %s pooling) in %.2fs", self.name, self.family, dim, self.pooling,
                    time.perf_counter() - started)

    def embed_images(self, paths: Sequence[Path | str]) -> np.ndarray:
        """L2-normalised float32 ``(len(paths), dimension)``; images are read with Pillow as RGB."""
        self.load()
        items = list(paths)
        if not items:
            return np.zeros((0, self.dimension), dtype=np.float32)
        started = time.perf_counter()
        show = wants_progress(self.show_progress, logger)
        total = -(-len(items) // self.batch_size)
        chunks = [self._batch(b) for b in progress(batched(items, self.batch_size), show=show, total=total,
                                                  desc=f"{self.family} images")]
        out = l2_normalize(np.concatenate(chunks, axis=0))
        logger.debug("embedded %d images with %s in %.2fs", len(items), self.name, time.perf_counter() - started)
        return out

    def features(self, paths: Sequence[Path | str]) -> np.ndarray:
        """The final hidden states ``(n, tokens, dim)`` before pooling (for inspection and tests)."""
        self.load()
        return self._hidden([open_rgb(p) for p in paths])

    def _hidden(self, images: list[Any]) -> np.ndarray:
        import torch

        inputs = self._processor(images=images, return_tensors="pt")
        with torch.inference_mode():
            out = self._model(pixel_values=inputs["pixel_values"].to(self.device, dtype=self._model.dtype))
        return out.last_hidden_state.float().cpu().numpy()

    def _batch(self, paths: list[Path | str]) -> np.ndarray:
        hidden = self._hidden([open_rgb(p) for p in paths])
        return POOLINGS[self.pooling](hidden, self.spec.prefix_tokens)

    def provenance(self) -> dict[str, Any]:
        """What a knowledge base must match to be queried with this embedder (loads the model)."""
        self.load()
        return {
            "name": self.name,
            "family": self.family,
            "kind": "image_only",
            "model_class": self.spec.model_class,
            "revision": self._revision,
            "dimension": self._dimension,
            "pooling": self.pooling,
            "dtype": self.dtype,
            "normalized": True,
            "versions": library_versions("transformers", "torch"),
        }

    def __repr__(self) -> str:
        return f"VisionEmbedder({self.name!r}, family={self.family!r}, pooling={self.pooling!r}, loaded={self.loaded})"
