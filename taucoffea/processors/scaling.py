"""ScalingProcessor: per-file moments and quantile histograms of every scaled feature.

For each variable type of the features config the processor works in that type's *element
space*: one entry per tau for ``global`` types (TauFlat, GridGlobal), one entry per list
element (PF candidate, electron, muon) for cone types. Per-tau columns used by a list type
(``tau_pt`` in ``pfCand_pt/tau_pt``) are taken through each element's tau. A feature's cut
selects elements, its aliases are evaluated on the selected elements only, and the values are
split into the cones (reference §5.3). Cut terms, cone masks and column subsets are cached per
chunk, so features sharing a cut (all PF electrons, all PF electrons with track details, …)
share the work.

Output (plain mergeable dicts, keyed by input file so that snapshots after N files are exact
whatever the chunking)::

    {"files": {filename: {"entries": int,
                          "moments": {(type, feature, cone): Moments},      # normal features
                          "summaries": {(type, feature, cone): dict},       # per_file, whole file
                          "hists":   {(type, feature, cone): QuantileHist},  # per_file, file in parts
                          "nonfinite": {(type, feature, cone): int64[3]}}},  # nan, +inf, −inf
     "hists": {(type, feature, cone): QuantileHist}}   # all files: total, or per_file whole files

With ``quantiles: per_file`` a chunk that is its whole file (chunk size ≥ file)
ships the file's quantile summary and adds its histograms to the all-files total only; a file
read in parts ships its histograms per file, merged and summarised on the driver. Both give
the same numbers; the first keeps the driver's accumulator from growing by a histogram set
(~8 MB for the shipped config) per file.

Works in any coffea ``Runner`` with ``schema=BaseSchema`` on TauTuple ROOT files or per-tau
parquet (e.g. ``ShuffleMergeSpectral_<k>.parquet``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import awkward as ak
import numpy as np
from coffea import processor

from taucoffea.algorithms.feature_stats import (
    CONE_CODES,
    cone_labels,
    segment_statistics,
)
from taucoffea.algorithms.scaling import ConeDefinition, Moments, QuantileHist
from taucoffea.columns.arrow_rows import column_parts
from taucoffea.columns.bulk import parquet_num_rows, read_parquet_rows
from taucoffea.columns.parquet import flat_column
from taucoffea.columns.selection import CompiledExpression, Selection, compile_selection
from taucoffea.errors import ConfigError, InputError, SelectionError
from taucoffea.scaling.config import (
    QUANTILE_MODES,
    FeatureConfig,
    FeatureSpec,
    TypeCones,
    load_feature_config,
)

__all__ = ["ScalingProcessor"]

_TAU = ("tau_pt", "tau_eta", "tau_phi")


class _Chunk:
    """Column access for one chunk, with jagged columns split into (counts, flat content).

    Parquet chunks are read in one bulk pyarrow call of the columns the features need (coffea
    reads parquet a whole-file column at a time); ROOT chunks come through coffea's events.
    """

    def __init__(self, events: Any, filename: str, columns: set[str] | None = None) -> None:
        self.events = events
        self.filename = filename
        self.n = len(events)
        self._fields: set[str] | None = None
        self._flat: dict[str, np.ndarray] = {}
        self._counts: dict[str, np.ndarray | None] = {}
        self.shared: dict[Any, Any] = {}  # caches shared between var types (cone labels …)
        self._table = None
        #: the chunk is its whole file: per-file results are final here. taucoffea's runner puts
        #: the file's entry count into every chunk's metadata (``file_entries``); in a plain
        #: coffea Runner a parquet footer tells it, a ROOT chunk is then never taken as whole.
        self.whole_file = False
        meta = getattr(events, "metadata", None) or {}
        if "entrystart" not in meta:
            return
        start, stop = int(meta["entrystart"]), int(meta["entrystop"])
        parquet = not meta.get("treename")
        if columns and parquet:
            self._table = read_parquet_rows(filename, sorted(columns), start, stop)
        file_entries = meta.get("file_entries")
        if file_entries is None and parquet:
            file_entries = parquet_num_rows(filename)
        self.whole_file = start == 0 and stop == file_entries

    def _load(self, name: str) -> None:
        if self._table is not None:
            if name not in self._table.column_names:
                raise InputError(f"column '{name}' is missing in file '{self.filename}'")
            self._counts[name], self._flat[name] = flat_column(self._table.column(name), name)
            return
        if self._fields is None:
            events = self.events
            self._fields = set(events.fields if hasattr(events, "fields") else events.keys())
        if name not in self._fields:
            raise InputError(f"column '{name}' is missing in file '{self.filename}'")
        arr = self.events[name]
        if isinstance(arr, ak.Array) and arr.ndim > 1:
            if arr.ndim != 2:
                raise InputError(f"column '{name}' in '{self.filename}' is nested deeper than one list level")
            parts = column_parts(arr)
            if parts is not None:
                offsets, content = parts
                assert offsets is not None  # two-level array
                self._counts[name] = np.diff(offsets)
                self._flat[name] = content[offsets[0] : offsets[-1]]
            else:
                self._counts[name] = ak.to_numpy(ak.num(arr, axis=1)).astype(np.int64)
                self._flat[name] = np.asarray(ak.to_numpy(ak.flatten(arr, axis=1)))
        else:
            self._counts[name] = None
            self._flat[name] = np.asarray(ak.to_numpy(arr) if isinstance(arr, ak.Array) else arr)

    def counts(self, name: str) -> np.ndarray | None:
        """Elements per tau of a jagged column, ``None`` for a per-tau column."""
        if name not in self._counts:
            self._load(name)
        return self._counts[name]

    def flat(self, name: str) -> np.ndarray:
        """Per-tau values, or the flat content of a jagged column."""
        if name not in self._flat:
            self._load(name)
        return self._flat[name]


class _Space:
    """The element space of one variable type inside a chunk.

    A selection (one per distinct cut) is an index array into the elements, ordered by cone:
    the inner-cone elements, then the outer-cone ones; elements outside every cone are
    dropped. A feature is evaluated once on those elements and each cone is a contiguous
    slice of the result — no per-cone copies.
    """

    def __init__(self, chunk: _Chunk, var_type: str, cones: TypeCones, cone_def: ConeDefinition) -> None:
        self.chunk = chunk
        self.var_type = var_type
        self.cones = cones
        self.cone_def = cone_def
        self.anchor = cones.eta
        self.counts = chunk.counts(self.anchor) if self.anchor is not None else None
        if not cones.is_global and self.counts is None:
            raise ConfigError(
                f"cone_selection.{var_type}: cones {list(cones.cones)} need a list column as eta, "
                f"but '{cones.eta}' has one value per tau in '{chunk.filename}'"
            )
        self._columns: dict[str, np.ndarray] = {}
        self._selections: dict[tuple[Any, ...], tuple[np.ndarray | None, dict[str, slice]]] = {}
        self._subsets: dict[tuple[Any, ...], np.ndarray] = {}
        self._masks: dict[tuple[Any, ...], np.ndarray] = {}

    @property
    def jagged(self) -> bool:
        return self.counts is not None

    @property
    def size(self) -> int:
        """Number of elements (taus for per-tau types)."""
        return int(self.counts.sum()) if self.counts is not None else self.chunk.n

    def column(self, name: str, feature: FeatureSpec | None = None) -> np.ndarray:
        if name in self._columns:
            return self._columns[name]
        counts = self.chunk.counts(name)
        if counts is None:
            values = self.chunk.flat(name)
            if self.jagged:
                key = ("repeat", self.anchor, name)
                shared = self.chunk.shared
                if key not in shared:
                    shared[key] = np.repeat(values, self.counts)
                values = shared[key]
        else:
            if not self.jagged:
                where = f"feature '{feature.name}' of " if feature is not None else ""
                raise InputError(
                    f"{where}var type '{self.var_type}' has one entry per tau, but column '{name}' is a list "
                    f"in '{self.chunk.filename}'; give the type a list column in cone_selection.var_names"
                )
            same = ("same-lengths", self.anchor, name)
            if counts is not self.counts and not self.chunk.shared.get(same):
                if not np.array_equal(counts, self.counts):
                    raise InputError(
                        f"column '{name}' does not have the same list lengths as '{self.anchor}' "
                        f"(var type '{self.var_type}') in '{self.chunk.filename}'"
                    )
                self.chunk.shared[same] = True
            values = self.chunk.flat(name)
        self._columns[name] = values
        return values

    def _cone_masks(self) -> dict[str, np.ndarray]:
        key = ("cones", self.cones.eta, self.cones.phi)
        shared = self.chunk.shared
        if key not in shared:
            assert self.cones.eta is not None and self.cones.phi is not None and self.counts is not None
            tau = [self.chunk.flat(c) for c in _TAU]
            labels = cone_labels(self.counts, *tau, self.column(self.cones.eta), self.column(self.cones.phi),
                                 self.cone_def)
            shared[key] = {cone: labels == code for cone, code in CONE_CODES.items()}
        return shared[key]

    def selection(self, feature: FeatureSpec, cut: Sequence[_Conjunct],
                  aliases: Mapping[str, CompiledExpression]) -> tuple[np.ndarray | None, dict[str, slice]]:
        """(element indices ordered by cone, or None for all; {cone: slice of those})."""
        key = tuple(part.key for part in cut)
        if key not in self._selections:
            mask = self._mask(feature, cut, aliases)
            if self.cones.is_global:
                idx = None if mask is None else np.flatnonzero(mask)
                n = self.size if idx is None else idx.size
                self._selections[key] = (idx, {"global": slice(0, n)})
            else:
                masks = self._cone_masks()
                parts, slices, start = [], {}, 0
                for cone in self.cones.cones:
                    part = np.flatnonzero(masks[cone] if mask is None else (masks[cone] & mask))
                    parts.append(part)
                    slices[cone] = slice(start, start + part.size)
                    start += part.size
                idx = parts[0] if len(parts) == 1 else np.concatenate(parts)
                self._selections[key] = (idx, slices)
        return self._selections[key]

    def _mask(self, feature: FeatureSpec, cut: Sequence[_Conjunct],
              aliases: Mapping[str, CompiledExpression]) -> np.ndarray | None:
        """The cut over all elements: its ``&&`` terms are evaluated once per chunk and type,
        and cuts sharing leading terms (all PF electrons, those with track details, …) share
        their conjunction."""
        if not cut:
            return None
        key = ("cut", *(part.key for part in cut))
        if key not in self._masks:
            term = ("term", cut[-1].key)
            if term not in self._masks:
                values = np.asarray(self.evaluate(cut[-1].selection, aliases, None, feature, ()), dtype=bool)
                self._masks[term] = values if values.shape == (self.size,) else np.broadcast_to(values, (self.size,))
            rest = self._mask(feature, cut[:-1], aliases)
            self._masks[key] = self._masks[term] if rest is None else rest & self._masks[term]
        return self._masks[key]

    def evaluate(self, expr: CompiledExpression, aliases: Mapping[str, CompiledExpression],
                 idx: np.ndarray | None, feature: FeatureSpec, key: tuple[Any, ...]) -> np.ndarray:
        """Evaluate ``expr`` on the elements ``idx`` (all if None; ``key`` names that
        selection for the column cache), resolving aliases."""
        env: dict[str, Any] = {}
        for name in expr.columns:
            if name in aliases and aliases[name] is not expr:
                env[name] = self.evaluate(aliases[name], aliases, idx, feature, key)
            else:
                env[name] = self._subset(name, idx, feature, key)
        try:
            values = expr(env)
        except SelectionError as err:
            raise InputError(
                f"feature '{feature.name}' ({self.var_type}) in '{self.chunk.filename}': {err}"
            ) from None
        return np.asarray(values)

    def _subset(self, name: str, idx: np.ndarray | None, feature: FeatureSpec, key: tuple[Any, ...]) -> np.ndarray:
        if idx is None:
            return self.column(name, feature)
        cache_key = (key, name)
        if cache_key not in self._subsets:
            if self.jagged and self.chunk.counts(name) is None:
                # a per-tau column on selected elements: gathered from the per-tau array (small,
                # cache-resident) through each element's tau, not broadcast to every element first
                self._subsets[cache_key] = np.take(self.chunk.flat(name), self._tau_of(key, idx))
            else:
                self._subsets[cache_key] = np.take(self.column(name, feature), idx)  # ~1.4× values[idx]
        return self._subsets[cache_key]

    def _tau_of(self, key: tuple[Any, ...], idx: np.ndarray) -> np.ndarray:
        """The tau of each selected element."""
        cache_key = (key, None)
        if cache_key not in self._subsets:
            shared = self.chunk.shared
            owner = ("tau-of", self.anchor)
            if owner not in shared:
                assert self.counts is not None
                shared[owner] = np.repeat(np.arange(self.counts.size, dtype=np.int32), self.counts)
            self._subsets[cache_key] = np.take(shared[owner], idx)
        return self._subsets[cache_key]


def _plain_column(expr: CompiledExpression, aliases: Mapping[str, CompiledExpression]) -> str | None:
    """The input column ``expr`` just names (through aliases that only rename), or None."""
    seen: set[str] = set()
    while True:
        name = expr.expression.strip()
        if not name.isidentifier() or expr.columns != {name} or name in seen:
            return None
        if name not in aliases or aliases[name] is expr:
            return name
        seen.add(name)
        expr = aliases[name]


class _Conjunct(NamedTuple):
    """One top-level ``&&`` term of a cut; ``key`` identifies it with the aliases it reads."""

    key: tuple[Any, ...]
    selection: Selection


_CUT_TOKENS = re.compile(r"&&|\|\|?|\band\b|\bor\b|[()\[\]]")


def _split_conjuncts(text: str) -> list[str]:
    """The top-level ``&&`` / ``and`` terms of a valid cut (the cut itself when an ``||``,
    ``|`` or ``or`` sits at the top level). ``&&`` binds looser than every operator but ``||``, so the
    terms of a valid cut are valid cuts whose conjunction is the cut."""
    depth, start, parts = 0, 0, []
    for match in _CUT_TOKENS.finditer(text):
        token = match.group()
        if token in ("(", "["):
            depth += 1
        elif token in (")", "]"):
            depth -= 1
        elif depth == 0:
            if token in ("||", "|", "or"):  # '|' is an 'or' of the selection language too
                return [text.strip()]
            parts.append(text[start : match.start()].strip())
            start = match.end()
    parts.append(text[start:].strip())
    return parts


def _conjuncts(cut: Selection | None, text: str | None, aliases: Mapping[str, CompiledExpression],
               sources: Mapping[str, str]) -> tuple[_Conjunct, ...]:
    if cut is None or text is None:
        return ()
    try:
        parts = [(t, compile_selection(t)) for t in _split_conjuncts(text)]
    except SelectionError:  # not expected for a valid cut; then the cut stays whole
        parts = [(text, cut)]
    out = []
    for t, sel in parts:
        used, todo = set(), list(sel.columns)
        while todo:  # the aliases the term reads, transitively: they are part of its meaning
            name = todo.pop()
            if name in aliases and name not in used:
                used.add(name)
                todo.extend(aliases[name].columns)
        out.append(_Conjunct((t, tuple(sorted((n, sources[n]) for n in used))), sel))
    return tuple(out)


class ScalingProcessor(processor.ProcessorABC):
    """Mergeable scaling statistics per input file (see the module docstring).

    ``config`` is a :class:`FeatureConfig`, a YAML path or a mapping; ``var_types`` limits the
    work to some variable types; ``quantiles`` overrides ``Scaling_setup.quantiles``
    (``per_file``, ``total`` or ``none``).
    """

    def __init__(
        self,
        config: FeatureConfig | str | os.PathLike[str] | Mapping[str, Any],
        *,
        var_types: Sequence[str] | None = None,
        quantiles: str | None = None,
    ) -> None:
        self.config = load_feature_config(config)
        self.var_types = list(var_types) if var_types is not None else None
        self.quantiles = quantiles or self.config.setup.quantiles
        if self.quantiles not in QUANTILE_MODES:
            raise ConfigError(f"quantiles mode '{self.quantiles}' is not allowed; allowed: {list(QUANTILE_MODES)}")
        self._features = {
            t: [f for f in feats if f.scaling in ("linear", "normal")]
            for t, feats in self.config.active(self.var_types).items()
        }
        self._compiled: dict[tuple[str, str], Any] | None = None
        self._columns: set[str] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_compiled"] = None  # recompiled on the worker
        return state

    def _compile(self) -> dict[tuple[str, str], Any]:
        if self._compiled is None:
            compiled = {}
            for t, feats in self._features.items():
                for f in feats:
                    value, cut, aliases = f.compiled()
                    compiled[(t, f.name)] = (value, _conjuncts(cut, f.cut, aliases, f.alias_map), aliases)
            self._compiled = compiled
        return self._compiled

    @property
    def columns(self) -> set[str]:
        """Input columns this processor reads."""
        if self._columns is None:
            self._columns = self.config.columns(self.var_types)
        return self._columns

    def process(self, events: Any) -> dict[str, Any]:
        filename = str(events.metadata["filename"])
        chunk = _Chunk(events, filename, self.columns)
        compiled = self._compile()
        moments: dict[tuple[str, str, str], Moments] = {}
        hists: dict[tuple[str, str, str], QuantileHist] = {}
        nonfinite: dict[tuple[str, str, str], np.ndarray] = {}
        keep_hists = self.quantiles != "none"
        for var_type, feats in self._features.items():
            if not feats:
                continue
            space = _Space(chunk, var_type, self.config.cone_selection[var_type], self.config.cone_definition)
            for feature in feats:
                value, cut, aliases = compiled[(var_type, feature.name)]
                idx, slices = space.selection(feature, cut, aliases)
                segments = [(part.start, part.stop) for part in slices.values()]
                column = _plain_column(value, aliases)
                if column is not None:
                    # a plain column (or an alias naming one): the kernel gathers the selected
                    # elements itself
                    values = space.column(column, feature)
                else:
                    n_sel = space.size if idx is None else idx.size
                    key = tuple(part.key for part in cut)
                    values = np.asarray(space.evaluate(value, aliases, idx, feature, key))
                    if values.shape != (n_sel,):  # a constant expression
                        values = np.broadcast_to(values, (n_sel,)).copy()
                    idx = None
                stats = segment_statistics(values, idx, segments, hist=keep_hists)
                for cone, (m, h, bad) in zip(slices, stats, strict=True):
                    key = (var_type, feature.name, cone)
                    if bad is not None:
                        nonfinite[key] = bad
                    if feature.scaling == "normal":
                        moments[key] = m
                    if h is not None:
                        hists[key] = h
        per_file: dict[str, Any] = {"entries": chunk.n, "moments": moments, "nonfinite": nonfinite}
        out: dict[str, Any] = {"files": {filename: per_file}}
        if self.quantiles == "per_file" and chunk.whole_file:
            # the file's quantiles are final: ship their summary, and the histograms only into
            # the running total — per-file histograms (~8 MB a file for the shipped config)
            # would make the driver's accumulator grow with every file
            per_file["summaries"] = {key: h.summary() for key, h in hists.items()}
            out["hists"] = hists
        elif self.quantiles == "per_file":
            per_file["hists"] = hists  # part of a file: merged per file, summarised on the driver
        elif self.quantiles == "total":
            out["hists"] = hists
        return out

    def postprocess(self, accumulator: Any) -> Any:
        return accumulator
