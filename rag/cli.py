"""The ``mmrag`` command line.

Exit codes: 0 success; 1 an expected failure (message on stderr, no traceback);
2 a batch where some files failed (each failure reported).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from rag._terminal import json_safe_for_terminal, not_utf8, shown
from rag.config import Config, load_config
from rag.errors import ConfigError, MmragError, QueryError

__all__ = ["main", "build_parser"]

log = logging.getLogger("mmrag.cli")



def _count(n: int, noun: str) -> str:
    """``1 page``, ``3 pages``: what the terminal prints for a count."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"

def _progress(args: argparse.Namespace) -> bool:
    """Bars only for a person at a terminal: never with ``--json``, ``--no-progress`` or a
    stderr that is not a terminal (a pipe or a file gets no ``\\r`` and no bar text)."""
    if getattr(args, "no_progress", False) or getattr(args, "json", False):
        return False
    return sys.stderr.isatty()


def _emit(data: Any) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    # a file name that is not UTF-8 holds lone surrogates, document text may hold terminal
    # controls: write them as JSON escapes (json.loads gives the same value back) instead of
    # invalid bytes, a UnicodeEncodeError or a raw ESC on the terminal
    sys.stdout.write(json_safe_for_terminal(text) + "\n")


def _out(text: str) -> None:
    """Human-readable output, terminal controls escaped (newlines and tabs kept)."""
    sys.stdout.write(shown(text, keep_lines=True))


def _err(text: str) -> None:
    sys.stderr.write(shown(text, keep_lines=True))


def _question(text: str | None) -> str | None:
    """The question argument, refused when it is not UTF-8 text (bytes that are not UTF-8 reach
    ``argv`` as lone surrogates, which no tokenizer takes)."""
    if text is not None and not_utf8(text):
        raise QueryError(
            f"the question '{shown(text)}' is not valid UTF-8 text; pass it in UTF-8 "
            "(check the encoding of the terminal or the script that runs mmrag)"
        )
    return text


def _clock(seconds: float) -> str:
    """``75.4`` -> ``1:15``, ``3725`` -> ``1:02:05``."""
    h, rest = divmod(int(seconds), 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _time_range(start: float | None, end: float | None) -> str:
    """`` 0:12–0:41`` for a place in a video or audio file, ``""`` for any other document."""
    if start is None or end is None:
        return ""
    return f" {_clock(start)}–{_clock(math.ceil(end))}"  # whole seconds that cover the span


def _config(args: argparse.Namespace) -> Config | None:
    """The user's config file (if any) with command-line overrides applied."""
    overrides: dict[str, Any] = {}
    for flag, key in (
        ("router", "ask__router"),
        ("reranker", "ask__reranker"),
        ("reranker_model", "ask__reranker_model"),
        ("generator", "ask__generator"),
        ("generator_model", "ask__generator_model"),
        ("api_base", "ask__api_base"),
        ("api_model", "ask__api_model"),
        ("text_model", "models__text"),
        ("image_model", "models__image"),
        ("late_model", "models__late_interaction"),
        ("text_dimension", "models__text_dimension"),
        ("image_dimension", "models__image_dimension"),
        ("page_image_vectors", "models__page_image_vectors"),
        ("dpi", "ingest__dpi"),
        ("ocr", "ingest__ocr"),
        ("profile", "ingest__profile"),
        ("password", "ingest__password"),
        ("workers", "ingest__workers"),
        ("backend", "store__backend"),
        ("url", "store__url"),
        ("engine", "ingest__engine"),
        ("ray_address", "ingest__ray_address"),
        ("tenant", "store__tenant"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            overrides[key] = value
    if getattr(args, "config", None) is None and not overrides:
        return None
    config = load_config(getattr(args, "config", None), **overrides)
    if getattr(args, "ray_address", None) is not None and config.ingest.engine != "ray":
        raise ConfigError("--ray-address is for the Ray engine: add --engine ray (or set [ingest] engine = \"ray\")")
    return config


def _open_kb(args: argparse.Namespace, create: bool = False) -> Any:
    from rag.kb import KnowledgeBase

    config = _config(args)
    kb_path = Path(args.kb)
    if config is not None and (kb_path / "manifest.json").exists():
        # An existing knowledge base keeps its models, store and ingest settings;
        # the command line and config file choose how to ask.
        # The password only opens the files being ingested now (it is never stored), so it
        # applies whatever the knowledge base's state.
        base = KnowledgeBase.open(kb_path).config
        if getattr(args, "profile", None) is not None and args.profile != base.ingest.profile:
            log.warning("%s was built with the %s ingest profile and keeps it: --%s applies to a new knowledge base",
                           kb_path, base.ingest.profile, args.profile)
        tenant = getattr(args, "tenant", None)
        if tenant is not None and tenant != base.store.tenant:
            raise ConfigError(
                f"{kb_path}: this knowledge base was built as tenant {base.store.tenant!r}; --tenant {tenant} cannot "
                "change that (build another knowledge base for the other tenant)"
            )
        # ...and how this run ingests (the engine, the readers and the password are not the knowledge base's)
        run = replace(
            base.ingest, engine=config.ingest.engine, ray_address=config.ingest.ray_address, password=config.ingest.password
        )
        config = replace(base, ask=config.ask, ingest=run)
        if getattr(args, "workers", None) is not None:  # how many readers, not what is read
            config = replace(config, ingest=replace(config.ingest, workers=args.workers))
    return KnowledgeBase.open(kb_path, config, create=create)


def _history(args: argparse.Namespace) -> Any:
    """The turns of ``--history FILE`` (:func:`rag.conversation.read_history`), or ``None``."""
    if args.history is None:
        return None
    from rag.conversation import read_history

    return read_history(args.history)


# -- commands ---------------------------------------------------------------------------
def cmd_inspect(args: argparse.Namespace) -> int:
    from ingest import inspect_json, inspect_summary, open_document

    config = _config(args) or Config()
    status = 0
    outputs = []
    for path in args.files:
        try:
            with open_document(Path(path), config.ingest, image_dir=Path(args.images) if args.images else None) as reader:
                contents = list(reader.pages(progress=_progress(args)))
                info = reader.info
        except MmragError as exc:
            status = 2
            outputs.append({"path": str(path), "error": str(exc), "error_type": type(exc).__name__})
            if not args.json:
                _err(f"error: {exc}\n")
            continue
        if args.json:
            outputs.append(inspect_json(info, contents))
        else:
            _out(inspect_summary(info, contents) + "\n")
    if args.json:
        _emit(outputs[0] if len(outputs) == 1 else outputs)
    return status


def cmd_ingest(args: argparse.Namespace) -> int:
    def report(r: Any) -> None:
        if not args.json:
            mark = {"indexed": "indexed  ", "unchanged": "unchanged", "skipped": "skipped  ", "failed": "FAILED   "}[r.status]
            tail = f"  {r.error}" if r.error else f"  {r.reason}" if r.reason else f"  {_count(r.pages, 'page')}"
            _err(f"{mark} {shown(r.path)}{tail}\n")
            for note in r.notes:  # what was refused or skipped inside the file
                _err(f"          note: {shown(note)}\n")
            sys.stderr.flush()

    from rag.metadata import parse_pairs

    metadata = parse_pairs(args.meta or ())
    with _open_kb(args, create=True) as kb:
        reports = kb.ingest(args.paths, progress=_progress(args), on_report=report, metadata=metadata)
    failed = [r for r in reports if not r.ok]
    if args.json:
        _emit(
            {
                "documents": [
                    {"path": str(r.path), "doc_id": r.doc_id, "status": r.status, "pages": r.pages, "error": r.error,
                     "error_type": r.error_type, "reason": r.reason, "notes": list(r.notes)}
                    for r in reports
                ]
            }
        )
    else:
        n = {s: sum(1 for r in reports if r.status == s) for s in ("indexed", "unchanged", "skipped", "failed")}
        sys.stderr.write(f"{n['indexed']} indexed, {n['unchanged']} unchanged, {n['skipped']} skipped, {n['failed']} failed\n")
    if all(r.status == "skipped" for r in reports):
        found = f" ({len(reports)} skipped, each with its reason)" if reports else ""
        sys.stderr.write(f"error: no supported files found in the given paths{found}\n")
        return 1
    return 2 if failed else 0


def cmd_info(args: argparse.Namespace) -> int:
    with _open_kb(args) as kb:
        info = kb.info()
        docs = kb.documents()
    if args.json:
        info["document_list"] = [
            {"doc_id": d.doc_id, "name": d.name, "path": d.path, "kind": d.kind, "pages": d.pages, "metadata": d.metadata}
            for d in docs
        ]
        _emit(info)
    else:
        _out(f"{shown(info['path'])}: {_count(info['documents'], 'document')}, {_count(info['pages'], 'page')} ({info['store']} store)\n")
        ing = info["ingest"]
        if ing["profile"] != "default":  # what this knowledge base was built without
            _out(f"  ingest profile {ing['profile']}: figure OCR {'on' if ing['figure_ocr'] else 'off'}, table finding "
                 f"{'on' if ing['tables'] else 'off'}, page images at {ing['dpi']} dpi, {ing['chunk_chars']}-character chunks, "
                 f"text model {shown(str(info['models'].get('text')))}\n")
        for corpus, c in info["corpora"].items():
            sys.stdout.write(f"  {corpus:8s} {c['points']:7d} points\n")
        tuned = info.get("tuned")
        if tuned:
            _out(f"  text model tuned on this knowledge base ({tuned['folder']}, from {tuned['base_model']}, "
                 f"{sum(tuned['pairs'].values())} pairs, {_tune_cost(tuned)}); queries use it\n")
        for d in docs:
            _out(f"  {d.doc_id[:12]}  {d.pages:5d} {'page ' if d.pages == 1 else 'pages'}  {shown(d.name)}\n")
    return 0


def _where(args: argparse.Namespace) -> dict[str, Any] | None:
    """``--where KEY=VALUE ...`` as a filter (:func:`rag.metadata.parse_where`), or None."""
    if not getattr(args, "where", None):
        return None
    from rag.metadata import parse_where

    return parse_where(args.where)


def cmd_documents(args: argparse.Namespace) -> int:
    with _open_kb(args) as kb:
        docs = kb.documents(where=_where(args))
        profile = kb.config.ingest.profile  # the ingest profile every document was read with
    if args.json:
        _emit({"documents": [
            {"doc_id": d.doc_id, "name": d.name, "path": d.path, "kind": d.kind, "pages": d.pages, "metadata": d.metadata,
             "profile": profile}
            for d in docs
        ]})  # fmt: skip
        return 0
    for d in docs:
        meta = "  ".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in d.metadata.items())
        _out(f"{d.doc_id[:12]}  {d.pages:5d} {'page ' if d.pages == 1 else 'pages'}  {shown(d.name)}{'  ' + shown(meta) if meta else ''}\n")
    sys.stderr.write(f"{len(docs)} documents\n")
    return 0


def cmd_set_meta(args: argparse.Namespace) -> int:
    from rag.metadata import parse_pairs

    metadata = parse_pairs(args.meta or ())
    with _open_kb(args) as kb:
        updated = kb.set_metadata(args.doc, metadata)
    if args.json:
        _emit({"documents": [{"doc_id": r.doc_id, "name": r.name, "metadata": r.metadata} for r in updated]})
    for r in updated:
        _err(f"metadata of {r.doc_id[:12]} {shown(r.name)}: {shown(r.metadata)}\n")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    with _open_kb(args) as kb:
        removed = kb.delete(args.doc)
    for r in removed:
        _err(f"deleted {r.doc_id[:12]} {shown(r.name)}\n")
    return 0


def _search_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    # --pages and --top-k are parsed and checked by the parser (rag._cli_parser)
    return {"top_k": args.top_k, "documents": args.doc or None, "pages": args.pages, "where": _where(args)}


def cmd_search(args: argparse.Namespace) -> int:
    if args.question is None and args.image is None:
        sys.stderr.write("error: give a question, or --image FILE to search by an example image\n")
        return 1
    question = _question(args.question)
    history = _history(args)
    with _open_kb(args) as kb:
        result = kb.search(question, image=args.image, history=history, **_search_kwargs(args))
    if args.json:
        _emit(result.to_json())
        return 0
    route = result.route
    if result.rewritten is not None:
        _out(f"searched for: {shown(result.rewritten)}\n")
    _out(f"route: {', '.join(f'{c}={w:.2f}' for c, w in zip(route.corpora, route.weights))} ({route.reason})\n")
    for i, hit in enumerate(result.hits, 1):
        label = f" (printed {hit.label})" if hit.label and hit.label != str(hit.page) else ""
        snippet = (hit.evidence[0].text if hit.evidence else "").replace("\n", " ")[:100]
        _out(f"{i:2d}. {shown(hit.source)} p.{hit.page}{shown(label)}{_time_range(hit.start, hit.end)}  score {hit.score:.4f}  [{hit.corpus}]  {shown(snippet)}\n")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from rag.json_shapes import answer_json

    question = _question(args.question)
    history = _history(args)
    with _open_kb(args) as kb:
        abstain = kb.config.ask.abstain and not args.no_abstain
        # with abstention on, the generated text may be withdrawn after generation: print only
        # the final answer, never a streamed one followed by "the documents do not say"
        stream = None if args.json or abstain else (lambda tok: (_out(tok), sys.stdout.flush()))
        answer = kb.ask(question, top_k=args.top_k, on_token=stream, abstain=abstain, history=history, where=_where(args))
    highlights: list[Path] = []
    if args.highlights:
        from rag.kb import write_highlights

        highlights = write_highlights(answer, args.highlights)
    if args.json:
        _emit({**answer_json(answer), "highlights": [str(p) for p in highlights]})
        return 0
    if stream is None:
        _out(answer.text)
    if not answer.text.endswith("\n"):
        sys.stdout.write("\n")
    if answer.rewritten is not None:
        _out(f"\nsearched for: {shown(answer.rewritten)}\n")
    if answer.unsupported:
        # the text above streamed raw; these sentences lost their markers in the final answer
        sys.stdout.write("\nNot found in the evidence they cited (citation removed):\n")
        for sentence in answer.unsupported:
            _out(f"  ! {shown(sentence)}\n")
    if answer.citations:
        sys.stdout.write("\nSources:\n")
        for c in answer.citations:
            box = ", ".join(f"{v:.0f}" for v in c.bbox.as_list()) if c.bbox else "whole page"
            label = f", printed page {c.label}" if c.label and c.label != str(c.page) else ""
            when = f",{_time_range(c.start, c.end)}" if c.start is not None else ""
            _out(f"  [{c.marker}] {shown(c.source)}, page {c.page}{shown(label)}{when}, box [{box}]\n")
    for path in highlights:
        _out(f"  highlight: {shown(path)}\n")
    return 0


def _tune_cost(tuned: dict[str, Any]) -> str:
    cpu = tuned.get("cpu_minutes")
    return f"{cpu} CPU min" if cpu is not None else f"{tuned['minutes']} min"


def cmd_tune(args: argparse.Namespace) -> int:
    with _open_kb(args) as kb:
        report = kb.tune(minutes=args.minutes, batch_size=args.batch_size, progress=_progress(args))
    data = report.to_dict()
    if args.json:
        _emit(data)
        return 0
    pairs = ", ".join(f"{n} {kind}" for kind, n in data["pairs"].items())
    _out(
        f"tuned {data['base_model']} on {sum(data['pairs'].values())} pairs from the documents ({pairs}): "
        f"{data['steps']} steps in {data['train_seconds'] / 60:.1f} min (stopped by {data['stopped_by']}); "
        f"{data['seconds'] / 60:.1f} min in all, {data['cpu_seconds'] / 60:.1f} min CPU\n"
        f"held-out pairs ({data['held_out']}), anchor finds its passage: {data['held_out_recall_before']:.3f} before, "
        f"{data['held_out_recall_after']:.3f} after\n"
        f"re-embedded {sum(data['points'].values())} points; queries now use {shown(data['model'])}\n"
    )
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from rag._models import list_models

    rows = list_models()
    if args.json:
        _emit(rows)
        return 0
    sys.stdout.write(f"{'name':26s} {'family':22s} {'role':17s} {'dim':>5s}  {'offline':7s} {'hub id':42s} status\n")
    for r in rows:
        where = "bundled" if r["bundled"] else ("folder" if r["hub_id"] is None and r["name"].startswith("<") else "hub")
        status = "supported" if r["supported"] else f"UNSUPPORTED: {r['reason']}"
        sys.stdout.write(
            f"{r['name']:26s} {r['family']:22s} {r['role']:17s} {str(r['dimension'] or '-'):>5s}  "
            f"{where:7s} {r['hub_id'] or '-':42s} {status}\n"
        )
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from rag.eval import format_summary, misses_report, run_eval

    if args.answers:
        return _eval_answers(args)
    if args.unanswerable:
        raise ConfigError("--unanswerable goes with --answers (it scores abstention, not page retrieval)")
    summary, results, reports = run_eval(
        args.questions, args.docs, args.kb, config=_config(args), top_k=args.top_k, progress=_progress(args),
        manifest=args.manifest,
    )
    failed = [r for r in reports if not r.ok]
    for r in failed:
        _err(f"FAILED {shown(r.path)}: {r.error}\n")
    if args.report:
        Path(args.report).write_text(json.dumps({"summary": summary, "misses": misses_report(results)}, indent=2), encoding="utf-8")
    if args.json:
        _emit(summary)
    else:
        _out(format_summary(summary) + "\n")
    return 0


def _eval_answers(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from rag.eval_answers import format_answer_summary, run_answer_eval

    rows, results, reports = run_answer_eval(
        args.questions, args.docs, args.kb, unanswerable_path=args.unanswerable, config=_config(args),
        progress=_progress(args), manifest=args.manifest,
    )
    for r in reports:
        if not r.ok:
            _err(f"FAILED {shown(r.path)}: {r.error}\n")
    if args.report:
        detail = {name: [asdict(r) for r in rs] for name, rs in results.items()}
        Path(args.report).write_text(json.dumps({"summary": rows, "answers": detail}, indent=2), encoding="utf-8")
    if args.json:
        _emit(rows)
    else:
        _out(format_answer_summary(rows) + "\n")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from rag._demo import run_demo

    return run_demo(Path(args.dir), question=args.question, progress=_progress(args))


def cmd_serve(args: argparse.Namespace) -> int:
    from rag.server import read_token, serve

    token = read_token(args.token_file)
    serve(args.kb, host=args.host, port=args.port, token=token, config=_config(args),
          max_upload_bytes=args.max_upload_mb * 1024**2, log_level="info" if args.verbose else "warning")
    return 0


# -- parser -------------------------------------------------------------------------------
COMMANDS = {
    "inspect": cmd_inspect, "ingest": cmd_ingest, "info": cmd_info, "documents": cmd_documents, "delete": cmd_delete,
    "set-meta": cmd_set_meta, "search": cmd_search,
    "ask": cmd_ask, "tune": cmd_tune, "eval": cmd_eval, "models": cmd_models, "demo": cmd_demo, "serve": cmd_serve,
}


def build_parser() -> argparse.ArgumentParser:
    from rag._cli_parser import build_parser as build

    return build(COMMANDS)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0), or a bad argument already reported as "error: ..." (1)
        return exc.code if isinstance(exc.code, int) else 1
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for handler in logging.getLogger().handlers:  # log lines name files too: escape them as well
        if type(handler) is logging.StreamHandler and handler.stream is sys.stderr:
            handler.setFormatter(_EscapingFormatter("%(levelname)s %(name)s: %(message)s"))
    try:
        return int(args.func(args))
    except MmragError as exc:
        _err(f"error: {exc}\n")
        return 1
    except BrokenPipeError:
        return _broken_pipe()
    except OSError as exc:  # a folder that is a file, a full disk, no permission: say which path
        where = f"{exc.filename}: " if exc.filename is not None else ""
        _err(f"error: {where}{exc.strerror or exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except Exception as exc:  # a bug, not a bad argument: one line; the traceback only when asked (-v)
        _err(f"error: unexpected {type(exc).__name__}: {exc} (a bug in mmrag: run again with -v for the traceback, and report it)\n")
        if args.verbose:
            log.error("traceback of the unexpected error", exc_info=exc)
        return 1


class _EscapingFormatter(logging.Formatter):
    """Log lines with terminal controls escaped (a file name in a warning is data, not a command)."""

    def format(self, record: logging.LogRecord) -> str:
        return shown(super().format(record), keep_lines=True)


def _broken_pipe() -> int:
    # the reader went away (`mmrag info | head`): stop quietly, as Unix tools do; point stdout
    # at devnull so the interpreter's final flush does not raise again
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 141


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
