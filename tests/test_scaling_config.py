"""Features config of feature scaling: the shipped DeepTau v2 file and validation errors."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from taucoffea.errors import ConfigError
from taucoffea.scaling.config import load_feature_config, parse_feature_config, parse_file_range

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "configs" / "features" / "deeptau_v2.yaml"

# reference spec §5.1: feature counts of training_v1 (all, disabled)
SPEC_COUNTS = {
    "TauFlat": (44, 1),
    "GridGlobal": (6, 2),
    "PfCand_electron": (26, 4),
    "PfCand_muon": (27, 4),
    "PfCand_chHad": (31, 4),
    "PfCand_nHad": (7, 0),
    "PfCand_gamma": (27, 4),
    "Electron": (37, 0),
    "Muon": (37, 0),
}


def _minimal() -> dict:
    return {
        "Scaling_setup": {
            "log_step": 2,
            "version": 3,
            "cone_selection": {
                "TauFlat": {"var_names": {"pt": "tau_pt", "eta": "tau_eta", "phi": "tau_phi"}, "cone_types": [None]},
                "PfCand_chHad": {"var_names": {"eta": "pfCand_eta", "phi": "pfCand_phi"}, "cone_types": ["inner", "outer"]},
            },
        },
        "Features_all": {
            "TauFlat": [
                {"rho": [None, None, "normal", [-5, 5]]},
                {"tau_pt": [None, None, "linear", [20.0, 1000.0]]},
                {"tau_charge": [None, None, "categorical"]},
            ],
            "PfCand_chHad": [
                {"pfCand_chHad_rel_pt": ["pfCand_particleType == 1", {"pfCand_chHad_rel_pt": "pfCand_pt/tau_pt"}, "normal", [-5, 5]]},
                {"pfCand_chHad_deta": ["pfCand_particleType == 1", {"pfCand_chHad_deta": "pfCand_eta - tau_eta"}, "linear",
                                       {"inner": [-0.1, 0.1], "outer": [-0.5, 0.5]}]},
            ],
        },
        "Features_disable": {"TauFlat": ["tau_charge"]},
    }


def test_shipped_config_matches_reference_feature_counts():
    cfg = load_feature_config(SHIPPED)
    assert set(cfg.features) == set(SPEC_COUNTS)
    for t, (n_all, n_disabled) in SPEC_COUNTS.items():
        feats = cfg.features[t]
        assert len(feats) == n_all, t
        assert sum(f.disabled for f in feats) == n_disabled, t
    # grid groups of §5.1: egamma 86, muon 64, hadrons 38 used features
    used = {t: n - d for t, (n, d) in SPEC_COUNTS.items()}
    assert used["GridGlobal"] + used["PfCand_electron"] + used["PfCand_gamma"] + used["Electron"] == 86
    assert cfg.cone_selection["PfCand_gamma"].cones == ("inner", "outer")
    assert cfg.cone_selection["TauFlat"].is_global


def test_shipped_config_reads_only_toy_columns():
    from taucoffea.toy.generator import generate_taus

    cfg = load_feature_config(SHIPPED)
    fields = set(generate_taus("DYJetsToLL_M-50", 5, seed=1).fields)
    assert cfg.columns() <= fields, sorted(cfg.columns() - fields)
    # disabled features may need branches the toy does not write (timing)
    disabled_cols = {c for fs in cfg.features.values() for f in fs if f.disabled and f.scaling != "categorical" for c in f.columns()}
    assert "pfCand_time" in disabled_cols and "pfCand_time" not in fields


def test_minimal_config_parsed():
    cfg = parse_feature_config(_minimal(), "mini.yaml")
    assert cfg.setup.log_step == 2 and cfg.setup.version == "3" and cfg.setup.quantiles == "per_file"
    rel = cfg.features["PfCand_chHad"][0]
    assert rel.lims_for("inner") == (-5.0, 5.0) and not rel.lims_per_cone
    deta = cfg.features["PfCand_chHad"][1]
    assert deta.lims_per_cone and deta.lims_for("outer") == (-0.5, 0.5)
    assert rel.columns() == {"pfCand_pt", "tau_pt", "pfCand_particleType"}
    assert [f.name for f in cfg.active()["TauFlat"]] == ["rho", "tau_pt"]
    assert cfg.columns() == {"rho", "tau_pt", "tau_eta", "tau_phi", "pfCand_pt", "pfCand_eta", "pfCand_phi", "pfCand_particleType"}
    assert cfg.cone_definition.min_pt == 30.0 and cfg.cone_definition.outer_dr == 0.5


def test_no_scaling_spelling_of_the_readme():
    data = _minimal()
    data["Features_all"]["TauFlat"].append({"tau_mass": [None, None, "no scaling"]})
    cfg = parse_feature_config(data)
    assert cfg.features["TauFlat"][-1].scaling == "no_scaling"


def test_alias_chains_and_cycles():
    data = _minimal()
    data["Features_all"]["TauFlat"].append(
        {"tau_x": [None, {"tau_x": "tau_y * 2", "tau_y": "tau_pt + tau_mass"}, "normal"]}
    )
    cfg = parse_feature_config(data)
    assert cfg.features["TauFlat"][-1].columns() == {"tau_pt", "tau_mass"}
    data["Features_all"]["TauFlat"][-1] = {"tau_x": [None, {"tau_x": "tau_y * 2", "tau_y": "tau_x + 1"}, "normal"]}
    with pytest.raises(ConfigError, match="cycle"):
        parse_feature_config(data)


@pytest.mark.parametrize(
    ("mutate", "pattern"),
    [
        (lambda d: d.update(Bogus=1), r"top level: unknown key\(s\) \['Bogus'\]; allowed"),
        (lambda d: d["Scaling_setup"].update(log_stp=3), r"Scaling_setup: unknown key\(s\) \['log_stp'\]"),
        (lambda d: d["Features_all"]["TauFlat"].append({"x": [None, None, "gaussian"]}),
         r"Features_all\.TauFlat\.x\.scaling_type: 'gaussian' is not allowed; allowed: \['no_scaling', 'categorical', 'linear', 'normal'\]"),
        (lambda d: d["Features_all"]["TauFlat"].append({"x": [None, None, "linear"]}), r"linear scaling needs lim_params"),
        (lambda d: d["Features_all"]["TauFlat"].append({"x": [None, None, "categorical", [0, 1]]}), r"takes no lim_params"),
        (lambda d: d["Features_all"]["TauFlat"].append({"x": [None, None, "normal", [5, -5]]}), r"needs a < b"),
        (lambda d: d["Features_all"]["TauFlat"].append({"x": [None, None, "normal", ["a", 1]]}), r"must be a number"),
        (lambda d: d["Features_all"]["TauFlat"].append({"x": [None, None]}), r"Features_all\.TauFlat\.x: must be \[selection_cut"),
        (lambda d: d["Features_all"]["TauFlat"].append({"x": [3, None, "normal"]}), r"x\.selection_cut: must be a cut string"),
        (lambda d: d["Features_all"]["TauFlat"].append({"x": [None, ["a"], "normal"]}), r"x\.aliases: must be a mapping"),
        (lambda d: d["Features_all"]["TauFlat"].append({"x": ["tau_pt > 1; import os", None, "normal"]}), r"x\.selection_cut: invalid cut"),
        (lambda d: d["Features_all"]["TauFlat"].append({"x": [None, {"x": "__import__('os')"}, "normal"]}), r"x\.aliases\.x: invalid expression"),
        (lambda d: d["Features_all"]["TauFlat"].append({"rho": [None, None, "normal"]}), r"TauFlat\.rho: listed twice"),
        (lambda d: d["Features_all"]["PfCand_chHad"][1]["pfCand_chHad_deta"].__setitem__(3, {"inner": [-1, 1]}),
         r"per-cone limits must name exactly the cones \['inner', 'outer'\]"),
        (lambda d: d["Features_disable"].update(TauFlat=["tau_chrage"]), r"Features_disable\.TauFlat: unknown feature\(s\) \['tau_chrage'\]"),
        (lambda d: d["Features_disable"].update(Tau=["x"]), r"Features_disable: unknown key\(s\) \['Tau'\]"),
        (lambda d: d["Scaling_setup"]["cone_selection"]["PfCand_chHad"].update(cone_types=["inner", "middle"]),
         r"cone_types: \['inner', 'middle'\] is not allowed"),
        (lambda d: d["Scaling_setup"]["cone_selection"]["PfCand_chHad"].update(var_names={"phi": "pfCand_phi"}),
         r"need the constituent column\(s\) \['eta'\]"),
        (lambda d: d["Scaling_setup"]["cone_selection"].update(Muon={}), r"cone_selection: unknown key\(s\) \['Muon'\]"),
        (lambda d: d["Scaling_setup"].update(log_step=0), r"log_step: must be an integer >= 1"),
        (lambda d: d["Scaling_setup"].update(version="a/b"), r"cannot be part of a file name"),
        (lambda d: d["Scaling_setup"].update(quantiles="some"), r"quantiles: 'some' is not allowed; allowed: \['per_file', 'total', 'none'\]"),
        (lambda d: d["Scaling_setup"].update(file_range=[3, 1]), r"file_range"),
        (lambda d: d["Scaling_setup"].update(cone_definition={"inner": {"min_pt": -1}}), r"cone_definition\.inner\.min_pt: must be > 0"),
        (lambda d: d["Scaling_setup"].update(cone_definition={"inner": {"minpt": 1}}), r"cone_definition\.inner: unknown key"),
        (lambda d: d.update(cone_selection={}), r"given both at the top level and inside Scaling_setup"),
        (lambda d: d.pop("Features_all"), r"Features_all: missing"),
    ],
)
def test_validation_errors_name_key_and_allowed_values(mutate, pattern):
    data = copy.deepcopy(_minimal())
    mutate(data)
    with pytest.raises(ConfigError, match=pattern):
        parse_feature_config(data, "mini.yaml")


def test_errors_name_the_file(tmp_path):
    data = _minimal()
    data["Features_all"]["TauFlat"].append({"x": [None, None, "gaussian"]})
    path = tmp_path / "features.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=rf"^{path}: Features_all\.TauFlat\.x\.scaling_type"):
        load_feature_config(path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("Features_all: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_feature_config(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_feature_config(tmp_path / "missing.yaml")


def test_yaml_is_loaded_safely(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("Features_all: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_feature_config(path)


def test_parse_file_range():
    assert parse_file_range(-1) is None and parse_file_range(None) is None
    assert parse_file_range([0, 100]) == (0, 100)
    assert parse_file_range("2:5") == (2, 5)
    assert parse_file_range("3:") == (3, -1)
    assert parse_file_range("3:-1") == (3, -1)
    for bad in ("1", "a:b", [1], [2, 1], [True, 3], "-2:4"):
        with pytest.raises(ConfigError):
            parse_file_range(bad)


@pytest.mark.parametrize(
    ("cut", "terms"),
    [
        ("a > 1 && b < 2", ["a > 1", "b < 2"]),
        ("a > 1 and (b < 2 || c) && d in [1, 2]", ["a > 1", "(b < 2 || c)", "d in [1, 2]"]),
        ("a > 1 && b < 2 || c", ["a > 1 && b < 2 || c"]),  # || at the top: kept whole
        ("(a && b) or c", ["(a && b) or c"]),
        ("a > 1 and b > 0 | c > 0", ["a > 1 and b > 0 | c > 0"]),  # '|' is an 'or' too
        ("a > 1 & b > 0 && c > 0", ["a > 1 & b > 0", "c > 0"]),
        ("pfCand_pt > 1 && orbit_andx == 2", ["pfCand_pt > 1", "orbit_andx == 2"]),  # names, not words
        ("!(a && b) && c", ["!(a && b)", "c"]),
        ("x", ["x"]),
    ],
)
def test_cut_terms_split_at_top_level_and_only(cut, terms):
    from taucoffea.processors.scaling import _split_conjuncts

    assert _split_conjuncts(cut) == terms


@pytest.mark.parametrize(
    "cut",
    [
        "a > 1 && b in [0, 2] && !(c < 0.5 || a == 3)",
        "a > 1 and (b > 0 | c > 0) and c < 0.9",
        "abs(a - 2) < 1 && b != 1 & c >= 0.2",
        "a >= 2 || b == 0 && c > 0.5",
        "not a > 2 and b not in [1] and c > 0.1",
    ],
)
def test_cut_terms_conjoin_to_the_cut(cut):
    import numpy as np

    from taucoffea.columns.selection import compile_selection
    from taucoffea.processors.scaling import _split_conjuncts

    rng = np.random.default_rng(3)
    env = {"a": rng.integers(0, 5, 500), "b": rng.integers(0, 3, 500), "c": rng.random(500)}
    parts = [np.asarray(compile_selection(t)(env), dtype=bool) for t in _split_conjuncts(cut)]
    np.testing.assert_array_equal(np.logical_and.reduce(parts), np.asarray(compile_selection(cut)(env), dtype=bool))
