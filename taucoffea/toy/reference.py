"""DeepTau-like reference scores: a deliberately degraded version of the Bayes discriminant.

The toy's ``tau_byDeepTau2017v2p1VS{e,mu,jet}raw`` must be decent but clearly sub-optimal, so a
trained model has room above it while the Bayes limit bounds it from the other side. The
degraded model keeps only part of the information:

* the tau-level terms except ``dz``,
* of the candidate lists only coarse summaries: the leading-track particle type, the
  isolation *counts* (not their pT or positions), whether an electron / muon object is present;
  it ignores the signal-cone pT sharing and geometry, the photon count, and every
  electron/muon feature,

then tempers and smears the resulting log-likelihood ratio with class-blind Gaussian noise
(so the score carries no information beyond the stored features) and maps it to (0, 1):
``raw = sigmoid(scale·LLR_deg + offset + σ·ε)``. Scale and offset per vs-type were tuned so the
genuine-τ efficiencies at the v2p1 thresholds resemble the published WP targets (docs/toy.md).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from taucoffea.physics.working_points import REFERENCE_THRESHOLDS, wp_bitmask
from taucoffea.toy.datasets import E, JET, MU, TAU

__all__ = ["DEGRADED_TERMS", "REFERENCE_CALIBRATION", "reference_scores"]

#: Log-likelihood terms the degraded (DeepTau-like) model uses.
DEGRADED_TERMS: tuple[str, ...] = (
    "dm", "mass", "dxy", "flight", "gj", "chi2", "e_ratio", "em_fraction",
    "lead_type", "iso_ch_count", "iso_ph_count", "iso_nh_count", "ele_presence", "mu_presence",
)

#: (scale, offset, smearing σ) of the degraded LLR per vs-type.
REFERENCE_CALIBRATION: dict[str, tuple[float, float, float]] = {
    "e": (1.05, 0.57, 1.0),
    "mu": (1.35, 2.88, 1.0),
    "jet": (0.74, 0.0, 0.8),
}

_VS_CLASS = {"e": E, "mu": MU, "jet": JET}


def reference_scores(rng: np.random.Generator, terms: Mapping[str, np.ndarray]
                     ) -> dict[str, np.ndarray]:
    """``tau_byDeepTau2017v2p1VS{e,mu,jet}raw`` (float32) and their uint16 WP bitmasks."""
    deg = sum(terms[name] for name in DEGRADED_TERMS)
    n = deg.shape[0]
    out: dict[str, np.ndarray] = {}
    noise = rng.standard_normal((n, 3))
    thresholds = REFERENCE_THRESHOLDS["DeepTau2017v2p1"]
    for j, (vs, cls) in enumerate(_VS_CLASS.items()):
        scale, offset, sigma = REFERENCE_CALIBRATION[vs]
        z = scale * (deg[:, TAU] - deg[:, cls]) + offset + sigma * noise[:, j]
        raw = (0.5 * (1.0 + np.tanh(0.5 * z))).astype(np.float32)
        out[f"tau_byDeepTau2017v2p1VS{vs}raw"] = raw
        out[f"tau_byDeepTau2017v2p1VS{vs}"] = wp_bitmask(raw, thresholds[vs])
    return out
