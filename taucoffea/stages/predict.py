"""The predict stage: a trained run + per-tau files → one prediction parquet per input file.

Outputs, under ``output``::

    <dataset>/<input stem>_pred.parquet   rows aligned with the input rows
    pred_input_filemap.json               {prediction path: input path} (merged into if present)
    predict_report.json                   the execution layer's run report

The work runs through the execution layer (``PredictProcessor`` in ``run_processor``): chunk
parts are written by the workers and concatenated here in entry order, and each file's parts
must cover its entries exactly, so a lost or duplicated chunk cannot go unnoticed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import awkward as ak

from taucoffea.columns.atomic import check_output, write_text_atomic
from taucoffea.columns.discovery import discover_fileset
from taucoffea.errors import ConfigError, InputError
from taucoffea.execution.checkpoint import stage_parts
from taucoffea.execution.config import ExecutorConfig
from taucoffea.execution.runner import RunReport, run_processor
from taucoffea.execution.session import ExecutionSession, in_session, resolve_executor
from taucoffea.processors.predict import PredictProcessor

__all__ = ["FILEMAP_NAME", "PredictResult", "prediction_path", "run_predict"]

FILEMAP_NAME = "pred_input_filemap.json"
_PARTS = ".predict_parts"


@dataclass
class PredictResult:
    outputs: list[Path]
    filemap: dict[str, str]
    rows: dict[str, int]
    report: RunReport | None = None
    bad_files: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"{'dataset':<32} {'rows':>10}"]
        lines += [f"{ds:<32} {n:>10}" for ds, n in sorted(self.rows.items())]
        return "\n".join(lines)


def prediction_path(output: str | os.PathLike[str], dataset: str, input_file: str) -> Path:
    """``<output>/<dataset>/<input stem>_pred.parquet``."""
    stem = Path(input_file).name
    for suffix in (".parquet", ".root"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    return Path(output) / dataset / f"{stem}_pred.parquet"


def _detect_format(path: str | os.PathLike[str] | Mapping[str, list[str]], fmt: str) -> tuple[dict[str, list[str]], str]:
    if isinstance(path, Mapping):
        fileset = {k: list(v) for k, v in path.items()}
        first = next(iter(fileset.values()))[0]
        fmt = fmt if fmt != "auto" else ("parquet" if first.endswith(".parquet") else "tautuple")
        return fileset, fmt
    if fmt in ("parquet", "tautuple"):
        return discover_fileset(path, suffix=".parquet" if fmt == "parquet" else ".root"), fmt
    if fmt != "auto":
        raise ConfigError(f"predict: format '{fmt}' is not known; allowed: auto, parquet, tautuple")
    try:
        return discover_fileset(path, suffix=".parquet"), "parquet"
    except InputError:
        return discover_fileset(path, suffix=".root"), "tautuple"


def _model_digest(run_dir: Path, model_file: str) -> str:
    h = hashlib.sha256()
    with open(run_dir / model_file, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run_predict(
    run_dir: str | os.PathLike[str],
    input_path: str | os.PathLike[str] | Mapping[str, list[str]],
    output: str | os.PathLike[str],
    *,
    fmt: str = "auto",
    executor: ExecutorConfig | str | None = None,
    chunksize: int | None = None,
    batch_size: int = 1000,
    adversarial: bool | None = None,
    model_file: str = "model.keras",
    overwrite: bool = False,
    session: ExecutionSession | None = None,
) -> PredictResult:
    """Predict every row of every input file with the run in ``run_dir`` (see module docstring)."""
    run = Path(run_dir).resolve()
    for name in ("config.yaml", model_file):
        if not (run / name).exists():
            raise InputError(f"'{run}' is not a finished training run: '{name}' is missing")
    fileset, fmt = _detect_format(input_path, fmt)
    out = Path(output)
    targets = {f: check_output(prediction_path(out, ds, f), overwrite) for ds, files in fileset.items() for f in files}
    cfg = resolve_executor(executor, session)
    parts_dir = out / _PARTS
    proc = PredictProcessor(run, parts_dir, fmt=fmt, batch_size=batch_size, adversarial=adversarial, model_file=model_file)
    stage_config = {"run": str(run), "model": _model_digest(run, model_file), "fmt": fmt, "files": fileset,
                    "adversarial": adversarial, "parts": str(parts_dir.resolve())}
    branches = _branches(run, model_file, fmt)

    def _run(s: ExecutionSession) -> tuple[Any, RunReport]:
        return run_processor(s, proc, fileset, treename=None if fmt == "parquet" else "taus", stage="predict",
                             stage_config=stage_config, branches=branches, chunksize=chunksize)

    outputs, filemap, rows = [], {}, {}
    with stage_parts(parts_dir, bool(cfg.checkpoint_dir)):
        acc, report = in_session(session, cfg, _run)
        acc = acc or {}
        parts = acc.get("parts", {})
        for ds, files in fileset.items():
            for f in files:
                pieces = parts.get(ds, {}).get(os.path.abspath(f))
                if pieces is None:
                    continue  # skipped as a bad file (reported)
                target = targets[f]
                _concatenate(pieces, target, f)
                outputs.append(target)
                filemap[str(target.resolve())] = os.path.abspath(f)
            rows[ds] = int(acc.get("rows", {}).get(ds, 0))
    _merge_filemap(out / FILEMAP_NAME, filemap)
    report.write(out / "predict_report.json")
    return PredictResult(outputs, filemap, rows, report, [b.path for b in report.bad_files])


def _branches(run: Path, model_file: str, fmt: str) -> list[str]:
    """Input columns the run's features need (from its config; the model is not loaded here)."""
    import yaml

    from taucoffea.ml.config import resolve_config
    from taucoffea.ml.inputs import builder_from_config

    cfg_path = run / "config.yaml"
    cols = builder_from_config(resolve_config(yaml.safe_load(cfg_path.read_text()), where=str(cfg_path))).columns()
    if fmt == "tautuple":
        cols = sorted(set(cols) - {"tauType"})
    return cols


def _concatenate(pieces: list[list[Any]], target: Path, source: str) -> None:
    """Parts of one file in entry order; they must tile [0, n) without gaps or overlaps."""
    from taucoffea.columns.parquet import write_parquet

    pieces = sorted(pieces, key=lambda p: int(p[0]))
    expected = 0
    for start, stop, _ in pieces:
        if int(start) != expected:
            raise InputError(f"predictions for '{source}' are incomplete: chunk starting at {start}, expected {expected}")
        expected = int(stop)
    arrays = [ak.from_parquet(p[2]) for p in pieces]
    table = ak.concatenate(arrays) if len(arrays) > 1 else arrays[0]
    if len(table) != expected:
        raise InputError(f"predictions for '{source}' have {len(table)} rows, expected {expected}")
    write_parquet(table, target)


def _merge_filemap(path: Path, new: Mapping[str, str]) -> None:
    current: dict[str, str] = {}
    if path.exists():
        try:
            current = json.loads(path.read_text())
        except json.JSONDecodeError:
            current = {}
    current.update(new)
    write_text_atomic(path, json.dumps(dict(sorted(current.items())), indent=2) + "\n")
