"""A torch-free encoder for plain sentence-transformers folders, through onnxruntime.

Importing torch and sentence-transformers costs seconds before the first question can
be answered. A folder whose pipeline is ``Transformer -> mean Pooling [-> Normalize]``
without prompts (all-MiniLM-L6-v2 among them) is exported once to ONNX with torch, into
a cache folder keyed by the folder's fingerprint; afterwards texts are encoded with
``tokenizers`` + ``onnxruntime`` alone. With ``precision="fp32"`` the vectors equal
sentence-transformers' own to about 1e-7 (tested), so a knowledge base does not care which
path embedded it.

``precision="int8"`` encodes with a copy whose MatMul weights are quantised to int8
(onnxruntime dynamic quantisation, per output channel, 7-bit range so the integer arithmetic
is exact on CPUs with and without VNNI), made once from the float export next to it. It
takes about half the CPU time of the float model (a quarter of the float model in batches
of 16). Its vectors are close to the float ones but not equal (cosine ~0.99 on document
chunks, >= 0.97 at worst; retrieval on the evaluation set is unchanged either way round),
so the embedder records the precision in its provenance. Each text is encoded alone: the
activations' scale is computed per call, and a batch would make a text's vector depend on
the others in it.

A folder that ships its float graph as ``onnx/model.onnx`` (the bundled paraphrase-MiniLM-L3-v2
of the ``fast`` profile, :mod:`retrievers.embedders._onnx_bundled`) is run from that file: no
export, no torch; its int8 copy and optimised graphs go to the cache like an export's.

The cache folder is ``$MMRAG_CACHE`` or ``~/.cache/mmrag``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.atomic import replace_durably
from rag.vectors import l2_normalize
from retrievers.embedders import _int8_fidelity
from retrievers.embedders._provenance import folder_fingerprint

__all__ = ["OnnxTextEncoder", "PRECISIONS", "SHIPPED_ONNX", "cache_root", "plain_pipeline"]

logger = logging.getLogger(__name__)

_TRANSFORMER = "sentence_transformers.models.Transformer"
_POOLING = "sentence_transformers.models.Pooling"
_NORMALIZE = "sentence_transformers.models.Normalize"
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
#: Weight precisions of the ONNX encoder: the float export, or its dynamic int8 quantisation.
PRECISIONS = ("fp32", "int8")
#: A folder that ships its own float ONNX graph (inputs as :data:`_INPUTS`, ``token_type_ids``
#: optional; first output the token states) keeps it here: it is run as it is, never exported.
SHIPPED_ONNX = Path("onnx") / "model.onnx"


def cache_root() -> Path:
    env = os.environ.get("MMRAG_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mmrag"


@dataclass(frozen=True)
class PlainPipeline:
    """What a plain sentence-transformers folder needs for encoding."""

    folder: Path
    dimension: int
    max_seq_length: int
    normalize: bool


def _read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def plain_pipeline(folder: str | Path) -> PlainPipeline | None:
    """The folder's pipeline when it is Transformer -> mean pooling [-> Normalize] without prompts."""
    root = Path(folder)
    try:
        modules = _read(root / "modules.json")
        types = [m["type"] for m in modules]
        if types[:2] != [_TRANSFORMER, _POOLING] or any(t != _NORMALIZE for t in types[2:]):
            return None
        if modules[0].get("path", "") != "" or not (root / "tokenizer.json").is_file():
            return None
        pooling = _read(root / modules[1]["path"] / "config.json")
        modes = [k for k, v in pooling.items() if k.startswith("pooling_mode") and v]
        if modes != ["pooling_mode_mean_tokens"]:
            return None
        st_config = root / "config_sentence_transformers.json"
        if st_config.is_file() and _read(st_config).get("prompts"):
            return None
        bert = root / "sentence_bert_config.json"
        max_len = int(_read(bert).get("max_seq_length", 256)) if bert.is_file() else 256
        return PlainPipeline(root, int(pooling["word_embedding_dimension"]), max_len, _NORMALIZE in types)
    except (OSError, KeyError, ValueError, TypeError, IndexError):
        return None


class _DropMessages(logging.Filter):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


class OnnxTextEncoder:
    """Encode texts with an ONNX export of a plain sentence-transformers folder.

    ``threads`` is onnxruntime's intra-op thread count: 1 by default, because an ingest
    embeds in one thread while another extracts the next pages (and MiniLM gains little
    from a second thread on a busy machine); ``None`` lets onnxruntime choose.
    """

    def __init__(
        self,
        pipeline: PlainPipeline,
        cache: Path | None = None,
        batch_size: int = 32,
        precision: str = "fp32",
        threads: int | None = 1,
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.pipeline = pipeline
        fingerprint = folder_fingerprint(pipeline.folder) or "unknown"
        #: the int8 copy and the optimised graphs live here
        self.cache_dir = (cache or cache_root()) / "onnx" / fingerprint
        shipped = pipeline.folder / SHIPPED_ONNX
        #: the float model: the folder's own ONNX file when it ships one, else the export
        self.path = shipped if shipped.is_file() else self.cache_dir / "model.onnx"
        self.precision = precision
        self.threads = threads
        self.batch_size = batch_size
        self._session: Any = None
        self._tokenizer: Any = None
        self._inputs: tuple[str, ...] = _INPUTS
        self._lock = threading.Lock()

    @property
    def exported(self) -> bool:
        """The float export exists (the int8 copy is derived from it without torch)."""
        return self.path.is_file()

    @property
    def model_path(self) -> Path:
        """The file the session runs: the float export or its int8 copy."""
        return self.path if self.precision == "fp32" else self.cache_dir / "model.int8.onnx"

    def quantize(self) -> None:
        """Write the int8 copy of the float export (atomic; needs ``onnx``, not torch)."""
        from onnxruntime.quantization import QuantType, quantize_dynamic

        started = time.perf_counter()
        target = self.model_path
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=target.parent)
        os.close(fd)
        quiet = _DropMessages("pre-processing before quantization")
        logging.getLogger().addFilter(quiet)  # onnxruntime's advice, logged on the root logger
        try:
            quantize_dynamic(str(self.path), tmp, weight_type=QuantType.QInt8, per_channel=True, reduce_range=True)
            replace_durably(tmp, target)
        finally:
            logging.getLogger().removeFilter(quiet)
            Path(tmp).unlink(missing_ok=True)
        logger.info("quantised %s to int8 at %s in %.1f s", self.path, target, time.perf_counter() - started)

    def export(self, transformer: Any) -> None:
        """Write the ONNX file from a loaded Hugging Face model (atomic; torch needed here only)."""
        import torch

        class _Wrapped(torch.nn.Module):
            def __init__(self, model: Any) -> None:
                super().__init__()
                self.model = model

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
                return self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state

        started = time.perf_counter()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        example = tuple(torch.ones((1, 8), dtype=torch.long) for _ in _INPUTS)
        axes = {name: {0: "batch", 1: "tokens"} for name in (*_INPUTS, "last_hidden_state")}
        fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=self.path.parent)
        os.close(fd)
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tracer chatter about shape-dependent branches
                torch.onnx.export(
                    _Wrapped(transformer.eval()), example, tmp, input_names=list(_INPUTS),
                    output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17, dynamo=False,
                )
            replace_durably(tmp, self.path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        logger.info("exported %s to ONNX at %s in %.1f s", self.pipeline.folder, self.path, time.perf_counter() - started)

    @property
    def ready(self) -> bool:
        return self._session is not None

    def load(self) -> None:
        """Open the exported model (idempotent, thread-safe)."""
        with self._lock:
            self._load_unlocked()

    def _load_unlocked(self) -> None:
        if self._session is not None:
            return
        import onnxruntime as ort
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.pipeline.folder / "tokenizer.json"))
        tokenizer.enable_truncation(self.pipeline.max_seq_length)
        tokenizer.enable_padding()
        if self.precision != "fp32" and not self.model_path.is_file():
            self.quantize()
        self._session = self._open_session(ort)
        self._inputs = tuple(i.name for i in self._session.get_inputs())  # a shipped graph may take no token types
        self._tokenizer = tokenizer
        if self.precision == "int8" and self.path.is_file():  # an int8 copy kept without its float model: nothing to compare
            self._check_int8(ort)

    def _check_int8(self, ort: Any) -> None:
        """Warn when the int8 copy does not read like the float model (:mod:`._int8_fidelity`)."""
        def compute() -> _int8_fidelity.Fidelity:
            options = ort.SessionOptions()
            options.log_severity_level = 3
            options.intra_op_num_threads = 1
            float_session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
            return _int8_fidelity.measure(
                lambda texts: self._run(float_session, texts, 1), lambda texts: self._run(self._session, texts, 1)
            )

        fidelity = _int8_fidelity.remembered(self.cache_dir / "model.int8.fidelity.json", compute)
        if not fidelity.ok:
            logger.warning(
                "%s: its int8 copy reads like the float model only at cosine %.2f (mean %.2f, at least %.2f wanted):"
                " set [models] text_precision = \"fp32\" for this model",
                self.pipeline.folder, fidelity.min_cosine, fidelity.mean_cosine, _int8_fidelity.FLOOR,
            )

    def _open_session(self, ort: Any) -> Any:
        """The inference session. onnxruntime optimises the graph each time it opens a model
        (~100 ms of a cold ``mmrag ask``'s CPU): the optimised graph is kept beside the model
        (per onnxruntime version, rebuilt when the model is newer) and opened as it is. The
        extended level leaves out CPU-specific layouts, so the file suits any machine; its
        vectors are bit-identical to the default level's (checked on the shared evaluation set)."""
        model = self.model_path
        optimized = self.cache_dir / f"{model.stem}.opt-{ort.__version__}.onnx"
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if self.threads is not None:
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        try:
            ready = optimized.stat().st_mtime_ns >= model.stat().st_mtime_ns
        except OSError:
            ready = False
        if ready:
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            try:
                return ort.InferenceSession(str(optimized), options, providers=providers)
            except Exception as exc:  # onnxruntime's own errors: a damaged file is written again
                logger.warning("cannot open the optimised graph %s (%s): optimising %s again", optimized, exc, model)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        try:
            optimized.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=optimized.parent)
            os.close(fd)
        except OSError:  # a read-only cache: optimise in memory on each open
            return ort.InferenceSession(str(model), options, providers=providers)
        options.optimized_model_filepath = tmp
        try:
            session = ort.InferenceSession(str(model), options, providers=providers)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        try:
            replace_durably(tmp, optimized)
        except OSError as exc:  # the session is fine; the next open optimises again
            logger.debug("could not keep the optimised graph of %s: %s", model, exc)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return session

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """float32 ``(len(texts), dimension)``; mean pooling, normalised when the folder says so."""
        self.load()
        # int8 quantises activations with one scale per call: a text goes alone, so its vector
        # does not depend on its neighbours (and a query equals the same text as a document).
        # Alone is also faster here: no padding, and int8 gains nothing from batching on CPU.
        return self._run(self._session, texts, 1 if self.precision == "int8" else self.batch_size)

    def _run(self, session: Any, texts: Sequence[str], size: int) -> np.ndarray:
        out = np.zeros((len(texts), self.pipeline.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths pad less
        for start in range(0, len(order), size):
            idx = order[start : start + size]
            encoded = self._tokenizer.encode_batch([texts[i] for i in idx])
            feeds = {
                "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
            }
            hidden = session.run(None, {k: v for k, v in feeds.items() if k in self._inputs})[0]
            mask = feeds["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            if self.pipeline.normalize:
                pooled = l2_normalize(pooled)
            out[idx] = pooled
        return out
