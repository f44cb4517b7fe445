"""One flat per-tau table, whatever the input format.

Every later stage sees TauTuple column names (``tau_pt``, ``genLepton_kind``, ``pfCand_pt`` …)
and a ``tauType`` column, so a stage never needs to know whether its rows came from a
TauTuple ``taus`` tree, a NanoAOD ``Events`` tree or one of our parquet datasets.

Formats
-------
``tautuple``
    A ``taus`` tree: already one row per tau; jagged candidate lists stay as they are.
    ``tauType`` is recomputed from the generator information (reference §1.2–1.3).
``nanoaod``
    An ``Events`` tree: the ``Tau`` collection is flattened to one row per tau and renamed to
    TauTuple names; ``tauType`` comes from ``Tau_genPartFlav`` (data: no such branch → 8).
``parquet``
    Our own datasets (shuffle & merge output, skims): ``tauType`` is already set and kept.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Literal

import awkward as ak
import numpy as np

from taucoffea.errors import ConfigError, InputError

__all__ = [
    "FORMATS",
    "GEN_MATCH_COLUMNS",
    "NANOAOD_TAU_RENAMES",
    "InputFormat",
    "required_branches",
    "tau_table",
    "treename_for",
]

InputFormat = Literal["tautuple", "nanoaod", "parquet"]
FORMATS: tuple[str, ...] = ("tautuple", "nanoaod", "parquet")

#: Branches the TauMLTools gen-match reads (CreateSpectralHists reads exactly these).
GEN_MATCH_COLUMNS: tuple[str, ...] = (
    "sampleType",
    "genLepton_kind",
    "genLepton_index",
    "genJet_index",
    "genLepton_vis_pt",
    "genLepton_vis_eta",
    "genLepton_vis_phi",
    "tau_index",
    "tau_pt",
    "tau_eta",
    "tau_phi",
)

#: NanoAOD ``Tau_*`` branch → TauTuple column.
NANOAOD_TAU_RENAMES: dict[str, str] = {
    "Tau_pt": "tau_pt",
    "Tau_eta": "tau_eta",
    "Tau_phi": "tau_phi",
    "Tau_mass": "tau_mass",
    "Tau_charge": "tau_charge",
    "Tau_decayMode": "tau_decayMode",
    "Tau_dz": "tau_dz",
    "Tau_dxy": "tau_dxy",
    "Tau_chargedIso": "tau_chargedIsoPtSum",
    "Tau_neutralIso": "tau_neutralIsoPtSum",
    "Tau_puCorr": "tau_puCorrPtSum",
    "Tau_photonsOutsideSignalCone": "tau_photonPtSumOutsideSignalCone",
    "Tau_idDecayModeNewDMs": "tau_decayModeFindingNewDMs",
    "Tau_rawDeepTau2017v2p1VSe": "tau_byDeepTau2017v2p1VSeraw",
    "Tau_rawDeepTau2017v2p1VSmu": "tau_byDeepTau2017v2p1VSmuraw",
    "Tau_rawDeepTau2017v2p1VSjet": "tau_byDeepTau2017v2p1VSjetraw",
}
_NANOAOD_WP_BRANCHES = {
    "Tau_idDeepTau2017v2p1VSe": ("tau_byDeepTau2017v2p1VSe", "e"),
    "Tau_idDeepTau2017v2p1VSmu": ("tau_byDeepTau2017v2p1VSmu", "mu"),
    "Tau_idDeepTau2017v2p1VSjet": ("tau_byDeepTau2017v2p1VSjet", "jet"),
}
_NANOAOD_EVENT_RENAMES = {"run": "run", "luminosityBlock": "lumi", "event": "evt"}
# Tau_genPartFlav → TauType (e=0, mu=1, tau=2, jet=3); NanoAOD has no "not valid" class.
_GENPARTFLAV_TO_TAUTYPE = np.array([3, 0, 1, 0, 1, 2], dtype=np.int32)


def treename_for(fmt: str) -> str | None:
    """The tree a format lives in (``None`` for parquet)."""
    _check_format(fmt)
    return {"tautuple": "taus", "nanoaod": "Events", "parquet": None}[fmt]


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ConfigError(f"unknown input format '{fmt}'; allowed: {', '.join(FORMATS)}")


def required_branches(fmt: str, columns: Collection[str]) -> set[str]:
    """Input branches needed to deliver ``columns`` (plus ``tauType``) in format ``fmt``.

    Used by the pre-flight check so that a missing branch is reported with the file name
    before any worker starts.
    """
    _check_format(fmt)
    cols = set(columns)
    if fmt == "nanoaod":
        inverse = {v: k for k, v in NANOAOD_TAU_RENAMES.items()}
        inverse.update({v: k for k, (v, _) in _NANOAOD_WP_BRANCHES.items()})
        inverse.update({v: k for k, v in _NANOAOD_EVENT_RENAMES.items()})
        out = {"nTau"}
        for c in cols - {"tauType", "sampleType", "tau_index"} - set(_NANOAOD_GEN_COLUMNS):
            out.add(inverse.get(c, c))
        return out
    out = set(cols)
    if fmt == "tautuple" and "tauType" in out:
        out.discard("tauType")
        out.update(GEN_MATCH_COLUMNS)
    return out


def _field(events: Any, name: str) -> Any:
    fields = events.fields if hasattr(events, "fields") else list(events.keys())
    if name not in fields:
        source = _source_name(events)
        raise InputError(f"branch '{name}' is missing in {source}")
    return events[name]


def _source_name(events: Any) -> str:
    meta = getattr(events, "metadata", None) or {}
    filename = meta.get("filename") if isinstance(meta, Mapping) else None
    return f"file '{filename}'" if filename else "the input"


def tau_table(
    events: Any,
    fmt: InputFormat = "tautuple",
    columns: Collection[str] | None = None,
    *,
    strict_gen_match: bool = False,
) -> dict[str, Any]:
    """Return ``{column: array}`` with one entry per tau candidate and a ``tauType`` column.

    ``events`` is what a coffea processor receives (``BaseSchema`` NanoEvents) or any mapping
    of arrays with the input format's branch names. Only the branches behind ``columns`` are
    touched, so virtual (lazy) NanoEvents read nothing else. ``tauType`` is −1 for rows that
    are not valid taus (no gen match, or no reco tau).
    """
    _check_format(fmt)
    if fmt == "nanoaod":
        return _nanoaod_table(events, columns)
    wanted = list(columns) if columns is not None else _all_fields(events)
    table = {c: _field(events, c) for c in wanted if c != "tauType"}
    if fmt == "parquet" or (columns is not None and "tauType" not in columns):
        if "tauType" in wanted:
            table["tauType"] = _field(events, "tauType")
        return table
    from taucoffea.physics.tautypes import compute_tau_type

    gen = {c: np.asarray(_flat(_field(events, c))) for c in GEN_MATCH_COLUMNS}
    table["tauType"] = compute_tau_type(gen, strict=strict_gen_match)
    return table


def _all_fields(events: Any) -> list[str]:
    return list(events.fields) if hasattr(events, "fields") else list(events.keys())


def _flat(array: Any) -> Any:
    """A flat numpy view of a one-value-per-row column (lazy arrays get materialised here)."""
    if isinstance(array, ak.Array):
        return ak.to_numpy(array)
    return array


_NANOAOD_GEN_COLUMNS = (
    "genLepton_kind",
    "genLepton_index",
    "genLepton_vis_pt",
    "genLepton_vis_eta",
    "genLepton_vis_phi",
    "genLepton_vis_mass",
)


def _nanoaod_table(events: Any, columns: Collection[str] | None) -> dict[str, Any]:
    from taucoffea.physics.tautypes import TAUTUPLE_DEFAULT_FLOAT, TAUTUPLE_DEFAULT_INT
    from taucoffea.physics.working_points import nanoaod_id_to_tautuple_bitmask

    fields = set(_all_fields(events))
    counts = ak.to_numpy(_field(events, "nTau")).astype(np.int64)
    n_tau = int(counts.sum())
    is_mc = "Tau_genPartFlav" in fields
    wanted = set(columns) if columns is not None else None

    def want(name: str) -> bool:
        return wanted is None or name in wanted

    table: dict[str, Any] = {}
    for branch, name in _NANOAOD_EVENT_RENAMES.items():
        if want(name):
            table[name] = np.repeat(ak.to_numpy(_field(events, branch)), counts)
    for branch, name in NANOAOD_TAU_RENAMES.items():
        if want(name) and (branch in fields or wanted is not None):
            table[name] = ak.to_numpy(ak.flatten(_field(events, branch)))
    for branch, (name, vs) in _NANOAOD_WP_BRANCHES.items():
        if want(name) and (branch in fields or wanted is not None):
            raw = ak.to_numpy(ak.flatten(_field(events, branch)))
            table[name] = nanoaod_id_to_tautuple_bitmask(raw, vs)
    if want("tau_index"):
        table["tau_index"] = ak.to_numpy(ak.flatten(ak.local_index(_field(events, "Tau_pt")))).astype(np.int32)
    if want("sampleType"):
        table["sampleType"] = np.full(n_tau, 1 if is_mc else 0, dtype=np.int32)

    if is_mc:
        flav = ak.to_numpy(ak.flatten(_field(events, "Tau_genPartFlav"))).astype(np.int64)
        if flav.size and (flav.min() < 0 or flav.max() >= len(_GENPARTFLAV_TO_TAUTYPE)):
            raise InputError(f"unexpected Tau_genPartFlav values in {_source_name(events)}")
        tau_type = _GENPARTFLAV_TO_TAUTYPE[flav]
        lepton = flav > 0
        kind = np.where(lepton, flav, TAUTUPLE_DEFAULT_INT).astype(np.int32)
        if any(want(c) for c in _NANOAOD_GEN_COLUMNS):
            table.update(_nanoaod_gen_visible(events, fields, flav, kind, n_tau, want))
    else:
        tau_type = np.full(n_tau, 8, dtype=np.int32)
        for name in _NANOAOD_GEN_COLUMNS:
            if want(name):
                integer = name in ("genLepton_kind", "genLepton_index")
                fill = -1 if name == "genLepton_index" else (TAUTUPLE_DEFAULT_INT if integer else TAUTUPLE_DEFAULT_FLOAT)
                table[name] = np.full(n_tau, fill, dtype=np.int32 if integer else np.float32)
    table["tauType"] = tau_type.astype(np.int32)
    if wanted is not None:
        unknown = wanted - set(table)
        if unknown:
            raise InputError(
                f"column(s) {sorted(unknown)} cannot be built from NanoAOD in {_source_name(events)}; "
                f"available: {sorted(table)}"
            )
    return table


def _nanoaod_gen_visible(events: Any, fields: set[str], flav: np.ndarray, kind: np.ndarray, n_tau: int, want) -> dict[str, np.ndarray]:
    """Visible generator p4 of the matched lepton: GenVisTau for τh, GenPart for e/μ.

    NanoAOD's ``Tau_genPartIdx`` points into GenVisTau for ``genPartFlav == 5`` and into GenPart
    otherwise; rows without a match keep TauTuple default values.
    """
    from taucoffea.physics.tautypes import TAUTUPLE_DEFAULT_FLOAT

    idx = _field(events, "Tau_genPartIdx")
    flat_idx = ak.to_numpy(ak.flatten(idx)).astype(np.int64)
    out: dict[str, np.ndarray] = {}
    if want("genLepton_kind"):
        out["genLepton_kind"] = kind
    if want("genLepton_index"):
        out["genLepton_index"] = np.where(flav > 0, flat_idx, -1).astype(np.int32)
    for var in ("pt", "eta", "phi", "mass"):
        name = f"genLepton_vis_{var}"
        if not want(name):
            continue
        values = np.full(n_tau, TAUTUPLE_DEFAULT_FLOAT, dtype=np.float32)
        for collection, select in (("GenVisTau", flav == 5), ("GenPart", (flav > 0) & (flav < 5))):
            branch = f"{collection}_{var}"
            if branch not in fields:
                continue
            per_event = _field(events, branch)
            offsets = np.concatenate([[0], np.cumsum(ak.to_numpy(ak.num(per_event)))])
            event_of_tau = np.repeat(np.arange(len(offsets) - 1), ak.to_numpy(ak.num(idx)))
            ok = select & (flat_idx >= 0)
            flat_values = ak.to_numpy(ak.flatten(per_event))
            values[ok] = flat_values[offsets[event_of_tau[ok]] + flat_idx[ok]]
        out[name] = values
    return out


def select_columns(
    available: Collection[str], include: Collection[str] | None = None, exclude: Collection[str] | None = None
) -> list[str]:
    """Filter column names like TauMLTools' skim tool: each pattern is an exact name, or a
    regular expression when it starts with ``^``. An exact name that matches nothing is an
    error (a typo must not silently drop a column); order follows ``available``.
    """
    import re

    def matcher(patterns: Collection[str], what: str):
        exact = {p for p in patterns if not p.startswith("^")}
        missing = sorted(exact - set(available))
        if missing:
            raise ConfigError(f"{what} column(s) {missing} do not exist; available: {sorted(available)[:40]}…")
        regexes = [re.compile(p) for p in patterns if p.startswith("^")]
        return lambda name: name in exact or any(r.match(name) for r in regexes)

    names = list(available)
    if include:
        inc = matcher(include, "included")
        names = [n for n in names if inc(n)]
    if exclude:
        exc = matcher(exclude, "excluded")
        names = [n for n in names if not exc(n)]
    return names
