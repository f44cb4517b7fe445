"""ROC curves, AUC, pruning, ratios and WP points against brute-force computations."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from taucoffea.algorithms.intervals import ONE_SIGMA_CL, clopper_pearson
from taucoffea.algorithms.roc import (
    PRUNE_DECIMALS,
    RocCurve,
    auc,
    prune,
    roc_curve,
    roc_ratio,
    score_vs,
    wp_points,
    wp_points_from_masks,
)
from taucoffea.errors import InputError


def _rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.Philox(key=seed))


def _tied_sample(seed: int, n: int = 600):
    """Signal shifted up, scores rounded to 1 decimal (many mixed-class ties), weights."""
    rng = _rng(seed)
    y = rng.random(n) < 0.45
    s = np.round(np.clip(rng.normal(0.4 + 0.25 * y, 0.2), 0, 1), 1)
    w = rng.uniform(0.2, 3.0, n)
    return y, s, w


def _brute_force(y, s, w):
    """Every candidate cut ``s >= t`` for t in {+inf} ∪ distinct scores, descending."""
    cuts = np.r_[np.inf, np.unique(s)[::-1]]
    tpr = np.array([w[y & (s >= t)].sum() for t in cuts]) / w[y].sum()
    fpr = np.array([w[~y & (s >= t)].sum() for t in cuts]) / w[~y].sum()
    return cuts, fpr, tpr


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_full_curve_equals_brute_force(seed):
    y, s, w = _tied_sample(seed)
    roc = roc_curve(y, s, w, drop_intermediate=False)
    cuts, fpr, tpr = _brute_force(y, s, w)
    np.testing.assert_array_equal(roc.thresholds, cuts)
    np.testing.assert_allclose(roc.fpr, fpr, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(roc.tpr, tpr, rtol=1e-12, atol=1e-14)
    # one step per distinct score: ties never split
    assert len(roc) == np.unique(s).size + 1
    assert roc.thresholds[0] == np.inf and (roc.fpr[0], roc.tpr[0]) == (0.0, 0.0)
    assert (roc.fpr[-1], roc.tpr[-1]) == (1.0, 1.0)


def test_unweighted_equals_unit_weights():
    y, s, _ = _tied_sample(4)
    a = roc_curve(y, s)
    b = roc_curve(y, s, np.ones(s.size))
    np.testing.assert_array_equal(a.fpr, b.fpr)
    np.testing.assert_array_equal(a.tpr, b.tpr)


def _mann_whitney(y, s, w):
    ws, ss = w[y], s[y]
    wb, sb = w[~y], s[~y]
    gt = (ss[:, None] > sb[None, :]).astype(float)
    eq = (ss[:, None] == sb[None, :]).astype(float)
    pair_w = ws[:, None] * wb[None, :]
    return float(((gt + 0.5 * eq) * pair_w).sum() / pair_w.sum())


@pytest.mark.parametrize("seed", [5, 6])
@pytest.mark.parametrize("drop", [False, True])
def test_auc_is_weighted_mann_whitney(seed, drop):
    y, s, w = _tied_sample(seed)
    roc = roc_curve(y, s, w, drop_intermediate=drop)
    assert auc(roc) == pytest.approx(_mann_whitney(y, s, w), rel=1e-12)


def test_auc_simple_hand_case():
    # sig scores {0.9, 0.5}, bkg {0.5, 0.1}: pairs > : (0.9,0.5),(0.9,0.1),(0.5,0.1) = 3,
    # tie (0.5,0.5) = 1/2 -> AUC = 3.5 / 4
    roc = roc_curve([1, 1, 0, 0], [0.9, 0.5, 0.5, 0.1])
    assert auc(roc) == pytest.approx(3.5 / 4)
    # the tie group is one diagonal step from (0, 0.5) to (0.5, 1)
    np.testing.assert_allclose(roc.fpr, [0, 0, 0.5, 1])
    np.testing.assert_allclose(roc.tpr, [0, 0.5, 1, 1])


def test_drop_intermediate_keeps_the_polygon():
    rng = _rng(7)
    n = 400
    y = rng.random(n) < 0.5
    s = rng.normal(y * 1.0, 1.0)  # distinct scores: axis-parallel runs everywhere
    w = rng.uniform(0.5, 2.0, n)
    full = roc_curve(y, s, w, drop_intermediate=False)
    thin = roc_curve(y, s, w, drop_intermediate=True)
    assert len(thin) < len(full)
    assert set(thin.thresholds.tolist()) <= set(full.thresholds.tolist())
    # every dropped point lies on the segment between its kept neighbours: since the curve
    # is monotonic, interpolation of the thin curve in both directions reproduces it
    kept = np.isin(full.thresholds, thin.thresholds)
    for i in np.flatnonzero(~kept):
        lo = np.flatnonzero(kept[:i])[-1]
        hi = i + np.flatnonzero(kept[i:])[0]
        f = full.fpr[[lo, i, hi]]
        t = full.tpr[[lo, i, hi]]
        assert (f[0] == f[1] == f[2]) or (t[0] == t[1] == t[2])
    assert auc(thin) == pytest.approx(auc(full), rel=1e-12)


def test_errors_are_clopper_pearson_for_unit_weights():
    y, s, _ = _tied_sample(8, n=200)
    roc = roc_curve(y, s, with_errors=True, drop_intermediate=False)
    n_sig, n_bkg = y.sum(), (~y).sum()
    k = np.round(roc.tpr * n_sig)
    lo, hi = clopper_pearson(k, n_sig)
    np.testing.assert_allclose(roc.tpr_err[0], roc.tpr - lo, atol=1e-9)
    np.testing.assert_allclose(roc.tpr_err[1], hi - roc.tpr, atol=1e-9)
    k = np.round(roc.fpr * n_bkg)
    lo, hi = clopper_pearson(k, n_bkg)
    np.testing.assert_allclose(roc.fpr_err[0], roc.fpr - lo, atol=1e-9)
    assert np.all(roc.fpr_err >= 0) and np.all(roc.tpr_err >= 0)


def test_roc_rejects_bad_input():
    with pytest.raises(InputError, match="both classes"):
        roc_curve([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(InputError, match="NaN"):
        roc_curve([1, 0], [np.nan, 0.2])
    with pytest.raises(InputError, match="0/1"):
        roc_curve([2, 0], [0.1, 0.2])
    with pytest.raises(InputError, match="weight"):
        roc_curve([1, 0], [0.1, 0.2], [1.0])


# ----------------------------------------------------------------------------- pruning


def test_prune_keeps_first_point_of_each_rounded_tpr():
    tpr = np.array([0.0, 0.1001, 0.1004, 0.1006, 0.2, 0.2004, 0.9996, 1.0])
    fpr = np.array([0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.9, 1.0])
    thr = np.array([np.inf, 8, 7, 6, 5, 4, 3, 2], dtype=float)
    err = np.vstack([fpr * 0.1, fpr * 0.2])
    roc = RocCurve(fpr, tpr, thr, fpr_err=err)
    p = prune(roc, 3)
    # rounded: 0, .100, .100, .101, .2, .2, 1.0, 1.0 -> first of each group
    idx = [0, 1, 3, 4, 6]
    np.testing.assert_array_equal(p.tpr, tpr[idx])  # raw TPR values, not rounded
    np.testing.assert_array_equal(p.fpr, fpr[idx])
    np.testing.assert_array_equal(p.thresholds, thr[idx])
    np.testing.assert_array_equal(p.fpr_err, err[:, idx])
    assert p.tpr_err is None
    # the last (1, 1) point goes: 0.9996 already rounds to 1.000
    assert p.tpr[-1] == 0.9996
    # four decimals keep more
    assert len(prune(roc, 4)) == len(roc)


def test_prune_on_real_curve_is_ordered_subset():
    y, s, w = _tied_sample(9, n=2000)
    s = s + _rng(10).normal(0, 0.01, s.size)  # break ties: many points
    roc = roc_curve(y, s, w)
    for vs, dec in PRUNE_DECIMALS.items():
        p = prune(roc, dec)
        rounded = np.round(p.tpr, dec)
        assert np.unique(rounded).size == len(p), vs
        assert np.all(np.diff(p.thresholds) < 0)  # original order kept
        # each kept point has the lowest FPR among the points sharing its rounded TPR
        for r, f in zip(rounded, p.fpr, strict=True):
            assert f == roc.fpr[np.round(roc.tpr, dec) == r].min()
    assert PRUNE_DECIMALS == {"e": 3, "mu": 4, "jet": 3}


# ----------------------------------------------------------------------------- ratio


def test_ratio_of_scaled_curve():
    tpr = np.linspace(0, 1, 11)
    fpr_ref = tpr**2
    ref = RocCurve(fpr_ref, tpr)
    probe = RocCurve(0.5 * fpr_ref, tpr)
    x, r = roc_ratio(probe, ref)
    np.testing.assert_allclose(x, tpr[1:])  # reference FPR = 0 at TPR = 0 is dropped
    np.testing.assert_allclose(r, 0.5)
    x, r = roc_ratio(ref, ref)
    np.testing.assert_allclose(r, 1.0)


def test_ratio_interpolates_probe_on_reference_points_in_common_range():
    ref = RocCurve([0.1, 0.2, 0.4, 0.8], [0.2, 0.4, 0.6, 0.9])
    probe = RocCurve([0.0, 0.1, 0.3], [0.0, 0.5, 0.7])  # covers TPR ≤ 0.7 only
    x, r = roc_ratio(probe, ref)
    np.testing.assert_allclose(x, [0.2, 0.4, 0.6])
    expected_probe = np.interp([0.2, 0.4, 0.6], [0.0, 0.5, 0.7], [0.0, 0.1, 0.3])
    np.testing.assert_allclose(r, expected_probe / np.array([0.1, 0.2, 0.4]))
    xu, ru = roc_ratio(probe, ref, grid="union")
    np.testing.assert_allclose(xu, [0.2, 0.4, 0.5, 0.6, 0.7])  # common range [0.2, 0.7]


# ----------------------------------------------------------------------------- score_vs


def test_score_vs_values_and_safe_zero():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = score_vs([0.6, 0.0, 0.0, 0.2], [0.2, 0.0, 0.5, 0.0])
    np.testing.assert_allclose(s, [0.75, 0.0, 0.0, 1.0])


# ----------------------------------------------------------------------------- WP points


def test_wp_points_rates_and_intervals():
    rng = _rng(11)
    n = 3000
    y = rng.random(n) < 0.5
    s = np.where(y, rng.beta(5, 2, n), rng.beta(2, 5, n))
    thrs = {"Loose": 0.3, "Medium": 0.5, "Tight": 0.7}
    curve, names = wp_points(y, s, thrs)
    assert names == ["Tight", "Medium", "Loose"]  # tightest first = increasing TPR
    assert np.all(np.diff(curve.tpr) > 0) and np.all(np.diff(curve.fpr) > 0)
    np.testing.assert_array_equal(curve.thresholds, [0.7, 0.5, 0.3])
    for i, name in enumerate(names):
        k_sig = np.count_nonzero(y & (s > thrs[name]))
        assert curve.tpr[i] == k_sig / y.sum()
        half = ONE_SIGMA_CL / 2
        lo = stats.beta.ppf(0.5 - half, k_sig, y.sum() - k_sig + 1)
        hi = stats.beta.ppf(0.5 + half, k_sig + 1, y.sum() - k_sig)
        assert curve.tpr_err[0, i] == pytest.approx(curve.tpr[i] - lo, rel=1e-9)
        assert curve.tpr_err[1, i] == pytest.approx(hi - curve.tpr[i], rel=1e-9)


def test_wp_points_strict_cut_and_masks():
    y = np.array([1, 1, 0, 0], bool)
    s = np.array([0.5, 0.6, 0.5, 0.4])
    curve, _ = wp_points(y, s, {"A": 0.5})
    assert curve.tpr[0] == 0.5 and curve.fpr[0] == 0.0  # score == thr fails
    bits = np.array([0b11, 0b01, 0b10, 0b00])
    masks = {"VLoose": (bits & 1) != 0, "Loose": (bits & 2) != 0}
    curve, names = wp_points_from_masks(y, masks)
    assert curve.thresholds is None
    assert dict(zip(names, curve.tpr, strict=True)) == {"VLoose": 1.0, "Loose": 0.5}
