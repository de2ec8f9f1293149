"""Printed page labels read as a person reads them: UTF-16 hex prefixes (what LaTeX beamer
writes), octal escapes, PDFDocEncoding, and the numbering styles, in ``mmrag inspect`` and
``mmrag search --json``; labels stored undecoded by older versions are decoded on the way out."""

from __future__ import annotations

import json
from pathlib import Path

from ingest._labels import LabelRule, format_label, parse_rule
from rag.cli import main
from rag.pdf_strings import decode_pdf_bytes, readable_label

#: the /PageLabels tree a beamer talk writes (one prefix per frame, UTF-16BE with a BOM), plus a
#: non-ASCII prefix, a literal string with "/" and parentheses, and roman / letter numbering
LABELS = (
    "<</Nums[0<</S/r>>"
    " 2<</P<FEFF00310037>>>"  # "17"
    " 3<</P<FEFF00DC00620075006E00670020>/S/D/St 4>>"  # "Übung " + 4, 5
    " 5<</P(A/\\(b\\) \\303\\251 )/S/A/St 27>>"  # "A/(b) é " + AA (UTF-8 bytes, no mark)
    "]>>"
)
EXPECTED = ["i", "ii", "17", "Übung 4", "Übung 5", "A/(b) é AA"]


def _labelled_pdf(path: Path) -> Path:
    import pymupdf

    doc = pymupdf.open()
    for n in range(len(EXPECTED)):
        page = doc.new_page(width=420, height=300)
        page.insert_text((40, 60), f"Slide {n + 1}: the impeller seal of pump model K{n + 1} lasts {4000 + n} hours.", fontsize=11)
    doc.xref_set_key(doc.pdf_catalog(), "PageLabels", LABELS)
    doc.save(path)
    doc.close()
    return path


def test_pdf_text_strings_decode_by_their_byte_order_mark():
    assert decode_pdf_bytes(bytes.fromhex("FEFF00310037")) == "17"
    assert decode_pdf_bytes(b"\xef\xbb\xbfS\xc3\xa9ance") == "Séance"
    assert decode_pdf_bytes("Übung".encode("utf-8")) == "Übung"  # unmarked UTF-8 (PyMuPDF writes it)
    assert decode_pdf_bytes(b"A\x84B\xa0") == "A\u2014B\u20ac"  # PDFDocEncoding: em dash, euro
    assert decode_pdf_bytes(b"iv") == "iv"


def test_labels_stored_undecoded_read_as_text():
    assert readable_label("<FEFF00310037>") == "17"
    assert readable_label("<CEA9>5") == "Ω5"
    assert readable_label("Anh-\\303\\251-ii") == "Anh-é-ii"
    assert readable_label("xii") == "xii"
    assert readable_label("<12>") == "<12>"  # not a text string: left as printed
    assert readable_label("") is None and readable_label(None) is None


def test_label_rules_and_numbering_styles():
    rule = parse_rule(5, "<</S/R/P(App. )/St 9>>")
    assert rule == LabelRule(5, "R", "App. ", 9)
    assert [format_label(rule, i) for i in (5, 6)] == ["App. IX", "App. X"]
    letters = LabelRule(0, "a")
    assert [format_label(letters, i) for i in (0, 25, 26, 52)] == ["a", "z", "aa", "aaa"]
    assert format_label(parse_rule(0, "<</P<FEFF0031>>>"), 0) == "1"


def test_inspect_shows_decoded_labels(capsys, tmp_path):
    pdf = _labelled_pdf(tmp_path / "talk.pdf")
    assert main(["inspect", str(pdf), "--json"]) == 0
    pages = json.loads(capsys.readouterr().out)["pages"]
    assert [p["label"] for p in pages] == EXPECTED
    assert main(["inspect", str(pdf)]) == 0
    out = capsys.readouterr().out
    assert "page 3 (label 17)" in out and "FEFF" not in out


def test_search_json_and_text_show_the_printed_label(capsys, tmp_path):
    pdf = _labelled_pdf(tmp_path / "talk.pdf")
    kb = str(tmp_path / "kb")
    assert main(["ingest", str(pdf), "--kb", kb, "--json", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["search", "pump model K3 impeller seal", "--kb", kb, "--json", "--top-k", "6"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    labels = {h["page"]: h["label"] for h in hits}
    assert labels[3] == "17" and labels[4] == "Übung 4"
    assert main(["search", "pump model K3 impeller seal", "--kb", kb, "--top-k", "6"]) == 0
    out = capsys.readouterr().out
    assert "p.3 (printed 17)" in out and "<FEFF" not in out


def test_old_payloads_with_undecoded_labels_read_back_decoded():
    from retrievers.payloads import decode

    payload = decode({"doc_id": "d" * 64, "page": 23, "label": "<FEFF00310037>", "kind": "page", "index": 0, "text": ""})
    assert payload.label == "17"
