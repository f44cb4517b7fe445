"""The evaluation stage: per-tau scores → weighted ROC curves, AUCs and WP points in
``performance.json`` (the original ``Evaluation/evaluate_performance.py``, spec §8.2).

Inputs are small (a test sample of predictions, 10⁵–10⁷ rows of a few flat columns), so they
are read with plain column reads (pyarrow for parquet, uproot for TauTuple ROOT files)
instead of a coffea processor: only the columns the discriminators, cuts, bins and weight
need are touched.

Layout of the inputs: ``inputs.path`` is a folder with one sub-folder per sample alias (the
TauTuple / ``taucoffea toy`` layout and the original ``predictions/<sample_alias>/``), a
single folder or file (its folder name is the alias), or a glob template containing
``{sample_alias}``. Columns missing from these files (e.g. the DeepTau raw scores next to a
network's predictions) can be taken from a ``friend`` source, joined row by row on
``join_on`` (default ``evt, tau_index``) within each sample.

Outputs: ``<output>/<discriminator key>/performance.json``, one record per discriminator as
in the original (one file per run); re-running a bin **replaces** its entry.

Deliberate differences from the original, besides those of the algorithms (docs/evaluation.md):
* one configuration evaluates several vs types at once (``vs_types``); for vs type *t* the
  background is every tau of type *t* from the samples that list *t*, the signal every
  genuine τ from the samples that list ``tau``;
* rows are selected by ``tauType`` (carried by the predictions) instead of one-hot targets;
  all-zero rows of unselected taus (Appendix A.19) therefore never enter;
* a bin where either class is empty is skipped and reported (the original skipped only
  empty bins and crashed in scikit-learn on one-class bins).
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from taucoffea.algorithms.discriminators import (
    VS_TYPES,
    Discriminator,
    discriminator_from_mapping,
    read_yaml_mapping,
)
from taucoffea.algorithms.intervals import clopper_pearson_weighted
from taucoffea.algorithms.performance import (
    add_entry,
    load_performance,
    new_performance,
    save_performance,
)
from taucoffea.algorithms.roc import (
    PRUNE_DECIMALS,
    RocCurve,
    auc,
    prune,
    roc_curve,
    wp_points_from_masks,
)
from taucoffea.columns.selection import compile_expression, compile_selection
from taucoffea.columns.table import GEN_MATCH_COLUMNS
from taucoffea.errors import ConfigError, InputError
from taucoffea.physics.tautypes import TauType, compute_tau_type

__all__ = [
    "DEFAULT_CUTS",
    "DEFAULT_DM_BINS",
    "DEFAULT_ETA_BINS",
    "DEFAULT_PT_BINS",
    "EvaluationConfig",
    "EvaluationResult",
    "InputSpec",
    "available_columns",
    "discover_samples",
    "load_evaluation_config",
    "read_samples",
    "run_evaluate",
]

log = logging.getLogger(__name__)

#: Defaults of run3.yaml (spec §8.2, §10).
DEFAULT_PT_BINS: tuple[tuple[float, float], ...] = ((20.0, 100.0), (100.0, 1000.0))
DEFAULT_ETA_BINS: tuple[tuple[float, float], ...] = ((0.0, 2.5),)
DEFAULT_DM_BINS: tuple[tuple[int, ...], ...] = ((0, 1, 2, 10, 11),)
DEFAULT_CUTS = "tau_decayMode != 5 && tau_decayMode != 6 && abs(tau_dz) < 0.2"

_WILDCARD = "*"
_SAMPLE_PLACEHOLDER = "{sample_alias}"
_FORMATS = ("auto", "parquet", "tautuple")
_TAU_TYPE_MODES = ("auto", "column", "compute")
_SUFFIXES = {".parquet": "parquet", ".root": "tautuple"}
_TAU = int(TauType.tau)


# ============================================================================ inputs


@dataclass(frozen=True)
class InputSpec:
    """Where per-tau columns come from (see the module docstring)."""

    path: str
    format: str = "auto"
    tau_type: str = "auto"
    pattern: str | None = None
    treename: str = "taus"
    friend: InputSpec | None = None
    join_on: tuple[str, ...] = ("evt", "tau_index")

    def __post_init__(self) -> None:
        if self.format not in _FORMATS:
            raise ConfigError(f"inputs.format={self.format!r}; allowed: {', '.join(_FORMATS)}")
        if self.tau_type not in _TAU_TYPE_MODES:
            raise ConfigError(f"inputs.tau_type={self.tau_type!r}; allowed: "
                              f"{', '.join(_TAU_TYPE_MODES)}")
        if not self.join_on:
            raise ConfigError("inputs.join_on must name at least one column")

    @classmethod
    def from_mapping(cls, value: Any, where: str = "inputs") -> InputSpec:
        """From a path string or a mapping ``{path, format, tau_type, pattern, treename,
        friend, join_on}``."""
        if isinstance(value, (str, os.PathLike)):
            return cls(path=str(value))
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a path or a mapping, got {value!r}")
        allowed = {"path", "format", "tau_type", "pattern", "treename", "friend", "join_on"}
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
        friend = value.get("friend")
        join_on = value.get("join_on", ("evt", "tau_index"))
        if isinstance(join_on, str) or not all(isinstance(c, str) for c in join_on):
            raise ConfigError(f"{where}.join_on: expected a list of column names")
        return cls(
            path=str(value.get("path") or ""),
            format=str(value.get("format", "auto")),
            tau_type=str(value.get("tau_type", "auto")),
            pattern=value.get("pattern"),
            treename=str(value.get("treename", "taus")),
            friend=None if friend is None else cls.from_mapping(friend, f"{where}.friend"),
            join_on=tuple(join_on),
        )

    def with_path(self, path: str | os.PathLike[str]) -> InputSpec:
        return InputSpec(str(path), self.format, self.tau_type, self.pattern, self.treename,
                         self.friend, self.join_on)


def _file_format(path: str, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix not in _SUFFIXES:
        raise InputError(f"cannot tell the format of '{path}' (suffix '{suffix}'); "
                         "set inputs.format to parquet or tautuple")
    return _SUFFIXES[suffix]


def _discovery_pattern(spec: InputSpec) -> str:
    if spec.pattern:
        return spec.pattern
    return {"auto": r".*\.(parquet|root)", "parquet": r".*\.parquet",
            "tautuple": r".*\.root"}[spec.format]  # fmt: skip


def discover_samples(spec: InputSpec, aliases: Iterable[str] | None = None
                     ) -> dict[str, list[str]]:
    """``{sample_alias: [files]}`` for an input spec (files sorted).

    With a ``{sample_alias}`` template every wanted alias is globbed; otherwise the folder
    layout decides (:func:`taucoffea.columns.discovery.discover_fileset`).
    """
    from taucoffea.columns.discovery import discover_fileset

    if _SAMPLE_PLACEHOLDER in spec.path:
        names = [a for a in (aliases or []) if a != _WILDCARD]
        if not names:
            raise ConfigError(f"input path '{spec.path}' contains {_SAMPLE_PLACEHOLDER}: the "
                              "samples must be named explicitly (no '*')")
        out = {}
        for alias in names:
            files = sorted(p for p in glob.glob(spec.path.replace(_SAMPLE_PLACEHOLDER, alias))
                           if Path(p).is_file())  # fmt: skip
            if files:
                out[alias] = files
        return out
    import re

    fileset = discover_fileset(spec.path, pattern=_discovery_pattern(spec))
    if Path(spec.path).is_file() and not re.fullmatch(_discovery_pattern(spec),
                                                      Path(spec.path).name):
        raise InputError(f"input file '{spec.path}' is neither parquet nor ROOT")
    return {ds: sorted(files) for ds, files in fileset.items() if files}


def _columns_of(path: str, fmt: str, treename: str) -> set[str]:
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return set(pq.read_schema(path).names)
        import uproot

        with uproot.open(path) as f:
            if treename not in f:
                raise InputError(f"file '{path}' has no tree '{treename}'")
            return set(f[treename].keys())
    except InputError:
        raise
    except Exception as err:  # corrupt or unreadable file
        raise InputError(f"cannot read '{path}': {err}") from None


def _read_file(path: str, fmt: str, columns: Sequence[str], treename: str
               ) -> dict[str, np.ndarray]:
    if not columns:
        return {}
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path, columns=list(columns))
            return {c: _to_numpy(table.column(c), path, c) for c in columns}
        import uproot

        with uproot.open(path) as f:
            arrays = f[treename].arrays(list(columns), library="np")
        return {c: _flat_numpy(arrays[c], path, c) for c in columns}
    except InputError:
        raise
    except Exception as err:
        raise InputError(f"cannot read columns {list(columns)} from '{path}': {err}") from None


def _to_numpy(chunked: Any, path: str, column: str) -> np.ndarray:
    import pyarrow as pa

    if pa.types.is_list(chunked.type) or pa.types.is_large_list(chunked.type):
        raise InputError(f"column '{column}' of '{path}' is a list, expected one value per tau")
    return _flat_numpy(chunked.to_numpy(), path, column)


def _flat_numpy(values: Any, path: str, column: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype == object or arr.ndim != 1:
        raise InputError(f"column '{column}' of '{path}' is not one flat value per tau")
    return arr


def _compute_type_here(fmt: str, available: set[str], mode: str) -> bool:
    if mode == "compute":
        return True
    if mode == "column":
        return False
    return fmt == "tautuple" or "tauType" not in available


def _read_sample(spec: InputSpec, alias: str, files: Sequence[str], columns: Sequence[str]
                 ) -> tuple[dict[str, np.ndarray], list[str]]:
    """Read ``columns`` of one sample from its files; returns the table and the columns
    that are not in the files (left for a friend)."""
    fmts = [_file_format(f, spec.format) for f in files]
    schemas = [_columns_of(f, fm, spec.treename) for f, fm in zip(files, fmts, strict=True)]
    common = set.intersection(*schemas)
    wanted = list(dict.fromkeys(columns))
    need_type = "tauType" in wanted
    compute = [need_type and _compute_type_here(fm, s, spec.tau_type)
               for fm, s in zip(fmts, schemas, strict=True)]  # fmt: skip
    missing = [c for c in wanted if c not in common and not (c == "tauType" and all(compute))]
    parts: list[dict[str, np.ndarray]] = []
    for f, fm, schema, comp in zip(files, fmts, schemas, compute, strict=True):
        direct = [c for c in wanted if c not in missing and not (c == "tauType" and comp)]
        extra = [c for c in GEN_MATCH_COLUMNS if comp and c not in direct]
        got = _read_file(f, fm, [*direct, *extra], spec.treename)
        if (need_type and not comp and spec.tau_type == "auto" and np.all(got["tauType"] < 0)
                and set(GEN_MATCH_COLUMNS) <= schema):
            # an unlabelled per-tau file (e.g. toy rows saved as parquet): label it here
            comp = True
            got.update(_read_file(f, fm, list(GEN_MATCH_COLUMNS), spec.treename))
            extra = [c for c in GEN_MATCH_COLUMNS if c not in direct]
        if comp:
            got["tauType"] = compute_tau_type({c: got[c] for c in GEN_MATCH_COLUMNS})
            for c in extra:
                got.pop(c)
        parts.append(got)
    names = [c for c in wanted if c not in missing]
    table = {c: np.concatenate([p[c] for p in parts]) if parts else np.empty(0) for c in names}
    return table, missing


def _join(main: dict[str, np.ndarray], friend: dict[str, np.ndarray], on: Sequence[str],
          alias: str, columns: Sequence[str]) -> dict[str, np.ndarray]:
    import pandas as pd

    left = pd.DataFrame({c: main[c] for c in on})
    right = pd.DataFrame({c: friend[c] for c in (*on, *columns)})
    dup = left.duplicated(subset=list(on))
    if dup.any():
        raise InputError(f"sample '{alias}': join keys {list(on)} are not unique in the inputs "
                         f"({int(dup.sum())} repeats, e.g. {left[dup].iloc[0].to_dict()})")
    # Repeated keys in the friend only matter where an input row would match them (TauTuples
    # repeat e.g. tau_index = -1 for several tau-less jets of one event).
    rdup = right.duplicated(subset=list(on), keep=False)
    if rdup.any():
        hit = right[rdup].merge(left, how="inner", on=list(on))
        if len(hit):
            raise InputError(f"sample '{alias}': join keys {list(on)} are not unique in the "
                             f"friend input for {len(hit)} input rows, e.g. "
                             f"{hit[list(on)].iloc[0].to_dict()}")
        right = right[~rdup]
    right["__found"] = True
    try:
        merged = left.merge(right, how="left", on=list(on), sort=False)
    except Exception as err:
        raise InputError(f"sample '{alias}': cannot join on {list(on)}: {err}") from None
    lost = ~merged["__found"].fillna(False).to_numpy(dtype=bool)
    if lost.any():
        raise InputError(f"sample '{alias}': {int(lost.sum())} of {lost.size} rows have no "
                         f"match in the friend input on {list(on)}")
    out = dict(main)
    for c in columns:
        out[c] = merged[c].to_numpy()
    return out


def available_columns(spec: InputSpec, samples: Iterable[str]) -> set[str]:
    """Columns every wanted sample offers (from its files or its friend), ``tauType``
    included when it can be computed."""
    wanted = list(samples)
    found = discover_samples(spec, wanted)
    aliases = list(found) if _WILDCARD in wanted else [a for a in wanted if a in found]
    friend = discover_samples(spec.friend, aliases) if spec.friend is not None else {}
    out: set[str] | None = None
    for alias in aliases:
        cols: set[str] = set()
        for f in found[alias]:
            fc = _columns_of(f, _file_format(f, spec.format), spec.treename)
            cols = fc if not cols else cols & fc
        if spec.friend is not None and alias in friend:
            fcols = set.intersection(*(
                _columns_of(f, _file_format(f, spec.friend.format), spec.friend.treename)
                for f in friend[alias]))
            cols |= fcols
        if set(GEN_MATCH_COLUMNS) <= cols:
            cols.add("tauType")
        out = cols if out is None else out & cols
    return out or set()


def read_samples(spec: InputSpec, samples: Iterable[str], columns: Iterable[str]
                 ) -> dict[str, dict[str, np.ndarray]]:
    """``{alias: {column: array}}`` for the wanted samples (``"*"`` = every sample found).

    ``tauType`` is computed from the generator branches for TauTuple ROOT files (and for
    parquet without a ``tauType`` column) unless ``spec.tau_type`` says otherwise. Columns
    the files lack come from ``spec.friend``; a column found nowhere is an
    :class:`InputError` naming it and the sample.
    """
    wanted = list(dict.fromkeys(samples))
    cols = list(dict.fromkeys(columns))
    found = discover_samples(spec, wanted)
    explicit = [a for a in wanted if a != _WILDCARD]
    absent = [a for a in explicit if a not in found]
    if absent:
        raise InputError(f"sample(s) {absent} not found under '{spec.path}'; found: "
                         f"{sorted(found) or 'nothing'}")
    aliases = list(found) if _WILDCARD in wanted else explicit
    friend_files: dict[str, list[str]] | None = None
    out: dict[str, dict[str, np.ndarray]] = {}
    for alias in aliases:
        table, missing = _read_sample(spec, alias, found[alias], [*cols])
        if missing:
            if spec.friend is None:
                raise InputError(f"sample '{alias}': column(s) {missing} are not in the "
                                 f"input files ({found[alias][0]} …) and no friend input is "
                                 "configured")
            if friend_files is None:
                friend_files = discover_samples(spec.friend, aliases)
            if alias not in friend_files:
                raise InputError(f"sample '{alias}' not found in the friend input "
                                 f"'{spec.friend.path}'")
            on = list(spec.join_on)
            for key in on:
                if key not in table:
                    table.update(_read_sample(spec, alias, found[alias], [key])[0] or {})
                    if key not in table:
                        raise InputError(f"sample '{alias}': join column '{key}' is missing "
                                         "from the inputs")
            ftable, fmissing = _read_sample(spec.friend, alias, friend_files[alias],
                                            [*on, *missing])
            if fmissing:
                raise InputError(f"sample '{alias}': column(s) {fmissing} are neither in the "
                                 f"inputs nor in the friend input '{spec.friend.path}'")
            table = _join(table, ftable, on, alias, missing)
        out[alias] = {c: table[c] for c in cols}
    return out


# ============================================================================ configuration


def _bins_pairs(value: Any, name: str) -> tuple[tuple[float, float], ...]:
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        raise ConfigError(f"{name}: expected a non-empty list of [min, max] pairs")
    out = []
    for b in value:
        if (not isinstance(b, Sequence) or isinstance(b, str) or len(b) != 2
                or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in b)):
            raise ConfigError(f"{name}: bin {b!r} is not a [min, max] pair of numbers")
        lo, hi = float(b[0]), float(b[1])
        if not lo < hi:
            raise ConfigError(f"{name}: bin {b!r} needs min < max")
        out.append((lo, hi))
    return tuple(out)


def _dm_bins(value: Any) -> tuple[tuple[int, ...], ...]:
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        raise ConfigError("dm_bins: expected a non-empty list of lists of decay modes")
    out = []
    for b in value:
        if (not isinstance(b, Sequence) or isinstance(b, str) or not b
                or not all(isinstance(x, int) and not isinstance(x, bool) for x in b)):
            raise ConfigError(f"dm_bins: bin {b!r} is not a non-empty list of integers")
        out.append(tuple(sorted(set(int(x) for x in b))))
    return tuple(out)


def _check_wps_to_require(value: Any, where: str) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping {{vs_type: WP}} or null")
    out = {}
    for vs, wp in value.items():
        if vs not in VS_TYPES:
            raise ConfigError(f"{where}: unknown vs type {vs!r}; allowed: {', '.join(VS_TYPES)}")
        if not isinstance(wp, str):
            raise ConfigError(f"{where}.{vs}: WP name must be a string, got {wp!r}")
        out[str(vs)] = wp
    return out


@dataclass(frozen=True)
class DiscriminatorSetup:
    """A discriminator as used in one evaluation (with its own required WPs)."""

    discriminator: Discriminator
    wps_to_require: dict[str, str] | None


@dataclass(frozen=True)
class EvaluationConfig:
    """Validated evaluation setup (see ``configs/evaluation/toy.yaml`` for every key)."""

    discriminators: tuple[DiscriminatorSetup, ...]
    input_samples: dict[str, tuple[str, ...]]
    inputs: InputSpec | None
    dataset_alias: str = "test"
    period: str = ""
    vs_types: tuple[str, ...] = VS_TYPES
    cuts: str | None = DEFAULT_CUTS
    weight: str | None = None
    pt_bins: tuple[tuple[float, float], ...] = DEFAULT_PT_BINS
    eta_bins: tuple[tuple[float, float], ...] = DEFAULT_ETA_BINS
    dm_bins: tuple[tuple[int, ...], ...] = DEFAULT_DM_BINS
    roc_prune_decimal: dict[str, int] = field(default_factory=lambda: dict(PRUNE_DECIMALS))
    roc_errors: bool = False
    source: str = "evaluation config"

    def columns(self) -> list[str]:
        """Every input column the evaluation reads."""
        cols: list[str] = ["tauType", "tau_pt", "tau_eta", "tau_decayMode"]
        for expr in (self.cuts, self.weight):
            if expr:
                cols += sorted(compile_expression(expr).columns)
        for setup in self.discriminators:
            d = setup.discriminator
            for vs in self.vs_types:
                cols += d.score_columns(vs) if d.has_score else []
                cols += d.wp_columns(vs)
            for vs in setup.wps_to_require or {}:
                cols += d.wp_columns(vs)
        return list(dict.fromkeys(cols))


_CONFIG_KEYS = {
    "discriminators", "input_samples", "inputs", "dataset_alias", "period", "vs_types",
    "cuts", "weight", "pt_bins", "eta_bins", "dm_bins", "roc_prune_decimal", "roc_errors",
    "wps_to_require",
}  # fmt: skip


def _discriminator_setup(entry: Any, i: int, base: Path | None, default_req: dict | None,
                         where: str, working_points: Mapping | None) -> DiscriminatorSetup:
    w = f"{where}: discriminators[{i}]"
    req = default_req
    if isinstance(entry, (str, os.PathLike)):
        entry = {"config": str(entry)}
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{w}: expected a path or a mapping, got {entry!r}")
    entry = dict(entry)
    if "wps_to_require" in entry:
        req = _check_wps_to_require(entry.pop("wps_to_require"), f"{w}.wps_to_require")
    cfg_path = entry.pop("config", None)
    if cfg_path is not None:
        path = Path(cfg_path)
        if not path.is_absolute():
            for cand in ([base / path] if base else []) + [Path.cwd() / path]:
                if cand.is_file():
                    path = cand
                    break
        if not path.is_file():
            raise ConfigError(f"{w}: discriminator config '{cfg_path}' not found")
        file_data = read_yaml_mapping(path, "discriminator config")
        file_data.update(entry)
        d = discriminator_from_mapping(file_data, source=f"discriminator config '{path}'",
                                       base_dir=path.parent)
    else:
        d = discriminator_from_mapping(entry, source=w, base_dir=base)
    if d.wp_from == "thresholds" and d.wp_thresholds is None and working_points is not None:
        d = d.with_thresholds(working_points)
    return DiscriminatorSetup(d, req)


def load_evaluation_config(
    config: str | os.PathLike[str] | Mapping[str, Any],
    *,
    working_points: Mapping[str, Mapping[str, float]] | str | os.PathLike[str] | None = None,
) -> EvaluationConfig:
    """Read and validate an evaluation config (YAML path or mapping).

    ``working_points`` (a mapping or a ``working_points.json`` path) supplies the thresholds
    of discriminators declared with ``wp_from: thresholds`` but no ``wp_thresholds`` — the
    trained model, whose WPs come from ``taucoffea derive-wp`` after the config was written.
    """
    base: Path | None
    if isinstance(config, Mapping):
        data, base, where = dict(config), None, "evaluation config"
    else:
        path = Path(config)
        data, base, where = read_yaml_mapping(path, "evaluation config"), path.parent, \
            f"evaluation config '{path}'"
    unknown = sorted(set(data) - _CONFIG_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(_CONFIG_KEYS)}")
    if isinstance(working_points, (str, os.PathLike)):
        from taucoffea.algorithms.performance import load_working_points

        working_points = load_working_points(working_points)

    vs_types = data.get("vs_types", list(VS_TYPES))
    if isinstance(vs_types, str):
        vs_types = [vs_types]
    if not isinstance(vs_types, list) or not vs_types or any(v not in VS_TYPES for v in vs_types):
        raise ConfigError(f"{where}: vs_types={vs_types!r}; allowed values: {list(VS_TYPES)}")
    samples = data.get("input_samples")
    if not isinstance(samples, Mapping) or not samples:
        raise ConfigError(f"{where}: input_samples must map sample aliases to tau types, e.g. "
                          "{GluGluHToTauTau_M125: [tau], TTToSemiLeptonic: [jet]}")
    input_samples: dict[str, tuple[str, ...]] = {}
    for alias, types in samples.items():
        if isinstance(types, str):
            types = [types]
        if not isinstance(types, Sequence) or not types:
            raise ConfigError(f"{where}: input_samples.{alias}: expected a list of tau types")
        for t in types:
            if t not in ("tau", *VS_TYPES):
                raise ConfigError(f"{where}: input_samples.{alias}: unknown tau type {t!r}; "
                                  f"allowed: tau, {', '.join(VS_TYPES)}")
        input_samples[str(alias)] = tuple(dict.fromkeys(types))
    listed = {t for ts in input_samples.values() for t in ts}
    if "tau" not in listed:
        raise ConfigError(f"{where}: no sample in input_samples provides genuine taus ('tau')")
    for vs in vs_types:
        if vs not in listed:
            raise ConfigError(f"{where}: vs type '{vs}' is evaluated but no sample in "
                              f"input_samples lists '{vs}'")
    default_req = _check_wps_to_require(data.get("wps_to_require"), f"{where}: wps_to_require")
    entries = data.get("discriminators")
    if isinstance(entries, (str, Mapping)):
        entries = [entries]
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where}: 'discriminators' must list at least one discriminator, got {entries!r}")
    setups = tuple(_discriminator_setup(e, i, base, default_req, where, working_points)
                   for i, e in enumerate(entries))  # fmt: skip
    keys = [s.discriminator.key for s in setups]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise ConfigError(f"{where}: discriminator key(s) {dup} used twice; set 'key'")

    cuts = data.get("cuts", DEFAULT_CUTS)
    weight = data.get("weight")
    for name, expr in (("cuts", cuts), ("weight", weight)):
        if expr is not None and not isinstance(expr, str):
            raise ConfigError(f"{where}: {name} must be a string expression or null")
    if cuts:
        compile_selection(cuts)  # SelectionError early, before anything is read
    if weight:
        compile_expression(weight)
    decimals = dict(PRUNE_DECIMALS)
    prune_cfg = data.get("roc_prune_decimal") or {}
    if not isinstance(prune_cfg, Mapping):
        raise ConfigError(f"{where}: roc_prune_decimal must map vs types to integers")
    for vs, dec in prune_cfg.items():
        if vs not in VS_TYPES or isinstance(dec, bool) or not isinstance(dec, int) or dec < 0:
            raise ConfigError(f"{where}: roc_prune_decimal.{vs}={dec!r} must be an integer "
                              ">= 0 for a vs type")
        decimals[vs] = dec
    inputs = data.get("inputs")
    return EvaluationConfig(
        discriminators=setups,
        input_samples=input_samples,
        inputs=None if inputs is None else InputSpec.from_mapping(inputs, f"{where}: inputs"),
        dataset_alias=str(data.get("dataset_alias", "test")),
        period=str(data.get("period", "")),
        vs_types=tuple(vs_types),
        cuts=cuts or None,
        weight=weight or None,
        pt_bins=_bins_pairs(data.get("pt_bins", DEFAULT_PT_BINS), "pt_bins"),
        eta_bins=_bins_pairs(data.get("eta_bins", DEFAULT_ETA_BINS), "eta_bins"),
        dm_bins=_dm_bins(data.get("dm_bins", DEFAULT_DM_BINS)),
        roc_prune_decimal=decimals,
        roc_errors=bool(data.get("roc_errors", False)),
        source=where,
    )


# ============================================================================ evaluation


@dataclass
class EvaluationResult:
    """What :func:`run_evaluate` computed and wrote."""

    performance: dict[str, dict[str, Any]]
    outputs: list[Path]
    aucs: list[dict[str, Any]]
    skipped: list[str]
    n_rows: dict[str, int]

    def summary(self) -> str:
        lines = [f"{'discriminator':<28} {'vs':<4} {'pT':<14} {'|eta|':<10} {'DM':<14} "
                 f"{'AUC':>8}"]
        for a in self.aucs:
            lines.append(
                f"{a['name'][:28]:<28} {a['vs_type']:<4} "
                f"{a['pt_min']:g}-{a['pt_max']:g}".ljust(48)
                + f" {a['eta_min']:g}-{a['eta_max']:g}".ljust(11)
                + f" {','.join(map(str, a['dm_bin']))}".ljust(15)
                + f" {a['auc']:>8.5f}"
            )
        for s in self.skipped:
            lines.append(f"skipped: {s}")
        return "\n".join(lines)


def _concat(tables: Sequence[Mapping[str, np.ndarray]], cols: Sequence[str]
            ) -> dict[str, np.ndarray]:
    return {c: np.concatenate([np.asarray(t[c]) for t in tables]) for c in cols}


def _vs_table(cfg: EvaluationConfig, data: Mapping[str, Mapping[str, np.ndarray]], vs: str,
              cols: Sequence[str]) -> dict[str, np.ndarray]:
    """Genuine taus from the samples listing ``tau`` plus type-``vs`` taus from those listing
    ``vs``; one table with a boolean ``__signal``."""
    vs_code = int(TauType[vs])
    parts = []
    for alias, table in data.items():
        types = cfg.input_samples.get(alias, cfg.input_samples.get(_WILDCARD, ()))
        tt = np.asarray(table["tauType"])
        keep = np.zeros(tt.shape, dtype=bool)
        if "tau" in types:
            keep |= tt == _TAU
        if vs in types:
            keep |= tt == vs_code
        parts.append({c: np.asarray(table[c])[keep] for c in cols})
    out = _concat(parts, cols)
    out["__signal"] = out["tauType"] == _TAU
    return out


def _roc_with_errors(roc: RocCurve, y: np.ndarray, w: np.ndarray) -> RocCurve:
    """Clopper–Pearson bands (Kish effective counts) for the points of a pruned curve."""
    errs = []
    for rate, cls in ((roc.fpr, ~y), (roc.tpr, y)):
        wc = w[cls]
        total, total2 = wc.sum(), np.square(wc).sum()
        eff, lo, hi = clopper_pearson_weighted(np.clip(rate, 0, 1) * total,
                                               np.full(rate.shape, total), total2)
        errs.append(np.vstack([eff - lo, hi - eff]))
    return RocCurve(roc.fpr, roc.tpr, roc.thresholds, errs[0], errs[1])


def _required_mask(setup: DiscriminatorSetup, table: Mapping[str, np.ndarray], vs: str,
                   where: str) -> np.ndarray:
    mask = np.ones(table["tauType"].shape, dtype=bool)
    d = setup.discriminator
    for other, wp in (setup.wps_to_require or {}).items():
        if other == vs:
            continue
        if wp not in d.wp_names(other):
            raise ConfigError(
                f"{where}: discriminator '{d.name}' has no WP '{wp}' against {other} "
                f"(defined: {d.wp_names(other) or 'none'}), required by wps_to_require; "
                "give this discriminator its own 'wps_to_require: null' or supply thresholds"
            )
        mask &= d.passes(table, other, wp)
    return mask


def _evaluate_one(cfg: EvaluationConfig, setup: DiscriminatorSetup,
                  tables: Mapping[str, dict[str, np.ndarray]], perf: dict[str, Any],
                  aucs: list[dict[str, Any]], skipped: list[str]) -> dict[str, Any]:
    d = setup.discriminator
    for vs in cfg.vs_types:
        full = tables[vs]
        keep = _required_mask(setup, full, vs, cfg.source)
        table = {c: v[keep] for c, v in full.items()}
        y = table["__signal"]
        w = table["__weight"]
        rank = d.ranking_score(table, vs) if d.has_score else None
        if rank is not None and np.any(np.isnan(rank)):
            raise InputError(f"discriminator '{d.name}': score vs {vs} is NaN for "
                             f"{int(np.isnan(rank).sum())} taus")
        masks = d.wp_masks(table, vs)
        if d.wp_from == "thresholds" and not masks:
            skipped.append(f"{d.name} vs {vs}: no WP thresholds given (use --working-points)")
        pt, abs_eta, dm = table["tau_pt"], np.abs(table["tau_eta"]), table["tau_decayMode"]
        for dm_bin in cfg.dm_bins:
            in_dm = np.isin(dm, dm_bin)
            for eta_lo, eta_hi in cfg.eta_bins:
                in_eta = in_dm & (abs_eta >= eta_lo) & (abs_eta < eta_hi)
                for pt_lo, pt_hi in cfg.pt_bins:
                    sel = in_eta & (pt >= pt_lo) & (pt < pt_hi)
                    key = dict(pt_min=pt_lo, pt_max=pt_hi, eta_min=eta_lo, eta_max=eta_hi,
                               dm_bin=list(dm_bin), vs_type=vs,
                               dataset_alias=cfg.dataset_alias)  # fmt: skip
                    ys, ws = y[sel], w[sel]
                    w_sig, w_bkg = ws[ys].sum(), ws[~ys].sum()
                    if not (w_sig > 0 and w_bkg > 0):
                        skipped.append(
                            f"{d.name} vs {vs}, pT [{pt_lo:g}, {pt_hi:g}), |eta| [{eta_lo:g}, "
                            f"{eta_hi:g}), DM {list(dm_bin)}: {int(ys.sum())} taus, "
                            f"{int((~ys).sum())} {vs} (need both)")
                        log.info("evaluate: %s", skipped[-1])
                        continue
                    if rank is not None:
                        full_roc = roc_curve(ys, rank[sel], ws)
                        area = auc(full_roc)
                        pruned = prune(full_roc, cfg.roc_prune_decimal[vs])
                        thr = d.score_from_ranking(pruned.thresholds)
                        pruned = RocCurve(pruned.fpr, pruned.tpr, thr)
                        if cfg.roc_errors:
                            pruned = _roc_with_errors(pruned, ys, ws)
                        perf = add_entry(perf, "roc_curve", pruned, auc_score=area, **key)
                        aucs.append({"name": d.name, "key": d.key, **key, "auc": area})
                    if masks:
                        curve, names = wp_points_from_masks(
                            ys, {wp: m[sel] for wp, m in masks.items()}, ws)
                        if d.wp_from == "thresholds" and d.wp_thresholds:
                            thr_map = d.wp_thresholds[vs]
                            curve = RocCurve(curve.fpr, curve.tpr,
                                             np.array([thr_map[n] for n in names]),
                                             curve.fpr_err, curve.tpr_err)
                        perf = add_entry(perf, "roc_wp", curve, wp_names=names, **key)
    return perf


def _load_or_new(path: Path, d: Discriminator, period: str, overwrite: bool) -> dict[str, Any]:
    meta = {"key": d.key, "period": period}
    if path.exists() and not overwrite:
        perf = load_performance(path)
        if perf.get("name") != d.name:
            raise InputError(f"'{path}' belongs to discriminator '{perf.get('name')}', not "
                             f"'{d.name}'; choose another output or pass overwrite")
        perf.update(meta)
        return perf
    return new_performance(d.name, **meta)


def run_evaluate(
    config: str | os.PathLike[str] | Mapping[str, Any] | EvaluationConfig,
    output: str | os.PathLike[str] | None,
    *,
    input_path: str | os.PathLike[str] | None = None,
    working_points: Mapping[str, Mapping[str, float]] | str | os.PathLike[str] | None = None,
    overwrite: bool = False,
) -> EvaluationResult:
    """Evaluate every configured discriminator and merge the curves into
    ``<output>/<key>/performance.json``.

    ``input_path`` replaces ``inputs.path`` of the config (the CLI's ``--input``). An
    existing ``performance.json`` of the same discriminator is updated (entries with the
    same bin key are replaced, others kept); ``overwrite`` starts it afresh instead.
    ``output=None`` computes without writing.
    """
    cfg = config if isinstance(config, EvaluationConfig) else load_evaluation_config(
        config, working_points=working_points)
    spec = cfg.inputs
    if input_path is not None:
        spec = (spec or InputSpec(str(input_path))).with_path(input_path)
    if spec is None or not spec.path:
        raise ConfigError(f"{cfg.source}: no input given (set inputs.path or pass --input)")

    cols = cfg.columns()
    data = read_samples(spec, cfg.input_samples, cols)
    cut = compile_selection(cfg.cuts) if cfg.cuts else None
    weight = compile_expression(cfg.weight) if cfg.weight else None
    n_rows: dict[str, int] = {}
    for alias, table in data.items():
        keep = np.asarray(cut(table), dtype=bool) if cut else np.ones(len(table["tauType"]), bool)
        w = (np.asarray(weight(table), dtype=np.float64) if weight
             else np.ones(keep.shape))  # fmt: skip
        if not np.all(np.isfinite(w[keep])):
            raise InputError(f"sample '{alias}': weight expression '{cfg.weight}' is not finite "
                             "for some selected taus")
        table["__weight"] = w
        data[alias] = {c: np.asarray(v)[keep] for c, v in table.items()}
        n_rows[alias] = int(keep.sum())
    tables = {vs: _vs_table(cfg, data, vs, [*cols, "__weight"]) for vs in cfg.vs_types}

    perfs: dict[str, dict[str, Any]] = {}
    outputs: list[Path] = []
    aucs: list[dict[str, Any]] = []
    skipped: list[str] = []
    for setup in cfg.discriminators:
        d = setup.discriminator
        target = Path(output) / d.key / "performance.json" if output is not None else None
        perf = (_load_or_new(target, d, cfg.period, overwrite) if target is not None
                else new_performance(d.name, key=d.key, period=cfg.period))  # fmt: skip
        perf = _evaluate_one(cfg, setup, tables, perf, aucs, skipped)
        perfs[d.key] = perf
        if target is not None:
            outputs.append(save_performance(perf, target))
    return EvaluationResult(perfs, outputs, aucs, skipped, n_rows)

