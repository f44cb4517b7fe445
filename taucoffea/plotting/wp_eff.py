"""Working-point efficiency plots (the original ``Evaluation/plot_wp_eff.py``, §8.6).

For every vs type and variable (pT, η, φ, decay mode): the efficiency of each WP for genuine
taus (left) and the mis-id probability for taus of that vs type (right, log), with central
Clopper–Pearson 68.27 % intervals. As in the original:

* ``WP_cut`` is the AND of the *other* types' required WPs (default VVVLoose vs e, VLoose
  vs μ, VVVLoose vs jet);
* ``require_wps_in_numerator`` (default on) applies ``WP_cut`` to the numerator only, so
  the efficiency includes the loss from the other types' requirements;
  ``require_wps_in_denominator`` (default off, implies the numerator one) applies it to both;
* bins are left-open, right-closed (``lo < x ≤ hi``); categorical variables (the decay
  mode) use one bin per listed value instead of the original's ranges
  ``[−0.5, 0.5, 1.5, 5.5, …]`` whose (1.5, 5.5] bin, labelled "5", really held DM 2.

Counts are unweighted unless a ``weight`` expression is configured; weighted efficiencies use
Kish effective counts for the interval (:func:`clopper_pearson_weighted`).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import mplhep
import numpy as np
from matplotlib.ticker import NullFormatter, NullLocator

from taucoffea.algorithms.discriminators import (
    VS_TYPES,
    Discriminator,
    read_yaml_mapping,
    resolve_discriminator,
)
from taucoffea.algorithms.intervals import ONE_SIGMA_CL, clopper_pearson_weighted
from taucoffea.columns.selection import compile_expression, compile_selection
from taucoffea.errors import ConfigError, InputError
from taucoffea.physics.tautypes import TauType
from taucoffea.plotting.style import cms_label, new_figure, save_figure

__all__ = [
    "DEFAULT_VARIABLES",
    "WPEfficiency",
    "Variable",
    "add_arguments",
    "cli",
    "plot_wp_eff",
    "plot_wp_efficiency",
    "wp_efficiency",
]

_PT_BINS = [20, 25, 30, 35, 40, 45, 50, 55, 60, 70, 80, 90, 100, 120, 140, 160, 180, 200, 300,
            1000]
#: The variable setups of ``configs/wp_eff_var/*.yaml`` (decay modes as categories).
DEFAULT_VARIABLES: dict[str, dict[str, Any]] = {
    "tau_pt": {"bins": _PT_BINS, "log_x": True, "ylim_tau": [0.2, 1.0],
               "ylim_fake": [3e-5, 0.2], "label": r"$p_T^{\tau}$ [GeV]"},
    "tau_eta": {"bins": {"n": 9, "min": -2.3, "max": 2.3}, "label": r"$\eta^{\tau}$"},
    "tau_phi": {"bins": {"n": 9, "min": -3.14159265, "max": 3.14159265},
                "label": r"$\phi^{\tau}$"},
    "tau_decayMode": {"categories": [0, 1, 2, 10, 11], "label": "decay mode"},
}  # fmt: skip

DEFAULT_WP_EFF_SELECTION = ("tau_pt >= 20 && tau_pt < 1000 && abs(tau_eta) < 2.3 && "
                            "abs(tau_dz) < 0.2 && tau_decayMode != 5 && tau_decayMode != 6")


@dataclass(frozen=True)
class Variable:
    """A variable to plot efficiencies against: bin edges, or categories (one bin each)."""

    name: str
    edges: np.ndarray | None = None
    categories: tuple[int, ...] | None = None
    label: str = ""
    log_x: bool = False
    ylim_tau: tuple[float, float] | None = None
    ylim_fake: tuple[float, float] | None = None

    @property
    def n_bins(self) -> int:
        return len(self.categories) if self.categories is not None else len(self.edges) - 1

    def bin_index(self, values: np.ndarray) -> np.ndarray:
        """Bin of each value (−1 outside); bins are ``lo < x ≤ hi``."""
        v = np.asarray(values, dtype=np.float64)
        if self.categories is not None:
            idx = np.full(v.shape, -1, dtype=np.int64)
            for i, c in enumerate(self.categories):
                idx[v == c] = i
            return idx
        assert self.edges is not None
        idx = np.searchsorted(self.edges, v, side="left") - 1
        return np.where((v > self.edges[0]) & (v <= self.edges[-1]), idx, -1)

    @classmethod
    def from_mapping(cls, name: str, spec: Mapping[str, Any], where: str) -> Variable:
        allowed = {"bins", "categories", "label", "log_x", "ylim_tau", "ylim_fake"}
        bad = sorted(set(spec) - allowed)
        if bad:
            raise ConfigError(f"{where}: variables.{name}: unknown key(s) {bad}; allowed: "
                              f"{sorted(allowed)}")
        edges = None
        cats = spec.get("categories")
        if cats is not None:
            if not cats or not all(isinstance(c, int) and not isinstance(c, bool) for c in cats):
                raise ConfigError(f"{where}: variables.{name}.categories must list integers")
            cats = tuple(cats)
        else:
            bins = spec.get("bins")
            if isinstance(bins, Mapping):
                try:
                    edges = np.linspace(float(bins["min"]), float(bins["max"]), int(bins["n"]) + 1)
                except (KeyError, TypeError, ValueError):
                    raise ConfigError(f"{where}: variables.{name}.bins needs n, min, max") from None
            elif isinstance(bins, Sequence) and not isinstance(bins, str) and len(bins) >= 2:
                edges = np.asarray(bins, dtype=np.float64)
            else:
                raise ConfigError(f"{where}: variables.{name} needs 'bins' (edges or "
                                  "{n, min, max}) or 'categories'")
            if np.any(np.diff(edges) <= 0):
                raise ConfigError(f"{where}: variables.{name}.bins must increase strictly")
        def lim(key: str) -> tuple[float, float] | None:
            v = spec.get(key)
            return None if v is None else (float(v[0]), float(v[1]))
        return cls(name, edges, cats, str(spec.get("label", name)), bool(spec.get("log_x")),
                   lim("ylim_tau"), lim("ylim_fake"))


@dataclass(frozen=True)
class WPEfficiency:
    """Per-bin, per-WP efficiency with its interval: arrays of shape ``(n_bins, n_wps)``."""

    wp_names: tuple[str, ...]
    eff: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    n_den: np.ndarray


def wp_efficiency(
    bin_index: np.ndarray,
    n_bins: int,
    passes: Mapping[str, np.ndarray],
    *,
    weight: np.ndarray | None = None,
    numerator_mask: np.ndarray | None = None,
    cl: float = ONE_SIGMA_CL,
) -> WPEfficiency:
    """Efficiency of each WP in each bin: ``Σw(in bin, passes, numerator_mask) / Σw(in bin)``
    with central Clopper–Pearson intervals (effective counts when weighted). Empty bins give
    0 with the interval (0, 1)."""
    idx = np.asarray(bin_index)
    w = np.ones(idx.shape) if weight is None else np.asarray(weight, dtype=np.float64)
    inside = idx >= 0
    den = np.bincount(idx[inside], weights=w[inside], minlength=n_bins)
    den2 = np.bincount(idx[inside], weights=np.square(w[inside]), minlength=n_bins)
    extra = np.ones(idx.shape, bool) if numerator_mask is None else np.asarray(numerator_mask)
    names = tuple(passes)
    eff = np.zeros((n_bins, len(names)))
    lo = np.zeros_like(eff)
    hi = np.ones_like(eff)
    for j, name in enumerate(names):
        ok = inside & np.asarray(passes[name], dtype=bool) & extra
        num = np.bincount(idx[ok], weights=w[ok], minlength=n_bins)
        e, l, h = clopper_pearson_weighted(np.minimum(num, den), den, den2, cl)
        eff[:, j], lo[:, j], hi[:, j] = e, l, h
    return WPEfficiency(names, eff, lo, hi, den)


def plot_wp_efficiency(
    var: Variable,
    tau: WPEfficiency,
    fake: WPEfficiency,
    vs_type: str,
    path: str | os.PathLike[str],
    *,
    title: str = "",
) -> list[Path]:
    """Left: genuine-τ efficiency per WP; right: mis-id probability (log). PDF + PNG."""
    fig, (ax1, ax2) = new_figure(1, 2, figsize=(17, 7.5))
    if var.categories is not None:
        centers = np.arange(len(var.categories), dtype=float)
        half = np.full(centers.shape, 0.5)
    else:
        centers = 0.5 * (var.edges[1:] + var.edges[:-1])
        half = 0.5 * np.diff(var.edges)
    n_wp = len(tau.wp_names)
    offsets = (np.arange(n_wp) - (n_wp - 1) / 2) * (0.6 / max(n_wp, 1))
    # WPs are ordered loose → tight: a sequential colour map keeps that order readable
    colors = plt.get_cmap("plasma")(np.linspace(0.0, 0.85, max(n_wp, 1)))
    fake_name = {"e": "e", "mu": r"$\mu$", "jet": "jet"}[vs_type]
    with plt.style.context(mplhep.style.CMS):
        for ax, res, ylabel in ((ax1, tau, r"$\tau_h$ ID efficiency"),
                                (ax2, fake, f"{fake_name}" + r"$\to\tau_h$ mis-id probability")):
            for j, wp in enumerate(res.wp_names):
                x = centers + (offsets[j] if var.categories is not None else 0.0)
                ok = res.n_den > 0
                if ax is ax2:
                    ok &= res.eff[:, j] > 0  # a log axis cannot show 0
                yerr = np.vstack([res.eff[ok, j] - res.lo[ok, j], res.hi[ok, j] - res.eff[ok, j]])
                ax.errorbar(x[ok], res.eff[ok, j], yerr=yerr,
                            xerr=None if var.categories is not None else half[ok],
                            fmt="o", markersize=5, capsize=0 if var.categories is None else 2,
                            color=colors[j], label=wp, linewidth=1.3)
            ax.set_ylabel(ylabel, fontsize=20)
            ax.set_xlabel(var.label, fontsize=20)
            ax.tick_params(labelsize=15)
            ax.grid(True, alpha=0.35)
            if var.categories is not None:
                ax.set_xticks(centers, [str(c) for c in var.categories])
                ax.xaxis.set_minor_locator(NullLocator())
                ax.set_xlim(-0.6, len(var.categories) - 0.4)
            else:
                ax.set_xlim(var.edges[0], var.edges[-1])
                if var.log_x:
                    ax.set_xscale("log")
                    ticks = [t for t in (20, 30, 50, 100, 200, 300, 500, 1000, 2000, 5000)
                             if var.edges[0] <= t <= var.edges[-1]]
                    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
                    ax.xaxis.set_minor_formatter(NullFormatter())
            cms_label(ax)
        lo_shown = tau.lo[tau.n_den > 0]
        y_lo = (var.ylim_tau or (0.0, 1.05))[0]
        if lo_shown.size:  # never cut off a point: widen the configured range if needed
            y_lo = max(0.0, min(y_lo, float(lo_shown.min()) - 0.03))
        ax1.set_ylim(y_lo, (var.ylim_tau or (0.0, 1.05))[1])
        ax2.set_yscale("log")
        if var.ylim_fake is not None:
            ax2.set_ylim(*var.ylim_fake)
        else:
            shown = (fake.eff > 0) & (fake.n_den[:, None] > 0)
            lows = np.where(fake.lo[shown] > 0, fake.lo[shown], fake.eff[shown])
            if lows.size:  # the whole error bars, with room above for the largest values
                ax2.set_ylim(max(lows.min() / 1.5, 1e-7), min(1.0, fake.hi[shown].max() * 5))
        handles, labels = ax1.get_legend_handles_labels()
        fig.tight_layout(rect=(0, 0.1, 1, 1))
        fig.legend(handles, labels, loc="lower center", ncol=max(1, n_wp), fontsize=15,
                   frameon=False, bbox_to_anchor=(0.5, 0.0),
                   title=f"{title + ': ' if title else ''}WPs vs {vs_type}", title_fontsize=15)
    return save_figure(fig, path)


# --------------------------------------------------------------------------- driver


_KEYS = {"vs_types", "discriminator", "inputs", "samples", "selection", "weight",
         "require_wps_in_numerator", "require_wps_in_denominator", "wps_to_require",
         "variables", "title"}  # fmt: skip


def _load_config(config: str | os.PathLike[str] | Mapping[str, Any] | None,
                 working_points: Any) -> dict[str, Any]:
    base: Path | None = None
    if config is None:
        raise ConfigError("plot wp-eff needs --config (configs/evaluation/plot_wp_eff.yaml)")
    if isinstance(config, Mapping):
        data, where = dict(config), "wp-eff plot config"
    else:
        data = read_yaml_mapping(config, "wp-eff plot config")
        base, where = Path(config).parent, f"wp-eff plot config '{config}'"
    bad = sorted(set(data) - _KEYS)
    if bad:
        raise ConfigError(f"{where}: unknown key(s) {bad}; allowed: {sorted(_KEYS)}")
    d = resolve_discriminator(data.get("discriminator"), where, base)
    if working_points is not None:
        if isinstance(working_points, (str, os.PathLike)):
            from taucoffea.algorithms.performance import load_working_points

            working_points = load_working_points(working_points)
        d = d.with_thresholds(working_points)
    vs_types = data.get("vs_types", list(VS_TYPES))
    if isinstance(vs_types, str):
        vs_types = [vs_types]
    if any(v not in VS_TYPES for v in vs_types):
        raise ConfigError(f"{where}: vs_types={vs_types!r}; allowed: {list(VS_TYPES)}")
    for vs in vs_types:
        if not d.has_wps(vs):
            raise ConfigError(f"{where}: discriminator '{d.name}' has no WPs against {vs} "
                              "(give --working-points or wp_thresholds)")
    samples = data.get("samples") or {t: ["*"] for t in ("tau", *vs_types)}
    if not isinstance(samples, Mapping):
        raise ConfigError(f"{where}: samples must map tau types to lists of sample aliases")
    for t in ("tau", *vs_types):
        s = samples.get(t)
        if isinstance(s, str):
            samples[t] = [s]
        elif not s:
            raise ConfigError(f"{where}: samples.{t} must list the samples with {t} taus")
    variables = {}
    for name, spec in (data.get("variables") or DEFAULT_VARIABLES).items():
        spec = spec if spec is not None else DEFAULT_VARIABLES.get(name)
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where}: variables.{name} needs a mapping")
        variables[name] = Variable.from_mapping(name, spec, where)
    reqs = data.get("wps_to_require", {"e": "VVVLoose", "mu": "VLoose", "jet": "VVVLoose"})
    num = bool(data.get("require_wps_in_numerator", True))
    den = bool(data.get("require_wps_in_denominator", False))
    if den and not num:
        raise ConfigError(f"{where}: require_wps_in_denominator needs require_wps_in_numerator")
    selection = data.get("selection", DEFAULT_WP_EFF_SELECTION)
    return {
        "where": where, "discriminator": d, "vs_types": list(vs_types), "samples": samples,
        "selection": compile_selection(selection) if selection else None,
        "weight": compile_expression(data["weight"]) if data.get("weight") else None,
        "num": num, "den": den, "reqs": dict(reqs or {}), "variables": variables,
        "inputs": data.get("inputs"), "title": str(data.get("title", "")),
    }  # fmt: skip


def plot_wp_eff(
    inputs: str | os.PathLike[str] | None,
    output: str | os.PathLike[str],
    config: str | os.PathLike[str] | Mapping[str, Any] | None,
    *,
    working_points: Mapping[str, Mapping[str, float]] | str | os.PathLike[str] | None = None,
) -> list[Path]:
    """Every WP efficiency figure: ``<output>/wp_eff_vs_<t>_<variable>.{pdf,png}``.

    ``inputs`` replaces ``inputs.path`` of the config; ``working_points`` (a mapping or a
    ``working_points.json``) sets threshold WPs on the configured discriminator.
    """
    from taucoffea.stages.evaluate import InputSpec, available_columns, read_samples

    cfg = _load_config(config, working_points)
    spec = InputSpec.from_mapping(cfg["inputs"]) if cfg["inputs"] is not None else None
    if inputs is not None:
        spec = (spec or InputSpec(str(inputs))).with_path(inputs)
    if spec is None or not spec.path:
        raise ConfigError(f"{cfg['where']}: no input given (set inputs.path or pass --input)")
    d: Discriminator = cfg["discriminator"]
    aliases = sorted({a for t in ("tau", *cfg["vs_types"]) for a in cfg["samples"][t]})
    have = available_columns(spec, aliases)
    missing = [v for v in cfg["variables"] if v not in have]
    for v in missing:  # e.g. predictions without tau_phi and no friend configured
        print(f"plot wp-eff: variable '{v}' is not in the inputs; skipped")
    variables = {n: v for n, v in cfg["variables"].items() if n not in missing}
    if not variables:
        raise InputError(f"none of the variables {list(cfg['variables'])} is in the inputs")
    cols = ["tauType", *variables]
    for vs in VS_TYPES:
        if vs in cfg["vs_types"] or vs in cfg["reqs"]:
            cols += d.wp_columns(vs)
    for expr in (cfg["selection"], cfg["weight"]):
        if expr is not None:
            cols += sorted(expr.columns)
    cols = list(dict.fromkeys(cols))
    data = read_samples(spec, aliases, cols)

    def table_of(tau_type: str) -> dict[str, np.ndarray]:
        wanted = cfg["samples"][tau_type]
        parts = []
        for alias, t in data.items():
            if alias not in wanted and "*" not in wanted:
                continue
            keep = np.asarray(t["tauType"]) == int(TauType[tau_type])
            if cfg["selection"] is not None:
                keep &= np.asarray(cfg["selection"](t), dtype=bool)
            parts.append({c: np.asarray(v)[keep] for c, v in t.items()})
        if not parts:
            raise InputError(f"no sample provides {tau_type} taus")
        return {c: np.concatenate([p[c] for p in parts]) for c in cols}

    written: list[Path] = []
    tables = {t: table_of(t) for t in ("tau", *cfg["vs_types"])}
    for vs in cfg["vs_types"]:
        results = []
        for t in ("tau", vs):
            tab = tables[t]
            n = len(tab["tauType"])
            if n == 0:
                raise InputError(f"no {t} taus pass the selection for the vs-{vs} plots")
            cut = np.ones(n, dtype=bool)
            for other, wp in cfg["reqs"].items():
                if other != vs:
                    cut &= d.passes(tab, other, wp)
            w = (np.asarray(cfg["weight"](tab), dtype=np.float64) if cfg["weight"] is not None
                 else np.ones(n))  # fmt: skip
            if cfg["den"]:
                tab = {c: v[cut] for c, v in tab.items()}
                w, cut = w[cut], None
            masks = d.wp_masks(tab, vs)
            results.append((tab, masks, w, cut if cfg["num"] else None))
        for name, var in variables.items():
            effs = [wp_efficiency(var.bin_index(tab[name]), var.n_bins, masks, weight=w,
                                  numerator_mask=num)
                    for tab, masks, w, num in results]  # fmt: skip
            written += plot_wp_efficiency(var, effs[0], effs[1], vs,
                                          Path(output) / f"wp_eff_vs_{vs}_{name}",
                                          title=cfg["title"] or d.name)
    return written


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``taucoffea plot wp-eff`` beyond ``--input``/``--output``."""
    parser.add_argument("--config", help="configs/evaluation/plot_wp_eff.yaml")
    parser.add_argument("--working-points", help="working_points.json of the discriminator")


def cli(args: argparse.Namespace) -> int:
    """``taucoffea plot wp-eff``: ``--input`` predictions / per-tau files."""
    for p in plot_wp_eff(args.input, args.output, getattr(args, "config", None),
                         working_points=getattr(args, "working_points", None)):
        print(p)
    return 0
