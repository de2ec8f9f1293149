"""The ``fast`` ingest profile: what it sets, that a setting the user gives wins, that
``--fast`` reaches the config, that a page read fast has no figure OCR and no table records,
and that a knowledge base built fast says so."""

from __future__ import annotations

import json
from pathlib import Path

import pymupdf
import pytest

from rag.config import INGEST_PROFILES, Config, IngestConfig, load_config
from rag.errors import ConfigError
from tests._pdfgen import png_bytes, save, table_page, text_pdf


def test_the_fast_profile_sets_its_settings_and_the_default_profile_keeps_the_old_defaults():
    fast, default = IngestConfig(profile="fast"), IngestConfig()
    assert (fast.ocr_figures, fast.find_tables, fast.dpi, fast.chunk_chars, fast.chunk_overlap_chars) == (False, True, 72, 700, 0)
    assert (default.ocr_figures, default.find_tables, default.dpi, default.chunk_chars, default.chunk_overlap_chars) == (
        True, True, 110, 1000, 100
    )
    assert fast.repair_text and fast.ocr == "auto"  # glyph repair and page OCR stay: they make pages readable


def test_a_setting_given_explicitly_wins_over_the_profile_in_code_in_the_file_and_on_the_command_line(tmp_path):
    assert IngestConfig(profile="fast", ocr_figures=True, dpi=110).ocr_figures is True
    assert IngestConfig(profile="fast", dpi=110).dpi == 110
    toml = tmp_path / "c.toml"
    toml.write_text('[ingest]\nprofile = "fast"\nfind_tables = false\n', encoding="utf-8")
    from_file = load_config(toml).ingest
    assert from_file.find_tables is False and from_file.ocr_figures is False and from_file.dpi == 72
    # --fast is an override: the file's explicit value still wins, the rest follow the profile
    toml.write_text("[ingest]\nchunk_chars = 1200\n", encoding="utf-8")
    both = load_config(toml, ingest__profile="fast").ingest
    assert both.profile == "fast" and both.chunk_chars == 1200 and both.ocr_figures is False


def test_an_unknown_profile_is_refused_with_the_known_ones():
    with pytest.raises(ConfigError, match="default.*fast"):
        IngestConfig(profile="turbo")  # type: ignore[arg-type]
    assert sorted(INGEST_PROFILES) == ["default", "fast"]


def test_fast_on_the_ingest_command_line_reaches_the_config():
    from rag import cli

    parser = cli.build_parser()
    args = parser.parse_args(["ingest", "a.pdf", "--kb", "kb", "--fast"])
    assert cli._config(args).ingest.profile == "fast"
    assert cli._config(args).ingest.ocr_figures is False
    plain = parser.parse_args(["ingest", "a.pdf", "--kb", "kb"])
    config = cli._config(plain)
    assert config is None or config.ingest.profile == "default"


def _figures_and_table_pdf(path: Path) -> Path:
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_textbox(pymupdf.Rect(72, 60, 540, 140), "Branch opening hours and the shop sign are shown below. " * 3, fontsize=10)
    table_page(page, 72, 180, [["Branch", "Opens", "Closes"], ["North", "08:00", "17:00"], ["South", "09:00", "18:00"]])
    page.insert_image(pymupdf.Rect(72, 320, 372, 500), stream=png_bytes(300, 180, text="SIGN 4471"))
    page.insert_textbox(pymupdf.Rect(72, 505, 500, 525), "Fig. 1. The shop sign.", fontsize=9)
    return save(doc, path)


def test_a_page_read_fast_has_no_figure_ocr_text_and_without_table_finding_no_table_record(tmp_path):
    from ingest import open_document

    pdf = _figures_and_table_pdf(tmp_path / "shop.pdf")
    read = {}
    # page OCR is not needed here (the page has a text layer); figure OCR is decided by ocr_figures
    for name, config in {"fast": IngestConfig(profile="fast"), "no tables": IngestConfig(profile="fast", find_tables=False)}.items():
        with open_document(pdf, config) as reader:
            read[name] = list(reader.pages(progress=False))[0]
    fast = read["fast"]
    assert [f.kind for f in fast.figures].count("table") == 1  # fast still finds tables
    photo = [f for f in fast.figures if f.source == "raster"]
    assert len(photo) == 1 and photo[0].caption == "Fig. 1. The shop sign."
    assert "4471" not in (photo[0].text or "")  # not sent to OCR: caption and surrounding text only
    assert "table" not in [f.kind for f in read["no tables"].figures]
    assert "North" in read["no tables"].page.text  # the table's text is still page text


def test_a_knowledge_base_built_fast_says_so_in_info_and_documents_json(tmp_path, capsys):
    from rag import KnowledgeBase
    from rag.cli import main

    pdf = text_pdf(tmp_path / "notes.pdf", ["The pump is serviced every spring before the season starts."])
    kb_dir = tmp_path / "kb"
    with KnowledgeBase.open(kb_dir, Config(ingest=IngestConfig(profile="fast")), create=True) as kb:
        reports = kb.ingest([pdf], progress=False)
    assert [r.status for r in reports] == ["indexed"]
    capsys.readouterr()
    assert main(["info", "--kb", str(kb_dir), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["ingest"]["profile"] == "fast"
    assert info["ingest"]["figure_ocr"] is False and info["ingest"]["tables"] is True
    assert main(["documents", "--kb", str(kb_dir), "--json"]) == 0
    assert [d["profile"] for d in json.loads(capsys.readouterr().out)["documents"]] == ["fast"]
    assert main(["info", "--kb", str(kb_dir)]) == 0
    assert "ingest profile fast: figure OCR off, table finding on, page images at 72 dpi" in capsys.readouterr().out
    # reopened from its manifest, it keeps the profile and what the profile decided
    again = KnowledgeBase.open(kb_dir).config.ingest
    assert (again.profile, again.ocr_figures, again.chunk_chars) == ("fast", False, 700)


def test_a_default_knowledge_base_says_default_and_prints_no_profile_line(kb_path, capsys):
    from rag.cli import main

    assert main(["info", "--kb", str(kb_path), "--json"]) == 0
    ingest = json.loads(capsys.readouterr().out)["ingest"]
    assert (ingest["profile"], ingest["figure_ocr"], ingest["tables"]) == ("default", True, True)


def test_each_profile_gives_its_text_model_unless_one_is_named():
    from rag.config import PROFILE_MODELS, ModelsConfig

    assert Config().models.text == "all-MiniLM-L6-v2"  # the default profile is unchanged
    assert Config(ingest=IngestConfig(profile="fast")).models.text == PROFILE_MODELS["fast"]["text"] == "paraphrase-MiniLM-L3-v2"
    named = Config(ingest=IngestConfig(profile="fast"), models=ModelsConfig(text="all-MiniLM-L6-v2"))
    assert named.models.text == "all-MiniLM-L6-v2"  # a model the user names wins over the profile's
    assert load_config(None, ingest__profile="fast").models.text == "paraphrase-MiniLM-L3-v2"  # --fast
    assert load_config(None, ingest__profile="fast", models__text="all-MiniLM-L6-v2").models.text == "all-MiniLM-L6-v2"


def test_a_fast_knowledge_base_answers_with_its_own_text_model_after_reopening(tmp_path, capsys):
    from rag import KnowledgeBase
    from rag.cli import main
    from rag.errors import EmbedderMismatchError

    pdf = text_pdf(tmp_path / "notes.pdf", ["The pump is serviced every spring before the season starts.",
                                            "Invoices are paid within thirty days of delivery."])
    kb_dir = tmp_path / "kb"
    with KnowledgeBase.open(kb_dir, Config(ingest=IngestConfig(profile="fast", ocr="never")), create=True) as kb:
        assert [r.status for r in kb.ingest([pdf], progress=False)] == ["indexed"]
    manifest = json.loads((kb_dir / "manifest.json").read_text())
    assert manifest["model_settings"]["text"] == "paraphrase-MiniLM-L3-v2"
    with KnowledgeBase.open(kb_dir) as kb:  # a new process would do the same: the manifest says which model
        assert kb.embedders.text.provenance()["max_seq_length"] == 128
        assert [h.page for h in kb.search("when is the pump serviced", top_k=1).hits] == [1]
        assert [h.page for h in kb.search("payment terms for invoices", top_k=1).hits] == [2]
    capsys.readouterr()
    assert main(["search", "when is the pump serviced", "--kb", str(kb_dir), "--json"]) == 0  # the CLI too
    assert json.loads(capsys.readouterr().out)["hits"][0]["page"] == 1
    assert main(["info", "--kb", str(kb_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["models"]["text"] == "sentence-transformers/paraphrase-MiniLM-L3-v2"
    assert main(["info", "--kb", str(kb_dir)]) == 0
    assert "text model sentence-transformers/paraphrase-MiniLM-L3-v2" in capsys.readouterr().out
    # asking for the default model on it is refused, naming both, not answered with the wrong vectors
    with KnowledgeBase.open(kb_dir, Config()) as kb, pytest.raises(EmbedderMismatchError, match="paraphrase-MiniLM-L3-v2"):
        kb.search("when is the pump serviced")
