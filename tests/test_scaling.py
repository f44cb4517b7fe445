"""Feature scaling: statistics against numpy, formulas, snapshots, merges, quantiles, plots."""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import awkward as ak
import numpy as np
import pytest

from taucoffea.algorithms.scaling import (
    ConeDefinition,
    Moments,
    QuantileHist,
    clamp_range,
    cone_masks,
    parameter_entry,
    quantile_levels,
    snapshot_plan,
    suspicious_flags,
)
from taucoffea.errors import InputError, OutputExistsError
from taucoffea.execution.config import ExecutorConfig
from taucoffea.columns.parquet import write_parquet
from taucoffea.stages.scaling import file_ids, load_scaling_params, merge_scaling_jobs, run_scaling

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "configs" / "features" / "deeptau_v2.yaml"
ITER = ExecutorConfig(executor="iterative", progress=False)

PF = {"var_names": {"eta": "pfCand_eta", "phi": "pfCand_phi"}, "cone_types": ["inner", "outer"]}
TAU = {"var_names": {"pt": "tau_pt", "eta": "tau_eta", "phi": "tau_phi"}, "cone_types": [None]}

#: A small config with every variable type, cuts, aliases and all scaling types.
TEST_CONFIG = {
    "Scaling_setup": {
        "version": "t",
        "cone_selection": {
            "TauFlat": TAU,
            "GridGlobal": TAU,
            "PfCand_electron": PF,
            "PfCand_muon": PF,
            "PfCand_chHad": PF,
            "PfCand_nHad": PF,
            "PfCand_gamma": PF,
            "Electron": {"var_names": {"eta": "ele_eta", "phi": "ele_phi"}, "cone_types": ["inner", "outer"]},
            "Muon": {"var_names": {"eta": "muon_eta", "phi": "muon_phi"}, "cone_types": ["inner", "outer"]},
        },
    },
    "Features_all": {
        "TauFlat": [
            {"rho": [None, None, "normal", [-5, 5]]},
            {"tau_dxy_sig": ["tau_index >= 0 && tau_dxy_error > 0", {"tau_dxy_sig": "abs(tau_dxy)/tau_dxy_error"}, "normal", [-5, 5]]},
            {"tau_pt": ["tau_index >= 0", None, "linear", [20.0, 1000.0]]},
            {"tau_charge": [None, None, "categorical"]},
            {"tau_mass": [None, None, "no scaling"]},
        ],
        "GridGlobal": [{"tau_pt": ["tau_index >= 0", None, "normal"]}],
        "PfCand_electron": [{"ele_rel_pt": ["pfCand_particleType == 2", {"ele_rel_pt": "pfCand_pt/tau_pt"}, "normal", [-5, 5]]}],
        "PfCand_muon": [
            {"mu_dz": ["pfCand_particleType == 3 && pfCand_hasTrackDetails == 1", {"mu_dz": "pfCand_dz"}, "normal",
                       {"inner": [-3, 3], "outer": [-4, 4]}]},
            # a longer cut sharing the one above as its prefix (narrowed from its selection)
            {"mu_ndof_dxy": ["pfCand_particleType == 3 && pfCand_hasTrackDetails == 1 && (pfCand_track_ndof > 0)",
                             {"mu_ndof_dxy": "pfCand_dxy"}, "normal"]},
        ],
        "PfCand_chHad": [
            {"ch_rel_pt": ["pfCand_particleType == 1", {"ch_rel_pt": "pfCand_pt/tau_pt"}, "normal", [-5, 5]]},
            {"ch_dphi": ["pfCand_particleType == 1", {"ch_dphi": "atan2(sin(pfCand_phi - tau_phi), cos(pfCand_phi - tau_phi))"},
                         "linear", {"inner": [-0.1, 0.1], "outer": [-0.5, 0.5]}]},
        ],
        "PfCand_nHad": [
            {"nh_rel_pt": ["pfCand_particleType == 5", {"nh_rel_pt": "pfCand_pt/tau_pt"}, "normal"]},
            # an || at the top level: the cut is evaluated whole
            {"nh_or": ["pfCand_particleType == 5 || pfCand_particleType in [4] && pfCand_pt > 2", {"nh_or": "pfCand_pt"}, "normal"]},
        ],
        "PfCand_gamma": [{"ph_rel_pt": ["pfCand_particleType == 4", {"ph_rel_pt": "pfCand_pt/tau_pt"}, "normal"]}],
        "Electron": [
            {"ele_rel": [None, {"ele_rel": "ele_pt/tau_pt"}, "normal"]},
            {"ele_eSuperClusterOverP": [None, None, "normal", [-5, 5]]},
        ],
        "Muon": [
            {"muon_rel": [None, {"muon_rel": "muon_pt/tau_pt"}, "normal"]},
            {"muon_n_matches_DT_1": [None, None, "normal", [-5, 5]]},
        ],
    },
}


@pytest.fixture(scope="module")
def toy_files(tmp_path_factory) -> Path:
    """Five toy parquet files (DY / ttbar alternating, 700 taus each)."""
    from taucoffea.toy.generator import generate_taus

    root = tmp_path_factory.mktemp("scaling_toy")
    for i in range(5):
        ds = "DYJetsToLL_M-50" if i % 2 == 0 else "TTToSemiLeptonic"
        write_parquet(generate_taus(ds, 700, seed=11, file_index=i), root / f"ShuffleMergeSpectral_{i}.parquet")
    return root


def _files(root: Path) -> list[Path]:
    return sorted(root.glob("*.parquet"), key=lambda p: int(p.stem.split("_")[-1]))


# --------------------------------------------------------------------------------------------
# an independent numpy/awkward oracle of the values the reference accumulates (§5.3)


def _oracle_values(a: ak.Array) -> dict[tuple[str, str, str], np.ndarray]:
    out: dict[tuple[str, str, str], np.ndarray] = {}
    valid = ak.to_numpy(a.tau_index >= 0)
    out[("TauFlat", "rho", "global")] = ak.to_numpy(a.rho).astype(float)
    sel = valid & ak.to_numpy(a.tau_dxy_error > 0)
    # float32 columns: the alias is computed in float32, as the C++ loader does
    out[("TauFlat", "tau_dxy_sig", "global")] = (np.abs(ak.to_numpy(a.tau_dxy)[sel]) / ak.to_numpy(a.tau_dxy_error)[sel]).astype(float)
    out[("TauFlat", "tau_pt", "global")] = ak.to_numpy(a.tau_pt)[valid].astype(float)
    out[("GridGlobal", "tau_pt", "global")] = ak.to_numpy(a.tau_pt)[valid].astype(float)

    def cones(eta, phi):
        tpt, teta, tphi = (ak.broadcast_arrays(a[c], eta)[0] for c in ("tau_pt", "tau_eta", "tau_phi"))
        f64 = lambda v: ak.values_astype(v, np.float64)  # noqa: E731
        deta = f64(eta) - f64(teta)
        dphi = np.arctan2(np.sin(f64(phi) - f64(tphi)), np.cos(f64(phi) - f64(tphi)))
        dr = np.sqrt(deta**2 + dphi**2)
        rsig = np.maximum(3.0 / np.maximum(tpt, 30.0), 0.05)
        return {"inner": dr < rsig, "outer": (dr >= rsig) & (dr < 0.5)}, tpt, tphi

    pf, tpt, tphi = cones(a.pfCand_eta, a.pfCand_phi)
    ptype = a.pfCand_particleType
    flat = lambda x: ak.to_numpy(ak.flatten(x)).astype(float)  # noqa: E731
    for t, name, code in (("PfCand_electron", "ele_rel_pt", 2), ("PfCand_chHad", "ch_rel_pt", 1),
                          ("PfCand_nHad", "nh_rel_pt", 5), ("PfCand_gamma", "ph_rel_pt", 4)):
        for c, m in pf.items():
            out[(t, name, c)] = flat((a.pfCand_pt / tpt)[m & (ptype == code)])
    for c, m in pf.items():
        out[("PfCand_muon", "mu_dz", c)] = flat(a.pfCand_dz[m & (ptype == 3) & (a.pfCand_hasTrackDetails == 1)])
        ndof = m & (ptype == 3) & (a.pfCand_hasTrackDetails == 1) & (a.pfCand_track_ndof > 0)
        out[("PfCand_muon", "mu_ndof_dxy", c)] = flat(a.pfCand_dxy[ndof])
        out[("PfCand_nHad", "nh_or", c)] = flat(a.pfCand_pt[m & ((ptype == 5) | ((ptype == 4) & (a.pfCand_pt > 2)))])
        d = np.arctan2(np.sin(a.pfCand_phi - tphi), np.cos(a.pfCand_phi - tphi))
        out[("PfCand_chHad", "ch_dphi", c)] = flat(d[m & (ptype == 1)])
    for t, prefix, extra in (("Electron", "ele", "ele_eSuperClusterOverP"), ("Muon", "muon", "muon_n_matches_DT_1")):
        cm, tpt_l, _ = cones(a[f"{prefix}_eta"], a[f"{prefix}_phi"])
        for c, m in cm.items():
            out[(t, f"{prefix}_rel", c)] = flat((a[f"{prefix}_pt"] / tpt_l)[m])
            out[(t, extra, c)] = flat(a[extra][m])
    return out


def _read_all(files: list[Path]) -> ak.Array:
    return ak.concatenate([ak.from_parquet(f) for f in files])


@pytest.mark.parametrize("chunksize", [211, 1000, 1_000_000])
def test_parameters_equal_numpy_for_every_type_and_cone(toy_files, chunksize):
    result = run_scaling(TEST_CONFIG, toy_files, None, executor=ITER, chunksize=chunksize)
    expected = _oracle_values(_read_all(_files(toy_files)))
    normal = {k for k in expected if k[1] not in ("tau_pt", "ch_dphi") or k[0] == "GridGlobal"}
    checked_types = set()
    for key in normal:
        t, f, c = key
        x = expected[key]
        entry = result.params[t][f][c]
        assert entry["num"] == x.size, key
        if x.size < 2:
            assert entry["mean"] is None
            continue
        checked_types.add((t, c))
        assert entry["mean"] == pytest.approx(np.mean(x), rel=1e-9, abs=1e-300), key
        assert entry["std"] == pytest.approx(np.std(x), rel=1e-9), key
        assert entry["sqmean"] == pytest.approx(np.mean(x * x), rel=1e-9), key
    # every type and every cone saw data
    assert {t for t, _ in checked_types} == set(TEST_CONFIG["Features_all"])
    assert {c for _, c in checked_types} == {"global", "inner", "outer"}
    # quantiles (all files) of a linear feature, within the stated histogram accuracy
    q = result.quantiles["PfCand_chHad"]["ch_dphi"]["outer"]["all"]
    x = expected[("PfCand_chHad", "ch_dphi", "outer")]
    assert q["min"] == x.min() and q["max"] == x.max()
    assert q["median"] == pytest.approx(np.quantile(x, 0.5), rel=2**-7, abs=1e-12)


def test_formulas_of_the_parameter_json(toy_files):
    result = run_scaling(TEST_CONFIG, toy_files, None, executor=ITER, file_range="0:1")
    p = result.params
    # linear [a, b] maps a → −1 and b → +1; list limits give the "global" cone only
    lin = p["TauFlat"]["tau_pt"]["global"]
    assert (20.0 - lin["mean"]) / lin["std"] == -1.0 and (1000.0 - lin["mean"]) / lin["std"] == 1.0
    assert (lin["lim_min"], lin["lim_max"], lin["sqmean"], lin["num"]) == (-1.0, 1.0, None, None)
    # per-cone linear limits: one entry per cone
    assert set(p["PfCand_chHad"]["ch_dphi"]) == {"inner", "outer"}
    assert p["PfCand_chHad"]["ch_dphi"]["inner"]["std"] == pytest.approx(0.1)
    assert p["PfCand_chHad"]["ch_dphi"]["outer"]["mean"] == 0.0
    # no_scaling and categorical: identity, infinite limits as the reference's strings
    for f in ("tau_charge", "tau_mass"):
        assert p["TauFlat"][f] == {"global": {"mean": 0.0, "std": 1.0, "lim_min": "-inf", "lim_max": "inf", "sqmean": None, "num": None}}
    # normal: limits in sigma units per cone, or "-inf"/"inf" when none were given
    assert (p["PfCand_muon"]["mu_dz"]["inner"]["lim_min"], p["PfCand_muon"]["mu_dz"]["outer"]["lim_max"]) == (-3.0, 4.0)
    assert (p["GridGlobal"]["tau_pt"]["global"]["lim_min"], p["GridGlobal"]["tau_pt"]["global"]["lim_max"]) == ("-inf", "inf")
    e = p["TauFlat"]["rho"]["global"]
    assert e["sqmean"] == pytest.approx(e["std"] ** 2 + e["mean"] ** 2, rel=1e-12)


def test_parameter_entry_unit():
    assert parameter_entry("linear", (-2.3, 2.3)) == {"mean": 0.0, "std": 2.3, "lim_min": -1.0, "lim_max": 1.0, "sqmean": None, "num": None}
    m = Moments.from_values(np.array([1.0, 2.0, 3.0, 4.0]))
    e = parameter_entry("normal", (-5.0, 5.0), m)
    assert (e["mean"], e["num"], e["lim_min"]) == (2.5, 4, -5.0)
    assert e["std"] == pytest.approx(math.sqrt(1.25)) and e["sqmean"] == pytest.approx(7.5)
    low = parameter_entry("normal", None, Moments.from_values(np.array([1.0])))
    assert low["mean"] is None and low["std"] is None and low["num"] == 1
    with pytest.raises(ValueError):
        parameter_entry("gaussian", None)


def test_load_scaling_params_turns_strings_into_floats(toy_files, tmp_path):
    run_scaling(TEST_CONFIG, toy_files, tmp_path / "o", executor=ITER, file_range="0:1")
    data = load_scaling_params(tmp_path / "o" / "scaling_params_vt.json", expand_cones=True)
    assert data["TauFlat"]["tau_charge"]["global"]["lim_min"] == -math.inf
    # a single-range entry of a cone type is duplicated into inner and outer
    raw = json.loads((tmp_path / "o" / "scaling_params_vt.json").read_text())
    assert set(raw["PfCand_chHad"]["ch_rel_pt"]) == {"inner", "outer"}
    assert set(data["TauFlat"]["tau_pt"]) == {"global"}


# --------------------------------------------------------------------------------------------
# snapshots, merges, determinism


def _params(folder: Path, name: str) -> str:
    return (folder / name).read_text()


def test_snapshots_hold_the_right_files(toy_files, tmp_path):
    out = tmp_path / "all"
    result = run_scaling(TEST_CONFIG, toy_files, out, executor=ITER, log_step=2)
    assert [(k, n) for k, n, _ in result.snapshots] == [(0, 2), (1, 4)]
    names = sorted(p.name for p in out.glob("scaling_params_vt*.json"))
    assert names == ["scaling_params_vt.json", "scaling_params_vt_log_0.json", "scaling_params_vt_log_1.json"]
    for k, n in ((0, 2), (1, 4)):
        part = tmp_path / f"first{n}"
        run_scaling(TEST_CONFIG, toy_files, part, executor=ITER, file_range=f"0:{n}")
        assert _params(out, f"scaling_params_vt_log_{k}.json") == _params(part, "scaling_params_vt.json")
    report = json.loads((out / "scaling_report_vt.json").read_text())
    assert report["snapshots"] == [{"log": 0, "files": 2}, {"log": 1, "files": 4}]
    assert [f["id"] for f in report["files"]] == ["0", "1", "2", "3", "4"]
    assert sum(f["entries"] for f in report["files"]) == 5 * 700
    with pytest.raises(OutputExistsError):
        run_scaling(TEST_CONFIG, toy_files, out, executor=ITER)


def test_merge_of_split_runs_equals_one_run(toy_files, tmp_path):
    single = tmp_path / "single"
    run_scaling(TEST_CONFIG, toy_files, single, executor=ITER, chunksize=300)
    jobs = []
    for i, rng in enumerate(("0:2", "2:4", "4:5")):
        jobs.append(tmp_path / f"job{i}")
        run_scaling(TEST_CONFIG, toy_files, jobs[-1], executor=ITER, chunksize=300, file_range=rng)
    merged = tmp_path / "merged"
    result = merge_scaling_jobs([str(tmp_path / "job*")], merged, step=1)
    for name in ("scaling_params_vt.json", "quantile_params_vt.json"):
        assert _params(merged, name) == _params(single, name), name
    assert (merged / "scaling_hists_vt.npz").read_bytes() == (single / "scaling_hists_vt.npz").read_bytes()
    # --step 1: after the first job, after the first two jobs
    assert [(k, n) for k, n, _ in result.snapshots] == [(0, 1), (1, 2)]
    assert _params(merged, "scaling_params_vt_log_0.json") == _params(jobs[0], "scaling_params_vt.json")
    two = tmp_path / "two"
    run_scaling(TEST_CONFIG, toy_files, two, executor=ITER, chunksize=300, file_range="0:4")
    assert _params(merged, "scaling_params_vt_log_1.json") == _params(two, "scaling_params_vt.json")
    # a merged output merges again; overlapping jobs are refused
    merge_scaling_jobs([merged], tmp_path / "again")
    assert _params(tmp_path / "again", "scaling_params_vt.json") == _params(single, "scaling_params_vt.json")
    with pytest.raises(Exception, match="is in both"):
        merge_scaling_jobs([jobs[0], single], tmp_path / "bad")


def test_merge_refuses_different_settings(toy_files, tmp_path):
    import copy

    run_scaling(TEST_CONFIG, toy_files, tmp_path / "a", executor=ITER, file_range="0:1")
    other = copy.deepcopy(TEST_CONFIG)
    other["Features_all"]["TauFlat"][0]["rho"][3] = [-4, 4]
    run_scaling(other, toy_files, tmp_path / "b", executor=ITER, file_range="1:2")
    with pytest.raises(Exception, match=r"different feature settings: feature 'TauFlat/rho'"):
        merge_scaling_jobs([tmp_path / "a", tmp_path / "b"], tmp_path / "m")


def test_chunking_changes_only_the_last_bits(toy_files):
    a = run_scaling(TEST_CONFIG, toy_files, None, executor=ITER, chunksize=173)
    b = run_scaling(TEST_CONFIG, toy_files, None, executor=ITER, chunksize=100_000)
    for t, feats in a.params.items():
        for f, cones in feats.items():
            for c, e in cones.items():
                if e["num"] is not None and e["mean"] is not None:
                    other = b.params[t][f][c]
                    assert e["num"] == other["num"]
                    assert e["mean"] == pytest.approx(other["mean"], rel=1e-13, abs=1e-300)
                    assert e["std"] == pytest.approx(other["std"], rel=1e-12)
    # quantile histograms are integer counts and exact min/max: identical whatever the chunking
    assert a.quantiles == b.quantiles


def test_whole_files_come_back_summarised(toy_files):
    """A chunk that is its whole file ships the file's quantile summary and adds its histograms
    to the running total only, so the driver's accumulator does not grow by a histogram set per
    file; a file read in parts ships per-file histograms, summarised on the driver. Both give
    the same numbers."""
    from coffea import processor
    from coffea.nanoevents import BaseSchema

    from taucoffea.processors.scaling import ScalingProcessor

    files = [str(f) for f in _files(toy_files)[:2]]

    def run(chunksize: int) -> dict:
        runner = processor.Runner(executor=processor.IterativeExecutor(status=False), schema=BaseSchema,
                                  format="parquet", chunksize=chunksize)
        return runner({"toy": files}, ScalingProcessor(TEST_CONFIG), treename="")

    whole, parts = run(100_000), run(250)  # toy files hold 700 taus
    assert "hists" not in parts
    total = {}
    for f in files:
        assert "hists" not in whole["files"][f] and "summaries" not in parts["files"][f]
        for key, h in parts["files"][f]["hists"].items():
            assert whole["files"][f]["summaries"][key] == h.summary()
            total[key] = total[key] + h if key in total else h
    assert total.keys() == whole["hists"].keys()
    assert all(total[k] == whole["hists"][k] for k in total)


def test_whole_root_files_come_back_summarised_through_the_runner(tmp_path):
    """ROOT chunks learn their file's entry count from the runner's metadata (``file_entries``),
    so a whole-file ROOT chunk takes the summarised path too; the numbers equal a run in parts."""
    from taucoffea.execution.runner import run_processor
    from taucoffea.execution.session import ExecutionSession
    from taucoffea.processors.scaling import ScalingProcessor
    from taucoffea.scaling.config import load_feature_config
    from taucoffea.toy.generator import generate_toy

    generate_toy(tmp_path / "root", seed=4, size=1200, datasets=["DYJetsToLL_M-50"], max_per_file=400, progress=False)
    files = sorted(str(f) for f in (tmp_path / "root").rglob("*.root"))
    assert len(files) == 3
    proc = ScalingProcessor(load_feature_config(SHIPPED))

    def run(chunksize: int) -> dict:
        with ExecutionSession(ITER) as session:
            out, _ = run_processor(session, proc, {"toy": files}, treename="taus", stage="t", stage_config={},
                                   branches=proc.columns, chunksize=chunksize)
        return out

    whole, parts = run(100_000), run(150)
    assert "hists" not in parts
    for f in files:
        assert "hists" not in whole["files"][f] and "summaries" not in parts["files"][f]
        for key, h in parts["files"][f]["hists"].items():
            assert whole["files"][f]["summaries"][key] == h.summary()
    a = run_scaling(SHIPPED, tmp_path / "root", None, executor=ITER, chunksize=100_000)
    b = run_scaling(SHIPPED, tmp_path / "root", None, executor=ITER, chunksize=150)
    assert a.quantiles == b.quantiles


def _small_toy(data: Path) -> None:
    from taucoffea.toy.generator import generate_taus

    for i in range(3):
        write_parquet(generate_taus("DYJetsToLL_M-50", 250, seed=5, file_index=i), data / f"ShuffleMergeSpectral_{i}.parquet")


def test_parsl_run_writes_the_same_bytes_as_iterative(tmp_path):
    data = tmp_path / "in"
    _small_toy(data)
    run_scaling(SHIPPED, data, tmp_path / "iter", executor=ITER, log_step=2, chunksize=100)
    parsl_cfg = ExecutorConfig(executor="parsl", workers=1, progress=False)
    run_scaling(SHIPPED, data, tmp_path / "parsl", executor=parsl_cfg, log_step=2, chunksize=100)
    for name in ("scaling_params_v1.json", "scaling_params_v1_log_0.json", "quantile_params_v1.json",
                 "scaling_sums_v1.json", "scaling_hists_v1.npz"):
        assert (tmp_path / "parsl" / name).read_bytes() == (tmp_path / "iter" / name).read_bytes(), name


@pytest.mark.slow
def test_runner_script_matches_stage(tmp_path):
    """processors/feature_scaling.py (plain Runner + ParslExecutor) writes the stage's bytes."""
    data = tmp_path / "in"
    _small_toy(data)
    run_scaling(SHIPPED, data, tmp_path / "stage", executor=ITER, log_step=1, chunksize=100)
    proc = subprocess.run(
        [sys.executable, str(REPO / "processors" / "feature_scaling.py"), str(SHIPPED), str(data), str(tmp_path / "script"),
         "--workers", "1", "--chunksize", "100", "--log-step", "1"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("scaling_params_v1.json", "scaling_params_v1_log_0.json", "scaling_params_v1_log_1.json",
                 "quantile_params_v1.json", "scaling_sums_v1.json"):
        assert (tmp_path / "script" / name).read_bytes() == (tmp_path / "stage" / name).read_bytes(), name


def test_root_tautuples_give_the_parquet_numbers(tmp_path):
    from taucoffea.toy.generator import generate_taus, generate_toy

    generate_toy(tmp_path / "root", seed=4, size=1500, datasets=["DYJetsToLL_M-50"], progress=False)
    write_parquet(generate_taus("DYJetsToLL_M-50", 1500, seed=4, file_index=0), tmp_path / "pq" / "eventTuple_0.parquet")
    a = run_scaling(SHIPPED, tmp_path / "root", None, executor=ITER, chunksize=500)
    b = run_scaling(SHIPPED, tmp_path / "pq", None, executor=ITER, chunksize=500)
    assert a.files[0].endswith(".root") and b.files[0].endswith(".parquet")
    assert a.params == b.params and a.quantiles == b.quantiles


def test_input_discovery_sorts_naturally(tmp_path):
    from taucoffea.stages.scaling import find_input_files

    for k in (10, 2, 1):
        (tmp_path / f"ShuffleMergeSpectral_{k}.parquet").write_bytes(b"")
    files, fmt = find_input_files(str(tmp_path / "ShuffleMergeSpectral_*.parquet"))
    assert fmt == "parquet" and [Path(f).name for f in files] == [f"ShuffleMergeSpectral_{k}.parquet" for k in (1, 2, 10)]
    with pytest.raises(InputError, match="no input files match"):
        find_input_files(str(tmp_path / "nothing_*.root"))


# --------------------------------------------------------------------------------------------
# non-finite values and input errors


def _mini(path: Path, n: int, seed: int, *, inject: bool) -> dict[str, np.ndarray]:
    rng = np.random.Generator(np.random.Philox(seed))
    counts = rng.integers(0, 4, n)
    m = int(counts.sum())
    x = rng.normal(3.0, 2.0, n)
    y = rng.normal(-1.0, 0.5, m)
    if inject:
        x[:3] = [np.nan, np.inf, -np.inf]
        x[3] = np.nan
        y[:2] = [np.inf, np.nan]
    offsets = np.concatenate([[0], np.cumsum(counts)])
    tau_eta = rng.uniform(-2, 2, n)
    c_eta = np.repeat(tau_eta, counts) + rng.uniform(-0.04, 0.04, m)  # all inside the inner cone
    arr = ak.Array({
        "tau_pt": rng.uniform(20, 100, n), "tau_eta": tau_eta, "tau_phi": np.zeros(n), "x": x,
        "c_eta": ak.unflatten(c_eta, counts), "c_phi": ak.unflatten(np.zeros(m), counts), "c_y": ak.unflatten(y, counts),
    })
    write_parquet(arr, path)
    return {"x": x, "y": y, "offsets": offsets}


NONFINITE_CONFIG = {
    "Scaling_setup": {"version": 2, "cone_selection": {
        "Flat": TAU, "Cands": {"var_names": {"eta": "c_eta", "phi": "c_phi"}, "cone_types": ["inner", "outer"]}}},
    "Features_all": {
        "Flat": [{"x": [None, None, "normal", [-5, 5]]}, {"x_lin": [None, {"x_lin": "x"}, "linear", [0, 6]]}],
        "Cands": [{"c_y": [None, None, "normal"]}],
    },
}


def test_nonfinite_values_are_counted_and_excluded(tmp_path):
    a = _mini(tmp_path / "in" / "f_0.parquet", 400, 1, inject=True)
    b = _mini(tmp_path / "in" / "f_1.parquet", 300, 2, inject=False)
    result = run_scaling(NONFINITE_CONFIG, tmp_path / "in", tmp_path / "out", executor=ITER, chunksize=128)
    bad = result.nonfinite()
    assert bad[("Flat", "x", "global")] == [2, 1, 1]
    assert bad[("Flat", "x_lin", "global")] == [2, 1, 1]
    assert bad[("Cands", "c_y", "inner")] == [1, 1, 0]
    assert ("Cands", "c_y", "outer") not in bad
    x = np.concatenate([a["x"], b["x"]])
    entry = result.params["Flat"]["x"]["global"]
    assert entry["num"] == np.isfinite(x).sum()
    assert entry["mean"] == pytest.approx(np.mean(x[np.isfinite(x)]), rel=1e-12)
    assert entry["std"] == pytest.approx(np.std(x[np.isfinite(x)]), rel=1e-12)
    y = np.concatenate([a["y"], b["y"]])
    assert result.params["Cands"]["c_y"]["inner"]["mean"] == pytest.approx(np.mean(y[np.isfinite(y)]), rel=1e-12)
    assert result.params["Cands"]["c_y"]["outer"]["num"] == 0 and result.params["Cands"]["c_y"]["outer"]["mean"] is None
    report = json.loads((tmp_path / "out" / "scaling_report_v2.json").read_text())
    assert report["nonfinite_excluded"]["Flat"]["x"]["global"] == {"nan": 2, "posinf": 1, "neginf": 1}
    assert "Cands/c_y/outer" in report["low_statistics"]
    assert "2 NaN, 1 +inf, 1 -inf excluded" in result.summary()


def test_missing_column_and_wrong_space_are_reported(tmp_path):
    _mini(tmp_path / "in" / "f_0.parquet", 50, 1, inject=False)
    import copy

    cfg = copy.deepcopy(NONFINITE_CONFIG)
    cfg["Features_all"]["Flat"].append({"tau_nope": [None, None, "normal"]})
    with pytest.raises(InputError, match=r"f_0\.parquet: missing column\(s\) \['tau_nope'\]"):
        run_scaling(cfg, tmp_path / "in", None, executor=ITER)
    cfg = copy.deepcopy(NONFINITE_CONFIG)
    cfg["Features_all"]["Flat"].append({"c_y": [None, None, "normal"]})
    with pytest.raises(InputError, match=r"var type 'Flat' has one entry per tau, but column 'c_y' is a list"):
        run_scaling(cfg, tmp_path / "in", None, executor=ITER)


# --------------------------------------------------------------------------------------------
# pure algorithms


def test_moments_are_exact_mergeable_and_stable():
    rng = np.random.Generator(np.random.Philox(7))
    x = 1e6 + rng.normal(0.0, 1.0, 30_000)  # mean ≫ std: a naive Σx² − (Σx)²/n loses ~12 digits
    parts = [Moments.from_values(p) for p in np.array_split(x, 7)]
    forward = Moments.total(parts)
    backward = Moments.total(reversed(parts))
    nested = (parts[0] + parts[1]) + Moments.total(parts[2:])
    assert forward == backward == nested  # exact rationals: no order dependence at all
    assert forward.mean == pytest.approx(np.mean(x), rel=1e-14)
    assert forward.std == pytest.approx(np.std(x), rel=1e-9)
    whole = Moments.from_values(x)
    assert whole.std == pytest.approx(forward.std, rel=1e-9)
    assert Moments.from_json(json.loads(json.dumps(forward.to_json()))) == forward
    assert isinstance(forward.s1, Fraction)
    m = Moments.from_values(np.array([1.0, np.nan, np.inf, -np.inf, 3.0]))
    assert (m.n, m.mean, m.nan, m.posinf, m.neginf) == (2, 2.0, 1, 1, 1)
    assert Moments().mean is None and Moments().std is None


def test_quantile_levels_are_the_reference_sigmas():
    levels = quantile_levels()
    for k, left in ((1, 0.158655), (2, 0.0227501), (3, 0.0013499), (5, 2.8665e-7)):
        assert levels[f"{k}sigma"][0] == pytest.approx(left, rel=1e-5)
        assert levels[f"{k}sigma"][1] == 1.0 - levels[f"{k}sigma"][0]


def test_quantile_hist_accuracy_and_merging():
    rng = np.random.Generator(np.random.Philox(3))
    probs = [0.5] + [p for pair in quantile_levels().values() for p in pair]
    for x in (rng.lognormal(0.0, 2.0, 50_000), -rng.exponential(3.0, 20_000), rng.normal(0.0, 1e-3, 3000)):
        h = QuantileHist.from_values(x)
        exact = np.quantile(x, probs)
        # stated bound: bins are 2^-7 wide relative to the value
        assert np.all(np.abs(h.quantiles(probs) - exact) <= 2.0**-7 * np.abs(exact) + 1e-300)
        assert h.summary()["min"] == x.min() and h.summary()["max"] == x.max()
        parts = np.array_split(x, 5)
        merged = QuantileHist.from_values(parts[0])
        for p in parts[1:]:
            merged = merged + QuantileHist.from_values(p)
        assert merged == h
    # integer-valued features (|x| < 256) are exact, including the "left == right" cases
    k = rng.integers(-3, 200, 40_000).astype(float)
    k[:36_000] = 0.0  # 90 % zeros: the 1σ and 2σ-left quantiles are all 0
    hk = QuantileHist.from_values(k)
    np.testing.assert_array_equal(hk.quantiles(probs), np.quantile(k, probs))
    s = hk.summary()
    assert s["1sigma"]["left"] == s["1sigma"]["right"] == s["2sigma"]["left"] == 0.0
    assert s["2sigma"]["right"] > 0
    assert QuantileHist.from_values(np.array([np.nan])).summary()["median"] is None


def test_suspicious_flags_on_constructed_quantiles():
    def q(l1, r1, l2, r2, l3=-3.0, r3=3.0, l5=-5.0, r5=5.0):
        return {"median": 0.0, "min": -9.0, "max": 9.0, "1sigma": {"left": l1, "right": r1},
                "2sigma": {"left": l2, "right": r2}, "3sigma": {"left": l3, "right": r3}, "5sigma": {"left": l5, "right": r5}}

    healthy = suspicious_flags((-5.0, 5.0), q(-1, 1, -2, 2))
    assert not any(healthy.values())
    narrow = suspicious_flags((-1.5, 1.5), q(-1, 1, -2, 2))
    assert narrow["left_within"] and narrow["right_within"] and not narrow["one_sigma_empty"]
    assert suspicious_flags((-5.0, 1.0), q(-1, 1, -2, 2)) == {**healthy, "right_within": True}
    spike = suspicious_flags((-5.0, 5.0), q(0, 0, 0, 0, 0, 0, -1, 2))
    assert spike["one_sigma_empty"] and spike["two_sigma_empty"] and spike["three_sigma_empty"] and not spike["five_sigma_empty"]
    # clamp ranges: linear gives back [a, b]; infinite limits stay infinite instead of crashing
    lin = parameter_entry("linear", (20.0, 1000.0))
    assert clamp_range(lin) == (20.0, 1000.0)
    assert clamp_range({"mean": 2.0, "std": 3.0, "lim_min": "-inf", "lim_max": 5.0}) == (-math.inf, 17.0)
    assert not suspicious_flags((-math.inf, math.inf), q(-1, 1, -2, 2))["left_within"]
    assert clamp_range({"mean": None, "std": None, "lim_min": -5, "lim_max": 5}) is None


def test_cone_masks_boundaries_and_phi_wrap():
    cone = ConeDefinition()
    tau_pt = np.full(6, 20.0)  # r_sig = 3/30 = 0.1
    tau_eta = np.zeros(6)
    tau_phi = np.array([0.0, 0.0, 0.0, 0.0, 3.1, -3.1])
    eta = np.array([0.05, 0.1, 0.3, 0.5, 0.0, 0.0])
    phi = np.array([0.0, 0.0, 0.0, 0.0, -3.1, 3.1])  # last two: Δφ wraps to ±0.083
    inner, outer = cone_masks(tau_pt, tau_eta, tau_phi, eta, phi, cone)
    assert inner.tolist() == [True, False, False, False, True, True]  # ΔR < r_sig (loader convention)
    assert outer.tolist() == [False, True, True, False, False, False]  # r_sig ≤ ΔR < 0.5
    big = cone_masks(np.array([1000.0]), np.zeros(1), np.zeros(1), np.array([0.049]), np.zeros(1), cone)
    assert big[0].tolist() == [True]  # floor of the radius at 0.05


@pytest.mark.parametrize("n", range(1, 13))
@pytest.mark.parametrize("step", [1, 2, 3, 5])
def test_snapshot_plan_matches_reference_job_merge(n, step):
    plan = snapshot_plan(n, step)
    reference = [(k, st + step) for k, st in enumerate(range(0, n - step, step))]  # merge_feature_scaling_jobs --step
    assert plan[:-1] == reference
    assert plan[-1] == (None, n)


def test_file_ids():
    assert file_ids(["/a/ShuffleMergeSpectral_12.parquet", "/a/ShuffleMergeSpectral_2.root"]) == {
        "/a/ShuffleMergeSpectral_12.parquet": "12", "/a/ShuffleMergeSpectral_2.root": "2"}
    clash = file_ids(["/d/A/eventTuple_0.root", "/d/B/eventTuple_0.root"])
    assert clash == {"/d/A/eventTuple_0.root": "A/eventTuple_0", "/d/B/eventTuple_0.root": "B/eventTuple_0"}


# --------------------------------------------------------------------------------------------
# CLI and plots


def test_cli_compute_merge_and_plots(toy_files, tmp_path):
    from taucoffea.cli import scaling as cli
    from taucoffea.plotting.scaling import (
        add_quantile_ranges_arguments,
        add_scaling_convergence_arguments,
        convergence_changes,
        quantile_ranges_cli,
        scaling_convergence_cli,
    )

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    base = ["--cfg", str(SHIPPED), "--executor", "iterative", "--quiet"]
    for i, rng in enumerate(("0:3", "3:5")):
        args = parser.parse_args(["compute", *base, "--input", str(toy_files), "--output", str(tmp_path / f"j{i}"),
                                  "--file-range", rng, "--log-step", "1", "--var-types", "TauFlat", "PfCand_nHad"])
        assert cli.run(args) == 0
    with pytest.raises(OutputExistsError):
        cli.run(parser.parse_args(["compute", *base, "--input", str(toy_files), "--output", str(tmp_path / "j0")]))
    assert cli.run(parser.parse_args(["merge", "--input", str(tmp_path / "j0"), str(tmp_path / "j1"),
                                      "--output", str(tmp_path / "m"), "--step", "1"])) == 0
    params = json.loads((tmp_path / "j0" / "scaling_params_v1.json").read_text())
    assert set(params) == {"TauFlat", "PfCand_nHad"}

    p = argparse.ArgumentParser()
    p.add_argument("--input")
    p.add_argument("--output")
    add_scaling_convergence_arguments(p)
    args = p.parse_args(["--input", str(tmp_path / "j0"), "--output", str(tmp_path / "conv"), "--var-types", "TauFlat"])
    assert scaling_convergence_cli(args) == 0
    assert (tmp_path / "conv" / "TauFlat_global.png").stat().st_size > 20_000
    assert (tmp_path / "conv" / "TauFlat_global.pdf").exists()

    p = argparse.ArgumentParser()
    p.add_argument("--input")
    p.add_argument("--output")
    add_quantile_ranges_arguments(p)
    args = p.parse_args(["--input", str(tmp_path / "m"), "--output", str(tmp_path / "qr"), "--file-id", "4",
                         "--var-types", "PfCand_nHad"])
    assert quantile_ranges_cli(args) == 0
    records = json.loads((tmp_path / "qr" / "quantile_ranges.json").read_text())
    judged = [r for r in records if "flags" in r]
    assert judged and all(r["var_type"] == "PfCand_nHad" for r in records)
    for r in judged:
        assert (tmp_path / "qr" / "PfCand_nHad" / f"{r['feature']}_{r['cone']}.png").exists()

    # A.16 is not reproduced: the last running change is final vs previous, not vs first
    snaps = [{"T": {"f": {"global": {"mean": v, "std": 1.0, "num": 10}}}} for v in (1.0, 1.1, 1.21)]
    names, running, total = convergence_changes(snaps, "T", "global", "mean")
    assert names == ["f"]
    np.testing.assert_allclose(running[:, 0], [0.1, 0.1])
    np.testing.assert_allclose(total, [0.21])
