"""The evaluation stage on synthetic predictions with known ROC curves, and on toy TauTuples."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from taucoffea.algorithms.intervals import ONE_SIGMA_CL
from taucoffea.algorithms.performance import load_performance, select_entry
from taucoffea.errors import ConfigError, InputError, SelectionError
from taucoffea.stages.evaluate import load_evaluation_config, run_evaluate

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "evaluation"
MODEL = str(CONFIGS / "discriminators" / "model.yaml")


def _rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.Philox(seed))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def write_predictions(path: Path, n: int, seed: int, delta, *, weight=None,
                      extra: dict | None = None) -> pd.DataFrame:
    """Half genuine taus, half jets; latent x ~ N(delta(pt), 1) for taus, N(0, 1) for jets;
    node_tau = sigmoid(x), node_jet = 1 - node_tau, so score_vs_jet = sigmoid(x)."""
    rng = _rng(seed)
    is_tau = np.arange(n) % 2 == 0
    pt = np.where(rng.random(n) < 0.5, rng.uniform(20, 100, n), rng.uniform(100, 1000, n))
    mu = np.where(is_tau, delta(pt) if callable(delta) else delta, 0.0)
    x = rng.normal(mu, 1.0)
    p_tau = _sigmoid(x)
    df = pd.DataFrame({
        "node_e": np.zeros(n, np.float32), "node_mu": np.zeros(n, np.float32),
        "node_tau": p_tau, "node_jet": 1.0 - p_tau,
        "tauType": np.where(is_tau, 2, 3).astype(np.int32),
        "tau_pt": pt.astype(np.float32), "tau_eta": rng.uniform(-2.4, 2.4, n).astype(np.float32),
        "tau_decayMode": rng.choice([0, 1, 10, 11], n).astype(np.int32),
        "tau_dz": rng.normal(0, 0.05, n).astype(np.float32),
        "evt": np.arange(n, dtype=np.uint64), "tau_index": np.zeros(n, np.int32),
        "x": x,
    })
    if weight is not None:
        df["w"] = weight(is_tau, rng)
    for k, v in (extra or {}).items():
        df[k] = v(df)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path)
    return df


def _config(**over) -> dict:
    cfg = {
        "dataset_alias": "synthetic",
        "vs_types": ["jet"],
        "input_samples": {"sig": ["tau"], "bkg": ["jet"]},
        "discriminators": [MODEL],
    }
    cfg.update(over)
    return cfg


def _hanley_mcneil(a: float, n1: int, n2: int) -> float:
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    return math.sqrt((a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n2 - 1) * (q2 - a * a)) / (n1 * n2))


def test_auc_of_two_gaussians_matches_phi_per_pt_bin(tmp_path: Path) -> None:
    # taus and jets in separate samples, as input_samples maps them
    delta = lambda pt: np.where(pt < 100, 1.0, 2.0)  # noqa: E731
    for alias, seed in (("sig", 11), ("bkg", 12)):
        write_predictions(tmp_path / "in" / alias / "p.parquet", 40000, seed, delta)
    res = run_evaluate(_config(), tmp_path / "out", input_path=tmp_path / "in")
    perf = load_performance(tmp_path / "out" / "model" / "performance.json")
    assert perf["name"] == "taucoffea model" and len(perf["metrics"]["roc_curve"]) == 2
    for (lo, hi), d in (((20, 100), 1.0), ((100, 1000), 2.0)):
        entry = select_entry(perf, "roc_curve", pt_min=lo, pt_max=hi, vs_type="jet")
        expected = stats.norm.cdf(d / math.sqrt(2))
        n_per_class = 20000 * 0.5  # half of each sample's class falls in each pT bin
        sigma = _hanley_mcneil(expected, int(n_per_class), int(n_per_class))
        assert abs(entry["auc_score"] - expected) < 4 * sigma, (lo, entry["auc_score"], expected)
        tpr = np.array(entry["true_positive_rate"])
        assert np.all(np.diff(tpr) > 0)  # pruned: one point per rounded TPR, increasing
        assert len(np.unique(np.round(tpr, 3))) == tpr.size
    assert len(res.aucs) == 2
    assert res.skipped == ["taucoffea model vs jet: no WP thresholds given (use --working-points)"]


def test_weights_enter_roc_and_auc(tmp_path: Path) -> None:
    # signal = two equal halves with delta 0.5 (weight 1) and 2.5 (weight 3)
    n = 40000
    rng = _rng(5)
    comp = rng.random(n) < 0.5
    delta_sig = np.where(comp, 0.5, 2.5)
    x_sig = rng.normal(delta_sig, 1.0)
    x_bkg = rng.normal(0.0, 1.0, n)
    x = np.r_[x_sig, x_bkg]
    df = pd.DataFrame({
        "node_tau": _sigmoid(x), "node_jet": 1 - _sigmoid(x), "node_e": 0.0, "node_mu": 0.0,
        "tauType": np.r_[np.full(n, 2), np.full(n, 3)].astype(np.int32),
        "tau_pt": np.full(2 * n, 50.0, np.float32), "tau_eta": np.zeros(2 * n, np.float32),
        "tau_decayMode": np.zeros(2 * n, np.int32), "tau_dz": np.zeros(2 * n, np.float32),
        "w": np.r_[np.where(comp, 1.0, 3.0), np.ones(n)],
    })
    (tmp_path / "in" / "mix").mkdir(parents=True)
    df.to_parquet(tmp_path / "in" / "mix" / "p.parquet")
    cfg = _config(input_samples={"mix": ["tau", "jet"]}, weight="w", pt_bins=[[20, 100]])
    res = run_evaluate(cfg, None, input_path=tmp_path / "in")
    phi = lambda d: stats.norm.cdf(d / math.sqrt(2))  # noqa: E731
    weighted = (1 * phi(0.5) + 3 * phi(2.5)) / 4
    unweighted = (phi(0.5) + phi(2.5)) / 2
    auc = res.aucs[0]["auc"]
    assert abs(auc - weighted) < 0.012 < abs(auc - unweighted)


def test_wp_points_and_clopper_pearson_errors(tmp_path: Path) -> None:
    delta = 1.5
    counts = {}
    for alias, seed, code in (("sig", 21, 2), ("bkg", 22, 3)):
        df = write_predictions(tmp_path / "in" / alias / "p.parquet", 20000, seed, delta)
        counts[alias] = int(((df.tauType == code) & (np.abs(df.tau_dz) < 0.2)).sum())
    thresholds = {"jet": {"Loose": float(_sigmoid(0.0)), "Medium": float(_sigmoid(1.0)),
                          "Tight": float(_sigmoid(2.0))}}
    run_evaluate(_config(pt_bins=[[20, 1000]]), tmp_path / "out", input_path=tmp_path / "in",
                 working_points=thresholds)
    perf = load_performance(tmp_path / "out" / "model" / "performance.json")
    (wp,) = perf["metrics"]["roc_wp"]
    assert wp["wp_names"] == ["Tight", "Medium", "Loose"]  # increasing TPR
    assert wp["auc_score"] is None
    np.testing.assert_allclose(wp["thresholds"], [thresholds["jet"][k] for k in wp["wp_names"]])
    n_sig, n_bkg = counts["sig"], counts["bkg"]
    half_alpha = (1 - ONE_SIGMA_CL) / 2
    for i, name in enumerate(wp["wp_names"]):
        cut = {"Loose": 0.0, "Medium": 1.0, "Tight": 2.0}[name]
        exp_tpr, exp_fpr = stats.norm.sf(cut - delta), stats.norm.sf(cut)
        for key, expected, n in (("true_positive_rate", exp_tpr, n_sig),
                                 ("false_positive_rate", exp_fpr, n_bkg)):
            value = wp[key][i]
            assert abs(value - expected) < 4 * math.sqrt(expected * (1 - expected) / n)
            down, up = wp[f"{key}_down"][i], wp[f"{key}_up"][i]
            k = round(value * n)
            lo = stats.beta.ppf(half_alpha, k, n - k + 1)
            hi = stats.beta.isf(half_alpha, k + 1, n - k)
            assert value - down == pytest.approx(lo, rel=1e-6)
            assert value + up == pytest.approx(hi, rel=1e-6)


def test_rerun_replaces_entries_and_other_alias_adds(tmp_path: Path) -> None:
    for alias, seed in (("sig", 31), ("bkg", 32)):
        write_predictions(tmp_path / "a" / alias / "p.parquet", 4000, seed, 1.0)
        write_predictions(tmp_path / "b" / alias / "p.parquet", 4000, seed + 100, 2.0)
    out = tmp_path / "out"
    path = out / "model" / "performance.json"
    run_evaluate(_config(), out, input_path=tmp_path / "a")
    first = load_performance(path)
    run_evaluate(_config(), out, input_path=tmp_path / "b")
    second = load_performance(path)
    assert len(second["metrics"]["roc_curve"]) == len(first["metrics"]["roc_curve"]) == 2
    for e1, e2 in zip(first["metrics"]["roc_curve"], second["metrics"]["roc_curve"], strict=True):
        assert e2["auc_score"] > e1["auc_score"] + 0.05  # replaced by the delta = 2 sample
    run_evaluate(_config(dataset_alias="other"), out, input_path=tmp_path / "a")
    third = load_performance(path)
    assert len(third["metrics"]["roc_curve"]) == 4
    same_data = select_entry(first, "roc_curve", pt_min=20, vs_type="jet")
    other = select_entry(third, "roc_curve", dataset_alias="other", pt_min=20, vs_type="jet")
    assert other["auc_score"] == same_data["auc_score"]
    # a file of another discriminator is not silently taken over
    (out / "model").mkdir(exist_ok=True)
    path.write_text(path.read_text().replace('"taucoffea model"', '"someone else"'))
    with pytest.raises(InputError, match="someone else"):
        run_evaluate(_config(), out, input_path=tmp_path / "a")
    run_evaluate(_config(), out, input_path=tmp_path / "a", overwrite=True)
    assert load_performance(path)["name"] == "taucoffea model"


def test_cuts_are_applied(tmp_path: Path) -> None:
    df = write_predictions(tmp_path / "in" / "sig" / "p.parquet", 6000, 41, 1.0)
    write_predictions(tmp_path / "in" / "bkg" / "p.parquet", 6000, 42, 1.0)
    res = run_evaluate(_config(cuts="abs(tau_dz) < 0.05 && tau_decayMode != 11"), None,
                       input_path=tmp_path / "in")
    expected = int(((np.abs(df.tau_dz) < 0.05) & (df.tau_decayMode != 11)).sum())
    assert res.n_rows["sig"] == expected


@pytest.mark.parametrize("hostile", [
    "__import__('os').system('touch pwned')",
    "tau_pt.__class__",
    "open('/etc/passwd')",
    "tau_pt > 20; import os",
    "[c for c in ().__class__.__bases__]",
])
def test_hostile_selection_is_rejected_before_reading(tmp_path: Path, hostile: str) -> None:
    with pytest.raises(SelectionError):
        run_evaluate(_config(cuts=hostile), tmp_path / "out", input_path=tmp_path / "nothing")
    assert not (tmp_path / "out").exists()
    with pytest.raises(SelectionError):
        load_evaluation_config(_config(weight=hostile))


def test_config_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown key"):
        load_evaluation_config(_config(pt_binz=[[20, 30]]))
    with pytest.raises(ConfigError, match="no sample"):
        load_evaluation_config(_config(input_samples={"bkg": ["jet"]}))
    with pytest.raises(ConfigError, match="pt_bins"):
        load_evaluation_config(_config(pt_bins=[[100, 20]]))
    with pytest.raises(ConfigError, match="vs type 'e'"):
        load_evaluation_config(_config(vs_types=["e"]))
    write_predictions(tmp_path / "in" / "sig" / "p.parquet", 100, 1, 1.0)
    with pytest.raises(InputError, match="bkg"):
        run_evaluate(_config(), None, input_path=tmp_path / "in")


def test_toy_tautuples_friend_join_and_required_wps(tmp_path: Path) -> None:
    """DeepTau columns read directly from toy ROOT TauTuples equal those joined from them as a
    friend of shuffled prediction files; required WPs vs other types remove taus."""
    from taucoffea.toy.generator import generate_toy
    from taucoffea.physics.tautypes import compute_tau_type
    import uproot

    toy = tmp_path / "toy"
    generate_toy(toy, seed=7, size=20000, datasets=["GluGluHToTauTau_M125", "TTToSemiLeptonic"],
                 progress=False)
    deeptau = str(CONFIGS / "discriminators" / "deeptau_v2p1.yaml")
    samples = {"GluGluHToTauTau_M125": ["tau"], "TTToSemiLeptonic": ["jet", "e"]}
    cfg = _config(input_samples=samples, vs_types=["jet", "e"], discriminators=[deeptau],
                  pt_bins=[[20, 1000]])
    direct = run_evaluate(cfg, None, input_path=toy)
    # predictions: the same taus, shuffled, without the DeepTau columns
    preds = tmp_path / "preds"
    for ds in samples:
        (f,) = sorted((toy / ds).glob("*.root"))
        with uproot.open(f) as fh:
            t = fh["taus"].arrays(library="np")
        tt = compute_tau_type(t)
        keep = tt >= 0
        order = _rng(3).permutation(int(keep.sum()))
        df = pd.DataFrame({c: t[c][keep][order] for c in ("evt", "tau_index", "tau_pt", "tau_eta",
                                                          "tau_decayMode", "tau_dz")})
        df["tauType"] = tt[keep][order]
        (preds / ds).mkdir(parents=True)
        df.to_parquet(preds / ds / "pred.parquet")
    joined = run_evaluate({**cfg, "inputs": {"path": str(preds), "friend": {"path": str(toy)}}},
                          None)
    assert [a["auc"] for a in joined.aucs] == pytest.approx([a["auc"] for a in direct.aucs],
                                                            abs=1e-12)
    assert len(direct.aucs) == 2
    # required WP vs e: the vs-jet rates are computed on the taus/jets passing Tight vs e
    req = run_evaluate({**cfg, "vs_types": ["jet"], "wps_to_require": {"e": "Tight"}}, None,
                       input_path=toy)
    (wp_req,) = req.performance["deeptau_v2p1"]["metrics"]["roc_wp"]
    rates = {}
    for ds, code in (("GluGluHToTauTau_M125", 2), ("TTToSemiLeptonic", 3)):
        with uproot.open(next((toy / ds).glob("*.root"))) as fh:
            t = fh["taus"].arrays(library="np")
        sel = ((compute_tau_type(t) == code) & (np.abs(t["tau_dz"]) < 0.2)
               & ~np.isin(t["tau_decayMode"], [5, 6]) & (t["tau_pt"] >= 20) & (t["tau_pt"] < 1000)
               & (np.abs(t["tau_eta"]) < 2.5))
        sel &= (t["tau_byDeepTau2017v2p1VSe"].astype(int) >> 5) & 1 == 1  # Tight vs e
        loose_jet = (t["tau_byDeepTau2017v2p1VSjet"][sel].astype(int) >> 0) & 1 == 1
        rates[code] = loose_jet.mean()
    i = wp_req["wp_names"].index("VVVLoose")
    assert wp_req["true_positive_rate"][i] == pytest.approx(rates[2], abs=1e-12)
    assert wp_req["false_positive_rate"][i] == pytest.approx(rates[3], abs=1e-12)
    ideal = str(CONFIGS / "discriminators" / "ideal.yaml")
    with pytest.raises(ConfigError, match="wps_to_require"):
        run_evaluate({**cfg, "discriminators": [ideal], "wps_to_require": {"e": "Loose"}}, None,
                     input_path=toy)
    ok = run_evaluate({**cfg, "discriminators": [{"config": ideal, "wps_to_require": None}],
                       "wps_to_require": {"e": "Loose"}}, None, input_path=toy)
    assert all(a["auc"] > d["auc"] for a, d in zip(ok.aucs, direct.aucs, strict=True))
    for entry in ok.performance["ideal"]["metrics"]["roc_curve"]:
        thr = np.array(entry["thresholds"], dtype=float)
        assert thr[0] == np.inf and np.all((thr[1:] >= 0) & (thr[1:] <= 1))


def test_cli_writes_performance_files(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from taucoffea.cli import evaluate as cli

    for alias, seed in (("sig", 51), ("bkg", 52)):
        write_predictions(tmp_path / "in" / alias / "p.parquet", 2000, seed, 1.0)
    (tmp_path / "cfg.yaml").write_text(
        "vs_types: [jet]\ninput_samples: {sig: [tau], bkg: [jet]}\n"
        f"discriminators: ['{MODEL}']\n")
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["--config", str(tmp_path / "cfg.yaml"), "--input",
                              str(tmp_path / "in"), "--output", str(tmp_path / "out")])
    assert cli.run(args) == 0
    assert (tmp_path / "out" / "model" / "performance.json").is_file()
    assert "AUC" in capsys.readouterr().out
