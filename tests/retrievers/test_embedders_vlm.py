"""VLM-as-embedder (GME / VLM2Vec style): a tiny Qwen2-VL checkpoint of the real architecture gives
one vector for a text, an image, or a text and an image together."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pytest

from rag.errors import ConfigError, ModelError
from retrievers import registry
from retrievers.base import ImageEmbedder
from retrievers.embedders.vlm_embed import VLM_EMBEDDERS, VLMEmbedder, last_token_pool, mean_pool

HIDDEN = 64  # tiny.qwen2vl text hidden size


@pytest.fixture(scope="session")
def qwen_folder(tmp_path_factory):
    from tiny.qwen2vl import build_qwen2vl

    return build_qwen2vl(tmp_path_factory.mktemp("vlm_embed") / "qwen2vl")


@pytest.fixture(scope="session")
def pictures(tmp_path_factory):
    from tiny.colvision import page_images

    return page_images(tmp_path_factory.mktemp("vlm_images"), n=2, size=(56, 70))


@pytest.fixture(scope="session")
def gme(qwen_folder):
    emb = registry.build(str(qwen_folder), "image", show_progress=False)
    emb.load()
    return emb


def test_a_qwen2vl_folder_asked_for_as_image_model_is_a_gme_embedder(gme):
    assert isinstance(gme, VLMEmbedder) and gme.family == "gme-qwen2-vl"
    assert isinstance(gme, ImageEmbedder) and hasattr(gme, "embed_pairs")
    assert gme.dimension == HIDDEN


def test_text_image_and_text_plus_image_each_give_one_unit_vector(gme, pictures):
    t = gme.embed_texts(["show the chart"])
    i = gme.embed_images(pictures[:1])
    p = gme.embed_pairs(["show the chart"], pictures[:1])
    for v in (t, i, p):
        assert v.shape == (1, HIDDEN) and v.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert float(t[0] @ p[0]) < 0.9999 and float(i[0] @ p[0]) < 0.9999


def test_the_image_changes_the_composed_vector(gme, pictures):
    a, b = gme.embed_pairs(["show the chart"] * 2, pictures)
    assert float(a @ b) < 0.9999
    again = gme.embed_pairs(["show the chart"], pictures[:1])[0]
    np.testing.assert_allclose(a, again, atol=1e-5)


def test_last_token_pooling_is_the_last_hidden_state_of_the_same_forward_pass(qwen_folder, gme, pictures):
    """Recompute by hand with the checkpoint's own classes: prompt -> processor -> model -> last position."""
    import torch
    from transformers import AutoProcessor, Qwen2VLForConditionalGeneration

    from retrievers.embedders._images import open_rgb

    model = Qwen2VLForConditionalGeneration.from_pretrained(str(qwen_folder), local_files_only=True).eval()
    processor = AutoProcessor.from_pretrained(str(qwen_folder), local_files_only=True)
    prompt = gme.prompts(["show the chart"], [True], "query")[0]
    assert prompt.startswith("<|im_start|>system\nFind an image") and prompt.endswith("<|endoftext|>")
    assert "<|image_pad|>" in prompt and "show the chart" in prompt
    inputs = processor(text=[prompt], images=[open_rgb(pictures[0])], return_tensors="pt")
    with torch.no_grad():
        hidden = model(**inputs, output_hidden_states=True).hidden_states[-1][0, -1].numpy()
    expected = hidden / np.linalg.norm(hidden)
    np.testing.assert_allclose(gme.embed_pairs(["show the chart"], pictures[:1])[0], expected, atol=1e-4)


def test_padding_in_a_batch_does_not_change_vectors(gme):
    texts = ["show", "what does the red bar chart of the total energy output show"]
    batch = gme.embed_texts(texts)
    alone = np.concatenate([gme.embed_texts([t]) for t in texts])
    np.testing.assert_allclose(batch, alone, atol=1e-4)


def test_mean_pooling_option(qwen_folder, gme):
    mean = VLMEmbedder(str(qwen_folder), family="gme-qwen2-vl", pooling="mean", show_progress=False)
    prompts = mean.prompts(["show the chart"], [False], "query")
    hidden, mask = mean.hidden_states(prompts, [])
    expected = hidden[0][mask[0].astype(bool)].mean(axis=0)
    np.testing.assert_allclose(mean.embed_texts(["show the chart"])[0], expected / np.linalg.norm(expected), atol=1e-5)
    assert mean.provenance()["pooling"] == "mean" and gme.provenance()["pooling"] == "last"


def test_pure_pooling_functions_handle_left_and_right_padding():
    hidden = np.arange(2 * 4 * 3, dtype=np.float32).reshape(2, 4, 3)
    left = np.array([[0, 0, 1, 1], [1, 1, 1, 1]])
    right = np.array([[1, 1, 0, 0], [1, 1, 1, 1]])
    np.testing.assert_array_equal(last_token_pool(hidden, left), hidden[[0, 1], [3, 3]])
    np.testing.assert_array_equal(last_token_pool(hidden, right), hidden[[0, 1], [1, 3]])
    np.testing.assert_allclose(mean_pool(hidden, right)[0], hidden[0, :2].mean(axis=0))
    with pytest.raises(ValueError, match="all padding"):
        last_token_pool(hidden, np.zeros((2, 4)))


def test_qwen25_folder_is_a_gme_qwen25_embedder(tmp_path, pictures):
    from tiny.qwen2vl import build_qwen2_5_vl

    folder = build_qwen2_5_vl(tmp_path / "qwen25")
    emb = registry.build(str(folder), "image", show_progress=False)
    assert emb.family == "gme-qwen2.5-vl"
    v = emb.embed_pairs(["show the chart"], pictures[:1])
    assert v.shape == (1, HIDDEN) and abs(float(np.linalg.norm(v)) - 1.0) < 1e-5


def test_matryoshka_dimension_on_the_vlm_embedder(qwen_folder, gme, pictures):
    short = registry.build(str(qwen_folder), "image", dimension=16, show_progress=False)
    full = gme.embed_pairs(["show the chart"], pictures[:1])[0]
    v = short.embed_pairs(["show the chart"], pictures[:1])[0]
    np.testing.assert_allclose(v, full[:16] / np.linalg.norm(full[:16]), atol=1e-5)
    assert short.dimension == 16 and short.provenance()["dimension"] == 16


def test_registered_names_and_errors():
    emb = registry.build("gme-qwen2-vl-2b", "image")
    assert isinstance(emb, VLMEmbedder) and emb.dimension == 1536 and not emb.loaded
    assert registry.build("vlm2vec-qwen2vl", "image").spec.template.startswith("{image}")
    assert set(VLM_EMBEDDERS) == {f for f, s in registry.FAMILIES.items() if s.role == "multimodal" and s.supported}
    with pytest.raises(ConfigError, match="pooling"):
        VLMEmbedder("x", family="gme-qwen2-vl", pooling="cls")
    with pytest.raises(ModelError, match="not supported"):
        registry.build("jina-embeddings-v4", "image")
    with pytest.raises(ValueError, match="as many texts as images"):
        emb.embed_pairs(["a", "b"], [])


def test_e5v_llava_next_folder_words_prompts_by_modality(tmp_path, pictures):
    """E5-V: a tiny LLaVA-NeXT checkpoint; text, image and composed prompts each end in 'in one word'."""
    import torch
    from transformers import AutoProcessor, LlavaNextForConditionalGeneration

    from retrievers.embedders._images import open_rgb
    from tiny.vision import build_llava_next

    folder = build_llava_next(tmp_path / "e5v")
    emb = registry.build(str(folder), "image", show_progress=False)
    assert emb.family == "e5-v" and registry.MODELS["e5-v"].dimension == 4096
    text, image, pair = emb.prompts(["red bar", None, "for 2023"], [False, True, True], "query")
    assert "red bar\nSummary above sentence in one word: " in text and "<image>" not in text
    assert "<image>\nSummary above image in one word: " in image
    assert '<image>\nModify this image with "for 2023", describe modified image in one word: ' in pair
    t = emb.embed_texts(["red bar"])
    i = emb.embed_images(pictures[:1])
    p = emb.embed_pairs(["for 2023"], pictures[:1])
    for v in (t, i, p):
        assert v.shape == (1, HIDDEN)
        np.testing.assert_allclose(np.linalg.norm(v), 1.0, atol=1e-5)
    model = LlavaNextForConditionalGeneration.from_pretrained(str(folder), local_files_only=True).eval()
    processor = AutoProcessor.from_pretrained(str(folder), local_files_only=True)
    inputs = processor(text=[pair], images=[open_rgb(pictures[0])], return_tensors="pt")
    with torch.no_grad():
        last = model(**inputs, output_hidden_states=True).hidden_states[-1][0, -1].numpy()
    np.testing.assert_allclose(p[0], last / np.linalg.norm(last), atol=1e-4)
