"""MixProcessor: place each contribution's rows into the adversarial batches (spec §7.3).

Each chunk of a contribution's file knows the global row numbers of its entries (the stage
passes the file offsets), so :func:`row_destinations` says which output and which position in
it every row goes to; rows not needed are skipped. The processor adds the adversarial columns
and writes one parquet part per chunk and output with the target position in ``_mix_pos``;
the stage sorts by it. Columns added:

* ``dataset_id`` (uint64, the TauTuple branch type): the contribution's id (0 data … 6 QCD);
* ``adv_label`` (int32): 1 for data, 0 for MC;
* ``adv_weight`` (float32): the pT weight from the reweight stage's correctionlib file;
* ``tauType`` (int32): 8 for data, else the recomputed type (``mytauType``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import awkward as ak
import numpy as np
from coffea import processor

from taucoffea.adversarial.parts import event_rows, write_part
from taucoffea.algorithms.mixing import OUTPUTS, MixPlan, row_destinations
from taucoffea.algorithms.reweight import WEIGHT_CORRECTION
from taucoffea.columns.table import GEN_MATCH_COLUMNS
from taucoffea.errors import InputError
from taucoffea.processors._corrections import LazyCorrection

__all__ = ["ADDED_COLUMNS", "POSITION", "MixProcessor"]

#: Column carrying each row's position in its output between the processor and the merge.
POSITION = "_mix_pos"
ADDED_COLUMNS: tuple[str, ...] = ("tauType", "dataset_id", "adv_label", "adv_weight")
_DATA_TAU_TYPE = 8


class MixProcessor(processor.ProcessorABC):
    """Write the rows each chunk contributes to the train/val and evaluation outputs.

    Output: ``{"parts": {output: [path]}, "rows": {output: {contribution: n}},
    "weight": {output: {contribution: Σ adv_weight}}}``.
    """

    def __init__(
        self,
        plan: MixPlan,
        file_offsets: Mapping[str, int],
        weights_json: str,
        parts_dir: str | os.PathLike[str],
        *,
        seed: int,
        columns: Sequence[str],
        dataset_ids: Mapping[str, int],
        tau_types: Mapping[str, int | None],
        type_column: str = "mytauType",
        pt_column: str = "tau_pt",
    ) -> None:
        self.plan = plan
        self.file_offsets = {os.path.abspath(k): int(v) for k, v in file_offsets.items()}
        self.parts_dir = str(parts_dir)
        self.seed = int(seed)
        self.columns = list(columns)
        self.dataset_ids = dict(dataset_ids)
        self.tau_types = dict(tau_types)
        self.type_column = type_column
        self.pt_column = pt_column
        self._correction = LazyCorrection(weights_json, WEIGHT_CORRECTION)

    def _weights(self, dataset_id: int, pt: np.ndarray) -> np.ndarray:
        return self._correction.evaluate(np.full(pt.size, dataset_id, dtype=np.int64), pt)

    def _tau_type(self, events: Any, name: str, index: np.ndarray, filename: str) -> np.ndarray:
        declared = self.tau_types[name]
        sample = ak.to_numpy(events["sampleType"][index])
        if declared is None:
            if np.any(sample != 0):
                raise InputError(f"data contribution '{name}' holds MC rows (sampleType != 0) in '{filename}'")
            return np.full(index.size, _DATA_TAU_TYPE, dtype=np.int32)
        if np.any(sample == 0):
            raise InputError(f"MC contribution '{name}' holds data rows (sampleType 0) in '{filename}'")
        if self.type_column in events.fields:
            tau_type = ak.to_numpy(events[self.type_column][index]).astype(np.int32)
        else:
            from taucoffea.physics.tautypes import compute_tau_type

            missing = [c for c in GEN_MATCH_COLUMNS if c not in events.fields]
            if missing:
                raise InputError(f"'{filename}' has neither '{self.type_column}' nor the gen-match branches {missing}")
            tau_type = compute_tau_type({c: ak.to_numpy(events[c][index]) for c in GEN_MATCH_COLUMNS}).astype(np.int32)
        wrong = tau_type != declared
        if np.any(wrong):
            raise InputError(
                f"contribution '{name}' should hold tau type {declared} only, but {int(wrong.sum())} row(s) of "
                f"'{filename}' have types {sorted(set(tau_type[wrong].tolist()))} (was the skim cut right?)"
            )
        return tau_type

    def process(self, events: Any) -> dict[str, Any]:
        meta = events.metadata
        name, filename = meta["dataset"], os.path.abspath(meta["filename"])
        start, stop = int(meta["entrystart"]), int(meta["entrystop"])
        offset = self.file_offsets.get(filename)
        parts: dict[str, list[str]] = {o: [] for o in OUTPUTS}
        rows_out: dict[str, dict[str, int]] = {o: {name: 0} for o in OUTPUTS}
        weight_out: dict[str, dict[str, float]] = {o: {name: 0.0} for o in OUTPUTS}
        if offset is None:  # a file after the last row the plan needs
            return {"parts": parts, "rows": rows_out, "weight": weight_out}
        dest, pos = row_destinations(self.plan, name, offset + np.arange(start, stop), self.seed)
        pt_all = np.asarray(ak.to_numpy(events[self.pt_column]), dtype=np.float64)
        did = int(self.dataset_ids[name])
        for o, label in enumerate(OUTPUTS):
            index = np.flatnonzero(dest == o)
            if index.size == 0:
                continue
            rows = event_rows(events, [c for c in self.columns if c not in ADDED_COLUMNS], index)
            weight = self._weights(did, pt_all[index])
            added = {
                "tauType": self._tau_type(events, name, index, filename),
                "dataset_id": np.full(index.size, did, dtype=np.uint64),
                "adv_label": np.full(index.size, int(self.tau_types[name] is None), dtype=np.int32),
                "adv_weight": weight.astype(np.float32),
            }
            ordered = {c: (added[c] if c in added else rows[c]) for c in self.columns}
            ordered[POSITION] = pos[index].astype(np.uint64)
            path = write_part(ordered, self.parts_dir, label, f"{name}/{filename}", start, stop)
            if path:
                parts[label].append(path)
            rows_out[label][name] = int(index.size)
            weight_out[label][name] = float(weight.astype(np.float32).sum())
        return {"parts": parts, "rows": rows_out, "weight": weight_out}

    def postprocess(self, accumulator: Any) -> Any:
        return accumulator
