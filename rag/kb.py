"""The knowledge-base facade: open a folder, ingest files, search, ask, delete.

::

    from rag import KnowledgeBase
    with KnowledgeBase.open("kb", create=True) as kb:
        kb.ingest(["docs/"])
        answer = kb.ask("What does figure 2 show?")
        for c in answer.citations:
            print(c.source, c.page, c.bbox)

Layout of a knowledge-base folder: ``manifest.json`` (provenance), ``documents.sqlite``
(documents and their state; :mod:`rag._registry`), ``images/<doc_id>/`` (page images and crops), ``store/``
(the embedded Qdrant engine; absent with a server backend).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from rag._manifest import DocumentRecord, DocumentRegistry, Manifest
from rag.config import Config
from rag.errors import ConfigError, DocumentNotFoundError, KnowledgeBaseLockedError, KnowledgeBaseNotFoundError, QueryError
from rag.types import CORPORA, Answer, FileReport
from retrievers.pipeline import SearchResult, Searcher

__all__ = ["KnowledgeBase", "SearchResult", "check_question", "write_highlights"]

log = logging.getLogger("mmrag")

MANIFEST = "manifest.json"
DOCUMENTS = "documents.sqlite"
#: ingest settings of one run, not of the knowledge base: never recorded in the manifest
_RUN_ONLY = ("engine", "ray_address")


class KnowledgeBase:
    """One knowledge base in one folder. Cheap to construct; models load on first use."""

    def __init__(self, path: Path, config: Config, manifest: Manifest | None) -> None:
        self.path = path
        self.config = config
        self._manifest = manifest
        self._registry = DocumentRegistry(path / DOCUMENTS)
        self._store: Any = None
        self._embedders: Any = None
        self._specs: dict[str, Any] | None = None
        self._lock_fh: Any = None
        self._ask_parts: dict[str, Any] = {}
        self._mutex = threading.RLock()  # lazily built parts: one builder at a time
        self._writing = 0  # ingest/delete calls in progress in this process
        self._write_mutex = threading.Lock()

    # -- opening --------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, config: Config | None = None, *, create: bool = False) -> KnowledgeBase:
        """Open the knowledge base in ``path``; with ``create=True`` make it if missing.

        An existing knowledge base keeps the models it was built with: asking for
        others raises :class:`rag.errors.EmbedderMismatchError` when they load.
        """
        folder = Path(path).expanduser()
        manifest_path = folder / MANIFEST
        if manifest_path.exists():
            manifest = Manifest.read(manifest_path)
            if config is None:
                config = _config_from_manifest(manifest)
            if manifest.model_settings.get("tuned"):  # `mmrag tune`: the tuned model and its collections
                from rag._tune import tuned_view

                manifest, config = tuned_view(folder, manifest, config)
            return cls(folder, config, manifest)
        if not create:
            hint = "run `mmrag ingest FILES --kb DIR` first" if not folder.exists() else "this folder has no manifest.json"
            if (folder / ".write.lock").exists():
                hint += " yet; if an ingest is creating it, wait for that to finish"
            raise KnowledgeBaseNotFoundError(f"{folder}: no knowledge base here ({hint})")
        if folder.exists() and not folder.is_dir():
            raise KnowledgeBaseNotFoundError(f"{folder}: exists and is not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        return cls(folder, config or Config(), None)

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        self._unlock()
        self._registry.close()

    # -- lazily built parts -----------------------------------------------------------
    @property
    def embedders(self) -> Any:
        with self._mutex:
            return self._build_embedders()

    def _build_embedders(self) -> Any:
        if self._embedders is None:
            from rag._models import build_embedders
            from retrievers.embedders.sparse import BM25Encoder

            self._embedders = build_embedders(self.config.models)
            built = self._manifest.models.get("sparse") if self._manifest is not None else None
            sparse = self._embedders.sparse
            if built and isinstance(sparse, BM25Encoder):
                # a knowledge base keeps the BM25 scoring it was built with (a changed default
                # must not refuse it, nor mix two scorings in one index)
                self._embedders = replace(self._embedders, sparse=sparse.matching(built))
            wanted = self._embedders.provenance()
            if self._manifest is not None:
                self._manifest.check_models(wanted, self.path)
        return self._embedders

    def _open_store(self) -> tuple[Any, dict[str, Any]]:
        with self._mutex:
            return self._build_store()

    def _build_store(self) -> tuple[Any, dict[str, Any]]:
        if self._store is None:
            from retrievers.corpora import collection_specs
            from retrievers.store import open_store

            specs = collection_specs(self.embedders, self.config.store.collection_prefix)
            built_as = self._manifest.store.get("tenant") if self._manifest is not None else self.config.store.tenant
            if built_as != self.config.store.tenant:
                raise ConfigError(
                    f"{self.path}: this knowledge base was built as tenant {built_as!r}, the config asks for "
                    f"{self.config.store.tenant!r}; its documents are stored under the first: "
                    f"open it with store.tenant = {built_as!r}"
                )
            store = open_store(self.config.store, self.path)
            for spec in specs.values():
                store.ensure_collection(spec)
            self._store, self._specs = store, specs
            if self._manifest is None:
                self._manifest = Manifest(
                    models=self.embedders.provenance(),
                    collections={c: [asdict(v) for v in s.vectors] for c, s in specs.items()},
                    ingest={k: v for k, v in asdict(replace(self.config.ingest, password=None)).items() if k not in _RUN_ONLY},
                    store={k: v for k, v in asdict(self.config.store).items() if k != "api_key"},
                    model_settings=asdict(self.config.models),
                )
                self._manifest.write(self.path / MANIFEST)
        assert self._specs is not None
        return self._store, self._specs

    def _lock(self) -> None:
        if self._lock_fh is not None:
            return
        fh = open(self.path / ".write.lock", "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            fh.close()
            from rag._lockfile import lock_holder

            raise KnowledgeBaseLockedError(
                f"{self.path}: another process is writing to this knowledge base ({lock_holder(self.path / '.write.lock')}); "
                "wait for it to finish "
                "(one writer at a time; searches from other threads of the writing process are fine)"
            ) from exc
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._lock_fh = fh
        self._registry.reload()  # another process may have written since this object was made

    def _unlock(self) -> None:
        if self._lock_fh is not None:
            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None

    def _indexer(self) -> Any:
        from rag._indexer import Indexer

        store, specs = self._open_store()
        return Indexer(store, specs, self.embedders, self._registry, self.path / "images", self.config.ingest)

    # -- writing ------------------------------------------------------------------------
    def ingest(
        self,
        paths: str | Path | Iterable[str | Path],
        *,
        progress: bool | None = None,
        on_report: Callable[[FileReport], None] | None = None,
        page_ranges: Mapping[str, tuple[int, int]] | None = None,
        on_page: Callable[[Path, int, int], None] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> list[FileReport]:
        """Index files and folders (folders recurse; one path or several). Never raises for one bad file: each
        file gets a :class:`FileReport` (indexed / unchanged / failed + reason), and so does
        each entry a folder walk skips (``skipped`` + ``reason``: not a supported format,
        hidden, this knowledge base's own folder, ... see :func:`ingest.scan_paths`); the
        skipped come first, and go to ``on_report`` before any file is read.

        ``page_ranges`` restricts files (by name or stem) to physical pages ``(first, last)``;
        page numbers stay physical. ``on_page(path, pages_read, pages_total)`` follows each file
        page by page. ``progress``: one bar for the batch (files, pages of the files being read,
        their names); ``None`` shows it when the ``mmrag.index`` logger is at INFO or below.

        ``metadata``: the user's metadata of these files (``{"team": "finance", "year": 2025}``,
        :mod:`rag.metadata` says the rules), kept in each document's record and every point, and
        filtered on with ``search(where=...)``. A value of another type than its key already holds
        here raises :class:`rag.errors.ConfigError` before anything is read. A file indexed before
        with other metadata is indexed again to carry the new; without ``metadata`` a file keeps
        what it had (a changed file too)."""
        from ingest import scan_paths
        from rag.metadata import check_metadata, check_types, key_types

        wanted = check_metadata(metadata)
        with self._writer() as indexer:
            # checked against the registry as it is under the write lock
            indexer.metadata = check_types(wanted, key_types(r.metadata for r in self._registry.complete()))
            # one path given as a string is one path, not its characters ("docs" is not "d", "o", ...;
            # "/srv/docs" would otherwise walk "/")
            given = [paths] if isinstance(paths, (str, Path)) else paths
            scan = scan_paths([Path(p) for p in given], exclude={self.path: "the knowledge base's own folder"})
            if on_report is not None:
                for skipped in scan.skipped:
                    on_report(skipped)
            started = time.perf_counter()
            engine: Any = indexer
            if self.config.ingest.engine == "ray":  # the same knowledge base, read and embedded on Ray Data
                from rag._ray_ingest import RayEngine

                engine = RayEngine(indexer, self.config, self.path)
            reports = engine.ingest(scan.files, progress=progress, on_report=on_report, page_ranges=page_ranges, on_page=on_page)
            failed = sum(1 for r in reports if not r.ok)
            log.info(
                "ingest: %d files, %d skipped, %d failed, %.1f s",
                len(reports), len(scan.skipped), failed, time.perf_counter() - started,
            )
            return [*scan.skipped, *reports]

    def delete(self, doc: str) -> list[DocumentRecord]:
        """Remove documents by doc id (or an 8+ character prefix), file name or path."""
        matches = self._registry.find(doc)  # before recovery: a delete killed part-way is still found
        if not matches:
            raise DocumentNotFoundError(
                f"{self.path}: no document matches {doc!r} (give a doc id, file name or path; see `mmrag info`)"
            )
        with self._writer() as indexer:
            for record in matches:
                indexer.delete(record.doc_id)
            return matches

    def set_metadata(self, doc: str, metadata: Mapping[str, Any]) -> list[DocumentRecord]:
        """Replace the metadata of documents (doc id or an 8+ character prefix, file name or path)
        without embedding anything again: every point's ``meta`` is rewritten in the store, then the
        registry record. ``{}`` clears it. The types are checked against the other documents' as at
        ingest. A run killed part-way leaves the points ahead of the record: run it again."""
        from rag.metadata import check_metadata, check_types, key_types
        from retrievers.base import Filter
        from retrievers.payloads import meta_payload

        wanted = check_metadata(metadata)
        matches = self._registry.find(doc)
        if not matches:
            raise DocumentNotFoundError(
                f"{self.path}: no document matches {doc!r} (give a doc id, file name or path; see `mmrag documents`)"
            )
        with self._writer():
            ids = {r.doc_id for r in matches}
            values = check_types(wanted, key_types(r.metadata for r in self._registry.complete() if r.doc_id not in ids))
            store, specs = self._open_store()
            updated = []
            for record in matches:
                current = self._registry.get(record.doc_id)
                if current is None or current.status != "complete":  # rolled back by the writer's recovery
                    continue
                for spec in specs.values():
                    store.set_payload(spec.name, Filter(doc_ids=(current.doc_id,)), meta_payload(values))
                store.flush()  # on disk before the record says so
                current = replace(current, metadata=dict(values))
                self._registry.put(current)
                updated.append(current)
            log.info("metadata of %d documents set to %s", len(updated), values)
            return updated

    @contextlib.contextmanager
    def _writer(self) -> Iterator[Any]:
        """The write lock (one writing thread here, one writing process in all), and an
        indexer that has rolled back whatever a killed writer left behind."""
        with self._write_mutex:
            self._lock()
            self._writing += 1
            try:
                indexer = self._indexer()
                indexer.recover()
                yield indexer
            finally:
                self._writing -= 1
                self._unlock()

    def tune(
        self,
        *,
        minutes: float = 5.0,
        batch_size: int = 16,
        epochs: int = 1,
        learning_rate: float = 2e-5,
        sentences: bool = True,
        progress: bool | None = None,
    ) -> Any:
        """Adapt the text model to this knowledge base (opt-in; :mod:`rag._tune`): fine-tune a copy
        on pairs its own documents give (heading -> section, caption -> figure text, contents or
        index entry -> the page it points to, title -> first page, sentence -> its paragraph) for
        at most ``minutes`` on CPU, then embed every dense text vector again with it and switch
        (queries then use the tuned model). Needs torch and sentence-transformers. A run stopped
        before the switch leaves the knowledge base as it was. Returns a :class:`rag._tune.TuneReport`."""
        from rag._tune import tune_knowledge_base

        with self._writer():
            return tune_knowledge_base(
                self, minutes=minutes, batch_size=batch_size, epochs=epochs, learning_rate=learning_rate,
                sentences=sentences, progress=progress,
            )

    def _switch(self, manifest: Manifest) -> None:
        """Use ``manifest`` (just written by ``tune``) from now on: models, collections, searchers."""
        from rag._tune import tuned_view

        with self._mutex:
            built = _config_from_manifest(manifest)
            config = replace(self.config, models=built.models, store=replace(self.config.store, collection_prefix=built.store.collection_prefix))
            self._manifest, self.config = tuned_view(self.path, manifest, config)
            if self._store is not None:
                self._store.close()
            self._store, self._specs, self._embedders, self._ask_parts = None, None, None, {}

    # -- reading ------------------------------------------------------------------------
    def documents(self, where: Mapping[str, Any] | None = None) -> list[DocumentRecord]:
        """The documents held; ``where``: only those whose metadata matches (see :meth:`search`)."""
        docs = self._registry.complete()
        if where is None:
            return docs
        from rag.metadata import check_where, coerce_where, key_types, matches

        wanted = coerce_where(check_where(where), key_types(r.metadata for r in docs))
        return [r for r in docs if matches(r.metadata, wanted)]

    def info(self) -> dict[str, Any]:
        store, specs = self._open_store()
        docs = self._registry.complete()
        models = {role: p.get("name") for role, p in (self._manifest.models if self._manifest else {}).items()}
        tuned = self._manifest.model_settings.get("tuned") if self._manifest else None
        if tuned:  # its folder inside the knowledge base, not a path of this machine
            models["text"] = tuned["folder"]
        return {
            "path": str(self.path),
            "documents": len(docs),
            "pages": sum(d.pages for d in docs),
            "pending": [d.name for d in self._registry.pending()],
            "corpora": {c: {"points": store.count(specs[c].name), "collection": specs[c].name} for c in CORPORA},
            "models": models,
            "tuned": tuned,
            "store": self.config.store.backend,
            "tenant": self.config.store.tenant,
            "metadata_keys": self.metadata_keys(),
            "ingest": self._ingest_summary(),
        }

    def _ingest_summary(self) -> dict[str, Any]:
        """How this knowledge base's documents were read: the profile and what it decided,
        so a knowledge base built ``fast`` says what it lacks (no figure OCR, no table records)."""
        ing = self.config.ingest
        return {
            "profile": ing.profile, "ocr": ing.ocr, "figure_ocr": ing.ocr_figures and ing.ocr != "never",
            "tables": ing.find_tables, "table_cues": ing.table_cues, "dpi": ing.dpi, "chunk_chars": ing.chunk_chars,
            "chunk_overlap_chars": ing.chunk_overlap_chars,
        }

    def metadata_keys(self) -> dict[str, str]:
        """The metadata keys of the documents held and the type each holds (``{"team": "string",
        "year": "integer"}``): what ``where`` filters can name."""
        from rag.metadata import key_types

        return dict(sorted(key_types(r.metadata for r in self._registry.complete()).items()))

    def _searcher(self, router: str | None, reranker: str | None) -> Searcher:
        from rag._models import build_reranker_for, build_router_for
        from retrievers.thesaurus import shared as shared_thesaurus

        store, specs = self._open_store()
        router_kind = self.config.ask.router if router is None else router
        reranker_kind = self.config.ask.reranker if reranker is None else reranker
        key = f"{router_kind}|{reranker_kind}"
        with self._mutex:
            if key not in self._ask_parts:
                self._ask_parts[key] = Searcher(
                    store,
                    specs,
                    self.embedders,
                    build_router_for(router_kind, self.embedders, self.config),
                    build_reranker_for(reranker_kind, self.embedders, self.config),
                    fusion=self.config.ask.fusion,
                    requery=self.config.ask.requery,
                    documents=self._document_index if self.config.ask.documents else None,
                    navigation=self._navigation_pages,
                    points=self._point_cache,
                    thesaurus=shared_thesaurus if self.config.ask.thesaurus else None,
                    sentences=self.config.ask.sentences,
                )
            return self._ask_parts[key]

    def search(
        self,
        question: str | None = None,
        *,
        top_k: int | None = None,
        router: str | None = None,
        reranker: str | None = None,
        documents: Sequence[str] | None = None,
        pages: tuple[int, int] | None = None,
        image: str | Path | None = None,
        history: Sequence[Any] | None = None,
        where: Mapping[str, Any] | None = None,
    ) -> SearchResult:
        """Page-level hits for a question, best first, with the route taken and why.

        ``where``: only documents whose metadata matches (``{"team": "finance", "year": [2024, 2025]}``:
        keys ANDed, a list is any of its values; :mod:`rag.metadata`), applied inside the vector
        search with the ``documents`` and ``pages`` filters. A key no document has raises
        :class:`rag.errors.QueryError` naming the keys there are.

        ``history``: the earlier turns of a conversation, oldest first (:class:`rag.conversation.Turn`
        or ``{"question", "answer"}`` objects); a follow-up that refers back to them is searched
        for rewritten with the earlier turn's subject (:mod:`rag.conversation`; at most
        :data:`rag.conversation.MAX_TURNS` turns are used), shown as ``rewritten`` and in the
        route's reason; the result's ``question`` stays the question as asked.

        ``image``: search by an example image instead (pages whose figures look like it), through
        the image vectors of the knowledge base's image model; with a ``question`` too, a composed
        text+image query (VLM embedders such as gme-qwen2-vl-2b).
        """
        from retrievers.base import Filter

        if image is None or question:
            q = check_question(question or "", self.config.ask.max_question_chars)
        else:
            q = None
        k = self.config.ask.top_k if top_k is None else top_k
        # Only complete documents are visible: filtered in the store while anything is pending
        # or being written, and the hits checked again afterwards (a writer may start between
        # the two). The registry is asked by index: a search costs the same with 100k documents.
        pending = {d.doc_id for d in self._registry.pending()}
        visible = self._registry.complete_ids() if pending or self._writing else None
        equals = self._where(where)
        flt = None
        if documents is not None or pages is not None or equals:
            ids = None
            if documents is not None:
                ids = tuple(r.doc_id for d in documents for r in self._registry.find(d))
            flt = Filter(doc_ids=ids, page_range=pages, equals=equals)
        if image is not None:
            result = self._searcher(router, reranker).search_image(Path(image).expanduser(), k, flt, visible, text=q)
        else:
            assert q is not None
            rewrite = self._rewrite(q, history, router)
            searched = q if rewrite is None else check_question(rewrite.rewritten, self.config.ask.max_question_chars)
            result = self._searcher(router, reranker).search(searched, k, flt, visible)
            if rewrite is not None:
                route = replace(result.route, reason=f"{result.route.reason}; follow-up ({rewrite.reason}), searched for: {searched}")
                result = replace(result, question=q, rewritten=searched, route=route)
        shown = set(self._registry.complete_ids(among=[h.doc_id for h in result.hits])) - pending
        if any(h.doc_id not in shown for h in result.hits):
            result = replace(result, hits=tuple(h for h in result.hits if h.doc_id in shown))
        return result

    def _where(self, where: Mapping[str, Any] | None) -> dict[str, Any]:
        """A ``where`` filter as payload conditions (``{"meta.team": "finance"}``), its values in
        the types their keys hold."""
        from rag.metadata import check_where, coerce_where
        from retrievers.payloads import meta_key

        wanted = check_where(where)
        if not wanted:
            return {}
        typed = coerce_where(wanted, self.metadata_keys())
        return {meta_key(k): v for k, v in typed.items()}

    def ask(
        self,
        question: str,
        *,
        top_k: int | None = None,
        router: str | None = None,
        reranker: str | None = None,
        generator: str | None = None,
        on_token: Callable[[str], None] | None = None,
        abstain: bool | None = None,
        history: Sequence[Any] | None = None,
        where: Mapping[str, Any] | None = None,
    ) -> Answer:
        """Answer a question from the knowledge base, with citations to page and box: search,
        generate from the hits (given the question's quoted phrases), narrow whole-page citations
        to the passage cited, then judge whether the evidence answers at all
        (:mod:`generators.abstention`; ``abstain`` overrides ``config.ask.abstain``): when it does
        not, the answer says so (``answered=False``, no citations; the hits are the closest pages).
        Tokens already sent to ``on_token`` are those of the generated text, before the judgement.

        ``history``: the conversation so far (see :meth:`search`). A follow-up is searched for
        rewritten with the earlier turn's subject; the generator and the judge get the question as
        asked (``Answer.question``), and ``Answer.rewritten`` shows what was searched for. ``where``
        restricts the search to documents whose metadata matches (see :meth:`search`)."""
        from generators.abstention import AbstentionJudge
        from generators.matching import narrow_page_citations
        from retrievers.page_records import page_passages

        result = self.search(question, top_k=top_k, router=router, reranker=reranker, history=history, where=where)
        # the rewrite found the pages; the answer, and the judgement of it, are to the question as
        # asked (the subject words added would otherwise pass for evidence of an answer)
        asked = result.question
        t0 = time.perf_counter()
        answer = self._generator(generator).generate(asked, result.hits, on_token=on_token, phrases=result.phrases)
        timings = {**result.timings, **answer.timings, "generate": time.perf_counter() - t0}
        answer = replace(answer, question=result.question, rewritten=result.rewritten, thesaurus=result.thesaurus, route=result.route, hits=result.hits, timings=timings)
        store, specs = self._open_store()
        answer = narrow_page_citations(answer, lambda doc_id, page: page_passages(store, specs, doc_id, page))
        if not (self.config.ask.abstain if abstain is None else abstain):
            return answer
        ask = self.config.ask
        t1 = time.perf_counter()
        judge = AbstentionJudge(
            self.embedders.text,
            min_similarity=ask.abstain_min_similarity,
            min_coverage=ask.abstain_min_coverage,
            term_stats=self._term_stats(store, specs),
            rare_share=ask.abstain_rare_share,
            names=self._document_names({h.doc_id for h in answer.hits}),
        )
        judged = judge.apply(asked, answer)
        return replace(judged, timings={**judged.timings, "abstain": time.perf_counter() - t1})

    def _document_names(self, doc_ids: Iterable[str]) -> dict[str, str]:
        """Doc id -> the title and author its file's metadata gives (what a reader may call it)."""
        records = (self._registry.get(d) for d in doc_ids)
        return {r.doc_id: " ".join(n for n in (r.title, r.author) if n) for r in records if r is not None and (r.title or r.author)}

    def _generator(self, generator: str | None) -> Any:
        """The generator ``generator`` (default: the configured one), built once."""
        from rag._models import build_generator_for

        kind = self.config.ask.generator if generator is None else generator
        key = f"generator|{kind}"
        with self._mutex:
            if key not in self._ask_parts:
                self._ask_parts[key] = build_generator_for(kind, self.embedders, self.config)
            return self._ask_parts[key]

    def _rewrite(self, question: str, history: Sequence[Any] | None, router: str | None) -> Any:
        """The follow-up ``question`` rewritten with ``history`` (:mod:`rag.conversation`), or ``None``:
        by the configured generator's model when there is one (a generator other than the
        extractive one, or ``router = "llm"``), falling back to the rule; by the rule otherwise."""
        if history is None:  # a question on its own: the conversation module is not needed
            return None
        from rag.conversation import parse_history, rewrite_followup, rewrite_with_model

        turns = parse_history(history)
        if not turns:
            return None
        ask = self.config.ask
        if ask.generator != "extractive" or (ask.router if router is None else router) == "llm":
            rewrite = rewrite_with_model(question, turns, self._generator(None))
        else:
            rewrite = rewrite_followup(question, turns)
        if rewrite is not None:
            log.info("follow-up %r searched as %r (%s, %s)", question[:80], rewrite.rewritten[:120], rewrite.method, rewrite.reason)
        return rewrite

    def _term_stats(self, store: Any, specs: dict[str, Any]) -> Any:
        """The corpus term statistics (:mod:`rag._term_stats`), kept while the documents are the
        same: the registry's generation says so without reading every record."""
        from rag._term_stats import fingerprint, load_term_stats

        generation = self._registry.generation()
        with self._mutex:
            cached = self._ask_parts.get("term_stats")
            if cached is not None and cached[0] == generation:
                return cached[2]
        records = self._registry.all()
        key = fingerprint(records)
        with self._mutex:
            cached = self._ask_parts.get("term_stats")
            if cached is None or cached[1] != key:
                cached = (generation, key, load_term_stats(self.path, records, store, specs))
            self._ask_parts["term_stats"] = (generation, key, cached[2])
            return cached[2]

    def _document_index(self) -> Any:
        """The document stage's profiles (:class:`retrievers.documents.DocumentIndex`), read from the
        store once and kept while the registry's generation stays the same."""
        from retrievers.documents import DocumentIndex

        def build(store: Any, specs: dict[str, Any]) -> Any:
            t0 = time.perf_counter()
            titles = {r.doc_id: r.title for r in self._registry.complete() if r.title}
            index = DocumentIndex.build(store, specs, self.embedders.sparse, titles)
            log.info("document stage: %d documents profiled in %.2f s", len(index.profiles), time.perf_counter() - t0)
            return index

        return self._per_generation("documents", build)

    def _navigation_pages(self) -> Any:
        """The records of the navigation pages (:func:`retrievers.page_records.navigation_pages`), read
        from the store once and kept while the registry's generation stays the same: a question
        then reads only the pages their matching entries point to."""
        from retrievers.page_records import navigation_pages

        return self._per_generation("navigation", navigation_pages)

    def _point_cache(self) -> Any:
        """The payloads of the points searches kept (:class:`retrievers.point_cache.PointCache`),
        a new cache for each generation of the registry: what a write changed is read again."""
        from retrievers.point_cache import PointCache

        return self._per_generation("points", lambda store, specs: PointCache())

    def _per_generation(self, name: str, build: Callable[[Any, dict[str, Any]], Any]) -> Any:
        """``build(store, specs)``, kept under ``name`` while the registry's generation (which every
        write by any process changes) stays the same."""
        generation = self._registry.generation()
        with self._mutex:
            cached = self._ask_parts.get(name)
            if cached is not None and cached[0] == generation:
                return cached[1]
        store, specs = self._open_store()
        value = build(store, specs)
        with self._mutex:
            self._ask_parts[name] = (generation, value)
        return value

    def page_size(self, doc_id: str, page: int) -> tuple[float, float] | None:
        """A page's width and height in PDF points (pixels for an image file), as indexed;
        ``None`` when the knowledge base holds no such page."""
        from retrievers.page_records import page_size

        store, specs = self._open_store()
        return page_size(store, specs, doc_id, page)

    def examples(self, limit: int = 4, scan: int = 2000) -> list[str]:
        """A few questions about the documents held, made from their figure and table captions
        and titles (:func:`rag.examples.example_questions`); reads at most ``scan`` figure points."""
        import itertools

        from rag.examples import example_questions

        store, specs = self._open_store()
        figures = (p.payload for p in itertools.islice(store.scroll(specs["figures"].name), scan))
        return example_questions(self.documents(), figures, limit)


def check_question(question: str, max_chars: int) -> str:
    """``question`` stripped; :class:`QueryError` when it is not text, empty, longer than
    ``max_chars``, or holds a lone surrogate (bytes that were not UTF-8) or a NUL."""
    if question is not None and not isinstance(question, str):
        raise QueryError(f"the question must be text (str), got {type(question).__name__}")
    q = (question or "").strip()
    try:
        q.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise QueryError(
            f"the question holds a character that is not valid Unicode text at position {exc.start} "
            "(a lone surrogate: bytes that were not UTF-8); send it as UTF-8 text"
        ) from None
    if "\x00" in q:
        raise QueryError("the question holds a NUL character; send plain text")
    if not q:
        raise QueryError("the question is empty: ask something, e.g. mmrag ask \"what does figure 2 show?\"")
    if len(q) > max_chars:
        raise QueryError(f"the question is {len(q)} characters long; the limit is {max_chars} (ask.max_question_chars)")
    return q


def write_highlights(answer: Answer, folder: str | Path) -> list[Path]:
    """Write a PNG crop of each cited region with its box drawn; returns the paths."""
    from generators.highlights import write_highlights as _write
    from rag.types import Page

    pages = [
        Page(h.doc_id, h.page, h.page_width, h.page_height or 0.0, "", False, h.image_path)
        for h in answer.hits
        if h.page_width and h.image_path is not None
    ]
    return _write(answer, folder, pages=pages)


def _config_from_manifest(manifest: Manifest) -> Config:
    """Rebuild the models/ingest/store settings a knowledge base was built with."""
    from rag.config import IngestConfig, ModelsConfig, StoreConfig

    fields = ModelsConfig.__dataclass_fields__
    mc = ModelsConfig(**{k: v for k, v in manifest.model_settings.items() if k in fields})
    ingest = IngestConfig(**{k: v for k, v in manifest.ingest.items() if k in IngestConfig.__dataclass_fields__})
    store = StoreConfig(**{k: v for k, v in manifest.store.items() if k in StoreConfig.__dataclass_fields__})
    return Config(ingest=ingest, models=mc, store=store)
