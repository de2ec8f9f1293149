"""The ``mmrag`` command line.

Exit codes: 0 success; 1 an expected failure (message on stderr, no traceback);
2 a batch where some files failed (each failure reported).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from rag.config import Config, load_config
from rag.errors import ConfigError, MmragError

__all__ = ["main", "build_parser"]

log = logging.getLogger("mmrag.cli")


def _progress(args: argparse.Namespace) -> bool:
    if getattr(args, "no_progress", False) or getattr(args, "json", False) and not sys.stderr.isatty():
        return False
    return sys.stderr.isatty()


def _emit(data: Any) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    # a file name that is not UTF-8 holds lone surrogates: write them as JSON escapes
    # (json.loads gives the same name back) instead of invalid bytes or a UnicodeEncodeError
    sys.stdout.write(text.encode("utf-8", "backslashreplace").decode("utf-8") + "\n")


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
        ("password", "ingest__password"),
        ("backend", "store__backend"),
        ("url", "store__url"),
        ("tenant", "store__tenant"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            overrides[key] = value
    if getattr(args, "config", None) is None and not overrides:
        return None
    return load_config(getattr(args, "config", None), **overrides)


def _open_kb(args: argparse.Namespace, create: bool = False) -> Any:
    from rag.kb import KnowledgeBase

    config = _config(args)
    kb_path = Path(args.kb)
    if config is not None and (kb_path / "manifest.json").exists():
        # An existing knowledge base keeps its models, store and ingest settings;
        # the command line and config file choose how to ask.
        base = KnowledgeBase.open(kb_path).config
        tenant = getattr(args, "tenant", None)
        if tenant is not None and tenant != base.store.tenant:
            raise ConfigError(
                f"{kb_path}: this knowledge base was built as tenant {base.store.tenant!r}; --tenant {tenant} cannot "
                "change that (build another knowledge base for the other tenant)"
            )
        config = replace(base, ask=config.ask)
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
                sys.stderr.write(f"error: {exc}\n")
            continue
        if args.json:
            outputs.append(inspect_json(info, contents))
        else:
            sys.stdout.write(inspect_summary(info, contents) + "\n")
    if args.json:
        _emit(outputs[0] if len(outputs) == 1 else outputs)
    return status


def cmd_ingest(args: argparse.Namespace) -> int:
    def report(r: Any) -> None:
        if not args.json:
            mark = {"indexed": "indexed  ", "unchanged": "unchanged", "failed": "FAILED   "}[r.status]
            tail = f"  {r.error}" if r.error else f"  {r.pages} pages"
            sys.stderr.write(f"{mark} {r.path}{tail}\n")

    from rag.metadata import parse_pairs

    metadata = parse_pairs(args.meta or ())
    with _open_kb(args, create=True) as kb:
        reports = kb.ingest(args.paths, progress=_progress(args), on_report=report, metadata=metadata)
    failed = [r for r in reports if not r.ok]
    if args.json:
        _emit(
            {
                "documents": [
                    {"path": str(r.path), "doc_id": r.doc_id, "status": r.status, "pages": r.pages, "error": r.error, "error_type": r.error_type}
                    for r in reports
                ]
            }
        )
    else:
        n = {s: sum(1 for r in reports if r.status == s) for s in ("indexed", "unchanged", "failed")}
        sys.stderr.write(f"{n['indexed']} indexed, {n['unchanged']} unchanged, {n['failed']} failed\n")
    if not reports:
        sys.stderr.write("error: no PDF or image files found in the given paths\n")
        return 1
    return 2 if failed else 0


def cmd_info(args: argparse.Namespace) -> int:
    with _open_kb(args) as kb:
        info = kb.info()
        docs = kb.documents()
    if args.json:
        info["document_list"] = [
            {"doc_id": d.doc_id, "name": d.name, "path": d.path, "pages": d.pages, "metadata": d.metadata} for d in docs
        ]
        _emit(info)
    else:
        sys.stdout.write(f"{info['path']}: {info['documents']} documents, {info['pages']} pages ({info['store']} store)\n")
        for corpus, c in info["corpora"].items():
            sys.stdout.write(f"  {corpus:8s} {c['points']:7d} points\n")
        for d in docs:
            sys.stdout.write(f"  {d.doc_id[:12]}  {d.pages:5d} pages  {d.name}\n")
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
    if args.json:
        _emit({"documents": [
            {"doc_id": d.doc_id, "name": d.name, "path": d.path, "pages": d.pages, "metadata": d.metadata} for d in docs
        ]})  # fmt: skip
        return 0
    for d in docs:
        meta = "  ".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in d.metadata.items())
        sys.stdout.write(f"{d.doc_id[:12]}  {d.pages:5d} pages  {d.name}{'  ' + meta if meta else ''}\n")
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
        sys.stderr.write(f"metadata of {r.doc_id[:12]} {r.name}: {r.metadata}\n")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    with _open_kb(args) as kb:
        removed = kb.delete(args.doc)
    for r in removed:
        sys.stderr.write(f"deleted {r.doc_id[:12]} {r.name}\n")
    return 0


def _search_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    pages = None
    if args.pages:
        lo, _, hi = args.pages.partition("-")
        pages = (int(lo), int(hi or lo))
    return {"top_k": args.top_k, "documents": args.doc or None, "pages": pages, "where": _where(args)}


def cmd_search(args: argparse.Namespace) -> int:
    if args.question is None and args.image is None:
        sys.stderr.write("error: give a question, or --image FILE to search by an example image\n")
        return 1
    history = _history(args)
    with _open_kb(args) as kb:
        result = kb.search(args.question, image=args.image, history=history, **_search_kwargs(args))
    if args.json:
        _emit(result.to_json())
        return 0
    route = result.route
    if result.rewritten is not None:
        sys.stdout.write(f"searched for: {result.rewritten}\n")
    sys.stdout.write(f"route: {', '.join(f'{c}={w:.2f}' for c, w in zip(route.corpora, route.weights))} ({route.reason})\n")
    for i, hit in enumerate(result.hits, 1):
        label = f" (printed {hit.label})" if hit.label and hit.label != str(hit.page) else ""
        snippet = (hit.evidence[0].text if hit.evidence else "").replace("\n", " ")[:100]
        sys.stdout.write(f"{i:2d}. {hit.source} p.{hit.page}{label}  score {hit.score:.4f}  [{hit.corpus}]  {snippet}\n")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from rag.json_shapes import answer_json

    history = _history(args)
    with _open_kb(args) as kb:
        abstain = kb.config.ask.abstain and not args.no_abstain
        # with abstention on, the generated text may be withdrawn after generation: print only
        # the final answer, never a streamed one followed by "the documents do not say"
        stream = None if args.json or abstain else (lambda tok: (sys.stdout.write(tok), sys.stdout.flush()))
        answer = kb.ask(args.question, top_k=args.top_k, on_token=stream, abstain=abstain, history=history, where=_where(args))
    highlights: list[Path] = []
    if args.highlights:
        from rag.kb import write_highlights

        highlights = write_highlights(answer, args.highlights)
    if args.json:
        _emit({**answer_json(answer), "highlights": [str(p) for p in highlights]})
        return 0
    if stream is None:
        sys.stdout.write(answer.text)
    if not answer.text.endswith("\n"):
        sys.stdout.write("\n")
    if answer.rewritten is not None:
        sys.stdout.write(f"\nsearched for: {answer.rewritten}\n")
    if answer.unsupported:
        # the text above streamed raw; these sentences lost their markers in the final answer
        sys.stdout.write("\nNot found in the evidence they cited (citation removed):\n")
        for sentence in answer.unsupported:
            sys.stdout.write(f"  ! {sentence}\n")
    if answer.citations:
        sys.stdout.write("\nSources:\n")
        for c in answer.citations:
            box = ", ".join(f"{v:.0f}" for v in c.bbox.as_list()) if c.bbox else "whole page"
            label = f", printed page {c.label}" if c.label and c.label != str(c.page) else ""
            sys.stdout.write(f"  [{c.marker}] {c.source}, page {c.page}{label}, box [{box}]\n")
    for path in highlights:
        sys.stdout.write(f"  highlight: {path}\n")
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
        sys.stderr.write(f"FAILED {r.path}: {r.error}\n")
    if args.report:
        Path(args.report).write_text(json.dumps({"summary": summary, "misses": misses_report(results)}, indent=2), encoding="utf-8")
    if args.json:
        _emit(summary)
    else:
        sys.stdout.write(format_summary(summary) + "\n")
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
            sys.stderr.write(f"FAILED {r.path}: {r.error}\n")
    if args.report:
        detail = {name: [asdict(r) for r in rs] for name, rs in results.items()}
        Path(args.report).write_text(json.dumps({"summary": rows, "answers": detail}, indent=2), encoding="utf-8")
    if args.json:
        _emit(rows)
    else:
        sys.stdout.write(format_answer_summary(rows) + "\n")
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
    "ask": cmd_ask, "eval": cmd_eval, "models": cmd_models, "demo": cmd_demo, "serve": cmd_serve,
}


def build_parser() -> argparse.ArgumentParser:
    from rag._cli_parser import build_parser as build

    return build(COMMANDS)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.func(args))
    except MmragError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except BrokenPipeError:
        # the reader went away (`mmrag info | head`): stop quietly, as Unix tools do; point stdout
        # at devnull so the interpreter's final flush does not raise again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
