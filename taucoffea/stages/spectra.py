"""The spectra stage: TauTuple/NanoAOD files → ``<output>/<dataset>.root`` and ``.txt``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hist

from taucoffea.algorithms.spectra import SpectrumBinning, write_entries_txt, write_spectra
from taucoffea.columns.atomic import check_output
from taucoffea.columns.discovery import discover_fileset
from taucoffea.columns.table import required_branches, treename_for
from taucoffea.execution.config import ExecutorConfig
from taucoffea.execution.runner import RunReport, run_processor
from taucoffea.execution.session import ExecutionSession, in_session, resolve_executor
from taucoffea.processors.spectra import SpectrumProcessor

__all__ = ["SpectraResult", "run_spectra"]


@dataclass
class SpectraResult:
    spectra: dict[str, dict[str, hist.Hist]]
    not_valid: dict[str, int]
    entries: dict[str, dict[str, int]]
    report: RunReport
    outputs: list[Path]

    def summary(self) -> str:
        lines = [f"{'dataset':<32} {'entries':>10} {'valid':>10} {'not valid':>10}  per type"]
        for ds in sorted(self.entries):
            n = sum(self.entries[ds].values())
            per_type = {t: int(h.sum(flow=True)) for t, h in self.spectra.get(ds, {}).items()}
            valid = sum(per_type.values())
            types = ", ".join(f"{t}={c}" for t, c in per_type.items())
            lines.append(f"{ds:<32} {n:>10} {valid:>10} {self.not_valid.get(ds, 0):>10}  {types}")
        return "\n".join(lines)


def run_spectra(
    input_path: str | os.PathLike[str] | Mapping[str, list[str]],
    output: str | os.PathLike[str] | None,
    *,
    fmt: str = "tautuple",
    executor: ExecutorConfig | str | None = None,
    binning: SpectrumBinning | None = None,
    chunksize: int | None = None,
    overwrite: bool = False,
    session: ExecutionSession | None = None,
) -> SpectraResult:
    """Compute spectra for every dataset under ``input_path`` and write them to ``output``.

    ``output=None`` computes without writing (tests, notebooks). Existing outputs are refused
    before any work starts unless ``overwrite``.
    """
    binning = binning or SpectrumBinning()
    fileset = dict(input_path) if isinstance(input_path, Mapping) else discover_fileset(input_path)
    targets: list[Path] = []
    if output is not None:
        out = Path(output)
        for ds in fileset:
            targets += [check_output(out / f"{ds}.root", overwrite), check_output(out / f"{ds}.txt", overwrite)]
    cfg = resolve_executor(executor, session)
    columns = ("tau_pt", "tau_eta", "tauType")
    stage_config = {"fmt": fmt, "binning": str(binning), "files": fileset}
    proc = SpectrumProcessor(binning, fmt)

    def _run(s: ExecutionSession) -> tuple[Any, RunReport]:
        return run_processor(
            s,
            proc,
            fileset,
            treename=treename_for(fmt),
            stage="spectra",
            stage_config=stage_config,
            branches=required_branches(fmt, columns),
            chunksize=chunksize,
            read_only_branches=True,
        )

    acc, report = in_session(session, cfg, _run)
    acc = acc or {}
    spectra = {ds: dict(v) for ds, v in acc.get("spectra", {}).items()}
    not_valid = dict(acc.get("not_valid", {}))
    entries = {ds: dict(v) for ds, v in acc.get("entries", {}).items()}
    written: list[Path] = []
    if output is not None:
        out = Path(output)
        out.mkdir(parents=True, exist_ok=True)
        for ds in sorted(entries):
            written.append(write_spectra(out / f"{ds}.root", spectra.get(ds, {}), not_valid.get(ds, 0), overwrite=overwrite))
            written.append(write_entries_txt(out / f"{ds}.txt", entries[ds], overwrite=overwrite))
        report.write(out / "spectra_report.json")
    return SpectraResult(spectra, not_valid, entries, report, written)
