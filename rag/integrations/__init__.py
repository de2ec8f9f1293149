"""Adapters that let other frameworks use an mmrag knowledge base.

``rag.integrations.llama_index``: a llama-index retriever and query engine
(``pip install 'mmrag[llama]'``). Importing this package imports no framework.
"""

__all__: list[str] = []
