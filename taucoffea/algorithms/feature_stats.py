"""One compiled pass per feature: moments, quantile histogram and non-finite counts together.

The scaling processor needs, for each (feature, cone), the count and shifted sums of the finite
values, their bfloat16-key histogram with per-bin min/max, and the number of NaN/±inf values.
Done with numpy that is ~10 passes over every value plus ``ufunc.at`` scatters (~18 ns a value);
the numba kernel below reads each value once (plus 64 samples for the shift), gathers through
the selection indices itself, and costs ~2–4 ns a value. The result is the same
:class:`~taucoffea.algorithms.scaling.Moments` and
:class:`~taucoffea.algorithms.scaling.QuantileHist` as their ``from_values`` (identical
histograms; sums in a different but fixed order, so equal to ~1e-15 relative and
deterministic). numba's one-off start in a process (LLVM, ~1 s) is paid once per worker; the
compiled kernel is cached on disk.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numba
import numpy as np

from taucoffea.algorithms.scaling import ConeDefinition, Moments, QuantileHist

__all__ = ["CONE_CODES", "cone_labels", "segment_statistics"]

_N_KEYS = 1 << 16
#: Element labels of :func:`cone_labels`.
CONE_CODES: dict[str, int] = {"inner": 1, "outer": 2}


@numba.njit(cache=True, nogil=True)
def _segment_kernel(values, idx, start, stop, hist, counts, mins, maxs, touched):  # pragma: no cover - compiled
    use_idx = idx.size > 0
    # the shift: mean of up to 64 evenly spaced finite values, close enough to the mean that
    # Σ(x−shift)² does not cancel (an offset of k·σ costs log10(1+k²) of 16 digits)
    step = max(1, (stop - start) // 64)
    n_sample = 0
    shift = 0.0
    for j in range(start, stop, step):
        x = np.float64(values[idx[j]] if use_idx else values[j])
        if np.isfinite(x):
            n_sample += 1
            shift += x
    shift = shift / n_sample if n_sample > 0 else 0.0
    # one pass: counts, sums around the shift, histogram keyed by the top 16 bits of float32(x)
    # sums in blocks of 256, the block sums added with Neumaier compensation: the error stays
    # ~256 ulp of the total whatever n (a plain running sum drifts by ~n ulp)
    n = 0
    nan = 0
    posinf = 0
    neginf = 0
    s1 = 0.0
    c1 = 0.0
    s2 = 0.0
    c2 = 0.0
    b1 = 0.0
    b2 = 0.0
    in_block = 0
    n_touched = 0
    buf = np.empty(1, np.float32)
    bits = buf.view(np.uint32)
    for j in range(start, stop):
        x = np.float64(values[idx[j]] if use_idx else values[j])
        if not np.isfinite(x):
            if np.isnan(x):
                nan += 1
            elif x > 0:
                posinf += 1
            else:
                neginf += 1
            continue
        n += 1
        d = x - shift
        b1 += d
        b2 += d * d
        in_block += 1
        if in_block == 256:
            t = s1 + b1
            c1 += (s1 - t) + b1 if abs(s1) >= abs(b1) else (b1 - t) + s1
            s1 = t
            t = s2 + b2
            c2 += (s2 - t) + b2 if abs(s2) >= abs(b2) else (b2 - t) + s2
            s2 = t
            b1 = 0.0
            b2 = 0.0
            in_block = 0
        if hist:
            buf[0] = np.float32(x)
            k = bits[0] >> 16
            c = counts[k]
            if c == 0:
                touched[n_touched] = k
                n_touched += 1
                mins[k] = x
                maxs[k] = x
            else:
                if x < mins[k]:
                    mins[k] = x
                if x > maxs[k]:
                    maxs[k] = x
            counts[k] = c + 1
    t = s1 + b1
    c1 += (s1 - t) + b1 if abs(s1) >= abs(b1) else (b1 - t) + s1
    t2 = s2 + b2
    c2 += (s2 - t2) + b2 if abs(s2) >= abs(b2) else (b2 - t2) + s2
    return n, shift, t + c1, t2 + c2, nan, posinf, neginf, n_touched


class _Scratch(threading.local):
    """Dense per-key arrays reused between calls (only touched keys are reset)."""

    def __init__(self) -> None:
        self.counts = np.zeros(_N_KEYS, np.int64)
        self.mins = np.empty(_N_KEYS, np.float64)
        self.maxs = np.empty(_N_KEYS, np.float64)
        self.touched = np.empty(_N_KEYS, np.int64)


_scratch = _Scratch()
_NO_INDEX = np.zeros(0, np.int64)


def segment_statistics(
    values: np.ndarray,
    idx: np.ndarray | None,
    segments: Sequence[tuple[int, int]],
    *,
    hist: bool = True,
) -> list[tuple[Moments, QuantileHist | None, np.ndarray | None]]:
    """Per segment ``[start, stop)`` of ``values[idx]`` (of ``values`` when ``idx`` is None):
    (moments of the finite values, their histogram or None, ``[nan, +inf, −inf]`` counts or
    None when all are finite).

    Segments are the cones of one selection, so a feature is gathered once for all of them.
    """
    values = np.asarray(values)
    if values.ndim != 1 or values.dtype.kind not in "biuf":
        raise TypeError(f"feature values must be a flat numeric array, got {values.dtype} with shape {values.shape}")
    index = _NO_INDEX if idx is None else np.ascontiguousarray(idx, dtype=np.int64)
    if not values.flags.c_contiguous:
        values = np.ascontiguousarray(values)
    s = _scratch
    out: list[tuple[Moments, QuantileHist | None, np.ndarray | None]] = []
    for start, stop in segments:
        if index.size == 0 and idx is not None:  # an empty selection
            start = stop = 0
        n, shift, s1, s2, nan, posinf, neginf, n_touched = _segment_kernel(
            values, index, start, stop, hist, s.counts, s.mins, s.maxs, s.touched
        )
        bad = np.array([nan, posinf, neginf], dtype=np.int64) if nan or posinf or neginf else None
        moments = Moments.from_shifted_sums(n, shift, s1, s2)
        if moments is None:  # float64 overflow: the exact slow path
            chosen = values[index[start:stop]] if idx is not None else values[start:stop]
            moments = Moments.from_values(chosen[np.isfinite(chosen)], finite=True)
        h = None
        if hist:
            keys = np.sort(s.touched[:n_touched])
            h = QuantileHist(keys, s.counts[keys], s.mins[keys], s.maxs[keys])
            s.counts[keys] = 0
        out.append((moments, h, bad))
    return out


# --------------------------------------------------------------------------------------------
# cones without per-element copies of the tau columns


@numba.njit(cache=True, nogil=True)
def _cone_label_kernel(counts, tau_pt, tau_eta, tau_phi, eta, phi, min_pt, min_radius, coef, outer_dr, out):  # pragma: no cover
    j = 0
    two_pi = 2.0 * np.pi
    o2_lo = outer_dr * outer_dr * (1.0 - 1e-12)
    o2_hi = outer_dr * outer_dr * (1.0 + 1e-12)
    for i in range(counts.size):
        r_sig = max(coef / max(np.float64(tau_pt[i]), min_pt), min_radius)
        r2_lo = r_sig * r_sig * (1.0 - 1e-12)
        r2_hi = r_sig * r_sig * (1.0 + 1e-12)
        t_eta = np.float64(tau_eta[i])
        t_phi = np.float64(tau_phi[i])
        for _ in range(counts[i]):
            deta = np.float64(eta[j]) - t_eta
            # np.mod(d + π, 2π) − π exactly as numpy computes it (fmod, then into [0, 2π))
            m = np.float64(phi[j]) - t_phi + np.pi
            if not (0.0 <= m < two_pi):  # fmod leaves [0, 2π) unchanged: only wrap the rest
                m = np.fmod(m, two_pi)
                if m < 0:
                    m += two_pi
            dphi = m - np.pi
            # ΔR² decides unless it lies within 1e-12 (relative) of a cone edge, where only
            # hypot's ΔR gives the numpy masks' exact answer: hypot costs ~5× a product
            d2 = deta * deta + dphi * dphi
            if d2 < r2_lo:
                out[j] = 1
            elif d2 > r2_hi and d2 < o2_lo:
                out[j] = 2
            elif d2 > r2_hi and d2 > o2_hi:
                out[j] = 0
            else:
                dr = np.hypot(deta, dphi)
                if dr < r_sig:
                    out[j] = 1
                elif dr >= r_sig and dr < outer_dr:
                    out[j] = 2
                else:
                    out[j] = 0
            j += 1


def cone_labels(counts: np.ndarray, tau_pt: np.ndarray, tau_eta: np.ndarray, tau_phi: np.ndarray,
                eta: np.ndarray, phi: np.ndarray, cone: ConeDefinition) -> np.ndarray:
    """Per element: 1 inner cone, 2 outer cone, 0 neither — :func:`cone_masks` with the tau
    columns given once per tau (``counts`` elements each) instead of broadcast."""
    counts = np.ascontiguousarray(counts, dtype=np.int64)
    if int(counts.sum()) != len(eta) or len(eta) != len(phi) or not (len(tau_pt) == len(tau_eta) == len(tau_phi) == counts.size):
        raise ValueError("cone_labels: element and tau arrays do not match the counts")
    out = np.empty(len(eta), np.int8)
    _cone_label_kernel(counts, *(np.ascontiguousarray(a) for a in (tau_pt, tau_eta, tau_phi, eta, phi)),
                       float(cone.min_pt), float(cone.min_radius), float(cone.opening_coef), float(cone.outer_dr), out)
    return out
