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


# -- bad arguments: one error line, exit 1, never a traceback (issue 21) --------------------------
@pytest.mark.parametrize(
    "argv, message",
    [
        (["search", "valve", "--pages", "abc"], "--pages"),
        (["search", "valve", "--pages", "5-2"], "before the first"),
        (["search", "valve", "--pages", "0-3"], "within 1..100000"),
        (["search", "valve", "--pages", "-3"], "FIRST-LAST"),
        (["search", "valve", "--top-k", "-1"], "within 1..50"),
        (["search", "valve", "--top-k", "0"], "within 1..50"),  # the HTTP API refuses top_k 0 too
        (["ask", "valve", "--top-k", "0"], "within 1..50"),
        (["search", "valve", "--top-k", "abc"], "whole number"),
        (["search", os.fsdecode(b"valve \xff\xfe stem")], "not valid UTF-8"),  # bytes in argv that are not UTF-8
        (["ask", os.fsdecode(b"\xc3\x28")], "not valid UTF-8"),
        (["search", "valve", "--history", "{binary}"], "history file"),
        (["search", "valve", "--history", "{tmp}"], "history file"),
        (["search", "valve", "--config", "{binary}"], "UTF-8 TOML"),
        (["search", "valve", "--config", "{tmp}"], "cannot read the config file"),
        (["serve", "--token-file", "{binary}"], "token file is not UTF-8"),
        (["serve", "--max-upload-mb", "0"], "at least 1"),
        (["ingest", "x.pdf", "--dpi", "many"], "--dpi"),
        (["search", "valve", "--router", "\x1b[2Jnope"], "invalid choice"),
    ],
)
def test_bad_arguments_are_one_error_line_and_exit_1(capsys, tmp_path, argv, message):
    binary = tmp_path / "binary.bin"
    binary.write_bytes(b"\x00\xff\xfe\x89PNG\r\n\x1a\n")
    argv = [a.format(binary=binary, tmp=tmp_path) for a in argv]
    if argv[0] != "serve" and "--kb" not in argv:
        argv += ["--kb", str(tmp_path / "kb")]
    elif argv[0] == "serve":
        argv += ["--kb", str(tmp_path / "kb")]
    code, out, err = run(capsys, *argv)
    assert code == 1, (code, err)
    assert err.startswith("error: ") and message in err and "Traceback" not in err, err
    assert "\x1b" not in err and err.count("\n") == 1


def test_an_unexpected_failure_is_one_line_not_a_traceback(capsys, tmp_path):
    # `demo --dir` at a file: an OSError the command did not expect, named with its path
    target = tmp_path / "a-file"
    target.write_text("x")
    code, _, err = run(capsys, "demo", "--dir", str(target), "--no-progress")
    assert code == 1 and err.startswith("error: ") and str(target) in err and "Traceback" not in err, err


def _encrypted_pdf(path: Path, text: str, password: str) -> Path:
    import pymupdf

    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), text)
    doc.save(path, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw=password, owner_pw=password)
    doc.close()
    return path


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def test_control_characters_in_names_and_text_never_reach_the_terminal_raw(capsys, tmp_path):
    from tests._live_server import tiny_pdf

    docs = tmp_path / "docs"
    docs.mkdir()
    hostile = tiny_pdf(docs / "evil\x1b]0;pwned\x07\x1b[2J\u202ename.pdf", ["Pump \x1b[31mservice\x9b", "Oil the pump every 9 days."])
    kb = str(tmp_path / "kb")
    outputs = []
    for argv in (
        ["ingest", str(docs), "--kb", kb, "--no-progress"],
        ["info", "--kb", kb],
        ["search", "how often is the pump oiled", "--kb", kb],
        ["ask", "how often is the pump oiled", "--kb", kb],
        ["ingest", str(docs), "--kb", kb, "--json"],
        ["search", "pump", "--kb", kb, "--json"],
        ["delete", hostile.name, "--kb", kb],
    ):
        code, out, err = run(capsys, *argv)
        assert code == 0, err
        outputs.append(out + err)
        if "--json" in argv:
            assert any(s.endswith(hostile.name) for s in _strings(json.loads(out)))  # still JSON: the name given back exactly
    text = "".join(outputs)
    assert not any(c in text for c in ("\x1b", "\x07", "\x9b", "\u202e")), [o[:300] for o in outputs]
    assert "evil\\x1b]0;pwned\\x07" in text  # shown, escaped


def test_password_is_used_when_the_knowledge_base_already_exists(capsys, tmp_path):
    from tests._live_server import tiny_pdf

    kb = str(tmp_path / "kb")
    plain = tiny_pdf(tmp_path / "plain.pdf", ["Valve service", "Grease the valve stem every 500 cycles."])
    code, _, err = run(capsys, "ingest", str(plain), "--kb", kb, "--no-progress")
    assert code == 0, err
    secret = _encrypted_pdf(tmp_path / "secret.pdf", "The vault combination is changed every 30 days.", "s3cret")
    code, out, err = run(capsys, "ingest", str(secret), "--kb", kb, "--password", "s3cret", "--json")
    assert code == 0, err
    assert json.loads(out)["documents"][0]["status"] == "indexed"
    assert "s3cret" not in (tmp_path / "kb" / "manifest.json").read_text()  # used, never stored


def test_log_lines_escape_file_names_too(tmp_path):
    # the warning logged for a failed file names it; in a real terminal run it goes through logging
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "x\x1b[31m\x07.pdf").write_bytes(b"not a pdf")
    proc = subprocess.run([sys.executable, "-m", "rag.cli", "ingest", str(docs), "--kb", str(tmp_path / "kb"), "--no-progress"],
                          cwd=root, capture_output=True, env={**os.environ, "PYTHONPATH": str(root)}, timeout=300)
    assert proc.returncode == 2, proc.stderr.decode(errors="replace")
    assert b"WARNING" in proc.stderr and b"x\\x1b[31m\\x07.pdf" in proc.stderr
    assert b"\x1b" not in proc.stderr and b"\x07" not in proc.stderr and b"Traceback" not in proc.stderr


def _pdf_with_a_jpeg_bomb(path: Path) -> Path:
    """A page of text beside a JPEG whose own header says 60000 x 60000 (its dictionary: 10 x 10)."""
    import struct
    from io import BytesIO

    import pymupdf
    from PIL import Image

    buf = BytesIO()
    Image.new("RGB", (16, 16), "gray").save(buf, format="JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5: sof + 9] = struct.pack(">HH", 60_000, 60_000)
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 72), "The pump manual says to bleed the valve before service.")
    xref = doc.get_new_xref()
    doc.update_object(xref, "<</Type/XObject/Subtype/Image/Width 10/Height 10/ColorSpace/DeviceRGB/BitsPerComponent 8>>")
    doc.update_stream(xref, bytes(data), compress=False)
    doc.xref_set_key(xref, "Filter", "/DCTDecode")
    resources = int(doc.xref_get_key(page.xref, "Resources")[1].split()[0])  # insert_text made it indirect
    doc.xref_set_key(resources, "XObject/Photo", f"{xref} 0 R")
    contents = page.get_contents()[0]
    doc.update_stream(contents, doc.xref_stream(contents) + b"\nq 200 0 0 200 100 300 cm /Photo Do Q")
    doc.save(path)
    return path


def test_an_image_refused_inside_an_indexed_file_is_reported_not_only_logged(capsys, tmp_path):
    # nothing vanishes: the page is indexed, the refused image is named with its reason in the
    # terminal and in --json, not only in the log
    pdf = _pdf_with_a_jpeg_bomb(tmp_path / "pump.pdf")
    code, _, err = run(capsys, "ingest", str(pdf), "--kb", str(tmp_path / "kb"), "--no-progress")
    assert code == 0, err
    assert "indexed   " in err and "note: " in err and "60000x60000" in err
    assert "pump.pdf  1 page\n" in err  # one page is "1 page", not "1 pages"
    code, out, err = run(capsys, "info", "--kb", str(tmp_path / "kb"))
    assert ": 1 document, 1 page (" in out and "    1 page   pump.pdf" in out, out
    code, out, err = run(capsys, "ingest", str(pdf), "--kb", str(tmp_path / "kb2"), "--json")
    (doc,) = json.loads(out)["documents"]
    assert doc["status"] == "indexed"
    assert any("60000x60000" in n and "max_image_pixels" in n for n in doc["notes"]), doc["notes"]
