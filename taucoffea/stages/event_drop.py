"""The event-drop stage (spec §7.2): thin each dataset's pT spectrum down to a target shape.

Pass 1 (:class:`PtHistogramProcessor`) histograms the pT of the entries that will be
processed; the keep probabilities per dataset and bin are written as correctionlib
(``keep_probabilities.json``), read back, and pass 2 (:class:`EventDropProcessor`) keeps each
entry with its probability. Outputs: ``<output>/<dataset>/<input stem>.parquet`` (input schema
unchanged), ``event_drop_report.json`` (observed, target, probabilities, kept counts and a χ²
test of the kept shape per dataset).
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from taucoffea.adversarial.histio import Hist1D, read_target
from taucoffea.adversarial.inputs import entry_counts, resolve_fileset
from taucoffea.adversarial.parts import merge_file_parts, output_stems
from taucoffea.algorithms.event_drop import (
    DEFAULT_PT_EDGES,
    KeepProbabilities,
    check_edges,
    keep_probabilities,
    kept_shape_test,
    rebin_values,
    to_correctionlib,
)
from taucoffea.columns.atomic import atomic_path, write_text_atomic
from taucoffea.columns.table import select_columns
from taucoffea.errors import ConfigError, InputError
from taucoffea.execution.checkpoint import stage_parts
from taucoffea.execution.config import ExecutorConfig
from taucoffea.execution.runner import BadFile, RunReport, run_processor
from taucoffea.execution.session import ExecutionSession, in_session, resolve_executor
from taucoffea.processors.event_drop import EventDropProcessor, PtHistogramProcessor
from taucoffea.stages.skim import clear_outputs, columns_of

__all__ = ["KEEP_FILE", "EventDropResult", "entry_limits", "run_event_drop"]

KEEP_FILE = "keep_probabilities.json"
_DATASET_TARGET = "dataset:"


@dataclass
class EventDropResult:
    outputs: dict[str, list[Path]]
    keep: dict[str, KeepProbabilities]
    observed: dict[str, np.ndarray]  #: regular bins
    kept: dict[str, np.ndarray]
    tests: dict[str, dict[str, float]]
    keep_file: Path
    report: RunReport

    def summary(self) -> str:
        lines = [f"{'dataset':<24} {'processed':>10} {'kept':>9} {'expected':>10} {'chi2/ndf':>10} {'p':>6}  unmatched bins"]
        for ds, t in self.tests.items():
            lines.append(
                f"{ds:<24} {self.observed[ds].sum():>10.0f} {t['n_kept']:>9.0f} {t['n_expected']:>10.1f} "
                f"{t['chi2']:>6.1f}/{t['ndf']:<3d} {t['pvalue']:>6.3f}  {list(self.keep[ds].unmatched) or '-'}"
            )
        return "\n".join(lines)


def entry_limits(counts: Mapping[str, int], fileset: Mapping[str, Sequence[str]], n_tau: int | Mapping[str, int] | None) -> dict[str, int]:
    """Entries to process per file so that each dataset processes exactly ``n_tau`` (in file order).

    Raises :class:`InputError` ("run out of events", as the original) when a dataset is smaller.
    """
    limits: dict[str, int] = {}
    for ds, files in fileset.items():
        total = sum(counts[f] for f in files)
        want = n_tau.get(ds) if isinstance(n_tau, Mapping) else n_tau
        if want is None:
            limits.update({f: counts[f] for f in files})
            continue
        if isinstance(want, bool) or not isinstance(want, int) or want < 1:
            raise ConfigError(f"n_tau for dataset '{ds}' must be an integer >= 1, got {want!r}")
        if want > total:
            raise InputError(f"run out of events: dataset '{ds}' has {total} entries in {len(files)} file(s), but n_tau = {want}")
        left = want
        for f in files:
            limits[f] = min(counts[f], left)
            left -= limits[f]
    return limits


def _target_for(ds: str, spec: Any, observed: Mapping[str, np.ndarray], edges: np.ndarray) -> tuple[np.ndarray, str]:
    if isinstance(spec, Mapping):
        if ds not in spec:
            raise ConfigError(f"event drop: no target given for dataset '{ds}'; targets for {sorted(spec)}")
        spec = spec[ds]
    if isinstance(spec, Hist1D):
        return rebin_values(spec.edges, spec.values, edges, what=f"target {spec.source}"), spec.source
    text = os.fspath(spec)
    if text.startswith(_DATASET_TARGET):
        name = text[len(_DATASET_TARGET):]
        if name not in observed:
            raise InputError(f"target '{text}': dataset '{name}' is not among the inputs {sorted(observed)}")
        return observed[name], text
    h = read_target(text)
    return rebin_values(h.edges, h.values, edges, what=f"target '{text}'"), h.source


def run_event_drop(
    input_path: str | os.PathLike[str] | Sequence[str] | Mapping[str, Sequence[str]],
    output: str | os.PathLike[str],
    *,
    target: str | os.PathLike[str] | Hist1D | Mapping[str, Any],
    n_tau: int | Mapping[str, int] | None = None,
    pt_edges: Sequence[float] = DEFAULT_PT_EDGES,
    seed: int = 1234567,
    datasets: Collection[str] | None = None,
    include_columns: Collection[str] | None = None,
    exclude_columns: Collection[str] | None = None,
    pt_column: str = "tau_pt",
    treename: str = "taus",
    executor: ExecutorConfig | str | None = None,
    chunksize: int | None = None,
    overwrite: bool = False,
    session: ExecutionSession | None = None,
) -> EventDropResult:
    """Drop entries of every dataset under ``input_path`` so its pT shape follows ``target``.

    ``target``: ``FILE.root:HISTPATH``, ``FILE.json[:NAME]``, ``dataset:NAME`` (the observed
    spectrum of input dataset NAME — e.g. the data skim), a :class:`Hist1D`, or a mapping
    ``{dataset: one of these}``. ``n_tau``: entries to process per dataset (int or mapping).
    """
    edges = check_edges(pt_edges)
    fileset, tree = resolve_fileset(input_path, treename=treename)
    if datasets is not None:
        missing = sorted(set(datasets) - set(fileset))
        if missing:
            raise InputError(f"event drop: dataset(s) {missing} not found in the input; found {sorted(fileset)}")
        fileset = {ds: f for ds, f in fileset.items() if ds in set(datasets)}
    cfg = resolve_executor(executor, session)
    counts, unreadable = entry_counts(fileset, tree, skip_bad=cfg.skip_bad_files)
    fileset = {ds: kept for ds, files in fileset.items() if (kept := [f for f in files if f in counts])}
    if not fileset:
        raise InputError("event drop: no readable input files")
    for files in fileset.values():
        select_columns(columns_of(files[0], tree), include_columns, exclude_columns)
    limits = entry_limits(counts, fileset, n_tau)
    fileset = {ds: [f for f in files if limits[f] > 0] for ds, files in fileset.items()}
    out = Path(output)
    for ds in fileset:
        clear_outputs(out / ds, overwrite, "event drop")
    checkpointing = bool(cfg.checkpoint_dir)
    parts_dir = out / ".parts-event-drop"
    base_config = {"edges": edges.tolist(), "limits": limits, "files": fileset, "pt": pt_column}

    def _run(s: ExecutionSession) -> tuple[dict[str, Any], RunReport, dict[str, KeepProbabilities], dict[str, np.ndarray]]:
        acc1, _ = run_processor(
            s, PtHistogramProcessor(edges, limits=limits, pt_column=pt_column), fileset, treename=tree,
            stage="event-drop-observed", stage_config=base_config, branches={pt_column}, chunksize=chunksize,
        )
        observed = {ds: np.asarray(h.values(), float) for ds, h in (acc1 or {}).get("pt", {}).items()}
        keep: dict[str, KeepProbabilities] = {}
        targets: dict[str, np.ndarray] = {}
        for ds in fileset:
            targets[ds], source = _target_for(ds, target, observed, edges)
            try:
                keep[ds] = keep_probabilities(edges, targets[ds], observed[ds])
            except InputError as err:
                raise InputError(f"dataset '{ds}' (target {source}): {err}") from None
        out.mkdir(parents=True, exist_ok=True)
        keep_json = to_correctionlib(keep).model_dump_json(exclude_unset=True, indent=1)
        keep_path = out / KEEP_FILE
        with atomic_path(keep_path, overwrite=True) as tmp:
            tmp.write_text(keep_json)
            _read_back(tmp, keep)
        proc = EventDropProcessor(
            keep_path.read_text(), edges, parts_dir, seed=seed, limits=limits,
            include=include_columns, exclude=exclude_columns, pt_column=pt_column,
        )
        stage_config = {**base_config, "keep": keep_json, "seed": seed, "include": include_columns,
                        "exclude": exclude_columns, "parts": str(parts_dir.resolve())}
        acc2, report = run_processor(
            s, proc, fileset, treename=tree, stage="event-drop", stage_config=stage_config,
            branches={pt_column}, chunksize=chunksize,
        )
        return acc2 or {}, report, keep, targets

    outputs: dict[str, list[Path]] = {}
    with stage_parts(parts_dir, checkpointing):
        acc, report, keep, targets = in_session(session, cfg, _run)
        report.bad_files[:0] = [BadFile(*bad) for bad in unreadable]
        for ds, files in fileset.items():
            stems = output_stems(files)
            outputs[ds] = []
            for f in files:
                file_parts = [p for p in acc.get("parts", {}).get(ds, {}).get(os.path.abspath(f), []) if p[1]]
                if file_parts:
                    target_path = out / ds / f"{stems[f]}.parquet"
                    merge_file_parts(file_parts, target_path, overwrite=True)
                    outputs[ds].append(target_path)

    observed2 = {ds: np.asarray(h.values(), float) for ds, h in acc.get("observed", {}).items()}
    kept = {ds: np.asarray(h.values(), float) for ds, h in acc.get("kept", {}).items()}
    tests: dict[str, dict[str, float]] = {}
    for ds in fileset:
        kept.setdefault(ds, np.zeros(edges.size - 1))
        tests[ds] = kept_shape_test(observed2.get(ds, np.zeros(edges.size - 1)), kept[ds], keep[ds])
    report_data = {
        "edges": edges.tolist(), "seed": seed, "n_tau": n_tau if not isinstance(n_tau, Mapping) else dict(n_tau),
        "datasets": {
            ds: {
                "observed": observed2.get(ds, np.zeros(0)).tolist(), "target": targets[ds].tolist(),
                "keep_probability": keep[ds].probability.tolist(), "kept": kept[ds].tolist(),
                "unmatched_bins": list(keep[ds].unmatched), "test": tests[ds],
            }
            for ds in fileset
        },
    }
    write_text_atomic(out / "event_drop_report.json", json.dumps(report_data, indent=1, sort_keys=True) + "\n")
    report.write(out / "event_drop_run_report.json")
    return EventDropResult(outputs, keep, observed2, kept, tests, out / KEEP_FILE, report)


def _read_back(path: Path, keep: Mapping[str, KeepProbabilities]) -> None:
    """Validate the correctionlib file by evaluating it at every bin centre."""
    import correctionlib

    from taucoffea.algorithms.event_drop import KEEP_CORRECTION

    corr = correctionlib.CorrectionSet.from_file(str(path))[KEEP_CORRECTION]
    for ds, k in keep.items():
        centres = 0.5 * (k.edges[1:] + k.edges[:-1])
        got = np.asarray(corr.evaluate(ds, centres))
        if not np.allclose(got, k.probability, rtol=0, atol=1e-12):
            raise InputError(f"written keep probabilities for '{ds}' do not read back identically from '{path}'")
