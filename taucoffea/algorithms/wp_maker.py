"""Working-point derivation: thresholds that give target genuine-τ efficiencies.

This is the original ``derive_wp.py::WPMaker`` as a pure function. For every vs type
(e, μ, jet) and WP, the threshold on ``score_vs_<type>`` is the weighted quantile at
``1 − ε`` of the genuine-τ scores, so that a weighted fraction ε of the taus has a score
above it. With ``require_wp_vs_others`` the taus entering the quantile for one type must
first pass the *required* WP (default VVVLoose vs e, VLoose vs μ, VVVLoose vs jet) of every
other type, using the thresholds of the previous iteration; the iteration stops when no
threshold moves by ``epsilon`` or more. Efficiencies are therefore defined *after* the cuts
against the other types — the meaning of a DeepTau WP.

Decisions on the original's quirks (Appendix A.21), see also ``docs/evaluation.md``:

* TPR grid. The original builds ``arange(0, 1 + step, step)`` and takes the first grid point
  ``≥ ε``; float error in ``arange`` decides whether ε = 0.9 lands on 0.9 or the next point.
  Here grid point ``i`` is ``i / n`` with ``n = 1 / step`` (an integer), and ε maps to the
  smallest ``i`` with ``i / n ≥ ε − 1e-9 / n``: a target on the grid is hit exactly.
* Quantile. SAS definition 5 as in the original (:mod:`taucoffea.algorithms.quantiles`), in
  float64 instead of float32.
* WP order. Output is loosest first, ordered by target efficiency (highest first), not by
  reversing the configuration order — the same for the standard configuration, but it does
  not depend on how the user wrote the YAML.
* Thresholds are kept unrounded; rounding to 4 decimals happens only when
  ``working_points.json`` is written.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from taucoffea.algorithms.quantiles import weighted_quantile
from taucoffea.errors import ConfigError, InputError

__all__ = [
    "DEFAULT_WPS_TO_REQUIRE",
    "DEFAULT_WP_DEFINITIONS",
    "WorkingPoints",
    "derive_working_points",
    "lumi_weights",
]

#: Standard target genuine-τ efficiencies (``derive_wp.yaml``), tightest first as there.
DEFAULT_WP_DEFINITIONS: dict[str, dict[str, float]] = {
    "e": {
        "VVTight": 0.60, "VTight": 0.70, "Tight": 0.80, "Medium": 0.90,
        "Loose": 0.95, "VLoose": 0.98, "VVLoose": 0.99, "VVVLoose": 0.995,
    },
    "mu": {"Tight": 0.995, "Medium": 0.998, "Loose": 0.999, "VLoose": 0.9995},
    "jet": {
        "VVTight": 0.40, "VTight": 0.50, "Tight": 0.60, "Medium": 0.70,
        "Loose": 0.80, "VLoose": 0.90, "VVLoose": 0.95, "VVVLoose": 0.98,
    },
}  # fmt: skip

#: WP of each type that taus must pass while the other types' thresholds are derived.
DEFAULT_WPS_TO_REQUIRE: dict[str, str] = {"e": "VVVLoose", "mu": "VLoose", "jet": "VVVLoose"}


@dataclass(frozen=True)
class WorkingPoints:
    """Result of :func:`derive_working_points`.

    ``thresholds[vs][wp]`` are the final thresholds (cut ``score > thr``), loosest WP first;
    ``efficiencies`` the weighted genuine-τ efficiencies they give on the input, with the
    other types' required WPs applied when ``require_wp_vs_others``; ``history`` every
    iteration's threshold (the original's ``working_points.log``).
    """

    thresholds: dict[str, dict[str, float]]
    targets: dict[str, dict[str, float]]
    efficiencies: dict[str, dict[str, float]]
    history: dict[str, dict[str, list[float]]]
    converged: bool
    n_iterations: int
    require_wp_vs_others: bool
    wps_to_require: dict[str, str]

    def rounded(self, decimals: int = 4) -> dict[str, dict[str, float]]:
        """Thresholds rounded as in the original ``working_points.json``."""
        return {
            vs: {wp: round(thr, decimals) for wp, thr in wps.items()}
            for vs, wps in self.thresholds.items()
        }

    def log_dict(self) -> dict[str, Any]:
        """``{vs: {wp: {"eff": target, "thrs": [...]}}}``, the layout of the original log."""
        return {
            vs: {wp: {"eff": self.targets[vs][wp], "thrs": list(self.history[vs][wp])}
                 for wp in wps}
            for vs, wps in self.thresholds.items()
        }  # fmt: skip


def _validate_definitions(
    wp_definitions: Mapping[str, Mapping[str, float]],
) -> dict[str, dict[str, float]]:
    if not isinstance(wp_definitions, Mapping) or not wp_definitions:
        raise ConfigError("wp_definitions: expected a non-empty mapping {vs_type: {WP: eff}}")
    out: dict[str, dict[str, float]] = {}
    for vs, wps in wp_definitions.items():
        if not isinstance(wps, Mapping) or not wps:
            raise ConfigError(f"wp_definitions.{vs}: expected a non-empty mapping {{WP: eff}}")
        cleaned: dict[str, float] = {}
        for name, eff in wps.items():
            try:
                eff_f = float(eff)
            except (TypeError, ValueError):
                raise ConfigError(
                    f"wp_definitions.{vs}.{name}: efficiency {eff!r} is not a number"
                ) from None
            if not 0.0 < eff_f <= 1.0:
                raise ConfigError(
                    f"wp_definitions.{vs}.{name}: efficiency {eff_f} must be in (0, 1]"
                )
            cleaned[str(name)] = eff_f
        # Loosest first: highest target efficiency first (stable for equal targets).
        out[str(vs)] = dict(sorted(cleaned.items(), key=lambda kv: -kv[1]))
    return out


def _grid_size(tpr_step: float) -> int:
    if not 0.0 < tpr_step <= 0.5:
        raise ConfigError(f"tpr_step={tpr_step!r} must lie in (0, 0.5]")
    n = round(1.0 / tpr_step)
    if abs(n * tpr_step - 1.0) > 1e-9:
        raise ConfigError(f"tpr_step={tpr_step!r}: 1/tpr_step must be an integer")
    return n


def _grid_tpr(eff: float, n: int) -> tuple[float, float]:
    """Grid efficiency ``i/n`` used for target ``eff`` and its quantile probability."""
    i = math.ceil(eff * n - 1e-9)
    i = min(max(i, 0), n)
    return i / n, (n - i) / n


def _column(table: Any, name: str) -> np.ndarray:
    try:
        col = table[name]
    except (KeyError, ValueError, IndexError):
        raise InputError(f"derive_working_points: input table has no column '{name}'") from None
    arr = np.asarray(col, dtype=np.float64)
    if arr.ndim != 1:
        raise InputError(f"derive_working_points: column '{name}' is not one-dimensional")
    return arr


def derive_working_points(
    table: Any,
    wp_definitions: Mapping[str, Mapping[str, float]] | None = None,
    *,
    tpr_step: float = 1e-4,
    require_wp_vs_others: bool = True,
    wps_to_require: Mapping[str, str] | None = None,
    epsilon: float = 1e-5,
    n_iterations: int = 100,
    score_prefix: str = "score_vs_",
    weight_column: str | None = "weight",
) -> WorkingPoints:
    """Iteratively derive WP thresholds on genuine taus (see the module docstring).

    ``table``: anything indexable by column name (pandas DataFrame, dict of arrays,
    awkward record array) holding ``<score_prefix><vs_type>`` for every vs type in
    ``wp_definitions`` and, unless ``weight_column`` is None or absent, per-tau weights.
    Defaults follow ``derive_wp.yaml``: the standard targets, ``epsilon = 1e-5`` (the class
    default was 1e-7), 100 iterations, step 1e-4. The result says whether it converged; the
    original wrote nothing when it did not, callers should do the same.
    """
    defs = _validate_definitions(DEFAULT_WP_DEFINITIONS if wp_definitions is None
                                 else wp_definitions)  # fmt: skip
    vs_types = list(defs)
    n_grid = _grid_size(float(tpr_step))
    if not epsilon > 0:
        raise ConfigError(f"epsilon={epsilon!r} must be positive")
    if int(n_iterations) != n_iterations or n_iterations < 1:
        raise ConfigError(f"n_iterations={n_iterations!r} must be a positive integer")

    required: dict[str, str] = {}
    if require_wp_vs_others and len(vs_types) > 1:
        src = DEFAULT_WPS_TO_REQUIRE if wps_to_require is None else wps_to_require
        for vs in vs_types:
            if vs not in src:
                raise ConfigError(
                    f"wps_to_require: no WP given for vs type '{vs}' "
                    f"(needed with require_wp_vs_others; have {sorted(src)})"
                )
            if src[vs] not in defs[vs]:
                raise ConfigError(
                    f"wps_to_require.{vs}: WP '{src[vs]}' is not defined; "
                    f"allowed: {list(defs[vs])}"
                )
            required[vs] = str(src[vs])

    scores = {vs: _column(table, f"{score_prefix}{vs}") for vs in vs_types}
    n_taus = scores[vs_types[0]].size
    for vs, s in scores.items():
        if s.size != n_taus:
            raise InputError(f"derive_working_points: column '{score_prefix}{vs}' has "
                             f"{s.size} rows, expected {n_taus}")  # fmt: skip
    weight = np.ones(n_taus)
    if weight_column is not None:
        names = getattr(getattr(table, "dtype", None), "names", None)
        if hasattr(table, "fields"):  # awkward record arrays: `in` tests elements
            has_weight = weight_column in table.fields
        elif names is not None:  # numpy structured arrays
            has_weight = weight_column in names
        else:
            try:
                has_weight = weight_column in table
            except TypeError:
                has_weight = False
        if has_weight:
            weight = _column(table, weight_column)
            if weight.size != n_taus:
                raise InputError(f"derive_working_points: column '{weight_column}' has "
                                 f"{weight.size} rows, expected {n_taus}")  # fmt: skip

    grid = {vs: {wp: _grid_tpr(eff, n_grid) for wp, eff in wps.items()}
            for vs, wps in defs.items()}  # fmt: skip
    history: dict[str, dict[str, list[float]]] = {vs: {wp: [] for wp in wps}
                                                  for vs, wps in defs.items()}  # fmt: skip

    def others_mask(vs: str, use_history: bool) -> np.ndarray:
        mask = np.ones(n_taus, dtype=bool)
        for other, wp in required.items():
            if other == vs:
                continue
            thrs = history[other][wp]
            if use_history and thrs:
                mask &= scores[other] > thrs[-1]
        return mask

    converged = False
    it = 0
    for it in range(1, int(n_iterations) + 1):
        # Jacobi update: every type uses the previous iteration's thresholds.
        new: dict[str, np.ndarray] = {}
        for vs in vs_types:
            mask = others_mask(vs, use_history=True)
            if not np.any(mask) or weight[mask].sum() <= 0:
                raise InputError(
                    f"derive_working_points: no genuine taus (with positive weight) left "
                    f"for vs '{vs}' after the other types' required WPs (iteration {it})"
                )
            probs = np.array([grid[vs][wp][1] for wp in defs[vs]])
            new[vs] = weighted_quantile(scores[vs][mask], probs, weight[mask])
        for vs in vs_types:
            for wp, thr in zip(defs[vs], new[vs], strict=True):
                history[vs][wp].append(float(thr))
        if it >= 2 and all(
            abs(thrs[-1] - thrs[-2]) < epsilon for wps in history.values() for thrs in wps.values()
        ):
            converged = True
            break

    thresholds = {vs: {wp: history[vs][wp][-1] for wp in defs[vs]} for vs in vs_types}
    efficiencies: dict[str, dict[str, float]] = {}
    for vs in vs_types:
        mask = others_mask(vs, use_history=True)
        w, s = weight[mask], scores[vs][mask]
        total = w.sum()
        efficiencies[vs] = {
            wp: float(w[s > thr].sum() / total) if total > 0 else 0.0
            for wp, thr in thresholds[vs].items()
        }
    return WorkingPoints(
        thresholds=thresholds,
        targets=defs,
        efficiencies=efficiencies,
        history=history,
        converged=converged,
        n_iterations=it,
        require_wp_vs_others=bool(require_wp_vs_others),
        wps_to_require=required,
    )


def lumi_weights(
    sample_labels: Sequence[Any] | ArrayLike,
    cross_sections: Mapping[Any, float],
    n_generated: Mapping[Any, float] | None = None,
    lumi: float | Mapping[Any, float] = 1.0,
) -> np.ndarray:
    """Per-row weight ``σ_s · L_s / N_s`` for the sample ``s`` each row belongs to.

    ``lumi`` is one luminosity or one per sample (per-era samples of one process);
    ``n_generated=None`` uses the number of rows of each sample in ``sample_labels``.
    The original ``derive_wp`` weight ``L_s / (L_ref · N_selected,s)`` is this with equal
    cross sections, per-sample ``lumi``, ``n_generated=None``, divided by ``L_ref`` — a
    global factor that no quantile (hence no threshold) depends on.
    """
    labels = np.asarray(sample_labels)
    if labels.ndim != 1:
        raise InputError("lumi_weights: sample_labels must be one-dimensional")
    uniq, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    per_sample = np.empty(uniq.size)
    for i, label in enumerate(uniq.tolist()):
        if label not in cross_sections:
            raise ConfigError(f"lumi_weights: no cross section for sample '{label}'")
        xs = float(cross_sections[label])
        if isinstance(lumi, Mapping):
            if label not in lumi:
                raise ConfigError(f"lumi_weights: no luminosity for sample '{label}'")
            lum = float(lumi[label])
        else:
            lum = float(lumi)
        if n_generated is None:
            n = float(counts[i])
        else:
            if label not in n_generated:
                raise ConfigError(f"lumi_weights: no generated-event count for sample '{label}'")
            n = float(n_generated[label])
        if not n > 0:
            raise ConfigError(f"lumi_weights: event count for sample '{label}' must be > 0")
        if xs < 0 or lum < 0:
            raise ConfigError(
                f"lumi_weights: negative cross section or luminosity for sample '{label}'"
            )
        per_sample[i] = xs * lum / n
    return per_sample[inverse.ravel()]
