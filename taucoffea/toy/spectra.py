"""Reco-tau kinematics: pT from per-class spectra, |η| flat with a fall-off at the tracker edge.

The features are generated *conditionally* on (pT, |η|) and the truth log-likelihoods are
conditional densities, so these spectra shape the samples (and what shuffle & merge has to
flatten) without entering the Bayes-optimal discriminant.
"""

from __future__ import annotations

import numpy as np

from taucoffea.toy.datasets import Spectrum

__all__ = ["PT_MAX", "PT_MIN", "sample_abs_eta", "sample_pt"]

PT_MIN = 20.0
PT_MAX = 5000.0
_ETA_PLATEAU = 2.0
_ETA_MAX = 2.5


def _power_law(rng: np.random.Generator, n: int, index: float) -> np.ndarray:
    # inverse CDF of pT^-index on [PT_MIN, PT_MAX]
    a = 1.0 - index
    lo, hi = PT_MIN**a, PT_MAX**a
    return (lo + rng.random(n) * (hi - lo)) ** (1.0 / a)


def sample_pt(rng: np.random.Generator, spectrum: Spectrum, n: int) -> np.ndarray:
    """``n`` pT values (GeV, float64) from a :class:`Spectrum` mixture, clipped to [20, 5000]."""
    weights = np.array([w for w, _, _ in spectrum.components], dtype=float)
    comp = np.searchsorted(np.cumsum(weights / weights.sum()), rng.random(n), side="right")
    comp = np.minimum(comp, len(weights) - 1)
    out = np.empty(n)
    for i, (_, kind, params) in enumerate(spectrum.components):
        sel = np.flatnonzero(comp == i)
        m = sel.size
        if m == 0:
            continue
        if kind == "power":
            out[sel] = _power_law(rng, m, params[0])
        elif kind == "gamma":
            out[sel] = PT_MIN + rng.gamma(params[0], params[1], m)
        elif kind == "beta":
            lo, hi, a, b = params
            out[sel] = lo + (hi - lo) * rng.beta(a, b, m)
        else:  # pragma: no cover - registry is static
            raise ValueError(f"unknown spectrum component kind {kind!r}")
    return np.clip(out, PT_MIN, PT_MAX)


def sample_abs_eta(rng: np.random.Generator, n: int, eta_max: float = _ETA_MAX) -> np.ndarray:
    """|η|: flat up to 2.0, then linearly falling to zero at 2.5 (tracker acceptance edge).

    ``eta_max`` < 2.5 truncates the same shape (used for the μτ control region, |η| < 2.3).
    """
    tail_area = 0.5 * (_ETA_MAX - _ETA_PLATEAU)
    p_plateau = _ETA_PLATEAU / (_ETA_PLATEAU + tail_area)
    u = rng.random(n)
    v = rng.random(n)
    plateau = u < p_plateau
    out = np.where(plateau, _ETA_PLATEAU * v,
                   _ETA_MAX - (_ETA_MAX - _ETA_PLATEAU) * np.sqrt(v))
    if eta_max < _ETA_MAX:
        bad = out >= eta_max
        # rejection by redraw from the plateau region keeps the shape below eta_max flat-ish;
        # a few loops suffice since the mass above 2.3 is small
        while bad.any():
            k = int(bad.sum())
            u2, v2 = rng.random(k), rng.random(k)
            out[bad] = np.where(u2 < p_plateau, _ETA_PLATEAU * v2,
                                _ETA_MAX - (_ETA_MAX - _ETA_PLATEAU) * np.sqrt(v2))
            bad = out >= eta_max
    return out
