"""Spectral shuffle & merge as map-reduce (DESIGN §4).

1. spectra (pass 1, the spectra stage) are read from ``input_spec``;
2. acceptance probabilities per group, type and (|η|, pT) bin — printed, and written as
   correctionlib plus the original's ``<group>.root`` / ``<group>_n.root``;
3. pass 2, :class:`SamplingProcessor` through the execution layer, writes an Arrow IPC part
   per chunk with a record batch per bucket;
4. pass 3 sorts each bucket by its random keys into ``ShuffleMergeSpectral_<k>.parquet``
   (Parsl apps when the session has workers), then the hash tables and a closure report.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from taucoffea.algorithms.acceptance import (
    AcceptanceTable,
    compute_acceptance,
    entries_from_spectra,
    format_expected_table,
    write_acceptance,
)
from taucoffea.algorithms.buckets import key_threshold, merge_bucket
from taucoffea.algorithms.rebin import parse_bin_edges
from taucoffea.algorithms.spectra import read_spectra
from taucoffea.algorithms.validation_stats import closure_report
from taucoffea.columns.atomic import write_text_atomic
from taucoffea.columns.table import GEN_MATCH_COLUMNS, treename_for
from taucoffea.datagroups import group_fileset, match_files, read_datagroups
from taucoffea.errors import ConfigError, InputError, OutputExistsError
from taucoffea.execution.checkpoint import stage_parts
from taucoffea.execution.config import ExecutorConfig
from taucoffea.execution.runner import RunReport, run_processor
from taucoffea.execution.session import ExecutionSession, in_session, resolve_executor
from taucoffea.physics.dataset_hash import std_hash
from taucoffea.physics.tautypes import TAU_TYPE_NAMES
from taucoffea.processors.sampling import SORT_KEY, SamplingProcessor
from taucoffea.stages.validate import EXPECTED_JSON, write_expected_json

__all__ = ["OUTPUT_PATTERN", "ShuffleMergeResult", "run_shuffle_merge"]

OUTPUT_PATTERN = "ShuffleMergeSpectral_{k}.parquet"


@dataclass
class ShuffleMergeResult:
    outputs: list[Path]
    rows: list[int]
    table: AcceptanceTable
    observed: dict[str, np.ndarray]  #: per type, accepted counts per (|η|, pT) bin with flow
    closure: dict[str, Any]
    report: RunReport

    def summary(self) -> str:
        lines = [f"{len(self.outputs)} output file(s), {sum(self.rows)} taus: " + ", ".join(map(str, self.rows))]
        for t, c in self.closure.items():
            lines.append(
                f"  {t:>4}: observed {c['n_observed']:>9.0f}  expected {c['n_expected']:>11.1f}  "
                f"flatness chi2/ndf {'inf' if c['chi2'] is None else format(c['chi2'], '.1f')}/{c['ndf']}  "
                f"p={c['pvalue']:.3f}"
            )
        return "\n".join(lines)


def _observed_by_type(accepted: dict[str, dict[int, np.ndarray]], table: AcceptanceTable) -> dict[str, np.ndarray]:
    shape = table.expected.shape[2:]
    out = {t: np.zeros(shape) for t in table.types}
    for per_type in accepted.values():
        for code, counts in per_type.items():
            name = TAU_TYPE_NAMES[code]
            if name in out:
                out[name] += counts
    return out


def run_shuffle_merge(
    cfg: str | os.PathLike[str],
    input_dir: str | os.PathLike[str],
    input_spec: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    pt_bins: str | Sequence[float],
    eta_bins: str | Sequence[float],
    tau_ratio: str,
    seed: int = 1234567,
    n_files: int = 1,
    max_entries: int | None = None,
    parity: int = 3,
    lastbin_takeall: bool = False,
    lastbin_disbalance: float = 1.0,
    enable_emptybin: bool = False,
    include_columns: Collection[str] | None = None,
    exclude_columns: Collection[str] | None = None,
    fmt: str = "tautuple",
    executor: ExecutorConfig | str | None = None,
    chunksize: int | None = None,
    overwrite: bool = False,
    session: ExecutionSession | None = None,
) -> ShuffleMergeResult:
    """Build ``n_files`` training files with flat (pT, |η|) spectra per type (see module doc)."""
    if n_files < 1:
        raise ConfigError(f"--n-files must be >= 1, got {n_files}")
    out = Path(output)
    existing = sorted(out.glob("ShuffleMergeSpectral_*.parquet")) if out.exists() else []
    if existing and not overwrite:
        raise OutputExistsError(f"output '{out}' already holds {len(existing)} shuffle & merge file(s); pass --overwrite")
    pt = parse_bin_edges(pt_bins, "pt bins") if isinstance(pt_bins, str) else np.asarray(pt_bins, float)
    eta = parse_bin_edges(eta_bins, "eta bins") if isinstance(eta_bins, str) else np.asarray(eta_bins, float)

    groups = read_datagroups(cfg)
    matched = match_files(groups, input_dir)
    datasets = sorted({ds for files in matched.values() for ds, _ in files})
    spectra = {}
    for ds in datasets:
        path = Path(input_spec) / f"{ds}.root"
        if not path.exists():
            raise InputError(f"no spectrum for dataset '{ds}': '{path}' does not exist (run `taucoffea spectra` first)")
        spectra[ds] = read_spectra(path)[0]
    entries = entries_from_spectra(groups, matched, spectra, pt, eta)
    table = compute_acceptance(
        entries,
        pt,
        eta,
        tau_ratio,
        lastbin_takeall=lastbin_takeall,
        lastbin_disbalance=lastbin_disbalance,
        enable_emptybin=enable_emptybin,
    )
    print(format_expected_table(table))
    out.mkdir(parents=True, exist_ok=True)
    acceptance_dir = out / "acceptance"
    with _removed_on_failure(acceptance_dir):
        write_acceptance(table, acceptance_dir, overwrite=True)

        fileset, file_groups = group_fileset(matched)
        parts_dir = out / ".parts"
        cfg_exec = resolve_executor(executor, session)
        checkpointing = bool(cfg_exec.checkpoint_dir)
        proc = SamplingProcessor(
            table, file_groups, parts_dir, seed=seed, n_buckets=n_files, parity=parity,
            include=include_columns, exclude=exclude_columns, fmt=fmt,
        )
        stage_config = {
            "cfg": Path(cfg).read_text(), "pt": pt.tolist(), "eta": eta.tolist(), "ratio": tau_ratio, "seed": seed,
            "K": n_files, "parity": parity, "takeall": lastbin_takeall, "disbalance": lastbin_disbalance,
            "emptybin": enable_emptybin, "include": include_columns, "exclude": exclude_columns, "files": fileset,
            "parts": str(parts_dir.resolve()),
        }

        def _run(s: ExecutionSession) -> tuple[Any, RunReport, list[tuple[str, int]]]:
            acc, report = run_processor(
                s, proc, fileset, treename=treename_for(fmt), stage="shuffle-merge", stage_config=stage_config,
                branches=set(GEN_MATCH_COLUMNS) | {"evt"} if fmt == "tautuple" else {"tau_pt", "tau_eta"},
                chunksize=chunksize, read_only_branches=fmt == "tautuple",
            )
            parts = acc.get("parts", {})
            all_parts = sorted(p for ps in parts.values() for p in ps)
            threshold = key_threshold(all_parts, SORT_KEY, max_entries) if max_entries is not None else None
            jobs = [
                (sorted(parts.get(k, [])), str(out / OUTPUT_PATTERN.format(k=k)), threshold)
                for k in range(n_files)
            ]
            missing = [j[1] for j in jobs if not j[0]]
            if missing:
                raise InputError(f"no taus were accepted into {missing}; fewer output files (--n-files) or more input needed")
            merged = s.map(_merge_job, jobs, desc="merging buckets")
            return acc, report, merged

        with stage_parts(parts_dir, checkpointing):  # kept when checkpoints point into it (resume)
            acc, report, merged = in_session(session, cfg_exec, _run)

        groups_hash = {g.name: str(std_hash(g.name)) for g in groups}
        datasets_hash = {ds: str(std_hash(ds)) for ds in datasets}
        write_text_atomic(out / "datagroup_hash.json", json.dumps(groups_hash, indent=2, sort_keys=True) + "\n")
        write_text_atomic(out / "dataset_hash.json", json.dumps(datasets_hash, indent=2, sort_keys=True) + "\n")

        observed = _observed_by_type(acc.get("accepted", {}), table)
        expected = {t: table.expected[:, i].sum(axis=0) for i, t in enumerate(table.types)}
        # each tau is an independent Bernoulli trial: binomial, not Poisson, variance
        binomial = table.entries * table.acceptance * (1.0 - table.acceptance)
        variance = {t: binomial[:, i].sum(axis=0) for i, t in enumerate(table.types)}
        closure: dict[str, Any] = {}
        if max_entries is None and parity == 3:
            closure = {t: c.to_dict() for t, c in closure_report(observed, expected, variance).items()}
        write_text_atomic(out / "closure.json", json.dumps(closure, indent=1, sort_keys=True, default=_jsonable) + "\n")
        # machine-readable expected counts for `taucoffea validate`'s closure report
        write_expected_json(table, acceptance_dir / EXPECTED_JSON, parity=parity, max_entries=max_entries,
                            outputs=[p for p, _ in merged])
        report.write(out / "shuffle_merge_report.json")
    return ShuffleMergeResult([Path(p) for p, _ in merged], [n for _, n in merged], table, observed, closure, report)


@contextlib.contextmanager
def _removed_on_failure(folder: Path) -> Iterator[None]:
    """Remove ``folder`` when the block fails — if this run created it.

    The acceptance files are written before the sampling pass, but nothing resumes from them:
    a rerun recomputes the table from the spectra (the sampling processor and its checkpoints
    use the in-memory table), so after a failure they would only be output of a run that did
    not finish. A folder that existed before is left alone: it belongs to an earlier run (its
    files are overwritten by this one only as far as this run got).
    """
    existed = folder.exists()
    try:
        yield
    except BaseException:
        if not existed:
            shutil.rmtree(folder, ignore_errors=True)
        raise


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _merge_job(job: tuple[list[str], str, int | None]) -> tuple[str, int]:
    parts, output, threshold = job
    return merge_bucket(parts, output, SORT_KEY, threshold=threshold)
