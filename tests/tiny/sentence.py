"""A tiny plain sentence-transformers folder (BERT -> mean pooling -> Normalize, no prompts).

It takes the same paths as the bundled all-MiniLM-L6-v2: the registry resolves it as a
sentence-transformers folder, :mod:`retrievers.embedders.onnx_text` exports and quantises it,
and ``mmrag tune`` trains it, each in a second or two.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from tiny.tokenizer import WORDS, build_tokenizer

__all__ = ["plain_st_folder", "HIDDEN"]

HIDDEN = 32
_SPECIALS = {"unk_token": "[UNK]", "pad_token": "[PAD]", "cls_token": "[CLS]", "sep_token": "[SEP]", "mask_token": "[MASK]"}


def plain_st_folder(root: Path, words: Iterable[str] = (), seed: int = 0) -> Path:
    """Build and save the model under ``root``; returns its sentence-transformers folder.
    ``words`` join the tokenizer's vocabulary (lower-case and capitalised)."""
    import torch
    from transformers import BertConfig, BertModel

    folder = root / "st"
    extra = [w for word in words for w in (word.lower(), word.capitalize())]
    tok = build_tokenizer(folder, special_tokens=_SPECIALS, words=list(dict.fromkeys([*WORDS, *extra])), model_max_length=128)
    config = BertConfig(
        vocab_size=len(tok), hidden_size=HIDDEN, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(str(folder))
    # the layout of the bundled all-MiniLM-L6-v2 (transformer at the root, classic module names)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (folder / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128, "do_lower_case": False}), encoding="utf-8")
    (folder / "1_Pooling").mkdir()
    pooling = {"word_embedding_dimension": HIDDEN, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
               "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False}
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling), encoding="utf-8")
    return folder
