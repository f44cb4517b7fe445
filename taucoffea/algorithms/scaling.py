"""Feature-scaling statistics: exact mergeable moments, quantile histograms, parameter formulas.

The trainer applies ``clamp((x − mean)/std, lim_min, lim_max)`` per feature and cone
(reference §5, §6.4). This module holds everything about those parameters that is pure
arithmetic, so that the coffea processor only selects values and the merge of separately run
jobs is the same code as the merge of chunks.

Why the accumulators look the way they do
------------------------------------------
* :class:`Moments` keeps the count and the sums Σx and Σx² as **exact rationals**
  (``fractions.Fraction`` with power-of-two denominators). Each chunk contributes float64
  sums around a shift r near the chunk's mean — Σ(x−r) and Σ(x−r)², so a large mean never
  cancels the variance — converted exactly (:meth:`Moments.from_values` here, the compiled
  pass of :mod:`taucoffea.algorithms.feature_stats` in the processor). Adding
  accumulators is then exact, hence associative and commutative: a result does not depend
  on the executor, on the order in which chunks come back, or on how files were grouped into
  jobs; only a chunk's internal float64 rounding (relative ~1e-16) depends on the chunk size.
* ±inf and NaN never enter a moment: they are counted (``nan``, ``posinf``, ``neginf``)
  and reported, so a single bad value cannot poison a mean (reference A.15).
* :class:`QuantileHist` is a sparse histogram over the float32 bit pattern truncated to
  sign, exponent and 7 mantissa bits (a "bfloat16" key), with the exact minimum and maximum
  of every bin. It merges by adding counts, and quantiles follow ``np.quantile``'s linear
  interpolation with each order statistic interpolated between its bin's min and max. The
  error is at most the width of the bins holding the order statistics: 2⁻⁷ ≈ 0.8 % of the
  value's magnitude (values below float32's smallest normal, 1.2e-38, share one bin).
  It is exact for the global min and max, for order statistics that are a bin's min or max,
  and whenever a bin holds one distinct value — so every integer-valued feature with
  |x| < 256 (flags, counts, charges, hit numbers) gets exact quantiles.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

__all__ = [
    "CONE_NAMES",
    "QUANTILE_SIGMAS",
    "SCALING_TYPES",
    "ConeDefinition",
    "Moments",
    "QuantileHist",
    "clamp_range",
    "cone_masks",
    "delta_phi",
    "fraction_from_str",
    "fraction_to_str",
    "parameter_entry",
    "quantile_levels",
    "signal_cone_radius",
    "snapshot_plan",
    "suspicious_flags",
]

#: Scaling types understood by the trainer (reference §5.2).
SCALING_TYPES: tuple[str, ...] = ("no_scaling", "categorical", "linear", "normal")
#: Cone keys of the parameter JSON: ``global`` for per-tau types, ``inner``/``outer`` else.
CONE_NAMES: tuple[str, ...] = ("global", "inner", "outer")
#: The two-sided σ levels of the quantile summary (reference §5.3).
QUANTILE_SIGMAS: tuple[int, ...] = (1, 2, 3, 5)


# --------------------------------------------------------------------------------------------
# cones


@dataclass(frozen=True)
class ConeDefinition:
    """Signal cone ``max(opening_coef / max(pT, min_pt), min_radius)`` and the outer ΔR."""

    min_pt: float = 30.0
    min_radius: float = 0.05
    opening_coef: float = 3.0
    outer_dr: float = 0.5


def signal_cone_radius(tau_pt: np.ndarray, cone: ConeDefinition) -> np.ndarray:
    """The DeepTau inner-cone radius per tau (3/max(pT, 30) floored at 0.05 by default)."""
    pt = np.asarray(tau_pt, dtype=np.float64)
    return np.maximum(cone.opening_coef / np.maximum(pt, cone.min_pt), cone.min_radius)


def delta_phi(phi1: np.ndarray, phi2: np.ndarray) -> np.ndarray:
    """``phi1 − phi2`` wrapped into [−π, π) for any input (the reference wraps only once)."""
    d = np.asarray(phi1, dtype=np.float64) - np.asarray(phi2, dtype=np.float64)
    return np.mod(d + np.pi, 2.0 * np.pi) - np.pi


def cone_masks(
    tau_pt: np.ndarray,
    tau_eta: np.ndarray,
    tau_phi: np.ndarray,
    eta: np.ndarray,
    phi: np.ndarray,
    cone: ConeDefinition,
) -> tuple[np.ndarray, np.ndarray]:
    """(inner, outer) masks of constituents; tau arrays are already broadcast per element.

    inner: ΔR < r_sig; outer: r_sig ≤ ΔR < outer_dr. The DataLoader fills inner cells with
    ``ΔR < r_sig`` (reference §6.4) — the reference scaling used ``≤`` (A.10); we follow the
    loader, the parameters describe the objects the network sees. The two only differ for a
    constituent exactly on the cone boundary.
    """
    deta = np.asarray(eta, dtype=np.float64) - np.asarray(tau_eta, dtype=np.float64)
    dphi = delta_phi(phi, tau_phi)
    dr = np.hypot(deta, dphi)
    r_sig = signal_cone_radius(tau_pt, cone)
    inner = dr < r_sig
    outer = (dr >= r_sig) & (dr < cone.outer_dr)
    return inner, outer


# --------------------------------------------------------------------------------------------
# exact rational helpers


def fraction_to_str(value: Fraction) -> str:
    """Exact text form: ``"<hex numerator>p<exp2>"`` for dyadic values, ``"n/d"`` otherwise."""
    num, den = value.numerator, value.denominator
    if den & (den - 1) == 0:
        if num == 0:
            return "0p0"
        shift = (num & -num).bit_length() - 1
        sign = "-" if num < 0 else ""
        return f"{sign}{abs(num) >> shift:x}p{shift - (den.bit_length() - 1)}"
    return f"{num}/{den}"


def fraction_from_str(text: str) -> Fraction:
    """Inverse of :func:`fraction_to_str`."""
    if "p" in text:
        mant, exp = text.split("p")
        m = int(mant, 16)
        e = int(exp)
        return Fraction(m << e) if e >= 0 else Fraction(m, 1 << -e)
    return Fraction(text)


# --------------------------------------------------------------------------------------------
# moments


class Moments:
    """Count, Σx and Σx² as exact rationals, plus counts of the non-finite values left out.

    Mergeable with ``+`` (coffea accumulates it like a number). See the module docstring.
    """

    __slots__ = ("n", "s1", "s2", "nan", "posinf", "neginf")

    def __init__(
        self,
        n: int = 0,
        s1: Fraction | int = 0,
        s2: Fraction | int = 0,
        nan: int = 0,
        posinf: int = 0,
        neginf: int = 0,
    ) -> None:
        self.n = int(n)
        self.s1 = Fraction(s1)
        self.s2 = Fraction(s2)
        self.nan, self.posinf, self.neginf = int(nan), int(posinf), int(neginf)

    @classmethod
    def from_values(cls, values: np.ndarray, *, finite: bool = False) -> Moments:
        """Moments of ``values``; non-finite entries are counted and excluded
        (``finite=True``: the caller has already removed them)."""
        x = np.asarray(values, dtype=np.float64).ravel()
        ok = np.ones(0, bool) if finite else np.isfinite(x)
        nan = posinf = neginf = 0
        if not finite and not ok.all():
            bad = x[~ok]
            nan = int(np.isnan(bad).sum())
            posinf = int((bad > 0).sum())
            neginf = int((bad < 0).sum())
            x = x[ok]
        out = cls(0, 0, 0, nan, posinf, neginf)
        if x.size == 0:
            return out
        with np.errstate(over="ignore", invalid="ignore"):
            r = float(np.sum(x)) / x.size  # shift: the chunk mean, so that the sums below are centred
            d = x - r
            s1c = float(np.sum(d))
            np.multiply(d, d, out=d)
            q = float(np.sum(d))
        if not (math.isfinite(r) and math.isfinite(s1c) and math.isfinite(q)):
            # float64 overflow (|x| ≳ 1e154): fall back to exact Python arithmetic
            fx = [Fraction(float(v)) for v in x]
            out.n, out.s1, out.s2 = x.size, sum(fx, Fraction(0)), sum((v * v for v in fx), Fraction(0))
            return out
        shifted = cls.from_shifted_sums(x.size, r, s1c, q)
        assert shifted is not None
        out.n, out.s1, out.s2 = shifted.n, shifted.s1, shifted.s2
        return out

    @classmethod
    def from_shifted_sums(cls, n: int, shift: float, s1: float, s2: float) -> Moments | None:
        """Moments of ``n`` finite values from Σ(x−shift) and Σ(x−shift)² (None if any of the
        three floats overflowed: the caller must then sum exactly)."""
        if not (math.isfinite(shift) and math.isfinite(s1) and math.isfinite(s2)):
            return None
        if n == 0:
            return cls()
        fr, fc = Fraction(shift), Fraction(s1)
        # Σx = n·r + Σ(x−r) and Σx² = Σ(x−r)² + 2rΣ(x−r) + n·r², exact given the float64 sums;
        # the float64 rounding is relative to the spread of the values, not to their mean
        return cls(n, n * fr + fc, Fraction(s2) + 2 * fr * fc + n * fr * fr)

    # -- merging ----------------------------------------------------------------------------

    def __add__(self, other: Moments) -> Moments:
        if not isinstance(other, Moments):
            return NotImplemented
        return Moments(
            self.n + other.n,
            self.s1 + other.s1,
            self.s2 + other.s2,
            self.nan + other.nan,
            self.posinf + other.posinf,
            self.neginf + other.neginf,
        )

    def __iadd__(self, other: Moments) -> Moments:
        if not isinstance(other, Moments):
            return NotImplemented
        self.n += other.n
        self.s1 += other.s1
        self.s2 += other.s2
        self.nan += other.nan
        self.posinf += other.posinf
        self.neginf += other.neginf
        return self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Moments):
            return NotImplemented
        return self.state() == other.state()

    def __repr__(self) -> str:
        return f"Moments(n={self.n}, mean={self.mean}, std={self.std}, nonfinite={self.nonfinite})"

    @classmethod
    def total(cls, items: Iterable[Moments]) -> Moments:
        out = cls()
        for m in items:
            out += m
        return out

    # -- results ----------------------------------------------------------------------------

    def state(self) -> tuple[Any, ...]:
        return (self.n, self.s1, self.s2, self.nan, self.posinf, self.neginf)

    @property
    def nonfinite(self) -> int:
        return self.nan + self.posinf + self.neginf

    @property
    def mean(self) -> float | None:
        return float(self.s1 / self.n) if self.n else None

    @property
    def sqmean(self) -> float | None:
        return float(self.s2 / self.n) if self.n else None

    @property
    def variance(self) -> float | None:
        """Population variance, from the exact sums (clamped at 0 against rounding)."""
        if not self.n:
            return None
        m = self.s1 / self.n
        return max(float(self.s2 / self.n - m * m), 0.0)

    @property
    def std(self) -> float | None:
        var = self.variance
        return None if var is None else math.sqrt(var)

    def to_json(self) -> dict[str, Any]:
        return {
            "num": self.n,
            "sum": fraction_to_str(self.s1),
            "sumsq": fraction_to_str(self.s2),
            "nan": self.nan,
            "posinf": self.posinf,
            "neginf": self.neginf,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Moments:
        return cls(
            data["num"],
            fraction_from_str(data["sum"]),
            fraction_from_str(data["sumsq"]),
            data.get("nan", 0),
            data.get("posinf", 0),
            data.get("neginf", 0),
        )


# --------------------------------------------------------------------------------------------
# quantile histograms


def quantile_levels() -> dict[str, tuple[float, float]]:
    """``{"1sigma": (Φ(−1), Φ(1)), …}`` — the two-sided levels of the quantile summary."""
    out = {}
    for k in QUANTILE_SIGMAS:
        left = 0.5 * math.erfc(k / math.sqrt(2.0))
        out[f"{k}sigma"] = (left, 1.0 - left)
    return out


def _bin_keys(x: np.ndarray) -> np.ndarray:
    """Bin of each value: the top 16 bits of its float32 pattern (sign, exponent, 7 mantissa
    bits — a bfloat16), as native indices 0…65535. Not ordered like the values for negative
    numbers; :func:`_value_order` sorts the (few) occupied bins when quantiles are asked for.
    """
    with np.errstate(over="ignore"):
        bits = x.astype(np.float32).view(np.uint32)
    bits >>= 16
    return bits.astype(np.intp)


def _value_order(keys: np.ndarray) -> np.ndarray:
    """Monotone-in-value rank of bin keys (negative patterns reversed, −0.0 just below +0.0)."""
    k = np.asarray(keys, dtype=np.int64)
    return np.where(k >= 0x8000, 0xFFFF - k, k + 0x8000)


class QuantileHist:
    """Sparse, mergeable histogram with exact per-bin min/max (see the module docstring).

    ``keys`` are float32 bit-pattern bins in ascending pattern order (a canonical form, so
    equal inputs give equal objects); quantiles sort the bins by value first.
    """

    __slots__ = ("keys", "counts", "mins", "maxs")

    def __init__(
        self,
        keys: np.ndarray | None = None,
        counts: np.ndarray | None = None,
        mins: np.ndarray | None = None,
        maxs: np.ndarray | None = None,
    ) -> None:
        self.keys = np.zeros(0, np.int64) if keys is None else np.asarray(keys, np.int64)
        self.counts = np.zeros(0, np.int64) if counts is None else np.asarray(counts, np.int64)
        self.mins = np.zeros(0) if mins is None else np.asarray(mins, np.float64)
        self.maxs = np.zeros(0) if maxs is None else np.asarray(maxs, np.float64)

    @classmethod
    def from_values(cls, values: np.ndarray, *, finite: bool = False) -> QuantileHist:
        """Histogram of the finite entries of ``values`` (``finite=True``: already checked)."""
        x = np.asarray(values, dtype=np.float64).ravel()
        if not finite and x.size and not np.isfinite(x).all():
            x = x[np.isfinite(x)]
        if x.size == 0:
            return cls()
        k = _bin_keys(x)
        k_min = int(k.min())
        span = int(k.max()) - k_min + 1
        if span <= 2 * x.size + 256:
            # dense over the occupied key range: O(n + span), no sort
            if k_min:
                k -= k_min
            counts = np.bincount(k, minlength=span)
            used = np.flatnonzero(counts)
            mins = np.full(span, np.inf)
            maxs = np.full(span, -np.inf)
            np.minimum.at(mins, k, x)
            np.maximum.at(maxs, k, x)
            return cls(used + k_min, counts[used], mins[used], maxs[used])
        used, inverse, counts = np.unique(k, return_inverse=True, return_counts=True)
        mins = np.full(used.size, np.inf)
        maxs = np.full(used.size, -np.inf)
        np.minimum.at(mins, inverse, x)
        np.maximum.at(maxs, inverse, x)
        return cls(used, counts, mins, maxs)

    def __add__(self, other: QuantileHist) -> QuantileHist:
        if not isinstance(other, QuantileHist):
            return NotImplemented
        if other.keys.size == 0:
            return self.copy()
        if self.keys.size == 0:
            return other.copy()
        if np.array_equal(self.keys, other.keys):
            return QuantileHist(self.keys.copy(), self.counts + other.counts,
                                np.minimum(self.mins, other.mins), np.maximum(self.maxs, other.maxs))
        keys = np.concatenate([self.keys, other.keys])
        keys.sort()
        keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
        counts = np.zeros(keys.size, np.int64)
        mins = np.full(keys.size, np.inf)
        maxs = np.full(keys.size, -np.inf)
        for h in (self, other):
            i = np.searchsorted(keys, h.keys)
            counts[i] += h.counts
            mins[i] = np.minimum(mins[i], h.mins)
            maxs[i] = np.maximum(maxs[i], h.maxs)
        return QuantileHist(keys, counts, mins, maxs)

    __iadd__ = __add__

    def copy(self) -> QuantileHist:
        return QuantileHist(self.keys.copy(), self.counts.copy(), self.mins.copy(), self.maxs.copy())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QuantileHist):
            return NotImplemented
        return all(np.array_equal(getattr(self, a), getattr(other, a)) for a in self.__slots__)

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def _by_value(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        order = np.argsort(_value_order(self.keys), kind="stable")
        return self.counts[order], self.mins[order], self.maxs[order]

    def order_statistics(self, ranks: np.ndarray) -> np.ndarray:
        """Estimated sorted values at 0-based ``ranks`` (linear between bin min and max)."""
        counts, mins, maxs = self._by_value()
        ranks = np.asarray(ranks, dtype=np.int64)
        ends = np.cumsum(counts)
        j = np.searchsorted(ends, ranks, side="right")
        c = counts[j]
        local = ranks - (ends[j] - c)
        lo, hi = mins[j], maxs[j]
        frac = np.where(c > 1, local / np.maximum(c - 1, 1), 0.0)
        return np.where(local >= c - 1, hi, lo + (hi - lo) * frac)

    def quantiles(self, probs: Sequence[float]) -> np.ndarray:
        """``np.quantile(x, probs)`` (linear method) estimated from the histogram."""
        n = self.total
        p = np.asarray(probs, dtype=np.float64)
        h = (n - 1) * p
        lo = np.floor(h).astype(np.int64)
        hi = np.minimum(lo + 1, n - 1)
        frac = h - lo
        x = self.order_statistics(np.concatenate([lo, hi]))  # one sort of the bins for both
        x_lo, x_hi = x[: lo.size], x[lo.size :]
        return x_lo + frac * (x_hi - x_lo)

    def summary(self) -> dict[str, Any]:
        """The reference's quantile record: median, min, max, {k}sigma {left, right}."""
        levels = quantile_levels()
        if self.total == 0:
            out: dict[str, Any] = {"median": None, "min": None, "max": None}
            out.update({k: {"left": None, "right": None} for k in levels})
            return out
        probs = [0.5] + [p for pair in levels.values() for p in pair]
        q = self.quantiles(probs)
        out = {"median": float(q[0]), "min": float(self.mins.min()), "max": float(self.maxs.max())}
        for i, name in enumerate(levels):
            out[name] = {"left": float(q[1 + 2 * i]), "right": float(q[2 + 2 * i])}
        return out

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"keys": self.keys, "counts": self.counts, "mins": self.mins, "maxs": self.maxs}

    @classmethod
    def from_arrays(cls, data: Mapping[str, np.ndarray]) -> QuantileHist:
        return cls(data["keys"], data["counts"], data["mins"], data["maxs"])


# --------------------------------------------------------------------------------------------
# parameter formulas (reference §5.2)


def parameter_entry(
    scaling: str, lims: tuple[float, float] | None, moments: Moments | None = None
) -> dict[str, Any]:
    """One ``{mean, std, lim_min, lim_max, sqmean, num}`` record.

    * ``no_scaling`` / ``categorical``: mean 0, std 1, limits "-inf"/"inf" (strings, as the
      reference writes them; read them with ``float()``), sqmean/num null.
    * ``linear`` with ``[a, b]``: mean (a+b)/2, std (b−a)/2, limits −1/1 — maps [a, b] onto
      [−1, 1] and clamps outside.
    * ``normal``: mean and population std of the values; limits ``[a, b]`` in σ units or
      "-inf"/"inf" without; num and sqmean from the same sums. With fewer than two values
      (the reference's "low statistics") mean, std and sqmean are null.

    Values are stored at full float64 precision (the reference rounded to 4 significant
    digits before merging, A.15; we round only for display).
    """
    if scaling in ("no_scaling", "categorical"):
        return {"mean": 0.0, "std": 1.0, "lim_min": "-inf", "lim_max": "inf", "sqmean": None, "num": None}
    if scaling == "linear":
        if lims is None:
            raise ValueError("linear scaling needs limits [a, b]")
        a, b = float(lims[0]), float(lims[1])
        return {"mean": (a + b) / 2.0, "std": (b - a) / 2.0, "lim_min": -1.0, "lim_max": 1.0, "sqmean": None, "num": None}
    if scaling == "normal":
        lim_min: float | str = float(lims[0]) if lims is not None else "-inf"
        lim_max: float | str = float(lims[1]) if lims is not None else "inf"
        m = moments or Moments()
        if m.n <= 1:
            return {"mean": None, "std": None, "lim_min": lim_min, "lim_max": lim_max, "sqmean": None, "num": m.n}
        return {"mean": m.mean, "std": m.std, "lim_min": lim_min, "lim_max": lim_max, "sqmean": m.sqmean, "num": m.n}
    raise ValueError(f"unknown scaling type '{scaling}'; allowed: {', '.join(SCALING_TYPES)}")


def _as_float(value: Any) -> float | None:
    if value is None:
        return None
    return float(value)  # accepts the "-inf"/"inf" strings


def clamp_range(entry: Mapping[str, Any]) -> tuple[float, float] | None:
    """Clamp range in the feature's own units: ``[mean + lim_min·std, mean + lim_max·std]``.

    ``None`` when mean or std is missing. Infinite limits give infinite ends (the reference
    raised a TypeError on the "-inf"/"inf" strings).
    """
    mean, std = _as_float(entry.get("mean")), _as_float(entry.get("std"))
    if mean is None or std is None:
        return None
    lo, hi = _as_float(entry["lim_min"]), _as_float(entry["lim_max"])
    assert lo is not None and hi is not None

    def end(lim: float) -> float:
        return lim * math.inf if math.isinf(lim) else mean + lim * std

    return end(lo), end(hi)


def suspicious_flags(clamp: tuple[float, float], quantiles: Mapping[str, Any]) -> dict[str, bool]:
    """The "suspicious" criteria of ``plot_quantile_ranges`` (reference §5.6)."""
    left, right = clamp
    flags = {
        "left_within": left > quantiles["2sigma"]["left"],
        "right_within": right < quantiles["2sigma"]["right"],
    }
    names = {1: "one", 2: "two", 3: "three", 5: "five"}
    for k in QUANTILE_SIGMAS:
        q = quantiles[f"{k}sigma"]
        flags[f"{names[k]}_sigma_empty"] = q["left"] == q["right"]
    return {k: bool(v) for k, v in flags.items()}


# --------------------------------------------------------------------------------------------
# snapshots


def snapshot_plan(n_items: int, step: int | None) -> list[tuple[int | None, int]]:
    """``[(log index or None for the final file, number of leading items included), …]``.

    Snapshot ``k`` holds the first ``(k+1)·step`` items, written while that is fewer than
    all items; the final parameters hold all ``n_items``. (The reference's ``file_i %
    log_step == 0`` rule gives 1, step+1, 2·step+1, … files instead; we count whole steps so
    that snapshot ``k`` really is "after (k+1)·step files", the same rule as its job merge.)
    """
    plan: list[tuple[int | None, int]] = []
    if step is not None and step >= 1:
        plan = [(k, (k + 1) * step) for k in range(max(n_items - 1, 0) // step)]
    plan.append((None, n_items))
    return plan
