"""Jagged PF-candidate, electron and muon lists in the ΔR < 0.5 cone, with exact densities.

The candidate model (docs/toy.md has the full table):

* **signal cone** — the decay mode fixes the charged hadrons (1, 2 or 3); DMs with π⁰s get
  ``n_min + Poisson(λ_class)`` strip photons. The tau pT is shared among the signal candidates
  by a Dirichlet (class-dependent concentrations, exchangeable within charged / photons);
  positions are Gaussian around the tau axis with class-dependent widths (photon strips wider in
  φ). The particle type of the leading charged candidate (h±, e, μ) is class-dependent.
* **isolation annulus** (signal-cone radius to 0.5) — charged-from-PV, photon and neutral-hadron
  candidates from two Poisson sources per class: *soft* (underlying event / pile-up neutrals:
  class-blind pT and uniform positions) and *fragmentation* (pT ∝ tau pT, concentrated towards
  the core; mostly jets). A superposition of Poisson processes is again Poisson, so the exact
  density of an unordered set is ``exp(-Λ_c) Π_i λ_c(x_i)`` with the class intensity
  ``λ_c(x) = μ_soft f_soft(x) + μ_frag f_frag(x)``. Charged pile-up candidates
  (``fromPV`` < 2) are class-blind.
* **electron / muon objects** — at most one per tau, present with a class-dependent probability,
  features drawn from a "genuine" or "fake" density with class-dependent mixing.

All other per-candidate fields (hits, errors, calorimeter fractions, vertices, puppi weights…)
are drawn from class-blind densities given the candidate type and pT, so they add nothing to any
likelihood ratio. :func:`candidate_loglik_terms` evaluates the class-dependent terms from the
stored lists only, identifying the groups through ``tauSignal``, ``particleType``, ``charge``
and ``fromPV``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import special

from taucoffea.toy.datasets import JET, DataMCShift
from taucoffea.toy.densities import (
    PION_MASS,
    Params,
    beta_logpdf,
    dxy_error_model,
    dz_error_model,
    lognormal_logpdf,
    normal_logpdf,
    poisson_logpmf,
)

__all__ = [
    "CAND_PARAMS",
    "CandCounts",
    "ELE_FIELDS",
    "Jagged",
    "MUON_FIELDS",
    "PFCAND_FIELDS",
    "R_ISO",
    "candidate_loglik_terms",
    "candidate_summaries",
    "count_terms",
    "sample_counts",
    "sample_electrons",
    "sample_muons",
    "sample_pf_candidates",
    "shifted_cand_params",
    "signal_cone",
]

R_ISO = 0.5
_LOWEST = np.finfo(np.float32).min
_ELE_MASS, _MU_MASS = 0.000511, 0.10566
_TWO_PI = 2.0 * np.pi

# class-blind shapes of the isolation sources, per group (charged, photon, neutral hadron)
_SOFT_THR = np.array([0.5, 0.5, 1.0])
_SOFT_MEAN = np.array([0.9, 0.7, 1.5])
_FRAG_XI = np.array([0.04, 0.03, 0.04])
_FRAG_BETA = (1.0, 2.2)
_PU_THR, _PU_MEAN, _PU_PER_NPV = 0.5, 0.7, 0.05
_GROUP_TYPE = np.array([1, 4, 5])  # particleType of the groups

# class-blind shapes of the electron / muon object features: "genuine" (a real e/μ) and "fake"
# (a hadron or conversion reconstructed as one). The class enters only through the presence
# probability and the genuine share (CAND_PARAMS), so the densities below are shared by the
# sampler and the log-likelihood.
_ELE_GEN = {"ratio_s": 0.10, "pos": 0.010, "eop_m": 0.0, "eop_s": 0.15,
            "chi2_m": float(np.log(1.8)), "chi2_s": 0.5}
_ELE_FAKE = {"ratio_a": 3.0, "ratio_b": 2.0, "pos": 0.03, "eop_m": float(np.log(0.7)),
             "eop_s": 0.45, "chi2_m": float(np.log(2.5)), "chi2_s": 0.6}
_MU_GEN = {"ratio_s": 0.08, "pos": 0.006, "p_station": 0.70, "seg": (4.0, 2.0),
           "calo": (4.0, 2.0), "chi2_m": 0.0, "chi2_s": 0.5}
_MU_FAKE = {"ratio_a": 3.0, "ratio_b": 2.0, "pos": 0.03, "p_station": 0.25, "seg": (2.0, 3.0),
            "calo": (2.0, 2.5), "chi2_m": float(np.log(1.8)), "chi2_s": 0.6}


def _a(*rows: object) -> np.ndarray:
    return np.array(rows, dtype=float)


#: Class-dependent parameters of the candidate model (rows e, μ, τ, jet).
CAND_PARAMS: dict[str, np.ndarray] = {
    # particleType of the leading signal charged candidate: (h±, e, μ)
    "lead_type_probs": _a([0.55, 0.445, 0.005], [0.50, 0.002, 0.498], [0.97, 0.02, 0.01],
                          [0.975, 0.015, 0.01]),
    "sph_extra": _a(1.2, 0.3, 0.6, 1.2),
    "alpha_ch": _a(3.0, 4.0, 2.5, 1.2),
    "alpha_ph": _a(0.8, 0.7, 1.2, 0.9),
    # widths in units of the signal-cone radius
    "spread_ch": _a(0.20, 0.18, 0.25, 0.45),
    "spread_ph_eta": _a(0.25, 0.30, 0.30, 0.50),
    "spread_ph_phi": _a(0.80, 0.50, 0.60, 0.70),
    # isolation intensities (expected counts) per group (charged PV, photon, neutral hadron)
    "iso_soft": _a([0.5, 1.0, 0.3], [0.4, 0.8, 0.3], [0.6, 1.0, 0.3], [0.8, 1.2, 0.3]),
    "iso_frag0": _a([0.1, 0.5, 0.05], [0.05, 0.05, 0.05], [0.15, 0.2, 0.05], [2.0, 1.8, 0.6]),
    "iso_frag1": _a([0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.8, 0.6, 0.2]),
    # electron / muon objects: presence probability and genuine-vs-fake mixing
    "ele_present": _a(0.60, 0.01, 0.08, 0.06),
    "ele_genuine": _a(0.97, 0.05, 0.05, 0.05),
    "mu_present": _a(0.002, 0.70, 0.02, 0.02),
    "mu_genuine": _a(0.01, 0.99, 0.10, 0.05),
    # scale of the pile-up intensity (data/MC shift only; class-blind)
    "pu_scale": _a(1.0, 1.0, 1.0, 1.0),
}


def shifted_cand_params(params: Params, shift: DataMCShift) -> dict[str, np.ndarray]:
    """Candidate parameters with the data/MC shift applied (for drawing data)."""
    out = {k: np.array(v, copy=True) for k, v in params.items()}
    out["iso_frag0"][JET, 0] *= shift.jet_iso_charged_scale
    out["iso_frag1"][JET, 0] *= shift.jet_iso_charged_scale
    out["iso_frag0"][JET, 1] *= shift.jet_iso_photon_scale
    out["iso_frag1"][JET, 1] *= shift.jet_iso_photon_scale
    out["iso_soft"][:, 0] *= shift.ue_charged_scale
    for key in ("spread_ch", "spread_ph_eta", "spread_ph_phi"):
        out[key][JET] *= shift.jet_signal_spread_scale
    out["pu_scale"][:] = shift.pu_scale
    return out


def signal_cone(pt: np.ndarray) -> np.ndarray:
    """HPS-like signal-cone radius max(3/max(pT, 30), 0.05) (the DeepTau inner-cell cone)."""
    return np.maximum(3.0 / np.maximum(pt, 30.0), 0.05)


def _logpt(pt: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(pt, 20.0) / 20.0)


def _wrap(x: np.ndarray) -> np.ndarray:
    return (x + np.pi) % _TWO_PI - np.pi


@dataclass
class Jagged:
    """A per-tau list collection: ``counts`` per tau and flat, tau-contiguous field arrays."""

    counts: np.ndarray
    fields: dict[str, np.ndarray]

    @property
    def tau_index(self) -> np.ndarray:
        """Index of the owning tau of every element."""
        return np.repeat(np.arange(self.counts.size), self.counts)


PFCAND_FIELDS: dict[str, str] = {
    "index": "int32", "pt": "float32", "eta": "float32", "phi": "float32", "mass": "float32",
    "particleType": "int32", "charge": "int32", "fromPV": "int32",
    "pvAssociationQuality": "int32", "puppiWeight": "float32", "puppiWeightNoLep": "float32",
    "lostInnerHits": "int32", "nHits": "int32", "nPixelHits": "int32",
    "hasTrackDetails": "int32", "dxy": "float32", "dxy_error": "float32", "dz": "float32",
    "dz_error": "float32", "track_pt": "float32", "track_eta": "float32", "track_phi": "float32",
    "track_chi2": "float32", "track_ndof": "float32", "caloFraction": "float32",
    "hcalFraction": "float32", "rawCaloFraction": "float32", "rawHcalFraction": "float32",
    "tauSignal": "int32", "tauLeadChargedHadrCand": "int32", "tauIso": "int32",
    "vertex_x": "float32", "vertex_y": "float32", "vertex_z": "float32",
}

_ELE_INT = {"index", "cc_n_gamma", "gsfTrack_numberOfValidHits",
            "closestCtfTrack_numberOfValidHits"}
ELE_FIELDS: dict[str, str] = {
    k: ("int32" if k in _ELE_INT else "float32") for k in (
        "index", "pt", "eta", "phi", "mass", "cc_ele_energy", "cc_gamma_energy", "cc_n_gamma",
        "dxy", "dxy_error", "ip3d", "trackMomentumAtVtx", "trackMomentumAtCalo",
        "trackMomentumOut", "trackMomentumAtEleClus", "trackMomentumAtVtxWithConstraint",
        "ecalEnergy", "ecalEnergy_error", "eSuperClusterOverP", "eSeedClusterOverP",
        "eSeedClusterOverPout", "eEleClusterOverPout", "deltaEtaSuperClusterTrackAtVtx",
        "deltaEtaSeedClusterTrackAtCalo", "deltaEtaEleClusterTrackAtCalo",
        "deltaPhiEleClusterTrackAtCalo", "deltaPhiSuperClusterTrackAtVtx",
        "deltaPhiSeedClusterTrackAtCalo", "mvaInput_earlyBrem", "mvaInput_lateBrem",
        "mvaInput_sigmaEtaEta", "mvaInput_hadEnergy", "mvaInput_deltaEta",
        "gsfTrack_normalizedChi2", "gsfTrack_numberOfValidHits", "gsfTrack_pt",
        "gsfTrack_pt_error", "closestCtfTrack_normalizedChi2",
        "closestCtfTrack_numberOfValidHits")
}

_STATIONS = ("DT", "CSC", "RPC")
MUON_FIELDS: dict[str, str] = {
    "index": "int32", "pt": "float32", "eta": "float32", "phi": "float32", "mass": "float32",
    "dxy": "float32", "dxy_error": "float32", "normalizedChi2": "float32",
    "numberOfValidHits": "int32", "segmentCompatibility": "float32",
    "caloCompatibility": "float32", "pfEcalEnergy": "float32", "type": "int32", "id": "int32",
} | {f"n_{w}_{det}_{s}": "int32" for w in ("matches", "hits") for det in _STATIONS
     for s in range(1, 5)}


# --------------------------------------------------------------------------------------------
# PF candidates: sampling


@dataclass
class _Elems:
    tau: np.ndarray
    pt: np.ndarray
    deta: np.ndarray
    dphi: np.ndarray
    ptype: np.ndarray
    charge: np.ndarray
    from_pv: np.ndarray
    signal: np.ndarray
    lead: np.ndarray


def _iso_source(rng: np.random.Generator, counts: np.ndarray, pt_tau: np.ndarray,
                r0: np.ndarray, thr: float, pt_scale: np.ndarray, frag: bool
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Elements of one Poisson source: owner tau, pT, Δη, Δφ."""
    t = np.repeat(np.arange(counts.size), counts)
    m = t.size
    pt = thr + rng.exponential(1.0, m) * pt_scale[t]
    r0t = r0[t]
    if frag:
        r = r0t + (R_ISO - r0t) * rng.beta(*_FRAG_BETA, m)
    else:
        r = np.sqrt(r0t * r0t + rng.random(m) * (R_ISO * R_ISO - r0t * r0t))
    theta = _TWO_PI * rng.random(m)
    return t, pt, r * np.cos(theta), r * np.sin(theta)


@dataclass
class CandCounts:
    """Multiplicities of a batch of taus, drawn before the candidates themselves.

    Splitting counts from details lets the control-region preselection (which needs only the
    DeepTau-like score, i.e. counts and tau-level features) reject rows before the expensive
    per-candidate fields are drawn. ``iso`` is (n, 3 groups, 2 sources: soft, fragmentation).
    """

    n_photons: np.ndarray
    lead_type: np.ndarray
    iso: np.ndarray
    n_pu: np.ndarray
    n_ele: np.ndarray
    n_muon: np.ndarray

    def take(self, rows: np.ndarray) -> CandCounts:
        """The counts of the given rows."""
        return CandCounts(*(getattr(self, f)[rows] for f in self.__dataclass_fields__))


def _photon_base(dm: np.ndarray) -> np.ndarray:
    """Minimal number of signal-cone photons of a decay mode (one per π⁰ strip)."""
    return np.select([dm == 1, dm == 2, dm == 6, dm == 11], [1, 2, 1, 1], 0)


def _iso_means(cls_or_all: np.ndarray | slice, pt: np.ndarray, params: Params
               ) -> tuple[np.ndarray, np.ndarray]:
    """Soft and fragmentation intensities, each (n, 3) for given classes or (n, 4, 3) for all."""
    L = _logpt(pt)
    if isinstance(cls_or_all, slice):
        soft = np.broadcast_to(params["iso_soft"][None, :, :], (pt.size, 4, 3))
        frag = params["iso_frag0"][None, :, :] + params["iso_frag1"][None, :, :] * L[:, None, None]
        return soft, frag
    soft = params["iso_soft"][cls_or_all]
    frag = params["iso_frag0"][cls_or_all] + params["iso_frag1"][cls_or_all] * L[:, None]
    return soft, frag


def sample_counts(rng: np.random.Generator, cls: np.ndarray, tau: Mapping[str, np.ndarray],
                  params: Params) -> CandCounts:
    """Draw all multiplicities (signal photons, lead-track type, isolation, e/μ objects)."""
    n = cls.size
    dm = tau["dm"].astype(np.int64)
    base = _photon_base(dm)
    n_ph = base + np.where(base > 0, rng.poisson(params["sph_extra"][cls]), 0)
    lead_cdf = np.cumsum(params["lead_type_probs"], axis=1)[cls]
    lead_type = 1 + np.minimum((rng.random(n)[:, None] > lead_cdf).sum(axis=1), 2)
    soft, frag = _iso_means(cls, tau["pt"], params)
    iso = rng.poisson(np.stack([soft, frag], axis=2))
    n_pu = rng.poisson(_PU_PER_NPV * tau["npv"] * params["pu_scale"][cls])
    n_ele = (rng.random(n) < params["ele_present"][cls]).astype(np.int64)
    n_mu = (rng.random(n) < params["mu_present"][cls]).astype(np.int64)
    return CandCounts(n_ph, lead_type, iso, n_pu, n_ele, n_mu)


def count_terms(pt: np.ndarray, dm: np.ndarray, n_photons: np.ndarray, lead_type: np.ndarray,
                iso_totals: np.ndarray, n_ele: np.ndarray, n_muon: np.ndarray, params: Params
                ) -> dict[str, np.ndarray]:
    """Log-density terms of the multiplicities alone, (n, 4) each.

    Shared by the generator (before the candidates exist) and :func:`candidate_loglik_terms`
    (from the stored lists), so both give bit-identical values.
    """
    terms: dict[str, np.ndarray] = {}
    lt = np.clip(np.asarray(lead_type, dtype=np.int64) - 1, 0, 2)
    terms["lead_type"] = np.log(params["lead_type_probs"][:, lt].T)
    base = _photon_base(np.asarray(dm, dtype=np.int64))
    extra = (np.asarray(n_photons, dtype=np.float64) - base)[:, None]
    terms["sig_photon_count"] = np.where(base[:, None] > 0,
                                         poisson_logpmf(extra, params["sph_extra"][None, :]), 0.0)
    soft, frag = _iso_means(slice(None), pt, params)
    lam = soft + frag  # (n, 4, 3)
    for g, name in enumerate(("ch", "ph", "nh")):
        k = np.asarray(iso_totals[:, g], dtype=np.float64)[:, None]
        terms[f"iso_{name}_count"] = poisson_logpmf(k, lam[:, :, g])
    terms["ele_presence"] = _presence_term(np.asarray(n_ele), params["ele_present"])
    terms["mu_presence"] = _presence_term(np.asarray(n_muon), params["mu_present"])
    return terms


def sample_pf_candidates(rng: np.random.Generator, cls: np.ndarray, tau: Mapping[str, np.ndarray],
                         counts: CandCounts, params: Params) -> Jagged:
    """Draw the ``pfCand_*`` lists of ``len(cls)`` taus with the given multiplicities.

    ``tau`` holds float64 copies of the stored tau columns: ``pt``, ``eta``, ``phi``, ``dm``,
    ``charge``, ``dxy``, ``dxy_error``, ``dz``, ``dz_error``, ``npv``, ``pv_x/y/z``.
    """
    n = cls.size
    ar = np.arange(n)
    pt, dm = tau["pt"], tau["dm"].astype(np.int64)
    rsig = signal_cone(pt)

    # ---- signal cone: charged prongs and strip photons, pT shared by a Dirichlet
    n_ch = dm // 5 + 1
    n_ph = counts.n_photons
    t_ch, t_ph = np.repeat(ar, n_ch), np.repeat(ar, n_ph)
    g_ch = rng.standard_gamma(params["alpha_ch"][cls][t_ch])
    g_ph = rng.standard_gamma(params["alpha_ph"][cls][t_ph])
    g_ch = np.maximum(g_ch, 1e-30)
    g_ph = np.maximum(g_ph, 1e-30)
    tot = np.bincount(t_ch, g_ch, n) + np.bincount(t_ph, g_ph, n)
    pt_ch = pt[t_ch] * g_ch / tot[t_ch]
    pt_ph = pt[t_ph] * g_ph / tot[t_ph]
    s = params["spread_ch"][cls][t_ch] * rsig[t_ch]
    deta_ch = s * rng.standard_normal(t_ch.size)
    dphi_ch = s * rng.standard_normal(t_ch.size)
    deta_ph = params["spread_ph_eta"][cls][t_ph] * rsig[t_ph] * rng.standard_normal(t_ph.size)
    dphi_ph = params["spread_ph_phi"][cls][t_ph] * rsig[t_ph] * rng.standard_normal(t_ph.size)

    # leading charged candidate: its particle type is class-dependent; charges add up to the
    # tau charge where possible (3-prong: lead = q, the others ±1 in random order)
    order = np.lexsort((-pt_ch, t_ch))
    starts = np.cumsum(n_ch) - n_ch
    rank = np.empty(t_ch.size, dtype=np.int64)
    rank[order] = np.arange(t_ch.size) - np.repeat(starts, n_ch)
    ptype_ch = np.where(rank == 0, counts.lead_type[t_ch], 1)
    q = tau["charge"].astype(np.int64)
    flip = np.where(rng.random(n) < 0.5, 1, -1)
    charge_ch = np.select([rank == 0, (rank == 1) & (n_ch[t_ch] == 2), rank == 1],
                          [q[t_ch], -q[t_ch], flip[t_ch]], -flip[t_ch])

    parts = [
        _Elems(t_ch, pt_ch, deta_ch, dphi_ch, ptype_ch, charge_ch,
               np.full(t_ch.size, 3), np.ones(t_ch.size, np.int64), (rank == 0).astype(np.int64)),
        _Elems(t_ph, pt_ph, deta_ph, dphi_ph, np.full(t_ph.size, 4), np.zeros(t_ph.size, np.int64),
               np.full(t_ph.size, 3), np.ones(t_ph.size, np.int64), np.zeros(t_ph.size, np.int64)),
    ]

    # ---- isolation annulus: soft + fragmentation sources per group, plus charged pile-up
    for g in range(3):
        for src, frag, scale in ((0, False, np.full(n, _SOFT_MEAN[g])),
                                 (1, True, _FRAG_XI[g] * pt)):
            t, p, de, dp = _iso_source(rng, counts.iso[:, g, src], pt, rsig, _SOFT_THR[g],
                                       scale, frag)
            m = t.size
            if g == 0:
                charge = np.where(rng.random(m) < 0.5, -1, 1)
                from_pv = np.where(rng.random(m) < 0.85, 3, 2)
            else:
                charge = np.zeros(m, np.int64)
                from_pv = np.full(m, 3)
            parts.append(_Elems(t, p, de, dp, np.full(m, _GROUP_TYPE[g]), charge, from_pv,
                                np.zeros(m, np.int64), np.zeros(m, np.int64)))
    t, p, de, dp = _iso_source(rng, counts.n_pu, pt, rsig, _PU_THR, np.full(n, _PU_MEAN), False)
    m = t.size
    parts.append(_Elems(t, p, de, dp, np.ones(m, np.int64),
                        np.where(rng.random(m) < 0.5, -1, 1), np.where(rng.random(m) < 0.7, 0, 1),
                        np.zeros(m, np.int64), np.zeros(m, np.int64)))

    fields = _Elems.__dataclass_fields__
    e = _Elems(*(np.concatenate([getattr(x, f) for x in parts]) for f in fields))
    pt_c = e.pt.astype(np.float32)
    order = np.lexsort((-pt_c, e.tau))
    e = _Elems(*(getattr(e, f)[order] for f in fields))
    n_per_tau = np.bincount(e.tau, minlength=n)
    out = _pf_fields(rng, e, tau, n_per_tau)
    return Jagged(n_per_tau, {k: out[k] for k in PFCAND_FIELDS})


def _pf_fields(rng: np.random.Generator, e: _Elems, tau: Mapping[str, np.ndarray],
               counts: np.ndarray) -> dict[str, np.ndarray]:
    """Stored pfCand fields; everything beyond kinematics and flags is class-blind."""
    m = e.tau.size
    t = e.tau
    f32 = np.float32
    pt = e.pt.astype(f32)
    eta = (tau["eta"][t] + e.deta).astype(f32)
    phi = _wrap(tau["phi"][t] + e.dphi).astype(f32)
    ptype = e.ptype
    charged = e.charge != 0
    pu = charged & (e.from_pv < 2)
    details = charged & (pt > 0.95)
    lead = e.lead.astype(bool)
    out: dict[str, np.ndarray] = {}
    starts = np.cumsum(counts) - counts
    out["index"] = (np.arange(m) - np.repeat(starts, counts)).astype(np.int32)
    out["pt"], out["eta"], out["phi"] = pt, eta, phi
    mass_by_type = np.array([0.0, PION_MASS, _ELE_MASS, _MU_MASS, 0.0, 0.0, 0.0, 0.0])
    out["mass"] = mass_by_type[ptype].astype(f32)
    out["particleType"] = ptype.astype(np.int32)
    out["charge"] = e.charge.astype(np.int32)
    out["fromPV"] = e.from_pv.astype(np.int32)
    out["pvAssociationQuality"] = np.select([pu, charged & (e.from_pv == 3), charged],
                                            [0, 7, 5], 0).astype(np.int32)
    u = rng.random((m, 8))
    nz = rng.standard_normal((m, 4))
    puppi = np.where(charged, np.where(pu, 0.0, 1.0), u[:, 0] ** 0.6)
    out["puppiWeight"] = puppi.astype(f32)
    out["puppiWeightNoLep"] = out["puppiWeight"]
    lih = np.select([u[:, 1] < 0.88, u[:, 1] < 0.96, u[:, 1] < 0.99], [-1, 0, 1], 2)
    out["lostInnerHits"] = np.where(charged, lih, 0).astype(np.int32)
    nhits = 8 + (16 * u[:, 2]).astype(np.int64)
    out["nHits"] = np.where(charged, nhits, 0).astype(np.int32)
    out["nPixelHits"] = np.where(charged, 2 + (3 * u[:, 3]).astype(np.int64), 0).astype(np.int32)
    out["hasTrackDetails"] = details.astype(np.int32)

    ptd = pt.astype(np.float64)
    dxy_err = dxy_error_model(ptd) * np.exp(0.2 * nz[:, 0])
    dz_err = dz_error_model(ptd) * np.exp(0.25 * nz[:, 1])
    dxy = dxy_err * nz[:, 2]
    dz = np.where(pu, 4.0 * nz[:, 3], dz_err * nz[:, 3])
    # the leading track carries the tau's own impact parameters
    dxy = np.where(lead, tau["dxy"][t], dxy)
    dxy_err = np.where(lead, tau["dxy_error"][t], dxy_err)
    dz = np.where(lead, tau["dz"][t], dz)
    dz_err = np.where(lead, tau["dz_error"][t], dz_err)
    dxy = np.where(charged, dxy, 0.0)
    dz = np.where(charged, dz, 0.0)
    out["dxy"] = dxy.astype(f32)
    out["dxy_error"] = np.where(details, dxy_err, _LOWEST).astype(f32)
    out["dz"] = dz.astype(f32)
    out["dz_error"] = np.where(details, dz_err, _LOWEST).astype(f32)
    out["track_pt"] = np.where(details, pt, _LOWEST).astype(f32)
    out["track_eta"] = np.where(details, eta, _LOWEST).astype(f32)
    out["track_phi"] = np.where(details, phi, _LOWEST).astype(f32)
    ndof = np.maximum(2.0 * nhits - 5.0, 1.0)
    out["track_chi2"] = np.where(details, ndof * np.exp(0.3 * nz[:, 0] * nz[:, 1]),
                                 _LOWEST).astype(f32)
    out["track_ndof"] = np.where(details, ndof, _LOWEST).astype(f32)
    calo = np.select([ptype == 1, ptype == 2, ptype == 3, ptype == 4, ptype == 5],
                     [1.4 * u[:, 4] ** 0.7, 0.9 + 0.2 * u[:, 4], 0.05 * u[:, 4], 1.0, 1.0], 0.0)
    hcal = np.select([ptype == 1, ptype == 2, ptype == 3, ptype == 5],
                     [u[:, 5] ** 0.5, 0.05 * u[:, 5], 0.5 * u[:, 5], 1.0], 0.0)
    out["caloFraction"] = np.where(charged, calo, 0.0).astype(f32)
    out["hcalFraction"] = hcal.astype(f32)
    out["rawCaloFraction"] = (calo * (0.9 + 0.2 * u[:, 6])).astype(f32)
    out["rawHcalFraction"] = (hcal * (0.9 + 0.2 * u[:, 7])).astype(f32)
    out["tauSignal"] = e.signal.astype(np.int32)
    out["tauLeadChargedHadrCand"] = e.lead.astype(np.int32)
    out["tauIso"] = ((e.signal == 0) & ~pu).astype(np.int32)
    phid = phi.astype(np.float64)
    out["vertex_x"] = (tau["pv_x"][t] - dxy * np.sin(phid)).astype(f32)
    out["vertex_y"] = (tau["pv_y"][t] + dxy * np.cos(phid)).astype(f32)
    out["vertex_z"] = (tau["pv_z"][t] + dz).astype(f32)
    return out


# --------------------------------------------------------------------------------------------
# electrons and muons


def sample_electrons(rng: np.random.Generator, cls: np.ndarray, tau: Mapping[str, np.ndarray],
                     counts: np.ndarray, params: Params) -> Jagged:
    """``ele_`` objects (``counts`` ∈ {0, 1} per tau): genuine (E/p ≈ 1, pT ≈ tau pT) or fake."""
    sel = np.flatnonzero(counts)
    m = sel.size
    c = cls[sel]
    gen = rng.random(m) < params["ele_genuine"][c]
    nz = rng.standard_normal((m, 16))
    u = rng.random((m, 8))
    g, fk = _ELE_GEN, _ELE_FAKE
    ratio = np.where(gen, np.exp(g["ratio_s"] * nz[:, 0]),
                     rng.beta(fk["ratio_a"], fk["ratio_b"], m))
    dpos = np.where(gen, g["pos"], fk["pos"])
    eop = np.exp(np.where(gen, g["eop_m"] + g["eop_s"] * nz[:, 3],
                          fk["eop_m"] + fk["eop_s"] * nz[:, 3]))
    chi2 = np.exp(np.where(gen, g["chi2_m"] + g["chi2_s"] * nz[:, 4],
                           fk["chi2_m"] + fk["chi2_s"] * nz[:, 4]))
    f32 = np.float32
    pt = (tau["pt"][sel] * ratio).astype(f32)
    eta = (tau["eta"][sel] + dpos * nz[:, 1]).astype(f32)
    phi = _wrap(tau["phi"][sel] + dpos * nz[:, 2]).astype(f32)
    ptd, etad = pt.astype(np.float64), eta.astype(np.float64)
    p = ptd * np.cosh(etad)
    fbrem = u[:, 0] ** 1.5
    ecal = eop.astype(f32).astype(np.float64) * p
    seed = 0.75 + 0.25 * u[:, 1]
    p_out = p * (1.0 - 0.8 * fbrem)
    out: dict[str, np.ndarray] = {
        "index": np.zeros(m, np.int32), "pt": pt, "eta": eta, "phi": phi,
        "mass": np.full(m, _ELE_MASS, f32),
        "cc_ele_energy": np.where(u[:, 2] < 0.97, 0.9 * ecal, _LOWEST).astype(f32),
        "cc_gamma_energy": np.where(u[:, 2] < 0.97, 0.1 * ecal * u[:, 3], _LOWEST).astype(f32),
        "cc_n_gamma": np.where(u[:, 2] < 0.97, (3 * u[:, 4]).astype(np.int64),
                               np.iinfo(np.int32).min).astype(np.int32),
        "dxy": (0.003 * nz[:, 5]).astype(f32),
        "dxy_error": (0.002 * np.exp(0.2 * nz[:, 6])).astype(f32),
        "ip3d": (0.0036 * np.abs(nz[:, 5])).astype(f32),
        "trackMomentumAtVtx": p.astype(f32),
        "trackMomentumAtCalo": (p * (1.0 - 0.5 * fbrem)).astype(f32),
        "trackMomentumOut": p_out.astype(f32),
        "trackMomentumAtEleClus": (p_out * (1.0 + 0.02 * nz[:, 7])).astype(f32),
        "trackMomentumAtVtxWithConstraint": (p * (1.0 + 0.01 * nz[:, 8])).astype(f32),
        "ecalEnergy": ecal.astype(f32),
        "ecalEnergy_error": (0.02 * ecal + 0.3).astype(f32),
        "eSuperClusterOverP": eop.astype(f32),
        "eSeedClusterOverP": (eop * seed).astype(f32),
        "eSeedClusterOverPout": (ecal * seed / p_out).astype(f32),
        "eEleClusterOverPout": (ecal * (0.5 + 0.5 * seed) / p_out).astype(f32),
        "deltaEtaSuperClusterTrackAtVtx": (0.003 * nz[:, 9]).astype(f32),
        "deltaEtaSeedClusterTrackAtCalo": (0.004 * nz[:, 10]).astype(f32),
        "deltaEtaEleClusterTrackAtCalo": (0.004 * nz[:, 11]).astype(f32),
        "deltaPhiEleClusterTrackAtCalo": (0.01 * nz[:, 12]).astype(f32),
        "deltaPhiSuperClusterTrackAtVtx": (0.01 * nz[:, 13]).astype(f32),
        "deltaPhiSeedClusterTrackAtCalo": (0.01 * nz[:, 14]).astype(f32),
        "mvaInput_earlyBrem": (fbrem > 0.5).astype(f32),
        "mvaInput_lateBrem": (u[:, 5] < 0.3).astype(f32),
        "mvaInput_sigmaEtaEta": (0.01 * np.exp(0.2 * nz[:, 15])).astype(f32),
        "mvaInput_hadEnergy": (0.5 * -np.log1p(-u[:, 6])).astype(f32),
        "mvaInput_deltaEta": (0.003 * np.abs(nz[:, 9])).astype(f32),
        "gsfTrack_normalizedChi2": chi2.astype(f32),
        "gsfTrack_numberOfValidHits": (8 + (12 * u[:, 7]).astype(np.int64)).astype(np.int32),
        "gsfTrack_pt": (ptd * (1.0 + 0.03 * nz[:, 8])).astype(f32),
        "gsfTrack_pt_error": (0.03 * ptd * np.exp(0.2 * nz[:, 10])).astype(f32),
        "closestCtfTrack_normalizedChi2": np.where(u[:, 3] < 0.8, np.exp(0.4 * nz[:, 11]),
                                                   _LOWEST).astype(f32),
        "closestCtfTrack_numberOfValidHits": np.where(u[:, 3] < 0.8,
                                                      10 + (10 * u[:, 4]).astype(np.int64),
                                                      0).astype(np.int32),
    }
    return Jagged(counts, {k: out[k] for k in ELE_FIELDS})


def sample_muons(rng: np.random.Generator, cls: np.ndarray, tau: Mapping[str, np.ndarray],
                 counts: np.ndarray, params: Params) -> Jagged:
    """``muon_`` objects (``counts`` ∈ {0, 1}): genuine (many station matches) or a fake."""
    sel = np.flatnonzero(counts)
    m = sel.size
    c = cls[sel]
    gen = rng.random(m) < params["mu_genuine"][c]
    nz = rng.standard_normal((m, 6))
    u = rng.random((m, 8))
    f32 = np.float32
    g, fk = _MU_GEN, _MU_FAKE
    ratio = np.where(gen, np.exp(g["ratio_s"] * nz[:, 0]),
                     rng.beta(fk["ratio_a"], fk["ratio_b"], m))
    dpos = np.where(gen, g["pos"], fk["pos"])
    pt = (tau["pt"][sel] * ratio).astype(f32)
    eta = (tau["eta"][sel] + dpos * nz[:, 1]).astype(f32)
    phi = _wrap(tau["phi"][sel] + dpos * nz[:, 2]).astype(f32)
    seg = np.where(gen, rng.beta(*g["seg"], m), rng.beta(*fk["seg"], m)).astype(f32)
    calo = np.where(gen, rng.beta(*g["calo"], m), rng.beta(*fk["calo"], m)).astype(f32)
    chi2 = np.exp(np.where(gen, g["chi2_m"] + g["chi2_s"] * nz[:, 3],
                           fk["chi2_m"] + fk["chi2_s"] * nz[:, 3])).astype(f32)
    p_station = np.where(gen, g["p_station"], fk["p_station"])
    matched = rng.random((m, 4)) < p_station[:, None]
    barrel = np.abs(eta) < 1.05
    n_match = 1 + rng.poisson(0.3, (m, 4))
    n_hits_dt = 4 + rng.poisson(4.0, (m, 4))
    n_hits_csc = 3 + rng.poisson(3.0, (m, 4))
    rpc = rng.random((m, 4)) < 0.3
    out: dict[str, np.ndarray] = {
        "index": np.zeros(m, np.int32), "pt": pt, "eta": eta, "phi": phi,
        "mass": np.full(m, _MU_MASS, f32),
        "dxy": (0.002 * nz[:, 4]).astype(f32),
        "dxy_error": (0.0015 * np.exp(0.2 * nz[:, 5])).astype(f32),
        "normalizedChi2": chi2,
        "numberOfValidHits": (20 + (20 * u[:, 0]).astype(np.int64)).astype(np.int32),
        "segmentCompatibility": seg, "caloCompatibility": calo,
        "pfEcalEnergy": (0.5 * -np.log1p(-u[:, 1])).astype(f32),
    }
    n_matched = matched.sum(axis=1)
    # type bits: global (1<<1) with ≥ 2 matched stations, tracker (1<<2), PF (1<<5)
    out["type"] = (((n_matched >= 2) << 1) | (1 << 2) | ((seg > 0.3) << 5)).astype(np.int32)
    out["id"] = ((seg > 0.3).astype(np.int64) | ((seg > 0.6) << 1)
                 | ((n_matched >= 2) & (seg > 0.6)) << 2).astype(np.int32)
    for s in range(4):
        dt = matched[:, s] & barrel
        csc = matched[:, s] & ~barrel
        out[f"n_matches_DT_{s + 1}"] = np.where(dt, n_match[:, s], 0).astype(np.int32)
        out[f"n_matches_CSC_{s + 1}"] = np.where(csc, n_match[:, s], 0).astype(np.int32)
        out[f"n_matches_RPC_{s + 1}"] = rpc[:, s].astype(np.int32)
        out[f"n_hits_DT_{s + 1}"] = np.where(dt, n_hits_dt[:, s], 0).astype(np.int32)
        out[f"n_hits_CSC_{s + 1}"] = np.where(csc, n_hits_csc[:, s], 0).astype(np.int32)
        out[f"n_hits_RPC_{s + 1}"] = (rpc[:, s] * 2).astype(np.int32)
    return Jagged(counts, {k: out[k] for k in MUON_FIELDS})


# --------------------------------------------------------------------------------------------
# log-likelihood terms from stored lists


def _per_tau(tau_idx: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Sum per tau of an (m,) or (m, k) array."""
    if values.ndim == 1:
        return np.bincount(tau_idx, values, n)
    return np.stack([np.bincount(tau_idx, values[:, j], n) for j in range(values.shape[1])],
                    axis=1)


def candidate_loglik_terms(tau: Mapping[str, np.ndarray], pf: Jagged, ele: Jagged, mu: Jagged,
                           params: Params) -> dict[str, np.ndarray]:
    """Class-dependent log-density terms of the candidate lists, each of shape (n, 4).

    ``tau`` holds float64 ``pt``, ``eta``, ``phi`` and int ``dm`` of the stored taus. Terms:
    ``lead_type``, ``sig_photon_count``, ``sig_shares``, ``sig_positions``,
    ``iso_{ch,ph,nh}_count`` / ``iso_{ch,ph,nh}_shape``, ``ele_presence``, ``ele_features``,
    ``mu_presence``, ``mu_features``. Count + shape of a group is the exact Poisson-process
    density of that group's unordered candidate set (up to the class-blind 1/n!).
    """
    n = tau["pt"].size
    pt, eta, phi = tau["pt"], tau["eta"], tau["phi"]
    dm = tau["dm"].astype(np.int64)
    rsig = signal_cone(pt)
    f = pf.fields
    t = pf.tau_index
    cpt = f["pt"].astype(np.float64)
    deta = f["eta"].astype(np.float64) - eta[t]
    dphi = _wrap(f["phi"].astype(np.float64) - phi[t])
    sig = f["tauSignal"] == 1
    charged = f["charge"] != 0
    ptype = f["particleType"]
    terms: dict[str, np.ndarray] = {}

    # multiplicities: leading-track type, signal photons, isolation counts, e/μ objects
    lead = f["tauLeadChargedHadrCand"] == 1
    lead_type = np.ones(n, dtype=np.int64)
    lead_type[t[lead]] = ptype[lead]
    s_ch = sig & charged
    s_ph = sig & (ptype == 4)
    n_ch = np.bincount(t[s_ch], minlength=n).astype(np.float64)
    n_ph = np.bincount(t[s_ph], minlength=n).astype(np.float64)
    iso_masks = (~sig & charged & (f["fromPV"] >= 2), ~sig & (ptype == 4), ~sig & (ptype == 5))
    iso_totals = np.stack([np.bincount(t[m], minlength=n) for m in iso_masks], axis=1)
    terms.update(count_terms(pt, dm, n_ph, lead_type, iso_totals, ele.counts, mu.counts, params))

    # Dirichlet shares of the signal pT
    tot = np.bincount(t[sig], cpt[sig], n)
    logw = np.log(cpt / tot[t])
    S_ch = np.bincount(t[s_ch], logw[s_ch], n)[:, None]
    S_ph = np.bincount(t[s_ph], logw[s_ph], n)[:, None]
    a_ch, a_ph = params["alpha_ch"][None, :], params["alpha_ph"][None, :]
    nc, nphot = n_ch[:, None], n_ph[:, None]
    terms["sig_shares"] = (special.gammaln(nc * a_ch + nphot * a_ph)
                           - nc * special.gammaln(a_ch) - nphot * special.gammaln(a_ph)
                           + (a_ch - 1.0) * S_ch + (a_ph - 1.0) * S_ph)

    # Gaussian positions of the signal candidates (sums of squares per tau, then per class)
    r_t = rsig[t]
    q_ch = np.bincount(t[s_ch], ((deta * deta + dphi * dphi) / (r_t * r_t))[s_ch], n)[:, None]
    q_pe = np.bincount(t[s_ph], (deta * deta / (r_t * r_t))[s_ph], n)[:, None]
    q_pp = np.bincount(t[s_ph], (dphi * dphi / (r_t * r_t))[s_ph], n)[:, None]
    log_r = np.log(rsig)[:, None]
    sc, se, sp = (params["spread_ch"][None, :], params["spread_ph_eta"][None, :],
                  params["spread_ph_phi"][None, :])
    terms["sig_positions"] = (-0.5 * q_ch / (sc * sc) - 2.0 * nc * (np.log(sc) + log_r)
                              - 0.5 * q_pe / (se * se) - nphot * (np.log(se) + log_r)
                              - 0.5 * q_pp / (sp * sp) - nphot * (np.log(sp) + log_r)
                              - (nc + nphot) * np.log(_TWO_PI))

    # isolation groups: Poisson-process densities
    r = np.sqrt(deta * deta + dphi * dphi)
    soft_all, frag_all = _iso_means(slice(None), pt, params)
    for g, (name, mask) in enumerate(zip(("ch", "ph", "nh"), iso_masks, strict=True)):
        ti = t[mask]
        mu_s = soft_all[:1, :, g]
        mu_f = frag_all[:, :, g]
        lam_tot = mu_s + mu_f
        k = iso_totals[:, g].astype(np.float64)[:, None]
        x = cpt[mask] - _SOFT_THR[g]
        r0 = rsig[ti]
        rr = r[mask]
        log_fs = (-np.log(_SOFT_MEAN[g]) - x / _SOFT_MEAN[g]
                  - np.log(np.pi * (R_ISO * R_ISO - r0 * r0)))
        xi = _FRAG_XI[g] * pt[ti]
        u = (rr - r0) / (R_ISO - r0)
        log_ff = (-np.log(xi) - x / xi + beta_logpdf(u, *_FRAG_BETA) - np.log(R_ISO - r0)
                  - np.log(_TWO_PI * np.maximum(rr, 1e-9)))
        log_lam = np.logaddexp(np.log(mu_s) + log_fs[:, None],
                               np.log(mu_f[ti]) + log_ff[:, None])
        terms[f"iso_{name}_shape"] = _per_tau(ti, log_lam, n) - k * np.log(lam_tot)

    terms.update(_ele_terms(tau, ele, params))
    terms.update(_mu_terms(tau, mu, params))
    return terms


def _ratio_beta(ratio: np.ndarray, a: float, b: float) -> np.ndarray:
    # Beta density of a pT ratio confined to (0, 1); zero density (log -inf) above 1
    with np.errstate(divide="ignore"):
        return np.where(ratio < 1.0, beta_logpdf(np.minimum(ratio, 1.0), a, b), -np.inf)


def _presence_term(counts: np.ndarray, prob: np.ndarray) -> np.ndarray:
    has = counts[:, None] > 0
    return np.where(has, np.log(prob)[None, :], np.log1p(-prob)[None, :])


def _mixture_term(n: int, sel: np.ndarray, log_gen: np.ndarray, log_fake: np.ndarray,
                  w: np.ndarray) -> np.ndarray:
    out = np.zeros((n, 4))
    with np.errstate(divide="ignore"):
        out[sel] = np.logaddexp(np.log(w)[None, :] + log_gen[:, None],
                                np.log1p(-w)[None, :] + log_fake[:, None])
    return out


def _ele_terms(tau: Mapping[str, np.ndarray], ele: Jagged, params: Params
               ) -> dict[str, np.ndarray]:
    n = tau["pt"].size
    sel = np.flatnonzero(ele.counts)
    f = ele.fields
    ratio = f["pt"].astype(np.float64) / tau["pt"][sel]
    deta = f["eta"].astype(np.float64) - tau["eta"][sel]
    dphi = _wrap(f["phi"].astype(np.float64) - tau["phi"][sel])
    eop = f["eSuperClusterOverP"].astype(np.float64)
    chi2 = f["gsfTrack_normalizedChi2"].astype(np.float64)
    g, fk = _ELE_GEN, _ELE_FAKE
    log_gen = (lognormal_logpdf(ratio, 0.0, g["ratio_s"]) + normal_logpdf(deta, 0.0, g["pos"])
               + normal_logpdf(dphi, 0.0, g["pos"]) + lognormal_logpdf(eop, g["eop_m"], g["eop_s"])
               + lognormal_logpdf(chi2, g["chi2_m"], g["chi2_s"]))
    log_fake = (_ratio_beta(ratio, fk["ratio_a"], fk["ratio_b"])
                + normal_logpdf(deta, 0.0, fk["pos"]) + normal_logpdf(dphi, 0.0, fk["pos"])
                + lognormal_logpdf(eop, fk["eop_m"], fk["eop_s"])
                + lognormal_logpdf(chi2, fk["chi2_m"], fk["chi2_s"]))
    # both are densities of the pT *ratio*; the common Jacobian 1/tau_pt is omitted
    return {"ele_features": _mixture_term(n, sel, log_gen, log_fake, params["ele_genuine"])}


def _mu_terms(tau: Mapping[str, np.ndarray], mu: Jagged, params: Params
              ) -> dict[str, np.ndarray]:
    n = tau["pt"].size
    sel = np.flatnonzero(mu.counts)
    f = mu.fields
    ratio = f["pt"].astype(np.float64) / tau["pt"][sel]
    deta = f["eta"].astype(np.float64) - tau["eta"][sel]
    dphi = _wrap(f["phi"].astype(np.float64) - tau["phi"][sel])
    matched = np.stack([(f[f"n_matches_DT_{s}"] + f[f"n_matches_CSC_{s}"]) > 0
                        for s in range(1, 5)], axis=1)
    k = matched.sum(axis=1)
    seg = f["segmentCompatibility"].astype(np.float64)
    calo = f["caloCompatibility"].astype(np.float64)
    chi2 = f["normalizedChi2"].astype(np.float64)
    g, fk = _MU_GEN, _MU_FAKE

    def stations(p: float) -> np.ndarray:
        return k * np.log(p) + (4 - k) * np.log1p(-p)

    log_gen = (lognormal_logpdf(ratio, 0.0, g["ratio_s"]) + normal_logpdf(deta, 0.0, g["pos"])
               + normal_logpdf(dphi, 0.0, g["pos"]) + stations(g["p_station"])
               + beta_logpdf(seg, *g["seg"]) + beta_logpdf(calo, *g["calo"])
               + lognormal_logpdf(chi2, g["chi2_m"], g["chi2_s"]))
    log_fake = (_ratio_beta(ratio, fk["ratio_a"], fk["ratio_b"])
                + normal_logpdf(deta, 0.0, fk["pos"]) + normal_logpdf(dphi, 0.0, fk["pos"])
                + stations(fk["p_station"])
                + beta_logpdf(seg, *fk["seg"]) + beta_logpdf(calo, *fk["calo"])
                + lognormal_logpdf(chi2, fk["chi2_m"], fk["chi2_s"]))
    return {"mu_features": _mixture_term(n, sel, log_gen, log_fake, params["mu_genuine"])}


# --------------------------------------------------------------------------------------------
# tau-level summaries of the lists


def candidate_summaries(tau: Mapping[str, np.ndarray], pf: Jagged) -> dict[str, np.ndarray]:
    """Isolation sums, photon counts and pT-weighted widths computed from the stored lists.

    These TauTuple tau features are deterministic functions of the candidate lists, so they add
    nothing to the likelihood beyond the lists themselves. Conventions (toy): all sums use the
    0.5 cone; ``puCorrPtSum`` sums the charged pile-up candidates (``fromPV`` < 2);
    ``footprintCorrection`` sums the neutral isolation candidates within ΔR < 0.15.
    """
    n = tau["pt"].size
    f = pf.fields
    t = pf.tau_index
    pt = f["pt"].astype(np.float64)
    deta = f["eta"].astype(np.float64) - tau["eta"][t]
    dphi = _wrap(f["phi"].astype(np.float64) - tau["phi"][t])
    dr = np.sqrt(deta * deta + dphi * dphi)
    sig = f["tauSignal"] == 1
    charged = f["charge"] != 0
    ptype = f["particleType"]
    iso_ch = ~sig & charged & (f["fromPV"] >= 2)
    iso_ph = ~sig & (ptype == 4)
    iso_nh = ~sig & (ptype == 5)
    pu = ~sig & charged & (f["fromPV"] < 2)
    sig_ph = sig & (ptype == 4)
    r03 = dr < 0.3
    puppi = f["puppiWeight"].astype(np.float64)

    def s(mask: np.ndarray, w: np.ndarray = pt) -> np.ndarray:
        return np.bincount(t[mask], w[mask], n)

    out = {
        "tau_chargedIsoPtSum": s(iso_ch),
        "tau_chargedIsoPtSumdR03": s(iso_ch & r03),
        "tau_neutralIsoPtSum": s(iso_ph),
        "tau_neutralIsoPtSumdR03": s(iso_ph & r03),
        "tau_neutralIsoPtSumWeight": s(iso_ph, pt * puppi),
        "tau_neutralIsoPtSumWeightdR03": s(iso_ph & r03, pt * puppi),
        "tau_puCorrPtSum": s(pu),
        "tau_footprintCorrection": s((iso_ph | iso_nh) & (dr < 0.15)),
        "tau_photonPtSumOutsideSignalCone": s(sig_ph & (dr > signal_cone(tau["pt"])[t])),
    }
    sum_ph = s(sig_ph)
    sum_sig = s(sig)
    iso_any = iso_ch | iso_ph
    sum_iso = s(iso_any)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["tau_pt_weighted_deta_strip"] = np.where(sum_ph > 0, s(sig_ph, pt * np.abs(deta))
                                                     / sum_ph, 0.0)
        out["tau_pt_weighted_dphi_strip"] = np.where(sum_ph > 0, s(sig_ph, pt * np.abs(dphi))
                                                     / sum_ph, 0.0)
        out["tau_pt_weighted_dr_signal"] = np.where(sum_sig > 0, s(sig, pt * dr) / sum_sig, 0.0)
        out["tau_pt_weighted_dr_iso"] = np.where(sum_iso > 0, s(iso_any, pt * dr) / sum_iso, 0.0)
    res = {k: v.astype(np.float32) for k, v in out.items()}
    res["tau_n_photons"] = np.bincount(t[sig_ph], minlength=n).astype(np.int32)
    return res
