"""Tiny checkpoints of real vision-encoder architectures (image-only embedders), built offline.

- ``vit``: ``ViTModel`` + ``ViTImageProcessor`` (the google/vit-base-patch16-224-in21k shape)
- ``dinov2``: ``Dinov2Model`` + ``BitImageProcessor`` (facebook/dinov2-*: resize, centre crop)
- ``webssl-dino``: ``Dinov2Model`` with SwiGLU FFN (facebook/webssl-dino*: DINOv2 architecture)
- ``internvl-vision``: ``InternVLVisionModel`` + ``GotOcr2ImageProcessor`` (InternViT inside
  transformers-native InternVL checkpoints), mean pooling over patches

Each builder saves model + image processor with ``save_pretrained`` into ``folder`` and returns
``(model, image_processor)``. Images are 28x28, patch 7: 16 patch tokens plus [CLS].

``build_llava_next(folder)``: the E5-V architecture (LLaVA-NeXT) for the VLM-embedder tests.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["VISION_BUILDERS", "ARCHITECTURES", "build_vision", "build_llava_next"]

IMAGE, PATCH, HIDDEN = 28, 7, 32
_LAYERS = dict(hidden_size=HIDDEN, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)


def _seed() -> None:
    import torch

    torch.manual_seed(0)


def _save(model: Any, processor: Any, folder: Path) -> tuple[Any, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    processor.save_pretrained(str(folder))
    return model, processor


def build_vit(folder: Path) -> tuple[Any, Any]:
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    _seed()
    model = ViTModel(ViTConfig(**_LAYERS, image_size=IMAGE, patch_size=PATCH)).eval()
    return _save(model, ViTImageProcessor(size={"height": IMAGE, "width": IMAGE}), folder)


def _dinov2(folder: Path, **extra: Any) -> tuple[Any, Any]:
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    _seed()
    config = Dinov2Config(**{**_LAYERS, "intermediate_size": None}, mlp_ratio=2, image_size=IMAGE, patch_size=PATCH, **extra)
    model = Dinov2Model(config).eval()
    processor = BitImageProcessor(size={"shortest_edge": IMAGE + 4}, crop_size={"height": IMAGE, "width": IMAGE},
                                  do_center_crop=True, do_convert_rgb=True,
                                  image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
    return _save(model, processor, folder)


def build_dinov2(folder: Path) -> tuple[Any, Any]:
    return _dinov2(folder)


def build_webssl_dino(folder: Path) -> tuple[Any, Any]:
    return _dinov2(folder, use_swiglu_ffn=True)


def build_internvl_vision(folder: Path) -> tuple[Any, Any]:
    from transformers import GotOcr2ImageProcessor, InternVLVisionConfig, InternVLVisionModel

    _seed()
    config = InternVLVisionConfig(**_LAYERS, image_size=IMAGE, patch_size=PATCH, use_mean_pooling=True)
    model = InternVLVisionModel(config).eval()
    # the InternVL checkpoints' position embeddings start at zero: give them values so patches differ by place
    import torch

    with torch.no_grad():
        for p in model.parameters():
            if p.abs().sum() == 0 and p.ndim > 1:
                p.normal_(0, 0.5)
    processor = GotOcr2ImageProcessor(size={"height": IMAGE, "width": IMAGE}, crop_to_patches=False)
    return _save(model, processor, folder)


def build_llava_next(folder: str | Path) -> Path:
    """A tiny ``LlavaNextForConditionalGeneration`` + ``LlavaNextProcessor`` (the E5-V architecture:
    CLIP vision tower, Llama text model, any-resolution tiling) saved to ``folder``.

    Tiles are 28x28 (patch 7: 16 tokens; the processor counts the [CLS] the model drops,
    ``num_additional_image_tokens=1``, as the real LLaVA-NeXT processors do).
    """
    import torch
    from transformers import LlavaNextConfig, LlavaNextForConditionalGeneration, LlavaNextImageProcessor, LlavaNextProcessor

    from tiny.tokenizer import WORDS, build_tokenizer

    folder = Path(folder)
    pinpoints = [[IMAGE, IMAGE], [IMAGE, 2 * IMAGE], [2 * IMAGE, IMAGE], [2 * IMAGE, 2 * IMAGE]]
    tok = build_tokenizer(
        special_tokens={"unk_token": "[UNK]", "pad_token": "<|end_of_text|>", "eos_token": "<|eot_id|>",
                        "bos_token": "<|begin_of_text|>"},
        extra_tokens=("<image>", "<|start_header_id|>", "<|end_header_id|>"),
        words=(*WORDS, "Summary", "above", "sentence", "word", "user", "assistant", "Modify", "with", "modified"),
        padding_side="left",
    )
    image_processor = LlavaNextImageProcessor(size={"shortest_edge": IMAGE}, crop_size={"height": IMAGE, "width": IMAGE},
                                              image_grid_pinpoints=pinpoints)
    processor = LlavaNextProcessor(image_processor=image_processor, tokenizer=tok, patch_size=PATCH,
                                   vision_feature_select_strategy="default", image_token="<image>",
                                   num_additional_image_tokens=1)
    config = LlavaNextConfig(
        vision_config=dict(model_type="clip_vision_model", **_LAYERS, image_size=IMAGE, patch_size=PATCH, projection_dim=HIDDEN),
        text_config=dict(model_type="llama", vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, pad_token_id=tok.pad_token_id,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        image_grid_pinpoints=pinpoints,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        image_seq_length=(IMAGE // PATCH) ** 2,
    )
    _seed()
    model = LlavaNextForConditionalGeneration(config).eval()
    _save(model, processor, folder)
    return folder


VISION_BUILDERS: dict[str, Callable[[Path], tuple[Any, Any]]] = {
    "vit": build_vit,
    "dinov2": build_dinov2,
    "webssl-dino": build_webssl_dino,
    "internvl-vision": build_internvl_vision,
}

ARCHITECTURES = {"vit": "ViTModel", "dinov2": "Dinov2Model", "webssl-dino": "Dinov2Model",
                 "internvl-vision": "InternVLVisionModel"}


def build_vision(family: str, folder: str | Path) -> tuple[Any, Any]:
    return VISION_BUILDERS[family](Path(folder))
