"""Tiny reranker checkpoints of real architectures, saved like a user's model.

- ``build_cross_encoder(folder, num_labels=1)``: ``BertForSequenceClassification`` with a
  BERT-style pair template ([CLS] q [SEP] text [SEP], token type ids), the shape of
  ms-marco cross-encoders and bge-reranker.
- ``build_vlm_reranker(folder, arch="qwen2-vl")``: a tiny VLM of :mod:`tiny.qwen2vl`
  (Qwen2-VL, Qwen2.5-VL or Idefics3/SmolVLM) with ``yes`` and ``no`` added to the
  vocabulary (embeddings resized, new rows seeded) - what a MonoQwen2-VL-style fine-tune
  looks like.
- ``page_image(path, colour)``: one small page image.
"""

from __future__ import annotations

from pathlib import Path

from tiny.tokenizer import WORDS, build_tokenizer

__all__ = ["build_cross_encoder", "build_vlm_reranker", "page_image", "BERT_SPECIALS", "VLM_BUILDERS"]

BERT_SPECIALS = {
    "unk_token": "[UNK]",
    "pad_token": "[PAD]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
}


def build_cross_encoder(folder: str | Path, *, num_labels: int = 1, seed: int = 0) -> Path:
    """Save a tiny ``BertForSequenceClassification`` + BERT pair tokenizer to ``folder``."""
    import torch
    from tokenizers.processors import TemplateProcessing
    from transformers import BertConfig, BertForSequenceClassification

    folder = Path(folder)
    tokenizer = build_tokenizer(special_tokens=BERT_SPECIALS, words=(*WORDS, "yes", "no", "manual", "weather"))
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    tokenizer._tokenizer.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    # BERT reads segment ids; saved in tokenizer_config.json so the reloaded tokenizer returns them
    tokenizer.model_input_names = ["input_ids", "token_type_ids", "attention_mask"]
    tokenizer.init_kwargs["model_input_names"] = tokenizer.model_input_names
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=num_labels,
        initializer_range=0.5,  # wide random weights: scores that differ visibly between texts
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config).eval()
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


#: architecture -> builder name in :mod:`tiny.qwen2vl`
VLM_BUILDERS = {"qwen2-vl": "build_qwen2vl", "qwen2.5-vl": "build_qwen2_5_vl", "idefics3": "build_idefics3"}


def build_vlm_reranker(folder: str | Path, *, arch: str = "qwen2-vl", seed: int = 0) -> Path:
    """Save a tiny VLM of ``arch`` (see :data:`VLM_BUILDERS`) with ``yes``/``no`` added to its vocabulary."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    import tiny.qwen2vl as builders

    folder = Path(getattr(builders, VLM_BUILDERS[arch])(folder, seed=seed))
    processor = AutoProcessor.from_pretrained(str(folder), local_files_only=True)
    model = AutoModelForImageTextToText.from_pretrained(str(folder), local_files_only=True)
    added = processor.tokenizer.add_tokens(["yes", "no"])
    assert added == 2, "the tiny vocabulary already had yes/no"
    model.resize_token_embeddings(len(processor.tokenizer), mean_resizing=False)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for matrix in (model.get_input_embeddings().weight, model.get_output_embeddings().weight):
            matrix[-2:] = torch.randn(matrix[-2:].shape, generator=generator) * 0.5
    model.save_pretrained(str(folder))
    processor.save_pretrained(str(folder))
    return folder


def page_image(
    path: str | Path, colour: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (64, 84)
) -> Path:
    """A small white page with a coloured bar chart on it, saved as PNG."""
    from PIL import Image, ImageDraw

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(img)
    w, h = size
    for i, height in enumerate((20, 45, 30)):
        draw.rectangle([8 + i * 18, h - 8 - height, 20 + i * 18, h - 8], fill=colour)
    draw.line([6, 6, 6, h - 6], fill=(0, 0, 0))
    img.save(path)
    return path
