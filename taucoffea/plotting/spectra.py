"""Spectra plots: one panel per tau type, pT projection on top of the (|η|, pT) map."""

from __future__ import annotations

import math
import os
from typing import Any
from pathlib import Path

import hist
import matplotlib.pyplot as plt
import mplhep

from taucoffea.algorithms.spectra import read_spectra
from taucoffea.errors import InputError
from taucoffea.plotting.style import cms_label, new_figure, save_figure

__all__ = ["plot_spectra", "plot_spectra_dir"]


def plot_spectra(hists: dict[str, hist.Hist], title: str, path: str | os.PathLike[str], *, rebin_pt: int = 10) -> list[Path]:
    """Per-type pT spectra (log y) and |η| distributions for one dataset."""
    types = list(hists)
    if not types:
        raise InputError(f"no spectra to plot for '{title}'")
    ncols = min(len(types), 4)
    nrows = 2 * math.ceil(len(types) / ncols)
    fig, axes = new_figure(nrows, ncols, figsize=(5.5 * ncols, 3.8 * nrows), squeeze=False)
    with plt.style.context(mplhep.style.CMS):
        for i, name in enumerate(types):
            h = hists[name]
            r, c = 2 * (i // ncols), i % ncols
            pt = h.project("pt")
            factor = max(1, min(rebin_pt, pt.axes[0].size))
            pt = pt[:: hist.rebin(factor)] if pt.axes[0].size % factor == 0 else pt
            ax = axes[r][c]
            mplhep.histplot(pt, ax=ax, histtype="fill", alpha=0.7, label=f"{name} ({int(h.sum()):,})")
            ax.set_yscale("log")
            ax.set_xscale("log")
            ax.set_xlabel(r"$p_T$ [GeV]")
            ax.set_ylabel("taus / bin")
            ax.legend(fontsize=11, title=title if i == 0 else None, title_fontsize=9)
            if i == 0:
                cms_label(ax, rlabel="", fontsize=13)  # panels are narrow: no energy label
            ax2 = axes[r + 1][c]
            mplhep.histplot(h.project("abs_eta"), ax=ax2, histtype="step", color="k")
            ax2.set_xlabel(r"$|\eta|$")
            ax2.set_ylabel("taus / bin")
            ax2.set_ylim(bottom=0)
        for j in range(len(types), (nrows // 2) * ncols):
            axes[2 * (j // ncols)][j % ncols].set_visible(False)
            axes[2 * (j // ncols) + 1][j % ncols].set_visible(False)
        fig.tight_layout()
    return save_figure(fig, path)


def plot_spectra_dir(spectra_dir: str | os.PathLike[str], output: str | os.PathLike[str]) -> list[Path]:
    """Plot every ``<dataset>.root`` of a spectra folder into ``output/spectra_<dataset>.{pdf,png}``."""
    files = sorted(Path(spectra_dir).glob("*.root"))
    if not files:
        raise InputError(f"no spectra ROOT files in '{spectra_dir}'")
    written: list[Path] = []
    for f in files:
        hists, _ = read_spectra(f)
        if hists:
            written += plot_spectra(hists, f.stem, Path(output) / f"spectra_{f.stem}")
    return written


def cli(args: Any) -> int:
    """``taucoffea plot spectra --input SPECTRA_DIR --output DIR``."""
    for p in plot_spectra_dir(args.input, args.output):
        print(p)
    return 0
