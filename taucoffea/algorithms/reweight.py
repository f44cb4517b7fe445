"""pT weights per contribution so that the weighted MC of a mixture batch matches the data.

The mixture takes a fixed number of taus per batch from each contribution (``n_c``), so what
the adversary sees in a pT bin ``i`` is, in expectation per batch,

    E_c(i) = n_c · H_c(i) / N_c          (H_c: the contribution's pT histogram, N_c its total)

for every contribution, data included. The target per batch is the data's ``E_data(i)`` or,
with an explicit target histogram ``t``, ``n_data · t(i) / Σ t``. Two ways to split the MC
total between contributions:

``common`` (default)
    one scale per bin for all MC contributions: ``w(i) = T(i) / Σ_MC E_c(i)``. The MC
    composition inside each bin stays what the batch composition and the spectra make it;
    only the total is matched.
``per-contribution``
    each MC contribution is matched to its share of the target:
    ``w_c(i) = f_c · T(i) / E_c(i)`` with ``f_c = n_c / Σ_MC n``. Every contribution then has
    the target's pT shape, so no combination of contribution-specific features and pT is left
    for the adversary; it needs every contribution populated wherever the target is.

Either way ``Σ_MC w_c(i) E_c(i) = T(i)`` in every matched bin (the closure), the total MC
weight per batch equals the data's ``n_data``, and data rows have weight 1.

Empty bins: where the target is 0 the MC weight is 0 (those rows carry no weight, as no data
is there); where the MC to be weighted is empty the weight is 1 (no row can use it) and, if the
target is not 0, the bin is reported as *unmatched* — no weight can put MC where there is none.
Outside the binning the weight is 0 for every contribution (the correctionlib flow value):
the event drop already removed such rows, and anything left there is not balanced.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from taucoffea.algorithms.event_drop import check_edges
from taucoffea.errors import ConfigError, InputError

__all__ = ["MODES", "WEIGHT_CORRECTION", "PtWeights", "compute_pt_weights", "to_correctionlib"]

MODES: tuple[str, ...] = ("common", "per-contribution")

#: Name of the correction in the weights' correctionlib file.
WEIGHT_CORRECTION = "adversarial_pt_weight"


@dataclass(frozen=True)
class PtWeights:
    """Weights per contribution (rows, in ``names`` order) and regular pT bin (columns)."""

    edges: np.ndarray
    names: tuple[str, ...]
    dataset_ids: tuple[int, ...]
    data_name: str
    mode: str
    per_batch: np.ndarray  #: n_c
    expected: np.ndarray  #: E_c(i), taus per batch per bin
    target: np.ndarray  #: T(i)
    weights: np.ndarray  #: w_c(i)
    unmatched: tuple[tuple[str, int], ...]  #: (contribution or "MC", bin) that cannot be matched

    def weighted_mc(self) -> np.ndarray:
        mc = np.array([n != self.data_name for n in self.names])
        return (self.weights[mc] * self.expected[mc]).sum(axis=0)

    def closure(self) -> np.ndarray:
        """``Σ_MC w·E − T`` per bin; 0 up to rounding except in unmatched bins."""
        return self.weighted_mc() - self.target

    def weight_of(self, name: str) -> np.ndarray:
        return self.weights[self.names.index(name)]

    def summary(self) -> str:
        head = f"{'bin [GeV]':>14} {'target':>9} {'weighted MC':>12} {'closure':>10}  " + " ".join(f"{n[:9]:>9}" for n in self.names)
        lines = [f"pT weights ({self.mode}); taus per batch per bin, weights per contribution", head]
        wmc, clo = self.weighted_mc(), self.closure()
        for i in range(self.edges.size - 1):
            w = " ".join(f"{x:>9.4f}" for x in self.weights[:, i])
            lines.append(f"{self.edges[i]:>6.0f}-{self.edges[i + 1]:<7.0f} {self.target[i]:>9.4f} {wmc[i]:>12.4f} {clo[i]:>10.2e}  {w}")
        if self.unmatched:
            lines.append(f"unmatched (no MC where the target is non-zero): {list(self.unmatched)}")
        return "\n".join(lines)


def compute_pt_weights(
    edges: Sequence[float],
    counts: Mapping[str, Sequence[float]],
    per_batch: Mapping[str, int],
    dataset_ids: Mapping[str, int],
    data_name: str,
    *,
    target: Sequence[float] | None = None,
    mode: str = "common",
) -> PtWeights:
    """Weights from each contribution's pT counts per regular bin (see module doc)."""
    if mode not in MODES:
        raise ConfigError(f"reweight mode '{mode}' is not known; allowed: {', '.join(MODES)}")
    e = check_edges(edges)
    nb = e.size - 1
    names = tuple(per_batch)
    if data_name not in names:
        raise ConfigError(f"the data contribution '{data_name}' is not in the composition {list(names)}")
    missing = [n for n in names if n not in counts]
    if missing:
        raise InputError(f"no pT histogram for contribution(s) {missing}")
    H = np.array([np.asarray(counts[n], dtype=np.float64) for n in names])
    if H.shape != (len(names), nb):
        raise InputError(f"pT histograms must have {nb} bins")
    n = np.array([per_batch[nm] for nm in names], dtype=np.float64)
    totals = H.sum(axis=1)
    empty = [nm for nm, t, k in zip(names, totals, n, strict=True) if t <= 0 and k > 0]
    if empty:
        raise InputError(f"contribution(s) {empty} have no entries inside the pT binning {e.tolist()}")
    E = np.divide(H * n[:, None], totals[:, None], out=np.zeros_like(H), where=totals[:, None] > 0)
    d = names.index(data_name)
    if target is None:
        T = E[d].copy()
    else:
        t = np.asarray(target, dtype=np.float64)
        if t.shape != (nb,) or np.any(t < 0) or t.sum() <= 0:
            raise InputError(f"target must be {nb} non-negative bin contents with a positive sum")
        T = n[d] * t / t.sum()
    mc = np.array([i != d for i in range(len(names))]) & (n > 0)
    W = np.ones_like(H)
    unmatched: list[tuple[str, int]] = []
    if mode == "common":
        M = E[mc].sum(axis=0)
        w = np.where(M > 0, np.divide(T, M, out=np.zeros(nb), where=M > 0), 1.0)
        W[mc] = w
        unmatched += [("MC", int(i)) for i in np.flatnonzero((M <= 0) & (T > 0))]
    else:
        f = n / n[mc].sum()
        for c in np.flatnonzero(mc):
            share = f[c] * T
            W[c] = np.where(E[c] > 0, np.divide(share, E[c], out=np.zeros(nb), where=E[c] > 0), 1.0)
            unmatched += [(names[c], int(i)) for i in np.flatnonzero((E[c] <= 0) & (share > 0))]
    W[d] = 1.0
    if not np.all(np.isfinite(W)) or np.any(W < 0):
        raise InputError("pT weights came out negative or non-finite; check the input histograms")
    ids = tuple(int(dataset_ids[nm]) for nm in names)
    return PtWeights(e, names, ids, data_name, mode, n, E, T, W, tuple(unmatched))


def to_correctionlib(weights: PtWeights, *, description: str = "") -> Any:
    """The weights as correctionlib: inputs ``dataset_id`` (int), ``pt``; flow content 0."""
    import correctionlib.schemav2 as cs

    items = [
        cs.CategoryItem(
            key=int(did),
            value=cs.Binning(
                nodetype="binning", input="pt", edges=[float(x) for x in weights.edges],
                content=[float(x) for x in weights.weights[k]], flow=0.0,
            ),
        )
        for k, did in enumerate(weights.dataset_ids)
    ]
    legend = ", ".join(f"{did}={name}" for did, name in zip(weights.dataset_ids, weights.names, strict=True))
    correction = cs.Correction(
        name=WEIGHT_CORRECTION,
        version=1,
        description=description or f"adversarial pT weight ({weights.mode}); dataset_id: {legend}; 0 outside the pT binning",
        inputs=[
            cs.Variable(name="dataset_id", type="int", description=f"mixture contribution id ({legend})"),
            cs.Variable(name="pt", type="real", description="tau_pt [GeV]"),
        ],
        output=cs.Variable(name="weight", type="real", description="adversarial sample weight"),
        data=cs.Category(nodetype="category", input="dataset_id", content=items),
    )
    return cs.CorrectionSet(schema_version=2, description="taucoffea adversarial pT weights", corrections=[correction])
