"""Clopper–Pearson intervals: closed forms, beta quantiles, coverage, weighted variant."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from taucoffea.algorithms.intervals import (
    ONE_SIGMA_CL,
    clopper_pearson,
    clopper_pearson_weighted,
    efficiency_interval,
)
from taucoffea.errors import ConfigError, InputError


def _rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.Philox(key=seed))


def test_edges_have_closed_forms():
    # k = 0: hi solves (1 - hi)^n = α/2 ; k = n: lo solves lo^n = α/2
    alpha = 1 - ONE_SIGMA_CL
    for n in (1, 5, 40):
        lo, hi = clopper_pearson(0, n)
        assert lo == 0.0
        assert hi == pytest.approx(1 - (alpha / 2) ** (1 / n), rel=1e-10)
        lo, hi = clopper_pearson(n, n)
        assert hi == 1.0
        assert lo == pytest.approx((alpha / 2) ** (1 / n), rel=1e-10)


def test_matches_direct_beta_quantiles_vectorised():
    k = np.array([1, 3, 7, 50, 99])
    n = np.array([10, 10, 20, 100, 100])
    cl = 0.9
    lo, hi = clopper_pearson(k, n, cl)
    np.testing.assert_allclose(lo, stats.beta.ppf(0.05, k, n - k + 1), rtol=1e-12)
    np.testing.assert_allclose(hi, stats.beta.ppf(0.95, k + 1, n - k), rtol=1e-12)
    # defining property: tail probabilities of the binomial equal α/2 at the edges
    np.testing.assert_allclose(stats.binom.sf(k - 1, n, lo), 0.05, rtol=1e-8)
    np.testing.assert_allclose(stats.binom.cdf(k, n, hi), 0.05, rtol=1e-8)
    assert lo.shape == k.shape and np.all(lo < k / n) and np.all(k / n < hi)


def test_broadcast_scalar_and_empty_total():
    lo, hi = clopper_pearson(np.array([0, 2, 4]), 4)
    assert lo.shape == (3,)
    assert np.ndim(clopper_pearson(2, 4)[0]) == 0
    assert clopper_pearson(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize("n", [8, 30, 150])
@pytest.mark.parametrize("p", [0.03, 0.3, 0.5, 0.92])
def test_coverage_by_simulation(n, p):
    """CP is conservative: coverage ≥ nominal for every (n, p)."""
    m = 20000
    k = _rng(1000 * n + int(1000 * p)).binomial(n, p, size=m)
    lo, hi = clopper_pearson(k, n)
    covered = np.mean((lo <= p) & (p <= hi))
    sigma = np.sqrt(ONE_SIGMA_CL * (1 - ONE_SIGMA_CL) / m)
    assert covered >= ONE_SIGMA_CL - 3 * sigma
    # and the simulation agrees with the exact coverage computed from the binomial pmf
    ks = np.arange(n + 1)
    lo_k, hi_k = clopper_pearson(ks, n)
    exact = stats.binom.pmf(ks, n, p)[(lo_k <= p) & (p <= hi_k)].sum()
    assert exact >= ONE_SIGMA_CL
    assert abs(covered - exact) < 4 * np.sqrt(exact * (1 - exact) / m)


def test_rejects_bad_arguments():
    with pytest.raises(InputError):
        clopper_pearson(5, 4)
    with pytest.raises(InputError):
        clopper_pearson(-1, 4)
    with pytest.raises(ConfigError):
        clopper_pearson(1, 4, cl=1.5)


def test_weighted_reduces_to_plain_for_unit_weights():
    k, n = 7, 25
    eff, lo, hi = clopper_pearson_weighted(k, n, n)
    assert eff == k / n
    assert (lo, hi) == pytest.approx(clopper_pearson(k, n), rel=1e-12)


def test_weighted_is_scale_invariant_and_uses_kish_counts():
    rng = _rng(3)
    w = rng.uniform(0.1, 2.0, 500)
    passed = rng.random(500) < 0.3
    e1 = efficiency_interval(passed, w)
    e2 = efficiency_interval(passed, w * 1e-6)  # luminosity-style normalisation
    assert e1 == pytest.approx(e2, rel=1e-9)
    n_eff = w.sum() ** 2 / (w**2).sum()
    eff = w[passed].sum() / w.sum()
    lo, hi = clopper_pearson(eff * n_eff, n_eff)
    assert e1 == pytest.approx((eff, lo, hi), rel=1e-12)
    # unequal weights: fewer effective events than rows, hence a wider interval
    assert n_eff < w.size
    lo_n, hi_n = clopper_pearson(eff * w.size, w.size)
    assert hi - lo > hi_n - lo_n


def test_efficiency_interval_unweighted_and_empty():
    eff, lo, hi = efficiency_interval(np.array([True, False, True, True]))
    assert eff == 0.75
    assert (lo, hi) == pytest.approx(clopper_pearson(3, 4))
    assert efficiency_interval(np.array([], bool)) == (0.0, 0.0, 1.0)
    assert efficiency_interval(np.array([], bool), np.array([])) == (0.0, 0.0, 1.0)
