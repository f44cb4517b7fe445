"""Training sample weights (§6.3): rebinning, correctionlib round trip, imbalance check."""

from __future__ import annotations

import json

import numpy as np
import pytest

from taucoffea.errors import ConfigError
from taucoffea.ml.weights import (
    PT_EDGES,
    TrainingWeights,
    WeightImbalanceError,
    compute_training_weights,
    default_eta_edges,
    load_weights,
    spectra_from_arrays,
)

pytestmark = pytest.mark.filterwarnings("ignore:training weights:UserWarning")


def _sample(n: int = 120_000, seed: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.Generator(np.random.Philox(seed))
    t = rng.integers(0, 4, n)
    slope = np.array([30.0, 40.0, 50.0, 25.0])[t]  # every type has its own pT spectrum
    pt = 20 + rng.exponential(slope)
    eta = np.abs(rng.normal(0, 1.2 + 0.1 * t))
    return t, pt, eta


def test_binning_is_the_reference_one() -> None:
    assert len(PT_EDGES) == 28 and PT_EDGES[0] == 20 and PT_EDGES[-1] == 1000
    rows = default_eta_edges()
    assert len(rows) == 27 and len(rows[0]) == 26 and rows[-1] == (0.0, 0.3, 0.6, 0.9, 1.2, 1.5, 1.8, 2.5)
    assert rows[PT_EDGES.index(300)] == (0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.5, 1.8, 2.1, 2.5)


def test_weights_are_target_over_type_per_bin() -> None:
    t, pt, eta = _sample()
    w = compute_training_weights(spectra_from_arrays(t, pt, eta))
    # recount one coarse bin by hand: pT in [40, 50), |eta| in [0.3, 0.4)
    sel = (pt >= 40) & (pt < 50) & (eta >= 0.3) & (eta < 0.4)
    for name, code in (("e", 0), ("jet", 3)):
        want = ((t == 2) & sel).sum() / ((t == code) & sel).sum()
        assert w.values[name][2][3] == pytest.approx(want)
        probe = w.evaluate(np.array([code]), np.array([45.0]), np.array([0.35]))
        assert probe[0] == pytest.approx(want)
    assert np.all(np.concatenate(w.values["tau"]) [np.concatenate(w.populated["tau"])] == 1.0)
    # weighting the e sample reproduces the genuine-tau counts in every bin that has e taus
    we = w.evaluate(t, pt, eta)
    edges = np.linspace(0, 2.5, 26)
    for lo, hi in ((20, 30), (60, 70), (150, 160)):
        row = (pt >= lo) & (pt < hi)
        n_e, _ = np.histogram(eta[(t == 0) & row], edges)
        n_tau, _ = np.histogram(eta[(t == 2) & row], edges)
        assert we[(t == 0) & row].sum() == pytest.approx(n_tau[n_e > 0].sum(), rel=1e-9)


def test_correctionlib_round_trip_and_flow(tmp_path) -> None:
    t, pt, eta = _sample(60_000, seed=8)
    w = compute_training_weights(spectra_from_arrays(t, pt, eta))
    path = w.write(tmp_path / "training_weights.json")
    data = json.loads(path.read_text())
    assert data["schema_version"] == 2 and data["corrections"][0]["name"] == "training_weight"
    assert [i["name"] for i in data["corrections"][0]["inputs"]] == ["tau_type", "pt", "abs_eta"]
    ev = load_weights(path)
    np.testing.assert_allclose(ev(t, pt, eta), w.evaluate(t, pt, eta), rtol=1e-12)
    # outside [20, 1000) GeV or |eta| >= 2.5: 0 (A.13); unknown type: 0
    edge = ev(np.array([0, 0, 0, 0, 8]), np.array([19.99, 1000.0, 50.0, 50.0, 50.0]), np.array([0.1, 0.1, 2.5, 2.49, 0.1]))
    assert edge[:3].tolist() == [0.0, 0.0, 0.0] and edge[4] == 0.0
    assert edge[3] == pytest.approx(w.evaluate(np.array([0]), np.array([50.0]), np.array([2.49]))[0])
    with pytest.raises(ConfigError, match="does not exist"):
        load_weights(tmp_path / "missing.json")


def test_imbalance_check() -> None:
    t, pt, eta = _sample()
    w = compute_training_weights(spectra_from_arrays(t, pt, eta))
    ratio = w.check(1e5, "populated")
    assert 1 < ratio < 1e5
    with pytest.raises(WeightImbalanceError, match="limit 10"):
        w.check(10.0, "populated")
    # the reference's strict policy counts empty bins: this sample leaves high-pT bins empty
    assert not np.all(np.concatenate(w.populated["jet"]))
    with pytest.raises(WeightImbalanceError, match="weight is 0"):
        w.check(1e5, "strict")
    with pytest.raises(ConfigError, match="policy"):
        w.imbalance("lenient")


def test_constant_weights_pass_strict_check() -> None:
    rows = default_eta_edges()
    values = {n: [np.full(len(e) - 1, v) for e in rows] for n, v in (("e", 2.0), ("tau", 1.0))}
    populated = {n: [np.ones(len(e) - 1, bool) for e in rows] for n in values}
    w = TrainingWeights(PT_EDGES, rows, values, populated)
    assert w.check(1e5, "strict") == pytest.approx(2.0)


def test_source_binning_must_contain_the_edges() -> None:
    t, pt, eta = _sample(5000)
    spectra = spectra_from_arrays(t, pt, eta, pt_bins=(97, 20.0, 1000.0))  # 10.1 GeV bins: 30 GeV is no edge
    with pytest.raises(ConfigError, match="pT edge 30"):
        compute_training_weights(spectra)
