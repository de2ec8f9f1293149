"""Image single-vector embedders: tiny CLIP, Chinese-CLIP, SigLIP and SigLIP2 checkpoints of the
real architectures, saved with save_pretrained and loaded back through the registry."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import json

import numpy as np
import pytest

from rag.errors import ConfigError, ModelError, UnreadableFileError, UnsupportedFormatError
from retrievers import registry
from retrievers.base import ImageEmbedder
from retrievers.embedders.clip import DUAL_ENCODERS, ClipEmbedder

FAMILIES = ["clip", "chinese-clip", "siglip", "siglip2"]
ARCHITECTURES = {"clip": "CLIPModel", "chinese-clip": "ChineseCLIPModel", "siglip": "SiglipModel", "siglip2": "Siglip2Model"}
# How each family's text side must be padded (SigLIP was trained on fixed-length text).
TEXT_PADDING = {"clip": True, "chinese-clip": True, "siglip": "max_length", "siglip2": "max_length"}


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    from tiny.clip import TINY_BUILDERS

    root = tmp_path_factory.mktemp("tiny_clip")
    return {family: (root / family, *TINY_BUILDERS[family](root / family)) for family in FAMILIES}


@pytest.fixture(scope="session")
def images(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("clip_images")
    rng = np.random.default_rng(0)
    paths = {}
    for name, (h, w) in {"noise_a": (40, 56), "noise_b": (48, 32), "noise_c": (32, 32)}.items():
        paths[name] = root / f"{name}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(paths[name])
    gray = rng.integers(0, 256, (36, 36), dtype=np.uint8)
    paths["gray"] = root / "gray.png"
    Image.fromarray(gray).save(paths["gray"])
    paths["gray_rgb"] = root / "gray_rgb.png"
    Image.fromarray(np.stack([gray] * 3, axis=-1)).save(paths["gray_rgb"])
    paths["rgba"] = root / "rgba.png"
    Image.fromarray(rng.integers(0, 256, (30, 40, 4), dtype=np.uint8), "RGBA").save(paths["rgba"])
    paths["jpeg"] = root / "photo.jpg"
    Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(paths["jpeg"], quality=90)
    paths["not_image"] = root / "notes.png"
    paths["not_image"].write_text("this is not a png")
    return paths


@pytest.fixture(scope="session")
def embedders(tiny_models):
    out = {}
    for family, (folder, _, _) in tiny_models.items():
        emb = registry.build(str(folder), "image", batch_size=16, show_progress=False)
        emb.load()
        out[family] = emb
    return out


@pytest.mark.parametrize("family", FAMILIES)
def test_saved_config_names_the_architecture_the_registry_expects(tiny_models, family):
    folder = tiny_models[family][0]
    arch = json.loads((folder / "config.json").read_text())["architectures"][0]
    assert arch == ARCHITECTURES[family]
    assert registry.ARCHITECTURE_FAMILIES[arch] == family


@pytest.mark.parametrize("family", FAMILIES)
def test_registry_builds_the_right_family_from_a_folder(embedders, family):
    emb = embedders[family]
    assert isinstance(emb, ClipEmbedder) and isinstance(emb, ImageEmbedder)
    assert emb.family == family


@pytest.mark.parametrize("family", FAMILIES)
def test_images_and_texts_are_unit_vectors_in_one_space(embedders, images, family):
    emb = embedders[family]
    img = emb.embed_images([images["noise_a"], images["noise_b"], images["jpeg"]])
    txt = emb.embed_texts(["show the chart", "a red bar", "inverter fault code"])
    assert img.shape == (3, emb.dimension) and txt.shape == (3, emb.dimension)
    assert img.dtype == np.float32 and txt.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(img, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(txt, axis=1), 1.0, atol=1e-5)
    assert np.all(np.isfinite(img @ txt.T))


@pytest.mark.parametrize("family", FAMILIES)
def test_same_image_same_vector_different_images_differ(embedders, images, family):
    emb = embedders[family]
    v = emb.embed_images([images["noise_a"], images["noise_b"], images["noise_a"]])
    np.testing.assert_array_equal(v[0], v[2])
    assert float(v[0] @ v[1]) < 0.9999
    again = emb.embed_images([images["noise_a"]])
    np.testing.assert_allclose(again[0], v[0], atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_batch_size_does_not_change_vectors(tiny_models, embedders, images, family):
    paths = [images["noise_a"], images["noise_b"], images["noise_c"]]
    texts = ["show the chart", "a red bar chart of the total energy output", "what"]
    small = ClipEmbedder(str(tiny_models[family][0]), family=family, batch_size=1, show_progress=False)
    np.testing.assert_allclose(small.embed_images(paths), embedders[family].embed_images(paths), atol=1e-5)
    np.testing.assert_allclose(small.embed_texts(texts), embedders[family].embed_texts(texts), atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_reloaded_model_matches_the_model_that_was_saved(tiny_models, embedders, images, family):
    import torch

    from retrievers.embedders._images import open_rgb

    _, model, processor = tiny_models[family]
    emb = embedders[family]
    paths = [images["noise_a"], images["noise_b"]]
    texts = ["show the chart", "inverter fault"]
    with torch.no_grad():
        pix = processor.image_processor(images=[open_rgb(p) for p in paths], return_tensors="pt")
        ref_img = model.get_image_features(**pix).pooler_output.numpy()
        tok = processor.tokenizer(texts, padding=TEXT_PADDING[family], truncation=True, max_length=emb._max_text_tokens, return_tensors="pt")
        tok = {k: v for k, v in tok.items() if k != "token_type_ids" or family == "chinese-clip"}
        ref_txt = model.get_text_features(**tok).pooler_output.numpy()
    ref_img /= np.linalg.norm(ref_img, axis=1, keepdims=True)
    ref_txt /= np.linalg.norm(ref_txt, axis=1, keepdims=True)
    np.testing.assert_allclose(emb.embed_images(paths), ref_img, atol=1e-5)
    np.testing.assert_allclose(emb.embed_texts(texts), ref_txt, atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_grayscale_and_rgba_images_are_read_as_rgb(embedders, images, family):
    emb = embedders[family]
    gray, gray_rgb, rgba = emb.embed_images([images["gray"], images["gray_rgb"], images["rgba"]])
    np.testing.assert_allclose(gray, gray_rgb, atol=1e-5)  # "L" converted to RGB = the same picture in RGB
    assert rgba.shape == (emb.dimension,) and np.isfinite(rgba).all()


@pytest.mark.parametrize("family", ["clip", "siglip"])
def test_long_text_is_truncated_not_an_error(embedders, family):
    emb = embedders[family]
    long = " ".join(["the solar panel output energy"] * 100)
    v = emb.embed_texts([long, "solar"])
    assert v.shape == (2, emb.dimension)


def test_empty_inputs_give_empty_arrays(embedders):
    emb = embedders["clip"]
    assert emb.embed_images([]).shape == (0, emb.dimension)
    assert emb.embed_texts([]).shape == (0, emb.dimension)
    with pytest.raises(TypeError):
        emb.embed_texts("one string")


def test_bad_image_files_raise_document_errors(embedders, images, tmp_path):
    emb = embedders["clip"]
    with pytest.raises(UnreadableFileError, match="missing.png"):
        emb.embed_images([tmp_path / "missing.png"])
    with pytest.raises(UnsupportedFormatError, match="notes.png"):
        emb.embed_images([images["not_image"]])


def test_provenance_is_stable_and_differs_between_checkpoints(embedders):
    a, b = embedders["clip"].provenance(), embedders["siglip"].provenance()
    assert a == embedders["clip"].provenance()
    assert a["family"] == "clip" and a["dimension"] == embedders["clip"].dimension
    assert a["revision"] and a["revision"] != b["revision"]
    assert a["versions"]["transformers"] != "missing"


def test_registered_dimension_is_known_before_load_and_nothing_loads():
    emb = registry.build("clip-vit-b-32", "image")
    assert emb.family == "clip" and emb.dimension == 512 and not emb.loaded
    assert registry.build("siglip-base", "image").dimension == 768


def test_unavailable_hub_model_raises_model_error_naming_it():
    from huggingface_hub import constants

    if not constants.HF_HUB_OFFLINE:
        pytest.skip("huggingface_hub was imported before HF_HUB_OFFLINE=1 was set; would try the network")
    emb = registry.build("siglip2-base", "image")
    with pytest.raises(ModelError, match="google/siglip2-base-patch16-224"):
        emb.load()


def test_folder_dimension_needs_load(tiny_models):
    emb = ClipEmbedder(str(tiny_models["clip"][0]), family="clip")
    with pytest.raises(ModelError, match="load"):
        _ = emb.dimension


def test_bad_options_raise_config_error():
    with pytest.raises(ConfigError, match="family"):
        ClipEmbedder("x", family="dalle")
    with pytest.raises(ConfigError, match="batch_size"):
        ClipEmbedder("x", family="clip", batch_size=0)
    assert set(DUAL_ENCODERS) == {f for f, spec in registry.FAMILIES.items() if spec.role == "image" and spec.supported}


def test_half_precision_checkpoint_runs_in_float32_on_cpu(tiny_models, images, tmp_path):
    import copy

    folder, model, processor = tiny_models["clip"]
    half = tmp_path / "clip_fp16"
    copy.deepcopy(model).half().save_pretrained(str(half))
    processor.save_pretrained(str(half))
    emb = registry.build(str(half), "image", show_progress=False)
    vec = emb.embed_images([images["noise_a"]])
    assert next(emb._model.parameters()).dtype.is_floating_point and str(next(emb._model.parameters()).dtype) == "torch.float32"
    assert vec.dtype == np.float32 and emb.provenance()["dtype"] == "float32"
    # the same weights, rounded to fp16: close to the float32 model's vector
    ref = registry.build(str(folder), "image", show_progress=False).embed_images([images["noise_a"]])
    assert float(vec[0] @ ref[0]) > 0.999
