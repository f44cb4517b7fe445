"""Event-drop processors: the observed pT histogram (pass 1) and the drop itself (pass 2).

Pass 2 keeps each entry with the keep probability of its pT bin, read from the
correctionlib file the stage wrote, and decides with the entry's own counter-based random
number (DESIGN §5) — so what is kept depends only on which entry it is, never on chunking.
``limits`` restricts both passes to the first ``n`` entries of each file: that is how
``--n-tau`` ("process exactly n taus", spec §7.2) is applied.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import awkward as ak
import hist
import numpy as np
from coffea import processor

from taucoffea.adversarial.parts import event_rows, write_part
from taucoffea.algorithms.event_drop import KEEP_CORRECTION, check_edges
from taucoffea.algorithms.rng import entry_uniforms
from taucoffea.columns.table import select_columns
from taucoffea.processors._corrections import LazyCorrection

__all__ = ["STAGE", "EventDropProcessor", "PtHistogramProcessor", "pt_hist"]

#: Stage name in the random-number key: another stage never reuses the same numbers.
STAGE = "event-drop"


def pt_hist(edges: Sequence[float]) -> hist.Hist:
    """An empty pT histogram with under/overflow (the flow bins count out-of-range entries)."""
    return hist.Hist(hist.axis.Variable(check_edges(edges), name="pt", label="tau pT [GeV]"), storage=hist.storage.Double())


def _used(meta: Mapping[str, Any], limits: Mapping[str, int] | None) -> tuple[str, int, int, int]:
    """(file, start, stop, number of entries of the chunk inside the limit)."""
    filename = os.path.abspath(meta["filename"])
    start, stop = int(meta["entrystart"]), int(meta["entrystop"])
    limit = stop if limits is None else int(limits.get(filename, stop))
    return filename, start, stop, max(0, min(stop, limit) - start)


def _pt(events: Any, column: str, n: int) -> np.ndarray:
    return np.asarray(ak.to_numpy(events[column][:n]), dtype=np.float64)


class PtHistogramProcessor(processor.ProcessorABC):
    """``{"pt": {dataset: Hist}, "entries": {dataset: {file: n}}}`` of the used entries."""

    def __init__(self, edges: Sequence[float], *, limits: Mapping[str, int] | None = None, pt_column: str = "tau_pt") -> None:
        self.edges = [float(x) for x in check_edges(edges)]
        self.limits = {os.path.abspath(k): int(v) for k, v in limits.items()} if limits is not None else None
        self.pt_column = pt_column

    def process(self, events: Any) -> dict[str, Any]:
        dataset = events.metadata["dataset"]
        filename, _, _, n = _used(events.metadata, self.limits)
        h = pt_hist(self.edges)
        h.fill(pt=_pt(events, self.pt_column, n))
        return {"pt": {dataset: h}, "entries": {dataset: {filename: n}}}

    def postprocess(self, accumulator: Any) -> Any:
        return accumulator


class EventDropProcessor(processor.ProcessorABC):
    """Keep entries with their bin's probability; write kept rows as parquet parts.

    ``keep_json`` is the correctionlib file's text (inputs ``dataset``, ``pt``); it is parsed
    on the worker, since correctionlib objects do not pickle. Output:
    ``{"parts": {dataset: {file: [(start, path)]}}, "kept": {dataset: Hist},
    "observed": {dataset: Hist}}``.
    """

    def __init__(
        self,
        keep_json: str,
        edges: Sequence[float],
        parts_dir: str | os.PathLike[str],
        *,
        seed: int,
        limits: Mapping[str, int] | None = None,
        include: Collection[str] | None = None,
        exclude: Collection[str] | None = None,
        pt_column: str = "tau_pt",
    ) -> None:
        self.edges = [float(x) for x in check_edges(edges)]
        self.parts_dir = str(parts_dir)
        self.seed = int(seed)
        self.limits = {os.path.abspath(k): int(v) for k, v in limits.items()} if limits is not None else None
        self.include = list(include) if include else None
        self.exclude = list(exclude) if exclude else None
        self.pt_column = pt_column
        self._correction = LazyCorrection(keep_json, KEEP_CORRECTION)

    def _keep_probability(self, dataset: str, pt: np.ndarray) -> np.ndarray:
        return self._correction.evaluate(dataset, pt)

    def process(self, events: Any) -> dict[str, Any]:
        dataset = events.metadata["dataset"]
        filename, start, stop, n = _used(events.metadata, self.limits)
        pt = _pt(events, self.pt_column, n)
        u = entry_uniforms(self.seed, STAGE, dataset, os.path.basename(filename), start, start + n)[:, 0]
        keep = u < self._keep_probability(dataset, pt)
        index = np.flatnonzero(keep)
        columns = select_columns(list(events.fields), self.include, self.exclude)
        path = write_part(event_rows(events, columns, index), self.parts_dir, dataset, filename, start, stop)
        observed, kept = pt_hist(self.edges), pt_hist(self.edges)
        observed.fill(pt=pt)
        kept.fill(pt=pt[index])
        return {
            "parts": {dataset: {filename: [(start, path)] if path else []}},
            "kept": {dataset: kept},
            "observed": {dataset: observed},
        }

    def postprocess(self, accumulator: Any) -> Any:
        return accumulator
