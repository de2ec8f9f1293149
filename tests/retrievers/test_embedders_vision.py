"""Image-only embedders (ViT, DINOv2, WebSSL-DINO, InternVL vision tower): tiny checkpoints of the
real architectures, saved with save_pretrained and loaded back through the registry."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import json

import numpy as np
import pytest

from rag.errors import ConfigError, EmbedderMismatchError, ModelError
from retrievers import registry
from retrievers.base import ImageEmbedder
from retrievers.embedders.vision import (
    POOLINGS,
    VISION_ENCODERS,
    ImageOnlyEmbedder,
    VisionEmbedder,
    cls_pool,
    mean_patch_pool,
)

FAMILIES = ["vit", "dinov2", "webssl-dino", "internvl-vision"]
#: how each tiny checkpoint pools (InternVL's config asks for the mean of the patches)
EXPECTED_POOLING = {"vit": "cls", "dinov2": "cls", "webssl-dino": "cls", "internvl-vision": "mean"}


@pytest.fixture(scope="session")
def tiny_vision(tmp_path_factory):
    from tiny.vision import VISION_BUILDERS

    root = tmp_path_factory.mktemp("tiny_vision")
    return {family: (root / family, *VISION_BUILDERS[family](root / family)) for family in FAMILIES}


@pytest.fixture(scope="session")
def pictures(tmp_path_factory):
    from tiny.colvision import page_images

    return page_images(tmp_path_factory.mktemp("vision_images"), n=3, size=(40, 52))


@pytest.fixture(scope="session")
def vision_embedders(tiny_vision):
    out = {}
    for family, (folder, _, _) in tiny_vision.items():
        # a webssl-dino folder says Dinov2Model: the folder resolves to dinov2; the family is chosen explicitly
        emb = VisionEmbedder(str(folder), family=family, show_progress=False) if family == "webssl-dino" else \
            registry.build(str(folder), "image", show_progress=False)
        emb.load()
        out[family] = emb
    return out


@pytest.mark.parametrize("family", ["vit", "dinov2", "internvl-vision"])
def test_folder_resolves_to_its_family_through_config_architectures(tiny_vision, vision_embedders, family):
    folder = tiny_vision[family][0]
    arch = json.loads((folder / "config.json").read_text())["architectures"][0]
    assert registry.ARCHITECTURE_FAMILIES[arch] == family
    emb = vision_embedders[family]
    assert isinstance(emb, VisionEmbedder) and emb.family == family
    # image-only: fills the figures' image vector but cannot embed a question
    assert isinstance(emb, ImageOnlyEmbedder) and not isinstance(emb, ImageEmbedder)


@pytest.mark.parametrize("family", FAMILIES)
def test_one_unit_vector_per_image_of_the_hidden_size(vision_embedders, pictures, family):
    emb = vision_embedders[family]
    v = emb.embed_images(pictures + [pictures[0]])
    assert v.shape == (4, 32) and emb.dimension == 32 and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(v[0], v[3], atol=1e-6)
    assert float(v[0] @ v[1]) < 0.9999 and float(v[1] @ v[2]) < 0.9999
    assert emb.pooling == EXPECTED_POOLING[family]


@pytest.mark.parametrize("family", FAMILIES)
def test_vectors_are_the_saved_models_pooled_features(tiny_vision, vision_embedders, pictures, family):
    """The reloaded checkpoint reproduces the in-memory model, pooled as the family says."""
    import torch

    from retrievers.embedders._images import open_rgb

    _, model, processor = tiny_vision[family]
    with torch.no_grad():
        pix = processor(images=[open_rgb(p) for p in pictures], return_tensors="pt")["pixel_values"]
        hidden = model(pixel_values=pix).last_hidden_state.numpy()
    ref = hidden[:, 0] if EXPECTED_POOLING[family] == "cls" else hidden[:, 1:].mean(axis=1)
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    np.testing.assert_allclose(vision_embedders[family].embed_images(pictures), ref, atol=1e-5)


def test_pooling_override_changes_the_vector(tiny_vision, vision_embedders, pictures):
    folder = tiny_vision["dinov2"][0]
    mean = registry.build(str(folder), "image", pooling="mean", show_progress=False)
    hidden = mean.features(pictures[:1])
    expected = hidden[0, 1:].mean(axis=0)
    np.testing.assert_allclose(mean.embed_images(pictures[:1])[0], expected / np.linalg.norm(expected), atol=1e-5)
    assert float(mean.embed_images(pictures[:1])[0] @ vision_embedders["dinov2"].embed_images(pictures[:1])[0]) < 0.9999
    assert mean.provenance()["pooling"] == "mean" and vision_embedders["dinov2"].provenance()["pooling"] == "cls"


def test_batch_size_does_not_change_vectors(tiny_vision, vision_embedders, pictures):
    one = VisionEmbedder(str(tiny_vision["vit"][0]), family="vit", batch_size=1, show_progress=False)
    np.testing.assert_allclose(one.embed_images(pictures), vision_embedders["vit"].embed_images(pictures), atol=1e-5)
    assert one.embed_images([]).shape == (0, 32)


def test_pure_poolers():
    hidden = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    np.testing.assert_array_equal(cls_pool(hidden), hidden[:, 0])
    np.testing.assert_array_equal(mean_patch_pool(hidden), hidden[:, 1:].mean(axis=1))
    np.testing.assert_array_equal(mean_patch_pool(hidden, prefix_tokens=2), hidden[:, 2])
    with pytest.raises(ValueError, match="patch tokens"):
        mean_patch_pool(hidden, prefix_tokens=3)
    assert set(POOLINGS) == {"cls", "mean"}


def test_registered_names_know_dimension_and_family_without_loading():
    for name, family, dim in [("dinov2-small", "dinov2", 384), ("dinov2-base", "dinov2", 768),
                              ("vit-base-in21k", "vit", 768), ("webssl-dino300m", "webssl-dino", 1024)]:
        emb = registry.build(name, "image")
        assert isinstance(emb, VisionEmbedder) and emb.family == family and emb.dimension == dim and not emb.loaded
    assert registry.resolve("facebook/webssl-dino300m-full2b-224").family == "webssl-dino"
    assert set(VISION_ENCODERS) == {f for f, s in registry.FAMILIES.items() if s.role == "image_only" and s.supported}


def test_wrong_role_and_bad_options_are_clear_errors(tiny_vision):
    folder = str(tiny_vision["dinov2"][0])
    with pytest.raises(ModelError, match="image_only model .* not a text model"):
        registry.build(folder, "text")
    with pytest.raises(ConfigError, match="pooling"):
        VisionEmbedder(folder, family="dinov2", pooling="max")
    with pytest.raises(ConfigError, match="unknown family"):
        VisionEmbedder(folder, family="resnet")
    with pytest.raises(ModelError, match="trust_remote_code"):
        registry.build("internvit-300m", "image")


def test_registry_dimension_mismatch_is_refused(tiny_vision, monkeypatch):
    """A registered size that the checkpoint does not have is an error at load, not a silent index."""
    folder = str(tiny_vision["dinov2"][0])
    monkeypatch.setitem(registry.MODELS, "dino-384", registry.ModelSpec("dino-384", "dinov2", folder, 384, notes="test"))
    emb = registry.build("dino-384", "image")
    assert emb.dimension == 384 and not emb.loaded
    with pytest.raises(ModelError, match="registry says dimension 384, the checkpoint gives 32"):
        emb.load()


def test_matryoshka_truncation_of_image_vectors(tiny_vision, vision_embedders, pictures, tmp_path):
    from rag._manifest import Manifest

    full = vision_embedders["vit"].embed_images(pictures)
    short = registry.build(str(tiny_vision["vit"][0]), "image", dimension=8, show_progress=False)
    v = short.embed_images(pictures)
    assert v.shape == (3, 8) and short.dimension == 8
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    expected = full[:, :8] / np.linalg.norm(full[:, :8], axis=1, keepdims=True)
    np.testing.assert_allclose(v, expected, atol=1e-5)  # the prefix, re-normalised
    assert isinstance(short, ImageOnlyEmbedder) and not hasattr(short, "embed_texts")
    built = short.provenance()
    assert built["dimension"] == 8 and built["full_dimension"] == 32
    wider = registry.build(str(tiny_vision["vit"][0]), "image", dimension=16).provenance()
    manifest = Manifest(models={"image": built}, collections={}, ingest={}, store={})
    manifest.check_models({"image": short.provenance()}, tmp_path)
    with pytest.raises(EmbedderMismatchError, match="dimension was 8, now 16"):
        manifest.check_models({"image": wider}, tmp_path)
    with pytest.raises(ConfigError, match="larger"):
        registry.build(str(tiny_vision["vit"][0]), "image", dimension=64).load()

