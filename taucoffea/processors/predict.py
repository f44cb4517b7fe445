"""PredictProcessor: apply a trained run to per-tau files, one parquet part per chunk.

Works in any coffea Runner with ``schema=BaseSchema`` over parquet per-tau files (shuffle &
merge output, control regions, skims) or TauTuple ROOT files (``fmt="tautuple"``: ``tauType``
is then computed from the gen match). Each chunk writes its rows' predictions, in entry order,
to ``<parts_dir>/<dataset>/<file>/<start>-<stop>.parquet`` and returns that record; the stage
(``taucoffea.stages.predict``) concatenates the parts of each file in entry order, so the output
rows are aligned with the input rows whatever the chunking or executor.

Keras is imported and the model loaded lazily, once per worker process.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
from coffea import processor

from taucoffea.columns.table import GEN_MATCH_COLUMNS, tau_table

__all__ = ["PredictProcessor"]


class PredictProcessor(processor.ProcessorABC):
    """Predictions of the run in ``run_dir`` for every row of every chunk.

    ``adversarial`` (default: whether the model has an adversarial head) adds ``y_adv``,
    ``adv_label``, ``adv_weight``, ``dataset_id`` and ``Djet`` to the output.
    """

    def __init__(self, run_dir: str | os.PathLike[str], parts_dir: str | os.PathLike[str], *, fmt: str = "parquet",
                 batch_size: int = 1000, adversarial: bool | None = None, model_file: str = "model.keras") -> None:
        if fmt not in ("parquet", "tautuple"):
            raise ValueError(f"PredictProcessor: fmt must be 'parquet' or 'tautuple', got '{fmt}'")
        self.run_dir = str(Path(run_dir).resolve())
        self.parts_dir = str(parts_dir)
        self.fmt, self.batch_size, self.adversarial, self.model_file = fmt, int(batch_size), adversarial, model_file

    def process(self, events: Any) -> dict[str, Any]:
        from taucoffea.columns.parquet import write_parquet
        from taucoffea.ml.predict import load_trained, prediction_columns

        meta = events.metadata
        dataset, filename = meta["dataset"], os.path.abspath(meta["filename"])
        start, stop = int(meta["entrystart"]), int(meta["entrystop"])
        trained = load_trained(self.run_dir, self.model_file)
        fields = set(events.fields)
        data: dict[str, Any] = {c: events[c] for c in fields if _wanted(c, trained)}
        if self.fmt == "tautuple" and set(GEN_MATCH_COLUMNS) <= fields:  # TauTuples: recompute (reference)
            data["tauType"] = np.asarray(tau_table(events, "tautuple", [*GEN_MATCH_COLUMNS, "tauType"])["tauType"])
        table = prediction_columns(trained, data, batch_size=self.batch_size, adversarial=self.adversarial,
                                   source=f"file '{filename}'")
        record = ak.zip({k: np.asarray(v) for k, v in table.items()}, depth_limit=1)
        path = Path(self.parts_dir) / dataset / os.path.basename(filename) / f"{start}-{stop}.parquet"
        write_parquet(record, path)
        return {"parts": {dataset: {filename: [[start, stop, str(path)]]}}, "rows": {dataset: stop - start}}

    def postprocess(self, accumulator: Any) -> Any:
        return accumulator


def _wanted(column: str, trained: Any) -> bool:
    from taucoffea.ml.predict import ADVERSARIAL_COLUMNS, PASSTHROUGH_COLUMNS

    return column in _needed(trained) or column in PASSTHROUGH_COLUMNS or column in ADVERSARIAL_COLUMNS


_NEEDED: dict[int, frozenset[str]] = {}


def _needed(trained: Any) -> frozenset[str]:
    key = id(trained)
    if key not in _NEEDED:
        _NEEDED.clear()
        _NEEDED[key] = frozenset(trained.columns)
    return _NEEDED[key]
