"""Training sample weights (reference §6.3): every tau type reweighted to the genuine-τ spectrum.

For each type t ∈ {e, μ, τ, jet}: ``w_t(pT, |η|) = N_τ(bin) / N_t(bin)`` in a variable binning
(10 GeV pT rows up to 200 GeV, then 50 GeV to 500, then 600/700/1000; |η| steps of 0.1, coarser
at high pT). Source histograms are re-binned by bin centre; a zero denominator gives 0; outside
[20, 1000) GeV or |η| ≥ 2.5 the weight is 0 (A.13). Weights are not normalised.

The weights are written as correctionlib JSON (inputs ``tau_type``, ``pt``, ``abs_eta``) and the
loader evaluates them through correctionlib, so the file in the run directory is exactly what
was used.

Imbalance check (``MaxDisbCheck``, limit 1e5): ``policy="strict"`` is the reference — max/min
over all bins of all types including empty ones, so any zero weight fails; the default
``"populated"`` takes max/min over the bins that hold taus of the type *and* of the target, which
is usable on toy-sized samples; bins with taus but no target get weight 0 and are reported.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from taucoffea.errors import ConfigError, InputError, TaucoffeaError

__all__ = [
    "CORRECTION_NAME",
    "ETA_EDGES",
    "PT_EDGES",
    "TYPE_CODES",
    "TrainingWeights",
    "WeightImbalanceError",
    "compute_training_weights",
    "default_eta_edges",
    "load_weights",
    "spectra_from_arrays",
    "spectra_from_root",
]

CORRECTION_NAME = "training_weight"
FLT_EPSILON = float(np.finfo(np.float32).eps)

#: The reference's ``yaxis``: 28 pT edges, 27 rows.
PT_EDGES: tuple[float, ...] = (*range(20, 201, 10), 250, 300, 350, 400, 450, 500, 600, 700, 1000)
ETA_EDGES: dict[str, tuple[float, ...]] = {
    "fine": tuple(round(0.1 * i, 10) for i in range(26)),
    "mid": (0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.5, 1.8, 2.1, 2.5),
    "coarse": (0.0, 0.3, 0.6, 0.9, 1.2, 1.5, 1.8, 2.5),
}
#: tauType code per type name (the classes the model learns).
TYPE_CODES: dict[str, int] = {"e": 0, "mu": 1, "tau": 2, "jet": 3}


class WeightImbalanceError(TaucoffeaError):
    """max/min of the training weights exceeds the configured limit (``weight_thr``)."""


def default_eta_edges(pt_edges: Sequence[float] = PT_EDGES) -> list[tuple[float, ...]]:
    """The reference's ``xaxis_list``: one |η| binning per pT row."""
    rows = []
    for lo in pt_edges[:-1]:
        rows.append(ETA_EDGES["fine"] if lo < 300 else ETA_EDGES["mid"] if lo < 500 else ETA_EDGES["coarse"])
    return rows


# ============================================================================ spectra
Spectrum = tuple[np.ndarray, np.ndarray, np.ndarray]  # (counts[|η| bin, pT bin], |η| edges, pT edges)


def spectra_from_arrays(
    tau_type: np.ndarray, pt: np.ndarray, abs_eta: np.ndarray, *,
    pt_bins: tuple[int, float, float] = (980, 20.0, 1000.0), eta_bins: tuple[int, float, float] = (250, 0.0, 2.5),
) -> dict[str, Spectrum]:
    """(|η|, pT) histograms per type name with the reference's training-spectrum binning."""
    x_edges = np.linspace(eta_bins[1], eta_bins[2], eta_bins[0] + 1)
    y_edges = np.linspace(pt_bins[1], pt_bins[2], pt_bins[0] + 1)
    tau_type = np.asarray(tau_type)
    out = {}
    for name, code in TYPE_CODES.items():
        sel = tau_type == code
        counts, _, _ = np.histogram2d(np.asarray(abs_eta, float)[sel], np.asarray(pt, float)[sel], bins=(x_edges, y_edges))
        out[name] = (counts, x_edges, y_edges)
    return out


def spectra_from_root(path: str | os.PathLike[str]) -> dict[str, Spectrum]:
    """Read ``eta_pt_hist_<type>`` TH2D (x = |η|, y = pT) from a spectra ROOT file."""
    import uproot

    out = {}
    try:
        with uproot.open(path) as f:
            for name in TYPE_CODES:
                key = f"eta_pt_hist_{name}"
                if key in f:
                    h = f[key]
                    out[name] = (np.asarray(h.values(), float), np.asarray(h.axis(0).edges()), np.asarray(h.axis(1).edges()))
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read spectrum file '{path}': {err}") from None
    if "tau" not in out:
        raise InputError(f"spectrum file '{path}' has no 'eta_pt_hist_tau' histogram (the reweighting target)")
    return out


# ============================================================================ weights
@dataclass
class TrainingWeights:
    """Weights per type in the variable binning: ``values[type][row]`` over that row's |η| bins."""

    pt_edges: tuple[float, ...]
    eta_edges: list[tuple[float, ...]]
    values: dict[str, list[np.ndarray]]
    populated: dict[str, list[np.ndarray]] = field(default_factory=dict)
    zero_weight_taus: dict[str, float] = field(default_factory=dict)

    def evaluate(self, tau_type: np.ndarray, pt: np.ndarray, abs_eta: np.ndarray) -> np.ndarray:
        """Numpy lookup (the same function as the correctionlib file; used in checks)."""
        tau_type, pt, abs_eta = np.asarray(tau_type), np.asarray(pt, float), np.asarray(abs_eta, float)
        out = np.zeros(pt.shape, dtype=np.float64)
        edges = np.asarray(self.pt_edges)
        row = np.searchsorted(edges, pt, side="right") - 1
        for name, code in TYPE_CODES.items():
            if name not in self.values:
                continue
            for r in range(len(edges) - 1):
                sel = (tau_type == code) & (row == r)
                if not sel.any():
                    continue
                e = np.asarray(self.eta_edges[r])
                col = np.searchsorted(e, abs_eta[sel], side="right") - 1
                ok = (col >= 0) & (col < e.size - 1)
                vals = np.zeros(col.size)
                vals[ok] = self.values[name][r][col[ok]]
                out[sel] = vals
        return out

    def imbalance(self, policy: str = "populated") -> float:
        """max/min of the weights over the bins the policy considers (inf if min is 0)."""
        if policy not in ("strict", "populated"):
            raise ConfigError(f"weights.policy '{policy}' is not known; allowed: strict, populated")
        vals = []
        for name, rows in self.values.items():
            for r, v in enumerate(rows):
                vals.append(v if policy == "strict" else v[self.populated[name][r]])
        allv = np.concatenate(vals) if vals else np.zeros(0)
        if allv.size == 0:
            return math.inf
        lo, hi = float(allv.min()), float(allv.max())
        return math.inf if lo <= 0 else hi / lo

    def check(self, limit: float = 1e5, policy: str = "populated") -> float:
        """Raise :class:`WeightImbalanceError` if max/min exceeds ``limit``; return the ratio."""
        ratio = self.imbalance(policy)
        if not ratio <= limit:
            detail = "a weight is 0 (an empty bin)" if math.isinf(ratio) else f"max/min = {ratio:.4g}"
            raise WeightImbalanceError(
                f"training weights are too unbalanced: {detail} > limit {limit:g} (policy '{policy}'); "
                "use more statistics, a coarser binning, or raise weights.limit"
            )
        return ratio

    def to_correctionlib(self) -> Any:
        """A correctionlib ``CorrectionSet`` with inputs (tau_type, pt, abs_eta)."""
        import correctionlib.schemav2 as cs

        items = []
        for name, code in TYPE_CODES.items():
            if name not in self.values:
                continue
            rows = [
                cs.Binning(nodetype="binning", input="abs_eta", edges=[float(x) for x in self.eta_edges[r]],
                           content=[float(v) for v in self.values[name][r]], flow=0.0)
                for r in range(len(self.pt_edges) - 1)
            ]
            items.append(cs.CategoryItem(key=code, value=cs.Binning(
                nodetype="binning", input="pt", edges=[float(x) for x in self.pt_edges], content=rows, flow=0.0)))
        correction = cs.Correction(
            name=CORRECTION_NAME,
            version=1,
            description="training sample weight: genuine-tau (pT, |eta|) spectrum / spectrum of the tau's type "
                        "(TauMLTools DataLoader hist_weights); 0 outside [20, 1000) GeV and |eta| >= 2.5",
            inputs=[
                cs.Variable(name="tau_type", type="int", description="tauType (e=0, mu=1, tau=2, jet=3)"),
                cs.Variable(name="pt", type="real", description="tau_pt [GeV]"),
                cs.Variable(name="abs_eta", type="real", description="|tau_eta|"),
            ],
            output=cs.Variable(name="weight", type="real", description="sample weight"),
            data=cs.Category(nodetype="category", input="tau_type", content=items, default=0.0),
        )
        return cs.CorrectionSet(schema_version=2, description="taucoffea training weights", corrections=[correction])

    def write(self, path: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
        """Write the correctionlib JSON atomically and validate it by loading it back."""
        from taucoffea.columns.atomic import write_text_atomic

        text = self.to_correctionlib().model_dump_json(exclude_unset=True, indent=1)
        out = write_text_atomic(path, text + "\n", overwrite=overwrite)
        load_weights(out)
        return out


def _edges_importable(target: Sequence[float], source: np.ndarray, what: str) -> None:
    """The reference's ``can_be_imported``: each target edge must be a source edge."""
    src = np.asarray(source, float)
    for e in target:
        if not np.any(np.abs(src - e) <= 2 * FLT_EPSILON * max(1.0, abs(e))):
            raise ConfigError(f"training weights: {what} edge {e} is not an edge of the input histogram; cannot rebin")


def _rebin(spec: Spectrum, pt_edges: Sequence[float], eta_edges: Sequence[Sequence[float]], xmax: float) -> list[np.ndarray]:
    counts, x_edges, y_edges = spec
    _edges_importable(pt_edges, y_edges, "pT")
    for row in eta_edges:
        _edges_importable(row, x_edges, "|eta|")
    xc = 0.5 * (x_edges[:-1] + x_edges[1:])
    yc = 0.5 * (y_edges[:-1] + y_edges[1:])
    pt = np.asarray(pt_edges, float)
    rows = [np.zeros(len(e) - 1) for e in eta_edges]
    row_of = np.searchsorted(pt, yc, side="right") - 1
    for j in np.flatnonzero((row_of >= 0) & (row_of < len(pt) - 1)):
        e = np.asarray(eta_edges[row_of[j]], float)
        col = np.searchsorted(e, xc, side="right") - 1
        ok = (xc >= 0.0) & (xc < xmax) & (col >= 0) & (col < e.size - 1)
        np.add.at(rows[row_of[j]], col[ok], counts[ok, j])
    return rows


def compute_training_weights(
    spectra: Mapping[str, Spectrum],
    *,
    pt_edges: Sequence[float] = PT_EDGES,
    eta_edges: Sequence[Sequence[float]] | None = None,
    target: str = "tau",
    xmax: float = 2.5,
) -> TrainingWeights:
    """Weights ``target / type`` per bin for every type present in ``spectra`` (§6.3)."""
    eta_edges = [tuple(e) for e in (eta_edges or default_eta_edges(pt_edges))]
    if len(eta_edges) != len(pt_edges) - 1:
        raise ConfigError(f"training weights: {len(eta_edges)} |eta| binnings for {len(pt_edges) - 1} pT rows")
    if target not in spectra:
        raise InputError(f"training weights: no '{target}' spectrum (the reweighting target) in the input")
    tgt = _rebin(spectra[target], pt_edges, eta_edges, xmax)
    values: dict[str, list[np.ndarray]] = {}
    populated: dict[str, list[np.ndarray]] = {}
    zero_share: dict[str, float] = {}
    for name in TYPE_CODES:
        if name not in spectra:
            continue
        src = _rebin(spectra[name], pt_edges, eta_edges, xmax)
        values[name] = [np.divide(t, s, out=np.zeros_like(t), where=s > 0) for t, s in zip(tgt, src)]
        populated[name] = [(s > 0) & (t > 0) for t, s in zip(tgt, src)]
        lost = sum(float(s[(s > 0) & (t <= 0)].sum()) for t, s in zip(tgt, src))
        total = sum(float(s.sum()) for s in src)
        zero_share[name] = lost / total if total > 0 else 0.0
    weights = TrainingWeights(tuple(float(x) for x in pt_edges), eta_edges, values, populated, zero_share)
    lost = {k: v for k, v in zero_share.items() if v > 0}
    if lost:
        warnings.warn(
            "training weights: some taus fall in bins without genuine taus and get weight 0: "
            + ", ".join(f"{k} {100 * v:.2g}%" for k, v in lost.items()),
            stacklevel=2,
        )
    return weights


class _Evaluator:
    """Vectorised weight lookup; pickles as its file path (worker processes reload it)."""

    def __init__(self, correction: Any, path: str) -> None:
        self.correction, self.path = correction, path

    def __getstate__(self) -> dict[str, str]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, str]) -> None:
        self.__dict__.update(load_weights(state["path"]).__dict__)

    def __call__(self, tau_type: np.ndarray, pt: np.ndarray, abs_eta: np.ndarray) -> np.ndarray:
        return np.asarray(
            self.correction.evaluate(np.asarray(tau_type, dtype=np.int64), np.asarray(pt, dtype=np.float64),
                                     np.asarray(abs_eta, dtype=np.float64)),
            dtype=np.float64,
        )


def load_weights(path: str | os.PathLike[str]) -> _Evaluator:
    """A vectorised ``weight(tau_type, pt, abs_eta)`` from a training-weights correctionlib file."""
    import correctionlib

    p = Path(path)
    if not p.exists():
        raise ConfigError(f"training weights file '{p}' does not exist")
    try:
        cset = correctionlib.CorrectionSet.from_file(str(p))
    except Exception as err:  # correctionlib raises RuntimeError/ValueError on bad JSON
        raise ConfigError(f"training weights file '{p}' is not a valid correctionlib file: {err}") from None
    if CORRECTION_NAME not in cset:
        names = list(json.loads(p.read_text()).get("corrections", []))
        raise ConfigError(f"training weights file '{p}' has no correction '{CORRECTION_NAME}' (found {len(names)} others)")
    return _Evaluator(cset[CORRECTION_NAME], str(p))
