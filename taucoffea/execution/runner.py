"""Run a processor over a fileset through ``coffea.processor.Runner``, with a pre-flight check.

coffea skips only some kinds of bad file and reports them only as warnings on the workers.
Users of big productions want the opposite: every bad file named up front, skipped with a
report or failing the run cleanly, as they choose. The pre-flight opens each file's metadata
(cheap), checks the tree, its entries and the branches the stage needs, and writes the verdict
into the run report together with the chunks that completed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from coffea import processor
from coffea.nanoevents import BaseSchema

from taucoffea.columns.atomic import write_text_atomic
from taucoffea.errors import InputError
from taucoffea.execution.checkpoint import StageCheckpointer
from taucoffea.execution.session import ExecutionSession

__all__ = ["BadFile", "RunReport", "preflight", "run_processor"]


@dataclass(frozen=True)
class BadFile:
    dataset: str
    path: str
    reason: str


@dataclass
class RunReport:
    """What a stage run did: for the manifest and for re-running only what failed."""

    stage: str
    executor: str
    chunksize: int
    files: dict[str, list[str]] = field(default_factory=dict)
    bad_files: list[BadFile] = field(default_factory=list)
    checkpoint_dir: str | None = None
    completed_chunks: list[str] = field(default_factory=list)

    def write(self, path: str | os.PathLike[str]) -> Path:
        data = asdict(self)
        return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def _check_root(path: str, treename: str, branches: Collection[str]) -> str | None:
    import uproot

    if not os.path.exists(path):
        return "file does not exist"
    try:
        with uproot.open(path) as f:
            if treename not in f:
                return f"tree '{treename}' not found (keys: {sorted(f.keys(cycle=False))[:10]})"
            tree = f[treename]
            if tree.num_entries == 0:
                return f"tree '{treename}' is empty"
            present = set(tree.keys())
            missing = sorted(set(branches) - present)
            if missing:
                return f"missing branch(es) {missing} in tree '{treename}'"
    except Exception as err:  # corrupt or not ROOT: uproot raises many types
        return f"cannot be read as ROOT ({type(err).__name__}: {err})"
    return None


def _check_parquet(path: str, columns: Collection[str]) -> str | None:
    import pyarrow.parquet as pq

    if not os.path.exists(path):
        return "file does not exist"
    try:
        meta = pq.ParquetFile(path)
        if meta.metadata.num_rows == 0:
            return "parquet file has no rows"
        present = set(meta.schema_arrow.names)
        missing = sorted(set(columns) - present)
        if missing:
            return f"missing column(s) {missing}"
    except Exception as err:
        return f"cannot be read as parquet ({type(err).__name__}: {err})"
    return None


def preflight(
    fileset: Mapping[str, Sequence[str]], treename: str | None, branches: Collection[str]
) -> tuple[dict[str, list[str]], list[BadFile]]:
    """Split a fileset into readable files and a list of bad ones with the reason for each."""
    good: dict[str, list[str]] = {}
    bad: list[BadFile] = []
    for dataset, files in fileset.items():
        for path in files:
            reason = _check_parquet(path, branches) if treename is None else _check_root(path, treename, branches)
            if reason is None:
                good.setdefault(dataset, []).append(path)
            else:
                bad.append(BadFile(dataset, path, reason))
    return good, bad


def run_processor(
    session: ExecutionSession,
    processor_instance: processor.ProcessorABC,
    fileset: Mapping[str, Sequence[str]],
    *,
    treename: str | None,
    stage: str,
    stage_config: Mapping[str, Any],
    branches: Collection[str] = (),
    chunksize: int | None = None,
) -> tuple[Any, RunReport]:
    """Run ``processor_instance`` over ``fileset`` (``{dataset: [paths]}``) in ``session``.

    ``treename`` ``None`` means parquet input. ``branches`` are checked in the pre-flight.
    ``stage_config`` keys the checkpoint directory, so a changed configuration never reuses
    stale chunk outputs. Raises :class:`InputError` listing every bad file unless the
    session's config says to skip them.
    """
    cfg = session.cfg
    chunksize = chunksize or cfg.chunksize
    good, bad = preflight(fileset, treename, branches)
    if bad and not cfg.skip_bad_files:
        listing = "\n".join(f"  {b.path}: {b.reason}" for b in bad)
        raise InputError(f"{len(bad)} bad input file(s) for stage '{stage}':\n{listing}\n(set skip_bad_files to skip them)")
    report = RunReport(stage=stage, executor=cfg.executor, chunksize=chunksize, files=good, bad_files=bad)
    if bad:
        import warnings

        for b in bad:
            warnings.warn(f"skipping bad file {b.path}: {b.reason}", stacklevel=2)
    if not good:
        raise InputError(f"no readable input files for stage '{stage}'")

    checkpointer = None
    if cfg.checkpoint_dir:
        checkpointer = StageCheckpointer(cfg.checkpoint_dir, stage, {**stage_config, "chunksize": chunksize})
        report.checkpoint_dir = str(checkpointer.directory)
    runner = processor.Runner(
        executor=session.coffea_executor(desc=stage),
        chunksize=chunksize,
        schema=BaseSchema,
        format="root" if treename is not None else "parquet",
        skipbadfiles=(OSError, InputError) if cfg.skip_bad_files else False,
        checkpointer=checkpointer,
    )
    abs_fileset = {ds: [os.path.abspath(p) for p in files] for ds, files in good.items()}
    output = runner(abs_fileset, processor_instance=processor_instance, treename=treename or "")
    if checkpointer is not None:
        report.completed_chunks = checkpointer.completed()
    return output, report
