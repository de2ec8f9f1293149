"""``mmrag tune``: adapt the text model to one knowledge base, on CPU, from pairs its corpus gives.

Opt-in. No question of any evaluation set is used: the pairs come from the documents' own
structure, read back from the stored payloads (:func:`corpus_pairs`):

- ``heading``: a section heading -> the first chunk of its section;
- ``caption``: a figure's or table's caption title -> its body (table cells, OCR text), or the
  paragraph nearest to it on its page when it has none;
- ``navigation``: a table-of-contents or index entry -> the passage of the page it points to
  (the entry's words decide which chunk of that page);
- ``title``: a document's title -> its first page;
- ``sentence``: inverse cloze, a sentence -> the rest of its chunk (at most as many as all the
  structural pairs together, so structure leads).

A tenth of the pairs (chosen by a hash of the anchor, so the same on every run) is held out;
the report gives, on those, how often an anchor's nearest passage is its own, before and after.

Then (:func:`tune_knowledge_base`): a copy of the model is trained with in-batch negatives
(:func:`retrievers.embedders.tune.fine_tune`) within ``minutes``, saved in
``KB/models/text-tuned-N/``, exported and quantised through the same ONNX path as the bundled
model, and every dense text vector is written again into *new* collections
(:func:`retrievers.reembed.reembed`). Only then does the manifest switch, in one atomic write,
to the tuned model and the new collections; the old collections and the previous tuned model
are removed after. A run stopped or failing before the switch leaves the knowledge base as
it was (its partial collections and folder are removed, or dropped by the next run).

The manifest keeps a ``tuned`` record in ``model_settings`` (model folder relative to the
knowledge base, base model, collection prefixes, pairs, minutes, held-out scores);
:func:`tuned_view` applies it when a knowledge base is opened (wherever the folder has moved).
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.config import Config
from rag.errors import ConfigError

if TYPE_CHECKING:
    from rag._manifest import DocumentRecord, Manifest
    from rag.kb import KnowledgeBase
    from retrievers.embedders.tune import TrainingPair

__all__ = ["TuneReport", "corpus_pairs", "split_pairs", "tune_knowledge_base", "tuned_view", "TUNED_KEY", "MODELS_DIR"]

log = logging.getLogger("mmrag.tune")

#: key of the tuning record in the manifest's ``model_settings``
TUNED_KEY = "tuned"
#: where tuned models live inside a knowledge base
MODELS_DIR = "models"
#: longest passage kept as a positive (characters; the model reads about 256 tokens anyway)
MAX_PASSAGE = 1200
#: share of the pairs held out of training
HOLDOUT = 0.1

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]+")
_LEADER = re.compile(r"(\s*[.·…_]\s*){2,}|\s+\d+(\s*[,–-]\s*\d+)*\s*$")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


@dataclass(frozen=True)
class TuneReport:
    """What ``mmrag tune`` did and what it cost."""

    model: str
    base_model: str
    pairs: dict[str, int]
    held_out: int
    steps: int
    epochs: float
    stopped_by: str
    train_seconds: float
    seconds: float
    cpu_seconds: float
    held_out_recall_before: float
    held_out_recall_after: float
    points: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- pairs from the corpus ------------------------------------------------------------------
def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text) if len(w) > 2}


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_PASSAGE else text[:MAX_PASSAGE].rsplit(" ", 1)[0]


def _entry_text(text: str) -> str:
    """A contents or index line without its dot leaders and page numbers."""
    return " ".join(_LEADER.sub(" ", text).split()).strip(" .,;:")


def _pair(anchor: str, positive: str, kind: str, group: str) -> TrainingPair | None:
    from retrievers.embedders.tune import TrainingPair

    anchor, positive = " ".join(anchor.split()), _clip(positive)
    if len(_words(anchor)) < 1 or len(anchor) < 4 or len(positive) < 40 or anchor.lower() == positive.lower():
        return None
    return TrainingPair(anchor, positive, kind, group)


def _key(p: Mapping[str, Any]) -> tuple[str, int]:
    return str(p.get("doc_id", "")), int(p.get("page") or 0)


def _nearest_chunk(chunks: Sequence[Mapping[str, Any]], words: set[str]) -> Mapping[str, Any] | None:
    """The chunk sharing most of ``words`` (the first on ties; the first chunk when none shares any)."""
    if not chunks:
        return None
    return max(chunks, key=lambda c: (len(words & _words(str(c.get("text") or ""))), -int(c.get("index") or 0)))


def corpus_pairs(
    chunks: Iterable[Mapping[str, Any]],
    figures: Iterable[Mapping[str, Any]],
    pages: Iterable[Mapping[str, Any]],
    documents: Iterable[DocumentRecord] = (),
    sentences: bool = True,
) -> list[TrainingPair]:
    """Training pairs from stored payloads (chunks, figures, pages) and the document records."""
    from retrievers.corpora import caption_title

    chunk_list = sorted(chunks, key=lambda c: (*_key(c), int(c.get("index") or 0)))
    by_page: dict[tuple[str, int], list[Mapping[str, Any]]] = defaultdict(list)
    by_section: dict[tuple[str, tuple[str, ...]], list[Mapping[str, Any]]] = defaultdict(list)
    for c in chunk_list:
        by_page[_key(c)].append(c)
        section = tuple(str(t) for t in c.get("section") or ())
        if section:
            by_section[(str(c.get("doc_id", "")), section)].append(c)
    page_list = list(pages)
    page_text = {_key(p): str(p.get("text") or "") for p in page_list}
    out: list[TrainingPair | None] = []

    for (doc, section), members in by_section.items():
        heading, body = section[-1], " ".join(str(members[0].get("text") or "").split())
        if body.startswith(" ".join(heading.split())):  # the chunk opens with its heading: the rest is the passage
            body = body[len(" ".join(heading.split())) :]
        out.append(_pair(heading, body, "heading", doc))

    class _Caption:
        def __init__(self, caption: str | None) -> None:
            self.caption = caption

    for f in figures:
        title = caption_title(_Caption(f.get("caption")))  # type: ignore[arg-type]
        if not title:
            continue
        caption = str(f.get("caption") or "")
        body = str(f.get("text") or "").replace(caption, " ").strip()
        if len(body) < 40:  # no body of its own: the passage of its page that speaks of it, less the caption
            best = _nearest_chunk(by_page.get(_key(f), []), _words(title))
            body = str(best.get("text") or "").replace(caption, " ").replace(title, " ") if best is not None else ""
        out.append(_pair(title, body, "caption", str(f.get("doc_id", ""))))

    for p in page_list:
        for entry in p.get("nav_entries") or ():
            try:
                text, target = str(entry[0]), int(entry[1])
            except (TypeError, ValueError, IndexError):
                continue
            anchor = _entry_text(text)
            key = (str(p.get("doc_id", "")), target)
            best = _nearest_chunk(by_page.get(key, []), _words(anchor))
            passage = str(best.get("text") or "") if best is not None else page_text.get(key, "")
            out.append(_pair(anchor, passage, "navigation", key[0]))

    navigation = {_key(p) for p in page_list if p.get("navigation")}
    for record in documents:
        if not record.title:
            continue
        first = sorted(k for k in page_text if k[0] == record.doc_id and k not in navigation)
        if first:
            out.append(_pair(record.title, page_text[first[0]], "title", record.doc_id))

    structural = _unique(p for p in out if p is not None)
    if not sentences:
        return structural
    cloze = _unique(p for p in (_cloze(c) for c in chunk_list) if p is not None)
    budget = max(len(structural), 64)
    cloze = sorted(cloze, key=lambda p: _hash(p.anchor))[:budget]
    return structural + cloze


def _cloze(chunk: Mapping[str, Any]) -> TrainingPair | None:
    """Inverse cloze: the chunk's longest plain sentence -> the chunk without it."""
    text = " ".join(str(chunk.get("text") or "").split())
    parts = _SENTENCE.split(text)
    if len(parts) < 3:
        return None
    candidates = [s for s in parts if 40 <= len(s) <= 240]
    if not candidates:
        return None
    sentence = max(candidates, key=len)
    return _pair(sentence, text.replace(sentence, " "), "sentence", str(chunk.get("doc_id", "")))


def _unique(pairs: Iterable[TrainingPair]) -> list[TrainingPair]:
    seen: set[tuple[str, str]] = set()
    out = []
    for p in pairs:
        key = (p.anchor.lower(), p.positive)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def split_pairs(pairs: Sequence[TrainingPair], holdout: float = HOLDOUT) -> tuple[list[TrainingPair], list[TrainingPair]]:
    """``(train, held_out)``: an anchor is held out when its hash falls in the ``holdout`` share
    (the same anchor always on the same side, whatever else the corpus holds)."""
    cut = int(holdout * 2**64)
    held = [p for p in pairs if _hash(p.anchor.lower()) < cut]
    return [p for p in pairs if _hash(p.anchor.lower()) >= cut], held


# -- the tuned model when a knowledge base opens -----------------------------------------------
def tuned_view(folder: Path, manifest: Manifest, config: Config) -> tuple[Manifest, Config]:
    """The manifest and config of a tuned knowledge base as seen from ``folder``: the text model is
    the tuned folder inside it (wherever the knowledge base has moved to), and the collections are
    the tuned ones. A config that asks for the base model, or the default collection prefix, gets
    the tuned ones; one that asks for another model is left to fail the model check."""
    record = manifest.model_settings.get(TUNED_KEY)
    if not record:
        return manifest, config
    model = str(folder / record["folder"])
    models, store = config.models, config.store
    if models.text in (record["base_model"], manifest.model_settings.get("text"), model):
        models = replace(models, text=model)
    if store.collection_prefix == record["base_prefix"]:
        store = replace(store, collection_prefix=record["prefix"])
    text = dict(manifest.models.get("text", {}))
    text.update(name=model, source=model)
    manifest = replace(manifest, models={**manifest.models, "text": text}, model_settings={**manifest.model_settings, "text": model})
    return manifest, replace(config, models=models, store=store)


# -- the run ---------------------------------------------------------------------------------
def _read(store: Any, name: str) -> list[Mapping[str, Any]]:
    return [p.payload for p in store.scroll(name)]


def tune_knowledge_base(
    kb: KnowledgeBase,
    *,
    minutes: float = 5.0,
    batch_size: int = 16,
    epochs: int = 1,
    learning_rate: float = 2e-5,
    sentences: bool = True,
    progress: bool | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TuneReport:
    """Tune ``kb``'s text model and re-embed ``kb`` with it (see the module docstring). The caller
    holds the write lock; ``kb`` is switched to the tuned model on return."""
    from rag._manifest import Manifest
    from retrievers import registry
    from retrievers.base import CollectionSpec
    from retrievers.embedders.text import resolve_source
    from retrievers.embedders.tune import fine_tune, pair_recall
    from retrievers.reembed import reembed
    from retrievers.store._common import collection_name

    started, cpu_started = time.perf_counter(), time.process_time()
    if not minutes > 0:
        raise ConfigError(f"tune: minutes must be more than 0, got {minutes}")
    if kb.config.store.tenant is not None:
        raise ConfigError(
            f"tune: {kb.path} is tenant {kb.config.store.tenant!r} of collections shared with other knowledge bases; "
            "tuning writes collections of its own: tune a knowledge base that has its own collections (no tenant)"
        )
    store, specs = kb._open_store()
    manifest = kb._manifest
    assert manifest is not None
    previous = manifest.model_settings.get(TUNED_KEY) or None
    base_model = previous["base_model"] if previous else kb.config.models.text
    base_prefix = previous["base_prefix"] if previous else kb.config.store.collection_prefix
    source = resolve_source(registry.resolve(base_model, "text").source)
    if not Path(source).is_dir():
        raise ConfigError(
            f"tune: the text model {base_model!r} is not a local folder ({source}); tuning starts from a local "
            "sentence-transformers folder (the bundled all-MiniLM-L6-v2 is one)"
        )

    chunks, figures, pages = (_read(store, specs[c].name) for c in ("text", "figures", "pages"))
    pairs = corpus_pairs(chunks, figures, pages, kb.documents(), sentences=sentences)
    train, held = split_pairs(pairs)
    counts: dict[str, int] = defaultdict(int)
    for p in pairs:
        counts[p.kind] += 1
    log.info("tune: %d pairs (%s), %d held out", len(pairs), dict(counts), len(held))

    number = int(previous["number"]) + 1 if previous else 1
    models_dir = kb.path / MODELS_DIR
    name = f"text-tuned-{number}"
    target = models_dir / name
    partial = models_dir / f".{name}.partial"
    prefix = f"{base_prefix}_tuned{number}" if base_prefix else f"tuned{number}"
    new_specs = {c: CollectionSpec(collection_name(prefix, c), s.vectors) for c, s in specs.items()}
    _drop(store, [s.name for s in new_specs.values()])  # left by a run stopped before its switch
    for leftover in (partial, target):
        shutil.rmtree(leftover, ignore_errors=True)
    switched = False
    try:
        run = fine_tune(
            source, train, partial, minutes=minutes, epochs=epochs, batch_size=batch_size,
            learning_rate=learning_rate, show_progress=progress, should_stop=should_stop,
        )
        partial.rename(target)
        models = kb.config.models
        text_options: dict[str, Any] = {"dimension": models.text_dimension, "device": models.device, "batch_size": models.batch_size}
        if "precision" in registry.FAMILIES[registry.resolve(str(target), "text").family].options:
            text_options["precision"] = models.text_precision
        tuned = registry.build(str(target), "text", **text_options)
        tuned.load()  # exports and quantises through the ONNX path once
        before = pair_recall(kb.embedders.text.embed_documents, held)
        after = pair_recall(tuned.embed_documents, held)
        log.info("tune: held-out pairs, anchor finds its passage: %.3f before, %.3f after", before, after)
        copied = reembed(store, specs, new_specs, tuned)
        record = {
            "folder": f"{MODELS_DIR}/{name}", "number": number, "base_model": base_model, "base_prefix": base_prefix,
            "prefix": prefix, "pairs": dict(counts), "held_out": len(held), "steps": run.steps,
            "minutes": round(run.seconds / 60, 2), "cpu_minutes": round(run.cpu_seconds / 60, 2), "held_out_recall_before": before, "held_out_recall_after": after,
            "created": time.time(),
        }
        new_manifest = replace(
            manifest,
            models={**manifest.models, "text": tuned.provenance()},
            store={**manifest.store, "collection_prefix": prefix},
            model_settings={**manifest.model_settings, "text": str(target), TUNED_KEY: record},
        )
        new_manifest.write(kb.path / "manifest.json")  # the switch: one atomic write
        switched = True
    finally:
        if not switched:
            _drop(store, [s.name for s in new_specs.values()])
            shutil.rmtree(partial, ignore_errors=True)
            shutil.rmtree(target, ignore_errors=True)
            log.warning("tune: stopped before the switch; the knowledge base keeps its model and vectors")
    # after the switch: the old vectors and model go (a crash here leaves only unused files)
    _drop(store, [s.name for s in specs.values()])
    if previous:
        shutil.rmtree(kb.path / previous["folder"], ignore_errors=True)
    kb._switch(Manifest.read(kb.path / "manifest.json"))
    return TuneReport(
        model=str(target), base_model=base_model, pairs=dict(counts), held_out=len(held), steps=run.steps,
        epochs=round(run.epochs, 3), stopped_by=run.stopped_by, train_seconds=round(run.seconds, 1),
        seconds=round(time.perf_counter() - started, 1), cpu_seconds=round(time.process_time() - cpu_started, 1),
        held_out_recall_before=before, held_out_recall_after=after, points=copied.points,
    )


def _drop(store: Any, names: Sequence[str]) -> None:
    have = set(store.collections())
    for name in names:
        if name in have:
            store.drop_collection(name)
