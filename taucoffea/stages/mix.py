"""The mix stage (spec §7.3): the adversarial data/MC mixture as two parquet files.

``adv_trainval.parquet`` and ``adv_eval.parquet`` hold whole batches of ``batch_size`` rows
with exactly the configured number of taus of every contribution per batch (shuffled inside
the batch), the labels and weights of :mod:`taucoffea.processors.mix`, and never share a row.
``mix_report.json`` records the plan, the rows and weights per contribution and the weighted
MC vs data pT closure of each output.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pyarrow.parquet as pq

from taucoffea.adversarial.contributions import (
    TAU_TYPE_COLUMN,
    AdversarialConfig,
    load_adversarial_config,
)
from taucoffea.adversarial.inputs import entry_counts
from taucoffea.algorithms.buckets import merge_bucket
from taucoffea.algorithms.event_drop import DEFAULT_PT_EDGES, check_edges
from taucoffea.algorithms.mixing import OUTPUTS, MixPlan, plan_mix
from taucoffea.algorithms.reweight import WEIGHT_CORRECTION
from taucoffea.columns.atomic import check_output, write_text_atomic
from taucoffea.columns.table import select_columns
from taucoffea.errors import ConfigError, InputError
from taucoffea.execution.checkpoint import stage_parts
from taucoffea.execution.config import ExecutorConfig
from taucoffea.execution.runner import BadFile, RunReport, run_processor
from taucoffea.execution.session import ExecutionSession, in_session, resolve_executor
from taucoffea.processors.mix import ADDED_COLUMNS, POSITION, MixProcessor
from taucoffea.stages.reweight import REPORT_FILE, contribution_fileset

__all__ = ["OUTPUT_NAMES", "MixResult", "mix_columns", "mixture_closure", "run_mix"]

#: File name of each output.
OUTPUT_NAMES: dict[str, str] = {"trainval": "adv_trainval.parquet", "eval": "adv_eval.parquet"}


@dataclass
class MixResult:
    outputs: dict[str, Path]
    plan: MixPlan
    rows: dict[str, dict[str, int]]
    weights: dict[str, dict[str, float]]
    closure: dict[str, dict[str, Any]]
    report: RunReport

    def summary(self) -> str:
        lines = [self.plan.describe()]
        for o, path in self.outputs.items():
            c = self.closure[o]
            lines.append(
                f"{path.name}: {sum(self.rows[o].values())} rows; Σw data {c['data_weight']:.1f}, Σw MC "
                f"{c['mc_weight']:.1f}; weighted MC vs data per pT bin chi2/ndf {c['chi2']:.1f}/{c['ndf']}"
            )
        return "\n".join(lines)


def _schema(path: str, tree: str | None) -> list[str]:
    if tree is None:
        return list(pq.ParquetFile(path).schema_arrow.names)
    import uproot

    with uproot.open(path) as f:
        return list(f[tree].keys())


def mix_columns(fileset: Mapping[str, Sequence[str]], tree: str | None, include: Collection[str] | None, exclude: Collection[str] | None) -> list[str]:
    """Columns common to every contribution (first file's order), then the adversarial ones."""
    schemas = [_schema(files[0], tree) for files in fileset.values() if files]
    common = [c for c in schemas[0] if all(c in s for s in schemas[1:])]
    for required in ("tau_pt", "sampleType"):
        if required not in common:
            raise InputError(f"column '{required}' is missing from the mix inputs (present in all: {common[:20]}…)")
    chosen = select_columns([c for c in common if c != POSITION], include, exclude)
    columns = list(chosen)
    for c in ADDED_COLUMNS:
        if c not in columns:
            columns.append(c)
    return columns


def _check_composition(weights: Path, cfg: AdversarialConfig) -> None:
    report = weights.parent / REPORT_FILE
    if not report.exists():
        return
    made_for = json.loads(report.read_text()).get("composition")
    now = {n: k for n, k in cfg.composition().items() if k > 0}
    if made_for is not None and made_for != now:
        raise ConfigError(
            f"the weights in '{weights}' were derived for composition {made_for}, but the mix uses {now}; "
            "run `taucoffea reweight` with the same composition"
        )


def _load_weights(path: Path, cfg: AdversarialConfig) -> str:
    import correctionlib

    if not path.is_file():
        raise InputError(f"weights file '{path}' does not exist (run `taucoffea reweight` first)")
    text = path.read_text()
    try:
        corr = correctionlib.CorrectionSet.from_string(text)[WEIGHT_CORRECTION]
    except Exception as err:
        raise InputError(f"'{path}' is not a correctionlib file with '{WEIGHT_CORRECTION}': {err}") from None
    for c in cfg.contributions:
        if c.per_batch == 0:
            continue
        try:
            corr.evaluate(int(c.dataset_id), 50.0)
        except Exception:
            raise InputError(f"weights file '{path}' has no weights for dataset_id {c.dataset_id} (contribution '{c.name}')") from None
    return text


def mixture_closure(rows: ak.Array, edges: np.ndarray) -> dict[str, Any]:
    """Weighted MC vs weighted data per pT bin of one output (statistical, not exact)."""
    pt = ak.to_numpy(rows["tau_pt"]).astype(np.float64)
    w = ak.to_numpy(rows["adv_weight"]).astype(np.float64)
    data = ak.to_numpy(rows["adv_label"]) == 1
    hd, _ = np.histogram(pt[data], edges, weights=w[data])
    hm, _ = np.histogram(pt[~data], edges, weights=w[~data])
    vd, _ = np.histogram(pt[data], edges, weights=w[data] ** 2)
    vm, _ = np.histogram(pt[~data], edges, weights=w[~data] ** 2)
    var = vd + vm
    use = var > 0
    chi2 = float(np.sum((hd[use] - hm[use]) ** 2 / var[use]))
    return {
        "data": hd.tolist(), "mc": hm.tolist(), "chi2": chi2, "ndf": int(use.sum()),
        "data_weight": float(w[data].sum()), "mc_weight": float(w[~data].sum()),
    }


def run_mix(
    input_path: str | os.PathLike[str] | Mapping[str, Sequence[str]],
    output: str | os.PathLike[str],
    *,
    weights: str | os.PathLike[str],
    contributions: str | os.PathLike[str] | AdversarialConfig | None = None,
    composition: str | Mapping[str, int] | None = None,
    n_trainval: int | None = None,
    n_eval: int | None = None,
    seed: int = 1234567,
    include_columns: Collection[str] | None = None,
    exclude_columns: Collection[str] | None = None,
    pt_edges: Sequence[float] = DEFAULT_PT_EDGES,
    treename: str = "taus",
    executor: ExecutorConfig | str | None = None,
    chunksize: int | None = None,
    overwrite: bool = False,
    session: ExecutionSession | None = None,
) -> MixResult:
    """Mix the contributions under ``input_path`` (one folder each) into the two outputs.

    ``n_trainval``/``n_eval`` default to what the scarcest contribution allows, split 3 : 2
    like the original's 1125 : 750 (see :func:`plan_mix`); ``MixResult.summary()`` shows the plan.
    """
    cfg = load_adversarial_config(contributions).with_composition(composition)
    out = Path(output)
    targets = {o: check_output(out / OUTPUT_NAMES[o], overwrite) for o in OUTPUTS}
    weights_path = Path(weights)
    weights_json = _load_weights(weights_path, cfg)
    _check_composition(weights_path, cfg)
    fileset, tree = contribution_fileset(input_path, cfg, treename=treename)
    exec_cfg = resolve_executor(executor, session)
    counts, unreadable = entry_counts(fileset, tree, skip_bad=exec_cfg.skip_bad_files)
    fileset = {n: [f for f in files if f in counts] for n, files in fileset.items()}
    available = {n: sum(counts[f] for f in files) for n, files in fileset.items()}
    plan = plan_mix(available, cfg.composition(), n_trainval=n_trainval, n_eval=n_eval)
    # global row number of each file's first entry; files past the last needed row are not read
    offsets: dict[str, int] = {}
    used: dict[str, list[str]] = {}
    for n, files in fileset.items():
        start = 0
        for f in files:
            if start < plan.needed(n):
                offsets[f] = start
                used.setdefault(n, []).append(f)
            start += counts[f]
    columns = mix_columns(used, tree, include_columns, exclude_columns)
    checkpointing = bool(exec_cfg.checkpoint_dir)
    parts_dir = out / ".parts-mix"
    proc = MixProcessor(
        plan, offsets, weights_json, parts_dir, seed=seed, columns=columns,
        dataset_ids={c.name: c.dataset_id for c in cfg.contributions},
        tau_types={c.name: c.tau_type for c in cfg.contributions}, type_column=TAU_TYPE_COLUMN,
    )
    stage_config = {
        "plan": [plan.names, plan.per_batch, plan.n_batches], "offsets": offsets, "weights": weights_json,
        "seed": seed, "columns": columns, "files": used, "parts": str(parts_dir.resolve()),
    }

    def _run(s: ExecutionSession) -> tuple[Any, RunReport, dict[str, tuple[str, int]]]:
        acc, report = run_processor(
            s, proc, used, treename=tree, stage="mix", stage_config=stage_config,
            branches={"tau_pt", "sampleType"}, chunksize=chunksize,
        )
        acc = acc or {}
        jobs = []
        for o in OUTPUTS:
            parts = sorted(acc.get("parts", {}).get(o, []))
            _check_positions(parts, plan, o)
            jobs.append((parts, str(targets[o])))
        merged = dict(zip(OUTPUTS, s.map(_merge_job, jobs, desc="writing mixture"), strict=True))
        return acc, report, merged

    out.mkdir(parents=True, exist_ok=True)
    with stage_parts(parts_dir, checkpointing):
        acc, report, merged = in_session(session, exec_cfg, _run)
    report.bad_files[:0] = [BadFile(*bad) for bad in unreadable]
    edges = check_edges(pt_edges)
    closure = {}
    for o in OUTPUTS:
        rows = ak.from_parquet(targets[o], columns=["tau_pt", "adv_weight", "adv_label"])
        closure[o] = mixture_closure(rows, edges)
    rows_per = {o: dict(acc.get("rows", {}).get(o, {})) for o in OUTPUTS}
    weight_per = {o: dict(acc.get("weight", {}).get(o, {})) for o in OUTPUTS}
    report_data = {
        "plan": {"contributions": list(plan.names), "per_batch": list(plan.per_batch), "available": list(plan.available),
                 "batches": dict(zip(OUTPUTS, plan.n_batches, strict=True)), "batch_size": plan.batch_size},
        "seed": seed, "weights": str(weights_path), "rows": rows_per, "weight_sums": weight_per,
        "closure": closure, "edges": edges.tolist(), "shuffled_within_batch": True,
        "dataset_ids": {c.name: c.dataset_id for c in cfg.contributions},
    }
    write_text_atomic(out / "mix_report.json", json.dumps(report_data, indent=1, sort_keys=True) + "\n")
    report.write(out / "mix_run_report.json")
    return MixResult({o: Path(merged[o][0]) for o in OUTPUTS}, plan, rows_per, weight_per, closure, report)


def _check_positions(parts: Sequence[str], plan: MixPlan, output: str) -> None:
    """Every position of the output is filled exactly once (exact composition, no overlap)."""
    n = plan.n_batches[OUTPUTS.index(output)] * plan.batch_size
    keys = [pq.read_table(p, columns=[POSITION]).column(0).to_numpy() for p in parts]
    pos = np.sort(np.concatenate(keys)) if keys else np.zeros(0, dtype=np.uint64)
    if pos.size != n or not np.array_equal(pos, np.arange(n, dtype=np.uint64)):
        raise InputError(f"mix output '{output}': {pos.size} rows placed for {n} positions (some input chunk failed?)")


def _merge_job(job: tuple[list[str], str]) -> tuple[str, int]:
    parts, target = job
    return merge_bucket(parts, target, POSITION)
