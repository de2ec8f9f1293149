"""A figure or table is found by what its caption says, even when its body (table cells, chart
labels, OCR) is long and repeats the question's words: the caption's title gets its own vector."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.config import ModelsConfig
from rag.types import BBox, DocumentInfo, Figure, Page, PageContent
from retrievers.corpora import build_points, caption_title


@pytest.mark.parametrize(
    ("caption", "title"),
    [
        ("Figure 11. Fraction of dynamic bytecodes executed by interpreter. The speedup is shown in parentheses.",
         "Figure 11. Fraction of dynamic bytecodes executed by interpreter."),
        ("Figure 1: Conceptual model for technology acceptance (Davis, 1985,  p. 10). By relying on prior work by",
         "Figure 1: Conceptual model for technology acceptance (Davis, 1985,  p. 10)."),
        ("Fig. 2. Speedup over the baseline", "Fig. 2. Speedup over the baseline"),
        ("Table 3\nRevenue by region and quarter", "Table 3"),
    ],
)
def test_the_title_is_the_first_sentence_of_the_first_line_not_an_abbreviation(caption, title):
    fig = Figure("d", 1, 0, "table", BBox(0, 0, 10, 10), caption=caption)
    assert caption_title(fig) == title


def test_a_run_on_caption_is_cut_at_a_word_within_the_limit():
    caption = "Table 2 Initial scale items for perceived ease of use " + "item candidate measure " * 20
    title = caption_title(Figure("d", 1, 0, "table", BBox(0, 0, 10, 10), caption=caption))
    assert title.startswith("Table 2 Initial scale items") and len(title) <= 200 and not title.endswith("ite")


@pytest.fixture(scope="module")
def embedders():
    from rag._models import build_embedders

    return build_embedders(ModelsConfig())


def _figure(index: int, caption: str, body: str) -> Figure:
    return Figure("doc", 1, index, "table", BBox(0, 100 * index, 500, 100 * index + 90), caption=caption, text=body)


def test_the_table_whose_caption_matches_ranks_first_despite_a_wordier_rival(embedders):
    items = "\n".join(f"{i} The electronic mail system is easy to use and item {i} measures ease of use." for i in range(1, 15))
    initial = _figure(0, "Table 2 Initial scale items for perceived ease of use (Davis, 1989, p. 324)", items)
    revised = _figure(1, "Table 4 Revised 10 item scale for perceived ease of use (Davis, 1989, p. 326)",
                      "Item No. Candidate item for psychometric measures for perceived ease of use\n" + items)
    page = Page("doc", 1, 600.0, 800.0, "", ocr=False)
    info = DocumentInfo("doc", Path("scales.pdf"), "scales.pdf", "pdf", 1, 1)
    points = build_points(info, [PageContent(page, figures=(initial, revised))], embedders)["figures"]
    query = np.asarray(embedders.text.embed_query("What is item 7 in the initial scale items for perceived ease of use?"))
    scores = {p.payload["caption"][:7]: float(np.dot(p.vectors["dense"], query)) for p in points}
    assert scores["Table 2"] > scores["Table 4"], scores
    for p in points:  # still unit vectors, so scores stay cosines
        assert abs(float(np.linalg.norm(p.vectors["dense"])) - 1.0) < 1e-4
