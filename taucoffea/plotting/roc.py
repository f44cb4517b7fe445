"""ROC plots from ``performance.json`` files (the original ``Evaluation/plot_roc.py``, §8.3).

One figure per phase-space bin: mis-id probability (log) against τ efficiency for several
discriminators, WP points with Clopper–Pearson error bars, and a ratio panel to a reference
curve (FPR / FPR_ref at equal TPR). Axis setups per vs type follow the original
``plot_setup.yaml``; the ratio panel's y range starts from that table and is widened to show
every ratio point inside the x range (points beyond a hard cap are drawn as arrows at the
edge), so no point is silently cut off.

Differences from the original: WP points also get a ratio point (their FPR over the
reference curve's FPR at the same TPR); the phase-space text sits in the empty lower right
corner rather than being shifted by legend size; inputs may be any number of
``performance.json`` files or folders holding them.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import mplhep
import numpy as np
from matplotlib.ticker import FuncFormatter

from taucoffea.algorithms.performance import (
    CURVE_TYPES,
    KEY_FIELDS,
    load_performance,
    roc_from_entry,
    select_entry,
)
from taucoffea.algorithms.roc import RocCurve, roc_ratio
from taucoffea.errors import ConfigError, InputError
from taucoffea.plotting.style import PALETTE, cms_label, new_figure, save_figure

__all__ = [
    "DEFAULT_PLOT_SETUP",
    "CurveStyle",
    "add_arguments",
    "bin_text",
    "cli",
    "find_performance_files",
    "load_plot_config",
    "plot_roc",
    "plot_roc_files",
    "ratio_limits",
]

#: ``plot_setup_map`` of the original, per vs type (spec §8.3).
DEFAULT_PLOT_SETUP: dict[str, dict[str, Any]] = {
    "e": {"xlim": [0.5, 1.0], "ylabel": "Electron mis-id probability", "ylim": [2e-5, 1.0],
          "ratio_yscale": "log", "ratio_ylim": [0.2, 2.0]},
    "mu": {"xlim": [0.98, 1.0], "ylabel": "Muon mis-id probability", "ylim": [2e-5, 1.0],
           "ratio_yscale": "log", "ratio_ylim": [0.5, 2.0]},
    "jet": {"xlim": [0.3, 1.0], "ylabel": "Jet mis-id probability", "ylim": [3e-4, 1.0],
            "ratio_yscale": "linear", "ratio_ylim": [0.4, 1.1]},
}  # fmt: skip

_RATIO_CAP = {"linear": (0.0, 5.0), "log": (1e-3, 1e3)}
_STYLE_KEYS = {"key", "name", "label", "curve_types", "color", "dashed", "alpha", "dots_only",
               "marker_size", "with_errors", "path"}  # fmt: skip


@dataclass(frozen=True)
class CurveStyle:
    """How one discriminator is drawn (the original ``plot_cfg``)."""

    key: str
    label: str
    color: str
    curve_types: tuple[str, ...] = CURVE_TYPES
    dashed: bool = False
    alpha: float = 1.0
    dots_only: bool = False
    marker_size: float = 5.0
    with_errors: bool = True


@dataclass(frozen=True)
class _Source:
    key: str
    path: Path
    record: dict[str, Any]


# --------------------------------------------------------------------------- inputs


def find_performance_files(inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]
                           ) -> list[Path]:
    """``performance.json`` files from paths: a file is taken as is, a folder is searched
    (itself and up to three levels below). A string may list several paths separated by
    commas. Sorted, without repeats."""
    if isinstance(inputs, (str, os.PathLike)):
        items = [p.strip() for p in str(inputs).split(",") if p.strip()]
    else:
        items = [str(p) for p in inputs]
    found: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            hits = [q for depth in range(4)
                    for q in p.glob("/".join(["*"] * depth + ["performance.json"]))]
            if not hits:
                raise InputError(f"no performance.json under '{p}'")
            found += sorted(hits)
        else:
            raise InputError(f"performance input '{p}' does not exist")
    return list(dict.fromkeys(found))


def _sources(files: Sequence[Path]) -> list[_Source]:
    out: list[_Source] = []
    seen: dict[str, Path] = {}
    for f in files:
        rec = load_performance(f)
        key = str(rec.get("key") or f.parent.name or rec.get("name"))
        if key in seen:
            raise InputError(f"two performance files for discriminator key '{key}': "
                             f"'{seen[key]}' and '{f}'")
        seen[key] = f
        out.append(_Source(key, f, rec))
    return out


# --------------------------------------------------------------------------- configuration


def load_plot_config(config: str | os.PathLike[str] | Mapping[str, Any] | None
                     ) -> dict[str, Any]:
    """Read and check a ROC plot setup (``configs/evaluation/plot_roc.yaml``)."""
    from taucoffea.algorithms.discriminators import read_yaml_mapping

    if config is None:
        data: dict[str, Any] = {}
        where = "plot config"
    elif isinstance(config, Mapping):
        data, where = dict(config), "plot config"
    else:
        data, where = read_yaml_mapping(config, "ROC plot config"), f"ROC plot config '{config}'"
    allowed = {"period", "discriminators", "reference", "plot_ratio", "bins", "plot_setup",
               "output_prefix"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    setup = {vs: dict(v) for vs, v in DEFAULT_PLOT_SETUP.items()}
    for vs, over in (data.get("plot_setup") or {}).items():
        if vs not in setup or not isinstance(over, Mapping):
            raise ConfigError(f"{where}: plot_setup.{vs}: expected a vs type (e, mu, jet) "
                              "mapping to axis settings")
        bad = sorted(set(over) - set(setup[vs]))
        if bad:
            raise ConfigError(f"{where}: plot_setup.{vs}: unknown key(s) {bad}; allowed: "
                              f"{sorted(setup[vs])}")
        setup[vs].update(over)
    for vs, s in setup.items():
        if s["ratio_yscale"] not in ("linear", "log"):
            raise ConfigError(f"{where}: plot_setup.{vs}.ratio_yscale must be linear or log")
    discs = data.get("discriminators")
    if discs is not None:
        if not isinstance(discs, Sequence) or isinstance(discs, str):
            raise ConfigError(f"{where}: discriminators must be a list of mappings")
        for i, d in enumerate(discs):
            if isinstance(d, str):
                continue
            if not isinstance(d, Mapping) or not (d.get("key") or d.get("name")):
                raise ConfigError(f"{where}: discriminators[{i}] needs 'key' or 'name'")
            bad = sorted(set(d) - _STYLE_KEYS)
            if bad:
                raise ConfigError(f"{where}: discriminators[{i}]: unknown key(s) {bad}; "
                                  f"allowed: {sorted(_STYLE_KEYS)}")
            for t in d.get("curve_types", CURVE_TYPES):
                if t not in CURVE_TYPES:
                    raise ConfigError(f"{where}: discriminators[{i}].curve_types: {t!r}; "
                                      f"allowed: {list(CURVE_TYPES)}")
    ref = data.get("reference")
    if ref is not None:
        if isinstance(ref, str):
            ref = {"key": ref}
        if not isinstance(ref, Mapping) or not (ref.get("key") or ref.get("name")):
            raise ConfigError(f"{where}: reference must name a discriminator by key or name")
        if ref.get("curve_type", "roc_curve") not in CURVE_TYPES:
            raise ConfigError(f"{where}: reference.curve_type must be one of {list(CURVE_TYPES)}")
    return {
        "period": data.get("period"),
        "discriminators": discs,
        "reference": ref,
        "plot_ratio": bool(data.get("plot_ratio", True)),
        "bins": data.get("bins"),
        "plot_setup": setup,
        "output_prefix": str(data.get("output_prefix", "roc_curve")),
        "where": where,
    }


def _match_source(sources: Sequence[_Source], ident: Mapping[str, Any], where: str) -> _Source:
    for s in sources:
        if ident.get("key") and s.key == ident["key"]:
            return s
        if ident.get("name") and s.record.get("name") == ident["name"]:
            return s
    have = ", ".join(f"{s.key} ('{s.record.get('name')}')" for s in sources)
    raise InputError(f"{where}: no performance file for {dict(ident)}; have: {have}")


def _styles(sources: Sequence[_Source], cfg: Mapping[str, Any]
            ) -> list[tuple[_Source, CurveStyle]]:
    entries = cfg["discriminators"]
    if entries is None:
        entries = [{"key": s.key} for s in sources]
    out = []
    for i, e in enumerate(entries):
        e = {"key": e} if isinstance(e, str) else dict(e)
        src = _match_source(sources, e, cfg["where"])
        out.append((src, CurveStyle(
            key=src.key,
            label=str(e.get("label") or src.record.get("name") or src.key),
            color=str(e.get("color") or PALETTE[i % len(PALETTE)]),
            curve_types=tuple(e.get("curve_types", CURVE_TYPES)),
            dashed=bool(e.get("dashed", False)),
            alpha=float(e.get("alpha", 1.0)),
            dots_only=bool(e.get("dots_only", False)),
            marker_size=float(e.get("marker_size", 5.0)),
            with_errors=bool(e.get("with_errors", True)),
        )))
    return out


# --------------------------------------------------------------------------- drawing helpers


def bin_text(key: Mapping[str, Any]) -> list[str]:
    """Phase-space lines of a bin, as the original ``add_text``."""
    pt_min, pt_max = float(key["pt_min"]), float(key["pt_max"])
    if pt_max >= 1000:
        pt = rf"$p_T > {pt_min:g}$ GeV"
    elif pt_min <= 20:
        pt = rf"$p_T < {pt_max:g}$ GeV"
    else:
        pt = rf"$p_T \in ({pt_min:g}, {pt_max:g})$ GeV"
    eta = rf"${float(key['eta_min']):g} < |\eta| < {float(key['eta_max']):g}$"
    dms = [int(d) for d in key["dm_bin"]]
    dm = f"DM = {dms[0]}" if len(dms) == 1 else rf"DM $\in$ {dms}"
    return [pt, eta, dm]


def ratio_limits(values: Iterable[np.ndarray], default: Sequence[float], scale: str
                 ) -> tuple[float, float]:
    """Ratio-panel y range: the configured ``default`` widened to every finite value (with a
    margin), within a hard cap (linear [0, 5], log [1e-3, 1e3])."""
    lo, hi = float(default[0]), float(default[1])
    vals = np.concatenate([np.asarray(v, dtype=float).ravel() for v in values] or [np.empty(0)])
    vals = vals[np.isfinite(vals)]
    if scale == "log":
        vals = vals[vals > 0]
    cap_lo, cap_hi = _RATIO_CAP[scale]
    if vals.size:
        if scale == "log":
            lo, hi = min(lo, vals.min() / 1.25), max(hi, vals.max() * 1.25)
        else:
            span = max(vals.max() - vals.min(), 0.1)
            lo, hi = min(lo, vals.min() - 0.08 * span), max(hi, vals.max() + 0.08 * span)
    return max(lo, cap_lo), min(hi, cap_hi)


def _in_x(x: np.ndarray, xlim: Sequence[float]) -> np.ndarray:
    return (x >= xlim[0]) & (x <= xlim[1])


def _mark_outside(ax: Any, x: np.ndarray, y: np.ndarray, lims: tuple[float, float],
                  color: str) -> None:
    """Values beyond the (capped) ratio range: arrows on the edge instead of nothing."""
    lo, hi = lims
    for sel, edge, marker in ((y > hi, hi, "^"), (y < lo, lo, "v")):
        if np.any(sel):
            ax.plot(x[sel], np.full(int(sel.sum()), edge), linestyle="none", marker=marker,
                    color=color, markersize=7, clip_on=False)


@dataclass
class _Drawn:
    ratio_x: list[np.ndarray] = field(default_factory=list)
    ratio_y: list[np.ndarray] = field(default_factory=list)
    ratio_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def _draw_curve(ax: Any, roc: RocCurve, style: CurveStyle, curve_type: str, label: str
                ) -> RocCurve:
    dots = style.dots_only or curve_type == "roc_wp"
    if not dots and len(roc) > 2 and abs(roc.tpr[-1] - roc.tpr[-2]) > 0.01:
        roc = roc.take(np.arange(len(roc) - 1))  # the original drops a far last point
    show = roc.fpr > 0  # a log axis cannot show FPR = 0
    x, y = roc.tpr[show], roc.fpr[show]
    errors = style.with_errors and roc.fpr_err is not None and roc.tpr_err is not None
    common = dict(color=style.color, alpha=style.alpha, label=label)
    if dots:
        if errors:
            ax.errorbar(x, y, xerr=roc.tpr_err[:, show], yerr=roc.fpr_err[:, show], fmt="o",
                        markersize=style.marker_size, capsize=2, linewidth=1.2, **common)
        else:
            ax.plot(x, y, "o", markersize=style.marker_size, **common)
    else:
        ax.plot(x, y, linestyle="--" if style.dashed else "-", linewidth=2, **common)
        if errors:
            ax.fill_between(x, np.clip(y - roc.fpr_err[0, show], 1e-12, None),
                            y + roc.fpr_err[1, show], color=style.color, alpha=0.2 * style.alpha,
                            linewidth=0)
    return roc


def _ratio_of(roc: RocCurve, ref: RocCurve, curve_type: str
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    if curve_type == "roc_curve":
        x, r = roc_ratio(roc, ref)
        return x, r, None
    # WP points: FPR over the reference's FPR interpolated at the WP's TPR
    order = np.argsort(ref.tpr, kind="stable")
    ref_fpr = np.interp(roc.tpr, ref.tpr[order], ref.fpr[order], left=np.nan, right=np.nan)
    ok = np.isfinite(ref_fpr) & (ref_fpr > 0)
    r = roc.fpr[ok] / ref_fpr[ok]
    err = None if roc.fpr_err is None else roc.fpr_err[:, ok] / ref_fpr[ok]
    return roc.tpr[ok], r, err


def plot_roc(
    curves: Sequence[tuple[CurveStyle, str, RocCurve]],
    key: Mapping[str, Any],
    path: str | os.PathLike[str],
    *,
    reference: RocCurve | None = None,
    reference_label: str | None = None,
    setup: Mapping[str, Any] | None = None,
    period: str | None = None,
    plot_ratio: bool = True,
) -> list[Path]:
    """Draw one ROC figure and save it as ``path.pdf`` and ``path.png``.

    ``curves`` are ``(style, curve_type, curve)`` in drawing order; ``key`` is the bin key
    of the entries (vs type, bin edges, dataset alias) used for the axes and the text.
    """
    vs = str(key["vs_type"])
    setup = dict(DEFAULT_PLOT_SETUP.get(vs, DEFAULT_PLOT_SETUP["jet"]), **(setup or {}))
    with_ratio = plot_ratio and reference is not None
    if with_ratio:
        fig, (ax, rax) = new_figure(2, 1, figsize=(9, 10), sharex=True,
                                    gridspec_kw={"height_ratios": [3, 1], "hspace": 0})
    else:
        fig, ax = new_figure(1, 1, figsize=(9, 8))
        rax = None
    xlim = setup["xlim"]
    drawn = _Drawn()
    with plt.style.context(mplhep.style.CMS):
        for style, ctype, roc in curves:
            label = style.label if ctype == "roc_curve" else f"{style.label} WPs"
            shown = _draw_curve(ax, roc, style, ctype, label)
            if rax is not None and reference is not None:
                x, r, err = _ratio_of(shown, reference, ctype)
                keep = _in_x(x, xlim)
                x, r = x[keep], r[keep]
                err = None if err is None else err[:, keep]
                drawn.ratio_x.append(x)
                drawn.ratio_y.append(r if err is None else np.concatenate([r - err[0], r + err[1]]))
                drawn.ratio_calls.append((ctype, dict(x=x, r=r, err=err, style=style)))
        ax.set_yscale("log")
        ax.set_xlim(*xlim)
        ax.set_ylim(*setup["ylim"])
        ax.set_ylabel(setup["ylabel"], fontsize=20)
        ax.grid(True, which="major", alpha=0.4)
        ax.tick_params(labelsize=16)
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles, strict=True))
        ax.legend(unique.values(), unique.keys(), loc="upper left", fontsize=15,
                  frameon=False)
        lines = [*([period] if period else []), *bin_text(key),
                 f"sample: {key.get('dataset_alias', '')}"]
        ax.text(0.97, 0.04, "\n".join(lines), transform=ax.transAxes, ha="right", va="bottom",
                fontsize=15, linespacing=1.4)
        cms_label(ax)
        if rax is not None:
            scale = setup["ratio_yscale"]
            lims = ratio_limits(drawn.ratio_y, setup["ratio_ylim"], scale)
            rax.axhline(1.0, color="grey", linewidth=1, linestyle=":")
            for ctype, d in drawn.ratio_calls:
                st, x, r, err = d["style"], d["x"], d["r"], d["err"]
                vis = np.isfinite(r) & ((r > 0) if scale == "log" else True)
                if ctype == "roc_wp":
                    rax.errorbar(x[vis], r[vis], yerr=None if err is None else err[:, vis],
                                 fmt="o", color=st.color, markersize=st.marker_size,
                                 capsize=2, alpha=st.alpha)
                else:
                    rax.plot(x[vis], r[vis], color=st.color, alpha=st.alpha, linewidth=2,
                             linestyle="--" if st.dashed else "-")
                _mark_outside(rax, x[vis], r[vis], lims, st.color)
            rax.set_yscale(scale)
            rax.set_ylim(*lims)
            if scale == "log":  # plain numbers instead of 6×10⁻¹ on a narrow log panel
                plain = FuncFormatter(lambda v, _: f"{v:g}")
                rax.yaxis.set_major_formatter(plain)
                rax.yaxis.set_minor_formatter(plain)
                rax.tick_params(axis="y", which="both", labelsize=11)
            else:
                rax.tick_params(axis="y", labelsize=14)  # the CMS style's 26 pt crowds the narrow panel
            rax.set_xlim(*xlim)
            rax.set_xlabel("Tau ID efficiency", fontsize=20)
            rax.set_ylabel(f"Ratio to\n{reference_label or 'reference'}" if reference_label
                           and len(reference_label) < 18 else "Ratio", fontsize=16,
                           labelpad=17 if vs == "jet" else 10)
            rax.grid(True, which="major", alpha=0.4)
            rax.tick_params(axis="x", labelsize=14)
        else:
            ax.set_xlabel("Tau ID efficiency", fontsize=20)
    return save_figure(fig, path)


# --------------------------------------------------------------------------- driver


def _bin_keys(sources: Sequence[_Source], cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    if cfg["bins"] is not None:
        keys = []
        for i, b in enumerate(cfg["bins"]):
            try:
                keys.append({"vs_type": b["vs_type"], "dataset_alias": b["dataset_alias"],
                             "pt_min": b["pt_bin"][0], "pt_max": b["pt_bin"][1],
                             "eta_min": b["eta_bin"][0], "eta_max": b["eta_bin"][1],
                             "dm_bin": list(b["dm_bin"])})  # fmt: skip
            except (KeyError, TypeError, IndexError):
                raise ConfigError(f"{cfg['where']}: bins[{i}] needs vs_type, dataset_alias, "
                                  "pt_bin, eta_bin, dm_bin") from None
        return keys
    seen: dict[tuple, dict[str, Any]] = {}
    for s in sources:
        for t in CURVE_TYPES:
            for e in s.record["metrics"].get(t, []):
                k = {f: e[f] for f in KEY_FIELDS}
                seen.setdefault(repr(sorted(k.items())), k)
    return sorted(seen.values(), key=lambda k: (k["vs_type"], k["dataset_alias"],
                                                k["dm_bin"], k["eta_min"], k["pt_min"]))


def _num(x: Any) -> str:
    return f"{float(x):g}".replace(".", "p").replace("-", "m")


def _file_name(prefix: str, key: Mapping[str, Any]) -> str:
    """Output base name; no dots, since the suffix is added by :func:`save_figure`."""
    dms = "_".join(str(int(d)) for d in key["dm_bin"])
    alias = str(key["dataset_alias"]).replace(".", "p").replace("/", "_")
    return (f"{prefix}_vs_{key['vs_type']}_{alias}_pt_{_num(key['pt_min'])}_"
            f"{_num(key['pt_max'])}_eta_{_num(key['eta_min'])}_{_num(key['eta_max'])}"
            f"_dm_{dms}")


def plot_roc_files(
    inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    config: str | os.PathLike[str] | Mapping[str, Any] | None = None,
) -> list[Path]:
    """Every ROC figure of the given ``performance.json`` files (one per bin key).

    Without a config every discriminator found is drawn (both curve types) and the first
    one's ROC curve is the reference.
    """
    cfg = load_plot_config(config)
    sources = _sources(find_performance_files(inputs))
    styled = _styles(sources, cfg)
    ref_ident = cfg["reference"] or {"key": styled[0][0].key}
    ref_source = _match_source(sources, ref_ident, cfg["where"])
    ref_type = ref_ident.get("curve_type", "roc_curve")
    ref_label = next((st.label for s, st in styled if s.key == ref_source.key),
                     ref_source.record.get("name"))
    written: list[Path] = []
    for key in _bin_keys(sources, cfg):
        curves = []
        for src, style in styled:
            for ctype in style.curve_types:
                entry = select_entry(src.record, ctype, **key)
                if entry is not None:
                    curves.append((style, ctype, roc_from_entry(entry)))
        if not curves:
            continue
        ref_entry = select_entry(ref_source.record, ref_type, **key)
        reference = None if ref_entry is None else roc_from_entry(ref_entry)
        period = cfg["period"] or next((s.record.get("period") for s in sources
                                        if s.record.get("period")), None)
        written += plot_roc(curves, key, Path(output) / _file_name(cfg["output_prefix"], key),
                            reference=reference, reference_label=ref_label,
                            setup=cfg["plot_setup"].get(key["vs_type"]), period=period,
                            plot_ratio=cfg["plot_ratio"])
    if not written:
        raise InputError("no ROC curve to plot in the given performance files")
    return written


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``taucoffea plot roc`` beyond ``--input``/``--output``."""
    parser.add_argument("--config", help="plot setup YAML (configs/evaluation/plot_roc.yaml)")


def cli(args: argparse.Namespace) -> int:
    """``taucoffea plot roc``: ``--input`` performance.json file(s)/folder(s), comma separated."""
    for p in plot_roc_files(args.input, args.output, getattr(args, "config", None)):
        print(p)
    return 0
