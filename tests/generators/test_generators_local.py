"""The local VLM generator with tiny checkpoints of the real architectures.

The checkpoints have random weights, so their text is garbage: these tests assert the
mechanics a user relies on (loading through ``from_pretrained`` from a folder, images fed to
the vision tower, tokens streamed, citations parsed, limits respected). Where a test needs the
model to write particular tokens (citation markers), it scripts them with a standard
``transformers`` ``LogitsProcessor`` passed through ``generation_kwargs``; everything else
(prompt, images, streaming, parsing) is our real code path.
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from PIL import Image  # noqa: E402
from tiny.qwen2vl import build_idefics3, build_qwen2_5_vl, build_qwen2vl, build_smolvlm  # noqa: E402
from transformers import LogitsProcessor, LogitsProcessorList  # noqa: E402

from generators import build_generator  # noqa: E402
from generators.local_vlm import LocalVLMGenerator  # noqa: E402
from rag.errors import GeneratorError, ModelError  # noqa: E402
from rag.types import BBox, Evidence, Hit  # noqa: E402


@pytest.fixture(scope="session")
def qwen2vl_dir(tmp_path_factory):
    return build_qwen2vl(tmp_path_factory.mktemp("qwen2vl"))


@pytest.fixture(scope="session")
def qwen25vl_dir(tmp_path_factory):
    return build_qwen2_5_vl(tmp_path_factory.mktemp("qwen25vl"))


@pytest.fixture(scope="session")
def idefics3_dir(tmp_path_factory):
    return build_idefics3(tmp_path_factory.mktemp("idefics3"))


@pytest.fixture(scope="session")
def smolvlm_dir(tmp_path_factory):
    pytest.importorskip("num2words", reason="the SmolVLM(2) processor needs num2words")
    return build_smolvlm(tmp_path_factory.mktemp("smolvlm"))


@pytest.fixture(scope="session")
def qwen(qwen2vl_dir):
    return build_generator("local", model=str(qwen2vl_dir), max_new_tokens=12).load()


@pytest.fixture(scope="session")
def hits(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pages")
    out = []
    for i, colour in enumerate([(200, 20, 20), (20, 200, 20), (20, 20, 200), (90, 90, 90)], start=1):
        page = folder / f"page{i}.png"
        Image.new("RGB", (170, 220), colour).save(page)
        out.append(
            Hit(f"d{i}", f"doc{i}.pdf", i, 1.0 / i, "pages", image_path=page,
                evidence=(Evidence("text", "chunk", f"solar panel output {i} kwh", 0.5, BBox(10, 10, 100, 40)),))
        )
    return out


class Script(LogitsProcessor):
    """Makes greedy decoding write the given token ids, in order."""

    def __init__(self, ids: list[int]) -> None:
        self.ids = ids
        self.start: int | None = None

    def __call__(self, input_ids, scores):
        self.start = input_ids.shape[1] if self.start is None else self.start
        step = min(input_ids.shape[1] - self.start, len(self.ids) - 1)
        forced = torch.full_like(scores, float("-inf"))
        forced[:, self.ids[step]] = 0.0
        return forced


def script(gen: LocalVLMGenerator, text: str) -> dict:
    tok = gen.processor.tokenizer
    ids = tok.convert_tokens_to_ids(text.split()) + [tok.eos_token_id]
    assert tok.unk_token_id not in ids, "script words must be in the tiny vocabulary"
    return {"logits_processor": LogitsProcessorList([Script(ids)])}


def _image_tokens(gen: LocalVLMGenerator, inputs) -> int:
    return int((inputs["input_ids"] == gen.model.config.image_token_id).sum())


def test_qwen2vl_loads_from_its_folder_and_feeds_the_page_images(qwen, hits):
    from generators.base import build_context

    assert qwen.family.family == "qwen2-vl"  # from config.json architectures, not the name
    assert qwen.name == f"local:{os.path.basename(qwen.model_id)}"
    inputs = qwen.prepare_inputs("What is the solar output?", build_context(hits))
    grid = inputs["image_grid_thw"]
    assert grid.shape[0] == 3  # max_images=3 of the 4 page images
    merge = qwen.processor.image_processor.merge_size ** 2
    assert _image_tokens(qwen, inputs) == int(grid.prod(dim=1).sum()) // merge > 0
    assert inputs["pixel_values"].shape[0] == int(grid.prod(dim=1).sum())
    messages, shown = qwen.build_messages("What is the solar output?", build_context(hits))
    assert [i.marker for i in shown] == [1, 2, 3]
    parts = messages[1]["content"]
    assert [p["type"] for p in parts] == ["text", "image"] * 3 + ["text"]
    assert parts[0]["text"].startswith("Image for [1]") and "doc1.pdf, page 1" in parts[0]["text"]
    assert "[4] doc4.pdf, page 4" in parts[-1]["text"] and "What is the solar output?" in parts[-1]["text"]


def test_qwen2vl_streams_tokens_and_runs_the_vision_tower(qwen, hits):
    calls = []
    handle = qwen.model.model.visual.register_forward_hook(lambda m, a, o: calls.append(a[0].shape))
    try:
        tokens: list[str] = []
        answer = qwen.generate("What is the solar output?", hits, on_token=tokens.append)
    finally:
        handle.remove()
    assert calls, "the vision tower never ran"
    assert tokens and "".join(tokens).strip() == answer.text
    assert 0 < len(answer.text.split()) <= 12  # one word per token with this vocabulary
    assert answer.generator == qwen.name and answer.hits == tuple(hits)
    assert {"prepare", "generate"} <= set(answer.timings)


def test_scripted_citations_keep_valid_markers_and_reject_invalid_ones(qwen2vl_dir, hits):
    gen = LocalVLMGenerator(str(qwen2vl_dir), max_new_tokens=20).load()
    gen.generation_kwargs = script(gen, "solar panel output [ 2 ] and [ 9 ] kwh")
    tokens: list[str] = []
    answer = gen.generate("What is the solar output?", hits, on_token=tokens.append)
    assert "".join(tokens).strip() == "solar panel output [ 2 ] and [ 9 ] kwh"
    assert answer.text == "solar panel output [ 2 ] and kwh"
    assert [(c.marker, c.source, c.page) for c in answer.citations] == [(2, "doc2.pdf", 2)]


def test_scripted_answer_is_checked_against_its_citations(qwen2vl_dir, hits):
    gen = LocalVLMGenerator(str(qwen2vl_dir), max_new_tokens=30).load()
    # evidence [n] is "solar panel output n kwh": the second clause cites [1] for 7 kwh
    gen.generation_kwargs = script(gen, "solar panel output 2 kwh [ 2 ] . solar panel output 7 kwh [ 1 ] .")
    tokens: list[str] = []
    answer = gen.generate("What is the solar output?", hits, on_token=tokens.append)
    assert "[ 1 ]" in "".join(tokens)  # the raw text streams unchecked
    assert answer.text == "solar panel output 2 kwh [ 2 ] . solar panel output 7 kwh ."
    assert [c.marker for c in answer.citations] == [2]
    assert answer.unsupported == ("solar panel output 2 kwh . solar panel output 7 kwh .",)


def test_max_new_tokens_bounds_the_answer(qwen2vl_dir, hits):
    gen = LocalVLMGenerator(str(qwen2vl_dir), max_new_tokens=4).load()
    gen.generation_kwargs = script(gen, "one two three solar panel output energy kwh")
    assert gen.generate("q", hits).text == "one two three solar"
    assert "".join(gen.stream("q", hits)) == "one two three solar"


def test_closing_the_stream_early_stops_generation(qwen2vl_dir, hits):
    gen = LocalVLMGenerator(str(qwen2vl_dir), max_new_tokens=400).load()
    gen.generation_kwargs = script(gen, " ".join(["solar"] * 400))  # never ends by itself
    steps = []
    handle = gen.model.register_forward_hook(lambda m, a, o: steps.append(1))
    try:
        chunks = gen.stream("q", hits)
        first = next(chunks)
        chunks.close()
    finally:
        handle.remove()
    assert first.strip() == "solar"
    assert len(steps) < 50  # far fewer forward passes than the 400 allowed


def test_complete_is_text_only(qwen):
    inputs = qwen._encode([{"role": "user", "content": [{"type": "text", "text": "route this"}]}], [])
    assert "pixel_values" not in inputs and _image_tokens(qwen, inputs) == 0
    out = qwen.complete("route this question")
    assert isinstance(out, str) and 0 < len(out.split()) <= 12


def test_generation_failure_is_a_generator_error_naming_the_model(qwen2vl_dir, hits):
    gen = LocalVLMGenerator(str(qwen2vl_dir), max_new_tokens=4, generation_kwargs={"num_beams": 2}).load()
    with pytest.raises(GeneratorError, match="qwen2vl.*generation failed"):
        gen.generate("q", hits, on_token=lambda t: None)


@pytest.mark.parametrize("builder", ["qwen25vl_dir", "idefics3_dir", "smolvlm_dir"])
def test_other_families_load_stream_and_see_images(builder, request, hits):
    folder = request.getfixturevalue(builder)
    gen = build_generator("local", model=str(folder), max_new_tokens=6, max_images=2).load()
    expected = {"qwen25vl_dir": "qwen2.5-vl", "idefics3_dir": "idefics3", "smolvlm_dir": "smolvlm"}[builder]
    assert gen.family.family == expected
    from generators.base import build_context

    inputs = gen.prepare_inputs("solar output?", build_context(hits))
    assert inputs["pixel_values"].numel() > 0 and _image_tokens(gen, inputs) > 0
    tokens: list[str] = []
    answer = gen.generate("What is the solar output?", hits, on_token=tokens.append)
    assert "".join(tokens).strip() == answer.text
    assert 0 < len(answer.text.split()) <= 6


def test_unreadable_image_is_left_out_but_its_text_is_kept(qwen, hits, tmp_path):
    from generators.base import build_context

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    items = build_context([Hit("x", "x.pdf", 9, 2.0, "pages", image_path=broken,
                               evidence=(Evidence("text", "chunk", "solar energy", 1.0),)), *hits[:1]])
    inputs = qwen.prepare_inputs("q", items)
    assert inputs["image_grid_thw"].shape[0] == 1  # only the readable page image
    assert "solar energy" in qwen.processor.tokenizer.decode(inputs["input_ids"][0])


def test_unsupported_or_missing_folders_raise_model_error(tmp_path):
    folder = tmp_path / "bert"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architectures": ["BertModel"], "model_type": "bert"}))
    with pytest.raises(ModelError, match="BertModel.*Qwen2VLForConditionalGeneration"):
        LocalVLMGenerator(str(folder)).load()
    with pytest.raises(ModelError, match="no-such-model"):
        LocalVLMGenerator(str(tmp_path / "no-such-model")).load()
