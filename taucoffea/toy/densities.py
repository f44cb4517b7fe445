"""Class-conditional densities of the tau-level toy features, with exact log-likelihoods.

Every class-dependent tau-level feature is drawn from an explicit density conditioned on the
class and on (pT, |η|, decay mode); :func:`scalar_loglik_terms` evaluates the same densities on
the *stored* (float32) values for all four classes at once, so the Bayes-optimal discriminant of
the toy is known exactly. Features whose distribution does not depend on the class
(``tau_charge``, the IP errors, …) are drawn too but omitted from the log-likelihood: they
add the same term to every class and cancel in every likelihood ratio.

Parameters live in one ``dict[str, np.ndarray]`` (:data:`MC_PARAMS`) whose arrays are indexed by
class (e, μ, τ, jet) in the first axis; data samples are drawn from :func:`shifted_params`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import special

from taucoffea.toy.datasets import TAU, DataMCShift

__all__ = [
    "DECAY_MODES",
    "MC_PARAMS",
    "PION_MASS",
    "Params",
    "beta_logpdf",
    "lognormal_logpdf",
    "normal_logpdf",
    "poisson_logpmf",
    "sample_scalars",
    "scalar_loglik_terms",
    "shifted_params",
]

Params = Mapping[str, np.ndarray]

DECAY_MODES = np.array([0, 1, 2, 5, 6, 10, 11], dtype=np.int32)
PION_MASS = 0.13957
_LOG2PI = float(np.log(2 * np.pi))

# --------------------------------------------------------------------------------------------
# log densities (broadcasting, float64)


def normal_logpdf(x: np.ndarray, mu: np.ndarray | float, sigma: np.ndarray | float) -> np.ndarray:
    """log N(x; μ, σ)."""
    z = (x - mu) / sigma
    return -0.5 * z * z - np.log(sigma) - 0.5 * _LOG2PI


def lognormal_logpdf(x: np.ndarray, mu: np.ndarray | float, sigma: np.ndarray | float
                     ) -> np.ndarray:
    """log of the log-normal density (μ, σ of log x)."""
    lx = np.log(x)
    return normal_logpdf(lx, mu, sigma) - lx


def beta_logpdf(x: np.ndarray, a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    """log Beta(x; a, b); x is clamped into the open interval so float32 rounding to 0 or 1
    (possible for very peaked densities) cannot produce -inf."""
    x = np.clip(x, 1e-12, 1.0 - 1e-7)
    return (a - 1.0) * np.log(x) + (b - 1.0) * np.log1p(-x) - special.betaln(a, b)


def poisson_logpmf(n: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """log Poisson(n; μ)."""
    return n * np.log(mu) - mu - special.gammaln(n + 1.0)


def _log_erfcx(z: np.ndarray) -> np.ndarray:
    # log(erfcx(z)) without overflow for large negative z: erfcx(z) = e^{z²}(2 - erfc(-z))
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = np.log(special.erfcx(z[pos]))
    zn = z[~pos]
    out[~pos] = zn * zn + np.log(2.0 - special.erfc(-zn))
    return out


def laplace_normal_logpdf(s: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log density of N(0,1) + Laplace(0, b): an impact-parameter significance with lifetime.

    Closed form: f(s) = e^{-s²/2}/(4b)·[erfcx((1/b - s)/√2) + erfcx((1/b + s)/√2)].
    """
    s, b = np.broadcast_arrays(s, b)
    z1 = ((1.0 / b) - s) / np.sqrt(2.0)
    z2 = ((1.0 / b) + s) / np.sqrt(2.0)
    return -0.5 * s * s - np.log(4.0 * b) + np.logaddexp(_log_erfcx(z1), _log_erfcx(z2))


# --------------------------------------------------------------------------------------------
# parameters (rows: e, μ, τ, jet)


def _a(*rows: object) -> np.ndarray:
    return np.array(rows, dtype=float)


MC_PARAMS: dict[str, np.ndarray] = {
    # P(decay mode) over DECAY_MODES = 0, 1, 2, 5, 6, 10, 11
    "dm_probs": _a([0.35, 0.50, 0.06, 0.02, 0.01, 0.04, 0.02],
                   [0.75, 0.17, 0.02, 0.01, 0.01, 0.03, 0.01],
                   [0.22, 0.45, 0.08, 0.02, 0.02, 0.17, 0.04],
                   [0.18, 0.22, 0.06, 0.07, 0.07, 0.28, 0.12]),
    # visible mass: Beta(mean·κ, (1-mean)·κ) on the HPS-like window of the DM group
    # (groups: DM 1/2, DM 5/6, DM 10/11; DM 0 has the pion mass)
    "mass_mean": _a([0.20, 0.30, 0.35], [0.15, 0.30, 0.35], [0.44, 0.45, 0.50],
                    [0.45, 0.50, 0.55]),
    "mass_kappa": _a([6.0, 4.0, 4.0], [5.0, 4.0, 4.0], [10.0, 6.0, 9.0], [3.0, 3.0, 3.5]),
    # dxy/σ = N(0,1) ⊗ Laplace(b); b = b0 + b1·log(pT/20); jets: mixture light/heavy flavour
    "dxy_b0": _a(0.20, 0.15, 1.0, 0.25),
    "dxy_b1": _a(0.0, 0.0, 0.4, 0.0),
    "dxy_hf_frac": _a(0.0, 0.0, 0.0, 0.08),
    "dxy_hf_b": _a(1.0, 1.0, 1.0, 2.0),
    # dz: (1-π)·N(0, σ_dz) + π·N(0, 4 cm) (tau from a pile-up vertex)
    "dz_pu_frac": _a(0.003, 0.002, 0.005, 0.03),
    # flight-length significance (3-prongs): N(m0 + m1·log(pT/20), s); jets: + heavy flavour
    "fl_m0": _a(0.0, 0.0, 1.5, 0.1),
    "fl_m1": _a(0.0, 0.0, 0.5, 0.0),
    "fl_s": _a(1.0, 1.0, 1.2, 1.0),
    "fl_hf_frac": _a(0.0, 0.0, 0.0, 0.10),
    "fl_hf_m": _a(2.0, 2.0, 2.0, 2.0),
    "fl_hf_s": _a(1.4, 1.4, 1.4, 1.4),
    # Gottfried-Jackson angle difference (3-prongs): Exponential(scale)
    "gj_scale": _a(0.03, 0.03, 0.01, 0.035),
    # leading-track χ²/ndof: LogNormal(log m, s)
    "chi2_m": _a(1.4, 0.8, 0.9, 1.0),
    "chi2_s": _a(0.55, 0.35, 0.45, 0.5),
    # e_ratio: Beta(a, b)
    "eratio_a": _a(4.0, 1.2, 2.0, 2.2),
    "eratio_b": _a(2.0, 5.0, 2.5, 2.2),
    # emFraction: Beta(mean·κ, (1-mean)·κ) by (no π0, with π0)
    "em_mean": _a([0.55, 0.70], [0.05, 0.15], [0.10, 0.45], [0.25, 0.45]),
    "em_kappa": _a([4.0, 4.0], [6.0, 5.0], [8.0, 6.0], [3.0, 3.0]),
}

_MASS_WINDOWS = np.array([[0.2, 1.5], [0.3, 1.6], [0.7, 1.6]])


def shifted_params(params: Params, shift: DataMCShift) -> dict[str, np.ndarray]:
    """The scalar-feature parameters with the data/MC shift applied (for drawing data)."""
    out = {k: np.array(v, copy=True) for k, v in params.items()}
    out["dxy_b0"][TAU] *= shift.tau_dxy_lifetime_scale
    out["dxy_b1"][TAU] *= shift.tau_dxy_lifetime_scale
    out["em_mean"][TAU] = np.clip(out["em_mean"][TAU] + shift.tau_em_fraction_shift, 0.01, 0.99)
    return out


def _mass_group(dm: np.ndarray) -> np.ndarray:
    """0: DM 1/2, 1: DM 5/6, 2: DM 10/11, -1: DM 0 (fixed pion mass)."""
    g = np.full(dm.shape, -1, dtype=np.int64)
    g[(dm == 1) | (dm == 2)] = 0
    g[(dm == 5) | (dm == 6)] = 1
    g[dm >= 10] = 2
    return g


def _logpt(pt: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(pt, 20.0) / 20.0)


def dxy_error_model(pt: np.ndarray) -> np.ndarray:
    """Median transverse IP resolution (cm) of the leading track, shared by all classes."""
    return 0.0012 + 0.025 / pt


def dz_error_model(pt: np.ndarray) -> np.ndarray:
    """Median longitudinal IP resolution (cm), shared by all classes."""
    return 0.002 + 0.05 / pt


# --------------------------------------------------------------------------------------------
# sampling


def _f32(x: np.ndarray) -> np.ndarray:
    # all continuous features are stored as float32; likelihoods are evaluated on these values
    return np.asarray(x, dtype=np.float32)


def sample_scalars(rng: np.random.Generator, cls: np.ndarray, pt: np.ndarray, eta: np.ndarray,
                   phi: np.ndarray, params: Params) -> dict[str, np.ndarray]:
    """Draw the tau-level features of ``len(cls)`` taus given class and (pT, η, φ).

    Returns TauTuple-named columns with their storage dtypes. Isolation sums, ``n_photons`` and
    the ``pt_weighted_*`` variables are not drawn here: they are computed from the PF candidates.
    """
    n = cls.size
    L = _logpt(pt)
    out: dict[str, np.ndarray] = {}

    # decay mode: inverse-CDF per row from the class's probabilities
    cdf = np.cumsum(params["dm_probs"], axis=1)[cls]
    k = (rng.random(n)[:, None] > cdf).sum(axis=1)
    dm = DECAY_MODES[np.minimum(k, DECAY_MODES.size - 1)]
    out["tau_decayMode"] = dm.astype(np.int32)
    out["tau_charge"] = np.where(rng.random(n) < 0.5, -1, 1).astype(np.int32)

    # mass on the DM-group window
    g = _mass_group(dm)
    gi = np.maximum(g, 0)
    mean = params["mass_mean"][cls, gi]
    kappa = params["mass_kappa"][cls, gi]
    lo, hi = _MASS_WINDOWS[gi, 0], _MASS_WINDOWS[gi, 1]
    mass = lo + (hi - lo) * rng.beta(mean * kappa, (1.0 - mean) * kappa)
    out["tau_mass"] = _f32(np.where(g < 0, PION_MASS, mass))

    # transverse IP: significance with a lifetime (Laplace) component, class-blind resolution
    err = dxy_error_model(pt) * np.exp(0.2 * rng.standard_normal(n))
    b = params["dxy_b0"][cls] + params["dxy_b1"][cls] * L
    hf = rng.random(n) < params["dxy_hf_frac"][cls]
    b = np.where(hf, params["dxy_hf_b"][cls], b)
    sig = rng.standard_normal(n) + rng.laplace(0.0, b)
    err32 = _f32(err)
    out["tau_dxy_error"] = err32
    out["tau_dxy"] = _f32(sig * err32)
    # 3D IP: the transverse one inflated by a class-blind geometric factor
    geo = 1.0 + np.abs(0.3 * rng.standard_normal(n)) * np.tanh(np.abs(eta))
    out["tau_ip3d"] = _f32(out["tau_dxy"] * geo)
    out["tau_ip3d_error"] = _f32(err32 * geo * (1.0 + 0.05 * np.abs(rng.standard_normal(n))))

    # longitudinal IP
    dz_err = _f32(dz_error_model(pt) * np.exp(0.25 * rng.standard_normal(n)))
    pu = rng.random(n) < params["dz_pu_frac"][cls]
    out["tau_dz_error"] = dz_err
    out["tau_dz"] = _f32(np.where(pu, 4.0 * rng.standard_normal(n),
                                  dz_err * rng.standard_normal(n)))

    # secondary vertex / flight length for 3-prongs
    three = dm >= 10
    fl_hf = rng.random(n) < params["fl_hf_frac"][cls]
    fl_mu = np.where(fl_hf, params["fl_hf_m"][cls], params["fl_m0"][cls] + params["fl_m1"][cls] * L)
    fl_s = np.where(fl_hf, params["fl_hf_s"][cls], params["fl_s"][cls])
    fl_sig = _f32(np.where(three, fl_mu + fl_s * rng.standard_normal(n), 0.0))
    fl_err = 0.02 * np.exp(0.3 * rng.standard_normal(n))
    fl_len = fl_sig.astype(np.float64) * fl_err
    cosh = np.cosh(eta)
    out["tau_hasSecondaryVertex"] = three.astype(np.int32)
    out["tau_flightLength_sig"] = fl_sig
    out["tau_flightLength_x"] = _f32(fl_len * np.cos(phi) / cosh)
    out["tau_flightLength_y"] = _f32(fl_len * np.sin(phi) / cosh)
    out["tau_flightLength_z"] = _f32(fl_len * np.sinh(eta) / cosh)
    out["tau_gj_angle_diff"] = _f32(np.where(three, rng.exponential(params["gj_scale"][cls]),
                                             -1.0))

    out["tau_leadingTrackNormChi2"] = _f32(np.exp(np.log(params["chi2_m"][cls])
                                                  + params["chi2_s"][cls]
                                                  * rng.standard_normal(n)))
    out["tau_e_ratio"] = _f32(rng.beta(params["eratio_a"][cls], params["eratio_b"][cls]))
    pi0 = (dm % 5 > 0).astype(np.int64)
    em_m = params["em_mean"][cls, pi0]
    em_k = params["em_kappa"][cls, pi0]
    out["tau_emFraction"] = _f32(rng.beta(em_m * em_k, (1.0 - em_m) * em_k))
    out["tau_leadChargedCand_etaAtEcalEntrance"] = _f32(eta + 0.01 * rng.standard_normal(n))
    return out


# --------------------------------------------------------------------------------------------
# log-likelihoods from stored columns


def scalar_loglik_terms(cols: Mapping[str, np.ndarray], params: Params = MC_PARAMS
                        ) -> dict[str, np.ndarray]:
    """Per-term log p(feature | class, pT, |η|, DM) for all four classes, shape (n, 4) each.

    Evaluated only on stored columns, so nothing latent leaks into the "truth". Terms:
    ``dm``, ``mass``, ``dxy``, ``dz``, ``flight``, ``gj``, ``chi2``, ``e_ratio``,
    ``em_fraction``.
    """
    pt = np.asarray(cols["tau_pt"], dtype=np.float64)
    L = _logpt(pt)[:, None]
    dm = np.asarray(cols["tau_decayMode"], dtype=np.int64)
    terms: dict[str, np.ndarray] = {}

    dm_index = np.searchsorted(DECAY_MODES, dm)
    dm_index = np.clip(dm_index, 0, DECAY_MODES.size - 1)
    terms["dm"] = np.log(params["dm_probs"][:, dm_index].T)

    g = _mass_group(dm)
    gi = np.maximum(g, 0)
    lo, hi = _MASS_WINDOWS[gi, 0][:, None], _MASS_WINDOWS[gi, 1][:, None]
    m = np.asarray(cols["tau_mass"], dtype=np.float64)[:, None]
    mean = params["mass_mean"][:, gi].T
    kappa = params["mass_kappa"][:, gi].T
    lp = beta_logpdf((m - lo) / (hi - lo), mean * kappa, (1.0 - mean) * kappa) - np.log(hi - lo)
    terms["mass"] = np.where(g[:, None] < 0, 0.0, lp)

    s = (np.asarray(cols["tau_dxy"], dtype=np.float64)
         / np.asarray(cols["tau_dxy_error"], dtype=np.float64))[:, None]
    b = params["dxy_b0"][None, :] + params["dxy_b1"][None, :] * L
    hf = params["dxy_hf_frac"][None, :]
    lp_light = laplace_normal_logpdf(s, b)
    lp_heavy = laplace_normal_logpdf(s, np.broadcast_to(params["dxy_hf_b"][None, :], b.shape))
    with np.errstate(divide="ignore"):
        terms["dxy"] = np.logaddexp(np.log1p(-hf) + lp_light, np.log(hf) + lp_heavy)

    dz = np.asarray(cols["tau_dz"], dtype=np.float64)[:, None]
    dz_err = np.asarray(cols["tau_dz_error"], dtype=np.float64)[:, None]
    pu = params["dz_pu_frac"][None, :]
    terms["dz"] = np.logaddexp(np.log1p(-pu) + normal_logpdf(dz, 0.0, dz_err),
                               np.log(pu) + normal_logpdf(dz, 0.0, 4.0))

    three = (dm >= 10)[:, None]
    fs = np.asarray(cols["tau_flightLength_sig"], dtype=np.float64)[:, None]
    core = normal_logpdf(fs, params["fl_m0"][None, :] + params["fl_m1"][None, :] * L,
                         params["fl_s"][None, :])
    heavy = normal_logpdf(fs, params["fl_hf_m"][None, :], params["fl_hf_s"][None, :])
    fhf = params["fl_hf_frac"][None, :]
    with np.errstate(divide="ignore"):
        fl = np.logaddexp(np.log1p(-fhf) + core, np.log(fhf) + heavy)
    terms["flight"] = np.where(three, fl, 0.0)

    gj = np.asarray(cols["tau_gj_angle_diff"], dtype=np.float64)[:, None]
    scale = params["gj_scale"][None, :]
    terms["gj"] = np.where(three, -np.log(scale) - np.maximum(gj, 0.0) / scale, 0.0)

    chi2 = np.asarray(cols["tau_leadingTrackNormChi2"], dtype=np.float64)[:, None]
    terms["chi2"] = lognormal_logpdf(chi2, np.log(params["chi2_m"])[None, :],
                                     params["chi2_s"][None, :])

    er = np.asarray(cols["tau_e_ratio"], dtype=np.float64)[:, None]
    terms["e_ratio"] = beta_logpdf(er, params["eratio_a"][None, :], params["eratio_b"][None, :])

    pi0 = (dm % 5 > 0).astype(np.int64)
    em = np.asarray(cols["tau_emFraction"], dtype=np.float64)[:, None]
    em_m = params["em_mean"][:, pi0].T
    em_k = params["em_kappa"][:, pi0].T
    terms["em_fraction"] = beta_logpdf(em, em_m * em_k, (1.0 - em_m) * em_k)
    return terms

