"""DeepTau working points: names, bit layout of the TauTuple WP bitmasks, reference thresholds.

TauTuple WP branches (``tau_byDeepTau2017v2p1VSjet`` …) are ``uint16`` bitmasks whose bit
index is the ``DiscriminatorWP`` enum value (VVVLoose=0 … VVVTight=8), whatever the vs-type,
so a VSmu bitmask uses bits 2–5. NanoAOD counts its bits from the loosest WP of each vs-type
instead; :func:`nanoaod_id_to_tautuple_bitmask` converts.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Literal

import awkward as ak
import numpy as np

from taucoffea.errors import ConfigError, InputError

__all__ = [
    "REFERENCE_THRESHOLDS",
    "WP_BITS",
    "WP_NAMES_VS",
    "DiscriminatorWP",
    "nanoaod_id_to_tautuple_bitmask",
    "passes_wp",
    "wp_bitmask",
]


class DiscriminatorWP(enum.IntEnum):
    """``DiscriminatorWP`` of ``AnalysisTypes.h``; the value is the bit index in a WP bitmask."""

    VVVLoose = 0
    VVLoose = 1
    VLoose = 2
    Loose = 3
    Medium = 4
    Tight = 5
    VTight = 6
    VVTight = 7
    VVVTight = 8


#: WP name -> bit index in a TauTuple WP bitmask.
WP_BITS: dict[str, int] = {wp.name: int(wp) for wp in DiscriminatorWP}

#: The DeepTau WPs defined for each vs-type, loosest first.
WP_NAMES_VS: dict[str, tuple[str, ...]] = {
    "e": ("VVVLoose", "VVLoose", "VLoose", "Loose", "Medium", "Tight", "VTight", "VVTight"),
    "mu": ("VLoose", "Loose", "Medium", "Tight"),
    "jet": ("VVVLoose", "VVLoose", "VLoose", "Loose", "Medium", "Tight", "VTight", "VVTight"),
}


def _thresholds(vs: str, values: tuple[float, ...]) -> dict[str, float]:
    return dict(zip(WP_NAMES_VS[vs], values, strict=True))


#: Raw-score thresholds stated in TauMLTools (reference spec §8.5); a WP passes if score > thr.
REFERENCE_THRESHOLDS: dict[str, dict[str, dict[str, float]]] = {
    "DeepTau2017v2p1": {
        "e": _thresholds("e", (0.0630386, 0.1686942, 0.3628130, 0.681543, 0.8847544, 0.9675541,
                               0.9859251, 0.9928449)),
        "mu": _thresholds("mu", (0.1058354, 0.2158633, 0.5551894, 0.8754835)),
        "jet": _thresholds("jet", (0.2599605, 0.4249705, 0.5983682, 0.7848675, 0.8834768,
                                   0.930868, 0.9573137, 0.9733927)),
    },
    "DeepTau2018v2p5": {
        "e": _thresholds("e", (0.099, 0.2384, 0.4136, 0.688, 0.8704, 0.9669, 0.9882, 0.9951)),
        "mu": _thresholds("mu", (0.2949, 0.4746, 0.7454, 0.9172)),
        "jet": _thresholds("jet", (0.4083, 0.6285, 0.8052, 0.9233, 0.9632, 0.9799, 0.9884,
                                   0.9931)),
    },
}


def _wp_bit(wp_name: str) -> int:
    try:
        return WP_BITS[wp_name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown working point {wp_name!r}; allowed names are {', '.join(WP_BITS)}"
        ) from None


def _vs_wps(vs: str) -> tuple[str, ...]:
    try:
        return WP_NAMES_VS[vs]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown vs-type {vs!r}; allowed are {', '.join(WP_NAMES_VS)}"
        ) from None


def _numpy(x: Any) -> np.ndarray:
    return ak.to_numpy(x) if isinstance(x, ak.Array) else np.asarray(x)


def wp_bitmask(raw_scores: Any, thresholds: Mapping[str, float]) -> np.ndarray:
    """TauTuple-style ``uint16`` WP bitmask: the bit of each WP is set where score > threshold.

    ``thresholds`` maps WP names to raw-score cuts, e.g. ``REFERENCE_THRESHOLDS[...]["jet"]``.
    Thresholds need not be ordered, so the result is not necessarily cumulative; NaN scores
    pass no WP.
    """
    scores = _numpy(raw_scores)
    out = np.zeros(scores.shape, dtype=np.uint16)
    with np.errstate(invalid="ignore"):
        for wp_name, threshold in thresholds.items():
            bit = _wp_bit(wp_name)
            out |= (scores > float(threshold)).astype(np.uint16) << np.uint16(bit)
    return out


def passes_wp(bitmask: Any, wp_name: str) -> np.ndarray:
    """Boolean array: whether the bit of WP ``wp_name`` is set in a TauTuple WP bitmask."""
    bit = _wp_bit(wp_name)
    mask = _numpy(bitmask).astype(np.int64)
    return ((mask >> bit) & 1).astype(bool)


def nanoaod_id_to_tautuple_bitmask(
    nano_id: Any, vs: str, *, encoding: Literal["bitmask", "index"] = "bitmask"
) -> np.ndarray:
    """Convert a NanoAOD DeepTau ID column to the TauTuple bitmask convention (``uint16``).

    ``encoding="bitmask"`` (NanoAOD up to v11, e.g. ``Tau_idDeepTau2017v2p1VSjet``): bit k
    means "passes the k-th WP of this vs-type counting from its loosest", so values are
    cumulative (1, 3, 7, … 255). TauTuple bits are ``DiscriminatorWP`` values, hence the bits
    are shifted by the loosest WP's enum value: for VSe/VSjet (VVVLoose first) nothing moves,
    for VSmu (VLoose first) nano bit 0 becomes bit 2, nano 15 becomes 60.

    ``encoding="index"`` (NanoAOD v12+ stores the 1-based index of the tightest passed WP, 0
    for none): index k becomes the cumulative mask of the first k WPs, then shifted the same way.

    Values that cannot come from the chosen encoding (a non-cumulative bitmask, a bit beyond
    the vs-type's WPs, an index above their count, negative values) raise :class:`InputError`
    rather than giving a silently wrong mask — typically the sign of a file written with the
    other encoding.
    """
    wps = _vs_wps(vs)
    n_wps = len(wps)
    offset = WP_BITS[wps[0]]
    values = _numpy(nano_id).astype(np.int64)
    if encoding == "bitmask":
        # WPs are nested, so a genuine NanoAOD bitmask is 2**k - 1; anything else (2, 4, 5, …)
        # most likely is the v12+ WP index read with the wrong encoding.
        bad = (values < 0) | (values >= (1 << n_wps)) | ((values & (values + 1)) != 0)
        mask = values
    elif encoding == "index":
        bad = (values < 0) | (values > n_wps)
        mask = (np.int64(1) << np.clip(values, 0, n_wps)) - 1
    else:
        raise ConfigError(f"unknown NanoAOD ID encoding {encoding!r}; use 'bitmask' or 'index'")
    if bad.any():
        first = int(values[bad].flat[0])
        raise InputError(
            f"{int(bad.sum())} NanoAOD VS{vs} ID value(s) such as {first} do not fit the "
            f"{encoding!r} encoding of {n_wps} working points ({', '.join(wps)})"
        )
    return (mask << offset).astype(np.uint16)
