"""Validation statistics: χ² (UU) and KS two-sample tests, the p-value tree, the closure report."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from taucoffea.algorithms.validation_stats import (
    chi2_test,
    chi2_vs_rest,
    closure_report,
    compare_chunks,
    failed_tests,
    ks_test,
    ks_vs_rest,
    merge_pvalues,
)
from taucoffea.errors import ConfigError


def _rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.Philox(key=seed))


# ------------------------------------------------------------------------------ χ² test


def test_chi2_hand_computed_and_edge_cases() -> None:
    # N1 = N2 = 10, all in opposite bins: χ² = (100² / 10 + 100² / 10) / 100 = 20, ndf 1
    r = chi2_test([10, 0, 0], [0, 10, 0])
    assert r.chi2 == pytest.approx(20.0) and r.ndf == 1
    assert r.pvalue == pytest.approx(stats.chi2.sf(20.0, 1))
    same_shape = chi2_test([10, 20, 30], [20, 40, 60])  # different totals, identical shape
    assert same_shape.chi2 == pytest.approx(0.0) and same_shape.pvalue == pytest.approx(1.0)
    assert chi2_test([0, 5, 0], [0, 9, 0]).pvalue == 1.0  # one populated bin: nothing differs
    assert math.isnan(chi2_test([0, 0], [1, 2]).pvalue)  # an empty side: untestable
    with pytest.raises(ConfigError, match="bins"):
        chi2_test([1, 2], [1, 2, 3])
    with pytest.raises(ConfigError, match=">= 0"):
        chi2_test([1, -2], [1, 2])


def test_chi2_equals_pearson_contingency_statistic() -> None:
    # The UU statistic is Pearson's χ² of the 2 × k contingency table (independent formula).
    rng = _rng(11)
    for _ in range(20):
        k = int(rng.integers(2, 30))
        n1 = rng.poisson(rng.uniform(0, 50, k))
        n2 = rng.poisson(rng.uniform(0, 80, k))
        keep = (n1 + n2) > 0
        if keep.sum() < 2:
            continue
        ref = stats.chi2_contingency(np.array([n1[keep], n2[keep]]), correction=False)
        r = chi2_test(n1, n2)
        assert r.chi2 == pytest.approx(ref.statistic, rel=1e-10)
        assert r.ndf == ref.dof
        assert r.pvalue == pytest.approx(ref.pvalue, rel=1e-8, abs=1e-300)


def test_chi2_size_uniform_pvalues_for_fair_chunks() -> None:
    rng = _rng(2024)
    probs = rng.dirichlet(np.full(20, 5.0))
    pvalues = [chi2_test(rng.multinomial(3000, probs), rng.multinomial(5000, probs)).pvalue for _ in range(200)]
    assert stats.kstest(pvalues, "uniform").pvalue > 0.01
    assert 0.02 < np.mean(np.array(pvalues) < 0.05) < 0.1  # nominal size 5 %


def test_chi2_power_for_a_biased_chunk() -> None:
    rng = _rng(5)
    probs = np.full(20, 1 / 20)
    biased = probs * np.linspace(0.85, 1.15, 20)
    biased /= biased.sum()
    assert chi2_test(rng.multinomial(20000, probs), rng.multinomial(20000, biased)).pvalue < 1e-3


def test_ks_size_and_power() -> None:
    rng = _rng(9)
    pvalues = [ks_test(rng.exponential(50, 400), rng.exponential(50, 700)) for _ in range(200)]
    assert stats.kstest(pvalues, "uniform").pvalue > 0.01
    assert ks_test(rng.exponential(50, 5000), rng.exponential(55, 5000)) < 1e-3
    assert math.isnan(ks_test([], [1.0]))


# --------------------------------------------------------------------------- p-value tree

GROUP_IDS = {"DY": "10918959937480734963", "QCD": "9072256947540860514", "TT": "10229932817631443077"}
DATASET_IDS = {"DYJetsToLL_M-50": 101, "QCD_Pt-15to7000": 202, "TTToSemiLeptonic": 303, "TTToHadronic": 304}
_DS_GROUP = {101: "DY", 202: "QCD", 303: "TT", 304: "TT"}


def _chunk(rng: np.random.Generator, n: int, type_probs: list[float] | None = None, pt_scale: float = 40.0) -> dict:
    ds = rng.choice(np.array(list(DATASET_IDS.values()), dtype=np.uint64), n)
    groups = np.array([int(GROUP_IDS[_DS_GROUP[int(d)]]) for d in ds], dtype=np.uint64)
    return {
        "tauType": rng.choice(4, n, p=type_probs or [0.25] * 4).astype(np.int32),
        "sampleType": np.ones(n, dtype=np.int32),
        "dataset_group_id": groups,
        "dataset_id": ds,
        "tau_pt": (20 + rng.exponential(pt_scale, n)).astype(np.float32),
        "tau_eta": rng.uniform(-2.3, 2.3, n).astype(np.float32),
    }


def test_compare_chunks_layout() -> None:
    rng = _rng(1)
    ref, chunk = _chunk(rng, 4000), _chunk(rng, 3500)
    res = compare_chunks(chunk, ref, group_ids=GROUP_IDS, dataset_ids=DATASET_IDS)
    assert set(res) == {"tauType", "sampleType", "uh_dataset_group_id", "uh_dataset_id"}
    assert set(res["tauType"]) == {"pvalue", "e", "mu", "tau", "jet"}  # empty slices dropped
    assert set(res["sampleType"]) == {"pvalue", "MC"}
    assert set(res["uh_dataset_group_id"]["TT"]) == {"tau_pt", "tau_eta", "uh_dataset_id"}
    assert set(res["uh_dataset_id"]) == {"pvalue", *DATASET_IDS}
    leaves = [p for _, p in _walk(res)]
    assert all(p is not None and 0 <= p <= 1 for p in leaves)
    # no dataset ids: no uh_dataset_id anywhere
    res2 = compare_chunks(chunk, ref, group_ids=GROUP_IDS, test="ks")
    assert "uh_dataset_id" not in res2 and "uh_dataset_id" not in res2["uh_dataset_group_id"]["TT"]


def test_compare_chunks_flags_a_biased_chunk_only() -> None:
    rng = _rng(3)
    ref = _chunk(rng, 20000)
    fair = compare_chunks(_chunk(rng, 20000), ref, group_ids=GROUP_IDS)
    biased_types = compare_chunks(_chunk(rng, 20000, type_probs=[0.22, 0.25, 0.25, 0.28]), ref, group_ids=GROUP_IDS)
    harder_pt = compare_chunks(_chunk(rng, 20000, pt_scale=44.0), ref, group_ids=GROUP_IDS, test="ks")
    assert biased_types["tauType"]["pvalue"] < 1e-3
    assert fair["tauType"]["pvalue"] > 1e-3
    assert harder_pt["tauType"]["jet"]["tau_pt"]["pvalue"] < 1e-3
    assert harder_pt["tauType"]["jet"]["tau_eta"]["pvalue"] > 1e-3
    merged = merge_pvalues([fair, biased_types])
    assert merged["tauType"]["pvalues"][1] < 1e-3
    assert 1 in failed_tests(merged, 1e-3)["tauType"]


def test_compare_chunks_unknown_and_empty_sides() -> None:
    rng = _rng(4)
    ref = _chunk(rng, 500)
    chunk = _chunk(rng, 500)
    chunk["dataset_group_id"][:50] = 12345  # not in the table
    chunk["tauType"][:10] = 8  # data: absent from the reference
    res = compare_chunks(chunk, ref, group_ids=GROUP_IDS)
    assert "unknown" in res["uh_dataset_group_id"]
    assert res["uh_dataset_group_id"]["unknown"]["tau_pt"]["pvalue"] is None  # reference side empty
    assert res["tauType"]["data"]["tau_eta"]["pvalue"] is None
    assert "emb_tau" not in res["tauType"]
    with pytest.raises(ConfigError, match="unknown validation test 'KS2'"):
        compare_chunks(chunk, ref, group_ids=GROUP_IDS, test="KS2")
    del chunk["tau_eta"]
    with pytest.raises(ConfigError, match="column 'tau_eta'"):
        compare_chunks(chunk, ref, group_ids=GROUP_IDS)
    with pytest.raises(ConfigError, match="not an integer"):
        compare_chunks(ref, ref, group_ids={"DY": "abc"})


def test_merge_pvalues_fills_missing_with_none() -> None:
    a = {"tauType": {"pvalue": 0.5, "e": {"tau_pt": {"pvalue": 0.1}}}}
    b = {"tauType": {"pvalue": 0.01, "mu": {"tau_pt": {"pvalue": 0.2}}}}
    merged = merge_pvalues([a, b])
    assert merged == {
        "tauType": {
            "pvalues": [0.5, 0.01],
            "e": {"tau_pt": {"pvalues": [0.1, None]}},
            "mu": {"tau_pt": {"pvalues": [None, 0.2]}},
        }
    }
    assert failed_tests(merged, 0.05) == {"tauType": [1]}


def _walk(node: dict, path: tuple = ()) -> list:
    out = []
    for k, v in node.items():
        if k == "pvalue":
            out.append((path, v))
        elif isinstance(v, dict):
            out.extend(_walk(v, (*path, k)))
    return out


# ------------------------------------------------------------------------------ closure


def test_closure_report_hand_computed() -> None:
    r = closure_report({"tau": np.array([[12.0, 8.0]])}, {"tau": np.array([[10.0, 10.0]])})["tau"]
    np.testing.assert_allclose(r.pulls, [[2 / math.sqrt(10), -2 / math.sqrt(10)]])
    assert r.chi2 == pytest.approx(0.8) and r.ndf == 2
    assert r.pvalue == pytest.approx(math.exp(-0.4))  # χ²₂ survival function
    assert r.chi2_ndf == pytest.approx(0.4)
    assert r.to_dict()["n_observed"] == 20.0


def test_closure_report_zero_variance_bins() -> None:
    exp = {"jet": np.array([5.0, 10.0, 0.0])}
    var = {"jet": np.array([0.0, 4.0, 0.0])}  # bin 0 accepted with probability 1: exact
    ok = closure_report({"jet": np.array([5.0, 12.0, 0.0])}, exp, var)["jet"]
    assert ok.ndf == 1 and ok.chi2 == pytest.approx(1.0) and ok.pulls[0] == 0
    bad = closure_report({"jet": np.array([6.0, 10.0, 0.0])}, exp, var)["jet"]
    assert bad.chi2 == math.inf and bad.pvalue == 0.0 and bad.pulls[0] == math.inf
    leak = closure_report({"jet": np.array([5.0, 10.0, 1.0])}, exp, var)["jet"]  # accepted where p = 0
    assert leak.pvalue == 0.0


def test_closure_report_size() -> None:
    rng = _rng(8)
    expected = rng.uniform(50, 500, size=(4, 6))
    pvalues = [closure_report({"e": rng.poisson(expected)}, {"e": expected})["e"].pvalue for _ in range(200)]
    assert stats.kstest(pvalues, "uniform").pvalue > 0.01


def test_closure_report_errors() -> None:
    with pytest.raises(ConfigError, match="observed types"):
        closure_report({"e": np.ones(2)}, {"mu": np.ones(2)})
    with pytest.raises(ConfigError, match="shapes differ"):
        closure_report({"e": np.ones(2)}, {"e": np.ones(3)})


# ------------------------------------------------------------- each chunk against the rest


def test_ks_vs_rest_equals_scipy_on_the_two_samples() -> None:
    rng = _rng(31)
    # rounded values: ties inside a part, across parts and at the part's ends
    big = np.round(rng.exponential(40.0, 48_000), 1).astype(np.float32)
    big[30_000:36_000] *= np.float32(1.02)
    small = np.round(rng.normal(size=9_000), 2)
    for x, splits in ((big, [0, 2_000, 30_000, 36_000, 48_000]), (small, [0, 1, 4_000, 9_000])):
        ps = ks_vs_rest(x, splits)
        for p, a, b in zip(ps, splits[:-1], splits[1:], strict=True):
            ref = stats.ks_2samp(x[a:b].astype(np.float64), np.concatenate([x[:a], x[b:]]).astype(np.float64))
            assert p == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300), (a, b)
    assert ks_vs_rest(big, [0, 48_000])[0] != ks_vs_rest(big, [0, 48_000])[0]  # NaN: empty rest
    assert math.isnan(ks_vs_rest(small, [0, 0, 9_000])[0])  # empty part
    with pytest.raises(ConfigError, match="splits"):
        ks_vs_rest(small, [0, 10, 5, 9_000])
    with pytest.raises(ConfigError, match="splits"):
        ks_vs_rest(small, [0, 10])


def test_vs_rest_pvalues_of_a_fair_split_are_uniform_and_a_biased_part_is_found() -> None:
    rng = _rng(77)
    probs = rng.dirichlet(np.full(15, 4.0))
    counts = rng.multinomial(1500, probs, size=300)
    p_chi2 = np.array(chi2_vs_rest(counts))
    assert stats.kstest(p_chi2, "uniform").pvalue > 0.01
    assert 5 <= np.sum(p_chi2 < 0.05) <= 26  # binomial(300, 0.05): mean 15, ±3σ ≈ [3, 27]
    for k in (0, 17):  # each row against the sum of the others, as the pairwise test
        assert p_chi2[k] == pytest.approx(chi2_test(counts[k], counts.sum(axis=0) - counts[k]).pvalue, rel=1e-12)

    values = rng.exponential(50.0, 200 * 600)  # asymptotic regime: the rest has 119 400 values
    splits = np.arange(0, values.size + 1, 600)
    p_ks = np.array(ks_vs_rest(values, splits))
    assert stats.kstest(p_ks, "uniform").pvalue > 0.01
    values[600 * 50 : 600 * 51] *= 1.4  # part 50 drawn from a harder spectrum
    p_biased = np.array(ks_vs_rest(values, splits))
    assert np.argmin(p_biased) == 50 and p_biased[50] < 1e-3
    with pytest.raises(ConfigError, match="chunks x bins"):
        chi2_vs_rest(np.ones(5))
