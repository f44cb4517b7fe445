"""Weighted quantiles with the SAS definition 5 ("averaged inverted CDF").

The original working-point derivation takes its thresholds from
``statsmodels.DescrStatsW.quantile``, which implements SAS definition 5 for weighted data.
We implement the same definition so that thresholds agree with the original on the same
inputs, and because it has the property the working points need: for integer weights it is
exactly the unweighted quantile of the data with every value repeated ``w`` times, and
without weights it is numpy's ``method="averaged_inverted_cdf"`` (Hyndman–Fan type 2).

Definition. Sort the distinct values ``y_1 < … < y_m``, sum the weights of equal values
into ``w_j``, let ``s_j = w_1 + … + w_j`` and ``W = s_m``. For a probability ``p`` put
``t = p·W`` and take the first ``j`` with ``s_j ≥ t``. If ``t`` sits on the boundary
``s_j`` (within ``1e-10·W``) and ``j < m``, the quantile is ``(y_j + y_{j+1}) / 2``;
otherwise it is ``y_j``.

Deviations from statsmodels, all immaterial for positive weights and kept on purpose:
* the boundary tolerance is relative (``1e-10·W``) rather than absolute ``1e-10``, so that a
  global rescaling of the weights (luminosity normalisation) never changes a quantile;
* the search for ``j`` allows for the same tolerance, so a ``t`` that exceeds ``s_j`` by a
  rounding error still counts as the boundary at ``s_j``;
* entries with zero weight are dropped first (statsmodels keeps their values as distinct
  ``y_j``, which can shift a boundary average onto a value that carries no weight);
* values are used in float64 as given; the original cast scores to float32 (Appendix A.21),
  which merges scores closer than ~6e-8 — exactly where the tight vs-μ thresholds live.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from taucoffea.errors import InputError

__all__ = ["weighted_quantile"]

_BOUNDARY_RTOL = 1e-10


def weighted_quantile(
    values: ArrayLike, quantiles: ArrayLike, weights: ArrayLike | None = None
) -> np.ndarray:
    """Weighted SAS-definition-5 quantiles of ``values`` at probabilities ``quantiles``.

    Returns float64 values with the shape of ``quantiles`` (a 0-d array for a scalar).
    Raises :class:`InputError` for empty data, NaN values, negative or non-finite weights,
    or probabilities outside [0, 1].
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    q = np.asarray(quantiles, dtype=np.float64)
    if np.any(~np.isfinite(q)) or np.any((q < 0) | (q > 1)):
        raise InputError(f"weighted_quantile: probabilities must lie in [0, 1], got {q!r}")
    if np.any(np.isnan(v)):
        raise InputError("weighted_quantile: values contain NaN")
    if weights is None:
        w = np.ones_like(v)
    else:
        w = np.asarray(weights, dtype=np.float64).ravel()
        if w.shape != v.shape:
            raise InputError(
                f"weighted_quantile: {w.size} weights for {v.size} values"
            )
        if np.any(~np.isfinite(w)) or np.any(w < 0):
            raise InputError("weighted_quantile: weights must be finite and non-negative")
        keep = w > 0
        v, w = v[keep], w[keep]
    if v.size == 0:
        raise InputError("weighted_quantile: no values with positive weight")

    order = np.argsort(v, kind="stable")
    v, w = v[order], w[order]
    starts = np.flatnonzero(np.r_[True, v[1:] != v[:-1]])
    y = v[starts]
    cw = np.cumsum(np.add.reduceat(w, starts))
    total = cw[-1]
    tol = _BOUNDARY_RTOL * total

    target = q.ravel() * total
    j = np.searchsorted(cw, target - tol, side="left")
    j = np.minimum(j, y.size - 1)
    out = y[j].copy()
    on_boundary = (np.abs(cw[j] - target) <= tol) & (j < y.size - 1)
    jb = j[on_boundary]
    out[on_boundary] = 0.5 * (y[jb] + y[jb + 1])
    return out.reshape(q.shape)
