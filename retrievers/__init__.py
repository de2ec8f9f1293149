"""Retrieval: questions and pages -> vectors -> Qdrant -> page-level hits, best first.

Subpackages (each with its own ``__all__``):

- :mod:`retrievers.embedders` — text dense, sparse (BM25), image single-vector (CLIP/SigLIP)
  and late-interaction (ColPali family) embedders; weights load in ``load()``;
- :mod:`retrievers.store` — the Qdrant facade: embedded (``qdrant-edge-py``) or a server by URL;
- :mod:`retrievers.router` — which corpora a question goes to, with what weight, and why;
- :mod:`retrievers.rerank` — rescore page hits (late interaction, cross-encoder, VLM).

Modules: :mod:`retrievers.base` (the roles as protocols, and the store's records),
:mod:`retrievers.scoring` (MaxSim, RRF: pure functions), :mod:`retrievers.corpora` (pages ->
points per corpus), :mod:`retrievers.search` (query side: hybrid search and fusion) and
:mod:`retrievers.registry` (model names -> loaders).

Importing this package imports nothing: ``import retrievers.store`` (and so on) loads what it needs.
"""

__all__ = ["embedders", "rerank", "router", "store"]
