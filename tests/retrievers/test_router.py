"""Routers: which corpora a question goes to, with what weight, and why.

The embedding router runs on the real bundled all-MiniLM-L6-v2 (offline).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag.errors import ConfigError, GeneratorError, MmragError
from rag.types import CORPORA, Route
from retrievers.router import (
    CUES,
    ROUTERS,
    AllRouter,
    Completer,
    Cue,
    EmbeddingRouter,
    HybridRouter,
    LLMRouter,
    Router,
    RulesRouter,
    build_router,
)

from _doubles import ScriptedCompleter

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CHART_Q = "What does the bar chart of monthly energy output show?"
PLOT_Q = "Which curve in the plot rises fastest?"
TABLE_Q = "How many fault codes are listed in the table?"
PROSE_Q = "Why does the tracing interpreter record a loop before compiling it?"
SCREEN_Q = "What does the screenshot of the settings page show?"


def _assert_valid(route: Route, *, every_corpus: bool = True) -> None:
    assert isinstance(route, Route)
    assert len(route.corpora) == len(route.weights) == len(set(route.corpora))
    assert set(route.corpora) <= set(CORPORA)
    assert sum(route.weights) == pytest.approx(1.0, abs=1e-5)
    assert list(route.weights) == sorted(route.weights, reverse=True), "corpora must be listed best first"
    assert route.reason
    if every_corpus:
        assert set(route.corpora) == set(CORPORA)
        assert min(route.weights) > 0


# ----------------------------------------------------------------------------- rules
@pytest.mark.parametrize("question", [CHART_Q, PLOT_Q, "Describe the diagram in Fig. 3", SCREEN_Q])
def test_rules_figure_questions_go_to_figures_and_pages(question: str) -> None:
    route = RulesRouter(top_k=7).route(question)
    _assert_valid(route)
    assert route.corpora[:2] == ("figures", "pages")
    assert route.top_k == 7 and route.router == "rules"
    assert "figure cues" in route.reason


def test_rules_reason_names_the_matched_cues() -> None:
    reason = RulesRouter().route(CHART_Q).reason
    assert "'chart'" in reason and "'bar'" in reason
    assert "'table'" not in reason


@pytest.mark.parametrize(
    "question",
    [TABLE_Q, "Which month had the most output?", "What was the efficiency in 2019, in %?", "Values in row 3?"],
)
def test_rules_table_questions_go_to_figures_and_text(question: str) -> None:
    route = RulesRouter().route(question)
    _assert_valid(route)
    assert set(route.corpora[:2]) == {"figures", "text"}
    assert route.weight("pages") < route.weight("text")
    assert "table cues" in route.reason


def test_rules_plain_question_searches_every_corpus_alike() -> None:
    route = RulesRouter().route(PROSE_Q)
    _assert_valid(route)
    assert route.weights == pytest.approx((1 / 3, 1 / 3, 1 / 3), abs=1e-5)
    assert "no figure or table cues" in route.reason and "equal weights" in route.reason
    leaning = RulesRouter(plain=1.0).route(PROSE_Q)  # the absence of cues counted as a text cue
    assert leaning.corpora == ("text", "pages", "figures")


def test_rules_mixed_cues_blend_the_profiles() -> None:
    rules = RulesRouter()
    mixed = rules.route("Which column of the table is drawn as the red curve in the chart?")
    figure_only, table_only = rules.route(CHART_Q), rules.route(TABLE_Q)
    _assert_valid(mixed)
    assert "figure cues" in mixed.reason and "table cues" in mixed.reason
    lo, hi = sorted([figure_only.weight("pages"), table_only.weight("pages")])
    assert lo < mixed.weight("pages") < hi


def test_rules_cue_matching_is_word_based_and_case_insensitive() -> None:
    rules = RulesRouter()
    assert "figure" in rules.matches("SHOW THE GRAPH")
    assert rules.matches("the embargo was lifted") == {}  # 'bar' inside a word is no cue
    assert rules.matches("3 apples a day") == {}
    assert rules.matches("it takes 12 ms per page") == {"table": ["number with unit"]}


def test_rules_exclusive_drops_corpora_outside_the_intent() -> None:
    figure = RulesRouter(exclusive=True).route(PLOT_Q)
    _assert_valid(figure, every_corpus=False)
    assert figure.corpora == ("figures", "pages")
    text = RulesRouter(exclusive=True).route(PROSE_Q)
    assert text.corpora == ("text", "pages")


def test_rules_router_takes_its_cue_table_as_data() -> None:
    question = "What is on the third blueprint?"
    assert RulesRouter().route(question).corpora[0] == "text"
    router = RulesRouter(cues=(*CUES, Cue("figure", "blueprint", r"\bblueprints?\b")))
    route = router.route(question)
    assert route.corpora[0] == "figures" and "'blueprint'" in route.reason
    with pytest.raises(ConfigError, match="intents without a profile"):
        RulesRouter(cues=[Cue("video", "clip", r"\bclip\b")])


@pytest.mark.parametrize("top_k", [0, -3, 2.5])
def test_rules_rejects_bad_top_k(top_k) -> None:
    with pytest.raises(ConfigError, match="top_k"):
        RulesRouter(top_k=top_k)


def test_all_router_spreads_evenly() -> None:
    route = AllRouter(top_k=4).route("anything")
    _assert_valid(route)
    assert route.weights == pytest.approx((1 / 3, 1 / 3, 1 / 3), abs=1e-5)


# ----------------------------------------------------------------------------- embedding (real MiniLM)
@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """MiniLM encodes tiny batches; on a shared 2-core machine one thread avoids oversubscription."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def minilm():
    from retrievers.registry import build

    embedder = build("all-MiniLM-L6-v2", "text")
    embedder.load()
    return embedder


@pytest.fixture(scope="session")
def embedding_router(minilm) -> EmbeddingRouter:
    router = EmbeddingRouter(minilm, top_k=6)
    router.load()
    return router


def test_embedding_router_weights_figures_higher_for_a_chart_question(embedding_router) -> None:
    chart, prose = embedding_router.route(CHART_Q), embedding_router.route(PROSE_Q)
    _assert_valid(chart)
    _assert_valid(prose)
    assert chart.weight("figures") > prose.weight("figures")
    assert chart.corpora[0] == "figures"
    assert prose.weight("text") > chart.weight("text")
    assert chart.router == "embedding" and chart.top_k == 6


def test_embedding_router_sends_a_screenshot_question_to_pages(embedding_router) -> None:
    route = embedding_router.route(SCREEN_Q)
    assert route.corpora[0] == "pages"
    assert "closest example" in route.reason and "screenshot" in route.reason


def test_embedding_router_temperature_and_floor_shape_the_weights(minilm) -> None:
    sharp = EmbeddingRouter(minilm, temperature=0.02, floor=0.0).route(CHART_Q)
    soft = EmbeddingRouter(minilm, temperature=1.0, floor=0.0).route(CHART_Q)
    floored = EmbeddingRouter(minilm, temperature=0.02, floor=0.1).route(CHART_Q)
    assert sharp.weight("figures") > soft.weight("figures") > 1 / 3
    assert min(floored.weights) >= 0.1 - 1e-6


def test_embedding_router_with_custom_descriptions(minilm) -> None:
    router = EmbeddingRouter(minilm, {"text": ["a question about the weather"], "pages": ["a photo of a cat"]})
    route = router.route("Is it going to rain tomorrow?")
    assert set(route.corpora) == {"text", "pages"}
    assert route.corpora[0] == "text"


def test_embedding_router_from_knowledge_base_centroids(minilm) -> None:
    text_docs = ["The interpreter records a trace of the hot loop.", "Compilation happens after tracing."]
    figure_docs = ["Figure 2: bar chart of monthly energy in kWh.", "Plot of speedup against time."]
    centroids = {
        "text": minilm.embed_documents(text_docs).mean(axis=0),
        "figures": minilm.embed_documents(figure_docs),  # (k, dim): several centroids per corpus
    }
    router = EmbeddingRouter.from_centroids(minilm, centroids)
    chart = router.route("Show me the chart of energy per month")
    prose = router.route("When does the interpreter compile a trace?")
    assert chart.corpora[0] == "figures" and prose.corpora[0] == "text"
    assert "via its centroid" in chart.reason and "/2" in chart.reason
    assert "via its centroid 1/1" in prose.reason


def test_embedding_router_rejects_bad_inputs(minilm) -> None:
    with pytest.raises(ConfigError, match="corpora among"):
        EmbeddingRouter(minilm, {"tables": ["x"]})
    with pytest.raises(ConfigError, match="non-empty"):
        EmbeddingRouter(minilm, {"text": []})
    with pytest.raises(ConfigError, match="temperature"):
        EmbeddingRouter(minilm, temperature=0)
    wrong_dim = EmbeddingRouter.from_centroids(minilm, {"text": np.ones(10), "figures": np.ones(10)})
    with pytest.raises(ConfigError, match="dimension 10"):
        wrong_dim.route("anything")


# ----------------------------------------------------------------------------- LLM
def test_llm_router_follows_a_valid_answer() -> None:
    llm = ScriptedCompleter('```json\n{"corpora": ["pages", "figures"], "reason": "asks about a screenshot"}\n```')
    router = LLMRouter(llm, fallback=RulesRouter(), top_k=3)
    assert isinstance(llm, Completer) and isinstance(router, Router)
    route = router.route(SCREEN_Q)
    _assert_valid(route)
    assert set(route.corpora[:2]) == {"pages", "figures"}
    assert route.weight("text") == pytest.approx(0.05, abs=1e-6)
    assert route.router == "llm" and route.top_k == 3
    assert "asks about a screenshot" in route.reason
    assert SCREEN_Q in llm.prompts[0] and '"corpora"' in llm.prompts[0]


def test_llm_router_exclusive_keeps_only_the_chosen_corpora() -> None:
    llm = ScriptedCompleter('{"corpora": ["text"], "reason": "prose"}')
    route = LLMRouter(llm, RulesRouter(), exclusive=True).route(PROSE_Q)
    assert route.corpora == ("text",) and route.weights == (1.0,)


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ('{"corpora": ["tables"], "reason": "x"}', "unknown corpora"),
        ("I think you should look at the figures.", "no JSON object"),
        ('{"corpora": "text"}', "non-empty list"),
        ('{"corpora": [], "reason": "none"}', "non-empty list"),
        ('{"corpora": ["text"', "unusable model reply"),
        ('{"corpora": ["text"], "reason": 3}', "'reason' must be a string"),
        ("[1, 2]", "no JSON object"),
        (None, "returned NoneType, not text"),
        ('{"corpora": ["text",]}', "unusable model reply"),
        (GeneratorError("endpoint down"), "model call failed"),
        (TimeoutError("timed out"), "model call failed"),
    ],
)
def test_llm_router_falls_back_on_anything_unusable(reply, why: str) -> None:
    fallback = RulesRouter(top_k=4)
    route = LLMRouter(ScriptedCompleter(reply), fallback, top_k=9).route(CHART_Q)
    expected = fallback.route(CHART_Q)
    assert route.corpora == expected.corpora and route.weights == expected.weights
    assert route.router == "rules"
    assert "fell back" in route.reason and why in route.reason
    assert expected.reason in route.reason


def test_llm_router_does_not_swallow_programming_errors() -> None:
    with pytest.raises(ZeroDivisionError):
        LLMRouter(ScriptedCompleter(ZeroDivisionError()), RulesRouter()).route("q")


def test_llm_router_validates_its_dependencies() -> None:
    with pytest.raises(ConfigError, match="complete"):
        LLMRouter(object(), RulesRouter())
    with pytest.raises(ConfigError, match="placeholder"):
        LLMRouter(ScriptedCompleter("{}"), RulesRouter(), prompt="no slot")
    with pytest.raises(ConfigError, match="literal braces"):
        LLMRouter(ScriptedCompleter("{}"), RulesRouter(), prompt='{question} reply {"corpora": []}')


def test_llm_router_reads_the_first_json_object_amid_chatter() -> None:
    reply = 'Sure! {"corpora": ["Figures"], "reason": "a plot"} Hope that helps {"corpora": ["text"]}'
    route = LLMRouter(ScriptedCompleter(reply), RulesRouter()).route(PLOT_Q)
    assert route.corpora[0] == "figures" and route.router == "llm" and "a plot" in route.reason


# ----------------------------------------------------------------------------- hybrid + factory
def test_hybrid_router_mixes_rules_and_embedding(embedding_router) -> None:
    rules = RulesRouter()
    hybrid = HybridRouter(rules, embedding_router, alpha=0.25)
    route = hybrid.route(PLOT_Q)
    _assert_valid(route)
    a, b = rules.route(PLOT_Q), embedding_router.route(PLOT_Q)
    for corpus in CORPORA:
        assert route.weight(corpus) == pytest.approx(0.25 * a.weight(corpus) + 0.75 * b.weight(corpus), abs=1e-5)
    assert a.reason in route.reason and b.reason in route.reason
    assert HybridRouter(rules, embedding_router, alpha=1.0).route(PROSE_Q).weights == pytest.approx(
        rules.route(PROSE_Q).weights, abs=1e-5
    )
    with pytest.raises(ConfigError, match="alpha"):
        HybridRouter(rules, embedding_router, alpha=1.5)


def test_build_router_hybrid_defaults_to_the_bundled_minilm() -> None:
    router = build_router("hybrid")
    assert router.route(CHART_Q).corpora[0] == "figures"
    assert router.embedding.embedder.dimension == 384


def test_build_router_fails_loudly() -> None:
    with pytest.raises(ConfigError, match="unknown router 'smart'.*rules, embedding, hybrid, llm, all"):
        build_router("smart")
    with pytest.raises(ConfigError, match="completer"):
        build_router("llm")
    with pytest.raises(ConfigError, match=r"does not take \['alpha'\]"):
        build_router("rules", alpha=0.3)
    with pytest.raises(MmragError):
        build_router("rules", top_k=0)
    assert build_router("rules", embedder=None, top_k=3).top_k == 3  # None means "not set"


def test_build_router_takes_one_dependency_bag_for_every_kind(minilm) -> None:
    bag = {"embedder": minilm, "completer": ScriptedCompleter('{"corpora": ["figures"], "reason": "chart"}'),
           "top_k": 20}
    assert set(ROUTERS) == {"rules", "embedding", "hybrid", "llm", "all"}
    for kind in ROUTERS:
        route = build_router(kind, **bag).route(CHART_Q)
        _assert_valid(route)
        assert route.router == kind and route.top_k == 20
        if kind != "all":
            assert route.corpora[0] == "figures"
    # the LLM's fallback is the rules router (the default), with or without an embedder at hand
    garbage = ScriptedCompleter("no idea")
    assert "fell back to rules" in build_router("llm", **{**bag, "completer": garbage}).route(CHART_Q).reason
    assert "fell back to rules" in build_router("llm", completer=garbage).route(CHART_Q).reason


def test_importing_the_router_and_rerankers_does_not_import_torch() -> None:
    code = (
        "import sys, retrievers.router, retrievers.rerank;"
        "bad = [m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(root)})
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_public_exports_are_pinned() -> None:
    import retrievers.router as router

    assert set(router.__all__) >= {"Router", "Completer", "RulesRouter", "EmbeddingRouter", "LLMRouter",
                                   "HybridRouter", "build_router"}
    for name in router.__all__:
        assert hasattr(router, name), name


# ----------------------------------------------------------------------------- a router that never hurts
# The user's tests: a cue word inside an ordinary question sent it to the figures corpus and
# the answer page (a passage) fell out of the top 20; with equal weights it was first.
ORDINARY_WITH_CUE_WORD = [
    "Can I load a picture file into R as a numeric matrix?",
    "Which colour spaces does the manual say a printer understands?",
]


@pytest.mark.parametrize("question", ORDINARY_WITH_CUE_WORD)
def test_a_cue_word_in_an_ordinary_question_keeps_text_and_pages_weighted(question: str) -> None:
    route = RulesRouter().route(question)
    _assert_valid(route)
    assert min(route.weights) > 0.3, route  # close to equal: the word only leans the route
    assert "figure cues" in route.reason and "moved" in route.reason
    pointed = RulesRouter().route("In the chart of monthly output, which month is highest?")
    assert pointed.weight("figures") - pointed.weight("text") > 2 * (route.weight("figures") - route.weight("text"))


@pytest.mark.parametrize("question", ORDINARY_WITH_CUE_WORD)
def test_a_cue_word_does_not_take_the_answer_passage_out_of_the_ranking(question: str) -> None:
    # the passage that answers (text corpus) scores a little above the best figure caption
    from retrievers.base import ScoredPoint
    from retrievers.search import CORPUS_SHARE, fuse_pages

    def point(pid: str, page: int, score: float, kind: str) -> ScoredPoint:
        return ScoredPoint(pid, score, {"doc_id": "d", "page": page, "kind": kind, "text": "t", "bbox": [0, 0, 1, 1]})

    results = {
        "text": [point("c7", 7, 0.9, "chunk"), point("c2", 2, 0.6, "chunk")],
        "figures": [point("f3", 3, 0.75, "figure"), point("f5", 5, 0.7, "figure")],
        "pages": [point("p1", 1, 0.7, "page")],
    }
    every = AllRouter().route(question)
    assert fuse_pages(results, every, limit=5, share=CORPUS_SHARE)[0].page == 7
    routed = fuse_pages(results, RulesRouter().route(question), limit=5, share=CORPUS_SHARE)
    assert routed[0].page == 7


def test_every_rules_route_stays_near_equal_weights() -> None:
    questions = [CHART_Q, PLOT_Q, TABLE_Q, PROSE_Q, SCREEN_Q, "Figure 6: the legend's red dashed curve in Table 2?"]
    rules = RulesRouter()
    for q in questions:
        route = rules.route(q)
        _assert_valid(route)
        assert min(route.weights) >= (1 - rules.shift) / len(CORPORA) - 1e-6, (q, route)
    assert RulesRouter(shift=0.0).route(CHART_Q).weights == pytest.approx((1 / 3, 1 / 3, 1 / 3), abs=1e-5)
    with pytest.raises(ConfigError, match="shift"):
        RulesRouter(shift=1.5)


def test_the_default_router_is_the_rules_router() -> None:
    from rag.config import load_config

    assert load_config().ask.router == "rules"


# ----------------------------------------------------------------------------- the lean stays within a document
def _point(pid: str, doc: str, page: int, score: float, kind: str):
    from retrievers.base import ScoredPoint

    return ScoredPoint(pid, score, {"doc_id": doc, "page": page, "kind": kind, "text": "t", "bbox": [0, 0, 1, 1]})


@pytest.mark.parametrize("question", ORDINARY_WITH_CUE_WORD)
def test_a_cue_word_does_not_lift_another_documents_figure_over_the_answer(question: str) -> None:
    # document a holds the passage that answers; document b a figure that matches a little less.
    # Leaned toward figures, b's figure would come first; the lean lifts pages of the document
    # ranked first with every corpus alike only, so a's passage stays first.
    from retrievers.search import CORPUS_SHARE, fuse_pages

    results = {
        "text": [_point("a7", "a", 7, 0.9, "chunk"), _point("b2", "b", 2, 0.5, "chunk")],
        "figures": [_point("b3", "b", 3, 0.85, "figure"), _point("a5", "a", 5, 0.4, "figure")],
    }
    routed = RulesRouter().route(question)
    assert routed.weight("figures") > routed.weight("text")  # the cue word leans the route
    assert fuse_pages(results, AllRouter().route(question), limit=5, share=CORPUS_SHARE)[0].doc_id == "a"
    unguarded = fuse_pages(results, routed, limit=5, share=CORPUS_SHARE, guard=False)
    assert (unguarded[0].doc_id, unguarded[0].page) == ("b", 3)  # what the guard prevents
    hits = fuse_pages(results, routed, limit=5, share=CORPUS_SHARE)
    assert (hits[0].doc_id, hits[0].page) == ("a", 7)
    assert {(h.doc_id, h.page) for h in hits} == {(h.doc_id, h.page) for h in unguarded}  # nothing taken away


def test_a_figure_question_still_lifts_the_figure_of_the_document_it_is_about() -> None:
    # the same scores, one document: the chart question's lean puts the figure above the passage
    from retrievers.search import CORPUS_SHARE, fuse_pages

    results = {
        "text": [_point("a7", "a", 7, 0.9, "chunk"), _point("b2", "b", 2, 0.3, "chunk")],
        "figures": [_point("a3", "a", 3, 0.85, "figure"), _point("b4", "b", 4, 0.3, "figure")],
    }
    assert fuse_pages(results, AllRouter().route(CHART_Q), limit=5, share=CORPUS_SHARE)[0].page == 7
    hits = fuse_pages(results, RulesRouter().route(CHART_Q), limit=5, share=CORPUS_SHARE)
    assert [(h.doc_id, h.page) for h in hits[:2]] == [("a", 3), ("a", 7)]


def test_lean_within_caps_other_documents_at_the_first_pages_ratio() -> None:
    from retrievers.search import lean_within

    alike = {("a", 1): 0.60, ("a", 2): 0.50, ("b", 1): 0.55, ("b", 2): 0.20}
    routed = {("a", 1): 0.48, ("a", 2): 0.70, ("b", 1): 0.66, ("b", 2): 0.10}
    out = lean_within(routed, alike)
    assert out[("a", 1)] == 0.48 and out[("a", 2)] == 0.70  # the first page's document: routed
    assert out[("b", 1)] == pytest.approx(0.55 * 0.48 / 0.60)  # lifted by the lean: capped below a/1
    assert out[("b", 2)] == 0.10  # lowered by the lean: stays lowered
    assert max(out, key=out.__getitem__) == ("a", 2)
    assert lean_within(routed, routed) == routed  # equal weights: nothing changes
    assert lean_within({}, {}) == {}
