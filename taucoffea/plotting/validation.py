"""Plots of ``taucoffea validate``: one figure per chunk test, one pull figure per tau type.

A chunk-test figure follows the original's canvas (the chunks' normalised distributions on
top of each other) but condenses 100 overlaid histograms into what a reader needs: the
reference (chunk 0, or the whole output with ``--reference rest``), the band spanned by all chunks, and the worst chunk when it fails; below,
the p-value of every chunk against the threshold, so a failing chunk stands out at a glance.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import mplhep
import numpy as np
from matplotlib.ticker import MaxNLocator
from scipy import stats

from taucoffea.plotting.style import PALETTE, cms_label, new_figure, save_figure

if TYPE_CHECKING:
    from taucoffea.algorithms.validation_stats import TypeClosure
    from taucoffea.stages.validate import ChunkDistribution, ValidationResult

__all__ = ["plot_chunk_test", "plot_chunk_tests", "plot_closure", "plot_pvalue_distribution", "plot_type_closure"]

_P_FLOOR = 1e-16  #: p-values below this are drawn at the floor (log axis)
_XLABELS = {"tau_pt": r"$p_T$ [GeV]", "tau_eta": r"$\eta$"}


def _leaves(node: Mapping[str, Any], path: tuple[str, ...] = ()) -> Iterator[tuple[str, Mapping[str, Any]]]:
    if "pvalues" in node:
        yield "/".join(path), node
    for key, value in node.items():
        if isinstance(value, Mapping):
            yield from _leaves(value, (*path, key))


def plot_chunk_tests(result: ValidationResult, folder: str | os.PathLike[str], formats: Sequence[str]) -> list[Path]:
    """One figure per test path of ``result.pvalues``: ``<folder>/<path with / → _>.<fmt>``."""
    written: list[Path] = []
    for path, node in _leaves(result.pvalues):
        kinematic = path.split("/")[-1] in _XLABELS
        series = {(result.tests[0] if kinematic else "chi2"): node["pvalues"]}
        if "pvalues_ks" in node:
            series["ks"] = node["pvalues_ks"]
        base = Path(folder) / path.replace("/", "_")
        written += plot_chunk_test(path, series, result.distributions.get(path), result.threshold, base, formats,
                                   reference=result.reference)
    return written


def plot_chunk_test(
    path: str,
    pvalues: Mapping[str, Sequence[float | None]],
    distribution: ChunkDistribution | None,
    threshold: float,
    base: str | os.PathLike[str],
    formats: Sequence[str] = ("pdf", "png"),
    reference: str = "chunk0",
) -> list[Path]:
    """Distributions per chunk (top) and p-value per chunk with the threshold (bottom).

    ``reference`` (``chunk0`` or ``rest``) says what the p-values compared each chunk with; the
    top panel then draws chunk 0 or the whole output as the reference line."""
    fig, (top, bottom) = new_figure(2, 1, figsize=(9, 9), gridspec_kw={"height_ratios": [3, 2]})
    with plt.style.context(mplhep.style.CMS):
        worst = _worst_chunk(pvalues, threshold)
        if distribution is not None:
            _draw_distribution(top, distribution, worst, reference)
        top.legend(fontsize=11, title=path, title_fontsize=11, loc="best")
        cms_label(top)
        _draw_pvalues(bottom, pvalues, threshold, reference)
        fig.tight_layout()
    return save_figure(fig, base, formats)


def _worst_chunk(pvalues: Mapping[str, Sequence[float | None]], threshold: float) -> tuple[int, float] | None:
    """The chunk with the smallest p-value below the threshold, if any."""
    best: tuple[int, float] | None = None
    for values in pvalues.values():
        for k, p in enumerate(values):
            if p is not None and p < threshold and (best is None or p < best[1]):
                best = (k, p)
    return best


def _normalised(counts: np.ndarray) -> np.ndarray:
    totals = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, counts / np.where(totals > 0, totals, 1), np.nan)


def _draw_distribution(ax: Any, d: ChunkDistribution, worst: tuple[int, float] | None, reference: str) -> None:
    if d.labels is not None:
        seen = d.counts.any(axis=0)  # categories never filled (emb_*, data, unknown …) say nothing
        seen = seen if seen.any() else np.ones_like(seen)
        counts, labels = d.counts[:, seen], [lab for lab, s in zip(d.labels, seen, strict=True) if s]
        edges = np.arange(len(labels) + 1, dtype=float)
        ax.set_xticks(edges[:-1] + 0.5, labels, rotation=30 if len(labels) > 5 else 0, fontsize=11)
        ax.set_xlabel(d.path.split("/")[0])
    else:
        counts, edges = d.counts[:, 1:-1], np.asarray(d.edges)  # flow bins are tested, not drawn
        ax.set_xlabel(_XLABELS.get(d.path.split("/")[-1], d.path.split("/")[-1]))
    frac = _normalised(counts)
    filled = ~np.all(np.isnan(frac), axis=1)
    if not filled.any():
        return
    lo, hi = np.nanmin(frac[filled], axis=0), np.nanmax(frac[filled], axis=0)
    ax.fill_between(edges, np.append(lo, lo[-1]), np.append(hi, hi[-1]), step="post", color=PALETTE[0],
                    alpha=0.35, label=f"all {int(filled.sum())} chunks (min–max)")
    if reference == "rest":
        whole = _normalised(counts.sum(axis=0, keepdims=True))[0]
        mplhep.histplot(np.nan_to_num(whole), edges, ax=ax, color="k", label="whole output")
    else:
        mplhep.histplot(np.nan_to_num(frac[0]), edges, ax=ax, color="k", label="chunk 0 (reference)")
    if worst is not None and filled[worst[0]]:
        mplhep.histplot(np.nan_to_num(frac[worst[0]]), edges, ax=ax, color=PALETTE[1],
                        label=f"chunk {worst[0]} (p = {worst[1]:.2g})")
    ax.set_ylabel("fraction of the chunk")
    filled_bins = np.flatnonzero(hi > 0)
    if d.labels is None and filled_bins.size:  # zoom on the populated range (pT often ends far below 1 TeV)
        ax.set_xlim(edges[filled_bins[0]], edges[filled_bins[-1] + 1])
    positive = hi[hi > 0]
    if d.labels is None and positive.size and positive.max() / positive.min() > 100:
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0)


def _draw_pvalues(ax: Any, pvalues: Mapping[str, Sequence[float | None]], threshold: float, reference: str) -> None:
    n = max(len(v) for v in pvalues.values())
    lowest = 1.0
    for i, (test, values) in enumerate(pvalues.items()):
        k = np.array([j for j, p in enumerate(values) if p is not None])
        p = np.array([max(p, _P_FLOOR) for p in values if p is not None])
        if k.size:
            lowest = min(lowest, float(p.min()))
            ax.plot(k, p, "o" if i == 0 else "s", ms=5, color="k" if i == 0 else PALETTE[0], label=test, alpha=0.85)
            bad = p < threshold
            if bad.any():
                ax.plot(k[bad], p[bad], "x", ms=9, color="red")
    ax.axhline(threshold, color="red", ls="--", lw=1.5, label=f"threshold {threshold:g}")
    ax.set_yscale("log")
    ax.set_ylim(min(threshold, lowest) / 10, 3)
    ax.set_xlim(-0.5, n - 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("chunk")
    ax.set_ylabel("p-value vs rest" if reference == "rest" else "p-value vs chunk 0")
    ax.legend(fontsize=11, ncol=3, loc="lower left")


def plot_pvalue_distribution(
    result: ValidationResult, base: str | os.PathLike[str], formats: Sequence[str] = ("pdf", "png")
) -> list[Path]:
    """All chunk-test p-values in one histogram against the flat distribution of a fair split.

    One look answers what 100 per-test plots cannot: whether small p-values are more frequent
    than chance. The band is the binomial ±1σ of each bin's count.
    """
    ps = np.asarray(result.tested_pvalues, dtype=float)
    fig, ax = new_figure(figsize=(9, 7))
    with plt.style.context(mplhep.style.CMS):
        edges = np.linspace(0.0, 1.0, 21)
        if ps.size:
            counts, _ = np.histogram(ps, bins=edges)
            mplhep.histplot(counts, edges, ax=ax, color="k", lw=2, label=f"{ps.size} p-values ({'+'.join(result.tests)})")
            share = 1.0 / (edges.size - 1)
            mean = ps.size * share
            sigma = math.sqrt(ps.size * share * (1 - share))
            ax.fill_between(edges, mean - sigma, mean + sigma, step="post", color=PALETTE[0], alpha=0.35,
                            label="fair split (±1σ)")
            ax.axhline(mean, color=PALETTE[0], lw=1.5)
            ax.set_ylim(0, max(float(counts.max()), mean + 2 * sigma) * 1.35)
        uniform = result.uniformity_pvalue
        reference = "the rest" if result.reference == "rest" else "chunk 0 (correlated)"
        title = f"each chunk vs {reference}" + (f"\nKS vs uniform: p = {uniform:.3g}" if uniform is not None else "")
        ax.legend(fontsize=12, title=title, title_fontsize=12, loc="upper right")
        ax.set_xlim(0, 1)
        ax.set_xlabel("p-value of a chunk test")
        ax.set_ylabel(f"tests / {edges[1] - edges[0]:.2f}")
        cms_label(ax)
        fig.tight_layout()
    return save_figure(fig, base, formats)


# ------------------------------------------------------------------------------ closure


def plot_closure(
    closure: Mapping[str, TypeClosure],
    eta_bins: Sequence[float],
    pt_bins: Sequence[float],
    folder: str | os.PathLike[str],
    formats: Sequence[str] = ("pdf", "png"),
) -> list[Path]:
    """``<folder>/closure_<type>.<fmt>`` for every type."""
    written: list[Path] = []
    for t, c in closure.items():
        written += plot_type_closure(t, c, eta_bins, pt_bins, Path(folder) / f"closure_{t}", formats)
    return written


def plot_type_closure(
    tau_type: str,
    closure: TypeClosure,
    eta_bins: Sequence[float],
    pt_bins: Sequence[float],
    base: str | os.PathLike[str],
    formats: Sequence[str] = ("pdf", "png"),
) -> list[Path]:
    """Pull map over the (|η|, pT) bins (left) and the pull distribution vs N(0, 1) (right)."""
    eta, pt = np.asarray(eta_bins, float), np.asarray(pt_bins, float)
    pulls = np.asarray(closure.pulls, float)
    inner = pulls[1:-1, 1:-1] if pulls.shape == (eta.size + 1, pt.size + 1) else pulls
    finite = inner[np.isfinite(inner)]
    vmax = max(3.0, float(np.abs(finite).max()) if finite.size else 3.0)
    fig, (left, right) = new_figure(1, 2, figsize=(16, 7))
    with plt.style.context(mplhep.style.CMS):
        shown = np.clip(np.where(np.isfinite(inner), inner, np.sign(inner) * vmax), -vmax, vmax)
        mesh = left.pcolormesh(eta, pt, shown.T, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        fig.colorbar(mesh, ax=left, label=r"pull $(o - e)/\sigma$")
        if inner.size <= 120:
            for i in range(inner.shape[0]):
                for j in range(inner.shape[1]):
                    v = inner[i, j]
                    text = f"{v:+.1f}" if np.isfinite(v) else ("+inf" if v > 0 else "-inf")
                    y = math.sqrt(pt[j] * pt[j + 1]) if pt[0] > 0 else 0.5 * (pt[j] + pt[j + 1])
                    left.text(0.5 * (eta[i] + eta[i + 1]), y, text, ha="center", va="center", fontsize=9)
        if pt[0] > 0 and pt[-1] / pt[0] > 10:
            left.set_yscale("log")
        left.set_xlabel(r"$|\eta|$")
        left.set_ylabel(r"$p_T$ [GeV]")
        cms_label(left)
        chi2 = f"{closure.chi2:.1f}" if np.isfinite(closure.chi2) else "inf"
        info = (f"{tau_type}: observed {closure.n_observed:.0f}, expected {closure.n_expected:.1f}\n"
                f"$\\chi^2$/ndf = {chi2}/{closure.ndf}, p = {closure.pvalue:.3g}")
        tested = pulls[np.isfinite(pulls) & (pulls != 0)]
        edges = np.linspace(-max(4.0, vmax), max(4.0, vmax), 25)
        if tested.size:
            right.hist(np.clip(tested, edges[0], edges[-1]), bins=edges, histtype="step", color="k", lw=2,
                       label="bins with a pull")
            x = np.linspace(edges[0], edges[-1], 200)
            right.plot(x, tested.size * (edges[1] - edges[0]) * stats.norm.pdf(x), color=PALETTE[1],
                       label="N(0, 1)")
        right.set_xlabel("pull")
        right.set_ylabel("bins")
        right.set_ylim(bottom=0)
        right.legend(fontsize=11, title=info, title_fontsize=11, loc="upper left")
        fig.tight_layout()
    return save_figure(fig, base, formats)
