"""Weighted SAS-5 quantiles and the iterative working-point derivation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from taucoffea.algorithms.quantiles import weighted_quantile
from taucoffea.algorithms.wp_maker import (
    DEFAULT_WP_DEFINITIONS,
    derive_working_points,
    lumi_weights,
)
from taucoffea.errors import ConfigError, InputError


def _rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.Philox(key=seed))


# ----------------------------------------------------------------------------- quantiles


def _sas5_expanded(sorted_values: np.ndarray, p: float) -> float:
    """Textbook SAS definition 5 on an (already expanded) sorted sample, 1-indexed."""
    n = sorted_values.size
    np_ = n * p
    j = int(np.floor(np_ + 1e-9))
    if abs(np_ - round(np_)) < 1e-9:  # integer position: average the neighbours
        j = int(round(np_))
        if j == 0:
            return float(sorted_values[0])
        if j >= n:
            return float(sorted_values[-1])
        return 0.5 * (sorted_values[j - 1] + sorted_values[j])
    return float(sorted_values[j])  # x_(j+1) in 1-indexed terms


def test_quantile_hand_cases():
    v = [4.0, 1.0, 3.0, 2.0]
    assert weighted_quantile(v, 0.5) == 2.5  # t = 2 on a boundary: (2 + 3) / 2
    assert weighted_quantile(v, 0.25) == 1.5
    assert weighted_quantile(v, 0.3) == 2.0
    assert weighted_quantile(v, 0.0) == 1.0 and weighted_quantile(v, 1.0) == 4.0
    # weight 3 on the value 1: cumulative (3, 4, 5, 6) of 6 -> p = 0.5 is inside the group
    # value 2 carries weight 3: cumulative (1, 4, 5, 6) of 6, t = 3 falls inside its group
    assert weighted_quantile(v, 0.5, [1, 1, 1, 3]) == 2.0
    assert weighted_quantile([1.0, 2.0, 3.0, 4.0], 0.5, [3, 1, 1, 1]) == 1.5


def _clear_of_boundaries(q: np.ndarray, total: int) -> np.ndarray:
    """Probabilities whose ``q·total`` is an exact float integer or far from any integer.

    numpy applies no tolerance, so at ``q = k/total`` it decides by the rounding of
    ``q·total`` (e.g. 186.99999999999997 instead of 187); the brute-force oracle and our
    implementation treat those as the boundary they mathematically are.
    """
    t = q * total
    return (t == np.round(t)) | (np.abs(t - np.round(t)) > 1e-6)


def test_unweighted_matches_numpy_averaged_inverted_cdf():
    rng = _rng(1)
    v = np.round(rng.normal(size=997), 1)  # ties
    q = np.r_[np.linspace(0, 1, 201), np.arange(998) / 997]  # includes exact boundaries
    ours = weighted_quantile(v, q)
    ok = _clear_of_boundaries(q, v.size)
    ref = np.quantile(v, q[ok], method="averaged_inverted_cdf")
    np.testing.assert_allclose(ours[ok], ref, rtol=0, atol=1e-12)
    brute = np.array([_sas5_expanded(np.sort(v), p) for p in q])
    np.testing.assert_allclose(ours, brute, rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_integer_weights_equal_brute_force_expansion(seed):
    rng = _rng(seed)
    v = np.round(rng.uniform(0, 1, 300), 2)  # ties between and within entries
    w = rng.integers(0, 6, 300)  # includes zero weights
    total = int(w.sum())
    q = np.unique(np.r_[np.linspace(0, 1, 101), np.arange(total + 1) / total])  # boundaries
    expanded = np.sort(np.repeat(v, w))
    ours = weighted_quantile(v, q, w)
    brute = np.array([_sas5_expanded(expanded, p) for p in q])
    np.testing.assert_allclose(ours, brute, rtol=0, atol=1e-12)
    ok = _clear_of_boundaries(q, total)
    assert ok.sum() > 50
    np.testing.assert_allclose(
        ours[ok],
        np.quantile(expanded, q[ok], method="averaged_inverted_cdf"),
        rtol=0,
        atol=1e-12,
    )


def test_quantile_scale_invariant_and_shapes():
    rng = _rng(5)
    v = rng.normal(size=100)
    w = rng.integers(1, 5, 100).astype(float)
    q = np.array([[0.1, 0.5], [0.7, 1.0]])
    a = weighted_quantile(v, q, w)
    assert a.shape == (2, 2)
    np.testing.assert_array_equal(a, weighted_quantile(v, q, w * 1.7e-6))
    assert weighted_quantile(v, 0.3, w).shape == ()


def test_quantile_rejects_bad_input():
    with pytest.raises(InputError):
        weighted_quantile([], 0.5)
    with pytest.raises(InputError):
        weighted_quantile([1.0, 2.0], 1.5)
    with pytest.raises(InputError):
        weighted_quantile([1.0, 2.0], 0.5, [1.0, -1.0])
    with pytest.raises(InputError):
        weighted_quantile([1.0, np.nan], 0.5)
    with pytest.raises(InputError):
        weighted_quantile([1.0, 2.0], 0.5, [0.0, 0.0])


# ----------------------------------------------------------------------------- WP maker


def _independent_table(seed: int, n: int) -> dict[str, np.ndarray]:
    """Scores independent uniforms, weight w = 2·s_jet (so s_jet has weighted CDF s²)."""
    rng = _rng(seed)
    t = {f"score_vs_{vs}": rng.random(n) for vs in ("e", "mu", "jet")}
    t["weight"] = 2.0 * t["score_vs_jet"]
    return t


def _achieved(score, weight, thr):
    return weight[score > thr].sum() / weight.sum()


@pytest.mark.parametrize("require", [False, True])
def test_thresholds_match_analytic_weighted_quantiles(require):
    n = 100_000
    table = _independent_table(11, n)
    res = derive_working_points(table, require_wp_vs_others=require)
    assert res.converged
    if not require:
        assert res.n_iterations == 2  # nothing couples the types
    s, w = table["score_vs_jet"], table["weight"]
    for wp, target in DEFAULT_WP_DEFINITIONS["jet"].items():
        thr = res.thresholds["jet"][wp]
        # weighted density 2t and P_w(s > t) = 1 - t^2  ->  t = sqrt(1 - eff)
        analytic = np.sqrt(1.0 - target)
        ind = (s > analytic).astype(float)
        sigma_eff = np.sqrt(np.sum(w**2 * (ind - target) ** 2)) / w.sum()
        sigma_thr = sigma_eff / (2 * analytic)
        if require:  # fewer taus after the other types' cuts (≈ 0.5 % + 0.05 %)
            sigma_thr *= 1.01
        assert abs(thr - analytic) < 5 * sigma_thr + 1e-4 / (2 * analytic), wp
    # uniform scores, unit weights vs e and mu: t = 1 - eff
    for vs in ("e", "mu"):
        for wp, target in DEFAULT_WP_DEFINITIONS[vs].items():
            sigma = np.sqrt(target * (1 - target) / n) * np.sqrt(4 / 3)  # Kish: E[w²]/E[w]²
            assert abs(res.thresholds[vs][wp] - (1 - target)) < 5 * sigma + 1e-4, (vs, wp)


def test_efficiencies_hit_targets_within_grid_step():
    table = _independent_table(12, 50_000)
    step = 1e-4
    res = derive_working_points(table, tpr_step=step, require_wp_vs_others=False)
    w = table["weight"]
    for vs, wps in DEFAULT_WP_DEFINITIONS.items():
        s = table[f"score_vs_{vs}"]
        for wp, target in wps.items():
            eff = _achieved(s, w, res.thresholds[vs][wp])
            assert eff == pytest.approx(res.efficiencies[vs][wp], abs=1e-15)
            # the grid point g ∈ [target, target + step); the strict cut at a data value
            # loses at most that value's weight below g
            assert target - w.max() / w.sum() - 1e-12 <= eff < target + step, (vs, wp)


def test_target_on_grid_is_hit_exactly():
    n = 10_000
    table = {f"score_vs_{vs}": np.arange(n) / n for vs in ("e", "mu", "jet")}
    defs = {vs: {"A": 0.9, "B": 0.7, "C": 0.9995} for vs in ("e", "mu", "jet")}
    res = derive_working_points(table, defs, require_wp_vs_others=False)
    # p = 0.1 -> cumulative count 1000 is a boundary: midpoint of 999/n and 1000/n
    assert res.thresholds["jet"]["A"] == pytest.approx(0.09995, abs=1e-15)
    assert res.thresholds["jet"]["B"] == pytest.approx(0.29995, abs=1e-15)
    assert res.thresholds["jet"]["C"] == pytest.approx(0.00045, abs=1e-15)
    for wp, target in defs["jet"].items():
        assert res.efficiencies["jet"][wp] == pytest.approx(target, abs=1e-12)
    # loosest first
    assert list(res.thresholds["jet"]) == ["C", "A", "B"]
    rounded = res.rounded(4)["jet"]
    assert list(rounded) == ["C", "A", "B"]
    for wp, value in rounded.items():
        assert abs(value - res.thresholds["jet"][wp]) <= 5e-5 + 1e-15
        assert value == round(value, 4)


def _correlated_table(seed: int, n: int) -> pd.DataFrame:
    rng = _rng(seed)
    z = rng.normal(size=n)
    return pd.DataFrame(
        {
            "score_vs_e": 1 / (1 + np.exp(-(z + 0.7 * rng.normal(size=n)))),
            "score_vs_jet": 1 / (1 + np.exp(-(z + 0.7 * rng.normal(size=n)))),
            "weight": rng.uniform(0.5, 1.5, n),
        }
    )


def test_requirement_vs_other_types_is_honoured():
    df = _correlated_table(21, 60_000)
    defs = {"e": {"Loose": 0.85, "Tight": 0.6}, "jet": {"Loose": 0.8, "Medium": 0.5}}
    req = {"e": "Loose", "jet": "Loose"}
    step = 1e-4
    res = derive_working_points(df, defs, wps_to_require=req, tpr_step=step)
    free = derive_working_points(df, defs, require_wp_vs_others=False, tpr_step=step)
    assert res.converged and res.n_iterations > 2
    assert all(len(h) == res.n_iterations for hs in res.history.values() for h in hs.values())
    w = df["weight"].to_numpy()
    scores = {vs: df[f"score_vs_{vs}"].to_numpy() for vs in defs}
    for vs, other in (("e", "jet"), ("jet", "e")):
        sel = scores[other] > res.thresholds[other][req[other]]
        for wp, target in defs[vs].items():
            thr = res.thresholds[vs][wp]
            eff_with = _achieved(scores[vs][sel], w[sel], thr)
            eff_without = _achieved(scores[vs], w, thr)
            assert eff_with == pytest.approx(res.efficiencies[vs][wp], abs=1e-12)
            tol_lo = w.max() / w[sel].sum() + 1e-5  # strict cut + convergence epsilon
            assert target - tol_lo <= eff_with < target + step + 1e-5, (vs, wp)
            # correlated scores: the requirement matters, ignoring it would be visibly off
            assert eff_without < target - 0.02, (vs, wp)
            assert thr > free.thresholds[vs][wp]
    # the last two iterations agree within epsilon
    for hs in res.history.values():
        for h in hs.values():
            assert abs(h[-1] - h[-2]) < 1e-5


def test_not_converged_is_reported():
    df = _correlated_table(22, 20_000)
    defs = {"e": {"Loose": 0.85}, "jet": {"Loose": 0.8}}
    req = {"e": "Loose", "jet": "Loose"}
    res = derive_working_points(df, defs, wps_to_require=req, n_iterations=2, epsilon=1e-12)
    assert not res.converged and res.n_iterations == 2
    log = res.log_dict()
    assert log["e"]["Loose"]["eff"] == 0.85 and len(log["e"]["Loose"]["thrs"]) == 2


def test_config_and_input_errors():
    table = _independent_table(13, 1000)
    with pytest.raises(InputError, match="score_vs_tau"):
        derive_working_points(table, {"tau": {"A": 0.5}})
    with pytest.raises(ConfigError, match="tpr_step"):
        derive_working_points(table, tpr_step=0.3)
    with pytest.raises(ConfigError, match="wps_to_require.e"):
        derive_working_points(table, wps_to_require={"e": "Nope", "mu": "VLoose", "jet": "Loose"})
    with pytest.raises(ConfigError, match="'mu'"):
        derive_working_points(table, wps_to_require={"e": "Loose", "jet": "Loose"})
    with pytest.raises(ConfigError, match="wp_definitions.jet.A"):
        derive_working_points(table, {"jet": {"A": 1.5}})


def test_missing_weight_column_means_unit_weights():
    table = _independent_table(14, 5000)
    unit = dict(table, weight=np.ones(5000))
    del table["weight"]
    a = derive_working_points(table, require_wp_vs_others=False)
    b = derive_working_points(unit, require_wp_vs_others=False)
    assert a.thresholds == b.thresholds


# ----------------------------------------------------------------------------- lumi weights


def test_lumi_weights_reproduce_original_era_weights():
    eras = {"2016APV": 19.52, "2016": 16.81, "2017": 41.48, "2018": 59.83}
    rng = _rng(15)
    labels = rng.choice(list(eras), size=5000, p=[0.1, 0.2, 0.3, 0.4])
    ref = sum(eras.values())
    w = lumi_weights(labels, {e: 1.0 for e in eras}, None, eras) / ref
    for era, lum in eras.items():
        sel = labels == era
        np.testing.assert_allclose(w[sel], lum / (ref * sel.sum()))
        assert w[sel].sum() == pytest.approx(lum / ref)
    # explicit σ·L/N
    w2 = lumi_weights(np.array(["a", "b", "a"]), {"a": 2.0, "b": 3.0}, {"a": 10, "b": 30}, 5.0)
    np.testing.assert_allclose(w2, [1.0, 0.5, 1.0])
    with pytest.raises(ConfigError, match="'c'"):
        lumi_weights(["a", "c"], {"a": 1.0}, None, 1.0)


def test_default_definitions_cover_the_physics_wp_names():
    from taucoffea.physics.working_points import WP_NAMES_VS

    assert DEFAULT_WP_DEFINITIONS.keys() == WP_NAMES_VS.keys()
    for vs, names in WP_NAMES_VS.items():
        assert set(DEFAULT_WP_DEFINITIONS[vs]) == set(names)
        # loosest first in physics = decreasing target efficiency here
        effs = [DEFAULT_WP_DEFINITIONS[vs][n] for n in names]
        assert effs == sorted(effs, reverse=True)
