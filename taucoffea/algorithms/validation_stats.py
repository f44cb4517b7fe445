"""Statistics for ``taucoffea validate`` and the shuffle & merge closure report.

Validation (reference spec §4) asks whether each chunk of the shuffled output looks like a
random draw from the same mixture as a reference chunk: same tau-type, sample-type and
data-group composition, and the same pT / η spectra within each of those. Two tests:

* **χ² (default)** — the two-sample test for *unweighted* histograms with different totals
  (ROOT ``TH1::Chi2Test`` option ``"UU"``; Gagunashvili, NIM A 614 (2010) 287)::

      χ² = 1/(N₁N₂) · Σᵢ (N₂·n₁ᵢ − N₁·n₂ᵢ)² / (n₁ᵢ + n₂ᵢ),   ndf = (#bins with n₁ᵢ + n₂ᵢ > 0) − 1

  with p = P(χ²_ndf > χ²). The original normalised both histograms and called
  ``Chi2Test(h, "NORM")`` after ``Sumw2()``, i.e. treated unit-normalised counts as weighted;
  on raw counts the UU statistic is the exact one, so we use it. Flow bins are extra bins
  (nothing is silently outside the test).
* **KS** — ``scipy.stats.ks_2samp`` on the *unbinned* pT / η values (more powerful than
  ROOT's binned ``KolmogorovTest``). Category variables (tau type, sample type, ids) have no
  order, so their composition is always tested with χ².

**Each chunk against the rest of the output** (``chi2_vs_rest``, ``ks_vs_rest``) is the
alternative to the original's fixed reference chunk: against one reference, every p-value
shares that chunk's fluctuation, so they fail in correlated groups; against the rest, the
p-values of a fair split are (nearly) independent and uniform. The KS statistic against the
rest needs no second sort per chunk: with ``N`` values in all, ``n`` in the chunk and
``m = N − n`` in the rest, ``F_rest = (N·F_all − n·F_chunk)/m``, so
``F_chunk − F_rest = (N/m)·(F_chunk − F_all)`` and the supremum is found at the chunk's own
values (right-continuous values and left limits) by binary search in the sorted whole.

A test with an empty side gives ``None`` (the original wrote the sentinel 99, which reads like a
p-value to a careless consumer); slices empty on both sides are left out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from scipy import stats

from taucoffea.errors import ConfigError
from taucoffea.physics.tautypes import TAU_TYPE_NAMES, SampleType

__all__ = [
    "Chi2Result",
    "TypeClosure",
    "chi2_test",
    "chi2_vs_rest",
    "closure_report",
    "compare_chunks",
    "failed_tests",
    "ks_test",
    "ks_vs_rest",
    "merge_pvalues",
]

_TESTS = ("chi2", "ks")
_UNKNOWN = "unknown"
#: Maps a chunk's columns to category indices of one variable.
_Coder = Callable[[Mapping[str, Any]], np.ndarray]


class Chi2Result(NamedTuple):
    chi2: float
    ndf: int
    pvalue: float  #: NaN when either histogram is empty (nothing to compare)


def chi2_test(counts1: Any, counts2: Any) -> Chi2Result:
    """Two-sample χ² homogeneity test of unweighted histograms (ROOT "UU"; module docstring)."""
    n1 = np.asarray(counts1, dtype=np.float64).ravel()
    n2 = np.asarray(counts2, dtype=np.float64).ravel()
    if n1.shape != n2.shape:
        raise ConfigError(f"chi2_test: histograms have {n1.size} and {n2.size} bins")
    if np.any(n1 < 0) or np.any(n2 < 0):
        raise ConfigError("chi2_test: counts must be >= 0 (unweighted histograms)")
    N1, N2 = n1.sum(), n2.sum()
    if N1 <= 0 or N2 <= 0:
        return Chi2Result(float("nan"), 0, float("nan"))
    used = (n1 + n2) > 0
    ndf = int(used.sum()) - 1
    if ndf <= 0:  # everything in one bin on both sides: identical shapes
        return Chi2Result(0.0, 0, 1.0)
    a, b = n1[used], n2[used]
    chi2 = float(np.sum((N2 * a - N1 * b) ** 2 / (a + b)) / (N1 * N2))
    return Chi2Result(chi2, ndf, float(stats.chi2.sf(chi2, ndf)))


def ks_test(values1: Any, values2: Any) -> float:
    """Two-sample Kolmogorov–Smirnov p-value on unbinned values; NaN if a sample is empty."""
    x1 = np.asarray(values1, dtype=np.float64).ravel()
    x2 = np.asarray(values2, dtype=np.float64).ravel()
    if x1.size == 0 or x2.size == 0:
        return float("nan")
    return float(stats.ks_2samp(x1, x2).pvalue)


def chi2_vs_rest(counts: Any) -> list[float]:
    """χ² p-value of each row of ``counts`` (chunks × bins) against the sum of all other rows."""
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 2:
        raise ConfigError(f"chi2_vs_rest: counts must be chunks x bins, got shape {c.shape}")
    total = c.sum(axis=0)
    return [chi2_test(row, total - row).pvalue for row in c]


#: ``scipy.stats.ks_2samp``'s ``method="auto"`` is exact up to this sample size
_KS_EXACT_MAX = 10_000


def ks_vs_rest(values: Any, splits: Sequence[int]) -> list[float]:
    """KS p-value of each part ``values[splits[k]:splits[k+1]]`` against all other values.

    Equal to ``ks_2samp(part, rest).pvalue`` (tested), at the cost of one sort of ``values``
    plus one sort per part (module docstring): the p-value follows scipy's ``auto`` method —
    exact for samples up to 10 000 (computed by scipy itself on the two samples), Smirnov's
    distribution ``kstwo`` at ``round(n·m/(n+m))`` beyond. NaN where a side is empty.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    bounds = np.asarray(splits, dtype=np.int64)
    if bounds.ndim != 1 or bounds.size < 2 or bounds[0] != 0 or bounds[-1] != x.size or np.any(np.diff(bounds) < 0):
        raise ConfigError(f"ks_vs_rest: splits must rise from 0 to {x.size}")
    everything = np.sort(x)
    total = x.size
    out = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        n, m = int(b - a), int(total - (b - a))
        if n == 0 or m == 0:
            out.append(float("nan"))
            continue
        if max(n, m) <= _KS_EXACT_MAX:
            out.append(float(stats.ks_2samp(x[a:b], np.concatenate([x[:a], x[b:]])).pvalue))
            continue
        part = np.sort(x[a:b])
        above = np.searchsorted(part, part, side="right") / n - np.searchsorted(everything, part, side="right") / total
        below = np.searchsorted(everything, part, side="left") / total - np.searchsorted(part, part, side="left") / n
        d = min(1.0, total / m * max(float(above.max()), float(below.max()), 0.0))
        out.append(float(np.clip(stats.kstwo.sf(d, np.round(n * m / (n + m))), 0.0, 1.0)))
    return out


# ---------------------------------------------------------------------- chunk comparison


def compare_chunks(
    chunk: Mapping[str, Any],
    reference: Mapping[str, Any],
    *,
    group_ids: Mapping[str, Any],
    dataset_ids: Mapping[str, Any] | None = None,
    test: str = "chi2",
    pt_hist: tuple[int, float, float] = (100, 0.0, 1000.0),
    eta_hist: tuple[int, float, float] = (10, -2.5, 2.5),
) -> dict[str, Any]:
    """Nested p-values of one chunk against a reference chunk, laid out as ``pvalues.json``.

    ``chunk`` and ``reference`` map column names to 1-D arrays: ``tauType``, ``sampleType``,
    ``dataset_group_id``, ``tau_pt``, ``tau_eta`` and, with ``dataset_ids``, ``dataset_id``.
    ``group_ids`` / ``dataset_ids`` are the S&M hash tables (name → hash, values may be strings
    as in the original JSON). Result, for each top-level variable ``V`` in ``tauType``,
    ``sampleType``, ``uh_dataset_group_id`` (and ``uh_dataset_id``)::

        {V: {"pvalue": p_composition,
             <category>: {"tau_pt": {"pvalue": p}, "tau_eta": {"pvalue": p}}, ...}}

    plus ``uh_dataset_group_id/<group>/uh_dataset_id`` (datasets within a group) when
    ``dataset_ids`` is given. Categories are tau-type names, sample-type names, group and
    dataset names (sorted by name, as the original's ``uh_`` indices), ``unknown`` for values
    outside the tables. p is ``None`` when one side is empty.
    """
    if test not in _TESTS:
        raise ConfigError(f"unknown validation test {test!r}; allowed: {', '.join(_TESTS)}")
    sample_types = list(SampleType)
    group_names = sorted(group_ids)
    variables: list[tuple[str, list[str], _Coder]] = [
        ("tauType", list(TAU_TYPE_NAMES), _coder("tauType", range(len(TAU_TYPE_NAMES)))),
        ("sampleType", [s.name for s in sample_types], _coder("sampleType", [int(s) for s in sample_types])),
        ("uh_dataset_group_id", group_names,
         _coder("dataset_group_id", [_as_hash(group_ids[n]) for n in group_names])),
    ]
    dataset_names: list[str] = []
    if dataset_ids is not None:
        dataset_names = sorted(dataset_ids)
        variables.append(
            ("uh_dataset_id", dataset_names,
             _coder("dataset_id", [_as_hash(dataset_ids[n]) for n in dataset_names]))
        )
    pt_edges = np.linspace(pt_hist[1], pt_hist[2], int(pt_hist[0]) + 1)
    eta_edges = np.linspace(eta_hist[1], eta_hist[2], int(eta_hist[0]) + 1)
    cols = ("tau_pt", "tau_eta")

    out: dict[str, Any] = {}
    for top, labels, code in variables:
        c_chunk, c_ref = code(chunk), code(reference)
        node: dict[str, Any] = {"pvalue": _composition_p(c_chunk, c_ref, len(labels) + 1)}
        for k, label in enumerate([*labels, _UNKNOWN]):
            m_chunk, m_ref = c_chunk == k, c_ref == k
            if not m_chunk.any() and not m_ref.any():
                continue
            sub: dict[str, Any] = {}
            for col, edges in zip(cols, (pt_edges, eta_edges), strict=True):
                x1 = _column(chunk, col)[m_chunk]
                x2 = _column(reference, col)[m_ref]
                if test == "ks":
                    p = ks_test(x1, x2)
                else:
                    p = chi2_test(_hist_with_flow(x1, edges), _hist_with_flow(x2, edges)).pvalue
                sub[col] = {"pvalue": _p(p)}
            if top == "uh_dataset_group_id" and dataset_ids is not None:
                ds_code = variables[-1][2]  # datasets within this group
                sub["uh_dataset_id"] = {
                    "pvalue": _composition_p(
                        ds_code(chunk)[m_chunk], ds_code(reference)[m_ref], len(dataset_names) + 1
                    )
                }
            node[label] = sub
        out[top] = node
    return out


def merge_pvalues(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Merge per-chunk :func:`compare_chunks` results into ``{…: {"pvalues": [p per chunk]}}``.

    A test missing for some chunk (its slice was empty on both sides) gets ``None`` there, so
    every list has one entry per chunk, in the order given.
    """
    paths: dict[tuple[str, ...], list[Any]] = {}
    for i, res in enumerate(results):
        for path, p in _leaves(res):
            paths.setdefault(path, [None] * len(results))[i] = p
    merged: dict[str, Any] = {}
    for path, values in paths.items():
        node = merged
        for key in path:
            node = node.setdefault(key, {})
        node["pvalues"] = values
    return merged


def failed_tests(pvalues: Mapping[str, Any], threshold: float = 0.05) -> dict[str, list[int]]:
    """``{"tauType/tau/tau_pt": [chunk indices with p < threshold]}`` for a merged result."""
    out: dict[str, list[int]] = {}

    def walk(node: Mapping[str, Any], path: tuple[str, ...]) -> None:
        for key, value in node.items():
            if key == "pvalues":
                bad = [i for i, p in enumerate(value) if p is not None and p < threshold]
                if bad:
                    out["/".join(path)] = bad
            elif isinstance(value, Mapping):
                walk(value, (*path, key))

    walk(pvalues, ())
    return out


def _leaves(node: Mapping[str, Any], path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = []
    for key, value in node.items():
        if key == "pvalue":
            found.append((path, value))
        elif isinstance(value, Mapping):
            found.extend(_leaves(value, (*path, key)))
    return found


def _composition_p(codes1: np.ndarray, codes2: np.ndarray, n_categories: int) -> float | None:
    """χ² p-value of two category-index samples (index n_categories - 1 = unknown)."""
    counts1 = np.bincount(codes1, minlength=n_categories)
    counts2 = np.bincount(codes2, minlength=n_categories)
    return _p(chi2_test(counts1, counts2).pvalue)


def _p(p: float) -> float | None:
    return None if np.isnan(p) else float(p)


def _as_hash(value: Any) -> int:
    try:
        h = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"hash table value {value!r} is not an integer") from None
    if not 0 <= h < 2**64:
        raise ConfigError(f"hash table value {value!r} is not a 64-bit unsigned integer")
    return h


def _column(columns: Mapping[str, Any], name: str) -> np.ndarray:
    try:
        return np.asarray(columns[name]).ravel()
    except KeyError:
        raise ConfigError(f"validation needs column {name!r}, which the chunk lacks") from None


def _coder(name: str, codes: Iterable[int]) -> _Coder:
    """Map column values to category indices 0..len(codes)-1, anything else to len(codes)."""
    table = np.asarray(list(codes), dtype=np.uint64)
    order = np.argsort(table, kind="stable")
    sorted_codes = table[order]

    def code(columns: Mapping[str, Any]) -> np.ndarray:
        raw = _column(columns, name)
        if raw.dtype.kind in "if":
            valid = raw >= 0  # NaN and negative codes are unknown
            values = np.where(valid, raw, 0).astype(np.uint64)
        else:
            values = raw.astype(np.uint64)
            valid = np.ones(values.shape, dtype=bool)
        if sorted_codes.size == 0:
            return np.zeros(values.shape, dtype=np.int64)
        pos = np.clip(np.searchsorted(sorted_codes, values), 0, sorted_codes.size - 1)
        hit = valid & (sorted_codes[pos] == values)
        return np.where(hit, order[pos], sorted_codes.size).astype(np.int64)

    return code


def _hist_with_flow(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts in [under, bins…, over]; a value at the last edge (or NaN) is overflow, as in ROOT."""
    idx = np.searchsorted(edges, np.asarray(x, dtype=np.float64), side="right")
    return np.bincount(idx, minlength=edges.size + 1)


# --------------------------------------------------------------------------- closure


@dataclass(frozen=True, eq=False)
class TypeClosure:
    """Observed vs expected accepted counts of one tau type over the (|η|, pT) bins."""

    pulls: np.ndarray  #: (o − e)/σ per bin; 0 where σ = 0 and o = e, ±inf where σ = 0 and o ≠ e
    chi2: float
    ndf: int  #: bins with σ > 0
    pvalue: float
    n_observed: float
    n_expected: float

    @property
    def chi2_ndf(self) -> float:
        return self.chi2 / self.ndf if self.ndf else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """Plain types for strict JSON: a non-finite number (an impossible count's ±∞ pull and
        χ², χ²/ndf with ndf = 0) is ``None``, since ``json`` would write non-standard
        ``Infinity``/``NaN`` that other readers reject."""
        return {
            "chi2": _finite_or_none(self.chi2), "ndf": self.ndf,
            "chi2_ndf": _finite_or_none(self.chi2_ndf), "pvalue": _finite_or_none(self.pvalue),
            "n_observed": self.n_observed, "n_expected": self.n_expected,
            "pulls": _finite_or_none(self.pulls.tolist()),
        }


def _finite_or_none(value: Any) -> Any:
    """``value`` (a number or nested lists of numbers) with every non-finite number as ``None``."""
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    value = float(value)
    return value if np.isfinite(value) else None


def closure_report(
    observed_counts: Mapping[str, Any],
    expected_counts: Mapping[str, Any],
    expected_variance: Mapping[str, Any] | None = None,
) -> dict[str, TypeClosure]:
    """Per-type pulls and χ²/ndf of observed vs expected accepted counts per (|η|, pT) bin.

    Shuffle & merge aims at a flat (|η|, pT) spectrum per type, so ``expected_counts`` (from
    :func:`~taucoffea.algorithms.acceptance.expected_by_type`) is flat over the flattened
    region and this χ² is the flatness test. ``expected_variance`` defaults to Poisson
    (= expected); pass the binomial variance ``Σ E·a·(1 − a)`` for the exact test — bins
    accepted with probability 1 then have σ = 0 and must match exactly. Arrays of a type must
    have equal shapes (any binning, flow bins included or not). χ² = Σ pull² over bins with
    σ > 0, p = P(χ²_ndf > χ²); an impossible count (σ = 0, o ≠ e) gives χ² = ∞, p = 0.
    """
    if set(observed_counts) != set(expected_counts):
        raise ConfigError(
            f"closure_report: observed types {sorted(observed_counts)} differ from expected "
            f"types {sorted(expected_counts)}"
        )
    report: dict[str, TypeClosure] = {}
    for t in expected_counts:
        o = np.asarray(observed_counts[t], dtype=np.float64)
        e = np.asarray(expected_counts[t], dtype=np.float64)
        v = e if expected_variance is None else np.asarray(expected_variance[t], dtype=np.float64)
        if o.shape != e.shape or v.shape != e.shape:
            raise ConfigError(
                f"closure_report: type {t!r}: shapes differ (observed {o.shape}, expected "
                f"{e.shape}, variance {v.shape})"
            )
        sigma_ok = v > 0
        pulls = np.zeros_like(e)
        pulls[sigma_ok] = (o[sigma_ok] - e[sigma_ok]) / np.sqrt(v[sigma_ok])
        exact = ~sigma_ok
        mismatch = exact & (np.abs(o - e) > 1e-9 * np.maximum(1.0, np.abs(e)))
        pulls[mismatch] = np.sign(o[mismatch] - e[mismatch]) * np.inf
        ndf = int(sigma_ok.sum())
        if mismatch.any():
            chi2, p = float("inf"), 0.0
        else:
            chi2 = float(np.sum(pulls[sigma_ok] ** 2))
            p = float(stats.chi2.sf(chi2, ndf)) if ndf else 1.0
        report[t] = TypeClosure(pulls, chi2, ndf, p, float(o.sum()), float(e.sum()))
    return report
