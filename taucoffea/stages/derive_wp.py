"""The working-point stage: thresholds giving target genuine-τ efficiencies (spec §8.4).

Reads genuine taus (``tauType == tau``) from prediction or per-tau files, applies the
derivation selection (default 30 ≤ pT < 80 GeV, |η| < 2.3, |dz| < 0.2, DM ∉ {5, 6}),
optionally weights each sample to its luminosity, and runs the iterative WPMaker
(:func:`taucoffea.algorithms.wp_maker.derive_working_points`) on the discriminator's
``score_vs_<type>``. Outputs, written only when the iteration converged (as the original):

* ``working_points.json`` — ``{vs_type: {WP: threshold}}``, loosest first, 4 decimals;
* ``working_points_correctionlib.json`` — the same as a correctionlib set (unrounded);
* ``working_points.log`` — JSON with every iteration's thresholds, the targets and the
  efficiencies reached (written also when the iteration did not converge, for diagnosis).

Luminosity weights as in the original: ``w = L_s / (L_ref · N_selected,s)``, where
``L_s`` is a sample's ``lumi`` and ``L_ref`` is ``reweight_to_lumi`` (null: no weights).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from taucoffea.algorithms.discriminators import (
    VS_TYPES,
    Discriminator,
    read_yaml_mapping,
    resolve_discriminator,
)
from taucoffea.algorithms.performance import save_working_points, save_wp_correctionlib
from taucoffea.algorithms.wp_maker import (
    DEFAULT_WP_DEFINITIONS,
    DEFAULT_WPS_TO_REQUIRE,
    WorkingPoints,
    derive_working_points,
    lumi_weights,
)
from taucoffea.columns.atomic import check_output, write_text_atomic
from taucoffea.columns.selection import compile_expression, compile_selection
from taucoffea.errors import ConfigError, InputError, TaucoffeaError
from taucoffea.physics.tautypes import TauType
from taucoffea.stages.evaluate import InputSpec, read_samples

__all__ = [
    "DEFAULT_WP_SELECTION",
    "DeriveWPConfig",
    "DeriveWPResult",
    "load_derive_wp_config",
    "run_derive_wp",
    "wp_table",
]

#: The original derive_wp.yaml selection, in ROOT syntax.
DEFAULT_WP_SELECTION = ("tau_pt >= 30 && tau_pt < 80 && abs(tau_eta) < 2.3 && abs(tau_dz) < 0.2"
                        " && tau_decayMode != 5 && tau_decayMode != 6")

_OUTPUTS = ("working_points.json", "working_points_correctionlib.json", "working_points.log")
_KEYS = {"inputs", "samples", "reweight_to_lumi", "selection", "weight", "discriminator",
         "wp_definitions", "tpr_step", "require_wp_vs_others", "wps_to_require", "epsilon",
         "n_iterations"}  # fmt: skip


@dataclass(frozen=True)
class DeriveWPConfig:
    """Validated derive-wp setup (see ``configs/evaluation/derive_wp.yaml``)."""

    discriminator: Discriminator
    samples: dict[str, float | None]
    inputs: InputSpec | None = None
    reweight_to_lumi: float | None = None
    selection: str | None = DEFAULT_WP_SELECTION
    weight: str | None = None
    wp_definitions: dict[str, dict[str, float]] | None = None
    tpr_step: float = 1e-4
    require_wp_vs_others: bool = True
    wps_to_require: dict[str, str] | None = None
    epsilon: float = 1e-5
    n_iterations: int = 100
    source: str = "derive-wp config"


def _number(value: Any, name: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: {name}={value!r} must be a number")
    return float(value)


def load_derive_wp_config(config: str | os.PathLike[str] | Mapping[str, Any]) -> DeriveWPConfig:
    """Read and validate a derive-wp config (YAML path or mapping)."""
    if isinstance(config, Mapping):
        data, base, where = dict(config), None, "derive-wp config"
    else:
        path = Path(config)
        data, base = read_yaml_mapping(path, "derive-wp config"), path.parent
        where = f"derive-wp config '{path}'"
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(_KEYS)}")
    d = resolve_discriminator(data.get("discriminator"), where, base)
    if not d.has_score:
        raise ConfigError(f"{where}: discriminator '{d.name}' has no score (score_from: null); "
                          "working points are thresholds on a score")
    samples_raw = data.get("samples", {"*": None})
    if isinstance(samples_raw, str):
        samples_raw = {samples_raw: None}
    elif isinstance(samples_raw, list):
        samples_raw = {s: None for s in samples_raw}
    if not isinstance(samples_raw, Mapping) or not samples_raw:
        raise ConfigError(f"{where}: samples must map sample aliases to their luminosity "
                          "(or null)")
    samples: dict[str, float | None] = {}
    for alias, lumi in samples_raw.items():
        if isinstance(lumi, Mapping):
            lumi = lumi.get("lumi")
        samples[str(alias)] = None if lumi is None else _number(lumi, f"samples.{alias}", where)
    ref = data.get("reweight_to_lumi")
    if ref is not None:
        ref = _number(ref, "reweight_to_lumi", where)
        if not ref > 0:
            raise ConfigError(f"{where}: reweight_to_lumi must be positive")
        missing = [a for a, lum in samples.items() if lum is None]
        if missing:
            raise ConfigError(f"{where}: reweight_to_lumi needs a lumi for every sample; "
                              f"missing for {missing}")
    defs = data.get("wp_definitions")
    if defs is not None:
        if not isinstance(defs, Mapping) or any(vs not in VS_TYPES or not isinstance(w, Mapping) for vs, w in defs.items()):
            raise ConfigError(f"{where}: wp_definitions must map vs types "
                              f"({', '.join(VS_TYPES)}) to {{WP: efficiency}}")
        defs = {str(vs): dict(wps) for vs, wps in defs.items()}
    reqs = data.get("wps_to_require")
    if reqs is not None and not isinstance(reqs, Mapping):
        raise ConfigError(f"{where}: wps_to_require must map vs types to WP names")
    for name in ("selection", "weight"):
        expr = data.get(name, DEFAULT_WP_SELECTION if name == "selection" else None)
        if expr is not None and not isinstance(expr, str):
            raise ConfigError(f"{where}: {name} must be a string expression or null")
    selection = data.get("selection", DEFAULT_WP_SELECTION)
    if selection:
        compile_selection(selection)
    if data.get("weight"):
        compile_expression(data["weight"])
    n_it = data.get("n_iterations", 100)
    if isinstance(n_it, bool) or not isinstance(n_it, int):
        raise ConfigError(f"{where}: n_iterations={n_it!r} must be an integer")
    inputs = data.get("inputs")
    return DeriveWPConfig(
        discriminator=d,
        samples=samples,
        inputs=None if inputs is None else InputSpec.from_mapping(inputs, f"{where}: inputs"),
        reweight_to_lumi=ref,
        selection=selection or None,
        weight=data.get("weight") or None,
        wp_definitions=defs,
        tpr_step=_number(data.get("tpr_step", 1e-4), "tpr_step", where),
        require_wp_vs_others=bool(data.get("require_wp_vs_others", True)),
        wps_to_require=None if reqs is None else {str(k): str(v) for k, v in reqs.items()},
        epsilon=_number(data.get("epsilon", 1e-5), "epsilon", where),
        n_iterations=n_it,
        source=where,
    )


@dataclass
class DeriveWPResult:
    """Derived working points, the table they were derived on, and the files written."""

    working_points: WorkingPoints
    n_taus: dict[str, int]
    outputs: list[Path]

    def summary(self) -> str:
        wp = self.working_points
        lines = [f"{'vs':<4} {'WP':<9} {'target':>8} {'reached':>9} {'threshold':>12}"]
        for vs, table in wp.thresholds.items():
            for name, thr in table.items():
                lines.append(f"{vs:<4} {name:<9} {wp.targets[vs][name]:>8.4f} "
                             f"{wp.efficiencies[vs][name]:>9.5f} {thr:>12.7f}")
        state = "converged" if wp.converged else "NOT converged"
        lines.append(f"{state} after {wp.n_iterations} iteration(s) on "
                     f"{sum(self.n_taus.values())} genuine taus ({self.n_taus})")
        return "\n".join(lines)


def wp_table(cfg: DeriveWPConfig, spec: InputSpec) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """The WPMaker input: ``score_vs_<t>`` and ``weight`` of the selected genuine taus, and
    the number of taus per sample."""
    d = cfg.discriminator
    vs_types = list(cfg.wp_definitions or DEFAULT_WP_DEFINITIONS)
    cols = ["tauType", *[c for vs in vs_types for c in d.score_columns(vs)]]
    sel = compile_selection(cfg.selection) if cfg.selection else None
    wexpr = compile_expression(cfg.weight) if cfg.weight else None
    for expr in (sel, wexpr):
        if expr is not None:
            cols += sorted(expr.columns)
    data = read_samples(spec, cfg.samples, list(dict.fromkeys(cols)))
    parts: dict[str, list[np.ndarray]] = {f"score_vs_{vs}": [] for vs in vs_types}
    parts["weight"], labels, counts = [], [], {}
    for alias, table in data.items():
        keep = np.asarray(table["tauType"]) == int(TauType.tau)
        if sel is not None:
            keep &= np.asarray(sel(table), dtype=bool)
        sub = {c: np.asarray(v)[keep] for c, v in table.items()}
        n = int(keep.sum())
        counts[alias] = n
        if n == 0:
            continue
        for vs in vs_types:
            parts[f"score_vs_{vs}"].append(d.score(sub, vs))
        w = np.asarray(wexpr(sub), dtype=np.float64) if wexpr else np.ones(n)
        parts["weight"].append(w)
        labels.append(np.full(n, alias, dtype=object))
    if not labels:
        raise InputError(f"no genuine taus pass the selection '{cfg.selection}' in samples "
                         f"{sorted(data)}")
    out = {k: np.concatenate(v) for k, v in parts.items()}
    if cfg.reweight_to_lumi is not None:
        lab = np.concatenate(labels)
        lumis = {a: cfg.samples.get(a, cfg.samples.get("*")) for a in counts}
        if any(v is None for v in lumis.values()):
            raise ConfigError(f"{cfg.source}: no lumi for sample(s) "
                              f"{[a for a, v in lumis.items() if v is None]}")
        out["weight"] = out["weight"] * lumi_weights(
            lab, {a: 1.0 for a in counts}, None, lumis) / cfg.reweight_to_lumi
    return out, counts


def run_derive_wp(
    config: str | os.PathLike[str] | Mapping[str, Any] | DeriveWPConfig,
    output: str | os.PathLike[str] | None,
    *,
    input_path: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
) -> DeriveWPResult:
    """Derive working points and write them to ``output`` (None: compute only).

    Existing outputs are refused before any work unless ``overwrite``. If the iteration
    does not converge, only ``working_points.log`` is written and :class:`TaucoffeaError`
    is raised, as the original wrote no thresholds then.
    """
    cfg = config if isinstance(config, DeriveWPConfig) else load_derive_wp_config(config)
    spec = cfg.inputs
    if input_path is not None:
        spec = (spec or InputSpec(str(input_path))).with_path(input_path)
    if spec is None or not spec.path:
        raise ConfigError(f"{cfg.source}: no input given (set inputs.path or pass --input)")
    out = Path(output) if output is not None else None
    if out is not None:
        for name in _OUTPUTS:
            check_output(out / name, overwrite)
    table, counts = wp_table(cfg, spec)
    wps = derive_working_points(
        table,
        cfg.wp_definitions,
        tpr_step=cfg.tpr_step,
        require_wp_vs_others=cfg.require_wp_vs_others,
        wps_to_require=cfg.wps_to_require or DEFAULT_WPS_TO_REQUIRE,
        epsilon=cfg.epsilon,
        n_iterations=cfg.n_iterations,
    )
    written: list[Path] = []
    if out is not None:
        log = {
            "discriminator": cfg.discriminator.name,
            "converged": wps.converged,
            "n_iterations": wps.n_iterations,
            "require_wp_vs_others": wps.require_wp_vs_others,
            "wps_to_require": wps.wps_to_require,
            "n_taus": counts,
            "selection": cfg.selection,
            "working_points": wps.log_dict(),
            "efficiencies": wps.efficiencies,
        }
        written.append(write_text_atomic(out / "working_points.log",
                                         json.dumps(log, indent=2) + "\n", overwrite=overwrite))
    if not wps.converged:
        raise TaucoffeaError(
            f"working points of '{cfg.discriminator.name}' did not converge after "
            f"{wps.n_iterations} iterations (epsilon {cfg.epsilon:g}); nothing but the log "
            "was written — raise n_iterations or epsilon")
    if out is not None:
        written.insert(0, save_working_points(wps.thresholds, out / "working_points.json",
                                              overwrite=overwrite))
        written.insert(1, save_wp_correctionlib(
            wps.thresholds, out / "working_points_correctionlib.json", overwrite=overwrite,
            description=f"working points of {cfg.discriminator.name}"))
    return DeriveWPResult(wps, counts, written)
