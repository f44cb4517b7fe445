"""Event drop: keep probabilities, targets from ROOT datacards / JSON, kept shape, n_tau,
determinism across chunk sizes, the correctionlib file."""

from __future__ import annotations

import json
from pathlib import Path

import awkward as ak
import correctionlib
import numpy as np
import pytest
import uproot
from scipy import stats

from taucoffea.adversarial.histio import Hist1D, read_target, write_hist_json
from taucoffea.algorithms.event_drop import (
    DEFAULT_PT_EDGES,
    KEEP_CORRECTION,
    bin_index,
    keep_mask,
    keep_probabilities,
    rebin_values,
)
from taucoffea.errors import ConfigError, InputError
from taucoffea.execution.config import ExecutorConfig
from taucoffea.stages.event_drop import entry_limits, run_event_drop

ITER = ExecutorConfig(executor="iterative", progress=False)
EDGES = np.array(DEFAULT_PT_EDGES, dtype=float)


# ------------------------------------------------------------------------------ algorithm


def test_keep_probabilities_hand_computed() -> None:
    edges = [30, 40, 50, 60]
    k = keep_probabilities(edges, target=[10, 20, 5], observed=[100, 50, 0])
    # r = (0.1, 0.4, 0 [no entries]) → p = r / 0.4
    np.testing.assert_allclose(k.probability, [0.25, 1.0, 0.0])
    assert k.unmatched == (2,)
    np.testing.assert_allclose(k.expected_kept([100, 50, 0]), [25, 50, 0])
    with pytest.raises(InputError, match="do not overlap"):
        keep_probabilities(edges, [0, 0, 1], [5, 5, 0])


def test_probabilities_never_exceed_one_and_flow_is_dropped() -> None:
    rng = np.random.Generator(np.random.Philox(3))
    for _ in range(50):
        t, o = rng.poisson(20, 15) * rng.random(15), rng.poisson(5, 15).astype(float)
        if not np.any((t > 0) & (o > 0)):
            continue
        p = keep_probabilities(EDGES, t, o).probability
        assert np.all(p >= 0) and np.all(p <= 1) and np.isclose(p.max(), 1.0)
    k = keep_probabilities(EDGES, np.ones(15), np.ones(15))
    pt = np.array([29.999, 30.0, 399.99, 400.0, 1e4, np.nan])
    assert keep_mask(pt, np.zeros(pt.size), k).tolist() == [False, True, True, False, False, False]
    assert bin_index(np.array([30.0, 35.0, 34.9999]), EDGES).tolist() == [0, 1, 0]


def test_rebin_target() -> None:
    fine = np.arange(30, 410, 5.0)  # 5 GeV bins up to 405
    values = np.ones(fine.size - 1)
    coarse = rebin_values(fine, values, EDGES)
    np.testing.assert_allclose(coarse, np.diff(EDGES) / 5)
    with pytest.raises(InputError, match=r"edge\(s\) \[32.0\]"):
        rebin_values(fine, values, [30, 32, 40])


# ------------------------------------------------------------------------------ targets


def _datacard(path: Path, values: np.ndarray, edges: np.ndarray) -> Path:
    with uproot.recreate(path) as f:
        f["mt_inclusive/EMB"] = (values, edges)
        f["mt_inclusive/ZTT"] = (values * 2, edges)
        f["mt_inclusive/h2"] = (np.ones((2, 2)), np.array([0.0, 1, 2]), np.array([0.0, 1, 2]))
    return path


def test_read_targets(tmp_path: Path) -> None:
    edges = np.array([30.0, 50, 100, 400])
    card = _datacard(tmp_path / "datacard.root", np.array([3.0, 2, 1]), edges)
    h = read_target(f"{card}:mt_inclusive/EMB")
    np.testing.assert_allclose(h.values, [3, 2, 1])
    np.testing.assert_allclose(h.edges, edges)
    with pytest.raises(InputError, match="no object 'mt_inclusive/XYZ'"):
        read_target(f"{card}:mt_inclusive/XYZ")
    with pytest.raises(InputError, match="not a 1-D histogram"):
        read_target(f"{card}:mt_inclusive/h2")
    with pytest.raises(InputError, match="give the histogram as FILE.root:PATH"):
        read_target(card)
    with pytest.raises(InputError, match="does not exist"):
        read_target(tmp_path / "nope.root")
    write_hist_json(tmp_path / "t.json", Hist1D(edges, np.array([1.0, 2, 3])))
    np.testing.assert_allclose(read_target(tmp_path / "t.json").values, [1, 2, 3])
    write_hist_json(tmp_path / "many.json", {"a": Hist1D(edges, np.array([4.0, 5, 6]))})
    np.testing.assert_allclose(read_target(f"{tmp_path / 'many.json'}:a").values, [4, 5, 6])
    import hist
    from hist import serialization

    hh = hist.Hist(hist.axis.Variable(edges))
    hh.fill([35, 60, 60])
    (tmp_path / "uhi.json").write_text(json.dumps(serialization.to_uhi(hh), default=lambda x: x.tolist()))
    np.testing.assert_allclose(read_target(tmp_path / "uhi.json").values, [1, 2, 0])


# ------------------------------------------------------------------------------ stage


@pytest.fixture(scope="module")
def toy_pt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Toy DY and QCD μτ rows (pT and a few columns) as parquet: two files for DY."""
    from taucoffea.columns.parquet import write_parquet
    from taucoffea.toy.generator import generate_taus

    root = tmp_path_factory.mktemp("drop_in")
    keep = ["evt", "sampleType", "tau_pt", "tau_eta", "npfCand", "pfCand_pt"]
    for ds, sizes in (("DYJetsToLL_M-50_MuTau", (30_000, 20_000)), ("QCD_MuTau", (15_000,))):
        for i, n in enumerate(sizes):
            rows = generate_taus(ds, n, seed=21, file_index=i)[keep]
            write_parquet(rows, root / ds / f"part_{i}.parquet")
    return root


def _read(folder: Path) -> ak.Array:
    return ak.concatenate([ak.from_parquet(p) for p in sorted(folder.glob("*.parquet"))])


def test_kept_shape_matches_datacard_target(toy_pt: Path, tmp_path: Path) -> None:
    # a falling target shape, finer than the drop binning (it is summed into it)
    fine = np.concatenate([np.arange(30, 70, 5.0), np.arange(70, 100, 10.0), [100, 120, 140, 200, 400]])
    centres = 0.5 * (fine[1:] + fine[:-1])
    target = 1000 * np.exp(-(centres - 30) / 25.0) * np.diff(fine)
    card = _datacard(tmp_path / "card.root", target, fine)
    res = run_event_drop(toy_pt, tmp_path / "out", target=f"{card}:mt_inclusive/EMB", seed=5, executor=ITER, chunksize=8000)
    t = rebin_values(fine, target, EDGES)
    for ds in ("DYJetsToLL_M-50_MuTau", "QCD_MuTau"):
        kept = np.histogram(ak.to_numpy(_read(tmp_path / "out" / ds).tau_pt), EDGES)[0].astype(float)
        np.testing.assert_array_equal(kept, res.kept[ds])
        k = res.keep[ds]
        assert np.all(k.probability <= 1.0) and k.probability.max() == 1.0
        # shape test: kept counts vs the target shape in the bins the input populates
        use = ~np.isin(np.arange(t.size), k.unmatched) & (res.observed[ds] > 0)
        expected = t[use] / t[use].sum() * kept[use].sum()
        assert kept.sum() > 500
        chi2 = stats.chisquare(kept[use], expected)
        assert chi2.pvalue > 0.01, (ds, kept, expected)
        assert res.tests[ds]["pvalue"] > 0.01
        # nothing outside 30-400 GeV survives
        pts = ak.to_numpy(_read(tmp_path / "out" / ds).tau_pt)
        assert pts.min() >= 30 and pts.max() < 400
    # the correctionlib file says the same as the table, and 0 outside the binning
    corr = correctionlib.CorrectionSet.from_file(str(res.keep_file))[KEEP_CORRECTION]
    probe = np.array([29.0, 30.0, 34.99, 35.0, 399.0, 400.0, 1000.0])
    got = corr.evaluate("QCD_MuTau", probe)
    idx = bin_index(probe, EDGES)
    want = np.where(idx >= 0, res.keep["QCD_MuTau"].probability[np.maximum(idx, 0)], 0.0)
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=0)  # correctionlib parses JSON to 1 ulp
    report = json.loads((tmp_path / "out" / "event_drop_report.json").read_text())
    assert report["datasets"]["QCD_MuTau"]["kept"] == res.kept["QCD_MuTau"].tolist()


def test_deterministic_across_chunk_sizes_and_dataset_target(toy_pt: Path, tmp_path: Path) -> None:
    outs = []
    for cs, name in ((3000, "a"), (50_000, "b")):
        run_event_drop(toy_pt, tmp_path / name, target="dataset:QCD_MuTau", seed=9, executor=ITER, chunksize=cs)
        outs.append(tmp_path / name)
    files = sorted(p.relative_to(outs[0]) for p in outs[0].rglob("*.parquet"))
    assert len(files) == 3
    for rel in files:
        assert (outs[0] / rel).read_bytes() == (outs[1] / rel).read_bytes()
    assert (outs[0] / "keep_probabilities.json").read_bytes() == (outs[1] / "keep_probabilities.json").read_bytes()
    # the target dataset keeps everything in range
    qcd = _read(outs[0] / "QCD_MuTau")
    src = ak.from_parquet(toy_pt / "QCD_MuTau" / "part_0.parquet")
    assert len(qcd) == int(np.sum((ak.to_numpy(src.tau_pt) >= 30) & (ak.to_numpy(src.tau_pt) < 400)))
    # another seed keeps other rows
    run_event_drop(toy_pt, tmp_path / "c", target="dataset:QCD_MuTau", seed=10, executor=ITER)
    a = ak.to_numpy(_read(outs[0] / "DYJetsToLL_M-50_MuTau").evt)
    c = ak.to_numpy(_read(tmp_path / "c" / "DYJetsToLL_M-50_MuTau").evt)
    assert not np.array_equal(a, c)


def test_n_tau(toy_pt: Path, tmp_path: Path) -> None:
    n = 31_000  # all of file 0 and 1000 entries of file 1
    res = run_event_drop(toy_pt, tmp_path / "o", target="dataset:QCD_MuTau", n_tau={"DYJetsToLL_M-50_MuTau": n},
                         datasets=["DYJetsToLL_M-50_MuTau", "QCD_MuTau"], seed=1, executor=ITER)
    ds = "DYJetsToLL_M-50_MuTau"
    assert res.observed[ds].sum() + 0 <= n
    src = ak.concatenate([ak.from_parquet(toy_pt / ds / f"part_{i}.parquet") for i in (0, 1)])[:n]
    in_range = np.sum((ak.to_numpy(src.tau_pt) >= 30) & (ak.to_numpy(src.tau_pt) < 400))
    assert res.observed[ds].sum() == in_range
    kept_evt = set(ak.to_numpy(_read(tmp_path / "o" / ds).evt).tolist())
    assert kept_evt <= set(ak.to_numpy(src.evt).tolist())
    part1 = ak.from_parquet(tmp_path / "o" / ds / "part_1.parquet")
    assert len(part1) <= 1000
    with pytest.raises(InputError, match="run out of events: dataset 'QCD_MuTau' has 15000 entries.*n_tau = 15001"):
        run_event_drop(toy_pt, tmp_path / "x", target="dataset:QCD_MuTau", n_tau=15_001, executor=ITER)
    with pytest.raises(ConfigError, match="n_tau"):
        entry_limits({"f": 10}, {"d": ["f"]}, 0)


def test_errors(toy_pt: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="dataset 'nope' is not among the inputs"):
        run_event_drop(toy_pt, tmp_path / "o", target="dataset:nope", executor=ITER)
    with pytest.raises(InputError, match=r"target '.*t.json'.*cannot be summed"):
        write_hist_json(tmp_path / "t.json", Hist1D(np.array([30.0, 33, 400]), np.array([1.0, 1])))
        run_event_drop(toy_pt, tmp_path / "o", target=str(tmp_path / "t.json"), executor=ITER)


def test_cli_event_drop(toy_pt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from taucoffea.cli import event_drop as cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli._targets(["a.json"]) == "a.json"
    assert cli._targets(["A=a.root:h", "B=dataset:A"]) == {"A": "a.root:h", "B": "dataset:A"}
    args = parser.parse_args(["--input", str(toy_pt), "--output", str(tmp_path / "o"), "--target", "dataset:QCD_MuTau",
                              "--pt-bins", "30, 50, 100, 400", "--n-tau", "12000", "--executor", "iterative", "--quiet"])
    assert cli.run(args) == 0
    out = capsys.readouterr().out
    assert "QCD_MuTau" in out and "keep probabilities:" in out
    report = json.loads((tmp_path / "o" / "event_drop_report.json").read_text())
    assert report["edges"] == [30, 50, 100, 400] and report["n_tau"] == 12000
