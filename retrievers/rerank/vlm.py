"""VLM reranking (MonoQwen2-VL style): ask a vision-language model whether a page is relevant.

The model sees the page image and the question in its chat template; the relevance is
read from the next-token logits at the last position: ``logit(yes) - logit(no)``, or
the probability of ``yes`` against ``no``. A hit without a page image is judged from
its evidence text instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import ConfigError, ModelError
from rag.lazy import require
from rag.types import Hit
from retrievers.embedders._batching import batched
from retrievers.embedders._images import open_rgb
from retrievers.rerank._base import check_top_k, hit_text, page_image, ranked

__all__ = ["VLMReranker", "VLM_PROMPT", "VLM_PRESETS", "FAMILY_PRESETS", "SCORES", "vlm_reranker", "reranker_for_family"]

logger = logging.getLogger(__name__)

VLM_PROMPT = "Is this page relevant to the question? Answer yes or no.\nQuestion: {question}"


#: Published yes/no rerankers: the prompt and answer tokens they were trained with.
#: MonoQwen2-VL v0.1 is a LoRA adapter on Qwen2-VL-2B-Instruct: load it merged (or with peft installed).
VLM_PRESETS: dict[str, dict[str, str]] = {
    "default": {"yes_token": "yes", "no_token": "no", "prompt": VLM_PROMPT},
    "monoqwen2-vl": {
        "yes_token": "True",
        "no_token": "False",
        "prompt": "Assert the relevance of the previous image document to the following query, "
        "answer True or False. The query is: {question}",
    },
}

#: reranker model family (a row of ``retrievers.registry.FAMILIES``) -> its :data:`VLM_PRESETS` key
FAMILY_PRESETS: dict[str, str] = {"vlm-reranker": "default", "monoqwen2-vl": "monoqwen2-vl"}


def _logit_diff(yes: np.ndarray, no: np.ndarray) -> np.ndarray:
    return yes - no


def _yes_prob(yes: np.ndarray, no: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(no - yes))


#: score mode -> f(yes logits, no logits) -> relevance
SCORES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "logit_diff": _logit_diff,
    "yes_prob": _yes_prob,
}


class VLMReranker:
    """Rerank pages with an image-text-to-text model (Qwen2-VL, Qwen2.5-VL, ...).

    ``model`` is a hub id or local folder loadable with ``AutoModelForImageTextToText``
    and ``AutoProcessor``. ``yes_token``/``no_token`` must each be one token of its
    vocabulary (MonoQwen2-VL uses ``"True"``/``"False"``). ``prompt`` contains
    ``{question}``. ``score`` is a key of :data:`SCORES`.
    """

    name = "vlm"

    def __init__(
        self,
        model: str,
        device: str = "cpu",
        yes_token: str = "yes",
        no_token: str = "no",
        prompt: str = VLM_PROMPT,
        *,
        score: str = "logit_diff",
        batch_size: int = 2,
        max_text_chars: int = 2000,
    ) -> None:
        if "{question}" not in prompt:
            raise ConfigError("VLMReranker prompt must contain the {question} placeholder")
        try:
            prompt.format(question="?")
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                "VLMReranker prompt is a str.format template with one field, {question}; write literal braces "
                f"as {{{{ and }}}} ({type(exc).__name__}: {exc})"
            ) from exc
        if score not in SCORES:
            raise ConfigError(f"unknown VLM score {score!r}; known: {sorted(SCORES)}")
        if batch_size < 1:
            raise ConfigError(f"VLM reranker batch_size must be >= 1, got {batch_size}")
        if yes_token == no_token:
            raise ConfigError(f"yes_token and no_token must differ, both are {yes_token!r}")
        self.source = str(model)
        self.device = device
        self.yes_token = yes_token
        self.no_token = no_token
        self.prompt = prompt
        self.score_mode = score
        self.batch_size = int(batch_size)
        self.max_text_chars = int(max_text_chars)
        self._model: Any = None
        self._processor: Any = None
        self._torch: Any = None
        self._ids: tuple[int, int] = (-1, -1)

    @classmethod
    def from_preset(cls, preset: str, model: str, **options: Any) -> VLMReranker:
        """A reranker with the prompt and yes/no tokens of :data:`VLM_PRESETS` ``[preset]``."""
        if preset not in VLM_PRESETS:
            raise ConfigError(f"unknown VLM reranker preset {preset!r}; known: {', '.join(VLM_PRESETS)}")
        return cls(model, **{**VLM_PRESETS[preset], **options})

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def token_ids(self) -> tuple[int, int]:
        """Vocabulary ids of (yes_token, no_token)."""
        self.load()
        return self._ids

    def load(self) -> None:
        """Read processor and model, check the yes/no tokens; a second call does nothing."""
        if self._model is not None:
            return
        torch = require("torch", "vision", "VLM reranking")
        transformers = require("transformers", "vision", "VLM reranking")
        local = Path(self.source).is_dir()
        started = time.perf_counter()
        try:
            processor = transformers.AutoProcessor.from_pretrained(self.source, local_files_only=local)
            model = transformers.AutoModelForImageTextToText.from_pretrained(self.source, local_files_only=local)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            where = "local folder" if local else "hub id (is it downloaded? the hub may be unreachable)"
            raise ModelError(
                f"cannot load an image-text-to-text model from {self.source!r} ({where}): {type(exc).__name__}: {exc}"
            ) from exc
        if not getattr(processor, "chat_template", None):
            raise ModelError(f"{self.source!r} has no chat template; a VLM reranker needs the model's chat format")
        tokenizer = processor.tokenizer
        tokenizer.padding_side = "left"  # the last position is the answer position for every row
        self._ids = (self._token_id(tokenizer, self.yes_token), self._token_id(tokenizer, self.no_token))
        self._torch = torch
        self._processor = processor
        self._model = model.to(self.device).eval()
        logger.info("loaded VLM reranker %s in %.2fs", self.source, time.perf_counter() - started)

    def _token_id(self, tokenizer: Any, token: str) -> int:
        ids = tokenizer.encode(token, add_special_tokens=False)
        unk = getattr(tokenizer, "unk_token_id", None)
        if len(ids) != 1 or (unk is not None and ids[0] == unk):
            raise ModelError(
                f"{token!r} is not a single known token of {self.source!r} (encodes to {ids}); "
                "pass yes_token/no_token words that the model's vocabulary has as one token"
            )
        return int(ids[0])

    def messages(self, question: str, hit: Hit) -> tuple[list[dict[str, Any]], Path | None]:
        """The chat messages for one hit and the page image they refer to (if any)."""
        text = self.prompt.format(question=question)
        image = page_image(hit)
        if image is not None:
            content = [{"type": "image"}, {"type": "text", "text": text}]
        else:
            content = [{"type": "text", "text": f"{hit_text(hit, self.max_text_chars)}\n\n{text}"}]
        return [{"role": "user", "content": content}], image

    def prepare(self, question: str, hits: Sequence[Hit]) -> Any:
        """Processor inputs for ``hits`` (one row each, left-padded), images included."""
        self.load()
        texts, images = [], []
        for hit in hits:
            messages, image = self.messages(question, hit)
            texts.append(self._processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
            if image is not None:
                images.append(open_rgb(image))
        return self._processor(text=texts, images=images or None, padding=True, return_tensors="pt")

    def scores(self, question: str, hits: Sequence[Hit]) -> np.ndarray:
        """Relevance of each hit, float32 ``(len(hits),)``."""
        if not hits:
            return np.zeros(0, dtype=np.float32)
        self.load()
        torch = self._torch
        yes_id, no_id = self._ids
        out = []
        for batch in batched(list(hits), self.batch_size):
            inputs = self.prepare(question, batch).to(self.device)
            with torch.inference_mode():
                logits = self._model(**inputs, logits_to_keep=1).logits[:, -1, :].float().cpu().numpy()
            out.append(SCORES[self.score_mode](logits[:, yes_id], logits[:, no_id]))
        return np.concatenate(out).astype(np.float32)

    def rerank(self, question: str, hits: Sequence[Hit], top_k: int | None = None) -> list[Hit]:
        check_top_k(top_k)
        started = time.perf_counter()
        scores = self.scores(question, hits)
        logger.info("VLM rerank of %d hits in %.2fs", len(hits), time.perf_counter() - started)
        return ranked(hits, scores.tolist(), top_k)

    def __repr__(self) -> str:
        return f"VLMReranker({self.source!r}, device={self.device!r}, score={self.score_mode!r})"


def reranker_for_family(model: str, *, family: str, **options: Any) -> VLMReranker:
    """The model registry's loader for reranker families: a :class:`VLMReranker` with the
    family's prompt and yes/no tokens (:data:`FAMILY_PRESETS`); ``options`` override them."""
    if family not in FAMILY_PRESETS:
        raise ConfigError(f"unknown VLM reranker family {family!r}; known: {', '.join(FAMILY_PRESETS)}")
    return VLMReranker.from_preset(FAMILY_PRESETS[family], model, **options)


def vlm_reranker(model: str, *, preset: str | None = None, **options: Any) -> VLMReranker:
    """The ``vlm`` reranker kind (``build_reranker("vlm", model=...)``).

    A name or hub id registered as a reranker (``mmrag models``: ``monoqwen2-vl``...) loads its
    hub id with its family's preset; a registered model of another role or an unsupported family
    raises :class:`rag.errors.ModelError` saying why. Any other hub id or folder loads as given,
    with ``preset`` (``"default"`` when not given). An explicit ``preset`` always wins.
    """
    from retrievers import registry  # the model catalogue; imported on use, never at module level

    if registry.find(model) is not None:
        resolved = registry.resolve(model, "reranker")
        if preset is None:
            return registry.build(model, "reranker", **options)
        model = resolved.source
    return VLMReranker.from_preset("default" if preset is None else preset, model, **options)
