"""DeepTau input features (reference §6.4) and the application of the scaling JSON (§5.2–5.3).

Feature names and their order follow TauMLTools' ``training_v1`` configuration (so a scaling
JSON from ``taucoffea scaling compute`` or from TauMLTools applies by name): 44 ``TauFlat``
features, 6 ``GridGlobal`` ones and the per-object features of the seven cell object types.

Conventions (decisions on the reference's quirks, see docs/training.md):

* *Unfilled* features — a validity condition is false, a ratio has a zero denominator, an input
  is not finite, or a cell has no object — are **0 after scaling** (the C++ loader leaves them
  at raw 0 in a zero-initialised buffer, A.11). Internally they are NaN until scaling, then 0;
  a non-finite input is therefore treated as unfilled instead of aborting the batch.
* ``tau_n_charged_prongs`` = DM//5 + 1, as in the scaling alias: the C++ loader's DM/5 (A.10)
  would clamp 1- and 2-prong taus to the same scaled value under the linear [1, 3] scaling.
* ``*_dphi`` is wrapped into (−π, π] (as the loader; the scaling alias is not wrapped).
* Electron ``mvaInput_*`` are always filled (the loader's non-Phase-2 behaviour).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from taucoffea.errors import ConfigError, InputError
from taucoffea.ml.blocks import ColumnBlock

__all__ = [
    "CELL_TYPES",
    "DEFAULT_DISABLED",
    "FEATURE_NAMES",
    "GRID_GROUPS",
    "OBJECT_SOURCES",
    "PF_PARTICLE_TYPES",
    "FeatureSpec",
    "ObjectTable",
    "Scaling",
    "estimate_scaling",
    "object_tables",
    "required_columns",
    "signal_cone_radius",
    "tau_features",
    "wrap_dphi",
]

_NAN = np.nan
_F32_TINY = float(np.finfo(np.float32).tiny)


# ============================================================================ names
def _names(prefix: str, suffixes: Sequence[str]) -> tuple[str, ...]:
    return tuple(f"{prefix}_{s}" for s in suffixes)


_TAU_FLAT = (
    "rho", "tau_pt", "tau_eta", "tau_phi", "tau_mass", "tau_E_over_pt", "tau_charge",
    "tau_n_charged_prongs", "tau_n_neutral_prongs", "tau_chargedIsoPtSum",
    "tau_chargedIsoPtSumdR03_over_dR05", "tau_footprintCorrection", "tau_neutralIsoPtSum",
    "tau_neutralIsoPtSumWeight_over_neutralIsoPtSum", "tau_neutralIsoPtSumWeightdR03_over_neutralIsoPtSum",
    "tau_neutralIsoPtSumdR03_over_dR05", "tau_photonPtSumOutsideSignalCone", "tau_puCorrPtSum",
    "tau_dxy_valid", "tau_dxy", "tau_dxy_sig", "tau_ip3d_valid", "tau_ip3d", "tau_ip3d_sig", "tau_dz",
    "tau_dz_sig_valid", "tau_dz_sig", "tau_flightLength_x", "tau_flightLength_y", "tau_flightLength_z",
    "tau_flightLength_sig", "tau_pt_weighted_deta_strip", "tau_pt_weighted_dphi_strip",
    "tau_pt_weighted_dr_signal", "tau_pt_weighted_dr_iso", "tau_leadingTrackNormChi2", "tau_e_ratio_valid",
    "tau_e_ratio", "tau_gj_angle_diff_valid", "tau_gj_angle_diff", "tau_n_photons", "tau_emFraction",
    "tau_inside_ecal_crack", "tau_leadChargedCand_etaAtEcalEntrance_minus_tau_eta",
)
_GRID_GLOBAL = ("rho", "tau_pt", "tau_eta", "tau_inside_ecal_crack", "pv_t", "pv_t_sig")
_VERTEX = ("vertex_dx", "vertex_dy", "vertex_dz", "vertex_dx_tauFL", "vertex_dy_tauFL", "vertex_dz_tauFL")
_TIME = ("hasTimeDetails", "time", "time_sig", "vertex_dt")
_TRACK = ("hasTrackDetails", "dxy", "dxy_sig", "dz", "dz_sig", "track_chi2_ndof", "track_ndof")
_PF_SUFFIXES: dict[str, tuple[str, ...]] = {
    "PfCand_electron": ("valid", "rel_pt", "deta", "dphi", "pvAssociationQuality", "puppiWeight", "charge",
                        "lostInnerHits", "nPixelHits", *_VERTEX, *_TIME, *_TRACK),
    "PfCand_muon": ("valid", "rel_pt", "deta", "dphi", "pvAssociationQuality", "fromPV", "puppiWeight", "charge",
                    "lostInnerHits", "nPixelHits", *_VERTEX, *_TIME, *_TRACK),
    "PfCand_chHad": ("valid", "rel_pt", "deta", "dphi", "tauLeadChargedHadrCand", "pvAssociationQuality", "fromPV",
                     "puppiWeight", "puppiWeightNoLep", "charge", "lostInnerHits", "nPixelHits", *_VERTEX, *_TIME,
                     *_TRACK, "hcalFraction", "rawCaloFraction"),
    "PfCand_nHad": ("valid", "rel_pt", "deta", "dphi", "puppiWeight", "puppiWeightNoLep", "hcalFraction"),
    "PfCand_gamma": ("valid", "rel_pt", "deta", "dphi", "pvAssociationQuality", "fromPV", "puppiWeight",
                     "puppiWeightNoLep", "lostInnerHits", "nPixelHits", *_VERTEX, *_TIME, *_TRACK),
}
_PF_PREFIX = {"PfCand_electron": "pfCand_ele", "PfCand_muon": "pfCand_muon", "PfCand_chHad": "pfCand_chHad",
              "PfCand_nHad": "pfCand_nHad", "PfCand_gamma": "pfCand_gamma"}
_ELE_SUFFIXES = (
    "valid", "rel_pt", "deta", "dphi", "cc_valid", "cc_ele_rel_energy", "cc_gamma_rel_energy", "cc_n_gamma",
    "rel_trackMomentumAtVtx", "rel_trackMomentumAtCalo", "rel_trackMomentumOut", "rel_trackMomentumAtEleClus",
    "rel_trackMomentumAtVtxWithConstraint", "rel_ecalEnergy", "ecalEnergy_sig", "eSuperClusterOverP",
    "eSeedClusterOverP", "eSeedClusterOverPout", "eEleClusterOverPout", "deltaEtaSuperClusterTrackAtVtx",
    "deltaEtaSeedClusterTrackAtCalo", "deltaEtaEleClusterTrackAtCalo", "deltaPhiEleClusterTrackAtCalo",
    "deltaPhiSuperClusterTrackAtVtx", "deltaPhiSeedClusterTrackAtCalo", "mvaInput_earlyBrem",
    "mvaInput_lateBrem", "mvaInput_sigmaEtaEta", "mvaInput_hadEnergy", "mvaInput_deltaEta",
    "gsfTrack_normalizedChi2", "gsfTrack_numberOfValidHits", "rel_gsfTrack_pt", "gsfTrack_pt_sig",
    "has_closestCtfTrack", "closestCtfTrack_normalizedChi2", "closestCtfTrack_numberOfValidHits",
)
_MUON_STATIONS = tuple(f"n_{w}_{d}_{s}" for w in ("matches", "hits") for d in ("DT", "CSC", "RPC") for s in range(1, 5))
_MUON_SUFFIXES = (
    "valid", "rel_pt", "deta", "dphi", "dxy", "dxy_sig", "normalizedChi2_valid", "normalizedChi2",
    "numberOfValidHits", "segmentCompatibility", "caloCompatibility", "pfEcalEnergy_valid",
    "rel_pfEcalEnergy", *_MUON_STATIONS,
)

#: Object types stored in the cells, in the reference's ``CellObjectType`` order.
CELL_TYPES: tuple[str, ...] = ("PfCand_electron", "PfCand_muon", "PfCand_chHad", "PfCand_nHad",
                               "PfCand_gamma", "Electron", "Muon")

#: All feature names per var_type (``TauFlat``, ``GridGlobal`` and the cell types).
FEATURE_NAMES: dict[str, tuple[str, ...]] = {
    "TauFlat": _TAU_FLAT,
    "GridGlobal": _GRID_GLOBAL,
    **{t: _names(_PF_PREFIX[t], s) for t, s in _PF_SUFFIXES.items()},
    "Electron": _names("ele", _ELE_SUFFIXES),
    "Muon": _names("muon", _MUON_SUFFIXES),
}

#: Features disabled in ``training_v1`` (tau φ, PV timing, PF-candidate timing).
DEFAULT_DISABLED: dict[str, tuple[str, ...]] = {
    "TauFlat": ("tau_phi",),
    "GridGlobal": ("pv_t", "pv_t_sig"),
    **{t: _names(_PF_PREFIX[t], _TIME) for t in _PF_SUFFIXES if t != "PfCand_nHad"},
}

#: Cell-grid component groups (reference ``input_grids``): 86 / 64 / 38 features each.
GRID_GROUPS: dict[str, tuple[str, ...]] = {
    "egamma": ("GridGlobal", "PfCand_electron", "PfCand_gamma", "Electron"),
    "muon": ("GridGlobal", "PfCand_muon", "Muon"),
    "hadrons": ("GridGlobal", "PfCand_chHad", "PfCand_nHad"),
}

#: PF ``particleType`` → cell type; 0 (undefined), 6, 7 (HF) are ignored, others are an error.
PF_PARTICLE_TYPES: dict[int, str] = {1: "PfCand_chHad", 2: "PfCand_electron", 3: "PfCand_muon",
                                     4: "PfCand_gamma", 5: "PfCand_nHad"}
_PF_IGNORED = (0, 6, 7)

#: Which collection each cell type's objects come from.
OBJECT_SOURCES: dict[str, str] = {**{t: "pfCand" for t in _PF_SUFFIXES}, "Electron": "ele", "Muon": "muon"}

ISO_CONE = 0.5


# ============================================================================ spec
@dataclass(frozen=True)
class FeatureSpec:
    """Which features are enabled, per var_type, in reference order."""

    disabled: Mapping[str, Sequence[str]] = field(default_factory=lambda: dict(DEFAULT_DISABLED))

    def __post_init__(self) -> None:
        for var_type, names in self.disabled.items():
            if var_type not in FEATURE_NAMES:
                raise ConfigError(f"features.disabled: unknown var_type '{var_type}'; allowed: {sorted(FEATURE_NAMES)}")
            unknown = sorted(set(names) - set(FEATURE_NAMES[var_type]))
            if unknown:
                raise ConfigError(
                    f"features.disabled.{var_type}: unknown feature(s) {unknown}; "
                    f"allowed: {list(FEATURE_NAMES[var_type])}"
                )

    def enabled(self, var_type: str) -> tuple[str, ...]:
        off = set(self.disabled.get(var_type, ()))
        return tuple(n for n in FEATURE_NAMES[var_type] if n not in off)

    def n_features(self, var_type: str) -> int:
        return len(self.enabled(var_type))

    def group_width(self, group: str, *, with_global: bool = True) -> int:
        types = GRID_GROUPS[group] if with_global else GRID_GROUPS[group][1:]
        return sum(self.n_features(t) for t in types)

    def to_dict(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self.disabled.items()}


# ============================================================================ helpers
def wrap_dphi(x: np.ndarray) -> np.ndarray:
    """Δφ wrapped into (−π, π] (the loader's convention; −π maps to +π)."""
    return np.pi - np.mod(np.pi - x, 2.0 * np.pi)


def signal_cone_radius(tau_pt: np.ndarray) -> np.ndarray:
    """Signal-cone radius max(3/max(pT, 30), 0.05)."""
    return np.maximum(3.0 / np.maximum(np.asarray(tau_pt, dtype=np.float64), 30.0), 0.05)


def _isnormal(x: np.ndarray) -> np.ndarray:
    return np.isfinite(x) & (np.abs(x) >= _F32_TINY)


def _f(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _ratio(num: np.ndarray, den: np.ndarray, ok: np.ndarray | None = None) -> np.ndarray:
    """num/den where den ≠ 0 (and ``ok``), else unfilled."""
    good = den != 0 if ok is None else (den != 0) & ok
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(good, num / np.where(good, den, 1.0), _NAN)


def _where(cond: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.where(cond, x, _NAN)


# ============================================================================ tau features
class _TauCols:
    def __init__(self, block: ColumnBlock) -> None:
        self.block = block

    def __call__(self, name: str) -> np.ndarray:
        return _f(self.block.column(name))


def _tau_definitions() -> dict[str, Callable[[_TauCols], np.ndarray]]:
    def direct(name: str) -> Callable[[_TauCols], np.ndarray]:
        return lambda c: c(name)

    def e_over_pt(c: _TauCols) -> np.ndarray:
        pt, eta, m = c("tau_pt"), c("tau_eta"), c("tau_mass")
        with np.errstate(over="ignore", invalid="ignore"):
            p = pt * np.cosh(eta)
            return _ratio(np.sqrt(p * p + m * m), pt)

    def dxy_valid(c: _TauCols) -> np.ndarray:
        d, e = c("tau_dxy"), c("tau_dxy_error")
        return (_isnormal(d) & (d > -10) & _isnormal(e) & (e > 0)).astype(np.float64)

    def ip3d_valid(c: _TauCols) -> np.ndarray:
        d, e = c("tau_ip3d"), c("tau_ip3d_error")
        return (_isnormal(d) & (d > -10) & _isnormal(e) & (e > 0)).astype(np.float64)

    def dz_sig_valid(c: _TauCols) -> np.ndarray:
        d, e = c("tau_dz"), c("tau_dz_error")
        return (_isnormal(d) & _isnormal(e) & (e > 0)).astype(np.float64)

    def e_ratio_valid(c: _TauCols) -> np.ndarray:
        x = c("tau_e_ratio")
        return (_isnormal(x) & (x > 0)).astype(np.float64)

    def gj_valid(c: _TauCols) -> np.ndarray:
        x = c("tau_gj_angle_diff")
        return ((_isnormal(x) | (x == 0)) & (x >= 0)).astype(np.float64)

    defs: dict[str, Callable[[_TauCols], np.ndarray]] = {n: direct(n) for n in _TAU_FLAT}
    defs.update({
        "tau_E_over_pt": e_over_pt,
        "tau_n_charged_prongs": lambda c: np.floor_divide(c("tau_decayMode"), 5) + 1,
        "tau_n_neutral_prongs": lambda c: np.mod(c("tau_decayMode"), 5),
        "tau_chargedIsoPtSumdR03_over_dR05": lambda c: _ratio(c("tau_chargedIsoPtSumdR03"), c("tau_chargedIsoPtSum")),
        "tau_neutralIsoPtSumWeight_over_neutralIsoPtSum":
            lambda c: _ratio(c("tau_neutralIsoPtSumWeight"), c("tau_neutralIsoPtSum")),
        "tau_neutralIsoPtSumWeightdR03_over_neutralIsoPtSum":
            lambda c: _ratio(c("tau_neutralIsoPtSumWeightdR03"), c("tau_neutralIsoPtSum")),
        "tau_neutralIsoPtSumdR03_over_dR05": lambda c: _ratio(c("tau_neutralIsoPtSumdR03"), c("tau_neutralIsoPtSum")),
        "tau_dxy_valid": dxy_valid,
        "tau_dxy": lambda c: _where(dxy_valid(c) > 0, c("tau_dxy")),
        "tau_dxy_sig": lambda c: _ratio(np.abs(c("tau_dxy")), c("tau_dxy_error"), dxy_valid(c) > 0),
        "tau_ip3d_valid": ip3d_valid,
        "tau_ip3d": lambda c: _where(ip3d_valid(c) > 0, c("tau_ip3d")),
        "tau_ip3d_sig": lambda c: _ratio(np.abs(c("tau_ip3d")), c("tau_ip3d_error"), ip3d_valid(c) > 0),
        "tau_dz_sig_valid": dz_sig_valid,
        "tau_dz_sig": lambda c: _ratio(np.abs(c("tau_dz")), c("tau_dz_error"), dz_sig_valid(c) > 0),
        "tau_e_ratio_valid": e_ratio_valid,
        "tau_e_ratio": lambda c: _where(e_ratio_valid(c) > 0, c("tau_e_ratio")),
        "tau_gj_angle_diff_valid": gj_valid,
        "tau_gj_angle_diff": lambda c: _where(gj_valid(c) > 0, c("tau_gj_angle_diff")),
        "tau_leadChargedCand_etaAtEcalEntrance_minus_tau_eta":
            lambda c: c("tau_leadChargedCand_etaAtEcalEntrance") - c("tau_eta"),
    })
    return defs


def _global_definitions() -> dict[str, Callable[[_TauCols], np.ndarray]]:
    return {
        "rho": lambda c: c("rho"),
        "tau_pt": lambda c: c("tau_pt"),
        "tau_eta": lambda c: c("tau_eta"),
        "tau_inside_ecal_crack": lambda c: c("tau_inside_ecal_crack"),
        "pv_t": lambda c: c("pv_t"),
        "pv_t_sig": lambda c: _ratio(np.abs(c("pv_t")), c("pv_tE")),
    }


_TAU_DEFS = _tau_definitions()
_GLOBAL_DEFS = _global_definitions()


def tau_features(block: ColumnBlock, spec: FeatureSpec, var_type: str = "TauFlat") -> np.ndarray:
    """Raw (unscaled) ``(n, n_enabled)`` tau-level features; NaN marks unfilled values."""
    defs = _TAU_DEFS if var_type == "TauFlat" else _GLOBAL_DEFS
    cols = _TauCols(block)
    names = spec.enabled(var_type)
    out = np.empty((block.n, len(names)), dtype=np.float64)
    for j, name in enumerate(names):
        out[:, j] = defs[name](cols)
    return out


# ============================================================================ object features
class _ObjCols:
    """Per-object view of one cell type: candidate fields and the owning tau's columns."""

    def __init__(self, block: ColumnBlock, source: str, index: np.ndarray, tau: np.ndarray,
                 deta: np.ndarray, dphi: np.ndarray) -> None:
        self.block, self.source, self.index, self.tau = block, source, index, tau
        self.deta, self.dphi = deta, dphi
        self._cache: dict[str, np.ndarray] = {}

    def __call__(self, name: str) -> np.ndarray:
        if name not in self._cache:
            self._cache[name] = _f(self.block.field(self.source, name)[self.index])
        return self._cache[name]

    def t(self, name: str) -> np.ndarray:
        key = "tau:" + name
        if key not in self._cache:
            self._cache[key] = _f(self.block.column(name))[self.tau]
        return self._cache[key]


def _pf_definitions(cell_type: str) -> dict[str, Callable[[_ObjCols], np.ndarray]]:
    def direct(name: str) -> Callable[[_ObjCols], np.ndarray]:
        return lambda o: o(name)

    def trk(o: _ObjCols) -> np.ndarray:
        return o("hasTrackDetails") == 1

    def ndof_ok(o: _ObjCols) -> np.ndarray:
        return trk(o) & (o("track_ndof") > 0)

    def has_time(o: _ObjCols) -> np.ndarray:
        return o("timeError") >= 0

    def vertex(axis: str, fl: bool) -> Callable[[_ObjCols], np.ndarray]:
        def f(o: _ObjCols) -> np.ndarray:
            d = o(f"vertex_{axis}") - o.t(f"pv_{axis}")
            flight = o.t(f"tau_flightLength_{axis}") if fl else 0.0
            if cell_type == "PfCand_gamma":  # non-finite vertex: only the *_tauFL features, as −FL
                finite = np.isfinite(o("vertex_z") - o.t("pv_z"))
                return np.where(finite, d - flight, -flight if fl else _NAN)
            return d - flight
        return f

    defs: dict[str, Callable[[_ObjCols], np.ndarray]] = {
        "valid": lambda o: np.ones(o.index.size),
        "rel_pt": lambda o: o("pt") / o.t("tau_pt"),
        "deta": lambda o: o.deta,
        "dphi": lambda o: o.dphi,
        "hasTrackDetails": lambda o: trk(o).astype(np.float64),
        "dxy": lambda o: _where(trk(o), o("dxy")),
        "dxy_sig": lambda o: _ratio(np.abs(o("dxy")), o("dxy_error"), trk(o)),
        "dz": lambda o: _where(trk(o), o("dz")),
        "dz_sig": lambda o: _ratio(np.abs(o("dz")), o("dz_error"), trk(o)),
        "track_chi2_ndof": lambda o: _ratio(o("track_chi2"), o("track_ndof"), ndof_ok(o)),
        "track_ndof": lambda o: _where(ndof_ok(o), o("track_ndof")),
        "hasTimeDetails": lambda o: has_time(o).astype(np.float64),
        "time": lambda o: _where(has_time(o), o("time")),
        "vertex_dt": lambda o: _where(has_time(o), o("time") - o.t("pv_t")),
        "time_sig": lambda o: _ratio(np.abs(o("time") - o.t("pv_t")), o("timeError"), has_time(o)),
    }
    for axis in ("x", "y", "z"):
        defs[f"vertex_d{axis}"] = vertex(axis, False)
        defs[f"vertex_d{axis}_tauFL"] = vertex(axis, True)
    prefix = _PF_PREFIX[cell_type]
    out = {}
    for suffix in _PF_SUFFIXES[cell_type]:
        out[f"{prefix}_{suffix}"] = defs.get(suffix, direct(suffix))
    return out


def _ele_definitions() -> dict[str, Callable[[_ObjCols], np.ndarray]]:
    def direct(name: str) -> Callable[[_ObjCols], np.ndarray]:
        return lambda o: o(name)

    def rel(name: str) -> Callable[[_ObjCols], np.ndarray]:
        return lambda o: o(name) / o("pt")

    def cc(o: _ObjCols) -> np.ndarray:
        return o("cc_ele_energy") >= 0

    def ctf(o: _ObjCols) -> np.ndarray:
        return o("closestCtfTrack_normalizedChi2") >= 0

    defs: dict[str, Callable[[_ObjCols], np.ndarray]] = {
        "valid": lambda o: np.ones(o.index.size),
        "rel_pt": lambda o: o("pt") / o.t("tau_pt"),
        "deta": lambda o: o.deta,
        "dphi": lambda o: o.dphi,
        "cc_valid": lambda o: cc(o).astype(np.float64),
        "cc_ele_rel_energy": lambda o: _where(cc(o), o("cc_ele_energy") / o("pt")),
        "cc_gamma_rel_energy": lambda o: _ratio(o("cc_gamma_energy"), o("cc_ele_energy"), cc(o)),
        "cc_n_gamma": lambda o: _where(cc(o), o("cc_n_gamma")),
        "rel_ecalEnergy": rel("ecalEnergy"),
        "ecalEnergy_sig": lambda o: _ratio(o("ecalEnergy"), o("ecalEnergy_error")),
        "rel_gsfTrack_pt": rel("gsfTrack_pt"),
        "gsfTrack_pt_sig": lambda o: _ratio(o("gsfTrack_pt"), o("gsfTrack_pt_error")),
        "has_closestCtfTrack": lambda o: ctf(o).astype(np.float64),
        "closestCtfTrack_normalizedChi2": lambda o: _where(ctf(o), o("closestCtfTrack_normalizedChi2")),
        "closestCtfTrack_numberOfValidHits": lambda o: _where(ctf(o), o("closestCtfTrack_numberOfValidHits")),
    }
    for name in ("trackMomentumAtVtx", "trackMomentumAtCalo", "trackMomentumOut", "trackMomentumAtEleClus",
                 "trackMomentumAtVtxWithConstraint"):
        defs[f"rel_{name}"] = rel(name)
    return {f"ele_{s}": defs.get(s, direct(s)) for s in _ELE_SUFFIXES}


def _muon_definitions() -> dict[str, Callable[[_ObjCols], np.ndarray]]:
    def direct(name: str) -> Callable[[_ObjCols], np.ndarray]:
        return lambda o: o(name)

    def chi2_ok(o: _ObjCols) -> np.ndarray:
        return o("normalizedChi2") >= 0

    def ecal_ok(o: _ObjCols) -> np.ndarray:
        return o("pfEcalEnergy") >= 0

    defs: dict[str, Callable[[_ObjCols], np.ndarray]] = {
        "valid": lambda o: np.ones(o.index.size),
        "rel_pt": lambda o: o("pt") / o.t("tau_pt"),
        "deta": lambda o: o.deta,
        "dphi": lambda o: o.dphi,
        "dxy_sig": lambda o: _ratio(np.abs(o("dxy")), o("dxy_error"), _isnormal(o("dxy")) & _isnormal(o("dxy_error"))),
        "normalizedChi2_valid": lambda o: chi2_ok(o).astype(np.float64),
        "normalizedChi2": lambda o: _where(chi2_ok(o) & np.isfinite(o("normalizedChi2")), o("normalizedChi2")),
        "numberOfValidHits": lambda o: _where(chi2_ok(o), o("numberOfValidHits")),
        "pfEcalEnergy_valid": lambda o: ecal_ok(o).astype(np.float64),
        "rel_pfEcalEnergy": lambda o: _where(ecal_ok(o), o("pfEcalEnergy") / o("pt")),
    }
    return {f"muon_{s}": defs.get(s, direct(s)) for s in _MUON_SUFFIXES}


_OBJECT_DEFS: dict[str, dict[str, Callable[[_ObjCols], np.ndarray]]] = {
    **{t: _pf_definitions(t) for t in _PF_SUFFIXES},
    "Electron": _ele_definitions(),
    "Muon": _muon_definitions(),
}


@dataclass
class ObjectTable:
    """The objects of one cell type inside the isolation cone of their tau.

    ``raw`` holds the enabled features (unscaled, NaN = unfilled); ``inner`` says whether the
    object lies inside the signal cone (ΔR < r_sig, strict as in the loader).
    """

    cell_type: str
    tau: np.ndarray
    pt: np.ndarray
    deta: np.ndarray
    dphi: np.ndarray
    inner: np.ndarray
    raw: np.ndarray

    @property
    def size(self) -> int:
        return int(self.tau.size)


def object_tables(block: ColumnBlock, spec: FeatureSpec, types: Sequence[str] = CELL_TYPES) -> dict[str, ObjectTable]:
    """Per cell type, the objects with ΔR < 0.5 to their tau and their raw features."""
    tau_eta = _f(block.column("tau_eta"))
    tau_phi = _f(block.column("tau_phi"))
    r_sig = signal_cone_radius(block.column("tau_pt"))
    out: dict[str, ObjectTable] = {}
    geometry: dict[str, tuple[np.ndarray, ...]] = {}
    for cell_type in types:
        source = OBJECT_SOURCES[cell_type]
        if source not in geometry:
            counts = block.counts(source)
            tau = np.repeat(np.arange(block.n, dtype=np.int64), counts)
            if tau.size:
                deta = _f(block.field(source, "eta")) - tau_eta[tau]
                dphi = wrap_dphi(_f(block.field(source, "phi")) - tau_phi[tau])
            else:
                deta = dphi = np.zeros(0)
            dr = np.hypot(deta, dphi)
            geometry[source] = (tau, deta, dphi, dr, dr < ISO_CONE)
            if source == "pfCand" and tau.size:
                ptype = np.asarray(block.field("pfCand", "particleType"))
                bad = ~np.isin(ptype, [*PF_PARTICLE_TYPES, *_PF_IGNORED])
                if bad.any():
                    raise InputError(
                        f"pfCand_particleType has unexpected value(s) {sorted(set(ptype[bad].tolist()))[:5]} "
                        f"in {block.source} (allowed 0..7)"
                    )
        tau, deta, dphi, dr, in_cone = geometry[source]
        select = in_cone
        if source == "pfCand" and tau.size:
            code = {v: k for k, v in PF_PARTICLE_TYPES.items()}[cell_type]
            select = in_cone & (np.asarray(block.field("pfCand", "particleType")) == code)
        index = np.flatnonzero(select)
        cols = _ObjCols(block, source, index, tau[index], deta[index], dphi[index])
        names = spec.enabled(cell_type)
        raw = np.empty((index.size, len(names)), dtype=np.float64)
        defs = _OBJECT_DEFS[cell_type]
        for j, name in enumerate(names):
            raw[:, j] = defs[name](cols) if index.size else 0.0
        pt = _f(block.field(source, "pt"))[index] if index.size else np.zeros(0)
        out[cell_type] = ObjectTable(cell_type, tau[index], pt, deta[index], dphi[index],
                                     dr[index] < r_sig[tau[index]], raw)
    return out


# ============================================================================ needed columns
class _Recorder(ColumnBlock):
    """A one-tau, one-object block that records which columns the definitions read."""

    def __init__(self) -> None:
        super().__init__(1, {}, {}, "recorder")
        self.seen: set[str] = set()

    def column(self, name: str) -> np.ndarray:
        self.seen.add(name)
        return np.zeros(1) if name in ("tau_eta", "tau_phi") else np.ones(1)

    def counts(self, prefix: str) -> np.ndarray:
        return np.ones(1, dtype=np.int64)

    def field(self, prefix: str, name: str) -> np.ndarray:
        self.seen.add(f"{prefix}_{name}")
        if name == "particleType":
            return np.array([{v: k for k, v in PF_PARTICLE_TYPES.items()}[self._current]])
        return np.zeros(1) if name in ("eta", "phi") else np.ones(1)


def required_columns(spec: FeatureSpec, *, cells: bool = True) -> list[str]:
    """Input columns needed for the enabled features (tau-level, and objects if ``cells``)."""
    rec = _Recorder()
    tau_features(rec, spec, "TauFlat")
    if cells:
        tau_features(rec, spec, "GridGlobal")
        for cell_type in CELL_TYPES:
            rec._current = cell_type  # type: ignore[attr-defined]
            object_tables(rec, spec, (cell_type,))
    return sorted(rec.seen)


# ============================================================================ scaling
_IDENTITY = (0.0, 1.0, -math.inf, math.inf)


def _number(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("inf", "+inf", "infinity"):
            return math.inf
        if text in ("-inf", "-infinity"):
            return -math.inf
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"scaling: {what} = {value!r} is not a number") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"scaling: {what} = {value!r} is not a number")
    return float(value)


@dataclass
class Scaling:
    """Scaling parameters in the reference JSON layout, applied as clamp((x−mean)/std, lo, hi).

    Features absent from the JSON, or with ``None`` mean/std (the reference's "low
    statistics"), are passed through unscaled and listed in :attr:`unscaled` so the trainer can
    report them; a zero or non-finite std is treated as 1.
    """

    params: dict[str, Any]
    source: str = "<memory>"
    unscaled: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Scaling:
        p = Path(path)
        try:
            data = json.loads(p.read_text())
        except FileNotFoundError:
            raise ConfigError(f"scaling file '{p}' does not exist") from None
        except json.JSONDecodeError as err:
            raise ConfigError(f"scaling file '{p}' is not valid JSON: {err}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"scaling file '{p}': expected {{var_type: {{feature: {{cone: ...}}}}}}")
        return cls(data, str(p))

    @classmethod
    def identity(cls) -> Scaling:
        return cls({}, "<identity>")

    def entry(self, var_type: str, feature: str, cone: str) -> tuple[float, float, float, float]:
        """(mean, std, lim_min, lim_max) for one feature and cone (``global``/``inner``/``outer``)."""
        cones = self.params.get(var_type, {}).get(feature)
        if not isinstance(cones, Mapping):
            self.unscaled.add(f"{var_type}/{feature}")
            return _IDENTITY
        entry = cones.get(cone, cones.get("global"))
        if not isinstance(entry, Mapping):
            self.unscaled.add(f"{var_type}/{feature}/{cone}")
            return _IDENTITY
        where = f"{self.source}: {var_type}.{feature}.{cone}"
        mean = _number(entry.get("mean"), f"{where}.mean")
        std = _number(entry.get("std"), f"{where}.std")
        lo = _number(entry.get("lim_min", "-inf"), f"{where}.lim_min")
        hi = _number(entry.get("lim_max", "inf"), f"{where}.lim_max")
        if mean is None or std is None:
            self.unscaled.add(f"{var_type}/{feature}/{cone}")
            return _IDENTITY
        if not math.isfinite(std) or std == 0:
            std = 1.0
        return (mean, std, -math.inf if lo is None else lo, math.inf if hi is None else hi)

    def arrays(self, var_type: str, features: Sequence[str], cone: str) -> np.ndarray:
        """``(4, n_features)`` array of mean, std, lim_min, lim_max."""
        return np.array([self.entry(var_type, f, cone) for f in features], dtype=np.float64).T.reshape(4, len(features))

    def apply(self, raw: np.ndarray, var_type: str, features: Sequence[str], cone: str) -> np.ndarray:
        """Scaled float32 copy of ``raw``; unfilled (NaN) and non-finite results become 0."""
        return apply_scaling(raw, self.parameters(var_type, features, cone))

    def parameters(self, var_type: str, features: Sequence[str], cone: str) -> np.ndarray:
        """:meth:`arrays`, computed once per (type, features, cone) and kept."""
        features = tuple(features)
        cache = self.__dict__.setdefault("_cache", {})
        key = (var_type, features, cone)
        if key not in cache:
            cache[key] = self.arrays(var_type, features, cone)
        return cache[key]

    def warn_unscaled(self) -> None:
        if self.unscaled:
            names = sorted(self.unscaled)
            warnings.warn(
                f"{len(names)} feature(s) have no usable scaling parameters in {self.source} and are used "
                f"unscaled: {names[:8]}{' …' if len(names) > 8 else ''}",
                stacklevel=2,
            )


def apply_scaling(raw: np.ndarray, params: np.ndarray) -> np.ndarray:
    """clamp((x − mean)/std, lim_min, lim_max) per column; NaN/±inf results → 0 (unfilled)."""
    mean, std, lo, hi = params
    with np.errstate(invalid="ignore", over="ignore"):
        x = np.subtract(raw, mean)  # one temporary, then in place: this runs for every batch
        x /= std
        np.maximum(x, lo, out=x)  # = np.clip, NaN kept, at a third of its cost
        np.minimum(x, hi, out=x)
    x[~np.isfinite(x)] = 0.0
    return x.astype(np.float32, copy=False)


def estimate_scaling(block: ColumnBlock, spec: FeatureSpec, *, clip: float = 5.0, cells: bool = True) -> dict[str, Any]:
    """Quick ``normal`` scaling parameters from a sample, in the reference JSON layout.

    A fallback for runs without a ``taucoffea scaling compute`` JSON: mean and population std
    of the filled values (tau features: ``global``; object features per ``inner``/``outer``
    cone, using the objects the loader feeds), limits ±``clip`` σ, 4 significant digits.
    """

    def stats(x: np.ndarray) -> dict[str, Any]:
        x = x[np.isfinite(x) & (np.abs(x) < 1e30)]  # TauTuple lowest() sentinels are not values
        if x.size <= 1:
            return {"mean": None, "std": None, "lim_min": -clip, "lim_max": clip, "sqmean": None, "num": int(x.size)}
        mean = float(x.mean())
        sqmean = float((x * x).mean())
        std = math.sqrt(max(sqmean - mean * mean, 0.0))
        r = lambda v: float(format(v, ".4g"))  # noqa: E731
        return {"mean": r(mean), "std": r(std) if std > 0 else 1.0, "lim_min": -clip, "lim_max": clip,
                "sqmean": r(sqmean), "num": int(x.size)}

    out: dict[str, Any] = {}
    types = ["TauFlat"] + (["GridGlobal"] if cells else [])
    for var_type in types:
        raw = tau_features(block, spec, var_type)
        out[var_type] = {}
        for j, name in enumerate(spec.enabled(var_type)):
            s = stats(raw[:, j])
            out[var_type][name] = {"global": s} if var_type == "TauFlat" else {"inner": s, "outer": dict(s)}
    if cells:
        for cell_type, table in object_tables(block, spec).items():
            out[cell_type] = {}
            for j, name in enumerate(spec.enabled(cell_type)):
                out[cell_type][name] = {
                    "inner": stats(table.raw[table.inner, j]),
                    "outer": stats(table.raw[:, j]),
                }
    return out
