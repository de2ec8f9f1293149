"""Rerankers, each run end to end on a tiny checkpoint of its real architecture.

- late interaction: a tiny ColPali (tests/tiny/colvision.py) through ColVisionEmbedder,
  checked against colpali-engine's own scorer;
- cross-encoder: a tiny BertForSequenceClassification (tests/tiny/rerankers.py);
- VLM: a tiny Qwen2VLForConditionalGeneration with yes/no tokens (tests/tiny/rerankers.py),
  checked against a hand-computed forward pass.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rag.errors import ConfigError, EmbedderMismatchError, ModelError, QueryError
from rag.types import Evidence, Hit
from retrievers.rerank import (
    RERANKERS,
    CrossEncoderReranker,
    LateInteractionReranker,
    NoReranker,
    Reranker,
    VLMReranker,
    build_reranker,
)

from _doubles import RecordingEmbedder, make_hits

os.environ.setdefault("HF_HUB_OFFLINE", "1")

QUESTION = "what is the fault code of the inverter"
TEXTS = (
    "the inverter shows fault code 3 when the voltage is too high",
    "inspect the solar panel every three months",
    "red bar chart of energy output per month",
    "the weather",
)


def assert_reranked(out: list[Hit], hits: list[Hit], scores) -> None:
    """Best first by ``scores``, ties in input order, evidence and boxes carried over."""
    expected = sorted(range(len(hits)), key=lambda i: (-scores[i], i))
    assert [h.page for h in out] == [hits[i].page for i in expected]
    assert [h.score for h in out] == pytest.approx([float(scores[i]) for i in expected], abs=1e-4)
    by_page = {h.page: h for h in hits}
    for h in out:
        assert h.evidence == by_page[h.page].evidence and h.bbox == by_page[h.page].bbox


# ----------------------------------------------------------------------------- no reranker, factory
def test_no_reranker_keeps_order_and_cuts() -> None:
    hits = make_hits(TEXTS)
    assert NoReranker().rerank(QUESTION, hits) == hits
    assert NoReranker().rerank(QUESTION, hits, top_k=2) == hits[:2]
    assert NoReranker().rerank(QUESTION, hits, top_k=0) == []
    with pytest.raises(ConfigError, match="top_k"):
        NoReranker().rerank(QUESTION, hits, top_k=-1)


def test_scores_a_few_1e_6_apart_tie_and_keep_the_input_order() -> None:
    from retrievers.rerank._base import ranked

    hits = make_hits(TEXTS[:3])  # pages 1, 2, 3
    # pages 1 and 3 scored apart only by batch-padding noise: input order kept, full scores carried
    out = ranked(hits, [8.573667, 2.0, 8.573669])
    assert [h.page for h in out] == [1, 3, 2]
    assert out[1].score == pytest.approx(8.573669)
    assert [h.page for h in ranked(hits, [1.0, 1.001, float("nan")])] == [2, 1, 3]


def test_build_reranker_table_and_errors(tmp_path: Path) -> None:
    assert set(RERANKERS) == {"none", "late-interaction", "cross-encoder", "vlm"}
    assert isinstance(build_reranker("none"), NoReranker)
    assert isinstance(build_reranker("none", model=None), NoReranker)  # None means "not set"
    ce = build_reranker("cross-encoder", model=str(tmp_path), batch_size=4)
    assert isinstance(ce, CrossEncoderReranker) and not ce.loaded and ce.batch_size == 4
    vlm = build_reranker("vlm", model=str(tmp_path), yes_token="True", no_token="False")
    assert isinstance(vlm, VLMReranker) and not vlm.loaded
    mono = build_reranker("vlm", model=str(tmp_path), preset="monoqwen2-vl")
    assert (mono.yes_token, mono.no_token) == ("True", "False") and "answer True or False" in mono.prompt
    with pytest.raises(ConfigError, match="unknown VLM reranker preset 'mono'; known: default, monoqwen2-vl"):
        build_reranker("vlm", model="x", preset="mono")
    for reranker in (ce, vlm, NoReranker()):
        assert isinstance(reranker, Reranker)
    known = "known: none, late-interaction, cross-encoder, vlm"
    with pytest.raises(ConfigError, match=f"unknown reranker 'colbert'; {known}"):
        build_reranker("colbert")
    with pytest.raises(ConfigError, match="needs model="):
        build_reranker("cross-encoder")
    with pytest.raises(ConfigError, match=r"does not take \['temperature'\]"):
        build_reranker("vlm", model="x", temperature=2)
    with pytest.raises(ConfigError, match="exactly one of embedder"):
        build_reranker("late-interaction")
    with pytest.raises(ConfigError, match="score"):
        VLMReranker("x", score="vibes")


def test_rerank_public_exports() -> None:
    import retrievers.rerank as rerank

    assert set(rerank.__all__) == {"Reranker", "NoReranker", "LateInteractionReranker", "CrossEncoderReranker",
                                   "VLMReranker", "VLM_PROMPT", "VLM_PRESETS", "SCORES", "RERANKERS", "build_reranker"}
    for name in rerank.__all__:
        assert hasattr(rerank, name), name


# ----------------------------------------------------------------------------- late interaction
@pytest.fixture(scope="session")
def colpali_checkpoint(tmp_path_factory):
    from tiny.colvision import build_checkpoint

    return build_checkpoint("colpali", tmp_path_factory.mktemp("colpali"))


@pytest.fixture(scope="session")
def li_pages(tmp_path_factory) -> list[Path]:
    from tiny.colvision import page_images

    return page_images(tmp_path_factory.mktemp("li_pages"), n=4)


@pytest.fixture(scope="session")
def colpali_embedder(colpali_checkpoint):
    from retrievers.registry import build

    embedder = build(str(colpali_checkpoint.folder), "late_interaction", pool_factor=1)
    embedder.load()
    return embedder


def test_late_interaction_order_matches_colpali_engine_scorer(colpali_checkpoint, colpali_embedder, li_pages) -> None:
    import torch
    from PIL import Image

    question = "red bar chart"
    hits = make_hits(TEXTS[: len(li_pages)], images=li_pages)
    out = LateInteractionReranker(colpali_embedder).rerank(question, hits)

    # the reference: the model as built (before saving) and colpali-engine's own scorer
    model, processor = colpali_checkpoint.model.eval(), colpali_checkpoint.processor
    with torch.inference_mode():
        pages = model(**processor.process_images([Image.open(p).convert("RGB") for p in li_pages]))
        query = model(**processor.process_queries([question]))
    reference = processor.score_multi_vector(list(query), list(pages))[0].numpy()
    assert len(set(np.round(reference, 4))) == len(reference), "reference scores must separate the pages"
    assert_reranked(out, hits, reference)
    assert [h.score for h in out] == pytest.approx(sorted(reference, reverse=True), abs=1e-3)


def test_late_interaction_uses_stored_multivectors_first(colpali_embedder, li_pages) -> None:
    hits = make_hits(TEXTS[: len(li_pages)], images=li_pages)
    query = colpali_embedder.embed_queries([QUESTION])[0]
    stored = {2: np.asarray(query, dtype=np.float32), 3: -np.asarray(query, dtype=np.float32)}
    recorder = RecordingEmbedder(colpali_embedder)
    reranker = LateInteractionReranker(recorder, multivectors=lambda hit: stored.get(hit.page))
    out = reranker.rerank(QUESTION, hits, top_k=3)
    assert recorder.encoded == [li_pages[0], li_pages[3]], "only pages without stored vectors are encoded"
    assert out[0].page == 2  # its stored vectors are the query's own: MaxSim = number of query tokens
    assert out[0].score == pytest.approx(len(query), rel=1e-4)
    assert len(out) == 3 and 3 not in [h.page for h in out]  # anti-aligned vectors score lowest


def test_late_interaction_without_image_or_vectors_is_a_query_error(colpali_embedder) -> None:
    hits = make_hits(TEXTS)
    with pytest.raises(QueryError, match="page 1: no stored multivector and no page image"):
        LateInteractionReranker(colpali_embedder).rerank(QUESTION, hits)
    assert LateInteractionReranker(colpali_embedder).rerank(QUESTION, []) == []


def test_build_reranker_late_interaction_from_a_model_folder(colpali_checkpoint, colpali_embedder, li_pages) -> None:
    reranker = build_reranker("late-interaction", model=str(colpali_checkpoint.folder), pool_factor=1)
    assert isinstance(reranker, LateInteractionReranker)
    hits = make_hits(TEXTS[: len(li_pages)], images=li_pages)
    np.testing.assert_allclose(
        reranker.scores(QUESTION, hits), LateInteractionReranker(colpali_embedder).scores(QUESTION, hits), atol=1e-5
    )


def test_late_interaction_refuses_vectors_from_another_embedder(colpali_embedder, li_pages) -> None:
    hits = make_hits(TEXTS[:2], images=li_pages[:2])
    reranker = LateInteractionReranker(colpali_embedder, multivectors=lambda hit: np.ones((5, 7), np.float32))
    with pytest.raises(EmbedderMismatchError, match=r"page 1 has shape \(5, 7\)"):
        reranker.rerank(QUESTION, hits)


def test_late_interaction_rejects_a_text_embedder() -> None:
    with pytest.raises(ConfigError, match="late-interaction embedder"):
        LateInteractionReranker(object())


# ----------------------------------------------------------------------------- cross-encoder
@pytest.fixture(scope="session")
def ce_folders(tmp_path_factory) -> dict[int, Path]:
    from tiny.rerankers import build_cross_encoder

    return {n: build_cross_encoder(tmp_path_factory.mktemp(f"ce{n}"), num_labels=n) for n in (1, 2, 3)}


def direct_ce_scores(folder: Path, question: str, texts, column: int) -> np.ndarray:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(str(folder), local_files_only=True).eval()
    out = []
    with torch.inference_mode():
        for text in texts:
            enc = tok(question, text, return_tensors="pt")
            assert enc["input_ids"][0, 0] == tok.cls_token_id and (enc["token_type_ids"] == 1).any()
            out.append(float(model(**enc).logits[0, column]))
    return np.array(out)


@pytest.mark.parametrize(("labels", "column"), [(1, 0), (2, 1)])
def test_cross_encoder_scores_equal_a_direct_forward_pass(ce_folders, labels: int, column: int) -> None:
    reranker = CrossEncoderReranker(str(ce_folders[labels]))
    hits = make_hits(TEXTS)
    out = reranker.rerank(QUESTION, hits)
    expected = direct_ce_scores(ce_folders[labels], QUESTION, TEXTS, column)
    assert np.ptp(expected) > 1e-3, "tiny model must tell the texts apart"
    assert_reranked(out, hits, expected)
    assert reranker.rerank(QUESTION, hits, top_k=2) == out[:2]


def test_cross_encoder_batching_gives_the_same_scores(ce_folders) -> None:
    texts = [t * (1 + i % 3) for i, t in enumerate(TEXTS * 3)]  # different lengths: padding in batches
    one = CrossEncoderReranker(str(ce_folders[1]), batch_size=1).score_texts(QUESTION, texts)
    batch = CrossEncoderReranker(str(ce_folders[1]), batch_size=5).score_texts(QUESTION, texts)
    np.testing.assert_allclose(one, batch, atol=1e-5)


def test_cross_encoder_reads_every_evidence_text_of_a_hit(ce_folders) -> None:
    reranker = CrossEncoderReranker(str(ce_folders[1]))
    chunk, caption = TEXTS[0], TEXTS[2]
    hit = replace(
        make_hits(TEXTS)[0],
        evidence=(Evidence("text", "chunk", chunk, 0.9), Evidence("figures", "figure", caption, 0.5),
                  Evidence("pages", "page", chunk, 0.1)),  # a repeated text is read once
    )
    bare = replace(hit, evidence=())
    got = reranker.scores(QUESTION, [hit, bare])
    want = reranker.score_texts(QUESTION, [f"{chunk}\n{caption}", ""])
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert abs(got[0] - reranker.score_texts(QUESTION, [chunk])[0]) > 1e-4


def test_cross_encoder_truncates_long_texts(ce_folders) -> None:
    reranker = CrossEncoderReranker(str(ce_folders[1]), max_length=16)
    inputs = reranker.prepare(QUESTION, [" ".join(TEXTS) * 5])
    assert inputs["input_ids"].shape[1] == 16
    assert np.isfinite(reranker.score_texts(QUESTION, [" ".join(TEXTS) * 5])).all()


def test_cross_encoder_load_errors(ce_folders, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="3-label head"):
        CrossEncoderReranker(str(ce_folders[3])).load()
    with pytest.raises(ModelError, match="cannot load"):
        CrossEncoderReranker(str(tmp_path)).load()  # an empty folder
    with pytest.raises(ModelError, match="hub may be unreachable"):
        CrossEncoderReranker("nobody/no-such-cross-encoder").load()
    unloaded = CrossEncoderReranker("nobody/no-such-cross-encoder")
    assert unloaded.rerank(QUESTION, []) == [] and not unloaded.loaded


# ----------------------------------------------------------------------------- VLM
@pytest.fixture(scope="session")
def vlm_folder(tmp_path_factory) -> Path:
    from tiny.rerankers import build_vlm_reranker

    return build_vlm_reranker(tmp_path_factory.mktemp("vlm"))


@pytest.fixture(scope="session")
def vlm_pages(tmp_path_factory) -> list[Path]:
    from tiny.rerankers import page_image

    folder = tmp_path_factory.mktemp("vlm_pages")
    return [page_image(folder / "red.png", (200, 30, 30)), page_image(folder / "blue.png", (20, 40, 200))]


@pytest.fixture(scope="session")
def vlm(vlm_folder) -> VLMReranker:
    reranker = VLMReranker(str(vlm_folder), batch_size=2)
    reranker.load()
    return reranker


def hand_vlm_score(folder: Path, question: str, image: Path | None, text: str) -> float:
    """logit(yes) - logit(no) at the last position, straight from the model."""
    import torch
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(str(folder), local_files_only=True)
    model = AutoModelForImageTextToText.from_pretrained(str(folder), local_files_only=True).eval()
    prompt = f"Is this page relevant to the question? Answer yes or no.\nQuestion: {question}"
    if image is not None:
        content = [{"type": "image"}, {"type": "text", "text": prompt}]
    else:
        content = [{"type": "text", "text": f"{text}\n\n{prompt}"}]
    chat = processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True,
                                         tokenize=False)
    images = [Image.open(image).convert("RGB")] if image is not None else None
    inputs = processor(text=[chat], images=images, return_tensors="pt")
    with torch.inference_mode():
        logits = model(**inputs).logits[0, -1]
    yes, no = processor.tokenizer.convert_tokens_to_ids(["yes", "no"])
    return float(logits[yes] - logits[no])


def test_vlm_score_equals_a_hand_computed_forward_pass(vlm, vlm_folder, vlm_pages) -> None:
    images = [vlm_pages[0], None, vlm_pages[1], None]  # mixed rows in one left-padded batch
    hits = make_hits(TEXTS, images=images)
    scores = vlm.scores(QUESTION, hits)
    expected = [hand_vlm_score(vlm_folder, QUESTION, img, text) for img, text in zip(images, TEXTS)]
    np.testing.assert_allclose(scores, expected, atol=1e-4)
    assert_reranked(vlm.rerank(QUESTION, hits), hits, scores)


@pytest.mark.parametrize(("arch", "model_class"), [("qwen2.5-vl", "Qwen2_5_VL"), ("idefics3", "Idefics3")])
def test_vlm_reranker_runs_other_architectures(tmp_path_factory, vlm_pages, arch: str, model_class: str) -> None:
    from tiny.rerankers import build_vlm_reranker

    folder = build_vlm_reranker(tmp_path_factory.mktemp(arch), arch=arch)
    reranker = build_reranker("vlm", model=str(folder), batch_size=2)
    images = [vlm_pages[0], None]
    hits = make_hits(TEXTS[:2], images=images)
    scores = reranker.scores(QUESTION, hits)
    assert type(reranker._model).__name__ == f"{model_class}ForConditionalGeneration"
    expected = [hand_vlm_score(folder, QUESTION, img, text) for img, text in zip(images, TEXTS)]
    np.testing.assert_allclose(scores, expected, atol=1e-4)
    assert "pixel_values" in reranker.prepare(QUESTION, hits[:1])


def test_vlm_feeds_the_page_image(vlm, vlm_pages) -> None:
    with_image = make_hits(TEXTS, images=[vlm_pages[0]])
    inputs = vlm.prepare(QUESTION, with_image)
    assert "pixel_values" in inputs and inputs["image_grid_thw"].shape == (1, 3)
    image_token = vlm._processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    n_image_tokens = int((inputs["input_ids"] == image_token).sum())
    assert n_image_tokens == int(inputs["image_grid_thw"][0].prod()) // 4 > 0
    # the picture changes the verdict: same question and text, another page image, another score
    red, blue = vlm.scores(QUESTION, make_hits(TEXTS[:1] * 2, images=[vlm_pages[0], vlm_pages[1]]))
    assert abs(red - blue) > 1e-4
    text_only = vlm.prepare(QUESTION, make_hits(TEXTS[:1]))
    assert "pixel_values" not in text_only


def test_vlm_ties_keep_input_order_and_prob_mode(vlm_folder, vlm_pages) -> None:
    hits = make_hits(TEXTS[:3], images=[vlm_pages[1], vlm_pages[0], vlm_pages[1]])
    diff = VLMReranker(str(vlm_folder), batch_size=3).scores(QUESTION, hits)
    assert diff[0] == pytest.approx(diff[2], abs=1e-5)  # same page image: a tie
    out = VLMReranker(str(vlm_folder)).rerank(QUESTION, hits)
    tied = [h.page for h in out if h.page in (1, 3)]
    assert tied == [1, 3]
    prob = VLMReranker(str(vlm_folder), score="yes_prob").scores(QUESTION, hits)
    np.testing.assert_allclose(prob, 1 / (1 + np.exp(-diff)), atol=1e-5)
    assert ((prob > 0) & (prob < 1)).all()


def test_vlm_refuses_tokens_outside_the_vocabulary(vlm_folder) -> None:
    with pytest.raises(ModelError, match="'maybe' is not a single known token"):
        VLMReranker(str(vlm_folder), yes_token="maybe").load()
    with pytest.raises(ConfigError, match="must differ"):
        VLMReranker(str(vlm_folder), yes_token="no")
    with pytest.raises(ConfigError, match="placeholder"):
        VLMReranker(str(vlm_folder), prompt="Relevant?")
    with pytest.raises(ConfigError, match="literal braces"):
        VLMReranker(str(vlm_folder), prompt="{question} {answer}")


def test_vlm_missing_image_file_is_a_typed_error(vlm, tmp_path: Path) -> None:
    from rag.errors import UnreadableFileError

    hits = [replace(make_hits(TEXTS)[0], image_path=tmp_path / "gone.png")]
    with pytest.raises(UnreadableFileError, match="gone.png"):
        vlm.rerank(QUESTION, hits)
