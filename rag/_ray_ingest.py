"""Ingestion on Ray Data (``[ingest] engine = "ray"``): the same knowledge base as the
in-process path, with reading and embedding spread over a Ray cluster.

::

    files ─► read + extract (Ray tasks, one file per task: ingest.open_document)
          ─► embed (an actor pool: each actor loads the models once; a GPU each when
             models.device is "cuda")
          ─► points: upserted by the actors when the store is a Qdrant server, by this
             process (the driver) for the embedded store, which serves one process

What this process does, as :class:`rag._indexer.Indexer` does it: it identifies each file
(checked and hashed once; the identity travels with the task), skips what is already indexed,
replaces a changed file, puts a ``pending`` record and clears the document's old points
*before* any task starts, and marks a document ``complete`` (or rolls it back) once every
batch of its pages has come back. So a killed run leaves only ``pending`` records, which the
next write rolls back (:meth:`Indexer.recover`), and their documents are read again: crash
semantics are the in-process ones.

A document is one task, never split into page ranges: its glyph repair and running headers are
learned page by page (as in :mod:`ingest.parallel`), so its records are those of an in-process
read. Pages go to the actors in the batches the in-process path embeds (``page_batch``), so the
same texts meet the same models in the same batches: same point ids, counts and vectors (up to
float rounding of a different thread count).

Files the in-process path would not read (already indexed, a second copy of a file in this run,
a file that cannot be identified) go through :meth:`Indexer.ingest_one` here, after the Ray run
for second copies, so they get the same reports.

On a cluster, the knowledge-base folder (page images and crops are written by the tasks, read
by the image models) must be on a filesystem every node mounts at the same path, and mmrag must
be installed on every node.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import socket
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.batch import pages_in_range as _pages_in
from rag._manifest import DocumentRecord, Manifest
from rag.config import Config, IngestConfig, ModelsConfig, StoreConfig
from rag.errors import ConfigError, DocumentError, EmbedderMismatchError, MmragError, ModelError
from rag.lazy import require
from rag.types import CORPORA, DocumentInfo, FileReport, PageContent

if TYPE_CHECKING:  # pragma: no cover
    from ingest import FileIdentity
    from rag._indexer import Indexer, PageProgress

__all__ = ["RayEngine", "connect", "embed_gpus", "actor_pool_size", "workers_write"]

log = logging.getLogger("mmrag.ray")

#: rows between the stages: one file (``file``) becomes ``info``, ``pages`` batches and ``done``
#: or ``failed``; an actor turns each ``pages`` row into ``points`` (for the driver to write),
#: ``written`` (it wrote them) or ``batch_failed``. ``seq`` numbers a file's page batches; the
#: row ending a file carries how many there were.
_COLUMNS = ("job", "kind", "seq", "data")


def _ray() -> Any:
    require("ray.data", "ray", "ingest engine = 'ray'", package="ray")
    return require("ray", "ray", "ingest engine = 'ray'", package="ray")


# -- decisions (pure) ------------------------------------------------------------------------
def embed_gpus(device: str, cluster_gpus: float) -> int:
    """GPUs each embedding actor asks for: one when the models run on CUDA (``models.device``).

    Models on ``"cpu"`` stay there even on a cluster with GPUs: the CPU text encoder is the
    quantised ONNX one, so moving it would change the vectors of the knowledge base."""
    if not device.startswith("cuda"):
        return 0
    if cluster_gpus < 1:
        raise ConfigError(
            f"models.device = {device!r} but the Ray cluster has no GPU ({cluster_gpus:g} reported); "
            "add GPU nodes to the cluster or set [models] device = \"cpu\""
        )
    return 1


def actor_pool_size(cluster_cpus: float, cluster_gpus: float, gpus_per_actor: int) -> int:
    """The most embedding actors to run: one per GPU, or one per two CPUs (the other CPU of
    each pair reads files); at least one."""
    if gpus_per_actor:
        return max(1, int(cluster_gpus // gpus_per_actor))
    return max(1, int(cluster_cpus) // 2)


def workers_write(store: StoreConfig) -> bool:
    """Whether the actors upsert points themselves: only into a Qdrant server (``url``). The
    embedded store and qdrant-client's local mode serve one process: the driver writes."""
    return store.backend == "qdrant" and store.url is not None


def _address_target(address: str) -> tuple[str, int] | None:
    """The host and port ``address`` names (``host:port`` or ``ray://host:port``); ``None`` for
    the addresses Ray resolves itself (``auto``, ``local``)."""
    if address in ("auto", "local"):
        return None
    bare = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = bare.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(
            f"ingest.ray_address = {address!r}: expected host:port (e.g. head-node:6379), ray://host:port or auto"
        )
    return host.strip("[]"), int(port)


def connect(address: str | None, timeout_s: float = 5.0) -> bool:
    """Connect this process to Ray; True when it started (and so must stop) the instance.

    With an ``address``, the address is tried first (a plain TCP connection, ``timeout_s``):
    Ray itself retries an address that does not answer for minutes. Without one, the Ray
    instance this process is already connected to is used, else a local one is started.
    """
    ray = _ray()
    target = _address_target(address) if address is not None else None
    if target is not None:
        try:
            socket.create_connection(target, timeout=timeout_s).close()
        except OSError as exc:
            raise ConfigError(
                f"ingest.ray_address = {address!r}: no Ray cluster answers there ({exc}); start one with "
                "`ray start --head` and give the address it prints, or leave --ray-address out to run on a "
                "local Ray instance"
            ) from exc
    if ray.is_initialized():
        if address is not None:
            log.info("already connected to Ray: using that instance, not %s", address)
        return False
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    except ConnectionError as exc:
        raise ConfigError(
            f"could not connect to Ray at {address or 'a local instance'}: {exc}; check the address "
            "(`ray status` on the head node prints it) or leave --ray-address out"
        ) from exc
    return True


# -- rows -------------------------------------------------------------------------------------
def _table(rows: Sequence[tuple[int, str, int, Any]]) -> Any:
    """Rows as an Arrow table; the payload is pickled into a binary column (frozen dataclasses
    and numpy vectors pass through unchanged, which Arrow's own conversion would not promise)."""
    import pyarrow as pa

    return pa.table({
        "job": pa.array([r[0] for r in rows], pa.int64()),
        "kind": pa.array([r[1] for r in rows], pa.string()),
        "seq": pa.array([r[2] for r in rows], pa.int64()),
        "data": pa.array([pickle.dumps(r[3], protocol=pickle.HIGHEST_PROTOCOL) for r in rows], pa.binary()),
    })


def _rows(table: Any) -> Iterator[tuple[int, str, int, Any]]:
    columns = [table.column(name).to_pylist() for name in _COLUMNS]
    for job, kind, seq, data in zip(*columns):
        yield job, kind, seq, pickle.loads(data)


def _failure(path: Path, exc: MmragError) -> tuple[str, str, str]:
    """What a failed file's report says, as :meth:`Indexer.ingest_one` words it."""
    message = str(exc) if isinstance(exc, DocumentError) else f"{path}: {exc}"
    reason = exc.reason if isinstance(exc, DocumentError) else str(exc)
    return message, type(exc).__name__, reason


# -- stage 1: read and extract (Ray tasks) ---------------------------------------------------
def _extract_files(batch: Any, *, config: IngestConfig, image_root: Path, page_batch: int) -> Iterator[Any]:
    """A Ray task: each ``file`` row read with :func:`ingest.open_document`, streamed as rows."""
    for job, _, _, (path, page_range, identity, metadata) in _rows(batch):
        for row in _extract_one(job, path, page_range, identity, config, image_root, page_batch, metadata):
            yield _table([row])


def _extract_one(
    job: int, path: Path, page_range: tuple[int, int] | None, identity: FileIdentity, config: IngestConfig,
    image_root: Path, page_batch: int, metadata: Mapping[str, Any] | None = None,
) -> Iterator[tuple[int, str, int, Any]]:
    """One file's rows: ``info``, ``pages`` (``(info, contents, metadata)``: the document's
    user metadata rides with its pages into every payload), then ``done`` or ``failed``."""
    from ingest import open_document

    meta = dict(metadata) if metadata else {}
    started = time.time()
    seq = 0
    try:
        with open_document(path, config, image_dir=image_root, identity=identity) as reader:
            info = reader.info
            yield job, "info", 0, (info, started)
            batch: list[PageContent] = []
            for content in reader.pages(progress=False, page_range=page_range):
                batch.append(content)
                if len(batch) >= page_batch:
                    yield job, "pages", seq, (info, batch, meta)
                    seq, batch = seq + 1, []
            if batch:
                yield job, "pages", seq, (info, batch, meta)
                seq += 1
    except MmragError as exc:  # the file's fault (or a missing extra): reported, not a crash
        yield job, "failed", seq, _failure(path, exc)
        return
    yield job, "done", seq, None


# -- stage 2: embed (an actor pool) ----------------------------------------------------------
class _Embed:
    """A Ray Data actor: builds the knowledge base's models once (on its first batch), embeds
    ``pages`` rows into points, and writes them when ``store`` is given (a Qdrant server)."""

    def __init__(
        self, models: ModelsConfig, provenance: dict[str, dict[str, Any]], collections: dict[str, str],
        store: StoreConfig | None, kb_path: Path,
    ) -> None:
        self.models = models
        self.provenance = provenance
        self.collections = collections
        self.store_config = store
        self.kb_path = kb_path
        self.embedders: Any = None
        self.store: Any = None

    def _load(self) -> None:
        if self.embedders is not None:
            return
        from rag._models import build_embedders
        from retrievers.embedders.sparse import BM25Encoder

        embedders = build_embedders(self.models)
        built = self.provenance.get("sparse")
        if built and isinstance(embedders.sparse, BM25Encoder):  # the BM25 scoring the knowledge base has
            embedders = replace(embedders, sparse=embedders.sparse.matching(built))
        embedders.text.load()
        try:  # the check the knowledge base makes of the driver's models, made of this node's
            Manifest(models=self.provenance, collections={}, ingest={}, store={}).check_models(
                embedders.provenance(), Path(f"Ray worker on {socket.gethostname()}"))
        except EmbedderMismatchError as exc:
            raise ModelError(f"{exc} Install the same mmrag and model files on every node of the Ray cluster.") from exc
        if self.store_config is not None:
            from retrievers.store import open_store

            self.store = open_store(self.store_config, self.kb_path)
        self.embedders = embedders

    def __call__(self, batch: Any) -> Any:
        out: list[tuple[int, str, int, Any]] = []
        for job, kind, seq, data in _rows(batch):
            if kind != "pages":
                out.append((job, kind, seq, data))
                continue
            info, contents, metadata = data
            out.append(self._embed(job, seq, info, contents, metadata))
        return _table(out)

    def _embed(
        self, job: int, seq: int, info: DocumentInfo, contents: list[PageContent], metadata: Mapping[str, Any] | None = None,
    ) -> tuple[int, str, int, Any]:
        from retrievers.corpora import build_points
        from retrievers.payloads import scoped

        try:
            self._load()
            points = build_points(info, contents, self.embedders)
            if metadata:  # the document's user metadata in every payload, as Indexer._flush puts it
                points = {c: [replace(p, payload=scoped(p.payload, metadata)) for p in pts] for c, pts in points.items()}
            if self.store is None:
                return job, "points", seq, (points, len(contents))
            for corpus, pts in points.items():
                if pts:
                    self.store.upsert(self.collections[corpus], pts)
            return job, "written", seq, ({c: len(p) for c, p in points.items()}, len(contents))
        except MmragError as exc:
            return job, "batch_failed", seq, _failure(info.path, exc)


# -- the driver ----------------------------------------------------------------------------
@dataclass
class _Job:
    """One file on Ray, as this process follows it."""

    index: int
    path: Path
    page_range: tuple[int, int] | None
    identity: FileIdentity
    metadata: dict[str, Any] = field(default_factory=dict)  # the document's user metadata (rag.metadata)
    info: DocumentInfo | None = None
    started: float = 0.0
    seen: set[int] = field(default_factory=set)
    batches: int | None = None  # known once the file's last row came back
    failure: tuple[str, str, str] | None = None
    counts: dict[str, int] = field(default_factory=lambda: {c: 0 for c in CORPORA})
    pages_read: int = 0

    @property
    def finished(self) -> bool:
        return self.batches is not None and len(self.seen) >= self.batches


class RayEngine:
    """``Indexer.ingest`` on Ray Data: same arguments, same reports, same knowledge base."""

    def __init__(self, indexer: Indexer, config: Config, kb_path: Path, page_batch: int | None = None) -> None:
        self.indexer = indexer
        self.config = config
        self.kb_path = kb_path
        self.page_batch = indexer.page_batch if page_batch is None else page_batch

    def ingest(
        self,
        paths: Iterable[Path],
        progress: bool | None = None,
        on_report: Callable[[FileReport], None] | None = None,
        page_ranges: Mapping[str, tuple[int, int]] | None = None,
        on_page: PageProgress | None = None,
    ) -> list[FileReport]:
        """Index ``paths`` (files; :meth:`rag._indexer.Indexer.ingest` takes the same arguments)."""
        ranges = {} if page_ranges is None else page_ranges
        todo = [(Path(p), ranges.get(Path(p).name, ranges.get(Path(p).stem))) for p in paths]
        ray = _ray()
        started_at = time.perf_counter()
        reports: dict[int, FileReport] = {}

        def done(index: int, report: FileReport) -> None:
            reports[index] = report
            if on_report is not None:
                on_report(report)

        jobs, later = self._plan(todo, progress, on_page, done)
        if jobs:
            self._run(ray, jobs, progress, on_page, done)
        for index in later:  # second copies: unchanged now that the first is indexed (or read here if it failed)
            path, page_range = todo[index]
            done(index, self.indexer.ingest_one(path, progress=progress, page_range=page_range, on_page=on_page))
        out = [reports[i] for i in range(len(todo))]
        log.info("ray ingest: %d files (%d read on Ray), %d failed, %.1f s", len(out), len(jobs),
                 sum(1 for r in out if not r.ok), time.perf_counter() - started_at)
        return out

    def _plan(
        self, todo: Sequence[tuple[Path, tuple[int, int] | None]], progress: bool | None, on_page: PageProgress | None,
        done: Callable[[int, FileReport], None],
    ) -> tuple[list[_Job], list[int]]:
        """Which files go to Ray (registered ``pending``, old points cleared), which are read
        here after the run (second copies); the rest are reported now."""
        from ingest import identify_file

        indexer, registry = self.indexer, self.indexer.registry
        jobs: list[_Job] = []
        later: list[int] = []
        sent: set[str] = set()
        for index, (path, page_range) in enumerate(todo):
            try:
                identity = identify_file(path, self.config.ingest)
            except DocumentError:
                identity = None
            plan = None if identity is None else indexer._plan(identity, page_range)
            if plan is None or plan.existing is not None:
                # cannot be read, or indexed already: reported as the in-process path reports it
                done(index, indexer.ingest_one(path, progress=progress, page_range=page_range, identity=identity, on_page=on_page))
                continue
            if str(path) in sent or (identity.sha256 in sent and registry.by_path(str(path)) is None):
                # the same file named twice, or a copy of a file on Ray: read here after the run (unchanged then)
                later.append(index)
                continue
            identity = plan.identity  # with its doc id (rag.ids.document_id)
            indexer._claimed.add(identity.doc_id)
            before = registry.by_path(str(path))
            # a changed file keeps the metadata it had, unless this run gives some
            metadata = indexer.metadata if indexer.metadata or before is None else dict(before.metadata)
            if plan.replaces is not None:
                log.info("%s changed: replacing %s", path, plan.replaces.doc_id[:12])
                indexer.delete(plan.replaces.doc_id)
            indexer.delete(identity.doc_id)  # what a pending or other-range record of this document left
            registry.put(DocumentRecord(
                doc_id=identity.doc_id, name=path.name, path=str(path), pages=0, kind=str(identity.kind), status="pending",
                size_bytes=identity.size, page_range=list(page_range) if page_range is not None else None,
                sha256=identity.sha256, metadata=dict(metadata),
            ))
            sent.update((str(path), identity.sha256))
            jobs.append(_Job(index, path, page_range, identity, metadata=dict(metadata)))
        return jobs, later

    def _dataset(self, ray: Any, jobs: Sequence[_Job]) -> Any:
        """The pipeline: one read task per file, then the embedding actor pool."""
        import ray.data as rd

        resources = ray.cluster_resources()
        cpus, gpus = float(resources.get("CPU", 1)), float(resources.get("GPU", 0))
        models = self.config.models
        gpus_each = embed_gpus(models.device, gpus)
        actors = actor_pool_size(cpus, gpus, gpus_each)
        store = self.config.store if workers_write(self.config.store) else None
        log.info("Ray: %g CPUs, %g GPUs; up to %d embedding actors (%d GPU each); points written by %s",
                 cpus, gpus, actors, gpus_each, "the actors" if store is not None else "this process")
        items = _table([(j.index, "file", 0, (j.path, j.page_range, j.identity, j.metadata)) for j in jobs])
        source = rd.from_arrow([items.slice(i, 1) for i in range(len(jobs))])  # one block, one task per file
        with warnings.catch_warnings():
            # Ray 2.60 has no named parameter for it yet and warns of the generic one
            warnings.filterwarnings("ignore", message=".*ray_remote_args. is deprecated")
            read = source.map_batches(
                _extract_files, batch_size=1, batch_format="pyarrow", num_cpus=1,
                # a file that crashes its worker is tried 3 times, not forever (Ray Data's default);
                # an argument the actors do not have, which keeps the two stages apart (fused, the
                # actors would read the files one after another)
                max_retries=2,
                fn_kwargs={"config": self.config.ingest, "image_root": self.indexer.image_root, "page_batch": self.page_batch},
            )
        return read.map_batches(
            _Embed, batch_size=1, batch_format="pyarrow", num_cpus=1, num_gpus=gpus_each or None,
            compute=rd.ActorPoolStrategy(min_size=1, max_size=actors),
            fn_constructor_kwargs={
                "models": models,
                "provenance": self.indexer.embedders.provenance(),
                "collections": {c: spec.name for c, spec in self.indexer.specs.items()},
                "store": store,
                "kb_path": self.kb_path,
            },
        )

    def _run(
        self, ray: Any, jobs: list[_Job], progress: bool | None, on_page: PageProgress | None,
        done: Callable[[int, FileReport], None],
    ) -> None:
        by_index = {j.index: j for j in jobs}
        open_jobs = dict(by_index)
        started = False
        try:
            started = connect(self.config.ingest.ray_address)
            with _ray_data_output(progress):
                dataset = self._dataset(ray, jobs)
                for table in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
                    for index, kind, seq, data in _rows(table):
                        job = by_index[index]
                        self._take(job, kind, seq, data, on_page)
                        if job.finished and index in open_jobs:
                            del open_jobs[index]
                            done(index, self._finish(job))
        except Exception:  # a bug or a lost cluster: leave nothing half-written behind, then surface
            for job in open_jobs.values():
                self.indexer.delete(job.identity.doc_id)
            raise
        finally:
            if started:
                ray.shutdown()
        for index, job in open_jobs.items():  # cannot happen: every file ends with a row
            job.failure = (f"{job.path}: the Ray run ended before this file's pages came back", "MmragError", "lost")
            done(index, self._finish(job))

    def _take(self, job: _Job, kind: str, seq: int, data: Any, on_page: PageProgress | None) -> None:
        if kind == "info":
            job.info, job.started = data
            if on_page is not None:
                on_page(job.path, 0, _pages_in(job.info.page_count, job.page_range))
            return
        if kind in ("done", "failed"):
            job.batches = seq
            if kind == "failed":
                job.failure = data
            return
        if seq in job.seen:  # a retried task sends its batches again
            return
        job.seen.add(seq)
        if kind == "batch_failed":
            job.failure = job.failure if job.failure is not None else data
            return
        if job.failure is not None:
            return  # rolled back at the end anyway
        if kind == "points":
            points, pages = data
            for corpus, pts in points.items():
                if pts:
                    self.indexer.store.upsert(self.indexer.specs[corpus].name, pts)
            counts = {c: len(p) for c, p in points.items()}
        else:
            counts, pages = data
        for corpus, n in counts.items():
            job.counts[corpus] += n
        job.pages_read += pages
        if on_page is not None and job.info is not None:
            on_page(job.path, job.pages_read, _pages_in(job.info.page_count, job.page_range))

    def _finish(self, job: _Job) -> FileReport:
        """The file's record made ``complete`` (as :meth:`Indexer.ingest_one` makes it), or the
        document rolled back and the failure reported."""
        seconds = round(time.time() - job.started, 3) if job.started else 0.0
        if job.failure is not None or job.info is None:
            message, error_type, reason = job.failure if job.failure is not None else (
                f"{job.path}: no document info came back from Ray", "MmragError", "no document info")
            self.indexer.delete(job.identity.doc_id)
            log.warning("failed %s: %s", job.path, reason)
            return FileReport(job.path, "failed", None, 0, message, error_type, seconds)
        info = job.info
        record = DocumentRecord(
            doc_id=info.doc_id,
            name=info.name,
            path=str(job.path),
            pages=info.page_count if job.page_range is None else job.counts["pages"],
            kind=info.kind,
            status="complete",
            size_bytes=info.size_bytes,
            title=info.title,
            author=info.author,
            points=dict(job.counts),
            ingested_at=time.time(),
            seconds=seconds,
            page_range=list(job.page_range) if job.page_range is not None else None,
            sha256=job.identity.sha256,
            metadata=dict(job.metadata),
        )
        self.indexer.store.flush()  # the points on disk before the record says complete
        self.indexer.registry.put(record)
        self.indexer._claimed.discard(job.identity.doc_id)
        log.info("indexed %s on Ray: %d pages, %s points in %.1f s", job.path.name, info.page_count, job.counts, seconds)
        return FileReport(job.path, "indexed", info.doc_id, record.pages, seconds=seconds)


@contextlib.contextmanager
def _ray_data_output(progress: bool | None) -> Iterator[None]:
    """Ray Data's progress bars only when ``progress``; its execution log lines only when mmrag
    logs at DEBUG. Both settings are put back afterwards."""
    import ray.data as rd

    context = rd.DataContext.get_current()
    bars = context.enable_progress_bars
    logger = logging.getLogger("ray.data")
    level = logger.level
    context.enable_progress_bars = bool(progress)
    if logging.getLogger("mmrag").getEffectiveLevel() > logging.DEBUG:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        context.enable_progress_bars = bars
        logger.setLevel(level)
