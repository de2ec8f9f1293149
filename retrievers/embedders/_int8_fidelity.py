"""How closely a text encoder's int8 copy reads like its float model.

Dynamic int8 quantisation of the MatMul weights (:meth:`OnnxTextEncoder.quantize`) halves the
CPU of all-MiniLM-L6-v2 at a cosine of 0.98-0.99 to its float vectors on document chunks, but
not every architecture takes it that well: all-mpnet-base-v2 (a folder a user may name in
``[models] text``) reads 200 public chunks at a mean cosine of 0.92, 0.78 at worst (session 16).
Such vectors are not the model the user chose, so the encoder measures its int8 copy once
against the float graph on a few fixed texts of the lengths documents have and warns, naming
the setting that avoids it, when the worst cosine falls below :data:`FLOOR`. The measurement is
kept beside the int8 copy, so it runs once per model.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rag.atomic import atomic_write

__all__ = ["FLOOR", "PROBES", "Fidelity", "measure", "remembered"]

logger = logging.getLogger(__name__)

#: the lowest cosine between an int8 and a float vector of one probe that passes
FLOOR = 0.95

#: texts of the shapes a knowledge base embeds: a question, a caption, table cells, running
#: prose of about a chunk's length (the error grows with the number of tokens)
PROBES: tuple[str, ...] = (
    "How often should the pump bearings be greased?",
    "Figure 3: Cumulative output of the plant by month, 2019-2021.",
    "Model | Layers | Parameters | Latency (ms) | MiniLM-L6 | 6 | 22M | 12.4 | MPNet-base | 12 | 110M | 61.0",
    "The inspection schedule lists every part that wears, the interval after which it is checked and the "
    "tools the check needs. Bearings are greased every 500 hours of running time; belts are inspected for "
    "cracks and tension every month, and replaced when they stretch by more than two per cent. A pump that "
    "runs hot after greasing has too much grease in its housing: open the relief plug and run it for ten "
    "minutes before closing the plug again.",
    "In the first experiment the tracing compiler recorded 1,204 traces over the benchmark suite, of which "
    "87 per cent were compiled; the rest were aborted because they left the loop through an exception or "
    "called a native function the recorder could not follow. Compiled traces ran on average 3.2 times "
    "faster than the interpreter, with the largest gains on numeric kernels and the smallest on code that "
    "manipulates strings. We discuss the causes of the aborted traces in Section 5 and show in Table 4 how "
    "often each cause occurred.",
    "Return the list of packages installed in the environment, with their versions, sorted by name.",
)


@dataclass(frozen=True, slots=True)
class Fidelity:
    """Cosines between the int8 and the float vectors of :data:`PROBES`."""

    min_cosine: float
    mean_cosine: float

    @property
    def ok(self) -> bool:
        return self.min_cosine >= FLOOR


def measure(encode_float: Callable[[Sequence[str]], np.ndarray], encode_int8: Callable[[Sequence[str]], np.ndarray]) -> Fidelity:
    """Encode :data:`PROBES` both ways and compare them one by one."""
    a = np.asarray(encode_float(PROBES), dtype=np.float64)
    b = np.asarray(encode_int8(PROBES), dtype=np.float64)
    cos = (a * b).sum(axis=1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return Fidelity(float(cos.min()), float(cos.mean()))


def remembered(path: Path, compute: Callable[[], Fidelity]) -> Fidelity:
    """The measurement kept at ``path``, else ``compute()``'s, kept there (atomically) when it can be."""
    try:
        return Fidelity(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        pass
    fidelity = compute()
    try:
        atomic_write(path, json.dumps(asdict(fidelity)))
    except OSError as exc:  # a read-only cache measures again next time
        logger.debug("could not keep the int8 fidelity at %s: %s", path, exc)
    return fidelity
