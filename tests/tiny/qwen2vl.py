"""Tiny image-text-to-text checkpoints of real architectures, saved like a user's model.

Each ``build_*`` function builds a randomly initialised model of the real class from a
config with tiny sizes, a processor around the offline WordLevel tokenizer from
:mod:`tiny.tokenizer` (plus the model's real special tokens and its real chat template),
saves both with ``save_pretrained`` to ``folder`` and returns ``folder``. Loading the folder
back with ``AutoProcessor`` / ``AutoModelForImageTextToText.from_pretrained`` is the same path a
real checkpoint takes.

Stable API (other test suites import it):

- ``build_qwen2vl(folder) -> Path``     Qwen2VLForConditionalGeneration + Qwen2VLProcessor
- ``build_qwen2_5_vl(folder) -> Path``  Qwen2_5_VLForConditionalGeneration + Qwen2_5_VLProcessor
- ``build_idefics3(folder) -> Path``    Idefics3ForConditionalGeneration + Idefics3Processor
  (the SmolVLM-256M/500M architecture)
- ``build_smolvlm(folder) -> Path``     SmolVLMForConditionalGeneration + SmolVLMProcessor
  (the SmolVLM2 architecture; its processor needs ``num2words``)

The vocabulary adds ``[`` and ``]`` to the shared word list so a model can write citation
markers (``[ 1 ]``). Images are kept small by the image processors' size limits (Qwen:
56x56..112x112 pixels, at most 16 image tokens per image; Idefics3/SmolVLM: one 32x32 tile,
4 image tokens).
"""

from __future__ import annotations

from pathlib import Path

from tiny.tokenizer import WORDS, build_tokenizer

__all__ = [
    "QWEN2VL_CHAT_TEMPLATE",
    "IDEFICS3_CHAT_TEMPLATE",
    "QWEN2VL_SPECIAL_TOKENS",
    "build_qwen2vl",
    "build_qwen2_5_vl",
    "build_idefics3",
    "build_smolvlm",
    "SMOLVLM_CHAT_TEMPLATE",
]

#: The chat template shipped with Qwen/Qwen2-VL-*-Instruct (Qwen2.5-VL uses the same one).
QWEN2VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

#: The chat template shipped with HuggingFaceTB/SmolVLM-*-Instruct (Idefics3 architecture).
IDEFICS3_CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

QWEN2VL_SPECIAL_TOKENS = (
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

_QWEN_MIN_PIXELS = 56 * 56
_QWEN_MAX_PIXELS = 112 * 112


def _qwen_processor(processor_cls, tokenizer):
    from transformers import Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    image_processor = Qwen2VLImageProcessor(
        size={"shortest_edge": _QWEN_MIN_PIXELS, "longest_edge": _QWEN_MAX_PIXELS}
    )
    video_processor = Qwen2VLVideoProcessor(
        size={"shortest_edge": _QWEN_MIN_PIXELS, "longest_edge": _QWEN_MAX_PIXELS}
    )
    return processor_cls(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=QWEN2VL_CHAT_TEMPLATE,
    )


def _qwen_tokenizer():
    return build_tokenizer(
        special_tokens={"unk_token": "[UNK]", "pad_token": "<|endoftext|>", "eos_token": "<|im_end|>"},
        extra_tokens=QWEN2VL_SPECIAL_TOKENS,
        words=(*WORDS, "[", "]"),
        padding_side="left",
    )


def _qwen_text_config(tokenizer) -> dict:
    # head_dim = 64 / 4 = 16; mrope_section must sum to head_dim / 2 = 8.
    return {
        "vocab_size": len(tokenizer),
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 2048,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
        "bos_token_id": tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }


def _qwen_token_ids(tokenizer) -> dict:
    ids = tokenizer.convert_tokens_to_ids
    return {
        "image_token_id": ids("<|image_pad|>"),
        "video_token_id": ids("<|video_pad|>"),
        "vision_start_token_id": ids("<|vision_start|>"),
        "vision_end_token_id": ids("<|vision_end|>"),
    }


def _save(model, processor, tokenizer, folder: Path) -> Path:
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(str(folder))
    processor.save_pretrained(str(folder))
    return folder


def build_qwen2vl(folder: str | Path, *, seed: int = 0) -> Path:
    """Save a tiny ``Qwen2VLForConditionalGeneration`` + ``Qwen2VLProcessor`` to ``folder``."""
    import torch
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLProcessor

    folder = Path(folder)
    tokenizer = _qwen_tokenizer()
    processor = _qwen_processor(Qwen2VLProcessor, tokenizer)
    config = Qwen2VLConfig(
        text_config=_qwen_text_config(tokenizer),
        vision_config={
            "depth": 1,
            "embed_dim": 32,
            "hidden_size": 64,  # output size of the merger = text hidden size
            "num_heads": 2,
            "mlp_ratio": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        **_qwen_token_ids(tokenizer),
    )
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(config).eval()
    return _save(model, processor, tokenizer, folder)


def build_qwen2_5_vl(folder: str | Path, *, seed: int = 0) -> Path:
    """Save a tiny ``Qwen2_5_VLForConditionalGeneration`` + ``Qwen2_5_VLProcessor`` to ``folder``."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor

    folder = Path(folder)
    tokenizer = _qwen_tokenizer()
    processor = _qwen_processor(Qwen2_5_VLProcessor, tokenizer)
    config = Qwen2_5_VLConfig(
        text_config=_qwen_text_config(tokenizer),
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": 64,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 56,
            "fullatt_block_indexes": [1],
        },
        **_qwen_token_ids(tokenizer),
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    return _save(model, processor, tokenizer, folder)


def build_idefics3(folder: str | Path, *, seed: int = 0) -> Path:
    """Save a tiny ``Idefics3ForConditionalGeneration`` + ``Idefics3Processor`` (SmolVLM) to ``folder``."""
    import torch
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3ImageProcessor, Idefics3Processor

    folder = Path(folder)
    image_size, patch_size, scale_factor = 32, 8, 2
    image_seq_len = (image_size // patch_size) ** 2 // scale_factor**2
    row_col = [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]
    tokenizer = build_tokenizer(
        special_tokens={"unk_token": "[UNK]", "pad_token": "<|im_end|>", "eos_token": "<end_of_utterance>",
                        "bos_token": "<|im_start|>"},
        extra_tokens=("<fake_token_around_image>", "<image>", "<global-img>", *row_col),
        words=(*WORDS, "[", "]", "User", "Assistant", "System"),
        padding_side="left",
    )
    image_processor = Idefics3ImageProcessor(
        size={"longest_edge": image_size},
        max_image_size={"longest_edge": image_size},
        do_image_splitting=False,
    )
    processor = Idefics3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        image_seq_len=image_seq_len,
        chat_template=IDEFICS3_CHAT_TEMPLATE,
    )
    config = Idefics3Config(
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": image_size,
            "patch_size": patch_size,
        },
        text_config={
            "model_type": "llama",
            "vocab_size": len(tokenizer),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 2048,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        scale_factor=scale_factor,
    )
    torch.manual_seed(seed)
    model = Idefics3ForConditionalGeneration(config).eval()
    return _save(model, processor, tokenizer, folder)


#: The chat template shipped with HuggingFaceTB/SmolVLM2-*-Instruct.
SMOLVLM_CHAT_TEMPLATE = IDEFICS3_CHAT_TEMPLATE.replace(
    "{% elif line['type'] == 'image' %}{{ '<image>' }}",
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% elif line['type'] == 'video' %}{{ '<video>' }}",
)


def build_smolvlm(folder: str | Path, *, seed: int = 0) -> Path:
    """Save a tiny ``SmolVLMForConditionalGeneration`` + ``SmolVLMProcessor`` (SmolVLM2) to ``folder``.

    The SmolVLM processor needs the ``num2words`` package.
    """
    import torch
    from transformers import (
        SmolVLMConfig,
        SmolVLMForConditionalGeneration,
        SmolVLMImageProcessor,
        SmolVLMProcessor,
        SmolVLMVideoProcessor,
    )

    folder = Path(folder)
    image_size, patch_size, scale_factor = 32, 8, 2
    image_seq_len = (image_size // patch_size) ** 2 // scale_factor**2
    row_col = [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]
    tokenizer = build_tokenizer(
        special_tokens={"unk_token": "[UNK]", "pad_token": "<|im_end|>", "eos_token": "<end_of_utterance>",
                        "bos_token": "<|im_start|>"},
        extra_tokens=("<fake_token_around_image>", "<image>", "<global-img>", "<video>", *row_col),
        words=(*WORDS, "[", "]", "User", "Assistant", "System"),
        padding_side="left",
    )
    limits = {"size": {"longest_edge": image_size}, "max_image_size": {"longest_edge": image_size}}
    processor = SmolVLMProcessor(
        image_processor=SmolVLMImageProcessor(do_image_splitting=False, **limits),
        tokenizer=tokenizer,
        video_processor=SmolVLMVideoProcessor(**limits),
        image_seq_len=image_seq_len,
        chat_template=SMOLVLM_CHAT_TEMPLATE,
    )
    config = SmolVLMConfig(
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": image_size,
            "patch_size": patch_size,
        },
        text_config={
            "model_type": "llama",
            "vocab_size": len(tokenizer),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 2048,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        scale_factor=scale_factor,
    )
    torch.manual_seed(seed)
    model = SmolVLMForConditionalGeneration(config).eval()
    return _save(model, processor, tokenizer, folder)
