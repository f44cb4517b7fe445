"""SpectrumProcessor: (|η|, pT) histograms per tau type, per dataset (reference §2)."""

from __future__ import annotations

from typing import Any

import awkward as ak
import numpy as np
from coffea import processor

from taucoffea.algorithms.spectra import SpectrumBinning, fill_spectra
from taucoffea.columns.table import tau_table

__all__ = ["SpectrumProcessor"]


class SpectrumProcessor(processor.ProcessorABC):
    """Fill ``eta_pt_hist_<type>``, count ``not_valid`` rows and entries per file.

    Output: ``{"spectra": {dataset: {type: Hist}}, "not_valid": {dataset: int},
    "entries": {dataset: {file: int}}}`` — plain dicts of histograms and integers, so coffea
    merges chunks by addition and the result does not depend on chunking or executor.
    Works in any coffea ``Runner`` with ``schema=BaseSchema``.
    """

    def __init__(self, binning: SpectrumBinning | None = None, fmt: str = "tautuple") -> None:
        self.binning = binning or SpectrumBinning()
        self.fmt = fmt

    def process(self, events: Any) -> dict[str, Any]:
        meta = events.metadata
        dataset, filename = meta["dataset"], meta["filename"]
        table = tau_table(events, self.fmt, ("tau_pt", "tau_eta", "tauType"))
        pt = np.asarray(ak.to_numpy(table["tau_pt"]) if isinstance(table["tau_pt"], ak.Array) else table["tau_pt"])
        eta = np.asarray(ak.to_numpy(table["tau_eta"]) if isinstance(table["tau_eta"], ak.Array) else table["tau_eta"])
        tau_type = np.asarray(table["tauType"])
        hists, not_valid = fill_spectra(tau_type, np.abs(eta), pt, self.binning)
        return {
            "spectra": {dataset: hists},
            "not_valid": {dataset: not_valid},
            "entries": {dataset: {filename: len(events)}},
        }

    def postprocess(self, accumulator: Any) -> Any:
        return accumulator
