"""Compiled steps of the light model's object sets (:func:`taucoffea.ml.inputs.build_sets`).

Building the sets is the training loader's main cost: per tau, a few dozen objects are ranked
by pT, the first ``K`` per group scaled and written into a mostly-zero ``(n, K, width)``
tensor. In numpy that is a two-key ``lexsort`` plus gathers, temporaries and fancy-index
scatters; here it is two passes that release the interpreter lock (``nogil``), so Keras' step
and the loader thread can run side by side.

Both kernels reproduce the numpy definitions bit for bit (tested against them):

* the order is ``np.lexsort((-pt, tau))``: by tau, then by decreasing pT (NaN last), ties in
  input order;
* a value is ``clamp((x − mean)/std, lo, hi)`` in float64 with NaN and ±inf results set to 0,
  then rounded to float32 — the same operations, in the same order, as
  :func:`taucoffea.ml.features.apply_scaling`.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["rank_slots", "scatter_scaled"]


@numba.njit(cache=True, nogil=True)
def _before(neg_a: float, ia: int, neg_b: float, ib: int) -> bool:
    """Whether key (−pT a, index a) sorts before (−pT b, index b), NaN after every number."""
    if neg_a != neg_a:
        return neg_b != neg_b and ia < ib
    if neg_b != neg_b:
        return True
    if neg_a < neg_b:
        return True
    if neg_a > neg_b:
        return False
    return ia < ib


@numba.njit(cache=True, nogil=True)
def rank_slots(tau: np.ndarray, pt: np.ndarray, n_tau: int, k: int) -> np.ndarray:
    """Per object, its slot ``tau · K + rank`` among its tau's objects by decreasing pT, or −1
    when the rank is ``K`` or more (the object does not enter the set)."""
    n = tau.size
    start = np.zeros(n_tau + 1, np.int64)
    for i in range(n):
        start[tau[i] + 1] += 1
    for t in range(n_tau):
        start[t + 1] += start[t]
    fill = start[:-1].copy()
    by_tau = np.empty(n, np.int64)  # counting sort by tau keeps the input order within a tau
    for i in range(n):
        by_tau[fill[tau[i]]] = i
        fill[tau[i]] += 1
    slots = np.full(n, -1, np.int64)
    for t in range(n_tau):
        lo, hi = start[t], start[t + 1]
        for a in range(lo + 1, hi):  # insertion sort: a tau has a few dozen objects at most
            j = by_tau[a]
            neg = -pt[j]
            b = a - 1
            while b >= lo and _before(neg, j, -pt[by_tau[b]], by_tau[b]):
                by_tau[b + 1] = by_tau[b]
                b -= 1
            by_tau[b + 1] = j
        for r in range(min(hi - lo, k)):
            slots[by_tau[lo + r]] = t * k + r
    return slots


@numba.njit(cache=True, nogil=True)
def scatter_scaled(
    flat: np.ndarray,
    slots: np.ndarray,
    raw: np.ndarray,
    inner: np.ndarray,
    p_inner: np.ndarray,
    p_outer: np.ndarray,
    offset: int,
) -> None:
    """Write the scaled features of every object with a slot into ``flat[slot, offset:…]``,
    each with its own cone's parameters (rows of ``p_*``: mean, std, lo, hi)."""
    width = raw.shape[1]
    for i in range(slots.size):
        s = slots[i]
        if s < 0:
            continue
        p = p_inner if inner[i] else p_outer
        for c in range(width):
            v = (raw[i, c] - p[0, c]) / p[1, c]
            if v == v:  # NaN stays NaN through the clamp, as in numpy
                v = max(v, p[2, c])
                v = min(v, p[3, c])
            if v != v or v == np.inf or v == -np.inf:
                v = 0.0
            flat[s, offset + c] = np.float32(v)
