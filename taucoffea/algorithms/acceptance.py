"""Shuffle & merge acceptance probabilities: spectra → "keep this tau with probability a".

This is the pure core of pass 1→2 of shuffle & merge (DESIGN §4). The rules are the original
``SpectrumHists::CalculateProbability`` and ``TauTypeProb`` (reference spec §3.4); the full
derivation and every deliberate difference are in ``docs/shuffle_merge.md``. In short, per
group *g* and tau type *t*, with ``E`` the (|η|, pT) entries on the target bins:

* ``P`` flattens the spectrum: ``P = min(E) / E`` over the "flat region" (all pT bins, or all
  but the last one with ``lastbin_takeall``), so every bin is expected to yield ``min(E)``;
  empty bins get 0 with ``enable_emptybin``, otherwise they are an error.
* With ``lastbin_takeall`` the last pT bin is kept whole (probability 1) and the flat region is
  scaled by ``dis_scale = min(1, disbalance · H / (N_bins · min(E)))`` so that the expected
  flat-region yield is at most ``disbalance × H``. **Decision:** ``H`` is the content of the
  last pT bin only — the documented intent. The original integrates the *last two* pT bins
  (an off-by-one, spec Appendix A.1); ``legacy_disbalance=True`` reproduces it for
  cross-checks against the original tool's ``out/`` files.
* ``F = Σ E·P`` (last bin unweighted with takeall), ``A_t = Σ_g F_{g,t}``, and the type
  probability ``p_t = (r_t / A_t) / max_s (r_s / A_s)``; types with ratio −1 get ``p_t = 1``.
* A tau is accepted with ``p_t · P_{g,t}(|η|, pT)``, and 0 outside the window
  ``pt_bins[0] < pT < pt_bins[-1]``, ``|η| < eta_bins[-1]`` (the original's reject rule).

Because pass 2 applies this to every tau of the very spectra it was computed from, the
expected accepted count per bin is exactly ``E · p_t · P`` (:attr:`AcceptanceTable.expected`),
with binomial variance, which the closure report checks.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import hist
import numpy as np

from taucoffea.algorithms.rebin import rebin_hist2d, validate_edges
from taucoffea.columns.atomic import atomic_path, write_text_atomic
from taucoffea.columns.rootio import recreate
from taucoffea.errors import ConfigError, InputError
from taucoffea.physics.tautypes import TAU_TYPE_NAMES

__all__ = [
    "ACCEPTANCE_CORRECTION",
    "ACCEPTANCE_JSON",
    "AcceptanceTable",
    "acceptance_probability",
    "compute_acceptance",
    "entries_from_spectra",
    "expected_by_type",
    "format_expected_table",
    "parse_tau_ratio",
    "to_correctionlib",
    "write_acceptance",
]

_log = logging.getLogger(__name__)

#: File name of the correctionlib JSON written by :func:`write_acceptance`.
ACCEPTANCE_JSON = "acceptance.json"
#: Name of the correction inside it.
ACCEPTANCE_CORRECTION = "shuffle_merge_acceptance"
#: Ratio value meaning "take every tau of this type".
TAKE_ALL = -1.0


def parse_tau_ratio(ratio: str | Mapping[str, float]) -> dict[str, float]:
    """Parse ``"jet:1, e:1, mu:1, tau:1"`` (``--tau-ratio``) into ``{type: ratio}``.

    A ratio is a finite number ≥ 0, or −1 for "take all of this type". Unknown type names,
    duplicates, and malformed entries raise :class:`ConfigError` naming the entry.
    """
    if isinstance(ratio, str):
        items: list[tuple[str, Any]] = []
        for token in ratio.split(","):
            token = token.strip()
            if not token:
                raise ConfigError(f"tau ratio {ratio!r}: empty entry (stray comma?)")
            name, sep, value = token.partition(":")
            if not sep:
                raise ConfigError(f"tau ratio {ratio!r}: entry {token!r} is not 'type:ratio'")
            items.append((name.strip(), value.strip()))
    elif isinstance(ratio, Mapping):
        items = list(ratio.items())
    else:
        raise ConfigError(f"tau ratio must be a string or a mapping, got {type(ratio).__name__}")
    out: dict[str, float] = {}
    for name, value in items:
        if name not in TAU_TYPE_NAMES:
            raise ConfigError(
                f"tau ratio: unknown tau type {name!r}; allowed are {', '.join(TAU_TYPE_NAMES)}"
            )
        if name in out:
            raise ConfigError(f"tau ratio: type {name!r} given twice")
        try:
            r = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"tau ratio: {name}:{value!r} is not a number") from None
        if not np.isfinite(r) or (r < 0 and r != TAKE_ALL):
            raise ConfigError(
                f"tau ratio: {name}:{value} is invalid; use a number >= 0, or -1 to take all"
            )
        out[name] = r
    if not out:
        raise ConfigError("tau ratio is empty")
    return out


@dataclass(frozen=True, eq=False)
class AcceptanceTable:
    """Everything shuffle & merge derives from the spectra; arrays are read-only.

    Per-bin arrays have shape ``(n_groups, n_types, n_eta + 2, n_pt + 2)`` on the target bins
    *with flow bins* (index 0 underflow, -1 overflow), groups in alphabetical order and types
    in ``TauType`` order (only the types some group keeps). A (group, type) pair the group does
    not keep (``present`` False) is all zeros.
    """

    groups: tuple[str, ...]
    types: tuple[str, ...]
    pt_bins: np.ndarray
    eta_bins: np.ndarray
    tau_ratio: Mapping[str, float]
    lastbin_takeall: bool
    lastbin_disbalance: float
    enable_emptybin: bool
    legacy_disbalance: bool
    present: np.ndarray  #: (g, t) bool: group g keeps type t
    entries: np.ndarray  #: E: rebinned spectra
    bin_prob: np.ndarray  #: P: flattening probability (1 in the take-all bin, 0 outside)
    dis_scale: np.ndarray  #: (g, t) disbalance scale applied to P (1 without takeall)
    expected_type_entries: np.ndarray  #: (g, t) F = Σ E·P
    total_type_entries: np.ndarray  #: (t,) A = Σ_g F
    type_prob: np.ndarray  #: (t,) p_t
    acceptance: np.ndarray  #: p_t · P: the per-tau acceptance probability
    expected: np.ndarray  #: E · p_t · P: expected accepted taus per bin
    group_entries: np.ndarray  #: (g,) Σ E over types and all bins (the original's group weight)

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if isinstance(value, np.ndarray):
                value = np.array(value, copy=True)  # never freeze an array the caller owns
                value.flags.writeable = False
                object.__setattr__(self, name, value)

    @property
    def n_prob_pt_bins(self) -> int:
        """pT bins of the flattened region: all, or all but the last with ``lastbin_takeall``."""
        n_pt = self.pt_bins.size - 1
        return n_pt - 1 if self.lastbin_takeall else n_pt

    def group_index(self, group: int | str) -> int:
        """Index of a group given by name or index; unknown ones raise :class:`ConfigError`."""
        if isinstance(group, str):
            if group not in self.groups:
                raise ConfigError(f"unknown data group {group!r}; known: {', '.join(self.groups)}")
            return self.groups.index(group)
        index = int(group)
        if not 0 <= index < len(self.groups):
            raise ConfigError(f"group index {index} out of range 0..{len(self.groups) - 1}")
        return index

    def expected_counts(self, group: int | str, tau_type: str) -> np.ndarray:
        """Expected accepted taus per (|η|, pT) bin, with flow, for one group and type."""
        g = self.group_index(group)
        if tau_type not in self.types:
            raise ConfigError(f"tau type {tau_type!r} is not in the table ({', '.join(self.types)})")
        return self.expected[g, self.types.index(tau_type)]


def compute_acceptance(
    entries: Mapping[str, Mapping[str, np.ndarray]],
    pt_bins: Sequence[float],
    eta_bins: Sequence[float],
    tau_ratio: str | Mapping[str, float],
    *,
    lastbin_takeall: bool = False,
    lastbin_disbalance: float = 1.0,
    enable_emptybin: bool = False,
    legacy_disbalance: bool = False,
) -> AcceptanceTable:
    """Turn per-group, per-type entries into acceptance probabilities (spec §3.4).

    ``entries[group][type]`` is the rebinned spectrum ``E`` *with flow*, shape
    ``(len(eta_bins) + 1, len(pt_bins) + 1)`` (see :func:`entries_from_spectra`); the types a
    group lists are the types it keeps. Options as the original's ``--lastbin-takeall``,
    ``--lastbin-disbalance``, ``--enable-emptybin``; ``legacy_disbalance`` uses the original's
    last-*two*-bins integral for ``H`` instead of the last bin (see the module docstring).

    Raises :class:`ConfigError` for: an empty flat-region bin without ``enable_emptybin``, a
    (group, type) with every flat-region bin empty, an empty last pT bin with takeall
    (``H == 0``), a ratio type no group keeps, a kept type missing from the ratio (the original
    crashed later, at selection time), no taus of a ratio type (``A_t == 0``), bad options.
    """
    pt = validate_edges(pt_bins, "pt bins")
    eta = validate_edges(eta_bins, "eta bins")
    if eta[0] < 0:
        raise ConfigError(f"eta bins {eta.tolist()}: |η| bins must start at >= 0")
    ratio = parse_tau_ratio(tau_ratio)
    n_eta, n_pt = eta.size - 1, pt.size - 1
    n_flat_pt = n_pt - 1 if lastbin_takeall else n_pt
    if n_flat_pt < 1:
        raise ConfigError(
            f"pt bins {pt.tolist()}: lastbin_takeall needs at least two pT bins "
            "(the last one is the take-all region)"
        )
    disbalance = float(lastbin_disbalance)
    if lastbin_takeall and not (np.isfinite(disbalance) and disbalance > 0):
        raise ConfigError(f"lastbin_disbalance={lastbin_disbalance!r} must be a finite number > 0")

    groups = tuple(sorted(entries))
    if not groups:
        raise ConfigError("no data groups given")
    for g in groups:
        # group names become file names (<group>.root) in write_acceptance
        if not isinstance(g, str) or not g or g.startswith(".") or "/" in g or "\\" in g or "\0" in g:
            raise ConfigError(f"invalid data group name {g!r}: it must be a plain file name")
    kept: dict[str, list[str]] = {}
    for g in groups:
        if not entries[g]:
            raise ConfigError(f"data group {g!r} keeps no tau type")
        for t in entries[g]:
            if t not in TAU_TYPE_NAMES:
                raise ConfigError(f"data group {g!r}: unknown tau type {t!r}")
            kept.setdefault(t, []).append(g)
    for t, owners in kept.items():
        if t not in ratio:
            raise ConfigError(
                f"tau type {t!r} is kept by group(s) {', '.join(owners)} but is missing from the "
                f"tau ratio {_ratio_str(ratio)}; add '{t}:<ratio>' (or '{t}:-1' to take all) or "
                "drop it from the groups' types"
            )
    for t in ratio:
        if t not in kept:
            raise ConfigError(f"tau type {t!r} is in the tau ratio but no data group keeps it")
    types = tuple(t for t in TAU_TYPE_NAMES if t in kept)

    shape = (len(groups), len(types), n_eta + 2, n_pt + 2)
    E = np.zeros(shape)
    P = np.zeros(shape)
    present = np.zeros(shape[:2], dtype=bool)
    dis = np.ones(shape[:2])
    for gi, g in enumerate(groups):
        for t, values in entries[g].items():
            ti = types.index(t)
            e = _check_entries(values, shape[2:], g, t)
            E[gi, ti] = e
            present[gi, ti] = True
            P[gi, ti], dis[gi, ti] = _bin_probability(
                e, pt, eta, n_flat_pt, g, t,
                takeall=lastbin_takeall, disbalance=disbalance,
                enable_emptybin=enable_emptybin, legacy=legacy_disbalance,
            )

    F = (E * P).sum(axis=(2, 3))
    A = F.sum(axis=0)
    p = _type_probabilities(types, ratio, A)
    acc = p[None, :, None, None] * P
    return AcceptanceTable(
        groups=groups,
        types=types,
        pt_bins=pt,
        eta_bins=eta,
        tau_ratio=MappingProxyType(dict(ratio)),
        lastbin_takeall=bool(lastbin_takeall),
        lastbin_disbalance=disbalance,
        enable_emptybin=bool(enable_emptybin),
        legacy_disbalance=bool(legacy_disbalance),
        present=present,
        entries=E,
        bin_prob=P,
        dis_scale=dis,
        expected_type_entries=F,
        total_type_entries=A,
        type_prob=p,
        acceptance=acc,
        expected=E * acc,
        group_entries=E.sum(axis=(1, 2, 3)),
    )


def _ratio_str(ratio: Mapping[str, float]) -> str:
    return "'" + ", ".join(f"{t}:{r:g}" for t, r in ratio.items()) + "'"


def _check_entries(values: Any, shape: tuple[int, int], group: str, tau_type: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != shape:
        raise ConfigError(
            f"entries of group {group!r}, type {tau_type!r} have shape {arr.shape}; expected "
            f"{shape} (target bins with under/overflow)"
        )
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise InputError(
            f"entries of group {group!r}, type {tau_type!r} contain negative or non-finite "
            "counts; acceptance probabilities need unweighted entries"
        )
    return arr


def _bin_probability(
    e: np.ndarray,
    pt: np.ndarray,
    eta: np.ndarray,
    n_flat_pt: int,
    group: str,
    tau_type: str,
    *,
    takeall: bool,
    disbalance: float,
    enable_emptybin: bool,
    legacy: bool,
) -> tuple[np.ndarray, float]:
    """P on the full flow grid for one (group, type), and its disbalance scale."""
    n_eta, n_pt = eta.size - 1, pt.size - 1
    flat = e[1 : n_eta + 1, 1 : n_flat_pt + 1]
    empty = flat == 0
    where = f"group {group!r}, type {tau_type!r}"
    if empty.all():
        raise ConfigError(
            f"{where}: every (|η|, pT) bin below the last pT bin is empty; no spectrum to flatten"
            if takeall else f"{where}: every (|η|, pT) bin is empty; no spectrum to flatten"
        )
    if empty.any() and not enable_emptybin:
        i, j = (int(k[0]) for k in np.nonzero(empty))
        raise ConfigError(
            f"{where}: empty bin |η| in [{eta[i]:g}, {eta[i + 1]:g}), pT in "
            f"[{pt[j]:g}, {pt[j + 1]:g}); use enable_emptybin (--enable-emptybin) to give empty "
            "bins probability 0, or coarser bins"
        )
    min_e = flat[~empty].min()
    with np.errstate(divide="ignore"):
        p_flat = np.where(empty, 0.0, min_e / np.where(empty, 1.0, flat))
    scale = 1.0
    if takeall:
        first = n_pt - 1 if legacy else n_pt
        # η underflow (|η| < eta_bins[0]) through the last inner η bin: what the take-all
        # selection accepts, since it applies no lower |η| cut.
        h = float(e[0 : n_eta + 1, first : n_pt + 1].sum())
        scale = min(1.0, disbalance * h / (flat.size * min_e))
        if scale <= 0:
            raise ConfigError(
                f"{where}: the last pT bin [{pt[-2]:g}, {pt[-1]:g}) is empty, so "
                "lastbin_takeall has nothing to balance against (H == 0)"
            )
        if scale < 1:
            _log.warning(
                "%s: flat region scaled by %.4g so that it is at most %g x the last pT bin",
                where, scale, disbalance,
            )
    out = np.zeros_like(e)
    out[1 : n_eta + 1, 1 : n_flat_pt + 1] = scale * p_flat
    if takeall:
        out[0 : n_eta + 1, n_pt] = 1.0
    return out, scale


def _type_probabilities(types: Sequence[str], ratio: Mapping[str, float], A: np.ndarray) -> np.ndarray:
    p = np.ones(len(types))
    scaled = []
    for i, t in enumerate(types):
        if A[i] <= 0:
            raise ConfigError(
                f"no taus of type {t!r} would be accepted in any group (A_t == 0); check the "
                "spectra or drop the type from the ratio and the groups"
            )
        if ratio[t] != TAKE_ALL:
            p[i] = ratio[t] / A[i]
            scaled.append(i)
    if scaled:
        top = p[scaled].max()
        if top <= 0:
            raise ConfigError(
                f"tau ratio {_ratio_str(ratio)}: every ratio other than -1 is 0, nothing to scale"
            )
        p[scaled] /= top
    return p


def entries_from_spectra(
    groups: Iterable[Any],
    datasets: Mapping[str, Iterable[Any]],
    spectra: Mapping[str, Mapping[str, hist.Hist]],
    pt_bins: Sequence[float],
    eta_bins: Sequence[float],
) -> dict[str, dict[str, np.ndarray]]:
    """Sum the rebinned spectra of each group's datasets: the ``entries`` of :func:`compute_acceptance`.

    ``groups`` are :class:`~taucoffea.datagroups.DataGroup` (anything with ``name`` and
    ``types``); ``datasets[group]`` lists dataset directory names, or the ``(dataset, path)``
    pairs of :func:`~taucoffea.datagroups.match_files`; ``spectra[dataset][type]`` are the
    pass-1 histograms. A dataset without spectra is an :class:`InputError`. A type the group
    keeps but one of its datasets has no histogram for counts as empty there (the spectra
    stage, like the original, creates histograms only for types that occur; the original then
    threw, we let the empty-bin / all-empty checks judge the group as a whole).
    """
    out: dict[str, dict[str, np.ndarray]] = {}
    shape = (len(eta_bins) + 1, len(pt_bins) + 1)
    for group in groups:
        names = sorted({d[0] if isinstance(d, tuple) else d for d in datasets.get(group.name, ())})
        if not names:
            raise ConfigError(f"data group {group.name!r} has no datasets")
        per_type = {t: np.zeros(shape) for t in group.types}
        for ds in names:
            if ds not in spectra:
                raise InputError(f"no spectra for dataset {ds!r} of data group {group.name!r}")
            for t in group.types:
                h = spectra[ds].get(t)
                if h is not None:
                    per_type[t] += rebin_hist2d(h, eta_bins, pt_bins)[0]
        out[group.name] = per_type
    return out


# ------------------------------------------------------------------------------- lookup


def acceptance_probability(
    table: AcceptanceTable,
    group_index_or_name: int | str,
    tau_type: Any,
    abs_eta: Any,
    pt: Any,
) -> np.ndarray:
    """Per-tau acceptance probability for one group, vectorised over taus (pure numpy).

    ``tau_type`` (int codes, scalar or array), ``abs_eta`` and ``pt`` broadcast together.
    Boundaries are the original selection's: 0 if ``pT <= pt_bins[0]``, ``pT >= pt_bins[-1]``,
    ``|η| >= eta_bins[-1]``, ``|η| < 0`` or NaN; bins are ``[low, high)`` (a tau at exactly the
    last bin's lower edge is in the take-all bin); a type the group does not keep gives 0.
    :func:`to_correctionlib` encodes exactly the same function.
    """
    g = table.group_index(group_index_or_name)
    tt, eta, pt_ = np.broadcast_arrays(
        np.asarray(tau_type), np.asarray(abs_eta, dtype=np.float64), np.asarray(pt, dtype=np.float64)
    )
    code_to_index = np.full(len(TAU_TYPE_NAMES), -1, dtype=np.int64)
    for i, t in enumerate(table.types):
        if table.present[g, i]:
            code_to_index[TAU_TYPE_NAMES.index(t)] = i
    codes = tt.astype(np.int64)
    known = (codes >= 0) & (codes < code_to_index.size)
    t_index = np.where(known, code_to_index[np.clip(codes, 0, code_to_index.size - 1)], -1)
    ok = (
        (t_index >= 0)
        & (pt_ > table.pt_bins[0]) & (pt_ < table.pt_bins[-1])
        & (eta >= 0) & (eta < table.eta_bins[-1])
    )
    i_eta = np.searchsorted(table.eta_bins, np.where(ok, eta, 0.0), side="right")
    i_pt = np.searchsorted(table.pt_bins, np.where(ok, pt_, table.pt_bins[0]), side="right")
    values = table.acceptance[g][np.maximum(t_index, 0), i_eta, i_pt]
    return np.where(ok, values, 0.0)


# ------------------------------------------------------------------------ correctionlib


def _correctionlib_edges(table: AcceptanceTable) -> tuple[list[float], list[float], slice]:
    """Edges encoding the reject rule, and the η slice of the flow grid they cover.

    pT: the first edge is moved one ulp up, so ``pT == pt_bins[0]`` lands in the flow (0), as
    the original's ``pT <= pt_bins[0]`` reject; ``pT >= pt_bins[-1]`` is flow by construction.
    |η|: when ``eta_bins[0] > 0`` an extra bin [0, eta_bins[0]) carries the η-underflow column
    (non-zero only in the take-all bin, which has no lower |η| cut).
    """
    pt_edges = [float(np.nextafter(table.pt_bins[0], np.inf))] + [float(x) for x in table.pt_bins[1:]]
    eta = [float(x) for x in table.eta_bins]
    n_eta = table.eta_bins.size - 1
    if eta[0] > 0:
        return [0.0, *eta], pt_edges, slice(0, n_eta + 1)
    return eta, pt_edges, slice(1, n_eta + 1)


def to_correctionlib(table: AcceptanceTable) -> Any:
    """The acceptance as a correctionlib ``CorrectionSet`` (schema v2).

    One correction, ``shuffle_merge_acceptance``, inputs ``group`` (string), ``tau_type``
    (int), ``abs_eta``, ``pt`` (real); output the acceptance probability. An unknown group is
    an error (as in correctionlib for any missing category); a tau type the group does not keep
    gives 0; outside the window the flow content is 0 (see :func:`_correctionlib_edges`).
    """
    import correctionlib.schemav2 as cs

    eta_edges, pt_edges, eta_slice = _correctionlib_edges(table)
    n_pt = table.pt_bins.size - 1
    group_items = []
    for g, name in enumerate(table.groups):
        type_items = []
        for i, t in enumerate(table.types):
            if not table.present[g, i]:
                continue
            grid = table.acceptance[g, i, eta_slice, 1 : n_pt + 1]
            type_items.append(
                cs.CategoryItem(
                    key=TAU_TYPE_NAMES.index(t),
                    value=cs.MultiBinning(
                        nodetype="multibinning",
                        inputs=["abs_eta", "pt"],
                        edges=[eta_edges, pt_edges],
                        content=[float(x) for x in grid.ravel()],  # abs_eta slowest
                        flow=0.0,
                    ),
                )
            )
        group_items.append(
            cs.CategoryItem(
                key=name,
                value=cs.Category(nodetype="category", input="tau_type", content=type_items, default=0.0),
            )
        )
    options = {
        "pt_bins": table.pt_bins.tolist(),
        "eta_bins": table.eta_bins.tolist(),
        "tau_ratio": dict(table.tau_ratio),
        "lastbin_takeall": table.lastbin_takeall,
        "lastbin_disbalance": table.lastbin_disbalance,
        "enable_emptybin": table.enable_emptybin,
        "legacy_disbalance": table.legacy_disbalance,
    }
    correction = cs.Correction(
        name=ACCEPTANCE_CORRECTION,
        description=(
            "Shuffle & merge acceptance probability p_type * P_group,type(|eta|, pT); 0 for "
            f"pT <= pt_bins[0], pT >= pt_bins[-1], |eta| >= eta_bins[-1]. Options: {json.dumps(options)}"
        ),
        version=1,
        inputs=[
            cs.Variable(name="group", type="string", description="data group name"),
            cs.Variable(name="tau_type", type="int", description="tauType code (e=0 ... data=8)"),
            cs.Variable(name="abs_eta", type="real", description="|tau_eta|"),
            cs.Variable(name="pt", type="real", description="tau_pt [GeV]"),
        ],
        output=cs.Variable(name="probability", type="real", description="acceptance probability"),
        data=cs.Category(nodetype="category", input="group", content=group_items),
    )
    return cs.CorrectionSet(
        schema_version=2,
        description="taucoffea shuffle & merge acceptance probabilities",
        corrections=[correction],
    )


# -------------------------------------------------------------------------------- output


def write_acceptance(
    table: AcceptanceTable, outdir: str | os.PathLike[str], *, overwrite: bool = False
) -> dict[str, Path]:
    """Write the table like the original's ``out/`` folder, each file atomically.

    * ``acceptance.json``: :func:`to_correctionlib`, validated by loading it back;
    * ``<group>.root``: TH2D ``<type>_prob`` (P without ``p_t``; x = |η|, y = pT, on the flat
      region's pT bins as the original);
    * ``<group>_n.root``: TH2D ``<type>_entries`` (E, all pT bins, with flow);
    * ``expected_counts.txt``: :func:`format_expected_table`.

    Returns ``{file name: path}``.
    """
    import correctionlib

    outdir = Path(outdir)
    written: dict[str, Path] = {}
    path = outdir / ACCEPTANCE_JSON
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(to_correctionlib(table).model_dump_json(exclude_unset=True, indent=1))
        loaded = correctionlib.CorrectionSet.from_file(str(tmp))
        if ACCEPTANCE_CORRECTION not in loaded:
            raise InputError(f"written correctionlib file '{path}' lacks {ACCEPTANCE_CORRECTION}")
    written[path.name] = path

    n_eta, n_flat = table.eta_bins.size - 1, table.n_prob_pt_bins
    for g, group in enumerate(table.groups):
        probs, counts = {}, {}
        for i, t in enumerate(table.types):
            if not table.present[g, i]:
                continue
            hp = _variable_hist(table.eta_bins, table.pt_bins[: n_flat + 1])
            hp.view(flow=False)[...] = table.bin_prob[g, i, 1 : n_eta + 1, 1 : n_flat + 1]
            probs[f"{t}_prob"] = hp
            he = _variable_hist(table.eta_bins, table.pt_bins)
            he.view(flow=True)[...] = table.entries[g, i]
            counts[f"{t}_entries"] = he
        for name, objs in ((f"{group}.root", probs), (f"{group}_n.root", counts)):
            path = outdir / name
            with atomic_path(path, overwrite=overwrite) as tmp, recreate(tmp) as f:
                for key, h in objs.items():
                    f[key] = h
            written[name] = path
    written["expected_counts.txt"] = write_text_atomic(
        outdir / "expected_counts.txt", format_expected_table(table) + "\n", overwrite=overwrite
    )
    return written


def _variable_hist(eta: np.ndarray, pt: np.ndarray) -> hist.Hist:
    return hist.Hist(
        hist.axis.Variable(eta, name="abs_eta", label="|eta|"),
        hist.axis.Variable(pt, name="pt", label="p_T [GeV]"),
        storage=hist.storage.Double(),
    )


def expected_by_type(table: AcceptanceTable) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Expected accepted counts per type summed over groups, and their binomial variances.

    Each input tau is accepted independently with probability ``a``, so a bin's count is a sum
    of binomials: mean Σ_g E·a, variance Σ_g E·a·(1 − a). Arrays have flow bins.
    """
    var = table.entries * table.acceptance * (1.0 - table.acceptance)
    mean = {t: table.expected[:, i].sum(axis=0) for i, t in enumerate(table.types)}
    variance = {t: var[:, i].sum(axis=0) for i, t in enumerate(table.types)}
    return mean, variance


def format_expected_table(table: AcceptanceTable) -> str:
    """Expected accepted taus per group and type, plus A_t and p_t, as an aligned text table."""
    width = max(10, *(len(t) + 2 for t in table.types))
    name_w = max(10, *(len(g) + 2 for g in table.groups))
    head = "group".ljust(name_w) + "".join(t.rjust(width) for t in table.types) + "total".rjust(width)
    lines = [head, "-" * len(head)]
    per = table.expected.sum(axis=(2, 3))
    for g, name in enumerate(table.groups):
        cells = [
            f"{per[g, i]:.1f}".rjust(width) if table.present[g, i] else "-".rjust(width)
            for i in range(len(table.types))
        ]
        lines.append(name.ljust(name_w) + "".join(cells) + f"{per[g].sum():.1f}".rjust(width))
    lines.append("-" * len(head))
    lines.append(
        "total".ljust(name_w)
        + "".join(f"{x:.1f}".rjust(width) for x in per.sum(axis=0))
        + f"{per.sum():.1f}".rjust(width)
    )
    lines.append("A_t".ljust(name_w) + "".join(f"{x:.1f}".rjust(width) for x in table.total_type_entries))
    lines.append("p_t".ljust(name_w) + "".join(f"{x:.4g}".rjust(width) for x in table.type_prob))
    return "\n".join(lines)
