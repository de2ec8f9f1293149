"""The ``mmrag`` argument parser: subcommands and their options (the commands are in ``rag.cli``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import NoReturn

from rag._terminal import shown

__all__ = ["build_parser", "MAX_TOP_K", "MAX_PAGE", "top_k", "page_range"]

Command = Callable[[argparse.Namespace], int]

#: The largest ``--top-k`` (and the HTTP API's ``top_k``): page hits per question.
MAX_TOP_K = 50
#: The largest physical page a range may name (the HTTP API's ``page_from``/``page_to`` too).
MAX_PAGE = 100_000


class _Parser(argparse.ArgumentParser):
    """argparse with the command line's one failure shape: ``error: ...`` on stderr, exit 1
    (argparse's own is a usage block and exit 2, which ``mmrag`` keeps for batches where some
    files failed). The message is escaped: a bad argument may hold terminal controls."""

    def error(self, message: str) -> NoReturn:
        self.exit(1, f"error: {shown(message)} (see {self.prog} --help)\n")


def _int(text: str, what: str, lo: int, hi: int | None) -> int:
    allowed = f"within {lo}..{hi}" if hi is not None else f"at least {lo}"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be a whole number {allowed}, got {text!r}") from None
    if value < lo or (hi is not None and value > hi):
        raise argparse.ArgumentTypeError(f"{what} must be {allowed}, got {value}")
    return value


def top_k(text: str) -> int:
    """``--top-k``: page hits, 1..:data:`MAX_TOP_K` (0 would ask for nothing; the HTTP API refuses it too)."""
    return _int(text, "top-k", 1, MAX_TOP_K)


def page_range(text: str) -> tuple[int, int]:
    """``--pages``: ``N`` or ``FIRST-LAST``, physical 1-based pages, first <= last."""
    lo, dash, hi = text.strip().partition("-")
    if not lo.strip() or (dash and not hi.strip()):
        raise argparse.ArgumentTypeError(f"pages must be N or FIRST-LAST (physical pages, e.g. 3-7), got {text!r}")
    first = _int(lo.strip(), "the first page", 1, MAX_PAGE)
    last = _int(hi.strip(), "the last page", 1, MAX_PAGE) if dash else first
    if last < first:
        raise argparse.ArgumentTypeError(f"pages {text!r}: the last page ({last}) is before the first ({first}); write FIRST-LAST")
    return first, last


def _positive(text: str) -> int:
    return _int(text, "the value", 1, None)


def _minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"minutes must be a number above 0, got {text!r}") from None
    if not 0 < value <= 24 * 60:
        raise argparse.ArgumentTypeError(f"minutes must be above 0 and at most 1440, got {text}")
    return value


def _int_at_least_2(text: str) -> int:
    return _int(text, "the batch size", 2, None)


def _add_common(p: argparse.ArgumentParser, kb: bool = True) -> None:
    if kb:
        p.add_argument("--kb", required=True, help="knowledge-base folder")
    p.add_argument("--config", help="TOML config file ([ingest], [models], [store], [ask])")
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _add_ask_options(p: argparse.ArgumentParser, question_optional: bool = False) -> None:
    if question_optional:
        p.add_argument("question", nargs="?", default=None, help="the question (optional with --image)")
    else:
        p.add_argument("question")
    p.add_argument("--top-k", type=top_k, default=None, help=f"number of page hits, 1..{MAX_TOP_K} (default 5)")
    p.add_argument("--router", choices=["rules", "embedding", "hybrid", "llm", "all"])
    p.add_argument("--reranker", choices=["none", "late-interaction", "cross-encoder", "vlm"])
    p.add_argument("--reranker-model", help="registered name (mmrag models), hub id or folder of the reranker model")
    p.add_argument("--where", action="append", metavar="KEY=VALUE",
                   help="only documents whose metadata matches (repeatable: all must match; KEY=V1,V2: any of the "
                   "values); values are typed as in --meta")
    p.add_argument("--history", metavar="FILE",
                   help="earlier turns of the conversation, oldest first: JSON lines or a JSON list of {question, answer}, "
                   "or mmrag ask --json outputs appended one after another; a follow-up that refers back is searched "
                   "for with the earlier turn's subject (the last 3 turns are used)")


def build_parser(commands: Mapping[str, Command]) -> argparse.ArgumentParser:
    """The parser; each subcommand's ``func`` default is ``commands[name]``."""
    parser = _Parser(prog="mmrag", description="Multimodal RAG over PDFs and images, cited to the page and the box.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("inspect", help="show what ingestion extracts from files, without indexing")
    p.add_argument("files", nargs="+")
    p.add_argument("--images", help="also write page images and crops to this folder")
    p.add_argument("--dpi", type=int)
    p.add_argument("--ocr", choices=["auto", "never", "always"])
    p.add_argument("--password")
    _add_common(p, kb=False)
    p.set_defaults(func=commands["inspect"])

    p = sub.add_parser("ingest", help="add files and folders to a knowledge base")
    p.add_argument("paths", nargs="+")
    p.add_argument("--dpi", type=int)
    p.add_argument("--ocr", choices=["auto", "never", "always"])
    p.add_argument("--password")
    p.add_argument("--workers", type=int, help="processes reading documents while this one embeds (ingest.workers; 1 = in-process)")
    p.add_argument("--fast", action="store_const", const="fast", dest="profile",
                   help="the fast ingest profile for bulk loads (ingest.profile = \"fast\"): no figure OCR, 72 dpi page "
                   "images, 700-character chunks embedded by paraphrase-MiniLM-L3-v2; settings given in the config file still win")
    p.add_argument("--text-model", help="text embedder (name or folder); default all-MiniLM-L6-v2 (--fast: paraphrase-MiniLM-L3-v2)")
    p.add_argument("--image-model", help="image embedder for figures (e.g. clip-vit-b-32 or a folder)")
    p.add_argument("--late-model", help="late-interaction model for pages (e.g. colqwen2 or a folder)")
    p.add_argument("--text-dimension", type=int, help="truncate text vectors to N values (Matryoshka-trained models)")
    p.add_argument("--image-dimension", type=int, help="truncate image vectors to N values (Matryoshka-trained models)")
    p.add_argument("--page-image-vectors", action="store_true", default=None,
                   help="with --image-model, also embed whole pages (search --image then finds pages too)")
    p.add_argument("--backend", choices=["edge", "qdrant"])
    p.add_argument("--url", help="Qdrant server URL (with --backend qdrant)")
    p.add_argument("--engine", choices=["local", "ray"],
                   help="ray: read files as Ray tasks and embed in a Ray actor pool (needs mmrag[ray]); default local")
    p.add_argument("--ray-address", help="with --engine ray: the Ray cluster (host:port, ray://host:port or auto); "
                   "default: a local Ray instance")
    p.add_argument("--meta", action="append", metavar="KEY=VALUE",
                   help="metadata of these files (repeatable), e.g. --meta team=finance --meta year=2025; a value "
                   "spelled true/false is a boolean, 2025 an integer, 9.5 a number, anything else a string")
    p.add_argument("--tenant", help="with --backend qdrant: this knowledge base's tenant name on a server shared "
                   "with other knowledge bases (set when it is created)")
    _add_common(p)
    p.set_defaults(func=commands["ingest"])

    p = sub.add_parser("info", help="documents, pages and points of a knowledge base")
    _add_common(p)
    p.set_defaults(func=commands["info"])

    p = sub.add_parser("documents", help="the documents of a knowledge base with their metadata")
    p.add_argument("--where", action="append", metavar="KEY=VALUE",
                   help="only documents whose metadata matches (as in search)")
    _add_common(p)
    p.set_defaults(func=commands["documents"])

    p = sub.add_parser("set-meta", help="replace a document's metadata without indexing it again")
    p.add_argument("doc", help="doc id (or 8+ characters of it), file name or path")
    p.add_argument("--meta", action="append", metavar="KEY=VALUE",
                   help="the new metadata, every key (repeatable; typed as in ingest); none clears it")
    _add_common(p)
    p.set_defaults(func=commands["set-meta"])

    p = sub.add_parser("delete", help="remove a document (doc id, file name or path)")
    p.add_argument("doc")
    _add_common(p)
    p.set_defaults(func=commands["delete"])

    p = sub.add_parser("search", help="page-level hits for a question, or for an example image (--image)")
    _add_ask_options(p, question_optional=True)
    p.add_argument("--image", help="search by this image: pages whose figures look like it (with a question too: "
                                   "a text+image query, for VLM image models); needs a KB built with --image-model")
    p.add_argument("--doc", action="append", help="restrict to a document (repeatable)")
    p.add_argument("--pages", type=page_range, help="restrict to a physical page range, e.g. 3-7 (or one page: 4)")
    _add_common(p)
    p.set_defaults(func=commands["search"])

    p = sub.add_parser("ask", help="answer a question with citations")
    _add_ask_options(p)
    p.add_argument("--generator", choices=["extractive", "local", "openai"])
    p.add_argument("--generator-model", help="local VLM (registered name, hub id or folder) for --generator local")
    p.add_argument("--api-base", help="OpenAI-compatible base URL for --generator openai")
    p.add_argument("--api-model", help="model name at the API")
    p.add_argument("--highlights", help="write a PNG of each cited region, box drawn, into this folder")
    p.add_argument("--no-abstain", action="store_true",
                   help="always show the generated answer, even when the evidence does not seem to answer ([ask] abstain)")
    _add_common(p)
    p.set_defaults(func=commands["ask"])

    p = sub.add_parser("tune", help="adapt the text model to this knowledge base on CPU (opt-in; needs torch)")
    p.add_argument("--minutes", type=_minutes, default=5.0, help="training budget in CPU minutes of this process (default 5; the same steps on a busy machine); "
                   "exporting the model and embedding the knowledge base again come on top")
    p.add_argument("--batch-size", type=_int_at_least_2, default=16, help="pairs per step (the others are its negatives)")
    _add_common(p)
    p.set_defaults(func=commands["tune"])

    p = sub.add_parser("eval", help="score page retrieval on questions with gold pages")
    p.add_argument("--questions", required=True, help="JSON lines: {id, doc_id, question, gold_pages, type}")
    p.add_argument("--docs", required=True, help="folder of the documents the questions are about")
    p.add_argument("--kb", default=".mmrag-eval-kb", help="knowledge base to build or reuse (default .mmrag-eval-kb)")
    p.add_argument("--top-k", type=top_k, default=10, help=f"pages retrieved per question, 1..{MAX_TOP_K}")
    p.add_argument("--report", help="write per-question misses (what was retrieved instead) to this JSON file")
    p.add_argument("--manifest", help='JSON restricting documents to page ranges: {"documents": [{"doc_id": "a.pdf", "pages": [3, 9]}]}')
    p.add_argument("--answers", action="store_true",
                   help="score answers (ask) instead of page retrieval: first citation on a gold page, key facts, length, "
                   "abstention; beside the top retrieved chunk as a baseline")
    p.add_argument("--unanswerable", help="with --answers: JSON lines of questions the documents cannot answer {id, question}")
    p.add_argument("--router", choices=["rules", "embedding", "hybrid", "llm", "all"])
    p.add_argument("--reranker", choices=["none", "late-interaction", "cross-encoder", "vlm"])
    p.add_argument("--config", help="TOML config file")
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=commands["eval"])

    p = sub.add_parser("models", help="list the model registry")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=commands["models"])

    p = sub.add_parser("demo", help="generate sample documents, build a knowledge base, ask a question")
    p.add_argument("--dir", default=".mmrag-demo", help="where the samples and the knowledge base go")
    p.add_argument("--question", default=None)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=commands["demo"])

    p = sub.add_parser("serve", help="HTTP API and web page over a knowledge base (needs mmrag[web])")
    p.add_argument("--kb", required=True, help="knowledge-base folder (created if missing)")
    p.add_argument("--host", default="127.0.0.1", help="without a token, loopback only whatever is given")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--token-file", help="file holding the bearer token (default: $MMRAG_API_TOKEN)")
    p.add_argument("--max-upload-mb", type=_positive, default=100, help="largest accepted upload per file, in MiB")
    p.add_argument("--config", help="TOML config file ([ask] settings apply)")
    p.set_defaults(func=commands["serve"])
    return parser
