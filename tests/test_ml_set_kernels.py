"""The compiled object-set kernels against their numpy definitions, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from taucoffea.ml.features import apply_scaling
from taucoffea.ml.set_kernels import rank_slots, scatter_scaled


def _rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.Philox(key=seed))


def _reference_slots(tau: np.ndarray, pt: np.ndarray, k: int) -> np.ndarray:
    """The numpy definition: lexsort by (tau, −pT), rank within the tau, first K kept."""
    order = np.lexsort((-pt, tau))
    tau_s = tau[order]
    rank = np.arange(tau_s.size) - np.searchsorted(tau_s, tau_s, side="left")
    slots = np.full(tau.size, -1, np.int64)
    keep = rank < k
    slots[order[keep]] = tau_s[keep] * k + rank[keep]
    return slots


@pytest.mark.parametrize("seed", range(6))
def test_rank_slots_is_the_lexsort_order(seed: int) -> None:
    rng = _rng(seed)
    n_tau, k = 300, [1, 4, 16][seed % 3]
    # objects of two types concatenated, each grouped by tau (as the object tables come)
    parts = [np.sort(rng.integers(0, n_tau, size)) for size in rng.integers(200, 3000, 2)]
    tau = np.concatenate(parts).astype(np.int64)
    pt = np.round(rng.exponential(5.0, tau.size), 1)  # rounded: many ties
    pt[rng.random(tau.size) < 0.02] = np.nan
    pt[rng.random(tau.size) < 0.01] = np.inf
    pt[rng.random(tau.size) < 0.01] = -0.0
    pt[rng.random(tau.size) < 0.01] = 0.0
    np.testing.assert_array_equal(rank_slots(tau, pt, n_tau, k), _reference_slots(tau, pt, k))
    assert rank_slots(np.zeros(0, np.int64), np.zeros(0), n_tau, k).size == 0


def test_scatter_scaled_equals_apply_scaling() -> None:
    rng = _rng(11)
    n, width, n_slots, offset = 2000, 9, 5000, 3
    raw = rng.normal(0, 20, (n, width))
    raw[rng.random((n, width)) < 0.05] = np.nan
    raw[rng.random((n, width)) < 0.01] = np.inf
    raw[rng.random((n, width)) < 0.01] = -np.inf
    p_in = np.array([rng.normal(size=width), rng.uniform(0.5, 3, width), np.full(width, -5.0), np.full(width, 5.0)])
    p_out = p_in.copy()
    p_out[0] += 1.0
    p_out[2, :3], p_out[3, :3] = -np.inf, np.inf  # unbounded features: ±inf results must become 0
    p_out[3, 4] = 1.0
    inner = rng.random(n) < 0.4
    slots = rng.permutation(n_slots)[:n].astype(np.int64)
    slots[rng.random(n) < 0.2] = -1  # objects beyond K: not written
    flat = np.zeros((n_slots, offset + width + 2), np.float32)
    scatter_scaled(flat, slots, raw, inner, p_in, p_out, offset)

    expected = np.zeros_like(flat)
    for cone, params in ((inner, p_in), (~inner, p_out)):
        sel = cone & (slots >= 0)
        expected[slots[sel], offset : offset + width] = apply_scaling(raw[sel], params)
    assert flat.tobytes() == expected.tobytes()
