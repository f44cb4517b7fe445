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

from taucoffea.algorithms.scaling import Moments, QuantileHist

__all__ = ["segment_statistics"]

_N_KEYS = 1 << 16


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
