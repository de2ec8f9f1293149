"""Tiny checkpoints of the real dual-encoder architectures: CLIP, Chinese-CLIP, SigLIP, SigLIP2.

Each builder makes the model from a config with tiny sizes (hidden 32, one layer, 32x32
images), a processor with the family's real image processor and an offline WordLevel
tokenizer (:mod:`tiny.tokenizer`), saves both with ``save_pretrained`` to ``folder`` and
returns ``(model, processor)`` so a test can compare the reloaded model with the saved one.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tiny.tokenizer import build_tokenizer

__all__ = ["build_tiny_clip", "build_tiny_chinese_clip", "build_tiny_siglip", "build_tiny_siglip2", "TINY_BUILDERS"]

HIDDEN = 32
PROJECTION = 16
IMAGE = 32
PATCH = 8

_TEXT = dict(hidden_size=HIDDEN, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
_VISION = dict(hidden_size=HIDDEN, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, patch_size=PATCH)


def _with_template(tokenizer, first: str | None, last: str | None):
    """Wrap every sequence in the model's boundary tokens, as the real tokenizers do.

    CLIP pools the text at its end-of-text token and BERT at ``[CLS]``: without them a
    tiny tokenizer would pool a random position.
    """
    from tokenizers import processors

    parts = [t for t in (first, "$A", last) if t]
    specials = [(t, tokenizer.convert_tokens_to_ids(t)) for t in (first, last) if t]
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(single=" ".join(parts), special_tokens=specials)
    return tokenizer


def _seed() -> None:
    import torch

    torch.manual_seed(0)


def build_tiny_clip(folder: str | Path) -> tuple[Any, Any]:
    """``CLIPModel`` + ``CLIPProcessor`` (CLIPImageProcessor, end-of-text pooling)."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    max_len = 32
    tok = build_tokenizer(
        # eos must not get id 2: CLIP then falls back to its legacy argmax pooling
        special_tokens={"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "unk_token": "<|unk|>"},
        model_max_length=max_len,
    )
    tok = _with_template(tok, "<|startoftext|>", "<|endoftext|>")
    config = CLIPConfig(
        text_config=dict(
            _TEXT,
            vocab_size=len(tok),
            max_position_embeddings=max_len,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        ),
        vision_config=dict(_VISION, image_size=IMAGE),
        projection_dim=PROJECTION,
    )
    _seed()
    model = CLIPModel(config).eval()
    image_processor = CLIPImageProcessor(size={"shortest_edge": IMAGE}, crop_size={"height": IMAGE, "width": IMAGE})
    processor = CLIPProcessor(image_processor=image_processor, tokenizer=tok)
    return _save(model, processor, folder)


def build_tiny_chinese_clip(folder: str | Path) -> tuple[Any, Any]:
    """``ChineseCLIPModel`` (BERT text tower, [CLS] pooling) + ``ChineseCLIPProcessor``."""
    from transformers import ChineseCLIPConfig, ChineseCLIPImageProcessor, ChineseCLIPModel, ChineseCLIPProcessor

    max_len = 32
    tok = build_tokenizer(
        special_tokens={
            "unk_token": "[UNK]",
            "pad_token": "[PAD]",
            "cls_token": "[CLS]",
            "sep_token": "[SEP]",
            "mask_token": "[MASK]",
        },
        model_max_length=max_len,
    )
    tok = _with_template(tok, "[CLS]", "[SEP]")
    config = ChineseCLIPConfig(
        text_config=dict(_TEXT, vocab_size=len(tok), max_position_embeddings=max_len, pad_token_id=tok.pad_token_id),
        vision_config=dict(_VISION, image_size=IMAGE),
        projection_dim=PROJECTION,
    )
    _seed()
    model = ChineseCLIPModel(config).eval()
    image_processor = ChineseCLIPImageProcessor(size={"shortest_edge": IMAGE}, crop_size={"height": IMAGE, "width": IMAGE})
    processor = ChineseCLIPProcessor(image_processor=image_processor, tokenizer=tok)
    return _save(model, processor, folder)


def build_tiny_siglip(folder: str | Path) -> tuple[Any, Any]:
    """``SiglipModel`` + ``SiglipProcessor`` (fixed-size resize, last-token text pooling)."""
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor

    max_len = 16
    tok = build_tokenizer(special_tokens={"unk_token": "<unk>", "pad_token": "</s>", "eos_token": "</s>"}, model_max_length=max_len)
    tok = _with_template(tok, None, "</s>")
    config = SiglipConfig(
        text_config=dict(
            _TEXT,
            vocab_size=len(tok),
            max_position_embeddings=max_len,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
            bos_token_id=None,  # the config's default (49406) lies outside the tiny vocabulary
        ),
        vision_config=dict(_VISION, image_size=IMAGE),
    )
    _seed()
    model = SiglipModel(config).eval()
    image_processor = SiglipImageProcessor(size={"height": IMAGE, "width": IMAGE})
    processor = SiglipProcessor(image_processor=image_processor, tokenizer=tok)
    return _save(model, processor, folder)


def build_tiny_siglip2(folder: str | Path) -> tuple[Any, Any]:
    """``Siglip2Model`` + ``Siglip2Processor`` (NaFlex: patches with aspect ratio kept)."""
    from transformers import Siglip2Config, Siglip2ImageProcessor, Siglip2Model, Siglip2Processor

    from transformers.models.siglip2.tokenization_siglip2 import Siglip2Tokenizer

    max_len = 32
    num_patches = 16
    # SigLIP2 loads its text side as Siglip2Tokenizer (Gemma BPE, lower-cased, left padding)
    # whatever tokenizer_class says: build one, character-level (BPE without merges).
    chars = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "\u2581", *string.ascii_lowercase, *string.digits, *".,:;?!-'"]
    tok = Siglip2Tokenizer(vocab={c: i for i, c in enumerate(chars)}, merges=[], model_max_length=max_len)
    config = Siglip2Config(
        text_config=dict(
            _TEXT,
            vocab_size=len(tok),
            max_position_embeddings=max_len,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
            bos_token_id=None,  # the config's default (49406) lies outside the tiny vocabulary
        ),
        vision_config=dict(_VISION, num_patches=num_patches),
    )
    _seed()
    model = Siglip2Model(config).eval()
    image_processor = Siglip2ImageProcessor(patch_size=PATCH, max_num_patches=num_patches)
    processor = Siglip2Processor(image_processor=image_processor, tokenizer=tok)
    return _save(model, processor, folder)


def _save(model: Any, processor: Any, folder: str | Path) -> tuple[Any, Any]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    processor.save_pretrained(str(folder))
    return model, processor


#: family -> builder, matching ``retrievers.registry.FAMILIES``.
TINY_BUILDERS: dict[str, Callable[[str | Path], tuple[Any, Any]]] = {
    "clip": build_tiny_clip,
    "chinese-clip": build_tiny_chinese_clip,
    "siglip": build_tiny_siglip,
    "siglip2": build_tiny_siglip2,
}
