"""Tests of the toy TauTuple generator (taucoffea.toy).

Statistical checks use fixed seeds and proper tests (χ², KS, binomial errors) against the
densities the generator claims to sample, never numbers copied from its own output.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot
from scipy import special, stats

from taucoffea.errors import ConfigError, OutputExistsError
from taucoffea.physics.tautypes import compute_tau_type
from taucoffea.physics.working_points import REFERENCE_THRESHOLDS, WP_BITS
from taucoffea.toy import cli
from taucoffea.toy.candidates import (
    ELE_FIELDS,
    MUON_FIELDS,
    PFCAND_FIELDS,
    signal_cone,
)
from taucoffea.toy.datasets import (
    CLASS_NAMES,
    TOY_DATASETS,
    Spectrum,
    ToyDataset,
    resolve_sizes,
    split_files,
)
from taucoffea.toy.densities import PION_MASS
from taucoffea.toy.generator import (
    NOT_VALID_FRACTION,
    columns_from_awkward,
    generate_file_columns,
    generate_taus,
    generate_toy,
    truth_logliks,
)
from taucoffea.toy.hardness import hardness_report

SMALL_SET = "DYJetsToLL_M-50,SingleMuon_MuTau,WJetsToLNu_MuTau"
LOGLIKS = [f"truth_loglik_{c}" for c in CLASS_NAMES]


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("toy") / "sample"
    generate_toy(out, seed=11, size=6000, datasets=SMALL_SET, progress=False)
    return out


@pytest.fixture(scope="module")
def dy_w() -> dict[str, np.ndarray]:
    parts = [generate_file_columns(d, 15000, 21, 0)[0]
             for d in ("DYJetsToLL_M-50", "WJetsToLNu")]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------ determinism


def test_same_seed_gives_identical_bytes(tmp_path: Path, toy_dir: Path) -> None:
    time.sleep(1.1)  # ROOT timestamps have 1 s resolution: make a leaked clock visible
    again = tmp_path / "again"
    generate_toy(again, seed=11, size=6000, datasets=SMALL_SET, progress=False)
    a, b = _files(toy_dir), _files(again)
    assert [p.relative_to(toy_dir) for p in a] == [p.relative_to(again) for p in b]
    assert len([p for p in a if p.suffix == ".root"]) == 3
    for pa, pb in zip(a, b, strict=True):
        assert pa.read_bytes() == pb.read_bytes(), pa.name


def test_different_seed_gives_different_files(tmp_path: Path, toy_dir: Path) -> None:
    other = tmp_path / "other"
    generate_toy(other, seed=12, size=6000, datasets=SMALL_SET, progress=False)
    for pa in toy_dir.rglob("*.root"):
        pb = other / pa.relative_to(toy_dir)
        assert pa.read_bytes() != pb.read_bytes()


@pytest.mark.parametrize("name", ["QCD_Pt-15to7000", "SingleMuon_MuTau"])
def test_tiny_requests(name: str) -> None:
    for n in (0, 1, 7):
        arr = generate_taus(name, n, seed=2)
        assert len(arr) == n and "pfCand_pt" in arr.fields


def test_in_memory_rows_depend_only_on_seed_dataset_file() -> None:
    a = generate_taus("QCD_Pt-15to7000", 500, seed=3, file_index=1)
    b = generate_taus("QCD_Pt-15to7000", 500, seed=3, file_index=1)
    c = generate_taus("QCD_Pt-15to7000", 500, seed=3, file_index=2)
    assert ak.array_equal(a, b)
    assert not np.array_equal(ak.to_numpy(a.tau_pt), ak.to_numpy(c.tau_pt))


# ------------------------------------------------------------------------------ files


def test_manifest_matches_files(toy_dir: Path) -> None:
    manifest = json.loads((toy_dir / "toy_manifest.json").read_text())
    assert manifest["seed"] == 11
    assert set(manifest["datasets"]) == set(SMALL_SET.split(","))
    total = 0
    for entry in manifest["datasets"].values():
        for f in entry["files"]:
            path = toy_dir / f["path"]
            assert hashlib.sha256(path.read_bytes()).hexdigest() == f["sha256"]
            assert uproot.open(path)["taus"].num_entries == f["entries"]
            assert sum(f["per_type"].values()) == f["entries"]
            total += f["entries"]
    assert total == 6000
    assert manifest["data_mc_shift"]["jet_iso_charged_scale"] > 1.0


def test_written_tree_types_and_lists(toy_dir: Path) -> None:
    path = toy_dir / "DYJetsToLL_M-50" / "eventTuple_0.root"
    with uproot.open(path) as f:
        assert f.classname_of("taus") == "TTree"
        tree = f["taus"]
        types = {b.name: b.typename for b in tree.branches}
        expected = {
            "run": "uint32_t", "lumi": "uint32_t", "evt": "uint64_t", "sampleType": "int32_t",
            "tauType": "int32_t", "dataset_id": "uint64_t", "genLepton_kind": "int32_t",
            "genLepton_index": "int32_t", "genJet_index": "int32_t", "tau_index": "int32_t",
            "tau_decayMode": "int32_t", "tau_charge": "int32_t", "tau_pt": "float",
            "tau_byDeepTau2017v2p1VSjetraw": "float", "tau_byDeepTau2017v2p1VSjet": "uint16_t",
            "tau_byDeepTau2017v2p1VSmu": "uint16_t", "truth_loglik_tau": "float",
            "toy_true_class": "int32_t", "npfCand": "int32_t", "pfCand_pt": "float[]",
            "pfCand_particleType": "int32_t[]", "ele_eSuperClusterOverP": "float[]",
            "muon_n_matches_DT_1": "int32_t[]", "nele": "int32_t", "nmuon": "int32_t",
        }
        for name, typename in expected.items():
            assert types[name] == typename, name
        # the C++ tools reject 64-bit floats and signed 64-bit integers
        allowed = {"int32_t", "uint32_t", "uint64_t", "uint16_t", "float", "float[]", "int32_t[]"}
        assert set(types.values()) <= allowed
        read = tree.arrays()
    n = len(read)
    mem = generate_taus("DYJetsToLL_M-50", n, seed=11, file_index=0)
    assert set(read.fields) == set(mem.fields)
    for name in mem.fields:
        assert ak.all(read[name] == mem[name]), name
    assert ak.all(ak.num(read.pfCand_pt) == read.npfCand)
    assert ak.sum(read.npfCand) > 5 * n


def test_list_fields_have_declared_dtypes() -> None:
    _, lists = generate_file_columns("DYJetsToLL_M-50", 2000, 7, 0)
    for prefix, declared in (("pfCand", PFCAND_FIELDS), ("ele", ELE_FIELDS),
                             ("muon", MUON_FIELDS)):
        jag = lists[prefix]
        assert list(jag.fields) == list(declared), prefix
        for name, dtype in declared.items():
            assert jag.fields[name].dtype == np.dtype(dtype), (prefix, name)
            assert jag.fields[name].size == jag.counts.sum(), (prefix, name)


def test_refuses_non_empty_output_and_overwrite_cleans(tmp_path: Path) -> None:
    out = tmp_path / "o"
    generate_toy(out, seed=1, size=20000, datasets="QCD_Pt-15to7000", progress=False)
    assert len(list((out / "QCD_Pt-15to7000").glob("*.root"))) == 2
    with pytest.raises(OutputExistsError, match="not empty"):
        generate_toy(out, seed=1, size=300, datasets="QCD_Pt-15to7000", progress=False)
    generate_toy(out, seed=1, size=300, datasets="QCD_Pt-15to7000", overwrite=True,
                 progress=False)
    assert [p.name for p in (out / "QCD_Pt-15to7000").glob("*.root")] == ["eventTuple_0.root"]
    assert not list(out.rglob(".*"))  # no temporary or staging leftovers


def test_cli_writes_sample(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["--output", str(tmp_path / "c"), "--seed", "5", "--size", "800",
                              "--datasets", "ZprimeToEE_M-4000", "--quiet"])
    assert cli.run(args) == 0
    manifest = json.loads((tmp_path / "c" / "toy_manifest.json").read_text())
    assert manifest["datasets"]["ZprimeToEE_M-4000"]["entries"] == 800


def test_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="NoSuchSample"):
        generate_file_columns("NoSuchSample", 10)
    with pytest.raises(ConfigError, match="huge"):
        resolve_sizes("huge", ["QCD_MuTau"])
    with pytest.raises(ConfigError):
        resolve_sizes(0, ["QCD_MuTau"])
    sizes = resolve_sizes("small", list(TOY_DATASETS))
    assert sum(sizes.values()) == 300_000
    assert all(10_000 <= n <= 50_000 for n in split_files(sizes["DYJetsToLL_M-50"]))
    assert sum(split_files(123_457)) == 123_457


# ------------------------------------------------------------------------------ composition


@pytest.mark.parametrize("name", list(TOY_DATASETS))
def test_class_fractions(name: str) -> None:
    n = 2000
    cols, _ = generate_file_columns(name, n, 31, 0)
    counts = np.bincount(cols["toy_true_class"], minlength=4)
    expected = n * np.asarray(TOY_DATASETS[name].fractions)
    assert np.all(counts[expected == 0] == 0)
    pos = expected > 0
    chi2 = float(np.sum((counts[pos] - expected[pos]) ** 2 / expected[pos]))
    dof = max(int(pos.sum()) - 1, 1)
    assert stats.chi2.sf(chi2, dof) > 1e-4, (counts, expected)


def test_spectra_shapes() -> None:
    w, _ = generate_file_columns("WJetsToLNu", 8000, 41, 0)
    jets = w["tau_pt"][w["toy_true_class"] == 3].astype(float)
    # Pareto MLE of the power-law index above 20 GeV; registry says pT^-4
    index = 1.0 + jets.size / np.sum(np.log(jets / 20.0))
    assert abs(index - 4.0) < 4 * 3.0 / np.sqrt(jets.size)

    dy, _ = generate_file_columns("DYJetsToLL_M-50", 8000, 42, 0)
    taus = dy["tau_pt"][dy["toy_true_class"] == 2]
    hist, edges = np.histogram(taus, bins=np.arange(20.0, 85.0, 5.0))
    mode = 0.5 * (edges[:-1] + edges[1:])[np.argmax(hist)]
    assert 27.5 <= mode <= 42.5  # Z→ττ visible peak at 20 + (k-1)θ = 35 GeV
    jet_hist, _ = np.histogram(dy["tau_pt"][dy["toy_true_class"] == 3], bins=edges)
    assert np.argmax(jet_hist) == 0  # steeply falling

    h, _ = generate_file_columns("GluGluHToTauTau_M125", 4000, 43, 0)
    assert np.median(h["tau_pt"][h["toy_true_class"] == 2]) > np.median(taus)
    zp, _ = generate_file_columns("ZprimeToEE_M-4000", 2000, 44, 0)
    electrons = zp["tau_pt"][zp["toy_true_class"] == 0]
    assert np.median(electrons) > 500 and electrons.max() > 1000

    for cols, eta_max in ((w, 2.5), (dy, 2.5), (zp, 2.5)):
        ok = cols["tau_index"] >= 0
        assert np.all(cols["tau_pt"][ok] >= 20) and np.all(np.abs(cols["tau_eta"][ok]) < eta_max)
    # |η| flat to 2.0 then a linear fall-off to 2.5: P(|η| > 2) = 0.25 / 2.25
    abseta = np.abs(np.concatenate([w["tau_eta"], dy["tau_eta"]])[
        np.concatenate([w["tau_index"], dy["tau_index"]]) >= 0])
    k, m, p = int((abseta > 2.0).sum()), abseta.size, 0.25 / 2.25
    assert abs(k - m * p) < 5 * np.sqrt(m * p * (1 - p))


def test_decay_modes_mass_and_charge(dy_w: dict[str, np.ndarray]) -> None:
    ok = dy_w["tau_index"] >= 0
    dm, mass = dy_w["tau_decayMode"][ok], dy_w["tau_mass"][ok]
    assert set(np.unique(dm)) <= {0, 1, 2, 5, 6, 10, 11}
    assert {0, 1, 10, 11} <= set(np.unique(dm))
    assert np.allclose(mass[dm == 0], PION_MASS)
    assert np.all((mass[dm == 1] > 0.2) & (mass[dm == 1] < 1.5))
    assert np.all((mass[dm >= 10] > 0.7) & (mass[dm >= 10] < 1.6))
    assert set(np.unique(dy_w["tau_charge"][ok])) == {-1, 1}
    # class-dependent DM fractions: 3-prongs are more frequent among jets than among taus
    cls = dy_w["toy_true_class"][ok]
    assert np.mean(dm[cls == 3] >= 10) > np.mean(dm[cls == 2] >= 10) + 0.1


def test_candidate_lists_are_consistent() -> None:
    arr = generate_taus("DYJetsToLL_M-50", 3000, seed=51)
    arr = arr[arr.tau_index >= 0]
    sig = arr.pfCand_tauSignal == 1
    # the tau pT is shared among its signal candidates, one lead track per tau
    assert np.allclose(ak.to_numpy(ak.sum(arr.pfCand_pt[sig], axis=1)), ak.to_numpy(arr.tau_pt),
                       rtol=1e-4)
    assert ak.all(ak.sum(arr.pfCand_tauLeadChargedHadrCand, axis=1) == 1)
    n_charged = ak.sum(sig & (arr.pfCand_charge != 0), axis=1)
    assert ak.all(n_charged == arr.tau_decayMode // 5 + 1)
    # everything lies inside the 0.5 cone; isolation candidates outside the signal cone
    dphi = (arr.pfCand_phi - arr.tau_phi + np.pi) % (2 * np.pi) - np.pi
    dr = np.sqrt((arr.pfCand_eta - arr.tau_eta) ** 2 + dphi**2)
    assert ak.all(dr[~sig] < 0.5 + 1e-4)
    rsig = signal_cone(ak.to_numpy(arr.tau_pt).astype(float))
    assert ak.all(dr[~sig] > ak.Array(rsig)[:, None] - 1e-4)
    # candidates sorted by decreasing pT, as in the original tuples
    assert ak.all(arr.pfCand_pt[:, :-1] >= arr.pfCand_pt[:, 1:])
    # isolation sums are the sums over the stored lists
    iso = (~sig) & (arr.pfCand_charge != 0) & (arr.pfCand_fromPV >= 2)
    assert np.allclose(ak.to_numpy(ak.sum(arr.pfCand_pt[iso], axis=1)),
                       ak.to_numpy(arr.tau_chargedIsoPtSum), rtol=1e-4, atol=1e-4)
    assert ak.all(ak.sum(sig & (arr.pfCand_particleType == 4), axis=1) == arr.tau_n_photons)
    # genuine electrons carry an ele_ object with E/p ≈ 1 far more often than jets
    e, j = arr.toy_true_class == 0, arr.toy_true_class == 3
    assert ak.mean(arr.nele[e]) > 0.5 > 0.1 > ak.mean(arr.nele[j])
    eop = ak.flatten(arr.ele_eSuperClusterOverP[e])
    assert abs(np.median(ak.to_numpy(eop)) - 1.0) < 0.1
    m = arr.toy_true_class == 1
    assert ak.mean(arr.nmuon[m]) > 0.5 > 0.1 > ak.mean(arr.nmuon[j])


# ------------------------------------------------------------------------------ truth


def test_truth_loglik_is_a_function_of_the_file(toy_dir: Path) -> None:
    path = toy_dir / "SingleMuon_MuTau" / "eventTuple_0.root"
    arr = uproot.open(path)["taus"].arrays()
    cols, lists = columns_from_awkward(arr)
    recomputed = truth_logliks(cols, lists)
    stored = np.stack([cols[k] for k in LOGLIKS], axis=1).astype(float)
    assert np.allclose(recomputed, stored, rtol=1e-6, atol=1e-3)


def _calibration_chi2(llr: np.ndarray, is_tau: np.ndarray, n_bins: int = 20) -> tuple[float, int]:
    edges = np.quantile(llr, np.linspace(0, 1, n_bins + 1))
    b = np.clip(np.searchsorted(edges, llr, side="right") - 1, 0, n_bins - 1)
    chi2, dof = 0.0, 0
    for j in range(n_bins):
        sel = b == j
        p = special.expit(llr[sel])
        var = float(np.sum(p * (1 - p)))
        if var > 2.0:
            chi2 += (float(is_tau[sel].sum()) - float(p.sum())) ** 2 / var
            dof += 1
    return chi2, dof


@pytest.mark.parametrize("other", [3, 0])
def test_truth_loglik_is_calibrated(other: int) -> None:
    # equal pT/|η| spectra and equal priors: P(τ | x) must be sigmoid(LLR) exactly
    spec = Spectrum(((0.5, "power", (2.5,)), (0.5, "gamma", (2.5, 12.0))))
    fractions = [0.0, 0.0, 0.5, 0.0]
    fractions[other] = 0.5
    ds = ToyDataset("calibration", "equal spectra", 1, tuple(fractions),
                    {c: spec for c in range(4)}, 1.0)
    cols, _ = generate_file_columns(ds, 40000, 61, 0)
    ok = cols["toy_gen_valid"] == 1
    llr = (cols["truth_loglik_tau"].astype(float) - cols[LOGLIKS[other]].astype(float))[ok]
    is_tau = cols["toy_true_class"][ok] == 2
    chi2, dof = _calibration_chi2(llr, is_tau)
    assert dof >= 8 and stats.chi2.sf(chi2, dof) > 1e-3
    # negative control: a mis-scaled LLR is caught by the same test
    chi2_bad, dof_bad = _calibration_chi2(1.6 * llr, is_tau)
    assert stats.chi2.sf(chi2_bad, dof_bad) < 1e-3


def test_bayes_beats_single_features_and_reference_score(dy_w: dict[str, np.ndarray]) -> None:
    report = hardness_report(dy_w)
    assert set(report) == {"e", "mu", "jet"}
    for vs, r in report.items():
        assert r["bayes_auc"] > r["deeptau_auc"], vs
        assert r["bayes_auc"] > r["best_feature_auc"], vs
        assert r["deeptau_auc"] > r["best_feature_auc"], vs
    jet = report["jet"]
    # the reference is clearly sub-optimal where it matters most
    assert jet["deeptau_misid"] > 3 * jet["bayes_misid"]
    assert 2e-4 < jet["bayes_misid"] < 2e-2


def test_wp_bitmasks_follow_v2p1_thresholds(dy_w: dict[str, np.ndarray]) -> None:
    ok = dy_w["tau_index"] >= 0
    for vs, thresholds in REFERENCE_THRESHOLDS["DeepTau2017v2p1"].items():
        raw = dy_w[f"tau_byDeepTau2017v2p1VS{vs}raw"][ok]
        mask = dy_w[f"tau_byDeepTau2017v2p1VS{vs}"][ok].astype(np.int64)
        used = 0
        for wp, thr in thresholds.items():
            bit = WP_BITS[wp]
            used |= 1 << bit
            assert np.array_equal((mask >> bit) & 1, (raw > thr).astype(np.int64)), (vs, wp)
        assert np.all(mask & ~used == 0)
    # genuine-τ efficiency of VSjet Medium near its 70 % design value
    taus = ok & (dy_w["toy_true_class"] == 2)
    eff = np.mean(dy_w["tau_byDeepTau2017v2p1VSjetraw"][taus] > thresholds_jet_medium())
    assert 0.6 < eff < 0.8


def thresholds_jet_medium() -> float:
    return REFERENCE_THRESHOLDS["DeepTau2017v2p1"]["jet"]["Medium"]


# ------------------------------------------------------------------------------ CR, data/MC


def test_control_region_data_differs_from_mc_but_class_mix_does_not() -> None:
    n = 4000
    data, _ = generate_file_columns("SingleMuon_MuTau", n, 71, 0)
    mc_scores, mc_classes = [], []
    for proc, w in TOY_DATASETS["SingleMuon_MuTau"].processes:
        cols, _ = generate_file_columns(proc, int(round(w * n)), 71, 0)
        mc_scores.append(cols["tau_byDeepTau2017v2p1VSjetraw"])
        mc_classes.append(cols["toy_true_class"])
    mc_score, mc_class = np.concatenate(mc_scores), np.concatenate(mc_classes)
    assert stats.ks_2samp(data["tau_byDeepTau2017v2p1VSjetraw"], mc_score).pvalue < 1e-3
    # the true class mix is the same: data vs the expected mixture, and data vs MC directly
    counts = np.bincount(data["toy_true_class"], minlength=4)
    expected = n * np.asarray(TOY_DATASETS["SingleMuon_MuTau"].fractions)
    assert stats.chisquare(counts, expected).pvalue > 1e-3
    table = np.stack([counts, np.bincount(mc_class, minlength=4)])
    assert stats.chi2_contingency(table).pvalue > 1e-3
    # every CR row passes the MuTau-like preselection and has a tag muon
    assert np.all(data["tau_byDeepTau2017v2p1VSjetraw"] > 0.2599605)
    assert np.all(np.abs(data["tau_eta"]) < 2.3) and np.all(data["tagObj_valid"] == 1)
    assert np.all(data["sampleType"] == 0) and np.all(data["genLepton_index"] == -1)


def test_adversarial_contributions_exist() -> None:
    # the six MC contributions of the adversarial mix (spec §7.3) all pass its selection
    wanted = {("DYJetsToLL_M-50_MuTau", 2), ("TTToSemiLeptonic_MuTau", 2),
              ("DYJetsToLL_M-50_MuTau", 1), ("TTToSemiLeptonic_MuTau", 3),
              ("WJetsToLNu_MuTau", 3), ("QCD_MuTau", 3)}
    for proc in {p for p, _ in wanted}:
        c, _ = generate_file_columns(proc, 3000, 81, 0)
        sel = ((c["tau_byDeepTau2017v2p1VSjetraw"] > 0.9) & (c["tau_pt"] > 30)
               & np.isin(c["tau_decayMode"], [0, 1, 10, 11])
               & (c["tau_byDeepTau2017v2p1VSeraw"] > 0.1686942)
               & (c["tau_byDeepTau2017v2p1VSmuraw"] > 0.8754835))
        for p, cls in wanted:
            if p == proc:
                assert np.sum(sel & (c["toy_true_class"] == cls)) >= 3, (p, cls)


# ------------------------------------------------------------------------------ gen match


@pytest.mark.parametrize("name", ["DYJetsToLL_M-50", "TTToSemiLeptonic", "SingleMuon_MuTau",
                                  "GluGluHToTauTau_M125", "DYJetsToLL_M-50_MuTau"])
def test_gen_match_recovers_true_class(name: str) -> None:
    cols, _ = generate_file_columns(name, 6000, 91, 0)
    tau_type = compute_tau_type(cols, strict=True)
    cls = cols["toy_true_class"]
    valid = cols["toy_gen_valid"] == 1
    if TOY_DATASETS[name].sample_type == 0:
        assert np.all(tau_type == 8)
        return
    assert np.array_equal(tau_type[valid], cls[valid])
    assert np.all(tau_type[~valid] == -1)
    if not TOY_DATASETS[name].control_region:
        k, n = int((~valid).sum()), valid.size
        sigma = np.sqrt(n * NOT_VALID_FRACTION * (1 - NOT_VALID_FRACTION))
        assert abs(k - n * NOT_VALID_FRACTION) < 5 * sigma
        assert np.any(cols["tau_index"] == -1)  # the "no reco tau" flavour is present
        no_tau = cols["tau_index"] == -1
        assert np.all(cols["tau_pt"][no_tau] == np.finfo(np.float32).min)
        assert np.all(cols["tau_byDeepTau2017v2p1VSjet"][no_tau] == 0)


# ------------------------------------------------------------------------------ bookkeeping


def test_event_bookkeeping() -> None:
    parts = [generate_file_columns("TTToSemiLeptonic", 3000, 101, i)[0] for i in (0, 1)]
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    assert cols["evt"].dtype == np.uint64 and cols["run"].dtype == np.uint32
    assert cols["lumi"].dtype == np.uint32 and cols["dataset_id"].dtype == np.uint64
    assert np.all(cols["sampleType"] == 1) and np.all(cols["tauType"] == -1)
    assert np.all(cols["dataset_group_id"] == np.iinfo(np.uint64).max)
    assert np.all(cols["genEventWeight"] == 1.0)
    evt = cols["evt"]
    uniq, first, n_rows = np.unique(evt, return_index=True, return_counts=True)
    # rows of one event are contiguous, share event quantities, and are all stored
    assert np.array_equal(n_rows, cols["total_entries"][first])
    inverse = np.searchsorted(uniq, evt)
    assert np.array_equal(cols["npv"], cols["npv"][first][inverse])
    assert np.array_equal(cols["rho"], cols["rho"][first][inverse])
    assert np.all(cols["entry_index"] < cols["total_entries"])
    assert {0, 1} <= set(np.unique(evt % 2))
    assert np.all(cols["tagObj_valid"] == 0) and np.all(cols["has_dimuon"] == 0)
