"""Tau features (§6.4), the scaling JSON layout (§5.3) and the column block."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from taucoffea.errors import ConfigError, InputError
from taucoffea.ml.blocks import ColumnBlock
from taucoffea.ml.features import (
    FEATURE_NAMES,
    FeatureSpec,
    Scaling,
    apply_scaling,
    estimate_scaling,
    required_columns,
    tau_features,
    wrap_dphi,
)


def _tau_block(**overrides: list[float]) -> ColumnBlock:
    """Three taus with every TauFlat input column; ``overrides`` replace columns."""
    base = {name: [1.0, 2.0, 3.0] for name in required_columns(FeatureSpec(), cells=False)}
    base.update({"tau_pt": [30.0, 45.0, 100.0], "tau_eta": [0.0, 1.0, -2.0], "tau_mass": [0.14, 1.0, 0.5],
                 "tau_decayMode": [0, 1, 11]})
    base.update(overrides)
    return ColumnBlock.from_columns({k: np.asarray(v, dtype=np.float32) for k, v in base.items()}, list(base))


def _feature(block: ColumnBlock, name: str) -> np.ndarray:
    spec = FeatureSpec()
    return tau_features(block, spec)[:, spec.enabled("TauFlat").index(name)]


def test_feature_counts_match_reference() -> None:
    spec = FeatureSpec()
    counts = {t: (len(FEATURE_NAMES[t]), spec.n_features(t)) for t in FEATURE_NAMES}
    assert counts == {
        "TauFlat": (44, 43), "GridGlobal": (6, 4), "PfCand_electron": (26, 22), "PfCand_muon": (27, 23),
        "PfCand_chHad": (31, 27), "PfCand_nHad": (7, 7), "PfCand_gamma": (27, 23), "Electron": (37, 37), "Muon": (37, 37),
    }
    assert [spec.group_width(g) for g in ("egamma", "muon", "hadrons")] == [86, 64, 38]


def test_derived_tau_features() -> None:
    block = _tau_block(
        tau_dxy=[0.01, -20.0, 0.02], tau_dxy_error=[0.005, 0.01, 0.0],
        tau_chargedIsoPtSum=[4.0, 0.0, 2.0], tau_chargedIsoPtSumdR03=[1.0, 0.0, 2.0],
        tau_gj_angle_diff=[0.0, -1.0, 0.3], tau_e_ratio=[0.5, 0.0, np.nan],
    )
    assert _feature(block, "tau_n_charged_prongs").tolist() == [1, 1, 3]  # DM//5 + 1 (scaling alias, A.10)
    assert _feature(block, "tau_n_neutral_prongs").tolist() == [0, 1, 1]
    e = np.sqrt((np.float32(45.0) * np.cosh(np.float32(1.0))) ** 2 + 1.0) / 45.0
    assert _feature(block, "tau_E_over_pt")[1] == pytest.approx(e, rel=1e-6)
    # dxy valid needs isnormal(dxy), dxy > -10, isnormal(err), err > 0; invalid → unfilled (NaN → 0 after scaling)
    assert _feature(block, "tau_dxy_valid").tolist() == [1, 0, 0]
    sig = _feature(block, "tau_dxy_sig")
    assert sig[0] == pytest.approx(2.0) and np.isnan(sig[1:]).all()
    ratio = _feature(block, "tau_chargedIsoPtSumdR03_over_dR05")
    assert ratio[0] == 0.25 and np.isnan(ratio[1]) and ratio[2] == 1.0
    assert _feature(block, "tau_gj_angle_diff_valid").tolist() == [1, 0, 1]  # 0 counts as valid, negatives not
    assert _feature(block, "tau_e_ratio_valid").tolist() == [1, 0, 0]
    assert "tau_phi" not in FeatureSpec().enabled("TauFlat")


def test_wrap_dphi_range() -> None:
    x = np.array([np.pi, -np.pi, 3 * np.pi, 0.1 - 2 * np.pi, 6.26])
    w = wrap_dphi(x)
    assert np.all((w > -np.pi) & (w <= np.pi))
    np.testing.assert_allclose(w, [np.pi, np.pi, np.pi, 0.1, 6.26 - 2 * np.pi], atol=1e-12)


def _scaling_fixture(tmp_path) -> Scaling:
    data = {
        "TauFlat": {
            "tau_pt": {"global": {"mean": 50.0, "std": 25.0, "lim_min": -5, "lim_max": 5, "sqmean": None, "num": None}},
            "tau_eta": {"global": {"mean": 0.0, "std": 2.5, "lim_min": -1.0, "lim_max": 1.0, "sqmean": None, "num": None}},
            "tau_charge": {"global": {"mean": 0, "std": 1, "lim_min": "-inf", "lim_max": "inf", "sqmean": None, "num": None}},
            "tau_mass": {"global": {"mean": None, "std": None, "lim_min": -5, "lim_max": 5, "sqmean": None, "num": 1}},
        },
        "PfCand_chHad": {
            "pfCand_chHad_rel_pt": {"inner": {"mean": 0.2482, "std": 0.3601, "lim_min": -5, "lim_max": 5},
                                    "outer": {"mean": 0.02191, "std": 0.08964, "lim_min": -5, "lim_max": 5}},
            "pfCand_chHad_valid": {"global": {"mean": 0, "std": 1, "lim_min": "-inf", "lim_max": "inf"}},
        },
    }
    path = tmp_path / "scaling_params_v5.json"
    path.write_text(json.dumps(data, indent=4))
    return Scaling.load(path)


def test_scaling_json_layout_is_applied(tmp_path) -> None:
    s = _scaling_fixture(tmp_path)
    raw = np.array([[100.0, 3.0, -1.0, 0.7], [50.0, np.nan, 1.0, np.inf], [400.0, -0.5, 0.0, 0.2]])
    names = ["tau_pt", "tau_eta", "tau_charge", "tau_mass"]
    x = s.apply(raw, "TauFlat", names, "global")
    assert x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0], [2.0, 0.0, 5.0])  # (400-50)/25 = 14 clamped to lim_max 5
    np.testing.assert_allclose(x[:, 1], [1.0, 0.0, -0.2])  # unfilled (NaN) → 0; linear clamp at ±1
    np.testing.assert_allclose(x[:, 2], [-1.0, 1.0, 0.0])  # "-inf"/"inf" strings → no clamp
    np.testing.assert_allclose(x[:, 3], [0.7, 0.0, 0.2])  # None mean/std → unscaled; inf → 0
    assert "TauFlat/tau_mass/global" in s.unscaled
    # per cone parameters; a 'global' entry serves both cones
    rel = np.array([[0.2482 + 0.3601], [0.02191]])
    np.testing.assert_allclose(s.apply(rel, "PfCand_chHad", ["pfCand_chHad_rel_pt"], "inner")[:, 0], [1.0, (0.02191 - 0.2482) / 0.3601], rtol=1e-5)
    np.testing.assert_allclose(s.apply(rel, "PfCand_chHad", ["pfCand_chHad_rel_pt"], "outer")[:, 0], [5.0, 0.0], rtol=1e-6)  # 6.54 σ clamped
    assert s.apply(np.ones((1, 1)), "PfCand_chHad", ["pfCand_chHad_valid"], "outer")[0, 0] == 1.0
    # features absent from the JSON pass through, listed
    assert s.apply(np.array([[3.0]]), "Muon", ["muon_rel_pt"], "inner")[0, 0] == 3.0
    assert "Muon/muon_rel_pt" in s.unscaled
    with pytest.warns(UserWarning, match="unscaled"):
        s.warn_unscaled()


def test_scaling_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Scaling.load(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        Scaling.load(bad)
    typo = tmp_path / "typo.json"
    typo.write_text(json.dumps({"TauFlat": {"tau_pt": {"global": {"mean": "fifty", "std": 1}}}}))
    with pytest.raises(ConfigError, match="tau_pt.global.mean"):
        Scaling.load(typo).apply(np.ones((1, 1)), "TauFlat", ["tau_pt"], "global")


def test_apply_scaling_matches_formula() -> None:
    rng = np.random.Generator(np.random.Philox(7))
    raw = rng.normal(3, 2, (500, 3))
    params = np.array([[3.0, 1.0, -2.0], [2.0, 0.5, 4.0], [-1.5, -np.inf, -0.5], [1.5, np.inf, 0.5]])
    x = apply_scaling(raw, params)
    want = np.clip((raw - params[0]) / params[1], params[2], params[3])
    np.testing.assert_allclose(x, want, rtol=1e-6)


def test_estimate_scaling_layout_and_values() -> None:
    from taucoffea.toy.generator import generate_taus

    arr = generate_taus("WJetsToLNu", 3000, seed=11)
    arr = arr[np.asarray(arr.tau_index) >= 0]  # rows without a reco tau hold lowest() sentinels
    spec = FeatureSpec()
    block = ColumnBlock.from_columns(arr, required_columns(spec))
    params = estimate_scaling(block, spec)
    pt = params["TauFlat"]["tau_pt"]["global"]
    raw_pt = np.asarray(arr.tau_pt, dtype=np.float64)
    assert pt["mean"] == pytest.approx(raw_pt.mean(), rel=1e-3)
    assert pt["std"] == pytest.approx(raw_pt.std(), rel=1e-3)
    assert set(params["PfCand_chHad"]["pfCand_chHad_rel_pt"]) == {"inner", "outer"}
    inner = params["PfCand_chHad"]["pfCand_chHad_rel_pt"]["inner"]
    outer = params["PfCand_chHad"]["pfCand_chHad_rel_pt"]["outer"]
    assert inner["mean"] > outer["mean"]  # signal-cone candidates carry more of the tau pT
    s = Scaling(params)
    x = s.apply(tau_features(block, spec), "TauFlat", spec.enabled("TauFlat"), "global")
    j = spec.enabled("TauFlat").index("tau_pt")
    assert abs(x[:, j].mean()) < 0.1 and abs(x[:, j].std() - 1.0) < 0.1


def test_column_block_slice_take_and_errors() -> None:
    import awkward as ak

    arr = ak.Array({"tau_pt": [1.0, 2.0, 3.0], "pfCand_pt": [[1.0], [], [2.0, 3.0]], "pfCand_eta": [[0.1], [], [0.2, 0.3]]})
    block = ColumnBlock.from_columns(arr, ["tau_pt", "pfCand_pt", "pfCand_eta"])
    assert block.counts("pfCand").tolist() == [1, 0, 2] and block.counts("ele").tolist() == [0, 0, 0]
    part = block.slice(1, 3)
    assert part.field("pfCand", "pt").tolist() == [2.0, 3.0] and part.counts("pfCand").tolist() == [0, 2]
    taken = block.take(np.array([2, 0]))
    assert taken.field("pfCand", "eta").tolist() == pytest.approx([0.2, 0.3, 0.1])
    both = ColumnBlock.concatenate([taken, part])
    assert both.n == 4 and both.counts("pfCand").tolist() == [2, 1, 0, 2]
    with pytest.raises(InputError, match="tau_eta"):
        ColumnBlock.from_columns(arr, ["tau_pt", "tau_eta"])
    with pytest.raises(InputError, match="pfCand_phi"):
        block.field("pfCand", "phi")
    mismatched = ak.Array({"pfCand_pt": [[1.0], []], "pfCand_eta": [[], [1.0]]})
    with pytest.raises(InputError, match="list lengths"):
        ColumnBlock.from_columns(mismatched, ["pfCand_pt", "pfCand_eta"])


def test_column_block_from_arrow_equals_from_awkward_and_errors(tmp_path) -> None:
    import awkward as ak
    import pyarrow.parquet as pq

    arr = ak.Array({"tau_pt": np.array([1.0, 2.0, 3.0], np.float32), "tau_n": np.array([1, 0, 2], np.int32),
                    "pfCand_pt": [[1.5], [], [2.5, 3.5]], "pfCand_eta": [[0.1], [], [0.2, 0.3]],
                    "ele_pt": [[], [4.0], []]})
    ak.to_parquet(arr, tmp_path / "b.parquet")
    table = pq.read_table(tmp_path / "b.parquet")
    names = ["tau_pt", "tau_n", "pfCand_pt", "pfCand_eta", "ele_pt"]
    a, b = ColumnBlock.from_arrow(table, names), ColumnBlock.from_columns(arr, names)
    assert a.n == b.n == 3 and a.flat.keys() == b.flat.keys() and a.lists.keys() == b.lists.keys()
    for k in a.flat:
        assert a.flat[k].dtype == b.flat[k].dtype and a.flat[k].tolist() == b.flat[k].tolist()
    for p in a.lists:
        assert a.lists[p].offsets.tolist() == b.lists[p].offsets.tolist()
        for k, v in a.lists[p].fields.items():
            assert v.dtype == b.lists[p].fields[k].dtype and v.tolist() == b.lists[p].fields[k].tolist()
    with pytest.raises(InputError, match=r"\['tau_eta'\] missing in 'x'"):
        ColumnBlock.from_arrow(table, ["tau_pt", "tau_eta"], source="'x'")
    ak.to_parquet(ak.Array({"pfCand_pt": [[1.0], []], "pfCand_eta": [[], [1.0]], "jets": [[1.0], []]}),
                  tmp_path / "bad.parquet")
    bad = pq.read_table(tmp_path / "bad.parquet")
    with pytest.raises(InputError, match="list lengths"):
        ColumnBlock.from_arrow(bad, ["pfCand_pt", "pfCand_eta"])
    with pytest.raises(InputError, match="'jets' is a list but not of a candidate collection"):
        ColumnBlock.from_arrow(bad, ["jets"])


def test_loader_errors_name_the_file(tmp_path) -> None:
    from taucoffea.ml.dataset import TauDataset, list_blocks
    from taucoffea.ml.inputs import InputBuilder
    from taucoffea.ml.toydata import write_training_files

    files = [str(f) for f in write_training_files(tmp_path / "sm", n_files=1, n_per_file=300, seed=2)]
    ds = TauDataset(list_blocks(files), InputBuilder("light"), 100, seed=1)
    assert ds[0][0]["input_tau"].shape[0] == 100
    import pyarrow.parquet as pq

    table = pq.read_table(files[0])
    pq.write_table(table.drop_columns(["pfCand_pt"]), files[0])  # a needed column gone
    ds = TauDataset(list_blocks(files), InputBuilder("light"), 100, seed=1)
    with pytest.raises(InputError, match=r"pfCand_pt.*missing in .*ShuffleMergeSpectral_0.parquet"):
        ds[0]
    blocks = list_blocks(files)
    Path(files[0]).write_bytes(b"PAR1" + b"\0" * 64)  # corrupt after the blocks were listed
    with pytest.raises(InputError, match="cannot read row group 0 of .*ShuffleMergeSpectral_0.parquet"):
        TauDataset(blocks, InputBuilder("light"), 100, seed=1)[0]


def test_feature_spec_rejects_unknown_names() -> None:
    with pytest.raises(ConfigError, match="unknown var_type 'TauFlatt'"):
        FeatureSpec({"TauFlatt": []})
    with pytest.raises(ConfigError, match="tau_ptt"):
        FeatureSpec({"TauFlat": ["tau_ptt"]})
    assert math.isclose(len(required_columns(FeatureSpec())), len(set(required_columns(FeatureSpec()))))


def test_real_scaling_stage_output_covers_every_feature(tmp_path) -> None:
    """The JSON of ``taucoffea scaling compute`` names exactly the features the loader uses."""
    stage = pytest.importorskip("taucoffea.stages.scaling")
    from pathlib import Path

    from taucoffea.execution.config import ExecutorConfig
    from taucoffea.ml.features import CELL_TYPES
    from taucoffea.ml.toydata import write_training_files

    files = write_training_files(tmp_path / "sm", n_files=1, n_per_file=1500, seed=8)
    config = Path(__file__).resolve().parents[1] / "configs" / "features" / "deeptau_v2.yaml"
    result = stage.run_scaling(config, [str(f) for f in files], tmp_path / "scaling",
                               executor=ExecutorConfig(executor="iterative", progress=False))
    path = next(p for p in result.outputs if p.name.startswith("scaling_params"))
    data = json.loads(Path(path).read_text())
    s = Scaling.load(path)
    spec = FeatureSpec()
    s.arrays("TauFlat", spec.enabled("TauFlat"), "global")
    for var_type in ("GridGlobal", *CELL_TYPES):
        for cone in ("inner", "outer"):
            s.arrays(var_type, spec.enabled(var_type), cone)
    low_stats = {f"{t}/{f}/{c}" for t, feats in data.items() for f, cones in feats.items()
                 for c, e in cones.items() if e.get("mean") is None}
    assert s.unscaled <= low_stats  # nothing missing by name; only "low statistics" entries pass through
    block = ColumnBlock.from_columns(__import__("awkward").from_parquet(files[0]), required_columns(spec))
    x = s.apply(tau_features(block, spec), "TauFlat", spec.enabled("TauFlat"), "global")
    assert np.isfinite(x).all() and np.abs(x).max() <= 5.0 + 1e-6
