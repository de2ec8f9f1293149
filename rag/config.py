"""Configuration records. Cheap to build, validated on construction, frozen."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from rag.errors import ConfigError

__all__ = ["INGEST_PROFILES", "PROFILE_MODELS", "IngestConfig", "ModelsConfig", "StoreConfig", "AskConfig", "Config", "load_config"]

_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")

#: Named sets of ingest settings. A setting left unset (``None``) takes its profile's value;
#: one the user gives wins over the profile. ``fast`` is for bulk loads (measured in README,
#: "Ingest profiles"): raster figures are not OCR'd (their caption and the text around them are
#: kept), page images and crops are written at 72 dpi, and text is cut into 700-character chunks
#: without overlap, about the 128 word pieces its text model reads (:data:`PROFILE_MODELS`;
#: measured on the public set: 2,000-character chunks with that model fell to recall@5 0.900,
#: 1,000 and 1,400 to 0.933, 700 keeps 0.967). Glyph repair and page OCR stay: they are what
#: makes a garbled or scanned page readable at all (glyph repair off: TAMReview.pdf took 212
#: instead of 21 CPU s, its pages OCR'd whole); table finding stays too (without it, public
#: recall@5 fell to 0.933: a table question's page lost its table record), but only on pages
#: with two table cues (``table_cues``; a ruled grid counts as two): its layout model costs
#: 0.3-0.9 s a page, and one cue (a figure caption beside a code listing) sent every page of a
#: paper to it (session 15: extraction 39.7 -> 33.8 CPU s on the public set, 15 of 18 tables kept).
INGEST_PROFILES: dict[str, dict[str, Any]] = {
    "default": {"dpi": 110, "ocr_figures": True, "find_tables": True, "table_cues": 1, "chunk_chars": 1000,
                "chunk_overlap_chars": 100},
    "fast": {"dpi": 72, "ocr_figures": False, "find_tables": True, "table_cues": 2, "chunk_chars": 700,
             "chunk_overlap_chars": 0},
}

#: The ``[models]`` settings each ingest profile gives when they are left unset (``None``), like
#: :data:`INGEST_PROFILES` for ``[ingest]``. ``fast`` embeds text with paraphrase-MiniLM-L3-v2
#: (3 layers, 128 tokens, int8 ONNX: ~4x less CPU per chunk than all-MiniLM-L6-v2 at 256 tokens;
#: with the 700-character chunks, 0.63x the embedding CPU of MiniLM on 2,000-character ones, same
#: public and paraphrased recall@5). The manifest records the model, so queries on a fast
#: knowledge base use it too.
PROFILE_MODELS: dict[str, dict[str, Any]] = {
    "default": {"text": "all-MiniLM-L6-v2"},
    "fast": {"text": "paraphrase-MiniLM-L3-v2"},
}


@dataclass(frozen=True)
class IngestConfig:
    """How documents are read.

    ``ocr``: ``"auto"`` runs OCR on pages whose text layer is empty or garbled and on
    raster figures; ``"never"`` turns it off; ``"always"`` OCRs every page.

    ``repair_text``: before OCR of a *garbled* page (a text layer whose fonts map their
    codes to the wrong characters), learn what each broken font's glyphs mean from OCR of a
    few of its lines and decode the text layer (exact boxes, seconds less per page); pages
    that still read as garbage are OCR'd. Needs OCR (``ocr`` not ``"never"``).

    ``profile``: ``"default"`` or ``"fast"`` (:data:`INGEST_PROFILES`): the values of the
    settings left unset (``None``) here: ``dpi``, ``ocr_figures``, ``find_tables``, ``table_cues``,
    ``chunk_chars``, ``chunk_overlap_chars``. After construction they always hold a value; the
    manifest records them and the profile, so ``mmrag info`` says how a knowledge base was read.
    """

    profile: Literal["default", "fast"] = "default"
    #: page images and figure crops; ``None``: the profile's (110, fast: 72)
    dpi: int = None  # type: ignore[assignment]
    # jpeg: measured ~2 ms to encode a 110 dpi page against ~25 ms for webp (method 2), for
    # ~1.6x the bytes (~120 against ~77 kB a page); text stays readable at quality 80
    image_format: Literal["webp", "png", "jpeg"] = "jpeg"
    image_quality: int = 80
    ocr: Literal["auto", "never", "always"] = "auto"
    ocr_dpi: int = 144
    #: OCR raster figures whose text layer holds no text; ``None``: the profile's (fast: off)
    ocr_figures: bool = None  # type: ignore[assignment]
    #: look for tables on pages with table cues (rulings, aligned columns); ``None``: the
    #: profile's (on in both); off, a table's text is read as page text, not as a table record
    find_tables: bool = None  # type: ignore[assignment]
    #: how many independent table cues (ruling lines, rows of cells, a caption:
    #: :func:`ingest._tables.table_cues`) send a page to the table finder, whose layout model
    #: costs 0.3-0.9 s of CPU a page; ``None``: the profile's (1, fast: 2)
    table_cues: int = None  # type: ignore[assignment]
    repair_text: bool = True
    # about all-MiniLM-L6-v2's 256-token window; measured: same retrieval as 900/150 on the
    # shared evaluation set, 30% less embedding time on a text-heavy paper. ``None``: the profile's
    chunk_chars: int = None  # type: ignore[assignment]
    chunk_overlap_chars: int = None  # type: ignore[assignment]
    min_figure_area: float = 2500.0
    max_file_bytes: int = 2 * 1024**3
    max_pages: int = 20_000
    max_page_pixels: int = 60_000_000
    #: Embedded or standalone images may be larger than a rendered page (a 600 dpi scan of a
    #: poster is ~90 Mpx); above this they are refused as decompression bombs.
    max_image_pixels: int = 400_000_000
    max_images_per_page: int = 500
    #: CPU seconds one page may take (its reading process's and children's), and at most three
    #: times that on the wall clock (:class:`ingest._budget.PageClock`)
    page_timeout_s: float = 60.0
    password: str | None = None
    #: seconds LibreOffice may take to convert one Office file to PDF before it is stopped
    convert_timeout_s: float = 300.0
    #: processes that extract documents while the ingesting process embeds and writes; a
    #: document is read by one process, so this helps batches of several files. ``None``:
    #: ``min(2, cpu count)`` (measured: see BENCHMARKS.md); 1 extracts in-process.
    workers: int | None = None
    #: Video: a frame becomes a page when more than the share ``video_scene_change`` (0..1) of
    #: its downscaled copy changed colour against the last kept frame and at least
    #: ``video_min_gap_s`` seconds have passed; the first frame always does; at most
    #: ``video_max_frames`` pages per video. Transcript chunks span at most ``transcript_chunk_s``.
    video_scene_change: float = 0.03
    video_min_gap_s: float = 1.5
    video_max_frames: int = 300
    transcript_chunk_s: float = 45.0
    #: how files are ingested: ``"local"`` in this process (and ``workers`` processes), or
    #: ``"ray"``: read as Ray tasks, embedded in a Ray actor pool (``pip install 'mmrag[ray]'``);
    #: the same knowledge base either way. Not recorded in the manifest: it is how a run goes.
    engine: Literal["local", "ray"] = "local"
    #: with ``engine = "ray"``: the cluster (``host:port``, ``ray://host:port`` or ``auto``);
    #: ``None`` uses the Ray instance this process is connected to, or starts a local one
    ray_address: str | None = None

    def __post_init__(self) -> None:
        if self.profile not in INGEST_PROFILES:
            raise ConfigError(f"ingest.profile must be one of {sorted(INGEST_PROFILES)}, got {self.profile!r}")
        for name, value in INGEST_PROFILES[self.profile].items():
            if getattr(self, name) is None:  # unset: the profile's value; a given value wins
                object.__setattr__(self, name, value)
        for name in ("ocr_figures", "find_tables"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"ingest.{name} must be true or false, got {getattr(self, name)!r}")
        if not isinstance(self.table_cues, int) or isinstance(self.table_cues, bool) or not 1 <= self.table_cues <= 3:
            raise ConfigError(f"ingest.table_cues must be 1, 2 or 3, got {self.table_cues!r}")
        if not 18 <= self.dpi <= 600:
            raise ConfigError(f"ingest.dpi must be within 18..600, got {self.dpi}")
        if not 18 <= self.ocr_dpi <= 600:
            raise ConfigError(f"ingest.ocr_dpi must be within 18..600, got {self.ocr_dpi}")
        if self.ocr not in ("auto", "never", "always"):
            raise ConfigError(f"ingest.ocr must be auto, never or always, got {self.ocr!r}")
        if self.image_format not in ("webp", "png", "jpeg"):
            raise ConfigError(f"ingest.image_format must be webp, png or jpeg, got {self.image_format!r}")
        if self.chunk_chars < 100 or not 0 <= self.chunk_overlap_chars < self.chunk_chars:
            raise ConfigError(
                "ingest.chunk_chars must be >= 100 and 0 <= chunk_overlap_chars < chunk_chars, "
                f"got {self.chunk_chars}/{self.chunk_overlap_chars}"
            )
        if self.workers is not None and (not isinstance(self.workers, int) or self.workers < 1):
            raise ConfigError(f"ingest.workers must be a whole number >= 1 (or unset for automatic), got {self.workers!r}")
        if not 0.0 < self.video_scene_change < 1.0:
            raise ConfigError(f"ingest.video_scene_change must be within 0..1 (exclusive), got {self.video_scene_change}")
        if self.video_min_gap_s < 0:
            raise ConfigError(f"ingest.video_min_gap_s must be >= 0 seconds, got {self.video_min_gap_s}")
        if self.engine not in ("local", "ray"):
            raise ConfigError(f"ingest.engine must be local or ray, got {self.engine!r}")
        if self.ray_address is not None and (not isinstance(self.ray_address, str) or not self.ray_address.strip()):
            raise ConfigError(f"ingest.ray_address must be a Ray address such as 'head-node:6379' (or unset), got {self.ray_address!r}")
        for name in ("video_max_frames", "transcript_chunk_s", "max_file_bytes", "max_pages", "max_page_pixels", "max_image_pixels", "max_images_per_page", "page_timeout_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"ingest.{name} must be positive, got {getattr(self, name)}")
        if not self.convert_timeout_s > 0:
            raise ConfigError(f"ingest.convert_timeout_s must be positive, got {self.convert_timeout_s}")

    @property
    def extraction_workers(self) -> int:
        """``workers``, or ``min(2, cpu count)`` when unset."""
        return self.workers if self.workers is not None else min(2, os.cpu_count() or 1)


@dataclass(frozen=True)
class ModelsConfig:
    """Which models embed each corpus. ``None`` turns that vector off.

    Names resolve through the model registry (``mmrag models``) or are local folders.

    ``text``: ``None`` (unset) takes the ingest profile's model when the :class:`Config` is built
    (:data:`PROFILE_MODELS`: all-MiniLM-L6-v2, ``fast``: paraphrase-MiniLM-L3-v2); a
    ``ModelsConfig`` on its own embeds with the default profile's.
    """

    text: str | None = None
    sparse: str | None = "bm25"
    image: str | None = None
    late_interaction: str | None = None
    device: str = "cpu"
    batch_size: int = 16
    pool_factor: int = 3
    #: Matryoshka truncation of the text / image vectors (keep the first N values, re-normalise);
    #: ``None`` keeps the model's full size. Recorded in the manifest like the model itself.
    text_dimension: int | None = None
    image_dimension: int | None = None
    #: weights of the ONNX text encoder (plain sentence-transformers folders, the bundled default):
    #: ``int8`` (dynamic quantisation, ~2x less CPU, cosine ~0.99 to fp32, same retrieval on the
    #: shared evaluation set) or ``fp32`` (sentence-transformers' own vectors)
    text_precision: Literal["int8", "fp32"] = "int8"
    #: with an image model, also embed whole page images (``mmrag search --image`` then finds pages too)
    page_image_vectors: bool = False

    def __post_init__(self) -> None:
        if self.text_precision not in ("int8", "fp32"):
            raise ConfigError(f"models.text_precision must be int8 or fp32, got {self.text_precision!r}")


@dataclass(frozen=True)
class StoreConfig:
    """Where vectors live: ``edge`` (embedded, in the knowledge-base folder) or ``qdrant``.

    With ``qdrant``, ``url`` points at a server or cluster; ``location=":memory:"`` or a
    ``path`` uses qdrant-client's local mode (same API, for tests and small setups).

    ``tenant`` (``qdrant`` only): this knowledge base's name when several share one server's
    collections (the same ``collection_prefix``): its points carry it, and it sees, counts and
    deletes only its own. ``sharding = "tenant"`` also makes each tenant a shard key of custom
    sharding (set when the collections are created: every tenant sharing them must say the same).
    ``shard_number``, ``replication_factor`` and ``write_consistency_factor`` reach the
    collections this knowledge base creates (a collection that exists keeps its own).
    """

    backend: Literal["edge", "qdrant"] = "edge"
    url: str | None = None
    api_key: str | None = None
    location: str | None = None
    path: str | None = None
    collection_prefix: str = "mmrag"
    shard_number: int | None = None
    replication_factor: int | None = None
    timeout_s: float = 30.0
    write_consistency_factor: int | None = None
    tenant: str | None = None
    sharding: Literal["auto", "tenant"] = "auto"

    def __post_init__(self) -> None:
        if self.backend not in ("edge", "qdrant"):
            raise ConfigError(f"store.backend must be edge or qdrant, got {self.backend!r}")
        for name in ("shard_number", "replication_factor", "write_consistency_factor"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"store.{name} must be a whole number >= 1 (or unset for the server's default), got {value!r}")
        if self.tenant is not None:
            if not isinstance(self.tenant, str) or not _TENANT.match(self.tenant):
                raise ConfigError(
                    "store.tenant must be 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit, "
                    f"got {self.tenant!r}"
                )
            if self.backend != "qdrant":
                raise ConfigError(
                    f"store.tenant = {self.tenant!r} needs store.backend = 'qdrant': tenants share a Qdrant server's "
                    "collections, and the embedded store belongs to one knowledge base; set backend and url, or drop tenant"
                )
        if self.sharding not in ("auto", "tenant"):
            raise ConfigError(f"store.sharding must be auto or tenant, got {self.sharding!r}")
        if self.sharding == "tenant" and self.tenant is None:
            raise ConfigError("store.sharding = 'tenant' makes the tenant the shard key: set store.tenant too")


@dataclass(frozen=True)
class AskConfig:
    """How questions are answered.

    ``abstain``: after generating, judge whether the retrieved evidence answers the question
    (:mod:`generators.abstention`); when it does not, the answer says so plainly
    (``answered=False``, no citations, the closest pages named). ``abstain_min_similarity`` and
    ``abstain_min_coverage`` are the judge's two thresholds (0..1): an answer is withdrawn when
    its cited passages are below the first AND the top pages cover less than the second of the
    question's (IDF-weighted) words; 0 for both turns that rule off. ``abstain_rare_share``
    (0..1): a term the question names (a name, an acronym, an identifier, a number) that is on
    none of the retrieved pages withdraws the answer when it is on at most this share of the
    knowledge base's pages (0: only terms on no page at all). ``requery``: when the first
    retrieval round is weak (flat scores at the top), search again with expansion terms from the
    top pages (or the two parts of a two-part question) and fuse the rounds
    (:mod:`retrievers.requery`, which lists what was measured); off by default, as it did not
    help on every evaluation set. ``documents``: the document stage (:mod:`retrievers.documents`):
    each document of the candidate pages scored by its title, headings and mean page vector,
    and its pages' scores following it. ``thesaurus``: WordNet's synonyms and derived words of
    the question's content words join the BM25 query at 0.3 of a question word's weight
    (:mod:`retrievers.thesaurus`, which lists what was measured; needs ``pip install 'mmrag[thesaurus]'``
    and the BM25 sparse encoder); off by default, as it helped the paraphrased questions only.
    ``sentences``: the best text chunks rescored by their
    best window of two sentences (:mod:`retrievers.sentences`): a question about one sentence of a
    long chunk finds it; off by default, as embedding the windows costs 200-400 CPU ms per
    question on chunks not met before.
    """

    router: Literal["rules", "embedding", "hybrid", "llm", "all"] = "rules"
    reranker: str = "none"
    reranker_model: str | None = None
    generator: str = "extractive"
    generator_model: str | None = None
    api_base: str | None = None
    api_model: str | None = None
    top_k: int = 5
    fusion: Literal["score", "rrf"] = "score"
    max_question_chars: int = 2000
    abstain: bool = True
    abstain_min_similarity: float = 0.27
    abstain_min_coverage: float = 0.25
    abstain_rare_share: float = 0.01
    requery: bool = False
    documents: bool = True
    thesaurus: bool = False
    sentences: bool = False

    def __post_init__(self) -> None:
        for name in ("abstain_min_similarity", "abstain_min_coverage", "abstain_rare_share"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ConfigError(f"ask.{name} must be a number within 0..1, got {value!r}")
        if not isinstance(self.abstain, bool):
            raise ConfigError(f"ask.abstain must be true or false, got {self.abstain!r}")
        if not isinstance(self.requery, bool):
            raise ConfigError(f"ask.requery must be true or false, got {self.requery!r}; write requery = true or false")
        if not isinstance(self.thesaurus, bool):
            raise ConfigError(f"ask.thesaurus must be true or false, got {self.thesaurus!r}; write thesaurus = true or false")
        if not isinstance(self.sentences, bool):
            raise ConfigError(f"ask.sentences must be true or false, got {self.sentences!r}; write sentences = true or false")
        if not isinstance(self.documents, bool):
            raise ConfigError(f"ask.documents must be true or false, got {self.documents!r}; write documents = true or false")


@dataclass(frozen=True)
class Config:
    """Every setting. ``[models]`` settings left unset take the ingest profile's
    (:data:`PROFILE_MODELS`); after construction they hold a value, which the manifest records."""

    ingest: IngestConfig = field(default_factory=IngestConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    ask: AskConfig = field(default_factory=AskConfig)

    def __post_init__(self) -> None:
        unset = {k: v for k, v in PROFILE_MODELS[self.ingest.profile].items() if getattr(self.models, k) is None}
        if unset:  # a model the user names wins over the profile's
            object.__setattr__(self, "models", replace(self.models, **unset))


def _section(cls: type, values: dict[str, Any], where: str) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; known: {sorted(known)}")
    try:
        return cls(**values)
    except TypeError as exc:  # pragma: no cover - guarded by the key check
        raise ConfigError(f"{where}: {exc}") from exc


def load_config(path: str | Path | None = None, **overrides: Any) -> Config:
    """Read a TOML file with ``[ingest]``, ``[models]``, ``[store]``, ``[ask]`` tables."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"{p}: config file not found") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{p}: cannot read the config file ({exc}); give a UTF-8 TOML file") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: not valid TOML: {exc}") from exc
    sections = {"ingest": IngestConfig, "models": ModelsConfig, "store": StoreConfig, "ask": AskConfig}
    unknown = sorted(set(data) - set(sections))
    if unknown:
        raise ConfigError(f"{path}: unknown tables {unknown}; known: {sorted(sections)}")
    values = {name: dict(data.get(name, {})) for name in sections}
    for key, value in overrides.items():
        section, _, name = key.partition("__")
        if section not in sections or not name:
            raise ConfigError(f"override {key!r} must look like section__name")
        # merged before the section is built, so an override of ``ingest__profile`` sets the
        # settings the file left unset, and a setting given explicitly still wins over it
        values[section][name] = value
    built = {name: _section(cls, values[name], f"{path or 'config'} [{name}]") for name, cls in sections.items()}
    return Config(**built)
