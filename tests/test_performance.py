"""performance.json and working_points.json I/O, entry replacement, correctionlib WPs."""

from __future__ import annotations

import json

import correctionlib
import numpy as np
import pytest

from taucoffea.algorithms.performance import (
    add_entry,
    dumps_performance,
    load_performance,
    load_working_points,
    new_performance,
    roc_from_entry,
    save_performance,
    save_working_points,
    save_wp_correctionlib,
    select_entry,
    wp_to_correctionlib,
)
from taucoffea.algorithms.roc import auc, prune, roc_curve, wp_points
from taucoffea.errors import InputError, OutputExistsError


def _rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.Philox(key=seed))


def _sample(seed: int, n: int = 2000):
    rng = _rng(seed)
    y = rng.random(n) < 0.5
    s = 1 / (1 + np.exp(-rng.normal(1.5 * y - 0.75, 1.0)))
    w = rng.uniform(0.5, 1.5, n)
    return y, s, w


BIN = dict(pt_min=20, pt_max=100, eta_min=0, eta_max=2.5, dm_bin=[0, 1, 2, 10, 11],
           vs_type="jet", dataset_alias="ggH_TT")  # fmt: skip


def _filled(seed: int = 1):
    y, s, w = _sample(seed)
    full = roc_curve(y, s, w)
    roc = prune(full, 3)
    wp, names = wp_points(y, s, {"Loose": 0.3, "Medium": 0.5, "Tight": 0.7}, w)
    perf = new_performance("DeepTau (toy)", period="Run3 toy")
    perf = add_entry(perf, "roc_curve", roc, auc_score=auc(full), **BIN)
    perf = add_entry(perf, "roc_wp", wp, wp_names=names, **BIN)
    return perf, roc, wp, auc(full)


def test_round_trip_preserves_curves(tmp_path):
    perf, roc, wp, auc_value = _filled()
    path = save_performance(perf, tmp_path / "performance.json")
    loaded = load_performance(path)
    assert loaded["name"] == "DeepTau (toy)" and loaded["period"] == "Run3 toy"
    e = select_entry(loaded, "roc_curve", vs_type="jet", pt_min=20, pt_max=100)
    assert e["auc_score"] == auc_value
    back = roc_from_entry(e)
    np.testing.assert_array_equal(back.fpr, roc.fpr)  # shortest repr: exact round trip
    np.testing.assert_array_equal(back.tpr, roc.tpr)
    np.testing.assert_array_equal(back.thresholds, roc.thresholds)
    assert back.thresholds[0] == np.inf  # written as null, read back as +inf
    w = roc_from_entry(select_entry(loaded, "roc_wp", **BIN))
    assert w.thresholds.tolist() == [0.7, 0.5, 0.3]
    np.testing.assert_array_equal(w.fpr_err, wp.fpr_err)
    np.testing.assert_array_equal(w.tpr_err, wp.tpr_err)
    assert select_entry(loaded, "roc_wp", **BIN)["wp_names"] == ["Tight", "Medium", "Loose"]
    # the file is strict JSON (no NaN/Infinity tokens)
    json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"token {c}"))


def test_error_keys_have_their_meaning(tmp_path):
    perf, _, wp, _ = _filled()
    e = select_entry(perf, "roc_wp", **BIN)
    # *_down = eff − lo, *_up = hi − eff (the original swapped these names)
    np.testing.assert_array_equal(e["true_positive_rate_down"], wp.tpr_err[0])
    np.testing.assert_array_equal(e["true_positive_rate_up"], wp.tpr_err[1])


def test_same_key_replaces_never_duplicates():
    perf, _, _, _ = _filled(1)
    y, s, w = _sample(2)
    roc2 = prune(roc_curve(y, s, w), 3)
    key = dict(BIN, dm_bin=[11, 10, 2, 1, 0], pt_min=20.0)  # same bin, other spelling
    perf2 = add_entry(perf, "roc_curve", roc2, auc_score=0.5, **key)
    assert len(perf2["metrics"]["roc_curve"]) == 1
    assert select_entry(perf2, "roc_curve", **BIN)["auc_score"] == 0.5
    assert len(perf["metrics"]["roc_curve"]) == 1  # input not mutated
    assert select_entry(perf, "roc_curve", **BIN)["auc_score"] != 0.5
    perf3 = add_entry(perf2, "roc_curve", roc2, auc_score=0.6, **dict(BIN, pt_min=100, pt_max=1000))
    assert len(perf3["metrics"]["roc_curve"]) == 2
    assert len(perf3["metrics"]["roc_wp"]) == 1
    with pytest.raises(InputError, match="2 'roc_curve' entries"):
        select_entry(perf3, "roc_curve", vs_type="jet")
    assert select_entry(perf3, "roc_curve", vs_type="e") is None


def test_file_content_is_canonical(tmp_path):
    """Same content in a different insertion order gives byte-identical files."""
    y, s, w = _sample(3)
    roc = prune(roc_curve(y, s, w), 3)
    bins = [dict(BIN, pt_min=a, pt_max=b) for a, b in ((20, 100), (100, 1000))]
    p1 = new_performance("X", period="P")
    for b in bins:
        p1 = add_entry(p1, "roc_curve", roc, auc_score=0.9, **b)
    p2 = {"metrics": {}, "period": "P", "name": "X"}
    for b in reversed(bins):
        p2 = add_entry(p2, "roc_curve", roc, auc_score=0.9, **b)
    assert dumps_performance(p1) == dumps_performance(p2)
    # original-style compact float format is available
    text = dumps_performance(p1, float_format=".4e")
    assert "e-0" in text or "e+0" in text


def test_load_rejects_malformed(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "metrics": {"roc_curve": [{"vs_type": "e"}]}}')
    with pytest.raises(InputError, match="lacks pt_min"):
        load_performance(bad)
    bad.write_text("[inf]")
    with pytest.raises(InputError, match="not valid JSON"):
        load_performance(bad)
    with pytest.raises(InputError, match="does not exist"):
        load_performance(tmp_path / "missing.json")


def test_save_is_atomic_and_respects_overwrite(tmp_path):
    perf, _, _, _ = _filled()
    path = tmp_path / "sub" / "performance.json"
    save_performance(perf, path)
    save_performance(perf, path)  # rewrite in place is the normal flow
    assert sorted(p.name for p in path.parent.iterdir()) == ["performance.json"]
    with pytest.raises(OutputExistsError):
        save_performance(perf, path, overwrite=False)


# ----------------------------------------------------------------------------- working points

WPS = {
    "e": {"Tight": 0.9675541, "VVVLoose": 0.0630386, "Loose": 0.681543},
    "mu": {"VLoose": 0.1058354, "Tight": 0.8754835},
    "jet": {"Medium": 0.8834768, "VVVLoose": 0.2599605},
}


def test_working_points_json_round_trip_loosest_first(tmp_path):
    path = save_working_points(WPS, tmp_path / "working_points.json")
    loaded = load_working_points(path)
    assert list(loaded) == ["e", "mu", "jet"]
    assert list(loaded["e"]) == ["VVVLoose", "Loose", "Tight"]
    assert loaded["e"]["Loose"] == 0.6815  # rounded to 4 decimals as in the original
    assert loaded["jet"] == {"VVVLoose": 0.26, "Medium": 0.8835}
    with pytest.raises(OutputExistsError):
        save_working_points(WPS, path)
    exact = load_working_points(save_working_points(WPS, path, decimals=None, overwrite=True))
    assert exact["e"]["Loose"] == 0.681543
    (tmp_path / "bad.json").write_text('{"e": {"Loose": "high"}}')
    with pytest.raises(InputError, match="e.Loose"):
        load_working_points(tmp_path / "bad.json")


def test_correctionlib_round_trip(tmp_path):
    cset = wp_to_correctionlib(WPS)
    evaluator = correctionlib.CorrectionSet.from_string(cset.model_dump_json(exclude_unset=True))
    corr = evaluator["tau_wp_thresholds"]
    for vs, table in WPS.items():
        for wp, thr in table.items():
            assert corr.evaluate(vs, wp) == thr
    with pytest.raises(IndexError, match="Nope"):
        corr.evaluate("e", "Nope")
    path = save_wp_correctionlib(WPS, tmp_path / "wp.json")
    from_file = correctionlib.CorrectionSet.from_file(str(path))
    assert from_file["tau_wp_thresholds"].evaluate("jet", "Medium") == 0.8834768
    assert [v.name for v in from_file["tau_wp_thresholds"].inputs] == ["vs_type", "wp"]
