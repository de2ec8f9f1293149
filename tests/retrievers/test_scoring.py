"""retrievers.scoring: MaxSim against colpali-engine's own scorer, mean vectors, RRF by hand."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from retrievers.scoring import maxsim, maxsim_batch, mean_vector, rrf


def _unit_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def colpali_scorer():
    torch = pytest.importorskip("torch")
    utils = pytest.importorskip("colpali_engine.utils.processing_utils")
    return torch, utils.BaseVisualRetrieverProcessor.score_multi_vector


def test_maxsim_batch_equals_colpali_engine_scorer(colpali_scorer):
    torch, score_multi_vector = colpali_scorer
    rng = np.random.default_rng(0)
    queries = [_unit_rows(rng, n, 32) for n in (3, 7, 12)]
    docs = [_unit_rows(rng, n, 32) for n in (5, 40, 17, 1, 23)]
    ours = np.stack([maxsim_batch(q, docs) for q in queries])
    # colpali-engine zero-pads a batch; one document per call keeps its padding out of the max
    theirs = np.concatenate(
        [
            score_multi_vector([torch.from_numpy(q) for q in queries], [torch.from_numpy(d)], device="cpu").numpy()
            for d in docs
        ],
        axis=1,
    )
    assert ours.shape == (3, 5)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    # maxsim (one pair) agrees with the batch version
    for qi, q in enumerate(queries):
        for di, d in enumerate(docs):
            assert maxsim(q, d) == pytest.approx(float(ours[qi, di]), abs=1e-5)


def test_maxsim_batch_matches_padded_scorer_on_long_docs(colpali_scorer):
    """With many tokens per document (real pages), padding never wins the max: one batched call agrees."""
    torch, score_multi_vector = colpali_scorer
    rng = np.random.default_rng(1)
    queries = [_unit_rows(rng, n, 128) for n in (4, 20)]
    docs = [_unit_rows(rng, n, 128) for n in (60, 90, 75)]
    qs, ps = [torch.from_numpy(q) for q in queries], [torch.from_numpy(d) for d in docs]
    theirs = score_multi_vector(qs, ps, device="cpu")
    ours = np.stack([maxsim_batch(q, docs) for q in queries])
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-5, atol=1e-5)


def test_maxsim_is_exact_when_every_similarity_is_negative():
    q = np.array([[1.0, 0.0]], dtype=np.float32)
    d = np.array([[-1.0, 0.0], [-0.6, -0.8]], dtype=np.float32)
    # a zero-padded scorer would return 0 here; the best token really scores -0.6
    assert maxsim(q, d) == pytest.approx(-0.6)
    assert maxsim_batch(q, [d, np.array([[0.0, 1.0]], dtype=np.float32)]).tolist() == pytest.approx([-0.6, 0.0])


def test_maxsim_hand_example_and_ranking():
    q = np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float32)
    good = np.array([[0.9, 0.1, 0], [0.1, 0.8, 0], [0, 0, 1]], dtype=np.float32)
    bad = np.array([[0, 0, 1]], dtype=np.float32)
    assert maxsim(q, good) == pytest.approx(0.9 + 0.8)
    scores = maxsim_batch(q, [bad, good])
    assert scores.dtype == np.float32
    assert scores.tolist() == pytest.approx([0.0, 1.7])


def test_maxsim_rejects_mismatched_and_empty_inputs():
    q = np.ones((2, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="dim"):
        maxsim(q, np.ones((3, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="dim"):
        maxsim_batch(q, [np.ones((3, 4)), np.ones((3, 5))])
    with pytest.raises(ValueError, match="2-D"):
        maxsim(np.ones(4), np.ones((3, 4)))
    with pytest.raises(ValueError, match="no vectors"):
        maxsim_batch(q, [np.ones((3, 4)), np.zeros((0, 4))])
    assert maxsim_batch(q, []).shape == (0,)
    assert maxsim(np.zeros((0, 4)), np.ones((3, 4))) == 0.0


def test_mean_vector_is_the_normalised_mean():
    rng = np.random.default_rng(2)
    m = _unit_rows(rng, 30, 16)
    v = mean_vector(m)
    assert v.shape == (16,) and v.dtype == np.float32
    assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-6)
    expected = m.mean(axis=0) / np.linalg.norm(m.mean(axis=0))
    np.testing.assert_allclose(v, expected, atol=1e-6)
    # cancelling rows give a zero vector, not NaN
    cancel = np.array([[1.0, 0.0], [-1.0, 0.0]], dtype=np.float32)
    assert mean_vector(cancel).tolist() == [0.0, 0.0]
    assert mean_vector(np.zeros((0, 3))).tolist() == [0.0, 0.0, 0.0]


def test_rrf_matches_hand_computation():
    fused = rrf([["a", "b", "c"], ["b", "c", "d"]], k=60)
    expected = {
        "a": 1 / 61,
        "b": 1 / 62 + 1 / 61,
        "c": 1 / 63 + 1 / 62,
        "d": 1 / 63,
    }
    assert [item for item, _ in fused] == ["b", "c", "a", "d"]
    for item, score in fused:
        assert score == pytest.approx(expected[item])


def test_rrf_weights_k_duplicates_and_ties():
    # weight 3 on the second list lifts its top item above the first list's
    fused = dict(rrf([["x", "y"], ["y", "x"]], k=0, weights=[1.0, 3.0]))
    assert fused["x"] == pytest.approx(1 / 1 + 3 / 2)
    assert fused["y"] == pytest.approx(1 / 2 + 3 / 1)
    # a repeat within one list counts once, at its best rank
    assert dict(rrf([["a", "a", "b"]], k=1)) == pytest.approx({"a": 1 / 2, "b": 1 / 4})
    # equal scores keep first-seen order
    assert [i for i, _ in rrf([["p"], ["q"]])] == ["p", "q"]
    assert rrf([]) == []
    with pytest.raises(ValueError, match="weights"):
        rrf([["a"], ["b"]], weights=[1.0])
    with pytest.raises(ValueError, match="k"):
        rrf([["a"]], k=-1)


def test_scoring_does_not_import_torch():
    code = "import sys, retrievers.scoring; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


def test_public_api_is_pinned():
    import retrievers.scoring as mod

    assert sorted(mod.__all__) == ["maxsim", "maxsim_batch", "mean_vector", "rrf"]
