"""An offline tokenizer for tiny checkpoints: a WordLevel vocabulary plus special tokens.

Real tokenizers come from the hub, which these machines cannot reach. A WordLevel
vocabulary over common English words (plus every word the tests use) wrapped in
``PreTrainedTokenizerFast`` is accepted by transformers' and colpali-engine's processors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

WORDS = (
    "the a an of to in on for and or is are was were be by with from at as it this that what which who "
    "how many much where when why does do did show shows chart figure table page row column value total "
    "inverter panel solar fault code month output energy kwh voltage maintenance inspect every months "
    "describe image picture document question answer query search find text plot diagram screenshot "
    "trace tracing benchmark speedup time compile record interpreter loop bar red blue green one two three"
).split()


def build_tokenizer(
    folder: str | Path | None = None,
    *,
    special_tokens: Mapping[str, str] | None = None,
    extra_tokens: Iterable[str] = (),
    words: Iterable[str] = WORDS,
    model_max_length: int = 512,
    padding_side: str = "right",
):
    """Build a ``PreTrainedTokenizerFast``; save it to ``folder`` when given.

    ``special_tokens`` maps roles (``pad_token``, ``eos_token``, ``bos_token``, ``unk_token``,
    ``cls_token``, ``sep_token``, ``mask_token``) to token strings. ``extra_tokens`` are added
    as additional special tokens (e.g. ``<image>``, ``<|vision_start|>``).
    """
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = dict(special_tokens or {"unk_token": "[UNK]", "pad_token": "[PAD]"})
    specials.setdefault("unk_token", "[UNK]")
    extra = [t for t in extra_tokens if t not in specials.values()]
    vocab: dict[str, int] = {}
    for token in [*specials.values(), *extra, *words, *[str(d) for d in range(10)], *".,:;?!'\"()-/%"]:
        vocab.setdefault(token, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=specials["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        model_max_length=model_max_length,
        padding_side=padding_side,
        **specials,
    )
    if extra:
        fast.add_special_tokens({"additional_special_tokens": extra})
    if folder is not None:
        fast.save_pretrained(str(folder))
    return fast
