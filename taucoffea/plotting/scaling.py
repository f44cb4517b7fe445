"""Feature-scaling plots: convergence of the snapshots and clamp ranges against quantiles.

* :func:`plot_scaling_convergence` — ``plot_scaling_convergence.py`` (reference §5.5): per
  variable type and cone, box plots over the normal features of the relative change of mean
  and std from one snapshot to the next. Unlike the reference (A.16) the last box is the
  honest final-vs-previous change; final-vs-first is drawn as an extra box with its own label.
  Notches come from a Philox bootstrap of the median (matplotlib's own bootstrap uses global
  random state), and text is plain mathtext (no LaTeX).
* :func:`plot_quantile_ranges` — ``plot_quantile_ranges.py`` (reference §5.6): the clamp
  range in the feature's units against the 1/2/3σ quantile ranges and the median, with the
  "suspicious" flags; optionally only suspicious features. A summary of every feature's
  flags is written as ``quantile_ranges.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import mplhep
import numpy as np

from taucoffea.algorithms.scaling import clamp_range, suspicious_flags
from taucoffea.columns.atomic import write_text_atomic
from taucoffea.errors import InputError
from taucoffea.plotting.style import PALETTE, cms_label, new_figure, save_figure

__all__ = [
    "add_quantile_ranges_arguments",
    "add_scaling_convergence_arguments",
    "bootstrap_median_ci",
    "convergence_changes",
    "plot_quantile_ranges",
    "plot_scaling_convergence",
    "quantile_range_records",
    "quantile_ranges_cli",
    "scaling_convergence_cli",
]


# --------------------------------------------------------------------------------------------
# convergence


def _normal_entries(params: Mapping[str, Any], var_type: str, cone: str) -> dict[str, Mapping[str, Any]]:
    return {
        f: cones[cone]
        for f, cones in params.get(var_type, {}).items()
        if cone in cones and cones[cone].get("num") is not None
    }


def convergence_changes(snapshots: Sequence[Mapping[str, Any]], var_type: str, cone: str, quantity: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(features, running changes (n_snap−1, n_feat), final-vs-first (n_feat,)) of ``quantity``.

    Running change of snapshot i: ``|v_i − v_{i−1}| / |v_{i−1}|``. Features whose value is
    missing or non-finite in any snapshot are dropped (as the reference drops NaN/inf columns).
    """
    per = [_normal_entries(s, var_type, cone) for s in snapshots]
    names = [f for f in per[-1] if all(f in p for p in per)] if per else []
    values = np.array([[float(p[f][quantity]) if p[f][quantity] is not None else np.nan for f in names] for p in per], dtype=float)
    keep = np.isfinite(values).all(axis=0) if values.size else np.zeros(0, bool)
    names = [n for n, k in zip(names, keep, strict=True) if k]
    values = values[:, keep] if values.size else values.reshape(len(per), 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        running = np.abs(np.diff(values, axis=0)) / np.abs(values[:-1])
        total = np.abs(values[-1] - values[0]) / np.abs(values[0]) if len(values) else np.zeros(0)
    return names, running, total


def bootstrap_median_ci(values: np.ndarray, n_boot: int = 10_000, seed: int = 20240605) -> tuple[float, float]:
    """95 % bootstrap interval of the median with a seeded Philox stream (never global state)."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        m = float(np.median(x)) if x.size else float("nan")
        return m, m
    rng = np.random.Generator(np.random.Philox(seed))
    medians = np.empty(n_boot)
    for start in range(0, n_boot, 1000):
        stop = min(start + 1000, n_boot)
        idx = rng.integers(0, x.size, size=(stop - start, x.size))
        medians[start:stop] = np.median(x[idx], axis=1)
    lo, hi = np.percentile(medians, [2.5, 97.5])
    return float(lo), float(hi)


def _snapshot_files(folder: Path, version: str | None) -> list[Path]:
    from taucoffea.stages.scaling import iter_snapshot_files

    return iter_snapshot_files(folder, version)


def plot_scaling_convergence(
    snapshot_dir: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    version: str | None = None,
    var_types: Sequence[str] | None = None,
    cones: Sequence[str] = ("global", "inner", "outer"),
) -> list[Path]:
    """Box plots of snapshot-to-snapshot relative changes; ``<output>/<var_type>_<cone>``."""
    files = _snapshot_files(Path(snapshot_dir), version)
    if len(files) < 2:
        raise InputError(f"'{snapshot_dir}' has no snapshots (scaling_params_v*_log_*.json); run with --log-step")
    snapshots = [json.loads(p.read_text()) for p in files]
    types = list(var_types) if var_types else list(snapshots[-1])
    labels = [str(i) for i in range(1, len(files) - 1)] + ["final"]
    written: list[Path] = []
    for t in types:
        for cone in cones:
            panels = {q: convergence_changes(snapshots, t, cone, q) for q in ("mean", "std")}
            if not panels["mean"][0] and not panels["std"][0]:
                continue
            fig, axes = new_figure(2, 1, figsize=(max(8.0, 0.6 * len(labels) + 4), 10), sharex=True)
            with plt.style.context(mplhep.style.CMS):
                for ax, (q, (names, running, total)) in zip(axes, panels.items(), strict=True):
                    _convergence_panel(ax, q, names, running, total, labels)
                axes[0].text(0.5, 0.95, f"{t}, {cone} cone", transform=axes[0].transAxes, ha="center", va="top", fontsize=13)
                cms_label(axes[0])
                axes[1].set_xlabel("snapshot (relative change to the previous one)", fontsize=16)
                fig.tight_layout()
            written += save_figure(fig, Path(output) / f"{t}_{cone}")
    if not written:
        raise InputError(f"no normal features with finite values in the snapshots of '{snapshot_dir}'")
    return written


def _convergence_panel(ax: Any, quantity: str, names: list[str], running: np.ndarray, total: np.ndarray, labels: list[str]) -> None:
    data = [col[np.isfinite(col) & (col > 0)] for col in running]
    data.append(total[np.isfinite(total) & (total > 0)])
    positions = list(range(1, len(data))) + [len(data) + 0.5]
    shown = [(d, p) for d, p in zip(data, positions, strict=True) if d.size]
    if shown:
        ax.boxplot(
            [d for d, _ in shown],
            positions=[p for _, p in shown],
            notch=True,
            conf_intervals=[bootstrap_median_ci(d) for d, _ in shown],
            whis=(5, 95),
            widths=0.6,
            patch_artist=True,
            boxprops={"facecolor": PALETTE[0], "alpha": 0.6},
            medianprops={"color": "k"},
            flierprops={"markersize": 3},
        )
    ax.axhline(0.1, color="k", linestyle=":", linewidth=1, label="10 %")
    ax.axvline(len(data) - 0.25, color="grey", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_ylabel(f"|Δ{quantity}| / |{quantity}|", fontsize=18)
    ax.set_xticks(positions)
    ax.set_xticklabels(labels + ["final vs\nfirst"], fontsize=11)
    ax.text(0.02, 0.95, f"{len(names)} features", transform=ax.transAxes, va="top", fontsize=11)
    ax.legend(loc="upper right", fontsize=11)


# --------------------------------------------------------------------------------------------
# quantile ranges


def _scaling_type(entry: Mapping[str, Any]) -> str:
    """Infer the scaling type from the parameters themselves (§5.2 formulas are distinct)."""
    if entry.get("num") is not None:
        return "normal"
    if isinstance(entry.get("lim_min"), str) or (entry.get("lim_min") is not None and math.isinf(float(entry["lim_min"]))):
        return "no_scaling/categorical"
    return "linear"


def quantile_range_records(params: Mapping[str, Any], quantiles: Mapping[str, Any], file_id: str = "all") -> list[dict[str, Any]]:
    """One record per (type, feature, cone) with quantiles for ``file_id``: clamp range, flags.

    Records that cannot be judged (low statistics, missing quantiles) carry ``skip`` with the
    reason instead of flags.
    """
    out: list[dict[str, Any]] = []
    for t, feats in quantiles.items():
        for f, cones in feats.items():
            for cone, by_file in cones.items():
                rec: dict[str, Any] = {"var_type": t, "feature": f, "cone": cone}
                entries = params.get(t, {}).get(f)
                if entries is None:
                    out.append({**rec, "skip": "not in the scaling file"})
                    continue
                entry = entries.get(cone, entries.get("global"))
                kind = _scaling_type(entry) if entry else None
                if entry is None or kind == "no_scaling/categorical":
                    out.append({**rec, "skip": "not scaled"})
                    continue
                q = by_file.get(str(file_id))
                if q is None:
                    out.append({**rec, "skip": f"no quantiles for file id {file_id}"})
                    continue
                clamp = clamp_range(entry)
                values = [entry.get("mean"), q["median"], q["min"], q["max"]] + [
                    q[f"{k}sigma"][side] for k in (1, 2, 3, 5) for side in ("left", "right")
                ]
                if clamp is None or any(v is None for v in values):
                    out.append({**rec, "skip": "low statistics (missing mean, std or quantiles)"})
                    continue
                flags = suspicious_flags(clamp, q)
                out.append({
                    **rec, "scaling": kind, "mean": float(entry["mean"]), "std": float(entry["std"]),
                    "clamp": list(clamp), "quantiles": q, "flags": flags, "suspicious": any(flags.values()),
                })
    return out


def _finite(values: Sequence[float]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def _plot_range(rec: Mapping[str, Any], path: Path) -> list[Path]:
    q = rec["quantiles"]
    left, right = rec["clamp"]
    fig, ax = new_figure(figsize=(10, 4.5))
    with plt.style.context(mplhep.style.CMS):
        span = _finite([left, right, q["min"], q["max"], q["3sigma"]["left"], q["3sigma"]["right"], rec["mean"]])
        lo, hi = min(span), max(span)
        pad = 0.05 * (hi - lo) if hi > lo else max(abs(lo), 1.0) * 0.05
        x_lo, x_hi = lo - pad, hi + pad
        cl, cr = max(left, x_lo), min(right, x_hi)
        ax.barh(1.0, cr - cl, left=cl, height=0.5, color=PALETTE[1], alpha=0.7, label="clamp range")
        for k, alpha in ((3, 0.25), (2, 0.45), (1, 0.7)):
            ql, qr = q[f"{k}sigma"]["left"], q[f"{k}sigma"]["right"]
            ax.barh(0.0, max(qr - ql, 0.0), left=ql, height=0.5, color=PALETTE[0], alpha=alpha, label=f"{k}σ quantiles")
        ax.plot([q["median"]] * 2, [-0.3, 0.3], color="k", linewidth=2, label="median")
        if rec["scaling"] != "linear":
            ax.plot([rec["mean"]] * 2, [0.7, 1.3], color="k", linestyle="--", linewidth=2, label="mean")
        ax.set_xlim(x_lo, x_hi)
        ax.set_ylim(-0.6, 2.4)
        ax.set_yticks([0.0, 1.0])
        ax.set_yticklabels(["quantiles", "clamp"], fontsize=12)
        ax.tick_params(axis="x", labelsize=14)
        flags = ", ".join(k for k, v in rec["flags"].items() if v) or "none"
        text = (f"mean {rec['mean']:.4g}  median {q['median']:.4g}  min {q['min']:.4g}  max {q['max']:.4g}\n"
                f"suspicious: {flags}")
        ax.text(0.01, 0.97, text, transform=ax.transAxes, va="top", fontsize=10)
        ax.set_xlabel(f"{rec['feature']} ({rec['var_type']}, {rec['cone']}, {rec['scaling']})", fontsize=13)
        ax.legend(loc="upper right", fontsize=9, ncol=3)
        cms_label(ax)
        fig.tight_layout()
    return save_figure(fig, path)


def plot_quantile_ranges(
    input_dir: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    version: str | None = None,
    file_id: str = "all",
    only_suspicious: bool = False,
    var_types: Sequence[str] | None = None,
    scaling_file: str | os.PathLike[str] | None = None,
    quantile_file: str | os.PathLike[str] | None = None,
) -> tuple[list[Path], list[dict[str, Any]]]:
    """Plot clamp range vs quantiles per feature into ``<output>/<var_type>/<feature>_<cone>``.

    ``input_dir`` is a scaling output folder (or give ``scaling_file``/``quantile_file``).
    ``file_id`` picks a file's quantiles (reference default was file 0) or ``"all"``.
    """
    folder = Path(input_dir)
    if scaling_file is None or quantile_file is None:
        final = _snapshot_files(folder, version)[-1]
        v = final.name[len("scaling_params_v") : -len(".json")]
        scaling_file = scaling_file or final
        quantile_file = quantile_file or folder / f"quantile_params_v{v}.json"
    if not Path(quantile_file).exists():
        raise InputError(f"'{quantile_file}' does not exist (was the run made with quantiles 'none'?)")
    params = json.loads(Path(scaling_file).read_text())
    quantiles = json.loads(Path(quantile_file).read_text())
    if var_types:
        quantiles = {t: v for t, v in quantiles.items() if t in var_types}
    records = quantile_range_records(params, quantiles, str(file_id))
    written: list[Path] = []
    for rec in records:
        if "skip" in rec or (only_suspicious and not rec["suspicious"]):
            continue
        written += _plot_range(rec, Path(output) / rec["var_type"] / f"{rec['feature']}_{rec['cone']}")
    summary = Path(output) / "quantile_ranges.json"
    Path(output).mkdir(parents=True, exist_ok=True)
    written.append(write_text_atomic(summary, json.dumps(records, indent=2, allow_nan=True) + "\n"))
    return written, records


# --------------------------------------------------------------------------------------------
# CLI adapters (``taucoffea plot scaling-convergence|quantile-ranges``)


def add_scaling_convergence_arguments(parser: argparse.ArgumentParser) -> None:
    """Options beyond --input (snapshot folder) and --output."""
    parser.add_argument("--version", help="which version's snapshots (default: the only one)")
    parser.add_argument("--var-types", nargs="+", help="only these variable types")
    parser.add_argument("--cones", nargs="+", default=None, choices=("global", "inner", "outer"))


def add_quantile_ranges_arguments(parser: argparse.ArgumentParser) -> None:
    """Options beyond --input (scaling output folder) and --output."""
    parser.add_argument("--version", help="which version (default: the only one)")
    parser.add_argument("--file-id", default="all", help="quantiles of this file id, or 'all' (default)")
    parser.add_argument("--only-suspicious", action="store_true", help="plot only suspicious features")
    parser.add_argument("--var-types", nargs="+", help="only these variable types")


def scaling_convergence_cli(args: argparse.Namespace) -> int:
    written = plot_scaling_convergence(
        args.input,
        args.output,
        version=getattr(args, "version", None),
        var_types=getattr(args, "var_types", None),
        cones=getattr(args, "cones", None) or ("global", "inner", "outer"),
    )
    print(f"wrote {len(written)} files to {args.output}")
    return 0


def quantile_ranges_cli(args: argparse.Namespace) -> int:
    written, records = plot_quantile_ranges(
        args.input,
        args.output,
        version=getattr(args, "version", None),
        file_id=str(getattr(args, "file_id", "all")),
        only_suspicious=bool(getattr(args, "only_suspicious", False)),
        var_types=getattr(args, "var_types", None),
    )
    suspicious = [r for r in records if r.get("suspicious")]
    for r in suspicious:
        flags = ", ".join(k for k, v in r["flags"].items() if v)
        print(f"suspicious: {r['var_type']}/{r['feature']}/{r['cone']}: {flags}")
    print(f"{len(suspicious)} suspicious of {sum('flags' in r for r in records)} judged; wrote {len(written)} files to {args.output}")
    return 0
