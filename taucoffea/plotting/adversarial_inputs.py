"""The adversarial mixture at a glance: stacked MC contributions vs data in tau pT.

Left: raw counts, which show how far the MC pT spectrum is from the data's after the event
drop; right: with ``adv_weight``, where the weighted MC must follow the data within
statistics — if it does not, the adversary could learn pT instead of the data/MC differences
it is meant to remove.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

import awkward as ak
import hist
import mplhep
import numpy as np

from taucoffea.adversarial.contributions import DEFAULT_CONFIG
from taucoffea.algorithms.event_drop import DEFAULT_PT_EDGES, check_edges
from taucoffea.errors import InputError
from taucoffea.plotting.style import PALETTE, cms_label, new_figure, save_figure

__all__ = ["find_mixture_files", "plot_adversarial_inputs", "cli"]

_COLUMNS = ["tau_pt", "dataset_id", "adv_weight", "adv_label"]


def find_mixture_files(workdir_or_files: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The mixture parquet files: given directly, or every ``adv_trainval*``/``adv_eval*`` below a folder."""
    items = [workdir_or_files] if isinstance(workdir_or_files, (str, os.PathLike)) else list(workdir_or_files)
    files: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for pat in ("adv_trainval*.parquet", "adv_eval*.parquet") for q in p.rglob(pat) if ".parts" not in str(q))
            if not found:
                raise InputError(f"no adv_trainval*.parquet or adv_eval*.parquet under '{p}' (run `taucoffea mix` first)")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise InputError(f"mixture input '{p}' does not exist")
    return files


def _names() -> dict[int, str]:
    return {c.dataset_id: c.name.replace("_", " ") for c in DEFAULT_CONFIG.contributions}


def plot_adversarial_inputs(
    workdir_or_files: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    pt_edges: Sequence[float] = DEFAULT_PT_EDGES,
) -> list[Path]:
    """Stacked MC vs data pT, before and after the adversarial weights; PDF and PNG."""
    files = find_mixture_files(workdir_or_files)
    rows = ak.concatenate([ak.from_parquet(f, columns=_COLUMNS) for f in files])
    pt = ak.to_numpy(rows["tau_pt"]).astype(np.float64)
    did = ak.to_numpy(rows["dataset_id"]).astype(np.int64)
    w = ak.to_numpy(rows["adv_weight"]).astype(np.float64)
    is_data = ak.to_numpy(rows["adv_label"]) == 1
    edges = check_edges(pt_edges)
    names = _names()
    mc_ids = sorted(set(did[~is_data].tolist()))

    fig, axes = new_figure(2, 2, figsize=(16, 8), sharex="col", gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05})
    for col, (title, weighted) in enumerate((("before weights", False), ("after weights", True))):
        ax, rax = axes[0, col], axes[1, col]
        ww = w if weighted else np.ones_like(w)
        stack = []
        for k in mc_ids:
            sel = (did == k) & ~is_data
            h = hist.Hist(hist.axis.Variable(edges, name="pt"), storage=hist.storage.Weight())
            h.fill(pt=pt[sel], weight=ww[sel])
            stack.append(h)
        hd = hist.Hist(hist.axis.Variable(edges, name="pt"), storage=hist.storage.Weight())
        hd.fill(pt=pt[is_data], weight=ww[is_data])
        if stack:
            mplhep.histplot(stack, ax=ax, stack=True, histtype="fill", binwnorm=1.0,
                            label=[names.get(k, f"id {k}") for k in mc_ids],
                            color=[PALETTE[i % len(PALETTE)] for i in range(len(stack))])
        mplhep.histplot(hd, ax=ax, histtype="errorbar", color="black", label="data", binwnorm=1.0,
                        yerr=np.sqrt(hd.variances()))
        ax.set_yscale("log")
        ax.set_xlabel("")
        ax.set_ylabel("taus / GeV")
        ax.legend(title=title, fontsize=11, ncols=2)
        cms_label(ax, data=False)
        mc_val = np.sum([h.values() for h in stack], axis=0) if stack else np.zeros(edges.size - 1)
        mc_var = np.sum([h.variances() for h in stack], axis=0) if stack else np.zeros(edges.size - 1)
        ratio = np.divide(hd.values(), mc_val, out=np.full(mc_val.size, np.nan), where=mc_val > 0)
        err = np.divide(np.sqrt(hd.variances() + mc_var * ratio**2), mc_val, out=np.full(mc_val.size, np.nan), where=mc_val > 0)
        centres = 0.5 * (edges[1:] + edges[:-1])
        rax.errorbar(centres, ratio, yerr=err, xerr=np.diff(edges) / 2, fmt="o", color="black", ms=4)
        rax.axhline(1.0, color="grey", ls="--")
        rax.set_ylim(0.5, 1.5)
        rax.set_ylabel("data / MC")
        rax.set_xlabel(r"$\tau_h$ $p_T$ [GeV]")
        rax.set_xscale("log")
        ticks = [t for t in (30, 40, 50, 70, 100, 200, 400, 1000) if edges[0] <= t <= edges[-1]]
        rax.set_xticks(ticks, [str(t) for t in ticks])
        rax.minorticks_off()
        rax.set_xlim(edges[0], edges[-1])
    base = Path(output)
    if base.suffix.lower() in (".pdf", ".png"):
        base = base.with_suffix("")
    return save_figure(fig, base)


def cli(args: argparse.Namespace) -> int:
    """For ``taucoffea plot adversarial-inputs --input WORKDIR|FILES --output BASE``."""
    for path in plot_adversarial_inputs(args.input, args.output):
        print(path)
    return 0
