"""Tiny checkpoints of the real ColPali-family architectures, built offline.

Each builder makes a config with tiny sizes (hidden 32, one or two layers, small
images), the colpali-engine model class on top of it with seeded random weights, a
processor around the offline WordLevel tokenizer of :mod:`tiny.tokenizer`, and saves
model + processor with ``save_pretrained``. The saved ``config.json`` names the
colpali-engine class in ``architectures`` (``ColPali``, ``ColQwen2``, ``ColQwen2_5``,
``ColIdefics3``), which is how :mod:`retrievers.registry` recognises a local folder.

Use :func:`build_checkpoint` (family, folder -> :class:`TinyCheckpoint` with the folder and
the in-memory model/processor it was saved from) and :func:`page_images` (small synthetic
page images with distinct content). Sizes: ColPali pages are 16 image tokens (28 px, patch 7);
ColQwen pages 4-16 merged visual tokens; ColIdefics3 pages 2x2 tiles + a global tile of 4
tokens each. Each checkpoint builds in well under a second once the libraries are imported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tiny.tokenizer import build_tokenizer

__all__ = ["FAMILIES", "BUILDERS", "TinyCheckpoint", "build_checkpoint", "page_images", "PAGE_SIZE"]

#: default size of the synthetic page images (width, height), portrait like a page
PAGE_SIZE = (48, 64)

_QWEN_SPECIALS = {"unk_token": "[UNK]", "pad_token": "<|endoftext|>", "eos_token": "<|im_end|>"}
_QWEN_EXTRA = [
    "<|im_start|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "Describe",
    "image",
    "user",
    "\n",
]


def _seed() -> None:
    import torch

    torch.manual_seed(0)


@dataclass(frozen=True)
class TinyCheckpoint:
    """A saved tiny checkpoint and the in-memory model/processor it was saved from."""

    family: str
    folder: Path
    model: Any
    processor: Any


def _save(family: str, model, processor, folder: Path) -> TinyCheckpoint:
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    processor.save_pretrained(str(folder))
    return TinyCheckpoint(family, folder, model, processor)


def build_colpali(folder: Path) -> TinyCheckpoint:
    """ColPali on a tiny PaliGemma (SigLIP vision 32-wide, Gemma text 32-wide, 1 layer each)."""
    from transformers import GemmaConfig, PaliGemmaConfig, SiglipImageProcessor, SiglipVisionConfig

    from colpali_engine.models import ColPali, ColPaliProcessor

    image_size, patch = 28, 7  # 16 image tokens
    tokenizer = build_tokenizer(
        special_tokens={"unk_token": "<unk>", "pad_token": "<pad>", "bos_token": "<bos>", "eos_token": "<eos>"},
        extra_tokens=["Describe", "image", "\n"],
    )
    image_processor = SiglipImageProcessor(
        size={"height": image_size, "width": image_size},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    image_processor.image_seq_length = (image_size // patch) ** 2
    processor = ColPaliProcessor(image_processor=image_processor, tokenizer=tokenizer)
    vocab = len(processor.tokenizer)  # after the processor added <image> and 1,152 <loc>/<seg> tokens
    text = GemmaConfig(
        vocab_size=vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        pad_token_id=processor.tokenizer.pad_token_id,
        bos_token_id=processor.tokenizer.bos_token_id,
        eos_token_id=processor.tokenizer.eos_token_id,
    )
    vision = SiglipVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=image_size,
        patch_size=patch,
    )
    config = PaliGemmaConfig(
        vision_config=vision.to_dict(),
        text_config=text.to_dict(),
        image_token_index=processor.image_token_id,
        vocab_size=vocab,
        projection_dim=32,
        hidden_size=32,
        pad_token_id=processor.tokenizer.pad_token_id,
    )
    _seed()
    model = ColPali(config).eval()
    return _save("colpali", model, processor, folder)


def _build_colqwen(folder: Path, *, v25: bool) -> TinyCheckpoint:
    from transformers import Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    if v25:
        from transformers import Qwen2_5_VLConfig as Config

        from colpali_engine.models import ColQwen2_5 as Model
        from colpali_engine.models import ColQwen2_5_Processor as Processor
    else:
        from transformers import Qwen2VLConfig as Config

        from colpali_engine.models import ColQwen2 as Model
        from colpali_engine.models import ColQwen2Processor as Processor

    tokenizer = build_tokenizer(special_tokens=_QWEN_SPECIALS, extra_tokens=_QWEN_EXTRA, padding_side="left")
    # one merged visual token per 28x28 pixels; pages are resized into [4, 16] tokens
    image_processor = Qwen2VLImageProcessor(
        min_pixels=28 * 28 * 4,
        max_pixels=28 * 28 * 16,
        patch_size=14,
        temporal_patch_size=2,
        merge_size=2,
    )
    processor = Processor(image_processor=image_processor, tokenizer=tokenizer, video_processor=Qwen2VLVideoProcessor())
    tok = processor.tokenizer
    ids = {name: tok.convert_tokens_to_ids(t) for name, t in (
        ("image_token_id", "<|image_pad|>"),
        ("video_token_id", "<|video_pad|>"),
        ("vision_start_token_id", "<|vision_start|>"),
        ("vision_end_token_id", "<|vision_end|>"),
    )}
    head_dim = 16  # hidden 32 / 2 heads; mrope_section must sum to head_dim / 2
    text_config = dict(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=512,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=None,
    )
    vision_config = dict(depth=1, hidden_size=32, out_hidden_size=32, num_heads=2, patch_size=14,
                         spatial_merge_size=2, temporal_patch_size=2, in_channels=3)
    if v25:
        vision_config.update(intermediate_size=64, fullatt_block_indexes=[0], window_size=56)
    else:
        vision_config.update(embed_dim=32, mlp_ratio=2)
    assert sum(text_config["rope_parameters"]["mrope_section"]) == head_dim // 2
    config = Config(text_config=text_config, vision_config=vision_config, **ids)
    _seed()
    model = Model(config).eval()
    return _save("colqwen2.5" if v25 else "colqwen2", model, processor, folder)


def build_colqwen2(folder: Path) -> TinyCheckpoint:
    """ColQwen2 on a tiny Qwen2-VL (vision depth 1, text 1 layer, hidden 32)."""
    return _build_colqwen(folder, v25=False)


def build_colqwen25(folder: Path) -> TinyCheckpoint:
    """ColQwen2.5 on a tiny Qwen2.5-VL (vision depth 1, text 1 layer, hidden 32)."""
    return _build_colqwen(folder, v25=True)


def build_colidefics3(folder: Path) -> TinyCheckpoint:
    """ColIdefics3 (ColSmol) on a tiny Idefics3 (SigLIP vision + Llama text, hidden 32)."""
    from transformers import Idefics3Config, Idefics3ImageProcessorPil

    from colpali_engine.models import ColIdefics3, ColIdefics3Processor

    image_size, patch, scale = 32, 8, 2  # (32/8)^2 / 2^2 = 4 tokens per image tile
    tokenizer = build_tokenizer(
        special_tokens={"unk_token": "<unk>", "pad_token": "<|endoftext|>", "bos_token": "<|im_start|>",
                        "eos_token": "<end_of_utterance>"},
        extra_tokens=["<image>", "<fake_token_around_image>", "<global-img>", "<end_of_utterance>",
                      *[f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)],
                      "User", "Assistant", "Describe", "image", "\n"],
        padding_side="left",
    )
    # the PIL backend (LANCZOS), which is what from_pretrained picks for Idefics3 in transformers 5
    image_processor = Idefics3ImageProcessorPil(
        size={"longest_edge": 2 * image_size},
        max_image_size={"longest_edge": image_size},
        do_image_splitting=True,
    )
    processor = ColIdefics3Processor(
        image_processor=image_processor, tokenizer=tokenizer, image_seq_len=(image_size // patch) ** 2 // scale**2
    )
    tok = processor.tokenizer
    config = Idefics3Config(
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=image_size, patch_size=patch),
        text_config=dict(model_type="llama", vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                         pad_token_id=tok.pad_token_id, max_position_embeddings=512),
        scale_factor=scale,
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        pad_token_id=tok.pad_token_id,
    )
    _seed()
    model = ColIdefics3(config).eval()
    return _save("colidefics3", model, processor, folder)


FAMILIES: tuple[str, ...] = ("colpali", "colqwen2", "colqwen2.5", "colidefics3")
BUILDERS: dict[str, Callable[[Path], TinyCheckpoint]] = {
    "colpali": build_colpali,
    "colqwen2": build_colqwen2,
    "colqwen2.5": build_colqwen25,
    "colidefics3": build_colidefics3,
}


def build_checkpoint(family: str, folder: str | Path) -> TinyCheckpoint:
    """Build the tiny checkpoint of ``family`` and save it into ``folder``."""
    return BUILDERS[family](Path(folder))


def page_images(folder: str | Path, n: int = 3, size: tuple[int, int] = PAGE_SIZE) -> list[Path]:
    """``n`` small synthetic page images with different content (bars, text lines, blocks)."""
    from PIL import Image, ImageDraw

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    colours = [(200, 30, 30), (30, 160, 40), (20, 40, 200), (120, 120, 0)]
    for i in range(n):
        img = Image.new("RGB", size, (255, 255, 255))
        draw = ImageDraw.Draw(img)
        w, h = size
        for j in range(3 + i):
            y = 4 + j * (h // (4 + i))
            x0 = 2 + (3 * i) % (w // 3)
            x1 = max(x0 + 2, w - 4 - (5 * j) % (w // 2))
            draw.rectangle([x0, y, x1, y + 3], fill=colours[(i + j) % len(colours)])
        draw.ellipse([w // 3, h // 2, w // 3 + 6 + (4 * i) % (w // 2), h // 2 + 8], outline=(0, 0, 0))
        path = folder / f"page_{i + 1}.png"
        img.save(path)
        paths.append(path)
    return paths
