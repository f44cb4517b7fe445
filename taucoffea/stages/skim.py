"""The skim stage: selected rows of TauTuples (or our parquet) → one parquet per input file.

``run_skim`` applies one ROOT-syntax cut to every dataset (TauMLTools' ``skim_tree.py``) or,
given the adversarial contributions config, cuts each sample into its contributions in one
pass: ``<output>/<contribution>/<input stem>.parquet`` (and ``.root`` with ``root=True``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taucoffea.adversarial.contributions import (
    TAU_TYPE_COLUMN,
    AdversarialConfig,
    load_adversarial_config,
)
from taucoffea.adversarial.inputs import resolve_fileset
from taucoffea.adversarial.parts import merge_file_parts, output_stems
from taucoffea.columns.atomic import write_text_atomic
from taucoffea.columns.selection import compile_selection
from taucoffea.columns.table import select_columns
from taucoffea.errors import ConfigError, InputError, OutputExistsError
from taucoffea.execution.checkpoint import stage_parts
from taucoffea.execution.config import ExecutorConfig
from taucoffea.execution.runner import RunReport, run_processor
from taucoffea.execution.session import ExecutionSession, in_session, resolve_executor
from taucoffea.processors.skim import SkimProcessor

__all__ = ["SkimResult", "clear_outputs", "columns_of", "first_readable_columns", "run_skim"]


@dataclass
class SkimResult:
    outputs: dict[str, list[Path]]  #: label → written parquet files
    read: dict[str, int]  #: dataset → entries read
    selected: dict[str, int]  #: label → rows written
    selections: dict[str, dict[str, str]]  #: dataset → label → cut
    report: RunReport
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [f"{'output':<24} {'dataset':<28} {'read':>10} {'selected':>10} {'eff':>7}"]
        for ds, per in self.selections.items():
            for label in per:
                n, k = self.read.get(ds, 0), self.selected.get(label, 0)
                lines.append(f"{label:<24} {ds:<28} {n:>10} {k:>10} {k / n if n else 0:>7.3f}")
        return "\n".join(lines)


def clear_outputs(folder: Path, overwrite: bool, what: str) -> None:
    """Refuse to write into a folder holding outputs unless ``overwrite``; then remove them.

    Stale parts of an earlier run must not survive: the next stage reads the whole folder.
    """
    if not folder.is_dir():
        return
    old = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in (".parquet", ".root"))
    if old and not overwrite:
        raise OutputExistsError(f"{what} output folder '{folder}' already holds {len(old)} file(s); pass --overwrite")
    for p in old:
        p.unlink()


def _selections(
    fileset: Mapping[str, Sequence[str]], sel: str | None, contributions: Any
) -> tuple[dict[str, dict[str, str]], bool]:
    if (sel is None) == (contributions is None):
        raise ConfigError("skim: give exactly one of a selection (--sel) or a contributions config (--contributions)")
    if sel is not None:
        return {ds: {ds: sel} for ds in fileset}, False
    cfg: AdversarialConfig = load_adversarial_config(contributions)
    selections: dict[str, dict[str, str]] = {}
    for c in cfg.contributions:
        if c.dataset not in fileset:
            raise InputError(
                f"contribution '{c.name}' needs dataset '{c.dataset}', which is not in the input; "
                f"datasets found: {', '.join(fileset) or 'none'} ({cfg.source})"
            )
        selections.setdefault(c.dataset, {})[c.name] = c.selection(cfg.selection, TAU_TYPE_COLUMN)
    return selections, True


def first_readable_columns(files: Sequence[str], tree: str | None, skip_bad: bool) -> list[str] | None:
    """Columns of the first file that opens (only the first one without ``skip_bad``); None if
    none does — the pre-flight then lists them all."""
    for f in files:
        try:
            return columns_of(f, tree)
        except InputError:
            if not skip_bad:
                raise
    return None


def columns_of(path: str, tree: str | None) -> list[str]:
    if tree is None:
        import pyarrow.parquet as pq

        return list(pq.ParquetFile(path).schema_arrow.names)
    import uproot

    try:
        with uproot.open(path) as f:
            return list(f[tree].keys())
    except Exception as err:  # missing tree, corrupt file
        raise InputError(f"cannot read the branches of tree '{tree}' in '{path}': {type(err).__name__}: {err}") from None


def run_skim(
    input_path: str | os.PathLike[str] | Sequence[str] | Mapping[str, Sequence[str]],
    output: str | os.PathLike[str],
    *,
    sel: str | None = None,
    contributions: str | os.PathLike[str] | AdversarialConfig | None = None,
    include_columns: Collection[str] | None = None,
    exclude_columns: Collection[str] | None = None,
    recompute_tautype: bool = False,
    root: bool = False,
    treename: str = "taus",
    executor: ExecutorConfig | str | None = None,
    chunksize: int | None = None,
    overwrite: bool = False,
    session: ExecutionSession | None = None,
) -> SkimResult:
    """Skim ``input_path`` into ``output`` (see module doc).

    With ``contributions`` the tau type is always recomputed (the cuts use ``mytauType``).
    Input files with no selected row give no output file (listed in the summary).
    """
    fileset, tree = resolve_fileset(input_path, treename=treename)
    selections, adversarial = _selections(fileset, sel, contributions)
    recompute = bool(recompute_tautype or adversarial)
    fileset = {ds: files for ds, files in fileset.items() if ds in selections}
    cfg = resolve_executor(executor, session)
    # compile up front against the first readable file's columns: a bad cut or a misspelt
    # column fails here, naming the token, before any worker starts
    for ds, per in selections.items():
        columns = first_readable_columns(fileset[ds], tree, cfg.skip_bad_files)
        if columns is None:
            continue
        available = columns + ([TAU_TYPE_COLUMN] if recompute else [])
        for cut in per.values():
            compile_selection(cut, columns=available)
        select_columns(available, include_columns, exclude_columns)
    out = Path(output)
    labels = [label for per in selections.values() for label in per]
    for label in labels:
        clear_outputs(out / label, overwrite, "skim")
    checkpointing = bool(cfg.checkpoint_dir)
    parts_dir = out / ".parts-skim"
    proc = SkimProcessor(
        selections, parts_dir, include=include_columns, exclude=exclude_columns,
        recompute_tautype=recompute, tau_type_column=TAU_TYPE_COLUMN,
    )
    stage_config = {
        "selections": selections, "include": include_columns, "exclude": exclude_columns,
        "recompute": recompute, "files": fileset, "parts": str(parts_dir.resolve()),
    }
    needed = set()
    for per in selections.values():
        for cut in per.values():
            needed |= set(compile_selection(cut).columns)
    needed.discard(TAU_TYPE_COLUMN)

    def _run(s: ExecutionSession) -> tuple[Any, RunReport]:
        return run_processor(
            s, proc, fileset, treename=tree, stage="skim", stage_config=stage_config,
            branches=needed, chunksize=chunksize,
        )

    outputs: dict[str, list[Path]] = {}
    empty: list[str] = []
    with stage_parts(parts_dir, checkpointing):
        acc, report = in_session(session, cfg, _run)
        acc = acc or {}
        parts = acc.get("parts", {})
        for ds, per in selections.items():
            stems = output_stems(report.files.get(ds, []))
            for label in per:
                outputs[label] = []
                for f, stem in stems.items():
                    file_parts = [p for p in parts.get(label, {}).get(os.path.abspath(f), []) if p[1]]
                    if not file_parts:
                        empty.append(f"{label}: {f}")
                        continue
                    target = out / label / f"{stem}.parquet"
                    merge_file_parts(file_parts, target, overwrite=True, root=root)
                    outputs[label].append(target)
    result = SkimResult(
        outputs, dict(acc.get("read", {})), {k: int(v) for k, v in acc.get("selected", {}).items()},
        selections, report, {"no_rows_selected": empty},
    )
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(
        out / "skim_report.json",
        json.dumps({"selections": selections, "read": result.read, "selected": result.selected,
                    "no_rows_selected": empty, "recompute_tautype": recompute}, indent=2, sort_keys=True) + "\n",
    )
    report.write(out / "skim_run_report.json")
    return result
