"""Weighted ROC curves, AUC, pruning, ratios and working-point points.

Conventions (shared with ``performance.json``, see ``docs/evaluation.md``):

* A ROC point ``k`` is the selection ``score >= thresholds[k]``; ``fpr``/``tpr`` are the
  weighted fractions of background/signal selected. Thresholds run from ``+inf`` (nothing
  selected, the point (0, 0)) down to the lowest score (everything selected, (1, 1)).
  Equal scores cannot be separated by any cut, so a group of equal scores is one step —
  a diagonal one when it holds both classes.
* The first threshold is ``+inf`` as in scikit-learn ≥ 1.3; older scikit-learn wrote
  ``max(score) + 1`` there (Appendix A.20). Only that placeholder differs, never a point;
  we always use ``+inf`` (written as ``null`` in JSON, which has no infinity).
* Working points use the strict cut ``score > threshold`` of the original (``count_passed``
  and the WP derivation); ROC thresholds use ``>=`` as scikit-learn does.
* Uncertainties are stored as distances ``[below, above]`` of shape ``(2, N)``, the layout
  matplotlib's ``errorbar`` expects, with correct names (the original's keys were swapped,
  Appendix A.18).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from taucoffea.algorithms.intervals import ONE_SIGMA_CL, clopper_pearson_weighted
from taucoffea.errors import ConfigError, InputError

__all__ = [
    "PRUNE_DECIMALS",
    "RocCurve",
    "auc",
    "prune",
    "roc_curve",
    "roc_ratio",
    "score_vs",
    "wp_points",
    "wp_points_from_masks",
]

#: TPR rounding per vs type used when pruning curves for ``performance.json`` (run3.yaml
#: ``roc_prune_decimal``): the vs-μ curves live at TPR > 0.98 and need one digit more.
PRUNE_DECIMALS: dict[str, int] = {"e": 3, "mu": 4, "jet": 3}


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64, copy=True)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class RocCurve:
    """A (pruned or full) ROC curve, or a set of working-point points.

    ``fpr``, ``tpr`` and ``thresholds`` have one entry per point; ``thresholds`` may be
    ``None`` (bit-mask working points have none). ``fpr_err``/``tpr_err`` are ``None`` or
    ``(2, N)`` arrays of distances ``[eff − lo, hi − eff]``.
    """

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray | None = None
    fpr_err: np.ndarray | None = None
    tpr_err: np.ndarray | None = None

    def __post_init__(self) -> None:
        fpr, tpr = _readonly(self.fpr), _readonly(self.tpr)
        if fpr.ndim != 1 or fpr.shape != tpr.shape:
            raise InputError(
                f"RocCurve: fpr {fpr.shape} and tpr {tpr.shape} must be 1-d of equal length"
            )
        object.__setattr__(self, "fpr", fpr)
        object.__setattr__(self, "tpr", tpr)
        n = fpr.size
        if self.thresholds is not None:
            thr = _readonly(self.thresholds)
            if thr.shape != (n,):
                raise InputError(f"RocCurve: thresholds shape {thr.shape}, expected ({n},)")
            object.__setattr__(self, "thresholds", thr)
        for name in ("fpr_err", "tpr_err"):
            err = getattr(self, name)
            if err is not None:
                err = _readonly(err)
                if err.shape != (2, n):
                    raise InputError(f"RocCurve: {name} shape {err.shape}, expected (2, {n})")
                object.__setattr__(self, name, err)

    def __len__(self) -> int:
        return int(self.fpr.size)

    def take(self, idx: ArrayLike) -> RocCurve:
        """The curve restricted to points ``idx``, every per-point array kept in step."""
        idx = np.asarray(idx)
        return RocCurve(
            fpr=self.fpr[idx],
            tpr=self.tpr[idx],
            thresholds=None if self.thresholds is None else self.thresholds[idx],
            fpr_err=None if self.fpr_err is None else self.fpr_err[:, idx],
            tpr_err=None if self.tpr_err is None else self.tpr_err[:, idx],
        )


def score_vs(p_tau: ArrayLike, p_other: ArrayLike) -> np.ndarray:
    """Two-class discriminant ``p_τ / (p_τ + p_other)``, 0 where ``p_τ = 0``.

    The original sets 0 wherever ``p_τ = 0`` (also when ``p_other > 0``, where the formula
    gives 0 anyway); the only case that matters is 0/0, from rows the loader never filled
    (Appendix A.19), which must neither warn nor produce NaN.
    """
    pt = np.asarray(p_tau, dtype=np.float64)
    po = np.asarray(p_other, dtype=np.float64)
    pt, po = np.broadcast_arrays(pt, po)
    denom = pt + po
    ok = (pt > 0) & (denom > 0)
    return np.divide(pt, denom, out=np.zeros(pt.shape, dtype=np.float64), where=ok)


def _prepare(
    y_true: ArrayLike, score: ArrayLike, weight: ArrayLike | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    if y.dtype != bool:
        if not np.all(np.isin(y, (0, 1))):
            raise InputError("roc_curve: y_true must be boolean or 0/1")
        y = y.astype(bool)
    s = np.asarray(score, dtype=np.float64)
    if y.ndim != 1 or s.shape != y.shape:
        raise InputError(f"roc_curve: y_true {y.shape} and score {s.shape} must be 1-d, equal")
    if np.any(np.isnan(s)):
        raise InputError("roc_curve: score contains NaN")
    if weight is None:
        w = np.ones_like(s)
    else:
        w = np.asarray(weight, dtype=np.float64)
        if w.shape != s.shape:
            raise InputError(f"roc_curve: weight shape {w.shape} differs from score {s.shape}")
        if not np.all(np.isfinite(w)):
            raise InputError("roc_curve: weights must be finite")
    return y, s, w


def _axis_parallel_interior(fps: np.ndarray, tps: np.ndarray) -> np.ndarray:
    """Mask of points to keep: drop interior points of horizontal/vertical runs."""
    keep = np.ones(fps.size, dtype=bool)
    if fps.size > 2:
        same_f = (fps[:-2] == fps[1:-1]) & (fps[1:-1] == fps[2:])
        same_t = (tps[:-2] == tps[1:-1]) & (tps[1:-1] == tps[2:])
        keep[1:-1] = ~(same_f | same_t)
    return keep


def roc_curve(
    y_true: ArrayLike,
    score: ArrayLike,
    weight: ArrayLike | None = None,
    *,
    drop_intermediate: bool = True,
    with_errors: bool = False,
    cl: float = ONE_SIGMA_CL,
) -> RocCurve:
    """Weighted ROC curve of ``score`` for signal ``y_true`` (see the module conventions).

    ``drop_intermediate`` (default on, as in the original's scikit-learn call) removes the
    interior points of horizontal and vertical runs; they lie on the segment between their
    neighbours, so the curve as a polygon and its AUC are unchanged. scikit-learn's rule
    (zero second differences) removes only *equally spaced* such points and therefore keeps
    more of them with non-uniform weights; ours does not depend on the weights.

    ``with_errors`` adds Clopper–Pearson intervals (Kish effective counts) to every point;
    the original stores none for raw ROC curves. The beta quantiles cost ~15 µs per point,
    so on an unpruned curve of millions of distinct scores this takes seconds.

    Negative weights are accepted (then the curve need not be monotonic); both classes must
    have positive total weight, otherwise the rates are undefined and :class:`InputError`
    is raised (the original returned no curve).
    """
    y, s, w = _prepare(y_true, score, weight)
    order = np.argsort(s, kind="stable")[::-1]
    s, y, w = s[order], y[order], w[order]
    ends = np.r_[np.flatnonzero(s[1:] != s[:-1]), s.size - 1] if s.size else np.empty(0, int)
    w_sig = np.where(y, w, 0.0)
    w_bkg = np.where(y, 0.0, w)
    tps = np.r_[0.0, np.cumsum(w_sig)[ends]]
    fps = np.r_[0.0, np.cumsum(w_bkg)[ends]]
    thresholds = np.r_[np.inf, s[ends]]
    # Totals from the same running sums, so the last point is exactly (1, 1).
    total_sig, total_bkg = float(tps[-1]), float(fps[-1])
    if not (total_sig > 0 and total_bkg > 0):
        raise InputError(
            "roc_curve: need positive total weight in both classes, got "
            f"signal {total_sig:g} and background {total_bkg:g}"
        )
    if drop_intermediate:
        keep = _axis_parallel_interior(fps, tps)
        tps, fps, thresholds = tps[keep], fps[keep], thresholds[keep]
    tpr, fpr = tps / total_sig, fps / total_bkg
    fpr_err = tpr_err = None
    if with_errors:
        fpr_err = _err_bars(fps, total_bkg, float(np.square(w_bkg).sum()), cl)
        tpr_err = _err_bars(tps, total_sig, float(np.square(w_sig).sum()), cl)
    return RocCurve(fpr=fpr, tpr=tpr, thresholds=thresholds, fpr_err=fpr_err, tpr_err=tpr_err)


def _err_bars(passed: np.ndarray, total: float, total_w2: float, cl: float) -> np.ndarray:
    eff, lo, hi = clopper_pearson_weighted(
        np.clip(passed, 0.0, total), np.full_like(passed, total), total_w2, cl
    )
    return np.vstack([eff - lo, hi - eff])


def auc(roc: RocCurve) -> float:
    """Area under ``roc`` (TPR against FPR) by the trapezoid rule.

    On a full (unpruned) curve this is the weighted Mann–Whitney statistic
    ``P(s_sig > s_bkg) + ½ P(s_sig = s_bkg)``: a diagonal step from a tie group contributes
    exactly half its rectangle. Computing it on a pruned curve gives a (slightly) different
    number — take the AUC before pruning, as the original does.
    """
    return float(np.trapezoid(roc.tpr, roc.fpr))


def prune(roc: RocCurve, tpr_decimals: int = 3) -> RocCurve:
    """Thin a curve for storage the way the original ``RocCurve.prune`` does.

    TPR is rounded to ``tpr_decimals`` decimals (numpy rounding, half to even) and, for each
    distinct rounded value, the **first** point in curve order is kept — i.e. the one with
    the highest threshold and hence the lowest FPR at that efficiency. The kept points stay
    in their original order; thresholds and errors are kept in step. The raw TPR values are
    stored, not the rounded ones. Note that the final (1, 1) point usually disappears: the
    first point whose TPR rounds to 1 comes earlier. Use :data:`PRUNE_DECIMALS` for the
    per-vs-type choice (3, and 4 for μ).
    """
    if int(tpr_decimals) != tpr_decimals or tpr_decimals < 0:
        raise ConfigError(f"prune: tpr_decimals={tpr_decimals!r} must be an integer >= 0")
    rounded = np.round(roc.tpr, decimals=int(tpr_decimals))
    _, first = np.unique(rounded, return_index=True)
    return roc.take(np.sort(first))


def _fpr_of_tpr(roc: RocCurve) -> tuple[np.ndarray, np.ndarray]:
    """Distinct TPR values (ascending) and, for each, the lowest FPR reached at it."""
    order = np.lexsort((roc.fpr, roc.tpr))
    tpr, fpr = roc.tpr[order], roc.fpr[order]
    first = np.r_[True, tpr[1:] != tpr[:-1]]
    return tpr[first], fpr[first]


def roc_ratio(
    roc: RocCurve,
    reference: RocCurve,
    *,
    grid: Literal["reference", "union"] = "reference",
) -> tuple[np.ndarray, np.ndarray]:
    """FPR ratio ``roc / reference`` at equal TPR, for the ratio panel: ``(tpr, ratio)``.

    As the original ``create_roc_ratio(..., wp=True)`` (the mode ``plot_roc`` uses): the
    probed curve's FPR is interpolated linearly in TPR at the reference's TPR points that
    lie inside the TPR range common to both curves, and only points with reference FPR > 0
    are kept. ``grid="union"`` (the original's ``wp=False``) interpolates both curves on
    the union of their TPR points instead. Where a curve has several points at one TPR
    (a horizontal run), its lowest FPR there is used, which keeps the interpolation a
    function and is the operating point one would choose.
    """
    if grid not in ("reference", "union"):
        raise ConfigError(f"roc_ratio: grid={grid!r}, allowed: 'reference', 'union'")
    x1, y1 = _fpr_of_tpr(roc)
    x2, y2 = _fpr_of_tpr(reference)
    if x1.size == 0 or x2.size == 0:
        return np.empty(0), np.empty(0)
    lo, hi = max(x1[0], x2[0]), min(x1[-1], x2[-1])
    if grid == "reference":
        x = x2[(x2 >= lo) & (x2 <= hi)]
    else:
        x = np.union1d(x1, x2)
        x = x[(x >= lo) & (x <= hi)]
    num = np.interp(x, x1, y1)
    den = np.interp(x, x2, y2)
    ok = den > 0
    return x[ok], num[ok] / den[ok]


def wp_points_from_masks(
    y_true: ArrayLike,
    passed: Mapping[str, ArrayLike],
    weight: ArrayLike | None = None,
    *,
    cl: float = ONE_SIGMA_CL,
) -> tuple[RocCurve, list[str]]:
    """Working-point efficiencies (TPR) and mis-id rates (FPR) with Clopper–Pearson errors.

    ``passed`` maps each WP name to its pass mask (a threshold cut or a bit test). Returns
    the points ordered by increasing TPR — tightest first, like a ROC curve, which is also
    the order the original stored them in — and the WP names in that order. Rates of an
    empty class are 0 with the interval (0, 1), as the original's "0 if Σw = 0".
    """
    y = np.asarray(y_true).astype(bool)
    w = np.ones(y.shape) if weight is None else np.asarray(weight, dtype=np.float64)
    if w.shape != y.shape:
        raise InputError(f"wp_points: weight shape {w.shape} differs from y_true {y.shape}")
    if not passed:
        raise ConfigError("wp_points: no working points given")
    names = list(passed)
    rates = np.empty((2, len(names)))
    errs = np.empty((2, 2, len(names)))
    for i, name in enumerate(names):
        mask = np.asarray(passed[name], dtype=bool)
        if mask.shape != y.shape:
            raise InputError(f"wp_points: mask of WP '{name}' has shape {mask.shape}")
        for row, cls in ((0, ~y), (1, y)):
            wc = w[cls]
            eff, lo, hi = clopper_pearson_weighted(
                wc[mask[cls]].sum(), wc.sum(), np.square(wc).sum(), cl
            )
            rates[row, i] = eff
            errs[row, :, i] = (eff - lo, hi - eff)
    order = np.lexsort((rates[0], rates[1]))
    curve = RocCurve(
        fpr=rates[0, order],
        tpr=rates[1, order],
        fpr_err=errs[0][:, order],
        tpr_err=errs[1][:, order],
    )
    return curve, [names[i] for i in order]


def wp_points(
    y_true: ArrayLike,
    score: ArrayLike,
    thresholds: Mapping[str, float],
    weight: ArrayLike | None = None,
    *,
    cl: float = ONE_SIGMA_CL,
) -> tuple[RocCurve, list[str]]:
    """:func:`wp_points_from_masks` for threshold WPs (``score > thr``, strict); the returned
    curve carries the thresholds."""
    s = np.asarray(score, dtype=np.float64)
    masks = {name: s > float(thr) for name, thr in thresholds.items()}
    curve, names = wp_points_from_masks(y_true, masks, weight, cl=cl)
    thr = np.array([float(thresholds[n]) for n in names])
    return (
        RocCurve(curve.fpr, curve.tpr, thr, curve.fpr_err, curve.tpr_err),
        names,
    )
