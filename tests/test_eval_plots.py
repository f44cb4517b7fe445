"""ROC, WP-efficiency and adversarial plots: files are produced and not trivial; the numbers
they show (efficiencies, ratio ranges, data/MC agreement) are checked on their own."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from taucoffea.algorithms.intervals import clopper_pearson
from taucoffea.errors import ConfigError, InputError

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "evaluation"


def _rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.Philox(seed))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def assert_nontrivial(paths: list[Path], n_expected: int) -> None:
    """PDF + PNG pairs exist, are real files of some size, and the PNG is not blank."""
    pngs = sorted(p for p in paths if p.suffix == ".png")
    pdfs = sorted(p for p in paths if p.suffix == ".pdf")
    assert len(pngs) == len(pdfs) == n_expected
    assert [p.with_suffix("") for p in pngs] == [p.with_suffix("") for p in pdfs]
    for pdf in pdfs:
        assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 10_000
    for png in pngs:
        img = mpimg.imread(png)[..., :3]
        assert png.stat().st_size > 20_000 and min(img.shape[:2]) > 400
        assert img.std() > 0.05  # a figure, not an empty canvas
        assert (img.mean(axis=2) < 0.5).mean() > 0.01  # some dark ink: axes, labels, text


def _predictions(root: Path, n: int = 20000) -> None:
    """Taus / jets / electrons with a good 'model' score and a worse 'ref' score."""
    rng = _rng(3)
    ttype = rng.choice([2, 3, 0], n, p=[0.5, 0.3, 0.2])
    x = rng.normal(np.where(ttype == 2, 2.5, 0.0), 1.0)
    p_tau = _sigmoid(x)
    df = pd.DataFrame({
        "node_tau": p_tau, "node_jet": 1 - p_tau, "node_e": 1 - p_tau, "node_mu": 1 - p_tau,
        "ref_jet": _sigmoid(x + rng.normal(0, 1.5, n)),
        "ref_e": _sigmoid(x + rng.normal(0, 1.5, n)),
        "tauType": ttype.astype(np.int32),
        "tau_pt": rng.uniform(20, 200, n), "tau_eta": rng.uniform(-2.3, 2.3, n),
        "tau_phi": rng.uniform(-3.1, 3.1, n), "tau_dz": np.zeros(n),
        "tau_decayMode": rng.choice([0, 1, 10, 11], n).astype(np.int32),
    })
    (root / "mix").mkdir(parents=True)
    df.to_parquet(root / "mix" / "p.parquet")


WPS = {"jet": {"Loose": 0.5, "Medium": 0.8, "Tight": 0.95},
       "e": {"VLoose": 0.3, "Tight": 0.9}, "mu": {"Loose": 0.5}}


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from taucoffea.stages.evaluate import run_evaluate

    base = tmp_path_factory.mktemp("plots")
    _predictions(base / "in")
    cfg = {
        "dataset_alias": "synthetic", "period": "Test period", "vs_types": ["e", "jet"],
        "input_samples": {"mix": ["tau", "e", "jet"]}, "pt_bins": [[20, 100], [100, 1000]],
        "discriminators": [
            str(CONFIGS / "discriminators" / "model.yaml"),
            {"name": "Reference", "key": "ref", "score_column": "ref_${vs_type}",
             "wp_thresholds": {"jet": WPS["jet"], "e": WPS["e"]}},
        ],
    }
    run_evaluate(cfg, base / "eval", input_path=base / "in", working_points=WPS)
    return base / "in", base / "eval"


def test_roc_plots(evaluated: tuple[Path, Path], tmp_path: Path) -> None:
    from taucoffea.plotting.roc import add_arguments, cli, find_performance_files, plot_roc_files

    _, eval_dir = evaluated
    assert len(find_performance_files(eval_dir)) == 2
    written = plot_roc_files(eval_dir, tmp_path / "a",
                             {"reference": {"key": "ref"},
                              "discriminators": [{"key": "ref"}, {"key": "model", "dashed": True}]})
    # 2 vs types x 2 pT bins
    assert_nontrivial(written, 4)
    assert any("vs_jet_synthetic_pt_100_1000_eta_0_2p5_dm_0_1_2_10_11" in p.name for p in written)
    # CLI with the shipped config would need its discriminator keys: use comma-separated files
    parser = argparse.ArgumentParser()
    parser.add_argument("--input")
    parser.add_argument("--output")
    add_arguments(parser)
    files = ",".join(str(p) for p in find_performance_files(eval_dir))
    one_bin = {"bins": [{"vs_type": "e", "dataset_alias": "synthetic", "pt_bin": [20, 100],
                         "eta_bin": [0, 2.5], "dm_bin": [0, 1, 2, 10, 11]}],
               "plot_ratio": False}
    (tmp_path / "plot.yaml").write_text(json.dumps(one_bin))
    assert cli(parser.parse_args(["--input", files, "--output", str(tmp_path / "b"),
                                  "--config", str(tmp_path / "plot.yaml")])) == 0
    assert [p.name for p in (tmp_path / "b").glob("*.png")] == [
        "roc_curve_vs_e_synthetic_pt_20_100_eta_0_2p5_dm_0_1_2_10_11.png"]
    with pytest.raises(InputError, match="no performance file"):
        plot_roc_files(eval_dir, tmp_path / "c", CONFIGS / "plot_roc.yaml")  # needs 'ideal'


def test_ratio_limits_show_every_point() -> None:
    from taucoffea.plotting.roc import ratio_limits

    assert ratio_limits([np.array([0.9, 1.0])], (0.4, 1.1), "linear") == (0.4, 1.1)
    lo, hi = ratio_limits([np.array([0.05, 1.6])], (0.4, 1.1), "linear")
    assert lo < 0.05 and hi > 1.6
    lo, hi = ratio_limits([np.array([0.01, 0.0, np.nan, 30.0])], (0.2, 2.0), "log")
    assert lo < 0.01 and hi > 30.0 and lo > 0
    assert ratio_limits([np.array([1e-9, 1e9])], (0.2, 2.0), "log") == (1e-3, 1e3)  # capped


def test_bin_text() -> None:
    from taucoffea.plotting.roc import bin_text

    key = dict(pt_min=20, pt_max=100, eta_min=0, eta_max=2.5, dm_bin=[0, 1])
    assert bin_text(key)[0] == "$p_T < 100$ GeV"
    assert bin_text({**key, "pt_min": 100, "pt_max": 1000})[0] == "$p_T > 100$ GeV"
    assert "30, 80" in bin_text({**key, "pt_min": 30, "pt_max": 80})[0]
    assert bin_text({**key, "dm_bin": [10]})[2] == "DM = 10"


def test_wp_efficiency_counts_and_intervals() -> None:
    from taucoffea.plotting.wp_eff import Variable, wp_efficiency

    var = Variable("x", edges=np.array([0.0, 1.0, 2.0]))
    x = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.5])  # 0.0 and 2.5 are outside (lo < x <= hi)
    np.testing.assert_array_equal(var.bin_index(x), [-1, 0, 0, 1, 1, -1])
    passes = {"L": np.array([1, 1, 0, 1, 0, 1], bool), "T": np.array([0, 0, 1, 0, 0, 1], bool)}
    res = wp_efficiency(var.bin_index(x), 2, passes)
    np.testing.assert_array_equal(res.n_den, [2, 2])
    np.testing.assert_allclose(res.eff, [[0.5, 0.5], [0.5, 0.0]])
    lo, hi = clopper_pearson(1, 2)
    assert res.lo[0, 0] == pytest.approx(lo) and res.hi[0, 0] == pytest.approx(hi)
    num_mask = np.array([1, 1, 1, 0, 1, 1], bool)  # numerator-only requirement
    res2 = wp_efficiency(var.bin_index(x), 2, passes, numerator_mask=num_mask)
    np.testing.assert_allclose(res2.eff[:, 0], [0.5, 0.0])
    cats = Variable("dm", categories=(0, 1, 10))
    np.testing.assert_array_equal(cats.bin_index(np.array([0, 10, 2, 1])), [0, 2, -1, 1])


def test_wp_eff_plots(evaluated: tuple[Path, Path], tmp_path: Path) -> None:
    from taucoffea.plotting.wp_eff import add_arguments, cli, plot_wp_eff

    in_dir, _ = evaluated
    wp_file = tmp_path / "working_points.json"
    wp_file.write_text(json.dumps(WPS))
    cfg = {
        "discriminator": str(CONFIGS / "discriminators" / "model.yaml"),
        "vs_types": ["jet"],
        "wps_to_require": {"e": "VLoose"},
        "variables": {"tau_pt": {"bins": [20, 30, 50, 100, 200], "log_x": True},
                      "tau_decayMode": {"categories": [0, 1, 10, 11]},
                      "tau_mass": {"bins": [0, 1, 2]}},  # not in the inputs: skipped
    }
    written = plot_wp_eff(in_dir, tmp_path / "out", cfg, working_points=wp_file)
    assert_nontrivial(written, 2)
    with pytest.raises(ConfigError, match="no WPs"):
        plot_wp_eff(in_dir, tmp_path / "x", {**cfg, "vs_types": ["mu"],
                                             "discriminator": {"name": "n"}})
    parser = argparse.ArgumentParser()
    parser.add_argument("--input")
    parser.add_argument("--output")
    add_arguments(parser)
    (tmp_path / "cfg.yaml").write_text(json.dumps({**cfg, "vs_types": ["e"]}))
    args = parser.parse_args(["--input", str(in_dir), "--output", str(tmp_path / "cli"),
                              "--config", str(tmp_path / "cfg.yaml"),
                              "--working-points", str(wp_file)])
    assert cli(args) == 0
    assert len(list((tmp_path / "cli").glob("wp_eff_vs_e_*.png"))) == 2


def _adversarial(path: Path, shift: float, seed: int, *, y_adv: bool) -> None:
    rng = _rng(seed)
    n = 12000
    ids = rng.choice(7, n, p=np.array([50, 36, 2, 1, 1, 5, 5]) / 100)
    is_data = ids == 0
    mc_mix = rng.choice([1, 2, 3, 4, 5, 6], n, p=np.array([36, 2, 1, 1, 5, 5]) / 50)
    comp = np.where(is_data, mc_mix, ids)
    z = np.where(np.isin(comp, [1, 2]), rng.normal(2.5, 1.2, n), rng.normal(-2, 1.5, n))
    djet = _sigmoid(z + np.where(is_data, shift, 0.0))
    df = pd.DataFrame({"node_tau": 0.9 * djet, "node_jet": 0.9 * (1 - djet), "node_e": 0.05,
                       "node_mu": 0.05, "adv_label": is_data.astype(np.float32),
                       "adv_weight": np.where(is_data, 1.0, rng.uniform(0.5, 1.5, n)),
                       "dataset_id": ids.astype(np.int64)})
    if y_adv:
        df["y_adv"] = _sigmoid(rng.normal(0.3 * is_data, 1.0))
    df.to_parquet(path)


def test_weighted_ks_equals_scipy_for_unit_weights() -> None:
    from taucoffea.plotting.adversarial import weighted_ks

    rng = _rng(8)
    a, b = rng.normal(0, 1, 700), rng.normal(0.2, 1.1, 900)
    assert weighted_ks(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)
    # integer weights = repeated entries
    w = rng.integers(1, 4, 900)
    assert weighted_ks(a, b, None, w.astype(float)) == pytest.approx(
        stats.ks_2samp(a, np.repeat(b, w)).statistic, abs=1e-12)


def test_chi2_ndf_is_calibrated_for_equal_shapes() -> None:
    from taucoffea.plotting.adversarial import agreement

    bins = np.linspace(0, 1, 21)
    chi2, ndf = 0.0, 0
    for seed in range(40):
        rng = _rng(100 + seed)
        r = agreement(rng.beta(2, 5, 3000), rng.beta(2, 5, 5000), rng.uniform(0.5, 1.5, 5000),
                      bins)
        chi2, ndf = chi2 + r["chi2"], ndf + r["ndf"]
    # the sum of 40 χ² values with ndf = 19 each: χ²(760); test at 3σ
    assert stats.chi2.sf(chi2, ndf) > 0.0013 and stats.chi2.cdf(chi2, ndf) > 0.0013
    shifted = agreement(_rng(1).beta(2, 5, 3000), _rng(2).beta(2.4, 5, 5000), np.ones(5000), bins)
    assert shifted["chi2_ndf"] > 5


def test_adversarial_plots(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from taucoffea.plotting.adversarial import add_arguments, cli, plot_adversarial

    before, after = tmp_path / "before.parquet", tmp_path / "after.parquet"
    _adversarial(before, 0.8, 1, y_adv=False)
    _adversarial(after, 0.0, 2, y_adv=True)
    written, results = plot_adversarial([before, after], tmp_path / "out")
    assert_nontrivial([p for p in written if p.suffix != ".json"], 2)
    saved = json.loads((tmp_path / "out" / "adversarial_agreement.json").read_text())
    for label, r in results.items():
        assert saved["results"][label] == pytest.approx(r)
    b, a = results["before adversarial training"], results["after adversarial training"]
    assert b["ks_distance"] > 3 * a["ks_distance"] and b["chi2_ndf"] > 10 * a["chi2_ndf"]
    assert a["ndf"] == 19 and "y_adv_ks_distance" in a and "y_adv_ks_distance" not in b
    parser = argparse.ArgumentParser()
    parser.add_argument("--input")
    parser.add_argument("--output")
    add_arguments(parser)
    args = parser.parse_args(["--input", f"{before},{after}", "--output", str(tmp_path / "cli"),
                              "--labels", "v1,v2", "--bins", "10"])
    assert cli(args) == 0
    out = capsys.readouterr().out
    assert "v1: Djet data/MC KS distance" in out and "chi2/ndf" in out
    with pytest.raises(InputError, match="adv_label"):
        pd.DataFrame({"Djet": [0.5]}).to_parquet(tmp_path / "bad.parquet")
        plot_adversarial([tmp_path / "bad.parquet"], tmp_path / "bad")


@pytest.mark.parametrize("dpi", [72, 110, 300])
def test_cms_label_leaves_a_gap_after_cms_at_any_dpi(dpi):
    """The italic suffix must start visibly after the bold "CMS" once the figure is drawn."""
    import matplotlib.pyplot as plt

    from taucoffea.plotting.style import cms_label, new_figure

    fig, ax = new_figure(1, 1, figsize=(9, 8))
    cms_label(ax)
    fig.set_dpi(dpi)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = {t.get_text(): t.get_window_extent(renderer) for t in ax.texts}
    cms, suffix = texts["CMS"], texts["Simulation Preliminary"]
    gap_pt = (suffix.x0 - cms.x1) * 72.0 / dpi
    assert 2.5 < gap_pt < 10.0  # a clear space (mplhep alone overlaps by up to 1.5 pt), not a tear
    assert abs(suffix.y0 - cms.y0) < 0.5 * cms.height  # still on one line
    plt.close(fig)
