"""Rerankers: rescore page-level hits for a question, best first.

Every reranker returns new :class:`rag.types.Hit` records (same evidence, new score),
sorted best first with ties in the input order, cut to ``top_k`` when given.

- :class:`NoReranker`: keeps the retrieval order.
- :class:`LateInteractionReranker`: MaxSim of the query against page multivectors
  (stored ones, or encoded from the page image) with a ColPali-family embedder.
- :class:`CrossEncoderReranker`: a sequence-classification model reads (question, text).
- :class:`VLMReranker`: a vision-language model answers yes/no for (page image, question).

:func:`build_reranker` builds one by name from an explicit table.
"""

from retrievers.rerank._base import NoReranker, Reranker
from retrievers.rerank._registry import RERANKERS, build_reranker
from retrievers.rerank.cross_encoder import CrossEncoderReranker
from retrievers.rerank.late_interaction import LateInteractionReranker
from retrievers.rerank.vlm import SCORES, VLM_PRESETS, VLM_PROMPT, VLMReranker

__all__ = [
    "Reranker",
    "NoReranker",
    "LateInteractionReranker",
    "CrossEncoderReranker",
    "VLMReranker",
    "VLM_PROMPT",
    "VLM_PRESETS",
    "SCORES",
    "RERANKERS",
    "build_reranker",
]
