"""The `mmrag` command line as a user runs it: JSON shapes, exit codes, clear errors."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from rag.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_inspect_json_lists_pages_figures_and_captions(capsys, samples):
    code, out, _ = run(capsys, "inspect", str(samples[0]), "--json")
    assert code == 0
    data = json.loads(out)
    assert len(data["doc_id"]) == 64
    assert [p["page"] for p in data["pages"]] == list(range(1, len(data["pages"]) + 1))
    first = data["pages"][0]
    assert {"page", "width", "height", "text_chars", "ocr", "figures"} <= set(first)
    figures = [f for p in data["pages"] for f in p["figures"]]
    assert {"figure", "table"} <= {f["kind"] for f in figures}
    assert any((f["caption"] or "").startswith("Figure 1") for f in figures)
    assert all(len(f["bbox"]) == 4 for f in figures)
    assert any(p["ocr"] for p in data["pages"]), "the scanned page must be OCR'd"


def test_inspect_a_bad_file_says_which_and_why(capsys, tmp_path):
    bad = tmp_path / "notes.pdf"
    bad.write_text("hello, I am not a PDF")
    code, _, err = run(capsys, "inspect", str(bad))
    assert code == 2
    assert "notes.pdf" in err and "Traceback" not in err


def test_ingest_info_search_ask_delete(capsys, tmp_path, samples):
    kb = str(tmp_path / "kb")
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4\n1 0 obj <<")
    png = tmp_path / "dash.png"
    shutil.copy(samples[-1], png)

    code, out, _ = run(capsys, "ingest", str(png), str(bad), "--kb", kb, "--json")
    assert code == 2
    docs = {d["path"].rsplit("/", 1)[-1]: d for d in json.loads(out)["documents"]}
    assert docs["dash.png"]["status"] == "indexed" and docs["dash.png"]["pages"] == 1
    assert docs["broken.pdf"]["status"] == "failed" and "broken.pdf" in docs["broken.pdf"]["error"]

    code, out, _ = run(capsys, "ingest", str(png), "--kb", kb, "--json")
    assert code == 0 and json.loads(out)["documents"][0]["status"] == "unchanged"

    code, out, _ = run(capsys, "info", "--kb", kb, "--json")
    info = json.loads(out)
    assert info["documents"] == 1 and info["pages"] == 1
    assert set(info["corpora"]) == {"text", "figures", "pages"}
    assert info["corpora"]["pages"]["points"] == 1

    code, out, _ = run(capsys, "search", "today's yield in kWh", "--kb", kb, "--json")
    data = json.loads(out)
    assert code == 0 and data["route"]["corpora"] and data["route"]["reason"]
    hit = data["hits"][0]
    assert {"source", "doc_id", "page", "score", "corpus", "bbox"} <= set(hit)
    assert hit["source"] == "dash.png" and hit["page"] == 1

    code, out, _ = run(capsys, "ask", "What is today's yield?", "--kb", kb, "--json")
    data = json.loads(out)
    assert code == 0 and data["answer"]
    assert data["citations"] and data["citations"][0]["source"] == "dash.png"
    assert {"answer", "citations", "route", "hits"} <= set(data)

    code, _, err = run(capsys, "delete", "dash.png", "--kb", kb)
    assert code == 0 and "deleted" in err
    code, out, _ = run(capsys, "info", "--kb", kb, "--json")
    assert json.loads(out)["documents"] == 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["search", "anything", "--kb", "{tmp}/nowhere"], "no knowledge base here"),
        (["ask", "", "--kb", "{kb}"], "question is empty"),
        (["delete", "no-such-doc.pdf", "--kb", "{kb}"], "no document matches"),
    ],
)
def test_expected_failures_print_one_error_line(capsys, tmp_path, kb_path, argv, message):
    argv = [a.format(tmp=tmp_path, kb=kb_path) for a in argv]
    code, _, err = run(capsys, *argv)
    assert code == 1
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_models_lists_the_registry(capsys):
    code, out, _ = run(capsys, "models", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["all-MiniLM-L6-v2"]["bundled"] is True and rows["all-MiniLM-L6-v2"]["dimension"] == 384
    assert rows["colqwen2"]["role"] == "late_interaction" and rows["colqwen2"]["hub_id"].startswith("vidore/")


def test_ask_writes_highlighted_crops_of_cited_boxes(capsys, tmp_path, kb_path):
    from PIL import Image

    code, out, _ = run(capsys, "ask", "How often should the inverter be inspected?", "--kb", str(kb_path),
                       "--json", "--highlights", str(tmp_path / "hl"))
    data = json.loads(out)
    assert code == 0 and data["highlights"]
    for path in data["highlights"]:
        with Image.open(path) as img:
            colours = {c for _, c in img.convert("RGB").getcolors(maxcolors=1 << 20)}
        assert (230, 30, 30) in colours, "the cited box is drawn"


def test_output_into_a_closed_pipe_ends_quietly():
    # `mmrag models | head -1`: the reader goes away; no traceback on the terminal
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "models"], cwd=root, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(root)})
    proc.stdout.close()  # before the command writes anything
    _, err = proc.communicate(timeout=120)
    assert b"Traceback" not in err and b"BrokenPipe" not in err, err.decode()
    assert proc.returncode == 141
