"""One vector from a vision-language model (GME-Qwen2-VL, VLM2Vec style) for a text, an image,
or a text *and* an image, in one space: composed queries ("this chart but for 2023") work.

The checkpoint is an ordinary ``transformers`` image-text-to-text model (Qwen2-VL,
Qwen2.5-VL). An input is written into the family's prompt template with an instruction (one
for queries, one for documents), the language model runs (no LM head), and the final hidden
states are pooled: ``last`` takes the last non-padding token, ``mean`` averages the non-padding
tokens. Vectors are L2-normalised float32 of the language model's hidden size.

Three steps, kept apart: :meth:`VLMEmbedder.prompts` (inputs -> prompt strings),
:meth:`VLMEmbedder.hidden_states` (one forward pass), :data:`POOLINGS` (pure functions).
Families differ by data (:data:`VLM_EMBEDDERS`).

Prompts follow the published model cards (GME: system instruction + user turn ending in
``<|endoftext|>``; VLM2Vec: instruction + image placeholder; E5-V: "Summary above
sentence/image in one word", its composed-retrieval "Modify this image with ..."); they were exercised here on tiny
checkpoints of the real architectures only — real weights cannot be downloaded on the
machines this was built on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.vectors import l2_normalize
from retrievers.embedders._batching import batched, progress, wants_progress
from retrievers.embedders._hf import PretrainedEmbedder, check_settings, checked_dimension, load_pretrained
from retrievers.embedders._images import open_rgb
from retrievers.embedders._provenance import folder_fingerprint, library_versions

__all__ = ["VLMEmbedFamily", "VLM_EMBEDDERS", "POOLINGS", "last_token_pool", "mean_pool", "VLMEmbedder"]

logger = logging.getLogger(__name__)


def last_token_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``(batch, tokens, dim)`` -> the hidden state of each row's last attended token (left or right padding)."""
    hidden, mask = np.asarray(hidden), np.asarray(mask).astype(bool)
    if not mask.any(axis=1).all():
        raise ValueError("a row of the attention mask is all padding")
    last = mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1)
    return hidden[np.arange(hidden.shape[0]), last]


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``(batch, tokens, dim)`` -> the mean over each row's attended tokens."""
    hidden, m = np.asarray(hidden), np.asarray(mask).astype(np.float32)[..., None]
    return (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1.0)


#: pooling name -> f(hidden states, attention mask) -> one vector per input
POOLINGS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {"last": last_token_pool, "mean": mean_pool}


@dataclass(frozen=True)
class VLMEmbedFamily:
    """How one VLM-embedder family is prompted and pooled.

    ``template`` has ``{instruction}``, ``{image}`` (the image placeholder or nothing) and
    ``{text}``. ``query_instruction`` is used for text and composed queries,
    ``document_instruction`` for the indexed images.
    """

    family: str
    model_class: str
    template: str
    query_instruction: str
    document_instruction: str
    image_placeholder: str = "<|vision_start|><|image_pad|><|vision_end|>"
    pooling: str = "last"
    backbone: str = "Qwen2-VL"
    #: per input kind (``text``, ``image``, ``pair``) a template replacing ``template`` (E5-V words its
    #: prompt by modality rather than by query/document side)
    kind_templates: Mapping[str, str] = field(default_factory=dict)


_GME = (
    "<|im_start|>system\n{instruction}<|im_end|>\n<|im_start|>user\n{image}{text}<|im_end|>\n"
    "<|im_start|>assistant\n<|endoftext|>"
)

_E5V = "<|start_header_id|>user<|end_header_id|>\n\n{body}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n \n"

VLM_EMBEDDERS: dict[str, VLMEmbedFamily] = {
    f.family: f
    for f in (
        VLMEmbedFamily("gme-qwen2-vl", "Qwen2VLForConditionalGeneration", _GME,
                       "Find an image that matches the given text.", "Represent the user's input."),
        VLMEmbedFamily("gme-qwen2.5-vl", "Qwen2_5_VLForConditionalGeneration", _GME,
                       "Find an image that matches the given text.", "Represent the user's input.",
                       backbone="Qwen2.5-VL"),
        VLMEmbedFamily("vlm2vec-qwen2vl", "Qwen2VLForConditionalGeneration", "{image}{instruction}{text}",
                       "Find me an everyday image that matches the given caption: ",
                       "Represent the given image."),
        VLMEmbedFamily(
            "e5-v", "LlavaNextForConditionalGeneration", _E5V.format(body="{text}"), "", "",
            image_placeholder="<image>", backbone="LLaVA-NeXT (Llama-3-8B)",
            kind_templates={
                "text": _E5V.format(body="{text}\nSummary above sentence in one word: "),
                "image": _E5V.format(body="{image}\nSummary above image in one word: "),
                "pair": _E5V.format(body='{image}\nModify this image with "{text}", describe modified image in one word: '),
            },
        ),
    )
}


class VLMEmbedder(PretrainedEmbedder):
    """Text, image and text+image inputs into one vector space (implements
    ``retrievers.base.ImageEmbedder`` plus :meth:`embed_pairs` for composed queries).

    ``model``: hub id or folder saved with ``save_pretrained`` (model + processor).
    ``pooling`` overrides the family's (``"last"`` / ``"mean"``). ``max_pixels`` bounds the
    image size given to the processor (fewer visual tokens, faster on CPU).
    """

    def __init__(
        self,
        model: str,
        *,
        family: str,
        device: str = "cpu",
        batch_size: int = 4,
        show_progress: bool | None = None,
        pooling: str | None = None,
        dtype: str | None = None,
        max_pixels: int | None = None,
        dimension: int | None = None,
    ) -> None:
        self.spec = check_settings("VLMEmbedder", model, family, VLM_EMBEDDERS, batch_size, pooling, POOLINGS)
        self._setup(model, family, device, batch_size, show_progress, dtype, dimension)
        self.pooling = pooling or self.spec.pooling
        self.max_pixels = max_pixels

    def load(self) -> None:
        """Load model and processor once; :class:`ModelError` names the model and the reason."""
        if self._model is not None:
            return
        started = time.perf_counter()
        model, processor = load_pretrained(self.name, self.family, self.spec.model_class, "AutoProcessor", self.dtype)
        dim = checked_dimension(self.name, self._dimension, int(model.config.get_text_config().hidden_size))
        self._dimension = dim
        self._revision = folder_fingerprint(self.name) or getattr(model.config, "_commit_hash", None)
        self._model, self._processor = model.to(self.device).eval(), processor
        logger.info("loaded %s (%s, dim %d, %s pooling) in %.2fs", self.name, self.family, dim, self.pooling,
                    time.perf_counter() - started)

    # ------------------------------------------------------------------ prompts
    def prompts(self, texts: Sequence[str | None], with_image: Sequence[bool], side: str) -> list[str]:
        """The prompt strings for inputs (``side`` ``"query"`` or ``"document"``)."""
        if side not in ("query", "document"):
            raise ValueError(f"side must be query or document, got {side!r}")
        instruction = self.spec.query_instruction if side == "query" else self.spec.document_instruction
        out = []
        for text, img in zip(texts, with_image):
            kind = "pair" if img and text else ("image" if img else "text")
            template = self.spec.kind_templates.get(kind, self.spec.template)
            out.append(template.format(instruction=instruction, image=self.spec.image_placeholder if img else "",
                                       text=text or ""))
        return out

    # ------------------------------------------------------------------ forward
    def hidden_states(self, prompts: Sequence[str], images: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """One forward pass of the language model: final hidden states ``(n, tokens, dim)`` and the mask."""
        import torch

        self.load()
        options: dict[str, Any] = {"text": list(prompts), "padding": True, "return_tensors": "pt"}
        if images:
            options["images"] = list(images)
            if self.max_pixels is not None:
                options["images_kwargs"] = {"max_pixels": self.max_pixels}
        inputs = self._processor(**options).to(self.device)
        with torch.inference_mode():
            out = self._model.model(**inputs)
        return out.last_hidden_state.float().cpu().numpy(), inputs["attention_mask"].cpu().numpy()

    def _embed(self, items: list[tuple[str | None, Path | str | None]], side: str, what: str) -> np.ndarray:
        self.load()
        if not items:
            return np.zeros((0, self.dimension), dtype=np.float32)
        started = time.perf_counter()
        show = wants_progress(self.show_progress, logger)
        total = -(-len(items) // self.batch_size)
        chunks = []
        for batch in progress(batched(items, self.batch_size), show=show, total=total, desc=f"{self.family} {what}"):
            images = [open_rgb(p) for _, p in batch if p is not None]
            prompts = self.prompts([t for t, _ in batch], [p is not None for _, p in batch], side)
            hidden, mask = self.hidden_states(prompts, images)
            chunks.append(POOLINGS[self.pooling](hidden, mask))
        out = l2_normalize(np.concatenate(chunks, axis=0))
        logger.debug("embedded %d %s with %s in %.2fs", len(items), what, self.name, time.perf_counter() - started)
        return out

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Text queries -> ``(n, dimension)`` in the images' space (query instruction)."""
        if isinstance(texts, str):
            raise TypeError("embed_texts takes a sequence of strings, not one string")
        return self._embed([(t, None) for t in texts], "query", "texts")

    def embed_images(self, paths: Sequence[Path | str]) -> np.ndarray:
        """Images to index -> ``(n, dimension)`` (document instruction)."""
        return self._embed([(None, p) for p in paths], "document", "images")

    def embed_image_queries(self, paths: Sequence[Path | str]) -> np.ndarray:
        """Images used as queries -> ``(n, dimension)`` (query instruction, no text)."""
        return self._embed([(None, p) for p in paths], "query", "image queries")

    def embed_pairs(self, texts: Sequence[str], paths: Sequence[Path | str]) -> np.ndarray:
        """Composed queries: each text together with its image -> ``(n, dimension)``."""
        if len(texts) != len(paths):
            raise ValueError(f"embed_pairs needs as many texts as images, got {len(texts)} and {len(paths)}")
        return self._embed(list(zip(texts, paths)), "query", "text+image queries")

    def provenance(self) -> dict[str, Any]:
        """What a knowledge base must match to be queried with this embedder (loads the model)."""
        self.load()
        return {
            "name": self.name,
            "family": self.family,
            "kind": "vlm",
            "model_class": self.spec.model_class,
            "revision": self._revision,
            "dimension": self._dimension,
            "pooling": self.pooling,
            "dtype": self.dtype,
            "normalized": True,
            "query_instruction": self.spec.query_instruction,
            "document_instruction": self.spec.document_instruction,
            "versions": library_versions("transformers", "torch"),
        }

    def __repr__(self) -> str:
        return f"VLMEmbedder({self.name!r}, family={self.family!r}, pooling={self.pooling!r}, loaded={self.loaded})"
