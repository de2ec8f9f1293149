"""Fine-tune a sentence-transformers text model on (anchor, positive) pairs, on CPU, in a time budget.

The budget is CPU time of this process (``time.process_time()``, all its threads), not
the wall clock: on a shared or busy machine the same ``minutes`` trains the same number of
steps, so a run gives the same model whatever else the machine is doing.

The loss is the in-batch-negatives ranking loss (sentence-transformers'
``MultipleNegativesRankingLoss``): each anchor's positive must score above every other
positive of its batch, cosine similarities scaled by :data:`SCALE`. A plain torch loop runs
it, so the budget (``minutes``) and a caller's stop request are checked between steps;
the loop stops at the budget, after ``epochs`` passes, or when asked, whichever comes first.

The tuned model is saved as a plain sentence-transformers folder (the pipeline it was loaded
with), so :mod:`retrievers.embedders.onnx_text` exports and quantises it as it does the
bundled model. torch and sentence-transformers are imported here only when training runs.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import ConfigError
from retrievers.embedders._batching import batched, progress, wants_progress

__all__ = ["TrainingPair", "TrainingRun", "fine_tune", "pair_recall"]

logger = logging.getLogger(__name__)

#: Cosine similarities are multiplied by this before the softmax (sentence-transformers' default).
SCALE = 20.0


@dataclass(frozen=True, slots=True)
class TrainingPair:
    """A short text (``anchor``: a heading, a caption, an index entry) and the passage it leads to.

    ``kind`` names where the corpus gave it (``heading``, ``caption``, ``navigation``, ``title``,
    ``sentence``); ``group`` is the document it came from."""

    anchor: str
    positive: str
    kind: str
    group: str = ""


@dataclass(frozen=True, slots=True)
class TrainingRun:
    """What one fine-tuning run did."""

    folder: Path
    steps: int
    pairs_seen: int
    epochs: float
    seconds: float
    cpu_seconds: float
    last_loss: float
    stopped_by: str  # "budget", "epochs" or "request"


def fine_tune(
    source: str | Path,
    pairs: Sequence[TrainingPair],
    target: str | Path,
    *,
    minutes: float = 5.0,
    epochs: int = 1,
    batch_size: int = 16,
    learning_rate: float = 2e-5,
    max_seq_length: int = 128,
    seed: int = 0,
    show_progress: bool | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainingRun:
    """Train a copy of the sentence-transformers folder ``source`` on ``pairs``; save it to ``target``.

    ``minutes`` bounds the CPU time of the training loop (loading and saving come on top); ``max_seq_length``
    bounds the tokens per text while training (the saved model keeps its own limit)."""
    if minutes <= 0:
        raise ConfigError(f"tune: minutes must be more than 0, got {minutes}")
    if batch_size < 2:
        raise ConfigError(f"tune: batch_size must be at least 2 (the other pairs of a batch are the negatives), got {batch_size}")
    if len(pairs) < batch_size:
        raise ConfigError(
            f"tune: {len(pairs)} training pairs, fewer than one batch of {batch_size}; "
            "ingest more documents (headings, captions, contents pages give pairs) or lower the batch size"
        )
    import torch
    from sentence_transformers import SentenceTransformer

    started, cpu_started = time.perf_counter(), time.process_time()
    torch.manual_seed(seed)
    if not wants_progress(show_progress, logger):
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # its "Loading weights" and "Writing model shards" bars
    model = SentenceTransformer(str(source), device="cpu", local_files_only=Path(source).is_dir())
    saved_length = model.max_seq_length
    model.max_seq_length = min(int(saved_length or max_seq_length), max_seq_length)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    order = list(range(len(pairs)))
    rng = random.Random(seed)
    budget = minutes * 60.0
    steps_per_epoch = len(pairs) // batch_size
    total = steps_per_epoch * epochs
    warmup = max(1, total // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup))
    steps, seen, last_loss, stopped_by = 0, 0, float("nan"), "epochs"
    bar = progress(range(total), show=wants_progress(show_progress, logger), total=total, desc="tune", unit="step")
    batches = (b for _ in range(epochs) for b in _epoch_batches(order, pairs, batch_size, rng))
    train_start = time.process_time()
    for _, batch in zip(bar, batches):
        if should_stop is not None and should_stop():
            stopped_by = "request"
            break
        if time.process_time() - train_start > budget:
            stopped_by = "budget"
            break
        anchors = model.preprocess([pairs[i].anchor for i in batch])
        positives = model.preprocess([pairs[i].positive for i in batch])
        a = torch.nn.functional.normalize(model(anchors)["sentence_embedding"], dim=-1)
        p = torch.nn.functional.normalize(model(positives)["sentence_embedding"], dim=-1)
        scores = a @ p.T * SCALE
        loss = torch.nn.functional.cross_entropy(scores, torch.arange(len(batch)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        steps += 1
        seen += len(batch)
        last_loss = float(loss.detach())
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{last_loss:.3f}")
    if hasattr(bar, "close"):
        bar.close()
    model.eval()
    model.max_seq_length = saved_length
    out = Path(target)
    _save_like(Path(source), model[0].auto_model, out)
    run = TrainingRun(
        folder=out, steps=steps, pairs_seen=seen, epochs=seen / max(len(pairs), 1),
        seconds=time.perf_counter() - started, cpu_seconds=time.process_time() - cpu_started,
        last_loss=last_loss, stopped_by=stopped_by,
    )
    logger.info(
        "tuned %s on %d pairs: %d steps (%.2f epochs, stopped by %s), loss %.3f, %.0f s (%.0f s CPU) -> %s",
        source, len(pairs), steps, run.epochs, stopped_by, last_loss, run.seconds, run.cpu_seconds, out,
    )
    return run


#: weight files of a model folder, replaced by the tuned weights
_WEIGHTS = ("*.safetensors", "*.bin", "*.pt", "*.pth", "*.onnx", "*.h5", "*.msgpack")


def _save_like(source: Path, transformer: Any, target: Path) -> None:
    """``target``: a copy of the folder ``source`` (its modules, pooling, tokenizer, configs, in its
    own format) whose transformer weights are ``transformer``'s. A folder laid out as the base
    model is takes the same paths (the torch-free ONNX path of a plain pipeline among them);
    sentence-transformers' own ``save`` would write its newest layout instead."""
    if not (source / "modules.json").is_file():
        raise ConfigError(f"tune: {source} is not a sentence-transformers folder (no modules.json)")
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".*", "onnx", "openvino", *_WEIGHTS), dirs_exist_ok=True)
    modules = json.loads((source / "modules.json").read_text(encoding="utf-8"))
    home = target / str(modules[0].get("path", ""))  # the transformer module's folder ("" = the root)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        transformer.save_pretrained(tmp, safe_serialization=True)
        for weights in Path(tmp).glob("*.safetensors*"):
            shutil.move(str(weights), home / weights.name)


def _epoch_batches(order: list[int], pairs: Sequence[TrainingPair], size: int, rng: random.Random) -> list[list[int]]:
    """One shuffled pass in full batches; a batch never holds two pairs with the same anchor or
    positive text (each would be the other's false negative): a repeat waits for the next batch."""
    rng.shuffle(order)
    out: list[list[int]] = []
    batch: list[int] = []
    seen: set[str] = set()
    waiting: list[int] = []
    for i in order:
        keys = {pairs[i].anchor, pairs[i].positive}
        if keys & seen:
            waiting.append(i)
            continue
        batch.append(i)
        seen |= keys
        if len(batch) == size:
            out.append(batch)
            batch, seen = [], set()
            retry, waiting = waiting, []
            for j in retry:
                k = {pairs[j].anchor, pairs[j].positive}
                if k & seen:
                    waiting.append(j)
                else:
                    batch.append(j)
                    seen |= k
    return out


def pair_recall(encode: Callable[[list[str]], np.ndarray], pairs: Sequence[TrainingPair], batch: int = 64) -> float:
    """Share of ``pairs`` whose anchor's nearest positive (among all the pairs' positives) is its own:
    the held-out check of a tuning run, with ``encode`` the model to judge (normalised vectors)."""
    if not pairs:
        return float("nan")
    positives = sorted({p.positive for p in pairs})
    index = {text: i for i, text in enumerate(positives)}
    pvec = np.concatenate([encode(chunk) for chunk in batched(positives, batch)])
    avec = np.concatenate([encode(chunk) for chunk in batched([p.anchor for p in pairs], batch)])
    best = (avec @ pvec.T).argmax(axis=1)
    return float(np.mean([best[i] == index[p.positive] for i, p in enumerate(pairs)]))
