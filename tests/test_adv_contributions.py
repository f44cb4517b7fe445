"""The adversarial contributions config: the shipped YAML, validation, composition overrides."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from taucoffea.adversarial.contributions import (
    DEFAULT_CONFIG,
    load_adversarial_config,
    parse_composition,
)
from taucoffea.columns.selection import compile_selection
from taucoffea.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SELECTION_YAML = ROOT / "configs" / "adversarial" / "selection.yaml"


def test_shipped_yaml_is_the_spec_table() -> None:
    cfg = load_adversarial_config(SELECTION_YAML)
    assert cfg.contributions == DEFAULT_CONFIG.contributions
    assert cfg.selection == DEFAULT_CONFIG.selection
    # spec §7.3: order, dataset ids 0..6 and 50/36/2/1/1/5/5 per batch of 100
    assert cfg.names == ("data", "DY_taus", "tt_taus", "DY_muons", "tt_jets", "W_jets", "QCD_jets")
    assert [c.dataset_id for c in cfg.contributions] == list(range(7))
    assert [c.per_batch for c in cfg.contributions] == [50, 36, 2, 1, 1, 5, 5]
    assert cfg.batch_size == 100
    assert [c.weight_name for c in cfg.contributions] == ["data", "DYT", "TTT", "DYM", "TTJ", "WJ", "QCD"]
    assert [c.tau_type for c in cfg.contributions] == [None, 2, 2, 1, 3, 3, 3]


def test_selection_matches_spec_cuts() -> None:
    """The base cut, evaluated on hand-made rows, keeps exactly those passing every spec cut."""
    rng = np.random.Generator(np.random.Philox(7))
    n = 5000
    t = {
        "tau_byDeepTau2017v2p1VSjetraw": rng.uniform(0.8, 1.0, n).astype(np.float32),
        "tau_pt": rng.uniform(20, 60, n).astype(np.float32),
        "tau_eta": rng.uniform(-2.5, 2.5, n).astype(np.float32),
        "tau_decayModeFindingNewDMs": rng.integers(0, 2, n).astype(np.int32),
        "tau_decayMode": rng.choice([0, 1, 2, 5, 6, 10, 11], n).astype(np.int32),
        "tau_byDeepTau2017v2p1VSeraw": rng.uniform(0, 0.4, n).astype(np.float32),
        "tau_byDeepTau2017v2p1VSmuraw": rng.uniform(0.7, 1.0, n).astype(np.float32),
        "tau_index": rng.integers(-1, 2, n).astype(np.int32),
        "has_extramuon": (rng.random(n) < 0.1).astype(np.int32),
        "has_extraelectron": (rng.random(n) < 0.1).astype(np.int32),
        "has_dimuon": (rng.random(n) < 0.1).astype(np.int32),
    }
    expected = (
        (t["tau_byDeepTau2017v2p1VSjetraw"] > 0.9) & (t["tau_pt"] > 30) & (np.abs(t["tau_eta"]) < 2.3)
        & (t["tau_decayModeFindingNewDMs"] != 0) & np.isin(t["tau_decayMode"], [0, 1, 10, 11])
        & (t["tau_byDeepTau2017v2p1VSeraw"] > 0.1686942) & (t["tau_byDeepTau2017v2p1VSmuraw"] > 0.8754835)
        & (t["tau_index"] >= 0) & (t["has_extramuon"] == 0) & (t["has_extraelectron"] == 0) & (t["has_dimuon"] == 0)
    )
    got = compile_selection(DEFAULT_CONFIG.selection)(t)
    assert 0 < expected.sum() < n
    np.testing.assert_array_equal(got, expected)


def test_contribution_cuts() -> None:
    dy_mu = DEFAULT_CONFIG.by_name("DY_muons")
    assert dy_mu.selection("tau_pt > 30") == "(tau_pt > 30) && (mytauType == 1)"
    assert DEFAULT_CONFIG.data.selection("x > 0") == "(x > 0) && (sampleType == 0)"
    table = {"tau_pt": np.array([40.0, 40.0, 20.0]), "mytauType": np.array([1, 2, 1]), "sampleType": np.array([1, 1, 1])}
    np.testing.assert_array_equal(compile_selection(dy_mu.selection("tau_pt > 30"))(table), [True, False, False])


def test_composition_override() -> None:
    assert parse_composition("data=10, DY_taus=4") == {"data": 10, "DY_taus": 4}
    cfg = DEFAULT_CONFIG.with_composition("data=10,DY_taus=4")
    assert cfg.composition()["data"] == 10 and cfg.composition()["W_jets"] == 5
    with pytest.raises(ConfigError, match="unknown contribution.*Z_jets"):
        DEFAULT_CONFIG.with_composition({"Z_jets": 3})
    with pytest.raises(ConfigError, match="NAME=COUNT"):
        parse_composition("data:10")
    with pytest.raises(ConfigError, match="data and MC"):
        DEFAULT_CONFIG.with_composition("data=0")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c[1].update(dataset_id=0), "duplicate contribution dataset_id"),
        (lambda c: c[0].pop("data"), "either 'data: true' or a 'tau_type'"),
        (lambda c: c[1].update(tau_type="gluon"), "tau_type 'gluon'"),
        (lambda c: c[2].update(colour="red"), r"unknown key\(s\) \['colour'\]"),
        (lambda c: c[3].update(per_batch=-1), "per_batch"),
        (lambda c: c[4].pop("dataset"), r"missing key\(s\) \['dataset'\]"),
    ],
)
def test_invalid_configs_name_the_problem(edit, message: str) -> None:
    import yaml

    data = yaml.safe_load(SELECTION_YAML.read_text())
    edit(data["contributions"])
    with pytest.raises(ConfigError, match=message):
        load_adversarial_config(data)


def test_unknown_top_level_key(tmp_path: Path) -> None:
    bad = tmp_path / "sel.yaml"
    bad.write_text(SELECTION_YAML.read_text() + "\nselectoin: x\n")
    with pytest.raises(ConfigError, match=r"sel.yaml: unknown key\(s\) \['selectoin'\]"):
        load_adversarial_config(bad)
