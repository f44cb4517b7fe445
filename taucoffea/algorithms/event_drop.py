"""Event drop: keep probabilities that turn an observed pT spectrum into a target shape.

Reference spec §7.2 (``EventDrop.py`` + ``DatasetDrop``): with ``r = target / observed`` per
bin, an entry is kept with probability ``r / max(r)`` of its bin. The most under-populated bin
(relative to the target) keeps everything, every other bin is thinned down to the target's
shape, so the expected kept spectrum is ``target / max(r)`` in every bin where the input has
entries.

Deliberate differences from the original:

* entries outside the binning (below 30 or above 400 GeV by default) are always dropped; the
  original used the under/overflow ratio, which is 0 in practice;
* a bin with no observed entries gets probability 0 (ROOT ``Divide`` gives 0 there too); if the
  target is non-zero in such a bin the kept shape cannot match it there, and the bin is
  reported as *unmatched* instead of silently ignored;
* an entry is kept when ``u < p`` with ``u`` uniform in [0, 1) from the counter-based
  generator (so exactly probability ``p``); the original used ``TRandom3.Rndm() ≤ p``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from taucoffea.errors import ConfigError, InputError

__all__ = [
    "DEFAULT_PT_EDGES",
    "KEEP_CORRECTION",
    "KeepProbabilities",
    "bin_index",
    "check_edges",
    "keep_mask",
    "keep_probabilities",
    "kept_shape_test",
    "rebin_values",
    "to_correctionlib",
]

#: EventDrop pT binning of the original (15 bins, 30–400 GeV).
DEFAULT_PT_EDGES: tuple[float, ...] = (30, 35, 40, 45, 50, 55, 60, 65, 70, 80, 90, 100, 120, 140, 200, 400)

#: Name of the correction in the keep-probability correctionlib file.
KEEP_CORRECTION = "event_drop_keep_probability"


def check_edges(edges: Sequence[float], what: str = "pT bin edges") -> np.ndarray:
    """Validated, strictly increasing, finite bin edges as float64."""
    arr = np.asarray(edges, dtype=np.float64)
    if arr.ndim != 1 or arr.size < 2 or not np.all(np.isfinite(arr)) or np.any(np.diff(arr) <= 0):
        raise ConfigError(f"{what} must be at least two finite, strictly increasing numbers, got {list(edges)}")
    return arr


def rebin_values(src_edges: Sequence[float], values: Sequence[float], dst_edges: Sequence[float], *, what: str = "target") -> np.ndarray:
    """Sum a histogram's bins into coarser ``dst_edges``, each of which must be a source edge.

    A datacard histogram usually has finer (or exactly the same) bins than the drop binning;
    anything that would need splitting a bin is refused rather than guessed.
    """
    src = check_edges(src_edges, f"{what} bin edges")
    dst = check_edges(dst_edges)
    vals = np.asarray(values, dtype=np.float64)
    if vals.shape != (src.size - 1,):
        raise InputError(f"{what}: {vals.size} values for {src.size - 1} bins")
    idx = np.searchsorted(src, dst)
    tol = 1e-9 * np.maximum(1.0, np.abs(dst))
    ok = (idx < src.size) & (np.abs(src[np.minimum(idx, src.size - 1)] - dst) <= tol)
    if not np.all(ok):
        bad = [float(e) for e, good in zip(dst, ok, strict=True) if not good]
        raise InputError(
            f"{what} bin edges {src.tolist()} cannot be summed into the pT binning {dst.tolist()}: "
            f"edge(s) {bad} are not edges of the {what} histogram"
        )
    csum = np.concatenate([[0.0], np.cumsum(vals)])
    return csum[idx[1:]] - csum[idx[:-1]]


@dataclass(frozen=True)
class KeepProbabilities:
    """Keep probability per regular bin (flow bins: always 0)."""

    edges: np.ndarray
    probability: np.ndarray
    ratio: np.ndarray
    unmatched: tuple[int, ...]  #: bins with target > 0 but no observed entries

    def expected_kept(self, observed: Sequence[float]) -> np.ndarray:
        return np.asarray(observed, dtype=np.float64) * self.probability


def keep_probabilities(edges: Sequence[float], target: Sequence[float], observed: Sequence[float]) -> KeepProbabilities:
    """``r = target/observed`` (0 where observed is 0), normalised to its maximum (see module doc)."""
    e = check_edges(edges)
    t = np.asarray(target, dtype=np.float64)
    o = np.asarray(observed, dtype=np.float64)
    n = e.size - 1
    if t.shape != (n,) or o.shape != (n,):
        raise InputError(f"target ({t.size}) and observed ({o.size}) histograms must both have {n} bins")
    if np.any(t < 0) or not np.all(np.isfinite(t)):
        raise InputError("target histogram has negative or non-finite bin contents")
    ratio = np.divide(t, o, out=np.zeros(n), where=o > 0)
    top = float(ratio.max())
    if top <= 0:
        raise InputError(
            "target and observed pT spectra do not overlap (every bin has target 0 or no entries); "
            f"observed per bin {o.tolist()}, target {t.tolist()}"
        )
    prob = np.clip(ratio / top, 0.0, 1.0)
    unmatched = tuple(int(i) for i in np.flatnonzero((o <= 0) & (t > 0)))
    return KeepProbabilities(e, prob, ratio, unmatched)


def bin_index(pt: Any, edges: np.ndarray) -> np.ndarray:
    """Regular bin of each value, −1 outside ``[edges[0], edges[-1])`` (or NaN)."""
    x = np.asarray(pt, dtype=np.float64)
    idx = np.searchsorted(edges, x, side="right") - 1
    idx[(idx < 0) | (idx >= edges.size - 1) | ~np.isfinite(x)] = -1
    return idx


def keep_mask(pt: Any, uniforms: np.ndarray, keep: KeepProbabilities) -> np.ndarray:
    """Keep decision per entry: ``u < p(bin of pT)``; out-of-range entries are never kept."""
    idx = bin_index(pt, keep.edges)
    prob = np.where(idx >= 0, keep.probability[np.maximum(idx, 0)], 0.0)
    return np.asarray(uniforms) < prob


def kept_shape_test(observed: Sequence[float], kept: Sequence[float], keep: KeepProbabilities) -> dict[str, float]:
    """χ² of the kept counts against their known expectation ``observed·p`` (binomial variance).

    Equivalently a test that the kept spectrum has the target's shape in every matched bin.
    """
    o = np.asarray(observed, dtype=np.float64)
    k = np.asarray(kept, dtype=np.float64)
    p = keep.probability
    mean = o * p
    var = o * p * (1.0 - p)
    use = var > 0
    chi2 = float(np.sum((k[use] - mean[use]) ** 2 / var[use]))
    ndf = int(use.sum())
    fixed = ~use & ((k - mean) != 0)
    if np.any(fixed):  # p = 0 or 1 bins must match exactly
        chi2 = float("inf")
    pvalue = float(stats.chi2.sf(chi2, ndf)) if ndf > 0 else (0.0 if np.isinf(chi2) else 1.0)
    return {"chi2": chi2, "ndf": ndf, "pvalue": pvalue, "n_kept": float(k.sum()), "n_expected": float(mean.sum())}


def to_correctionlib(probabilities: Mapping[str, KeepProbabilities], *, description: str = "") -> Any:
    """Keep probabilities as a correctionlib ``CorrectionSet``: inputs ``dataset`` (string), ``pt``.

    ``pt`` outside the binning gives 0 (flow content 0), matching :func:`keep_mask`; a dataset
    that is not in the file is an error.
    """
    import correctionlib.schemav2 as cs

    items = []
    for name, keep in probabilities.items():
        items.append(
            cs.CategoryItem(
                key=name,
                value=cs.Binning(
                    nodetype="binning", input="pt", edges=[float(x) for x in keep.edges],
                    content=[float(x) for x in keep.probability], flow=0.0,
                ),
            )
        )
    correction = cs.Correction(
        name=KEEP_CORRECTION,
        version=1,
        description=description or "EventDrop keep probability per dataset and tau pT (taucoffea)",
        inputs=[
            cs.Variable(name="dataset", type="string", description="dataset (contribution) name"),
            cs.Variable(name="pt", type="real", description="tau_pt [GeV]"),
        ],
        output=cs.Variable(name="keep_probability", type="real", description="probability to keep the entry"),
        data=cs.Category(nodetype="category", input="dataset", content=items),
    )
    return cs.CorrectionSet(schema_version=2, description="taucoffea event drop", corrections=[correction])
