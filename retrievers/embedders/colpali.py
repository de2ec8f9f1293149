"""Late-interaction page embedders of the ColPali family, through colpali-engine.

One class, :class:`ColVisionEmbedder`, serves every family; what differs between
ColPali (PaliGemma), ColQwen2, ColQwen2.5 and ColIdefics3 (ColSmol) is data in
:data:`COL_FAMILIES` (model and processor classes, vector size), chosen by the
``family`` the registry resolved. A page becomes a multivector ``(tokens, 128)``:
the model's L2-normalised token vectors with padding tokens removed (attention
mask), then token-pooled with colpali-engine's hierarchical pooler (``pool_factor``
3 keeps about a third of the vectors at almost the same retrieval quality). Queries
are never pooled.

Construction is cheap; :meth:`ColVisionEmbedder.load` imports torch/colpali-engine
and reads the weights, once.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import ConfigError, ModelError
from rag.lazy import require
from retrievers.embedders._batching import batched, progress, wants_progress
from retrievers.embedders._images import open_rgb
from retrievers.embedders._provenance import folder_fingerprint, library_versions

__all__ = ["ColFamily", "COL_FAMILIES", "POOLERS", "ColVisionEmbedder"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ColFamily:
    """How one ColPali-family variant loads: colpali-engine class names and its vector size."""

    family: str
    model_class: str
    processor_class: str
    architecture: str
    dimension: int = 128
    backbone: str = ""
    #: mark every query token as prefix (``token_type_ids`` = 0). PaliGemma attends bidirectionally
    #: over a prefix; without the ids, transformers 5.x runs a lone query bidirectionally but a padded
    #: batch causally, so a query's vectors would depend on its batch-mates.
    query_prefix_ids: bool = False


#: family (as resolved by ``retrievers.registry``) -> how to load it
COL_FAMILIES: dict[str, ColFamily] = {
    f.family: f
    for f in (
        ColFamily("colpali", "ColPali", "ColPaliProcessor", "ColPali", backbone="PaliGemma", query_prefix_ids=True),
        ColFamily("colqwen2", "ColQwen2", "ColQwen2Processor", "ColQwen2", backbone="Qwen2-VL"),
        ColFamily("colqwen2.5", "ColQwen2_5", "ColQwen2_5_Processor", "ColQwen2_5", backbone="Qwen2.5-VL"),
        ColFamily("colidefics3", "ColIdefics3", "ColIdefics3Processor", "ColIdefics3", backbone="Idefics3"),
    )
}

#: ``pooling`` name -> colpali-engine token pooler class (in colpali_engine.compression.token_pooling)
POOLERS: dict[str, str] = {"hierarchical": "HierarchicalTokenPooler"}

_DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
           "float16": "float16", "fp16": "float16"}


class ColVisionEmbedder:
    """Multivectors for page images and queries from a ColPali-family model.

    ``model`` is a hub id or a local folder saved with ``save_pretrained``; ``family`` one of
    :data:`COL_FAMILIES`. ``pool_factor`` <= 1 turns page pooling off. ``dtype`` ``None``
    means float32 (the only sensible choice on CPU); ``"bfloat16"``/``"float16"`` on GPU.
    ``show_progress`` ``None`` shows a bar when this module logs at INFO.
    """

    def __init__(
        self,
        model: str,
        *,
        family: str,
        device: str = "cpu",
        batch_size: int = 4,
        show_progress: bool | None = None,
        pool_factor: int = 3,
        pooling: str = "hierarchical",
        dtype: str | None = None,
    ) -> None:
        if family not in COL_FAMILIES:
            raise ConfigError(
                f"unknown late-interaction family {family!r} for model {model!r}; known: {sorted(COL_FAMILIES)}"
            )
        if pooling not in POOLERS:
            raise ConfigError(f"unknown pooling {pooling!r} for model {model!r}; known: {sorted(POOLERS)}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if dtype is not None and dtype not in _DTYPES:
            raise ConfigError(f"dtype must be one of {sorted(_DTYPES)} or None, got {dtype!r}")
        self.source = str(model)
        self.spec = COL_FAMILIES[family]
        self.family = family
        self.name = f"{family}:{Path(self.source).name or self.source}"
        self.device = device
        self.batch_size = int(batch_size)
        self.show_progress = show_progress
        self.pool_factor = int(pool_factor)
        self.pooling = pooling
        self.dtype = None if dtype is None else _DTYPES[dtype]
        self._model: Any = None
        self._processor: Any = None
        self._pooler: Any = None
        self._torch: Any = None

    # ------------------------------------------------------------------ loading
    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def dimension(self) -> int:
        """Vector size: the loaded model's ``dim`` (128 for every published checkpoint)."""
        if self._model is not None:
            return int(getattr(self._model, "dim", self.spec.dimension))
        return self.spec.dimension

    def load(self) -> None:
        """Import torch/colpali-engine and read model + processor; a second call does nothing."""
        if self._model is not None:
            return
        torch = require("torch", "vision", f"{self.family} embeddings")
        models = require("colpali_engine.models", "vision", f"{self.family} embeddings", package="colpali-engine")
        pooler = None
        if self.pool_factor > 1:
            require("scipy", "vision", "hierarchical token pooling")  # the pooler's clustering
            pooling = require("colpali_engine.compression.token_pooling", "vision", "token pooling",
                              package="colpali-engine")
            pooler = getattr(pooling, POOLERS[self.pooling])()
        model_cls = getattr(models, self.spec.model_class)
        processor_cls = getattr(models, self.spec.processor_class)
        local = Path(self.source).is_dir()
        dtype = torch.float32 if self.dtype is None else getattr(torch, self.dtype)
        # ColPali checkpoints have no lm_head (retrieval never uses it): it stays on the meta device,
        # so ``model.to(device)`` fails. Weights load on the CPU by default; any other device is placed
        # at load time with ``device_map``, which needs accelerate.
        placement: dict[str, Any] = {}
        if self.device != "cpu":
            require("accelerate", None, f"loading {self.family} onto {self.device}")
            placement["device_map"] = self.device
        started = time.perf_counter()
        try:
            model = model_cls.from_pretrained(self.source, dtype=dtype, local_files_only=local, **placement)
            processor = processor_cls.from_pretrained(self.source, local_files_only=local)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            where = "local folder" if local else "hub id (is it downloaded? the hub may be unreachable)"
            raise ModelError(
                f"cannot load {self.spec.model_class} from {self.source!r} ({where}): {type(exc).__name__}: {exc}"
            ) from exc
        model.eval()
        self._torch = torch
        self._processor = processor
        self._pooler = pooler
        self._model = model
        logger.info(
            "loaded %s from %s (dim %d, %s, %s) in %.2fs",
            self.spec.model_class, self.source, self.dimension, dtype, self.device, time.perf_counter() - started,
        )

    # ---------------------------------------------------------------- embedding
    def embed_images(self, paths: Sequence[Path | str]) -> list[np.ndarray]:
        """One ``(n_i, dim)`` float32 array per image, padding removed, token-pooled."""
        self.load()
        out: list[np.ndarray] = []
        started = time.perf_counter()
        batches = batched(list(paths), self.batch_size)
        total = -(-len(paths) // self.batch_size)
        show = wants_progress(self.show_progress, logger)
        for batch in progress(batches, show=show, total=total, desc=f"{self.family} pages"):
            images = [open_rgb(p) for p in batch]
            inputs = self._processor.process_images(images)
            out.extend(self.pool(self._forward(inputs)))
        logger.info(
            "%s: embedded %d pages (%d vectors, pool_factor %d) in %.2fs",
            self.name, len(out), sum(len(v) for v in out), self.pool_factor, time.perf_counter() - started,
        )
        return out

    def embed_queries(self, texts: Sequence[str]) -> list[np.ndarray]:
        """One ``(m_i, dim)`` float32 array per query (with the model's query augmentation), never pooled."""
        self.load()
        out: list[np.ndarray] = []
        show = wants_progress(self.show_progress, logger)
        total = -(-len(texts) // self.batch_size)
        for batch in progress(batched(list(texts), self.batch_size), show=show, total=total,
                              desc=f"{self.family} queries"):
            inputs = self._processor.process_queries(list(batch))
            if self.spec.query_prefix_ids:
                inputs["token_type_ids"] = self._torch.zeros_like(inputs["input_ids"])
            out.extend(self._forward(inputs))
        return out

    def pool(self, multivectors: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Token-pool page multivectors with the configured pooler (identity when pool_factor <= 1)."""
        if self.pool_factor <= 1:
            return [np.ascontiguousarray(m, dtype=np.float32) for m in multivectors]
        self.load()
        torch = self._torch
        out = []
        for m in multivectors:
            if len(m) < 2:  # the pooler refuses a single token; nothing to pool anyway
                out.append(np.ascontiguousarray(m, dtype=np.float32))
                continue
            pooled = self._pooler.pool_embeddings([torch.from_numpy(np.asarray(m, dtype=np.float32))],
                                                  pool_factor=self.pool_factor)
            out.append(np.ascontiguousarray(pooled[0].numpy(), dtype=np.float32))
        return out

    def _forward(self, inputs: Any) -> list[np.ndarray]:
        """Run the model; return each item's vectors where the attention mask is set."""
        torch = self._torch
        inputs = inputs.to(self.device)
        with torch.inference_mode():
            embeddings = self._model(**inputs)
        mask = inputs["attention_mask"].bool()
        return [
            np.ascontiguousarray(emb[m].to(torch.float32).cpu().numpy())
            for emb, m in zip(embeddings, mask)
        ]

    # --------------------------------------------------------------- provenance
    def provenance(self) -> dict[str, Any]:
        """What built the vectors, to store beside an index and compare on reopen."""
        fingerprint = folder_fingerprint(self.source)
        if fingerprint is None:  # a hub id: fingerprint the loaded weights instead
            fingerprint = self._weights_fingerprint()
        return {
            "name": self.name,
            "role": "late_interaction",
            "family": self.family,
            "architecture": self.spec.architecture,
            "source": self.source,
            "dimension": self.dimension,
            "pool_factor": self.pool_factor,
            "pooling": self.pooling if self.pool_factor > 1 else "none",
            "dtype": self.dtype or "float32",
            "weights_fingerprint": fingerprint,
            "versions": library_versions("colpali-engine", "transformers", "torch"),
        }

    def _weights_fingerprint(self) -> str:
        """sha256 over every loaded tensor's name, shape and first 64 values (cheap, content-sensitive)."""
        self.load()
        digest = hashlib.sha256()
        for name, param in self._model.state_dict().items():
            if param.is_meta:  # e.g. ColPali's unused lm_head: never loaded, no values
                continue
            digest.update(name.encode())
            digest.update(str(tuple(param.shape)).encode())
            digest.update(param.detach().flatten()[:64].to(self._torch.float32).cpu().numpy().tobytes())
        return digest.hexdigest()[:16]

    def __repr__(self) -> str:
        return (
            f"ColVisionEmbedder({self.source!r}, family={self.family!r}, pool_factor={self.pool_factor}, "
            f"device={self.device!r}, loaded={self.loaded})"
        )
