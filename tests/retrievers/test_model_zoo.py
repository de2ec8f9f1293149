"""The model zoo: every family goes through its stage's registry (embedders and rerankers in
``retrievers.registry``, generators in ``generators.registry``), has a real hub id or a folder
route, a tiny real-architecture checkpoint in the tests, and unsupported families say why."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import importlib
import json

import numpy as np
import pytest

from generators import registry as generator_registry
from rag.errors import ModelError, UnknownModelError
from retrievers import registry

#: both model catalogues: family -> its registry row, name -> its model row
ALL_FAMILIES = {**registry.FAMILIES, **generator_registry.FAMILIES}
ALL_MODELS = {**registry.MODELS, **generator_registry.MODELS}

#: family -> the tiny builder that proves it (module:function under tests/tiny), and the test file using it
TINY_CHECKPOINTS = {
    "clip": "tiny.clip:build_tiny_clip",
    "chinese-clip": "tiny.clip:build_tiny_chinese_clip",
    "siglip": "tiny.clip:build_tiny_siglip",
    "siglip2": "tiny.clip:build_tiny_siglip2",
    "colpali": "tiny.colvision:build_colpali",
    "colqwen2": "tiny.colvision:build_colqwen2",
    "colqwen2.5": "tiny.colvision:build_colqwen25",
    "colidefics3": "tiny.colvision:build_colidefics3",
    "vit": "tiny.vision:build_vit",
    "dinov2": "tiny.vision:build_dinov2",
    "webssl-dino": "tiny.vision:build_webssl_dino",
    "internvl-vision": "tiny.vision:build_internvl_vision",
    "gme-qwen2-vl": "tiny.qwen2vl:build_qwen2vl",
    "gme-qwen2.5-vl": "tiny.qwen2vl:build_qwen2_5_vl",
    "vlm2vec-qwen2vl": "tiny.qwen2vl:build_qwen2vl",
    "e5-v": "tiny.vision:build_llava_next",
    "qwen2-vl": "tiny.qwen2vl:build_qwen2vl",
    "qwen2.5-vl": "tiny.qwen2vl:build_qwen2_5_vl",
    "idefics3": "tiny.qwen2vl:build_idefics3",
    "smolvlm": "tiny.qwen2vl:build_smolvlm",
    "vlm-reranker": "tiny.rerankers:build_vlm_reranker",
    "monoqwen2-vl": "tiny.rerankers:build_vlm_reranker",
}
#: families that need no checkpoint of their own: the bundled MiniLM package, BM25 (no weights)
NO_CHECKPOINT = {"sentence-transformers", "bm25"}


def test_every_supported_family_has_a_tiny_checkpoint_builder():
    supported = {f for f, s in ALL_FAMILIES.items() if s.supported}
    assert {"qwen2-vl", "qwen2.5-vl", "idefics3", "smolvlm"} <= supported  # the generator catalogue counts too
    assert set(TINY_CHECKPOINTS) == supported - NO_CHECKPOINT
    for target in TINY_CHECKPOINTS.values():
        module, _, func = target.partition(":")
        assert callable(getattr(importlib.import_module(module), func)), target


def test_every_supported_loader_imports_without_loading_weights():
    for fam in ALL_FAMILIES.values():
        if not fam.supported:
            continue
        module, _, name = fam.loader.partition(":")
        assert callable(getattr(importlib.import_module(module), name)), fam.loader


def test_registry_rows_are_consistent():
    names = [*registry.MODELS, *generator_registry.MODELS]
    hubs = [m.hub_id for m in ALL_MODELS.values() if m.hub_id]
    assert len(set(hubs)) == len(hubs)
    assert len(set(names)) == len(names)  # no short name is registered in both catalogues
    assert not set(registry.FAMILIES) & set(generator_registry.FAMILIES)
    for m in registry.MODELS.values():
        assert m.family in registry.FAMILIES, m
    for m in generator_registry.MODELS.values():
        assert m.family in generator_registry.FAMILIES, m
    for m in ALL_MODELS.values():
        assert m.bundled or m.hub_id, f"{m.name}: neither bundled nor a hub id"
        assert m.notes, f"{m.name}: no cost notes"
    for table in (registry.ARCHITECTURE_FAMILIES, *registry.ROLE_ARCHITECTURE_FAMILIES.values()):
        assert set(table.values()) <= set(registry.FAMILIES)
    for table in (generator_registry.ARCHITECTURES, generator_registry.MODEL_TYPES):
        assert set(table.values()) == set(generator_registry.FAMILIES)
    # every supported family is reachable: a registered name or a folder architecture
    reachable = {m.family for m in registry.MODELS.values()} | set(registry.ARCHITECTURE_FAMILIES.values())
    for table in registry.ROLE_ARCHITECTURE_FAMILIES.values():
        reachable |= set(table.values())
    assert {f for f, s in registry.FAMILIES.items() if s.supported} <= reachable
    from generators.local_vlm import VLM_FAMILIES

    assert set(VLM_FAMILIES) == set(generator_registry.FAMILIES)  # every generator family has its loading data


@pytest.mark.parametrize("family", [f for f, s in registry.FAMILIES.items() if not s.supported])
def test_unsupported_families_refuse_with_their_reason(family):
    fam = registry.FAMILIES[family]
    assert len(fam.reason) > 40
    named = [m.name for m in registry.MODELS.values() if m.family == family]
    assert named, f"{family}: list a real model id so users see it in mmrag models"
    with pytest.raises(ModelError, match="not supported") as err:
        registry.build(named[0])
    assert fam.reason in str(err.value)


def test_documented_hub_ids_and_sizes():
    expect = {
        "siglip2-giant-opt": ("google/siglip2-giant-opt-patch16-256", 1536, "siglip"),
        "vit-base-in21k": ("google/vit-base-patch16-224-in21k", 768, "vit"),
        "dinov2-small": ("facebook/dinov2-small", 384, "dinov2"),
        "dinov2-base": ("facebook/dinov2-base", 768, "dinov2"),
        "webssl-dino300m": ("facebook/webssl-dino300m-full2b-224", 1024, "webssl-dino"),
        "gme-qwen2-vl-2b": ("Alibaba-NLP/gme-Qwen2-VL-2B-Instruct", 1536, "gme-qwen2-vl"),
        "qwen2-vl-2b": ("Qwen/Qwen2-VL-2B-Instruct", None, "qwen2-vl"),
        "qwen2.5-vl-3b": ("Qwen/Qwen2.5-VL-3B-Instruct", None, "qwen2.5-vl"),
        "smolvlm-256m": ("HuggingFaceTB/SmolVLM-256M-Instruct", None, "idefics3"),
        "monoqwen2-vl": ("lightonai/MonoQwen2-VL-v0.1", None, "monoqwen2-vl"),
        "jina-reranker-m0": ("jinaai/jina-reranker-m0", None, "jina-reranker-m0"),
        "colqwen2": ("vidore/colqwen2-v1.0-merged", 128, "colqwen2"),
        "colsmol": ("vidore/colSmol-256M", 128, "colidefics3"),
    }
    for name, (hub, dim, family) in expect.items():
        m = ALL_MODELS[name]
        assert (m.hub_id, m.dimension, m.family) == (hub, dim, family), name
    assert "peft" in registry.MODELS["monoqwen2-vl"].notes


def test_mmrag_models_lists_role_size_offline_and_support(capsys):
    from rag.cli import main

    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    from rag._models import list_models

    assert rows == json.loads(json.dumps(list_models()))
    by_name = {r["name"]: r for r in rows}
    assert by_name["all-MiniLM-L6-v2"]["bundled"] and not by_name["dinov2-small"]["bundled"]
    assert by_name["dinov2-small"]["role"] == "image_only" and by_name["gme-qwen2-vl-2b"]["role"] == "multimodal"
    assert by_name["qwen2-vl-2b"]["role"] == "generator" and by_name["monoqwen2-vl"]["role"] == "reranker"
    assert not by_name["jina-reranker-m0"]["supported"] and "trust_remote_code" in by_name["jina-reranker-m0"]["reason"]
    assert by_name["<folder:internvl-vision>"]["supported"]
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    line = next(ln for ln in text.splitlines() if ln.startswith("jina-reranker-m0"))
    assert "UNSUPPORTED" in line and "trust_remote_code" in line
    line = next(ln for ln in text.splitlines() if ln.startswith("all-MiniLM-L6-v2"))
    assert "bundled" in line and "384" in line and "supported" in line


def test_siglip2_giant_opt_shape_text_tower_projected_to_the_vision_width(tmp_path):
    """giant-opt's text tower is narrower than its vision tower; both land in the vision width."""
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor

    from tiny.clip import _with_template
    from tiny.colvision import page_images
    from tiny.tokenizer import build_tokenizer

    tok = _with_template(build_tokenizer(special_tokens={"unk_token": "<unk>", "pad_token": "</s>", "eos_token": "</s>"},
                                         model_max_length=16), None, "</s>")
    config = SiglipConfig(
        text_config=dict(hidden_size=24, intermediate_size=48, num_hidden_layers=1, num_attention_heads=2,
                         vocab_size=len(tok), max_position_embeddings=16, pad_token_id=tok.pad_token_id,
                         eos_token_id=tok.eos_token_id, bos_token_id=None, projection_size=40),
        vision_config=dict(hidden_size=40, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8),
    )
    import torch

    torch.manual_seed(0)
    SiglipModel(config).eval().save_pretrained(str(tmp_path / "giant"))
    SiglipProcessor(image_processor=SiglipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tok).save_pretrained(
        str(tmp_path / "giant"))
    emb = registry.build(str(tmp_path / "giant"), "image", show_progress=False)
    images = emb.embed_images(page_images(tmp_path / "img", n=2))
    texts = emb.embed_texts(["show the chart", "a red bar"])
    assert emb.family == "siglip" and emb.dimension == 40
    assert images.shape == (2, 40) and texts.shape == (2, 40)
    assert np.all(np.isfinite(images @ texts.T))
    assert registry.build("siglip2-giant-opt", "image").dimension == 1536


def test_one_vlm_folder_is_a_generator_or_a_reranker_by_the_registry_asked(tmp_path):
    from generators import build_generator
    from generators.local_vlm import LocalVLMGenerator
    from retrievers.rerank.vlm import VLMReranker
    from tiny.rerankers import build_vlm_reranker, page_image

    folder = build_vlm_reranker(tmp_path / "vlm")
    gen = build_generator("local", model=str(folder)).load()
    assert isinstance(gen, LocalVLMGenerator) and gen.family.family == "qwen2-vl"
    with pytest.raises(UnknownModelError, match="reranker"):  # no role: the embedder catalogue says which it can be
        registry.resolve(str(folder))
    rr = registry.build(str(folder), "reranker", batch_size=2)
    assert isinstance(rr, VLMReranker) and rr.yes_token == "yes"
    mono = registry.build("monoqwen2-vl", "reranker")
    assert (mono.yes_token, mono.no_token, mono.source) == ("True", "False", "lightonai/MonoQwen2-VL-v0.1")
    assert not mono.loaded

    from rag.types import BBox, Evidence, Hit

    pages = [page_image(tmp_path / "red.png", (200, 30, 30)), page_image(tmp_path / "blue.png", (20, 40, 200))]
    hits = [Hit("d", "m.pdf", i + 1, 1.0, "pages", BBox(0, 0, 1, 1), (Evidence("pages", "page", "chart", 1.0),),
                image_path=p) for i, p in enumerate(pages)]
    direct = VLMReranker(str(folder), batch_size=2).scores("show the red bar chart", hits)
    np.testing.assert_allclose(rr.scores("show the red bar chart", hits), direct, atol=1e-5)
    assert len(rr.rerank("show the red bar chart", hits, top_k=1)) == 1


def test_matryoshka_truncation_of_the_bundled_text_model():
    from retrievers.base import TextEmbedder

    full = registry.build("all-MiniLM-L6-v2", "text", show_progress=False)
    short = registry.build("all-MiniLM-L6-v2", "text", dimension=128, show_progress=False)
    assert isinstance(short, TextEmbedder) and short.dimension == 128
    texts = ["inverter fault codes", "monthly energy output"]
    f, s = full.embed_documents(texts), short.embed_documents(texts)
    assert s.shape == (2, 128)
    np.testing.assert_allclose(np.linalg.norm(s, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(s, f[:, :128] / np.linalg.norm(f[:, :128], axis=1, keepdims=True), atol=1e-5)
    q = short.embed_query("fault codes")
    assert q.shape == (128,) and abs(float(np.linalg.norm(q)) - 1) < 1e-5
    prov = short.provenance()
    assert prov["dimension"] == 128 and prov["full_dimension"] == 384 and full.provenance()["dimension"] == 384
    with pytest.raises(ModelError, match="truncatable"):
        registry.build("colqwen2", "late_interaction", dimension=64)


def test_a_truncated_model_has_its_models_methods_on_the_class_and_truncates_image_queries():
    """Python 3.12's protocol checks look methods up on the class, not through ``__getattr__``:
    a truncated VLM embedder must still be a MultimodalEmbedder there (else text questions
    silently stop using its image vectors), and its image-query vectors must be cut like the
    stored ones."""
    import inspect

    from retrievers.base import ImageEmbedder, ImageOnlyEmbedder, MultimodalEmbedder
    from retrievers.embedders.matryoshka import Truncated

    class Stand:  # a VLM embedder's shape: 8-d vectors for images, texts, image queries, pairs
        name, dimension = "stand", 8

        def load(self):
            pass

        def provenance(self):
            return {"name": self.name}

        def embed_images(self, paths):
            return np.ones((len(paths), 8))

        def embed_texts(self, texts):
            return np.ones((len(texts), 8))

        def embed_image_queries(self, paths):
            return np.ones((len(paths), 8))

        def embed_pairs(self, texts, paths):
            return np.ones((len(texts), 8))

    class ImageOnly:
        name, dimension = "image-only", 8

        def load(self):
            pass

        def provenance(self):
            return {}

        def embed_images(self, paths):
            return np.ones((len(paths), 8))

    short = Truncated(Stand(), 4)
    for method in ("embed_images", "embed_texts", "embed_image_queries", "embed_pairs"):
        assert inspect.getattr_static(short, method, None) is not None, method
    assert isinstance(short, MultimodalEmbedder) and short.embed_image_queries(["a.png"]).shape == (1, 4)
    only = Truncated(ImageOnly(), 4)
    assert isinstance(only, ImageOnlyEmbedder) and not isinstance(only, ImageEmbedder)
    assert inspect.getattr_static(only, "embed_texts", None) is None


def _in_local_cache(hub_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(hub_id, "config.json"), str)


_SINGLE_VECTOR = [m.name for m in registry.MODELS.values()
                  if registry.FAMILIES[m.family].supported and registry.FAMILIES[m.family].role in ("image", "image_only", "multimodal")]


@pytest.mark.real_model
@pytest.mark.parametrize("name", _SINGLE_VECTOR)
def test_real_checkpoint_gives_its_registered_dimension(name, tmp_path):
    """Run by name (-m real_model) where the weights are in the local Hugging Face cache."""
    from tiny.colvision import page_images

    spec = registry.MODELS[name]
    if not _in_local_cache(spec.hub_id):
        pytest.skip(f"{spec.hub_id} is not in the local Hugging Face cache (the hub is not reachable here)")
    emb = registry.build(name, "image", show_progress=False)
    v = emb.embed_images(page_images(tmp_path, n=2, size=(224, 224)))
    assert v.shape == (2, spec.dimension)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)


def test_registered_generator_and_reranker_names_work_in_the_ask_settings():
    """`--generator-model smolvlm-256m` / `--reranker-model monoqwen2-vl` mean the registry rows."""
    from rag._models import build_generator_for, build_reranker_for
    from rag.config import AskConfig, Config

    gen = build_generator_for("local", None, Config(ask=AskConfig(generator="local", generator_model="smolvlm-256m")))
    assert (gen.model_id, gen.family.family) == ("HuggingFaceTB/SmolVLM-256M-Instruct", "idefics3")
    with pytest.raises(ModelError, match="not a reranker"):  # a generator name given as the reranker
        build_reranker_for("vlm", None, Config(ask=AskConfig(reranker="vlm", reranker_model="qwen2-vl-2b")))
    rr = build_reranker_for("vlm", None, Config(ask=AskConfig(reranker="vlm", reranker_model="monoqwen2-vl")))
    assert (rr.source, rr.yes_token, rr.no_token) == ("lightonai/MonoQwen2-VL-v0.1", "True", "False")
    folder = build_reranker_for("vlm", None, Config(ask=AskConfig(reranker="vlm", reranker_model="/some/folder")))
    assert (folder.source, folder.yes_token) == ("/some/folder", "yes")  # folders and hub ids load as given
    with pytest.raises(ModelError, match="trust_remote_code"):
        build_reranker_for("vlm", None, Config(ask=AskConfig(reranker="vlm", reranker_model="jina-reranker-m0")))
    with pytest.raises(ModelError, match="not a generator"):
        build_generator_for("local", None, Config(ask=AskConfig(generator="local", generator_model="dinov2-small")))


def test_a_lora_adapter_folder_loads_as_a_reranker_through_peft(tmp_path):
    """MonoQwen2-VL ships as a LoRA adapter: with peft installed, transformers loads base + adapter."""
    pytest.importorskip("peft")
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from rag.types import BBox, Evidence, Hit
    from retrievers.rerank.vlm import VLMReranker
    from tiny.rerankers import build_vlm_reranker, page_image

    base = build_vlm_reranker(tmp_path / "base")
    lora = get_peft_model(AutoModelForImageTextToText.from_pretrained(str(base)),
                          LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    lora.save_pretrained(str(tmp_path / "adapter"))
    AutoProcessor.from_pretrained(str(base)).save_pretrained(str(tmp_path / "adapter"))
    assert not (tmp_path / "adapter" / "config.json").exists()  # an adapter, not a full checkpoint

    page = page_image(tmp_path / "p.png")
    hits = [Hit("d", "m.pdf", 1, 1.0, "pages", BBox(0, 0, 1, 1), (Evidence("pages", "page", "chart", 1.0),), image_path=page)]
    adapted = VLMReranker(str(tmp_path / "adapter"))
    score = adapted.scores("show the red bar chart", hits)
    assert hasattr(adapted._model, "peft_config")
    assert abs(float(score[0]) - float(VLMReranker(str(base)).scores("show the red bar chart", hits)[0])) > 1e-6
