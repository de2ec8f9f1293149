"""The document registry of a knowledge base: every document and its state, in SQLite.

``documents.sqlite`` (stdlib :mod:`sqlite3`, write-ahead log, ``synchronous=FULL``) holds one
row per document. A document becomes visible only when its record says ``complete``; a crash
mid-way leaves it ``pending`` and the next write rolls it back (``Indexer.recover``). Every
write is one transaction, durable when :meth:`DocumentRegistry.put` returns; a process killed
inside one leaves the registry as it was before it. Readers (searches, ``mmrag documents``,
the server, in this process or another) read a consistent snapshot while a writer works: the
write-ahead log lets them read the last committed state without waiting.

Put and lookup cost do not grow with the number of documents (indexed columns), unlike the
JSON file of earlier versions, which was rewritten whole on every change. A knowledge base
made by those versions is migrated on first open, atomically: its ``documents.json`` is
copied into a new database under a temporary name, the finished database is renamed into
place, and only then is the JSON file renamed to ``documents.json.bak`` (said in the log). A
crash at any point leaves either the JSON file alone (the migration runs again) or the
finished database (the JSON file is set aside on the next open).

One connection per registry object and process (a forked child opens its own); its threads
share it under a lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from rag.errors import StoreError

__all__ = ["DocumentRecord", "DocumentRegistry", "REGISTRY_FILE", "LEGACY_FILE"]

log = logging.getLogger("mmrag.registry")

REGISTRY_FILE = "documents.sqlite"
LEGACY_FILE = "documents.json"
BACKUP_SUFFIX = ".bak"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id   TEXT PRIMARY KEY,
    name     BLOB NOT NULL,
    path     BLOB NOT NULL,
    basename BLOB NOT NULL,
    sha256   TEXT NOT NULL,
    status   TEXT NOT NULL,
    record   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_name ON documents(name);
CREATE INDEX IF NOT EXISTS documents_path ON documents(path);
CREATE INDEX IF NOT EXISTS documents_basename ON documents(basename);
CREATE INDEX IF NOT EXISTS documents_sha256 ON documents(sha256);
CREATE INDEX IF NOT EXISTS documents_status ON documents(status);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('generation', 0);
"""


@dataclass
class DocumentRecord:
    """One document of a knowledge base. ``doc_id`` names its points and image folder;
    ``sha256`` is the hash of its bytes, which is also its ``doc_id`` unless another path
    already held a document with those bytes (:func:`rag.ids.document_id`)."""

    doc_id: str
    name: str
    path: str
    pages: int
    kind: str
    status: Literal["pending", "complete"]
    size_bytes: int = 0
    title: str | None = None
    author: str | None = None  # the file's own metadata's (a PDF's author): how readers may name it
    points: dict[str, int] = field(default_factory=dict)
    ingested_at: float = 0.0
    seconds: float = 0.0
    page_range: list[int] | None = None  # [first, last] physical pages indexed; None = all
    sha256: str = ""  # "" (records of earlier versions): the doc id, which was always the hash
    metadata: dict[str, Any] = field(default_factory=dict)  # the user's, rag.metadata; in every point's payload

    def __post_init__(self) -> None:
        if not self.sha256:
            self.sha256 = self.doc_id

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DocumentRecord:
        """A record from its stored form; keys a later version added are left out."""
        if data.keys() <= _FIELDS:
            return cls(**data)
        return cls(**{k: v for k, v in data.items() if k in _FIELDS})


_FIELDS = frozenset(f.name for f in fields(DocumentRecord))


class DocumentRegistry:
    """The documents of a knowledge base, persisted in ``documents.sqlite``.

    ``path``: the database file, or the ``documents.json`` of an earlier version (the
    database beside it is used; the JSON file is migrated into it once). Thread-safe:
    searches read it from other threads while a writer updates it.
    """

    def __init__(self, path: Path) -> None:
        path = Path(path)
        self.path = path.with_name(REGISTRY_FILE) if path.suffix == ".json" else path
        self.legacy = self.path.with_name(LEGACY_FILE)
        self._mutex = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        with self._mutex:
            self._connection()

    # -- the connection ------------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        """This process's connection (a child forked with the registry open makes its own)."""
        if self._conn is None or self._pid != os.getpid():
            if self.legacy.exists():
                migrate_json_registry(self.legacy, self.path)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = _connect(self.path)
            self._pid = os.getpid()
        return self._conn

    def close(self) -> None:
        with self._mutex:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._mutex:
            try:
                yield self._connection()
            except sqlite3.DatabaseError as exc:
                raise _store_error(self.path, exc) from exc

    def _save(self, statements: Sequence[tuple[str, tuple[Any, ...]]]) -> None:
        """Run ``statements`` as one transaction: all of them are on disk when this returns,
        or (an error, a crash) none."""
        with self._mutex:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for sql, params in statements:
                        conn.execute(sql, params)
                    conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'generation'")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                raise _store_error(self.path, exc) from exc

    # -- the public methods (as the JSON registry had them) -------------------------------
    def reload(self) -> None:
        """Nothing to do: every read sees the last committed state, whoever wrote it."""

    def get(self, doc_id: str) -> DocumentRecord | None:
        if not doc_id.isascii():  # doc ids are hex; a name given to find() may not even be UTF-8
            return None
        with self._read() as conn:
            row = conn.execute("SELECT record FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        return None if row is None else _record(row[0])

    def all(self) -> list[DocumentRecord]:
        """Every document, pending ones too, by name then doc id."""
        return self._select("", ())

    def complete(self) -> list[DocumentRecord]:
        return self._select("WHERE status = 'complete'", ())

    def pending(self) -> list[DocumentRecord]:
        """Documents being written or deleted (or left so by a crash): few, found by index."""
        return self._select("WHERE status = 'pending'", ())

    def complete_ids(self, among: Sequence[str] | None = None) -> list[str]:
        """The doc ids of the complete documents (only of those ``among`` these, if given)."""
        with self._read() as conn:
            if among is None:
                rows = conn.execute("SELECT doc_id FROM documents WHERE status = 'complete' ORDER BY doc_id").fetchall()
            else:
                wanted = sorted(set(among))
                rows = []
                for start in range(0, len(wanted), 500):  # below SQLite's limit of bound parameters
                    part = wanted[start:start + 500]
                    rows += conn.execute(
                        # "+status": look the ids up by key, never scan the (mostly complete) status index
                        f"SELECT doc_id FROM documents WHERE doc_id IN ({','.join('?' * len(part))}) AND +status = 'complete'",
                        part,
                    ).fetchall()
        return [r[0] for r in rows]

    def by_path(self, path: str) -> DocumentRecord | None:
        found = self._select("WHERE path = ?", (_text(path),))
        return found[0] if found else None

    def holding(self, sha256: str) -> list[DocumentRecord]:
        """The documents made of the bytes with this hash (more than one when several paths
        were updated to the same bytes)."""
        return self._select("WHERE sha256 = ?", (sha256,))

    def put(self, record: DocumentRecord) -> None:
        self._save([(
            "INSERT OR REPLACE INTO documents (doc_id, name, path, basename, sha256, status, record) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            _row(record),
        )])

    def remove(self, doc_id: str) -> None:
        if self.get(doc_id) is not None:
            self._save([("DELETE FROM documents WHERE doc_id = ?", (doc_id,))])

    def find(self, key: str) -> list[DocumentRecord]:
        """Documents matching a doc id (or unique prefix of 8+ chars), a file name or a path."""
        exact = self.get(key)
        if exact is not None:
            return [exact]
        name_hits = self._select("WHERE name = ? OR path = ? OR basename = ?", (_text(key),) * 3)
        if name_hits:
            return name_hits
        if len(key) >= 8 and key.isascii():
            return self._select("WHERE substr(doc_id, 1, ?) = ?", (len(key), key))
        return []

    def generation(self) -> int:
        """A number that changes with every write, by any process: what was computed from the
        documents (the corpus term statistics) is still valid while it is the same."""
        with self._read() as conn:
            return int(conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])

    def __len__(self) -> int:
        with self._read() as conn:
            return int(conn.execute("SELECT count(*) FROM documents").fetchone()[0])

    def _select(self, where: str, params: tuple[Any, ...]) -> list[DocumentRecord]:
        with self._read() as conn:
            rows = conn.execute(f"SELECT record FROM documents {where} ORDER BY name, doc_id", params).fetchall()
        return [_record(r[0]) for r in rows]


def _record(text: str) -> DocumentRecord:
    return DocumentRecord.from_dict(json.loads(text))


def _text(value: str) -> bytes:
    """A name or path as the bytes it is stored and looked up by: file names need not be valid
    UTF-8 (their undecodable bytes are surrogates in Python), which SQLite's text refuses."""
    return value.encode("utf-8", "surrogatepass")


def _row(r: DocumentRecord) -> tuple[Any, ...]:
    """The columns of a record; ``record`` holds all of it (JSON, ASCII-escaped)."""
    return (r.doc_id, _text(r.name), _text(r.path), _text(Path(r.path).name), r.sha256, r.status,
            json.dumps(asdict(r), sort_keys=True))


def _connect(path: Path) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(path, timeout=60.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 60000")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            log.warning("%s: the file system does not allow SQLite's write-ahead log (journal mode %s)", path, mode)
        conn.execute("PRAGMA synchronous = FULL")  # each commit is on disk when put() returns
        # the indexes of 100k documents fit (SQLite's default 2 MB cache makes puts at 100k
        # read their pages back from the OS and cost 3x those at 1k); memory used only as filled
        conn.execute("PRAGMA cache_size = -32768")
        with contextlib.suppress(sqlite3.OperationalError):  # a second process creating it at once
            conn.executescript(_SCHEMA)
        if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("SELECT count(*) FROM documents").fetchone()
    except sqlite3.DatabaseError as exc:
        raise _store_error(path, exc) from exc
    return conn


def _store_error(path: Path, exc: sqlite3.DatabaseError) -> StoreError:
    return StoreError(
        f"{path}: the document registry cannot be read or written ({exc}); "
        f"if the file is damaged, restore it from a backup or rebuild the knowledge base"
    )


def migrate_json_registry(legacy: Path, db: Path) -> int | None:
    """Move the records of an earlier version's ``documents.json`` into ``db``, atomically;
    the JSON file is then renamed to ``documents.json.bak``. Returns the number of records
    migrated, ``None`` when another process had done it. Safe to run from several processes
    at once (they take turns on a lock of the JSON file) and to crash anywhere in."""
    try:
        fh = open(legacy, "rb")
    except FileNotFoundError:
        return None  # another process finished the migration
    backup = legacy.with_name(legacy.name + BACKUP_SUFFIX)
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        if not legacy.exists():
            return None
        if db.exists():  # a migration finished writing the database, then stopped
            _set_aside(legacy, backup, db, None)
            return None
        try:
            raw = json.loads(fh.read().decode("utf-8"))
            records = [DocumentRecord.from_dict(v) for v in raw.get("documents", {}).values()]
        except (ValueError, TypeError) as exc:
            raise StoreError(
                f"{legacy}: corrupt knowledge-base file ({exc}); restore it or rebuild the knowledge base"
            ) from exc
        tmp = db.with_name(db.name + ".migrating")
        for stale in (tmp, tmp.with_name(tmp.name + "-journal")):
            stale.unlink(missing_ok=True)
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = DELETE")
            conn.execute("PRAGMA synchronous = FULL")
            conn.executescript(_SCHEMA)
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT OR REPLACE INTO documents (doc_id, name, path, basename, sha256, status, record) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [_row(r) for r in records],
            )
            conn.execute("COMMIT")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        finally:
            conn.close()
        from rag.atomic import replace_durably

        replace_durably(tmp, db)
        _set_aside(legacy, backup, db, len(records))
        return len(records)


def _set_aside(legacy: Path, backup: Path, db: Path, count: int | None) -> None:
    from rag.atomic import replace_durably

    replace_durably(legacy, backup)
    what = "the documents" if count is None else f"{count} documents"
    log.warning(
        "%s: moved %s into %s (the document registry is SQLite now); the old file is kept as %s",
        legacy, what, db.name, backup.name,
    )
