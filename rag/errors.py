"""The exception tree of mmrag.

Every error mmrag raises on purpose derives from :class:`MmragError`, so a caller
can catch the whole family with one ``except``; the subclasses say what kind of
failure it was::

    MmragError
    ├── ConfigError                 a setting that cannot work (bad value, bad TOML)
    ├── MissingDependencyError      an optional extra is not installed (message has the pip line)
    ├── DocumentError               one input file cannot be ingested (carries .path)
    │   ├── UnreadableFileError     missing, a directory, no permission, symlink loop
    │   ├── UnsupportedFormatError  neither a PDF nor a supported image
    │   ├── CorruptDocumentError    truncated or broken file the engine cannot open
    │   ├── EncryptedDocumentError  password protected, no (or a wrong) password
    │   ├── EmptyDocumentError      zero pages
    │   ├── ResourceLimitError      a page, an image or the file exceeds a configured limit
    │   ├── WorkerDiedError         the extraction worker process died reading it (native crash, kill)
    │   └── FileChangedError        the file was modified while it was being read, twice
    ├── ModelError                  a model cannot be resolved or loaded
    │   └── UnknownModelError       a name that is neither in the registry nor a folder
    ├── StoreError                  the vector store failed (backend errors are mapped here)
    │   ├── KnowledgeBaseNotFoundError
    │   ├── DocumentNotFoundError   no document of the knowledge base matches the name given
    │   ├── KnowledgeBaseLockedError
    │   └── EmbedderMismatchError   the knowledge base was built with another embedder
    ├── QueryError                  a question that cannot be asked (empty, too long)
    │   └── HistoryError            a conversation history that cannot be read (file, line, problem)
    └── GeneratorError              the answer generator failed (endpoint down, garbage back)

Messages say what was expected, what was got, and how to fix it.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "MmragError",
    "ConfigError",
    "MissingDependencyError",
    "DocumentError",
    "UnreadableFileError",
    "UnsupportedFormatError",
    "CorruptDocumentError",
    "EncryptedDocumentError",
    "EmptyDocumentError",
    "ResourceLimitError",
    "WorkerDiedError",
    "FileChangedError",
    "ModelError",
    "UnknownModelError",
    "StoreError",
    "KnowledgeBaseNotFoundError",
    "DocumentNotFoundError",
    "KnowledgeBaseLockedError",
    "EmbedderMismatchError",
    "QueryError",
    "HistoryError",
    "GeneratorError",
]


class MmragError(Exception):
    """Root of every error mmrag raises on purpose."""


class ConfigError(MmragError):
    """A configuration value that cannot work."""


class MissingDependencyError(MmragError):
    """An optional dependency is not installed; the message carries the install line."""

    def __init__(self, package: str, extra: str | None = None, purpose: str = "", install: str | None = None) -> None:
        target = f"mmrag[{extra}]" if extra else package
        what = f" (needed for {purpose})" if purpose else ""
        # ``install``: the command for what pip cannot install (a Debian program)
        command = f"pip install '{target}'" if install is None else install
        super().__init__(f"{package} is not installed{what}: run `{command}`")
        self.package = package
        self.extra = extra


class DocumentError(MmragError):
    """One input file cannot be ingested. ``path`` names it, ``reason`` says why."""

    def __init__(self, path: str | Path, reason: str) -> None:
        if not str(reason).strip():  # a reason of nothing tells the user nothing: never let one through
            reason = f"{type(self).__name__} without a reason (a bug in mmrag: please report it with this file)"
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


class UnreadableFileError(DocumentError):
    """The path cannot be read: missing, a directory, no permission, a symlink loop."""


class UnsupportedFormatError(DocumentError):
    """The file is neither a PDF nor a supported image format."""


class CorruptDocumentError(DocumentError):
    """The file claims a supported format but the engine cannot read it."""


class EncryptedDocumentError(DocumentError):
    """The PDF is encrypted and no (or a wrong) password was given."""


class EmptyDocumentError(DocumentError):
    """The document has no pages."""


class ResourceLimitError(DocumentError):
    """The file, a page or an image exceeds a configured resource limit."""


class WorkerDiedError(DocumentError):
    """The extraction worker process died while reading this file (a native crash or a kill)."""


class FileChangedError(DocumentError):
    """The file's bytes changed while it was being read (and again when it was read a second
    time): nothing of it is indexed; ingest it again once nothing writes it."""


class ModelError(MmragError):
    """A model cannot be resolved or loaded."""


class UnknownModelError(ModelError):
    """A model name is neither registered nor a local folder."""


class StoreError(MmragError):
    """The vector store failed; backend exceptions are mapped to this family."""


class KnowledgeBaseNotFoundError(StoreError):
    """The knowledge-base folder does not exist or holds no knowledge base."""


class DocumentNotFoundError(StoreError):
    """No document of the knowledge base matches the doc id, file name or path given."""


class KnowledgeBaseLockedError(StoreError):
    """Another process holds the knowledge base open for writing."""


class EmbedderMismatchError(StoreError):
    """The knowledge base was built with other models than the ones asked for."""


class QueryError(MmragError):
    """A question that cannot be asked as given."""


class HistoryError(QueryError):
    """The earlier turns of a conversation (``--history FILE``, a ``history`` list) are not usable."""


class GeneratorError(MmragError):
    """The answer generator failed."""
