"""pT reweighting: closure per bin in both modes, empty bins, the correctionlib and TH1D files."""

from __future__ import annotations

import json
from pathlib import Path

import awkward as ak
import correctionlib
import numpy as np
import pytest
import uproot

from taucoffea.adversarial.contributions import DEFAULT_CONFIG
from taucoffea.algorithms.reweight import WEIGHT_CORRECTION, compute_pt_weights
from taucoffea.errors import ConfigError, InputError, OutputExistsError
from taucoffea.execution.config import ExecutorConfig
from taucoffea.stages.reweight import run_reweight

ITER = ExecutorConfig(executor="iterative", progress=False)
EDGES = np.array([30.0, 40, 50, 70, 100, 400])
COMP = DEFAULT_CONFIG.composition()
IDS = {c.name: c.dataset_id for c in DEFAULT_CONFIG.contributions}


def _random_counts(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.Generator(np.random.Philox(seed))
    return {n: rng.poisson(rng.uniform(5, 300), EDGES.size - 1).astype(float) + 1 for n in COMP}


@pytest.mark.parametrize("mode", ["common", "per-contribution"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_closure_per_bin(mode: str, seed: int) -> None:
    counts = _random_counts(seed)
    w = compute_pt_weights(EDGES, counts, COMP, IDS, "data", mode=mode)
    # the expected taus per batch of each contribution, recomputed here by hand
    E = {n: COMP[n] * counts[n] / counts[n].sum() for n in COMP}
    weighted = sum(w.weight_of(n) * E[n] for n in COMP if n != "data")
    np.testing.assert_allclose(weighted, E["data"], rtol=1e-12, atol=0)
    np.testing.assert_allclose(w.closure(), 0.0, atol=1e-12)
    assert not w.unmatched
    assert np.all(np.isfinite(w.weights)) and np.all(w.weights > 0)
    np.testing.assert_array_equal(w.weight_of("data"), 1.0)
    # the total MC weight per batch equals the data taus per batch
    assert np.isclose(weighted.sum(), COMP["data"])
    if mode == "common":  # one weight per bin for every MC contribution
        mc = np.array([w.weight_of(n) for n in COMP if n != "data"])
        assert np.all(mc == mc[0])
    else:  # every contribution alone has the target's shape, with its batch share
        f_dy = COMP["DY_taus"] / sum(v for k, v in COMP.items() if k != "data")
        np.testing.assert_allclose(w.weight_of("DY_taus") * E["DY_taus"], f_dy * E["data"], rtol=1e-12)


def test_explicit_target() -> None:
    counts = _random_counts(4)
    target = np.array([5.0, 4, 3, 2, 1])
    w = compute_pt_weights(EDGES, counts, COMP, IDS, "data", target=target)
    np.testing.assert_allclose(w.weighted_mc(), COMP["data"] * target / target.sum(), rtol=1e-12)


def test_empty_bins_as_documented() -> None:
    counts = _random_counts(5)
    counts["data"][0] = 0.0  # target empty where MC exists → MC weight 0 there
    for n in COMP:
        if n != "data":
            counts[n][3] = 0.0  # no MC where the data is → weight 1, bin unmatched
    w = compute_pt_weights(EDGES, counts, COMP, IDS, "data")
    mc = [n for n in COMP if n != "data"]
    assert all(w.weight_of(n)[0] == 0.0 for n in mc)
    assert all(w.weight_of(n)[3] == 1.0 for n in mc)
    assert w.unmatched == (("MC", 3),)
    clo = w.closure()
    np.testing.assert_allclose(np.delete(clo, 3), 0.0, atol=1e-12)
    assert clo[3] == -w.target[3] < 0
    # per-contribution: one empty contribution is reported by name
    counts = _random_counts(6)
    counts["W_jets"][2] = 0.0
    w = compute_pt_weights(EDGES, counts, COMP, IDS, "data", mode="per-contribution")
    assert w.unmatched == (("W_jets", 2),) and w.weight_of("W_jets")[2] == 1.0
    counts["QCD_jets"][:] = 0.0
    with pytest.raises(InputError, match=r"\['QCD_jets'\] have no entries"):
        compute_pt_weights(EDGES, counts, COMP, IDS, "data")
    with pytest.raises(ConfigError, match="mode 'flat'"):
        compute_pt_weights(EDGES, _random_counts(1), COMP, IDS, "data", mode="flat")


def _contribution_inputs(root: Path, seed: int = 3) -> dict[str, np.ndarray]:
    """One parquet per contribution with pT drawn from different shapes."""
    from taucoffea.columns.parquet import write_parquet

    rng = np.random.Generator(np.random.Philox(seed))
    pts = {}
    for k, c in enumerate(DEFAULT_CONFIG.contributions):
        n = 400 * c.per_batch
        pt = 30 + rng.exponential(15 + 5 * k, n)
        pt = pt[pt < 400].astype(np.float32)
        pts[c.name] = pt
        rows = ak.zip({"tau_pt": pt, "evt": np.arange(pt.size, dtype=np.uint64),
                       "sampleType": np.full(pt.size, 0 if c.is_data else 1, np.int32),
                       "mytauType": np.full(pt.size, -1 if c.is_data else c.tau_type, np.int32)})
        write_parquet(rows, root / c.name / "part_0.parquet")
    return pts


def test_stage_files(tmp_path: Path) -> None:
    pts = _contribution_inputs(tmp_path / "in")
    res = run_reweight(tmp_path / "in", tmp_path / "w", pt_edges=EDGES, executor=ITER)
    for n, pt in pts.items():
        np.testing.assert_array_equal(res.counts[n], np.histogram(pt, EDGES)[0])
    np.testing.assert_allclose(res.weights.closure(), 0.0, atol=1e-12)
    corr = correctionlib.CorrectionSet.from_file(str(res.weights_file))[WEIGHT_CORRECTION]
    probe = np.array([20.0, 30.0, 45.0, 399.0, 400.0, 500.0])
    for k, name in enumerate(res.weights.names):
        got = corr.evaluate(np.full(probe.size, IDS[name]), probe)
        w = res.weights.weights[k]
        # correctionlib parses JSON numbers to within 1 ulp
        np.testing.assert_allclose(got, [0.0, w[0], w[1], w[4], 0.0, 0.0], rtol=1e-15, atol=0)  # flow: 0
    with uproot.open(tmp_path / "w" / "adversarial_weights.root") as f:
        assert sorted(k for k in f.keys(cycle=False)) == sorted(["data", "DYT", "TTT", "DYM", "TTJ", "WJ", "QCD"])
        np.testing.assert_allclose(f["WJ"].values(), res.weights.weight_of("W_jets"))
        np.testing.assert_allclose(f["WJ"].axis().edges(), EDGES)
    report = json.loads((tmp_path / "w" / "reweight_report.json").read_text())
    assert report["composition"] == COMP and report["mode"] == "common"
    with pytest.raises(OutputExistsError):
        run_reweight(tmp_path / "in", tmp_path / "w", pt_edges=EDGES, executor=ITER)
    # a missing contribution folder is named
    import shutil

    shutil.rmtree(tmp_path / "in" / "tt_jets")
    with pytest.raises(InputError, match=r"contribution\(s\) \['tt_jets'\] have no input files"):
        run_reweight(tmp_path / "in", tmp_path / "w2", pt_edges=EDGES, executor=ITER)
