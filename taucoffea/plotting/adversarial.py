"""Adversarial-training validation plots (the original ``evaluate_adversarial.ipynb``, §7.6).

Adversarial domain adaptation is meant to make the VSjet score look the same in data and
simulation in the μτ control region without losing separation. These plots show it:

* ``adversarial_Djet``: ``D_jet = p_τ/(p_τ+p_jet)`` of data (points) against the stacked
  weighted MC contributions, with a data/MC ratio panel — one column per prediction file
  (typically before and after adversarial training);
* ``adversarial_yadv``: the adversary's output ``y_adv`` for data and MC (unit area);
* ``adversarial_agreement.json``: for each file, the data/MC agreement of ``D_jet`` as the
  weighted two-sample Kolmogorov–Smirnov distance and the binned χ²/ndf.

Statistics. MC is scaled to the data yield (``normalize``, default on) because the control
region is compared in shape. KS: ``max |F_data − F_MC|`` of the weighted empirical CDFs
(unbinned). χ²: ``Σ (d − s·m)² / (σ_d² + s²·σ_m²)`` over bins with entries, ``σ² = Σw²``,
``ndf = bins used − 1`` when normalised (the scale is fitted), else bins used.

Input columns: ``node_tau``, ``node_jet`` (or ``Djet``), ``adv_label`` (1 data, 0 MC),
``adv_weight``, ``dataset_id`` (0 data, 1 DY τ, 2 tt̄ τ, 3 DY μ, 4 tt̄ jets, 5 W+jets,
6 QCD jets) and, after adversarial training, ``y_adv``.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import mplhep
import numpy as np

from taucoffea.algorithms.roc import score_vs
from taucoffea.columns.atomic import write_text_atomic
from taucoffea.errors import ConfigError, InputError
from taucoffea.plotting.roc import ratio_limits
from taucoffea.plotting.style import PALETTE, cms_label, new_figure, save_figure

__all__ = [
    "CONTRIBUTIONS",
    "add_arguments",
    "agreement",
    "cli",
    "load_adversarial_predictions",
    "plot_adversarial",
    "weighted_ks",
]

#: dataset_id → legend label of the adversarial contributions (0 = data).
CONTRIBUTIONS: dict[int, str] = {
    0: "Data",
    1: r"DY$\to\tau\tau$ ($\tau_h$)",
    2: r"$t\bar{t}$ ($\tau_h$)",
    3: r"DY$\to\mu\mu$ ($\mu\to\tau_h$)",
    4: r"$t\bar{t}$ (jet$\to\tau_h$)",
    5: r"W+jets (jet$\to\tau_h$)",
    6: r"QCD (jet$\to\tau_h$)",
}

_REQUIRED = ("adv_label", "adv_weight", "dataset_id")


@dataclass(frozen=True)
class _Sample:
    label: str
    djet: np.ndarray
    is_data: np.ndarray
    weight: np.ndarray
    dataset_id: np.ndarray
    y_adv: np.ndarray | None


def load_adversarial_predictions(path: str | os.PathLike[str], label: str) -> _Sample:
    """Read one adversarial prediction parquet (columns above); ``Djet`` is recomputed from
    ``node_tau``/``node_jet`` when absent."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise InputError(f"adversarial predictions '{path}' do not exist")
    try:
        names = set(pq.read_schema(path).names)
    except Exception as err:
        raise InputError(f"cannot read '{path}': {err}") from None
    missing = [c for c in _REQUIRED if c not in names]
    if "Djet" not in names and not {"node_tau", "node_jet"} <= names:
        missing.append("Djet (or node_tau and node_jet)")
    if missing:
        raise InputError(f"'{path}' lacks column(s) {missing}")
    cols = [c for c in (*_REQUIRED, "Djet", "node_tau", "node_jet", "y_adv") if c in names]
    table = pq.read_table(path, columns=cols)
    get = {c: table.column(c).to_numpy() for c in cols}
    djet = (np.asarray(get["Djet"], dtype=np.float64) if "Djet" in get
            else score_vs(get["node_tau"], get["node_jet"]))  # fmt: skip
    weight = np.asarray(get["adv_weight"], dtype=np.float64)
    if not (np.all(np.isfinite(djet)) and np.all(np.isfinite(weight))):
        raise InputError(f"'{path}': Djet or adv_weight has non-finite values")
    return _Sample(
        label=label,
        djet=djet,
        is_data=np.asarray(get["adv_label"]).astype(np.float64) > 0.5,
        weight=weight,
        dataset_id=np.asarray(get["dataset_id"]).astype(np.int64),
        y_adv=np.asarray(get["y_adv"], dtype=np.float64) if "y_adv" in get else None,
    )


# --------------------------------------------------------------------------- statistics


def weighted_ks(x1: np.ndarray, x2: np.ndarray, w1: np.ndarray | None = None,
                w2: np.ndarray | None = None) -> float:
    """Two-sample Kolmogorov–Smirnov distance of weighted samples: the largest difference
    of their weighted empirical CDFs, evaluated at every sample value."""
    x1, x2 = np.asarray(x1, dtype=float), np.asarray(x2, dtype=float)
    w1 = np.ones_like(x1) if w1 is None else np.asarray(w1, dtype=float)
    w2 = np.ones_like(x2) if w2 is None else np.asarray(w2, dtype=float)
    if x1.size == 0 or x2.size == 0 or not (w1.sum() > 0 and w2.sum() > 0):
        raise InputError("weighted_ks: both samples need entries with positive total weight")
    grid = np.union1d(x1, x2)

    def cdf(x: np.ndarray, w: np.ndarray) -> np.ndarray:
        order = np.argsort(x, kind="stable")
        cw = np.cumsum(w[order]) / w.sum()
        idx = np.searchsorted(x[order], grid, side="right")
        return np.where(idx > 0, cw[np.maximum(idx - 1, 0)], 0.0)

    return float(np.max(np.abs(cdf(x1, w1) - cdf(x2, w2))))


def _hist(x: np.ndarray, w: np.ndarray, bins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # the last edge is inclusive (D_jet = 1 exactly belongs in the top bin)
    xc = np.clip(x, bins[0], bins[-1])
    return (np.histogram(xc, bins, weights=w)[0],
            np.histogram(xc, bins, weights=np.square(w))[0])


def agreement(data: np.ndarray, mc: np.ndarray, mc_weight: np.ndarray,
              bins: np.ndarray, *, data_weight: np.ndarray | None = None,
              normalize: bool = True) -> dict[str, float]:
    """Data/MC agreement of one variable: KS distance and binned χ²/ndf (module docstring)."""
    dw = np.ones_like(data, dtype=float) if data_weight is None else data_weight
    d, d2 = _hist(data, dw, bins)
    m, m2 = _hist(mc, mc_weight, bins)
    scale = d.sum() / m.sum() if normalize and m.sum() > 0 else 1.0
    var = d2 + scale**2 * m2
    used = var > 0
    chi2 = float(np.sum((d[used] - scale * m[used]) ** 2 / var[used]))
    ndf = int(used.sum()) - (1 if normalize else 0)
    return {
        "ks_distance": weighted_ks(data, mc, dw, mc_weight),
        "chi2": chi2,
        "ndf": ndf,
        "chi2_ndf": chi2 / ndf if ndf > 0 else float("nan"),
        "n_data": int(data.size),
        "sumw_data": float(dw.sum()),
        "sumw_mc": float(mc_weight.sum()),
        "mc_scale": float(scale),
    }


# --------------------------------------------------------------------------- plotting


def _contribution_colors(ids: Sequence[int]) -> dict[int, str]:
    return {i: PALETTE[k % len(PALETTE)] for k, i in enumerate(ids)}


def _draw_djet(ax: Any, rax: Any, s: _Sample, bins: np.ndarray, normalize: bool,
               log_y: bool, colors: Mapping[int, str]) -> dict[str, float]:
    mc = ~s.is_data
    if not np.any(s.is_data) or not np.any(mc):
        raise InputError(f"'{s.label}': need both data (adv_label 1) and MC (adv_label 0)")
    stats = agreement(s.djet[s.is_data], s.djet[mc], s.weight[mc], bins,
                      data_weight=s.weight[s.is_data], normalize=normalize)
    scale = stats["mc_scale"]
    ids = sorted(int(i) for i in np.unique(s.dataset_id[mc]))
    stack, labels, cols = [], [], []
    tot, tot2 = np.zeros(bins.size - 1), np.zeros(bins.size - 1)
    for i in ids:
        sel = mc & (s.dataset_id == i)
        h, h2 = _hist(s.djet[sel], s.weight[sel] * scale, bins)
        stack.append(h)
        labels.append(CONTRIBUTIONS.get(i, f"MC (dataset_id {i})"))
        cols.append(colors.get(i, "grey"))
        tot, tot2 = tot + h, tot2 + h2
    d, d2 = _hist(s.djet[s.is_data], s.weight[s.is_data], bins)
    mplhep.histplot(stack, bins, ax=ax, stack=True, histtype="fill", label=labels, color=cols,
                    edgecolor="white", linewidth=0.3)
    ax.stairs(tot + np.sqrt(tot2), bins, baseline=tot - np.sqrt(tot2), fill=True,
              color="none", hatch="////", edgecolor="grey", linewidth=0, label="MC stat. unc.")
    mplhep.histplot(d, bins, ax=ax, histtype="errorbar", yerr=np.sqrt(d2), color="black",
                    label="Data", markersize=6)
    if log_y:
        ax.set_yscale("log")
        pos = np.concatenate([d[d > 0], tot[tot > 0], *[h[h > 0] for h in stack]])
        if pos.size:  # show the smallest contribution, leave room for the legend
            top = pos.max()
            ax.set_ylim(max(pos.min() / 2, top * 1e-5), top * 60)
    else:
        ax.set_ylim(0, max(d.max(), tot.max()) * 1.6)
    ax.set_ylabel("Events / bin" + (" (MC scaled to data)" if normalize else ""), fontsize=17)
    ax.legend(loc="upper center", fontsize=12, ncol=2, frameon=False)
    ax.set_title(f"{s.label}\nKS = {stats['ks_distance']:.3f},  "
                 rf"$\chi^2$/ndf = {stats['chi2']:.1f}/{stats['ndf']}", fontsize=14, pad=28)
    cms_label(ax, data=True)
    # ratio panel
    ok = tot > 0
    centers = 0.5 * (bins[1:] + bins[:-1])
    ratio = np.divide(d, tot, out=np.full_like(d, np.nan), where=ok)
    r_err = np.divide(np.sqrt(d2), tot, out=np.zeros_like(d), where=ok)
    band = np.divide(np.sqrt(tot2), tot, out=np.zeros_like(d), where=ok)
    show = ok & (d > 0)
    lims = ratio_limits([ratio[show] - r_err[show], ratio[show] + r_err[show]], (0.5, 1.5),
                        "linear")
    rax.stairs(1 + band, bins, baseline=1 - band, fill=True, color="grey", alpha=0.3,
               label="MC stat.")
    rax.axhline(1.0, color="grey", linestyle=":", linewidth=1)
    rax.errorbar(centers[show], ratio[show], yerr=r_err[show], fmt="o", color="black",
                 markersize=5)
    rax.set_ylim(*lims)
    rax.set_xlim(bins[0], bins[-1])
    rax.set_ylabel("Data / MC", fontsize=16)
    rax.set_xlabel(r"$D_{jet} = p_\tau / (p_\tau + p_{jet})$", fontsize=18)
    return stats


def _draw_yadv(ax: Any, s: _Sample, bins: np.ndarray) -> None:
    assert s.y_adv is not None
    for sel, label, color in ((s.is_data, "Data", "black"), (~s.is_data, "MC", PALETTE[0])):
        h, h2 = _hist(s.y_adv[sel], s.weight[sel], bins)
        norm = h.sum() * np.diff(bins)
        mplhep.histplot(h / norm, bins, ax=ax, yerr=np.sqrt(h2) / norm, histtype="step",
                        label=f"{label} (adv_label {int(label == 'Data')})", color=color,
                        linewidth=2)
    ax.set_xlabel(r"$y_{adv}$ (adversary output)", fontsize=18)
    ax.set_ylabel("Normalised to unit area", fontsize=17)
    ax.set_title(s.label, fontsize=14, pad=28)
    ax.set_xlim(bins[0], bins[-1])
    ax.legend(fontsize=13, frameon=False)
    cms_label(ax, data=True)


def plot_adversarial(
    files: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    labels: Sequence[str] | None = None,
    bins: int = 20,
    normalize: bool = True,
    log_y: bool = True,
    overwrite: bool = True,
) -> tuple[list[Path], dict[str, dict[str, float]]]:
    """Plots and agreement numbers for one or more adversarial prediction files (in order,
    e.g. before then after adversarial training). Returns the written paths and the
    ``{label: {ks_distance, chi2, ndf, chi2_ndf, …}}`` stored in
    ``adversarial_agreement.json``."""
    if not files:
        raise ConfigError("plot adversarial: no prediction file given")
    if labels is None:
        labels = (["before adversarial training", "after adversarial training"]
                  if len(files) == 2 else [Path(f).stem for f in files])  # fmt: skip
    if len(labels) != len(files):
        raise ConfigError(f"plot adversarial: {len(labels)} labels for {len(files)} files")
    if len(set(labels)) != len(labels):
        raise ConfigError(f"plot adversarial: labels must differ, got {list(labels)}")
    if int(bins) < 2:
        raise ConfigError(f"plot adversarial: bins={bins!r} must be at least 2")
    samples = [load_adversarial_predictions(f, lab) for f, lab in zip(files, labels, strict=True)]
    edges = np.linspace(0.0, 1.0, int(bins) + 1)
    ids = sorted({int(i) for s in samples for i in np.unique(s.dataset_id[~s.is_data])})
    colors = _contribution_colors(ids)
    out = Path(output)
    n = len(samples)
    fig, axes = new_figure(2, n, figsize=(10 * n, 11), squeeze=False, sharex="col",
                           gridspec_kw={"height_ratios": [3, 1], "hspace": 0.0})
    results: dict[str, dict[str, float]] = {}
    with plt.style.context(mplhep.style.CMS):
        for j, s in enumerate(samples):
            results[s.label] = _draw_djet(axes[0][j], axes[1][j], s, edges, normalize, log_y,
                                          colors)
    written = save_figure(fig, out / "adversarial_Djet")
    with_adv = [s for s in samples if s.y_adv is not None]
    if with_adv:
        fig, axes = new_figure(1, len(with_adv), figsize=(10 * len(with_adv), 8), squeeze=False)
        lo = min(float(s.y_adv.min()) for s in with_adv)
        hi = max(float(s.y_adv.max()) for s in with_adv)
        y_edges = (np.linspace(0.0, 1.0, int(bins) + 1) if lo >= 0 and hi <= 1
                   else np.linspace(lo, hi + 1e-9, int(bins) + 1))  # fmt: skip
        with plt.style.context(mplhep.style.CMS):
            for j, s in enumerate(with_adv):
                _draw_yadv(axes[0][j], s, y_edges)
                adv = agreement(s.y_adv[s.is_data], s.y_adv[~s.is_data],
                                s.weight[~s.is_data], y_edges, normalize=True,
                                data_weight=s.weight[s.is_data])
                results[s.label]["y_adv_ks_distance"] = adv["ks_distance"]
        written += save_figure(fig, out / "adversarial_yadv")
    text = json.dumps({"variable": "Djet", "bins": int(bins), "normalize": normalize,
                       "results": results}, indent=2) + "\n"
    written.append(write_text_atomic(out / "adversarial_agreement.json", text,
                                     overwrite=overwrite))
    return written, results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``taucoffea plot adversarial`` beyond ``--input``/``--output``."""
    parser.add_argument("--labels", help="comma-separated labels, one per --input file "
                        "(default for two files: before/after adversarial training)")
    parser.add_argument("--bins", type=int, default=20, help="D_jet bins on [0, 1]")
    parser.add_argument("--no-normalize", action="store_true",
                        help="do not scale MC to the data yield")
    parser.add_argument("--linear", action="store_true", help="linear y axis")


def cli(args: argparse.Namespace) -> int:
    """``taucoffea plot adversarial --input BEFORE.parquet,AFTER.parquet --output DIR``."""
    files = [f.strip() for f in str(args.input).split(",") if f.strip()]
    labels = getattr(args, "labels", None)
    written, results = plot_adversarial(
        files, args.output,
        labels=[x.strip() for x in labels.split(",")] if labels else None,
        bins=getattr(args, "bins", 20),
        normalize=not getattr(args, "no_normalize", False),
        log_y=not getattr(args, "linear", False),
    )
    for label, r in results.items():
        print(f"{label}: Djet data/MC KS distance {r['ks_distance']:.4f}, "
              f"chi2/ndf {r['chi2']:.1f}/{r['ndf']} = {r['chi2_ndf']:.2f}")
    for p in written:
        print(p)
    return 0
