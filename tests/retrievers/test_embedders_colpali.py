"""ColVisionEmbedder on tiny checkpoints of every ColPali-family architecture.

Each checkpoint is built from a config, saved with ``save_pretrained`` and loaded back
through ``registry.build(folder, "late_interaction")`` — the path a user's folder takes.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("colpali_engine")

from rag.errors import ConfigError, ModelError, UnknownModelError, UnreadableFileError  # noqa: E402
from retrievers import registry  # noqa: E402
from retrievers.scoring import maxsim_batch  # noqa: E402
from tiny.colvision import FAMILIES, build_checkpoint, page_images  # noqa: E402

ARCHITECTURE = {"colpali": "ColPali", "colqwen2": "ColQwen2", "colqwen2.5": "ColQwen2_5", "colidefics3": "ColIdefics3"}
SHORT = "the"
LONG = "how many solar panel output energy kwh in every month"


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("colvision")
    return {family: build_checkpoint(family, root / family.replace(".", "_")) for family in FAMILIES}


@pytest.fixture(scope="session")
def pages(tmp_path_factory):
    return page_images(tmp_path_factory.mktemp("pages"), n=3)


_EMBEDDERS: dict[tuple[str, int], object] = {}


def embedder(checkpoints, family: str, pool_factor: int = 3):
    key = (family, pool_factor)
    if key not in _EMBEDDERS:
        e = registry.build(str(checkpoints[family].folder), "late_interaction", pool_factor=pool_factor,
                           show_progress=False)
        e.load()
        _EMBEDDERS[key] = e
    return _EMBEDDERS[key]


def _direct(family: str, folder: Path):
    """The reference path, without mmrag: colpali-engine's classes straight from the folder."""
    import colpali_engine.models as m

    classes = {
        "colpali": (m.ColPali, m.ColPaliProcessor),
        "colqwen2": (m.ColQwen2, m.ColQwen2Processor),
        "colqwen2.5": (m.ColQwen2_5, m.ColQwen2_5_Processor),
        "colidefics3": (m.ColIdefics3, m.ColIdefics3Processor),
    }
    model_cls, proc_cls = classes[family]
    return model_cls.from_pretrained(str(folder), local_files_only=True).eval(), proc_cls.from_pretrained(str(folder))


def _unpadded(model, batch) -> list[np.ndarray]:
    import torch

    with torch.no_grad():
        out = model(**batch)
    return [o[mask.bool()].numpy() for o, mask in zip(out, batch["attention_mask"])]


params = pytest.mark.parametrize("family", FAMILIES)


@params
def test_saved_folder_is_recognised_by_its_architecture(checkpoints, family):
    folder = checkpoints[family].folder
    assert json.loads((folder / "config.json").read_text())["architectures"] == [ARCHITECTURE[family]]
    resolved = registry.resolve(str(folder), "late_interaction")
    assert resolved.family == family
    e = registry.build(str(folder), "late_interaction")
    assert not e.loaded  # constructing reads no weights


@params
def test_shapes_dimension_and_unit_rows(checkpoints, pages, family):
    e = embedder(checkpoints, family)
    assert e.dimension == 128
    docs = e.embed_images(pages)
    queries = e.embed_queries([SHORT, LONG])
    assert len(docs) == len(pages) and len(queries) == 2
    for arr in docs + queries:
        assert arr.dtype == np.float32 and arr.ndim == 2 and arr.shape[1] == 128 and arr.shape[0] >= 1
        np.testing.assert_allclose(np.linalg.norm(arr, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(docs[0][:1], docs[1][:1]), "different pages gave the same vectors"


@params
def test_padding_is_removed_from_queries_and_pages(checkpoints, pages, family):
    from PIL import Image

    e = embedder(checkpoints, family, pool_factor=1)
    proc = checkpoints[family].processor
    short, long = e.embed_queries([SHORT, LONG])  # one batch: the short query is padded inside it
    assert len(short) < len(long)
    assert len(short) == int(proc.process_queries([SHORT])["attention_mask"].sum())
    np.testing.assert_allclose(short, e.embed_queries([SHORT])[0], atol=1e-5)  # batch-mates do not leak in
    page_tokens = int(proc.process_images([Image.open(pages[0])])["attention_mask"].sum())
    assert len(e.embed_images(pages[:1])[0]) == page_tokens


@params
def test_pooling_divides_vector_count_by_pool_factor(checkpoints, pages, family):
    full = embedder(checkpoints, family, pool_factor=1).embed_images(pages)
    pooled = embedder(checkpoints, family, pool_factor=3).embed_images(pages)
    for f, p in zip(full, pooled):
        assert len(f) >= 6
        assert max(1, len(f) // 3) - 1 <= len(p) <= max(1, len(f) // 3)
        np.testing.assert_allclose(np.linalg.norm(p, axis=1), 1.0, atol=1e-5)
    # queries are never pooled
    q3 = embedder(checkpoints, family, pool_factor=3).embed_queries([LONG])[0]
    q1 = embedder(checkpoints, family, pool_factor=1).embed_queries([LONG])[0]
    assert q3.shape == q1.shape


@params
def test_maxsim_equals_colpali_engine_scorer_on_direct_model_outputs(checkpoints, pages, family):
    import torch
    from PIL import Image

    e = embedder(checkpoints, family, pool_factor=1)
    ours = np.stack([maxsim_batch(q, e.embed_images(pages)) for q in e.embed_queries([SHORT, LONG])])

    model, proc = _direct(family, checkpoints[family].folder)
    with torch.no_grad():
        ps = model(**proc.process_images([Image.open(p) for p in pages]))
        # one query per forward: no padding, so no model-specific masking question in the reference
        qs = [model(**proc.process_queries([q]))[0] for q in (SHORT, LONG)]
    theirs = proc.score_multi_vector(qs, list(ps), device="cpu").numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)


@params
def test_same_page_twice_is_identical(checkpoints, pages, family):
    e = embedder(checkpoints, family)
    a, b = e.embed_images([pages[1], pages[1]])
    (c,) = e.embed_images([pages[1]])
    assert np.array_equal(a, b)
    np.testing.assert_allclose(a, c, atol=1e-5)


@params
def test_mixed_page_sizes_in_one_batch_match_one_at_a_time(checkpoints, tmp_path, family):
    small = page_images(tmp_path / "small", n=1, size=(48, 64))[0]
    wide = page_images(tmp_path / "wide", n=2, size=(120, 90))[1]
    e = embedder(checkpoints, family, pool_factor=1)
    batch = e.embed_images([small, wide])  # a Qwen page of another size has another token count: padding
    alone = [e.embed_images([small])[0], e.embed_images([wide])[0]]
    for got, exp in zip(batch, alone):
        assert got.shape == exp.shape
        np.testing.assert_allclose(got, exp, atol=1e-5)


@params
def test_reload_from_folder_reproduces_in_memory_model(checkpoints, pages, family):
    from PIL import Image

    ckpt = checkpoints[family]
    e = embedder(checkpoints, family, pool_factor=1)
    expected_pages = _unpadded(ckpt.model, ckpt.processor.process_images([Image.open(p) for p in pages]))
    expected_query = _unpadded(ckpt.model, ckpt.processor.process_queries([LONG]))
    for got, exp in zip(e.embed_images(pages), expected_pages):
        np.testing.assert_allclose(got, exp, atol=1e-6)
    np.testing.assert_allclose(e.embed_queries([LONG])[0], expected_query[0], atol=1e-6)


@params
def test_provenance_names_family_pooling_versions_and_weights(checkpoints, family):
    e = embedder(checkpoints, family)
    prov = e.provenance()
    assert prov["family"] == family and prov["dimension"] == 128
    assert prov["pool_factor"] == 3 and prov["pooling"] == "hierarchical"
    assert prov["source"] == str(checkpoints[family].folder)
    assert prov["versions"]["colpali-engine"] != "missing"
    assert prov["weights_fingerprint"] == e.provenance()["weights_fingerprint"]
    assert embedder(checkpoints, family, pool_factor=1).provenance()["pooling"] == "none"


def test_fingerprints_differ_between_checkpoints(checkpoints):
    prints = {embedder(checkpoints, f).provenance()["weights_fingerprint"] for f in FAMILIES}
    assert len(prints) == len(FAMILIES)


def test_weights_fingerprint_for_hub_models_reads_loaded_tensors(checkpoints):
    """Hub ids have no folder to hash: the fingerprint comes from the loaded weights (ColPali's lm_head is meta)."""
    a = embedder(checkpoints, "colpali")._weights_fingerprint()
    b = embedder(checkpoints, "colpali", pool_factor=1)._weights_fingerprint()  # another load of the same folder
    c = embedder(checkpoints, "colqwen2")._weights_fingerprint()
    assert a == b and a != c


def test_load_is_idempotent(checkpoints):
    e = embedder(checkpoints, "colqwen2")
    model = e._model
    e.load()
    assert e._model is model


def test_bad_inputs_raise_typed_errors(checkpoints, tmp_path):
    folder = str(checkpoints["colqwen2"].folder)
    with pytest.raises(ConfigError, match="family"):
        registry.build(folder, "late_interaction").__class__(folder, family="colbert")
    with pytest.raises(ConfigError, match="pooling"):
        registry.build(folder, "late_interaction", pooling="kmeans")
    with pytest.raises(UnreadableFileError, match="missing.png"):
        embedder(checkpoints, "colqwen2").embed_images([tmp_path / "missing.png"])
    with pytest.raises(UnknownModelError):
        registry.build(str(tmp_path / "nowhere"), "late_interaction")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"architectures": ["ColQwen2"], "model_type": "qwen2_vl"}))
    e = registry.build(str(broken), "late_interaction")
    with pytest.raises(ModelError, match="broken"):
        e.load()


def test_module_import_does_not_import_torch():
    code = (
        "import sys, retrievers.embedders.colpali, retrievers.registry; "
        "assert 'torch' not in sys.modules and 'colpali_engine' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


def test_unreachable_hub_id_raises_model_error_naming_it():
    e = registry.build("colqwen2", "late_interaction")  # registered name -> vidore/colqwen2-v1.0-merged
    with pytest.raises(ModelError, match="vidore/colqwen2-v1.0-merged"):
        e.load()
    assert not e.loaded


def test_cpu_needs_no_accelerate_and_other_devices_name_it(checkpoints, pages):
    """The vision extra does not install accelerate: CPU loading must not need it."""
    code = f"""
import sys
sys.modules["accelerate"] = None  # as if not installed
from rag.errors import MissingDependencyError
from retrievers import registry
e = registry.build({str(checkpoints["colpali"].folder)!r}, "late_interaction", show_progress=False)
assert e.embed_images([{str(pages[0])!r}])[0].shape[1] == 128
try:
    registry.build({str(checkpoints["colpali"].folder)!r}, "late_interaction", device="cuda").load()
except MissingDependencyError as exc:
    assert "accelerate" in str(exc), exc
else:
    raise AssertionError("no MissingDependencyError")
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2], env=env)


def test_protocol_public_api_progress_bar_and_summary_log(checkpoints, pages, capsys, caplog):
    import retrievers.embedders.colpali as mod
    from retrievers.base import LateInteractionEmbedder

    assert set(mod.__all__) == {"ColFamily", "COL_FAMILIES", "POOLERS", "ColVisionEmbedder"}
    assert set(mod.COL_FAMILIES) == set(FAMILIES) == {f for f, s in registry.FAMILIES.items()
                                                      if s.loader.endswith(":ColVisionEmbedder")}
    e = registry.build(str(checkpoints["colqwen2"].folder), "late_interaction", show_progress=True)
    assert isinstance(e, LateInteractionEmbedder)
    with caplog.at_level("INFO", logger=mod.__name__):
        e.embed_images(pages[:2])
    assert "colqwen2 pages" in capsys.readouterr().err  # the tqdm bar
    assert any("embedded 2 pages" in r.getMessage() for r in caplog.records)
    quiet = registry.build(str(checkpoints["colqwen2"].folder), "late_interaction", show_progress=False)
    quiet.embed_queries([SHORT])
    assert "colqwen2 queries" not in capsys.readouterr().err


@pytest.mark.real_model
@pytest.mark.parametrize("family", FAMILIES)
def test_real_checkpoint_folder(family, pages):
    """Run with MMRAG_REAL_<FAMILY>=/path/to/checkpoint (e.g. MMRAG_REAL_COLIDEFICS3) and -m real_model."""
    folder = os.environ.get("MMRAG_REAL_" + family.upper().replace(".", "_"))
    if not folder:
        pytest.skip(f"set MMRAG_REAL_{family.upper().replace('.', '_')} to a {family} checkpoint folder")
    e = registry.build(folder, "late_interaction", show_progress=False)
    (page,) = e.embed_images(pages[:1])
    (query,) = e.embed_queries([LONG])
    assert page.shape[1] == query.shape[1] == e.dimension == 128
    np.testing.assert_allclose(np.linalg.norm(page, axis=1), 1.0, atol=1e-3)
