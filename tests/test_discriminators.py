"""Discriminator descriptions: score formulas, WP bit decoding, thresholds, config checks."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from taucoffea.algorithms.discriminators import (
    Discriminator,
    discriminator_from_mapping,
    load_discriminator,
)
from taucoffea.errors import ConfigError, InputError
from taucoffea.physics.working_points import REFERENCE_THRESHOLDS

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "evaluation" / "discriminators"


def _rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.Philox(seed))


def test_node_score_is_vs_type_ratio_and_zero_without_tau_probability() -> None:
    rng = _rng(1)
    p = rng.dirichlet(np.ones(4), 1000)
    p[:5] = 0.0  # rows the loader never filled: 0/0
    p[5:10, 2] = 0.0  # p_tau = 0 with other classes present
    table = {"node_e": p[:, 0], "node_mu": p[:, 1], "node_tau": p[:, 2], "node_jet": p[:, 3]}
    d = discriminator_from_mapping({"name": "net", "score_from": "node"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 0/0 must neither warn nor give NaN
        for vs, col in (("e", 0), ("mu", 1), ("jet", 3)):
            s = d.score(table, vs)
            expected = p[10:, 2] / (p[10:, 2] + p[10:, col])
            np.testing.assert_allclose(s[10:], expected, rtol=1e-12)
            assert np.all(s[:10] == 0.0)
    assert d.columns("jet") == ["node_tau", "node_jet"]


def test_ideal_score_is_sigmoid_of_loglik_ratio_and_ranking_does_not_saturate() -> None:
    rng = _rng(2)
    ll = rng.normal(0, 20, (500, 4))
    table = {f"truth_loglik_{c}": ll[:, i] for i, c in enumerate(("e", "mu", "tau", "jet"))}
    d = load_discriminator(CONFIGS / "ideal.yaml")
    s = d.score(table, "jet")
    np.testing.assert_allclose(s, 1.0 / (1.0 + np.exp(ll[:, 3] - ll[:, 2])), rtol=1e-12)
    # beyond ~37 the sigmoid is exactly 1 in float64, the ranking score keeps the order
    big = {"truth_loglik_tau": np.array([40.0, 50.0, 60.0]), "truth_loglik_jet": np.zeros(3)}
    assert np.all(d.score(big, "jet") == 1.0)
    assert np.all(np.diff(d.ranking_score(big, "jet")) > 0)
    np.testing.assert_allclose(d.score_from_ranking([0.0, np.log(3.0)]), [0.5, 0.75])
    assert d.score_from_ranking([np.inf])[0] == np.inf  # the ROC's "select nothing" stays


def test_column_score_fills_vs_type_template() -> None:
    d = load_discriminator(CONFIGS / "deeptau_v2p1.yaml")
    assert d.score_columns("mu") == ["tau_byDeepTau2017v2p1VSmuraw"]
    assert d.wp_columns("e") == ["tau_byDeepTau2017v2p1VSe"]
    table = {"tau_byDeepTau2017v2p1VSjetraw": np.array([0.1, 0.9], dtype=np.float32)}
    np.testing.assert_allclose(d.score(table, "jet"), [0.1, 0.9], rtol=1e-6)


def test_wp_bitmask_decoding_uses_the_bit_index_of_each_wp() -> None:
    d = load_discriminator(CONFIGS / "deeptau_v2p1.yaml")
    # bits: VVVLoose=0 ... VVTight=7; VSmu uses bits 2..5 (VLoose..Tight)
    values = np.array([0, 1, 0b111, 0b11111111, 0b100, 0b101000], dtype=np.uint16)
    t = {"tau_byDeepTau2017v2p1VSjet": values, "tau_byDeepTau2017v2p1VSmu": values}
    jet = d.wp_masks(t, "jet")
    assert list(jet) == ["VVVLoose", "VVLoose", "VLoose", "Loose", "Medium", "Tight", "VTight",
                         "VVTight"]
    for name, bit in zip(jet, range(8), strict=True):
        np.testing.assert_array_equal(jet[name], (values.astype(int) >> bit) & 1 == 1)
    mu = d.wp_masks(t, "mu")
    assert list(mu) == ["VLoose", "Loose", "Medium", "Tight"]
    np.testing.assert_array_equal(mu["VLoose"], [False, False, True, True, True, False])
    np.testing.assert_array_equal(mu["Loose"], [False, False, False, True, False, True])
    np.testing.assert_array_equal(mu["Tight"], [False, False, False, True, False, True])
    np.testing.assert_array_equal(d.passes(t, "mu", "Medium"), mu["Medium"])
    with pytest.raises(ConfigError, match="VVVLoose"):
        d.passes(t, "mu", "VVVLoose")


def test_custom_bit_map_and_float_bitmask() -> None:
    d = discriminator_from_mapping({
        "name": "legacy", "raw": False, "wp_from": "wp_column", "wp_column": "iso",
        "wp_name_to_index": {"jet": {"Loose": 5, "Tight": 9}},
    })
    assert not d.has_score and d.wp_names("jet") == ["Loose", "Tight"]
    m = d.wp_masks({"iso": np.array([0.0, 32.0, 512.0, 544.0])}, "jet")
    np.testing.assert_array_equal(m["Loose"], [False, True, False, True])
    np.testing.assert_array_equal(m["Tight"], [False, False, True, True])
    with pytest.raises(InputError, match="bitmask"):
        d.wp_masks({"iso": np.array([0.5])}, "jet")


def test_threshold_wps_are_strict_and_loaded_from_files_or_reference(tmp_path: Path) -> None:
    wps = {"jet": {"Tight": 0.8, "Loose": 0.5}}
    path = tmp_path / "working_points.json"
    path.write_text(json.dumps(wps))
    (tmp_path / "d.yaml").write_text("name: net\nwp_thresholds: working_points.json\n")
    d = load_discriminator(tmp_path / "d.yaml")
    assert d.wp_from == "thresholds" and d.wp_names("jet") == ["Loose", "Tight"]
    t = {"node_tau": np.array([0.5, 0.5000001, 0.8, 0.9]), "node_jet": None}
    t["node_jet"] = 1.0 - t["node_tau"]  # score = node_tau
    m = d.wp_masks(t, "jet")
    np.testing.assert_array_equal(m["Loose"], [False, True, True, True])
    np.testing.assert_array_equal(m["Tight"], [False, False, False, True])
    ref = discriminator_from_mapping({"name": "r", "score_column": "x${vs_type}",
                                      "wp_thresholds": "reference:DeepTau2017v2p1"})
    assert ref.wp_thresholds["mu"] == REFERENCE_THRESHOLDS["DeepTau2017v2p1"]["mu"]
    later = load_discriminator(CONFIGS / "model.yaml")
    assert not later.has_wps("jet")
    assert later.with_thresholds(wps).wp_names("jet") == ["Loose", "Tight"]


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"name": "x", "colour": "red"}, "unknown key"),
        ({"score_from": "node"}, "name"),
        ({"name": "x", "score_from": "magic"}, "score_from"),
        ({"name": "x", "wp_from": "wp_column"}, "wp_column"),
        ({"name": "x", "score_column": "a${vstype}"}, "placeholder"),
        ({"name": "x", "key": "../evil"}, "key"),
        ({"name": "x", "wp_thresholds": {"tau": {"L": 0.1}}}, "vs type"),
        ({"name": "x", "wp_thresholds": {"jet": {"L": "high"}}}, "finite number"),
        ({"name": "x", "wp_thresholds": "reference:NoSuchSet"}, "reference"),
        ({"name": "x", "wp_thresholds": "missing.json"}, "not found"),
        ({"name": "x", "raw": False}, "neither"),
    ],
)
def test_invalid_descriptions_are_rejected(mapping: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        d = discriminator_from_mapping(mapping)
        d.score_columns("jet")  # placeholders are checked when a vs type is filled in


def test_missing_input_column_names_it() -> None:
    d = Discriminator(name="net", key="net")
    with pytest.raises(InputError, match="node_jet"):
        d.score({"node_tau": np.ones(3)}, "jet")


def test_shipped_discriminator_configs_load() -> None:
    names = {load_discriminator(p).key for p in sorted(CONFIGS.glob("*.yaml"))}
    assert {"model", "deeptau_v2p1", "ideal"} <= names


def test_bitmask_and_reference_threshold_variants_agree_on_toy_taus() -> None:
    """The toy's WP bitmasks were set from the reference thresholds: decoding the bits and
    cutting the raw score must give identical pass masks for every WP."""
    from taucoffea.toy.generator import generate_taus

    a = generate_taus("TTToSemiLeptonic", 5000, seed=4)
    t = {f: np.asarray(a[f]) for f in a.fields if a[f].ndim == 1}
    bits = load_discriminator(CONFIGS / "deeptau_v2p1.yaml")
    ref = load_discriminator(CONFIGS / "deeptau_v2p1_reference.yaml")
    assert bits.key == ref.key
    for vs in ("e", "mu", "jet"):
        mb, mr = bits.wp_masks(t, vs), ref.wp_masks(t, vs)
        assert list(mb) == list(mr)
        for wp in mb:
            np.testing.assert_array_equal(mb[wp], mr[wp])
        assert 0 < mb[list(mb)[0]].mean() < 1
