"""Truth labels of a tau candidate: gen matching and the TauMLTools tau type.

The rules mirror ``TauSelection.h::GetGenLeptonMatch`` and
``AnalysisTypes.h::GenMatchToTauType`` (reference spec §1.2, §1.3) but are vectorised: instead
of throwing on an impossible row, the functions return a sentinel code so a whole column can be
labelled at once and the caller decides whether bad rows are fatal (``strict=True``) or simply
dropped.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import awkward as ak
import numpy as np

from taucoffea.errors import ConfigError, InputError

__all__ = [
    "TAUTUPLE_DEFAULT_FLOAT",
    "TAUTUPLE_DEFAULT_INT",
    "TAU_TYPE_NAMES",
    "GenLeptonKind",
    "GenLeptonMatch",
    "SampleType",
    "TauType",
    "compute_tau_type",
    "delta_phi",
    "delta_r",
    "gen_lepton_match",
    "tau_type",
    "tau_type_from_name",
]

#: ``std::numeric_limits<float>::lowest()``: what the TauTuple stores for an absent float.
TAUTUPLE_DEFAULT_FLOAT = np.finfo(np.float32).min
#: ``std::numeric_limits<int>::lowest()``: what the TauTuple stores for an absent int.
TAUTUPLE_DEFAULT_INT = np.iinfo(np.int32).min


class TauType(enum.IntEnum):
    """Training label of a tau candidate; the values are the ones stored in ``tauType``."""

    e = 0
    mu = 1
    tau = 2
    jet = 3
    emb_e = 4
    emb_mu = 5
    emb_tau = 6
    emb_jet = 7
    data = 8


#: Tau-type names in index order, as used in configs and histogram names.
TAU_TYPE_NAMES: tuple[str, ...] = tuple(t.name for t in TauType)


class GenLeptonKind(enum.IntEnum):
    """``genLepton_kind`` branch values (``GenLepton::determineKind``)."""

    PromptElectron = 1
    PromptMuon = 2
    TauDecayedToElectron = 3
    TauDecayedToMuon = 4
    TauDecayedToHadrons = 5
    Other = 6


class GenLeptonMatch(enum.IntEnum):
    """Result codes of :func:`gen_lepton_match`.

    1..6 are the C++ ``GenLeptonMatch`` values. ``NoneMatch`` stands for the empty
    ``std::optional`` (no valid truth) and ``Invalid`` for the rows on which the C++ throws.
    """

    Invalid = -1
    NoneMatch = 0
    Electron = 1
    Muon = 2
    TauElectron = 3
    TauMuon = 4
    Tau = 5
    NoMatch = 6


class SampleType(enum.IntEnum):
    """``sampleType`` branch values."""

    Data = 0
    MC = 1
    Embedded = 2


def tau_type_from_name(name: str) -> TauType:
    """Look up a tau type by its config name, failing with the list of valid names."""
    try:
        return TauType[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown tau type {name!r}; allowed names are {', '.join(TAU_TYPE_NAMES)}"
        ) from None


def _as_float64(x: Any) -> Any:
    # float64 so that lowest() kinematics cannot overflow when squared, and so that float32
    # branches are compared exactly as the C++ does after promoting them to double.
    if isinstance(x, ak.Array):
        return ak.values_astype(x, np.float64)
    return np.asarray(x, dtype=np.float64)


def delta_phi(a: Any, b: Any) -> Any:
    """``a - b`` wrapped to [-π, π), computed in float64.

    A difference already inside the interval is returned untouched (as ROOT's ``DeltaPhi``
    does), so it carries no rounding from the wrap; ROOT wraps to (-π, π], which differs only
    in the sign at exactly ±π, invisible to ΔR. Only ufuncs and ``np.where`` are used, so
    numpy arrays, scalars and (flat or jagged) awkward arrays all work.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        d = np.subtract(_as_float64(a), _as_float64(b))
        wrapped = np.mod(d + np.pi, 2.0 * np.pi) - np.pi
        # np.mod can round up to exactly 2π for tiny negative inputs; fold that back.
        wrapped = wrapped - 2.0 * np.pi * (wrapped >= np.pi)
        inside = (d >= -np.pi) & (d < np.pi)
        out = np.where(inside, d, wrapped)
        return out[()] if isinstance(out, np.ndarray) and out.ndim == 0 else out


def delta_r(eta1: Any, phi1: Any, eta2: Any, phi2: Any) -> Any:
    """ΔR = sqrt(Δη² + Δφ²) with Δφ wrapped, in float64 (no overflow for ``lowest()`` inputs)."""
    with np.errstate(over="ignore", invalid="ignore"):
        deta = np.subtract(_as_float64(eta1), _as_float64(eta2))
        dphi = delta_phi(phi1, phi2)
        return np.sqrt(deta * deta + dphi * dphi)


def _flat(x: Any, dtype: Any) -> np.ndarray:
    return np.asarray(ak.to_numpy(x) if isinstance(x, ak.Array) else x, dtype=dtype)


# (kind, match, minimal visible pT in GeV)
_KIND_RULES = (
    (GenLeptonKind.PromptElectron, GenLeptonMatch.Electron, 8.0),
    (GenLeptonKind.PromptMuon, GenLeptonMatch.Muon, 8.0),
    (GenLeptonKind.TauDecayedToElectron, GenLeptonMatch.TauElectron, 8.0),
    (GenLeptonKind.TauDecayedToMuon, GenLeptonMatch.TauMuon, 8.0),
    (GenLeptonKind.TauDecayedToHadrons, GenLeptonMatch.Tau, 15.0),
)


def gen_lepton_match(
    genLepton_kind: Any,
    genLepton_index: Any,
    genJet_index: Any,
    tau_pt: Any,
    tau_eta: Any,
    tau_phi: Any,
    genLepton_vis_pt: Any,
    genLepton_vis_eta: Any,
    genLepton_vis_phi: Any,
    *,
    dr_max: float = 0.2,
) -> np.ndarray:
    """Vectorised ``GetGenLeptonMatch``; returns :class:`GenLeptonMatch` codes as int32.

    The boundary is the C++ one: a gen lepton is rejected only if ΔR > ``dr_max`` (ΔR equal to
    0.2 matches; the root2tf Python port used ``<``). As in C++ the ΔR test comes first, so a
    kind-``Other`` lepton far from the tau is ``NoneMatch``, and only a close one is
    ``Invalid`` (where C++ throws). ``tau_pt`` is accepted for signature parity with the C++,
    which builds a full p4, but ΔR does not depend on it.
    """
    del tau_pt  # ΔR uses only η and φ
    kind = _flat(genLepton_kind, np.int64)
    lep_index = _flat(genLepton_index, np.int64)
    jet_index = _flat(genJet_index, np.int64)
    vis_pt = _flat(genLepton_vis_pt, np.float64)
    dr = np.asarray(delta_r(_flat(tau_eta, np.float64), _flat(tau_phi, np.float64),
                            _flat(genLepton_vis_eta, np.float64),
                            _flat(genLepton_vis_phi, np.float64)))

    out = np.full(kind.shape, GenLeptonMatch.NoneMatch, dtype=np.int32)
    has_lepton = lep_index >= 0
    out[~has_lepton & (jet_index >= 0)] = GenLeptonMatch.NoMatch

    # C++ tests `dR > dr_max`; a NaN ΔR therefore does not reject, and neither does it here.
    close = has_lepton & ~(dr > dr_max)
    known = np.zeros(kind.shape, dtype=bool)
    for gen_kind, match, min_pt in _KIND_RULES:
        this_kind = close & (kind == gen_kind)
        known |= this_kind
        out[this_kind & (vis_pt >= min_pt)] = match
    out[close & ~known] = GenLeptonMatch.Invalid
    return out


# (sampleType, gen match) -> tau type; the §1.3 table plus the documented data deviation.
_TAU_TYPE_TABLE: dict[tuple[SampleType, GenLeptonMatch], TauType] = {
    (SampleType.MC, GenLeptonMatch.Electron): TauType.e,
    (SampleType.MC, GenLeptonMatch.TauElectron): TauType.e,
    (SampleType.MC, GenLeptonMatch.Muon): TauType.mu,
    (SampleType.MC, GenLeptonMatch.TauMuon): TauType.mu,
    (SampleType.MC, GenLeptonMatch.Tau): TauType.tau,
    (SampleType.MC, GenLeptonMatch.NoMatch): TauType.jet,
    (SampleType.Embedded, GenLeptonMatch.Tau): TauType.emb_tau,
    (SampleType.Embedded, GenLeptonMatch.NoMatch): TauType.emb_jet,
    (SampleType.Embedded, GenLeptonMatch.TauMuon): TauType.emb_mu,
    (SampleType.Embedded, GenLeptonMatch.TauElectron): TauType.emb_e,
    (SampleType.Data, GenLeptonMatch.NoMatch): TauType.data,
    (SampleType.Data, GenLeptonMatch.NoneMatch): TauType.data,
}


def tau_type(match: Any, sampleType: Any) -> np.ndarray:
    """Vectorised ``GenMatchToTauType``; int32 tau types, -1 where the C++ has no type.

    Deliberate deviation: a ``Data`` row is ``data`` (8) when its match is ``NoMatch`` *or*
    ``NoneMatch``. Real data carries no generator information, so its rows come out of
    :func:`gen_lepton_match` as ``NoneMatch`` and the C++ would call every one of them "not
    valid"; only ``NoMatch`` maps to ``data`` there. A Data row with a lepton match is
    incompatible (the C++ throws) and gives -1, as do all other combinations missing from the
    table (e.g. Embedded with a prompt electron, any ``NoneMatch`` outside data, ``Invalid``).
    """
    m = _flat(match, np.int64)
    s = _flat(sampleType, np.int64)
    m, s = np.broadcast_arrays(m, s)
    out = np.full(m.shape, -1, dtype=np.int32)
    for (sample, gen_match), ttype in _TAU_TYPE_TABLE.items():
        out[(s == sample) & (m == gen_match)] = ttype
    return out


_TAU_TYPE_BRANCHES = (
    "genLepton_kind",
    "genLepton_index",
    "genJet_index",
    "tau_pt",
    "tau_eta",
    "tau_phi",
    "genLepton_vis_pt",
    "genLepton_vis_eta",
    "genLepton_vis_phi",
    "sampleType",
    "tau_index",
)


def compute_tau_type(columns: Mapping[str, Any], *, strict: bool = False) -> np.ndarray:
    """Tau type of every row of a per-tau table with TauTuple branch names; -1 = not valid.

    Rows without a reconstructed tau (``tau_index < 0``) are -1 as well: the TauTuple stores
    jets without a tau, which are no training example. Rows where the C++ throws (a gen lepton
    of kind ``Other`` or of an unknown kind matched within ΔR) are -1 and, with
    ``strict=True``, make the call fail with :class:`InputError` the way the C++ does.
    """
    try:
        cols = {name: columns[name] for name in _TAU_TYPE_BRANCHES}
    except (KeyError, IndexError) as err:
        missing = [n for n in _TAU_TYPE_BRANCHES if not _has_column(columns, n)]
        raise InputError(f"cannot compute tauType: missing column(s) {', '.join(missing)}") from err
    match = gen_lepton_match(
        cols["genLepton_kind"], cols["genLepton_index"], cols["genJet_index"],
        cols["tau_pt"], cols["tau_eta"], cols["tau_phi"],
        cols["genLepton_vis_pt"], cols["genLepton_vis_eta"], cols["genLepton_vis_phi"],
    )
    invalid = match == GenLeptonMatch.Invalid
    if strict and invalid.any():
        raise InputError(
            f"{int(invalid.sum())} row(s) have a gen lepton (genLepton_index >= 0) within ΔR "
            "of the tau whose genLepton_kind is Other or unknown; TauMLTools' "
            "GetGenLeptonMatch throws on these"
        )
    out = tau_type(match, cols["sampleType"])
    out[_flat(cols["tau_index"], np.int64) < 0] = -1
    return out


def _has_column(columns: Mapping[str, Any], name: str) -> bool:
    try:
        columns[name]
    except (KeyError, IndexError):
        return False
    return True
