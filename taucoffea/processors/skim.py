"""SkimProcessor: TauMLTools' ``skim_tree.py`` as a coffea processor (reference spec §7.1).

One pass over the input writes, per chunk, the rows passing each selection as a parquet part
and returns the part paths; the stage reassembles one output per input file in entry order.
Several named selections can be applied to one dataset in the same pass — the adversarial
skim cuts the DY sample into DY τ and DY μ while reading it once.

Selections are compiled by the safe compiler (never evaluated as code). With
``recompute_tautype`` the tau type is recomputed from the generator information into
``mytauType`` (−1 when there is no valid gen match), so cuts can use it like in the original's
``recompute_tautype.compute``.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from typing import Any

import awkward as ak
import numpy as np
from coffea import processor

from taucoffea.adversarial.parts import event_rows, write_part
from taucoffea.columns.selection import compile_selection
from taucoffea.columns.table import GEN_MATCH_COLUMNS, select_columns
from taucoffea.errors import ConfigError, InputError

__all__ = ["SkimProcessor"]


class _Columns(Mapping[str, Any]):
    """Lazy column access for the selection: reads only what the cut uses."""

    def __init__(self, events: Any, extra: Mapping[str, Any]) -> None:
        self._events, self._extra = events, extra
        self._fields = list(events.fields) + [k for k in extra if k not in events.fields]

    def __getitem__(self, name: str) -> Any:
        if name in self._extra:
            return self._extra[name]
        if name not in self._events.fields:
            raise KeyError(name)
        value = self._events[name]
        return ak.to_numpy(value) if isinstance(value, ak.Array) and value.ndim == 1 else value

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)


class SkimProcessor(processor.ProcessorABC):
    """Write the rows passing each selection; return part paths and counts.

    ``selections`` is either one cut string applied to every dataset (output label = the
    dataset name) or ``{dataset: {label: cut}}``. Output:
    ``{"parts": {label: {file: [(entry_start, part_path)]}}, "selected": {label: int},
    "read": {dataset: int}}`` — lists and integers, merged by coffea by concatenation/addition.
    """

    def __init__(
        self,
        selections: str | Mapping[str, Mapping[str, str]],
        parts_dir: str | os.PathLike[str],
        *,
        include: Collection[str] | None = None,
        exclude: Collection[str] | None = None,
        recompute_tautype: bool = False,
        tau_type_column: str = "mytauType",
    ) -> None:
        self.selections = selections if isinstance(selections, str) else {d: dict(s) for d, s in selections.items()}
        self.parts_dir = str(parts_dir)
        self.include = list(include) if include else None
        self.exclude = list(exclude) if exclude else None
        self.recompute_tautype = bool(recompute_tautype)
        self.tau_type_column = tau_type_column
        for cut in self._all_cuts():
            compile_selection(cut)  # fail at construction, before any worker starts

    def _all_cuts(self) -> list[str]:
        if isinstance(self.selections, str):
            return [self.selections]
        return [cut for per in self.selections.values() for cut in per.values()]

    def _cuts_for(self, dataset: str) -> dict[str, str]:
        if isinstance(self.selections, str):
            return {dataset: self.selections}
        if dataset not in self.selections:
            raise ConfigError(f"skim: no selection given for dataset '{dataset}'; have {sorted(self.selections)}")
        return self.selections[dataset]

    def process(self, events: Any) -> dict[str, Any]:
        meta = events.metadata
        dataset, filename = meta["dataset"], os.path.abspath(meta["filename"])
        start, stop = int(meta["entrystart"]), int(meta["entrystop"])
        fields = list(events.fields)
        extra: dict[str, Any] = {}
        if self.recompute_tautype:
            extra[self.tau_type_column] = _tau_type(events, fields, filename)
        available = fields + [k for k in extra if k not in fields]
        columns = select_columns(available, self.include, self.exclude)
        table = _Columns(events, extra)
        parts: dict[str, dict[str, list[tuple[int, str]]]] = {}
        selected: dict[str, int] = {}
        for label, cut in self._cuts_for(dataset).items():
            sel = compile_selection(cut, columns=available)
            result = sel(table)
            mask = np.asarray(ak.to_numpy(result) if isinstance(result, ak.Array) else result, dtype=bool)
            if mask.shape != (stop - start,):
                raise ConfigError(f"skim: selection '{cut}' does not give one value per row (uses a list column?)")
            index = np.flatnonzero(mask)
            rows = event_rows(table, [c for c in columns if c not in extra], index)
            for k, v in extra.items():
                if k in columns:
                    rows[k] = v[index]
            rows = {c: rows[c] for c in columns}
            path = write_part(rows, self.parts_dir, label, filename, start, stop)
            parts[label] = {filename: [(start, path)] if path else []}
            selected[label] = int(index.size)
        return {"parts": parts, "selected": selected, "read": {dataset: stop - start}}

    def postprocess(self, accumulator: Any) -> Any:
        return accumulator


def _tau_type(events: Any, fields: list[str], filename: str) -> np.ndarray:
    from taucoffea.physics.tautypes import compute_tau_type

    missing = [c for c in GEN_MATCH_COLUMNS if c not in fields]
    if missing:
        raise InputError(f"--recompute-tautype needs branch(es) {missing}, missing in '{filename}'")
    gen = {c: ak.to_numpy(events[c]) for c in GEN_MATCH_COLUMNS}
    return compute_tau_type(gen).astype(np.int32)
