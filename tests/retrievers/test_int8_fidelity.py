"""An int8 text encoder that does not read like its float model says so, once per model.

all-mpnet-base-v2's int8 copy gives cosines of 0.78-0.92 to its float vectors; a user who names
such a folder in ``[models] text`` is told to set ``text_precision = "fp32"`` instead of getting
other vectors than the model's without a word."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from retrievers.embedders import _int8_fidelity
from retrievers.embedders.onnx_text import OnnxTextEncoder, plain_pipeline
from retrievers.embedders.text import resolve_source

from tests.retrievers.test_embedders_onnx_bundled import L3, needs_l3


@pytest.fixture()
def encoder(tmp_path):
    return OnnxTextEncoder(plain_pipeline(resolve_source(L3)), cache=tmp_path, precision="int8")


@needs_l3
def test_the_bundled_models_int8_copy_reads_like_its_float_model_and_says_nothing(encoder, caplog):
    with caplog.at_level(logging.WARNING):
        encoder.load()
    kept = json.loads((encoder.cache_dir / "model.int8.fidelity.json").read_text())
    assert _int8_fidelity.FLOOR <= kept["min_cosine"] <= kept["mean_cosine"] <= 1.0 + 1e-6
    assert not [r for r in caplog.records if "int8" in r.getMessage()]


@needs_l3
def test_a_copy_below_the_floor_is_named_with_the_setting_that_avoids_it(encoder, caplog, monkeypatch):
    monkeypatch.setattr(_int8_fidelity, "FLOOR", 1.001)  # no int8 copy reaches it
    with caplog.at_level(logging.WARNING):
        encoder.load()
    (warning,) = [r for r in caplog.records if "int8" in r.getMessage()]
    assert str(encoder.pipeline.folder) in warning.getMessage()
    assert 'text_precision = "fp32"' in warning.getMessage()
    assert encoder.encode(["still encodes"]).shape == (1, 384)  # a warning, not a refusal


def test_the_measurement_is_kept_and_not_repeated(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return _int8_fidelity.Fidelity(0.5, 0.6)

    path = tmp_path / "fidelity.json"
    first = _int8_fidelity.remembered(path, compute)
    second = _int8_fidelity.remembered(path, compute)
    assert first == second == _int8_fidelity.Fidelity(0.5, 0.6) and not first.ok
    assert len(calls) == 1


def test_cosines_are_taken_probe_by_probe():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(len(_int8_fidelity.PROBES), 8))
    b = a.copy()
    b[2] = -b[2]  # one probe turned around
    fid = _int8_fidelity.measure(lambda texts: a[: len(texts)], lambda texts: b[: len(texts)])
    assert fid.min_cosine == pytest.approx(-1.0) and fid.mean_cosine < 1.0
