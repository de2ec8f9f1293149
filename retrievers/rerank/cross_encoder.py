"""Cross-encoder reranking: a sequence-classification model reads (question, hit text)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import ConfigError, ModelError
from rag.lazy import require
from rag.types import Hit
from retrievers.embedders._batching import batched
from retrievers.rerank._base import check_top_k, hit_text, ranked

__all__ = ["CrossEncoderReranker", "POSITIVE_LOGIT"]

logger = logging.getLogger(__name__)

#: number of labels of the classification head -> which logit is the relevance score
POSITIVE_LOGIT: dict[int, int] = {1: 0, 2: 1}


class CrossEncoderReranker:
    """Rerank with ``AutoModelForSequenceClassification`` (e.g. ms-marco MiniLM, bge-reranker).

    ``model`` is a hub id or a local folder. The score of a hit is the relevance logit of
    (question, the hit's evidence text): the single logit of a one-label head, the
    positive-class logit of a two-label head.
    """

    name = "cross-encoder"

    def __init__(self, model: str, device: str = "cpu", batch_size: int = 16, max_length: int = 512) -> None:
        if batch_size < 1:
            raise ConfigError(f"cross-encoder batch_size must be >= 1, got {batch_size}")
        if max_length < 8:
            raise ConfigError(f"cross-encoder max_length must be >= 8, got {max_length}")
        self.source = str(model)
        self.device = device
        self.batch_size = int(batch_size)
        self.max_length = int(max_length)
        self._model: Any = None
        self._tokenizer: Any = None
        self._torch: Any = None
        self._positive = 0

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        """Read tokenizer and model; a second call does nothing."""
        if self._model is not None:
            return
        torch = require("torch", "vision", "cross-encoder reranking")
        transformers = require("transformers", "vision", "cross-encoder reranking")
        local = Path(self.source).is_dir()
        started = time.perf_counter()
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(self.source, local_files_only=local)
            model = transformers.AutoModelForSequenceClassification.from_pretrained(
                self.source, local_files_only=local
            )
        except (OSError, ValueError, KeyError) as exc:
            where = "local folder" if local else "hub id (is it downloaded? the hub may be unreachable)"
            raise ModelError(
                f"cannot load a sequence-classification model from {self.source!r} ({where}): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        labels = int(model.config.num_labels)
        if labels not in POSITIVE_LOGIT:
            raise ModelError(
                f"{self.source!r} has a {labels}-label head; a cross-encoder reranker needs 1 (a relevance logit) "
                f"or 2 (irrelevant/relevant) labels"
            )
        self._positive = POSITIVE_LOGIT[labels]
        # never feed more tokens than the model has positions for (a 512 default on a
        # 128-position model crashes inside the embeddings)
        positions = getattr(model.config, "max_position_embeddings", None)
        if positions and positions < self.max_length:
            logger.info("%s: max_length %d capped to the model's %d positions", self.source, self.max_length, positions)
            self.max_length = int(positions)
        self._torch = torch
        self._tokenizer = tokenizer
        self._model = model.to(self.device).eval()
        logger.info("loaded cross-encoder %s (%d labels) in %.2fs", self.source, labels, time.perf_counter() - started)

    def prepare(self, question: str, texts: Sequence[str]) -> Any:
        """Tokenised (question, text) pairs, padded, truncated to ``max_length``."""
        self.load()
        return self._tokenizer(
            [question] * len(texts),
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )

    def score_texts(self, question: str, texts: Sequence[str]) -> np.ndarray:
        """Relevance logits of ``question`` against each text, float32 ``(len(texts),)``."""
        if not texts:
            return np.zeros(0, dtype=np.float32)
        self.load()
        torch = self._torch
        out: list[np.ndarray] = []
        for batch in batched(list(texts), self.batch_size):
            inputs = self.prepare(question, batch).to(self.device)
            with torch.inference_mode():
                logits = self._model(**inputs).logits
            out.append(logits[:, self._positive].float().cpu().numpy())
        return np.concatenate(out).astype(np.float32)

    def scores(self, question: str, hits: Sequence[Hit]) -> np.ndarray:
        """Relevance logits of ``question`` against each hit's evidence text."""
        return self.score_texts(question, [hit_text(h) for h in hits])

    def rerank(self, question: str, hits: Sequence[Hit], top_k: int | None = None) -> list[Hit]:
        check_top_k(top_k)
        started = time.perf_counter()
        scores = self.scores(question, hits)
        logger.info("cross-encoder rerank of %d hits in %.2fs", len(hits), time.perf_counter() - started)
        return ranked(hits, scores.tolist(), top_k)

    def __repr__(self) -> str:
        return f"CrossEncoderReranker({self.source!r}, device={self.device!r})"
