"""The reweight stage: pT weights per contribution for the adversarial mixture.

One pass (:class:`PtHistogramProcessor`) histograms the pT of every contribution (the event
drop outputs), :func:`compute_pt_weights` turns them into weights for the batch composition,
the closure is printed and checked, and the weights are written as

* ``adversarial_weights.json`` — correctionlib (inputs ``dataset_id``, ``pt``), validated by
  reading it back; this is what the mix uses;
* ``adversarial_weights.root`` — one TH1D per contribution named like the original's
  ``Setup.adversarial_weights`` (``data``, ``DYT``, ``TTT``, ``DYM``, ``TTJ``, ``WJ``, ``QCD``);
* ``reweight_report.json`` — composition, mode, histograms, closure (the mix checks that its
  composition is the one the weights were made for).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from taucoffea.adversarial.contributions import AdversarialConfig, load_adversarial_config
from taucoffea.adversarial.histio import read_target, write_th1_file
from taucoffea.adversarial.inputs import resolve_fileset
from taucoffea.execution.runner import run_processor
from taucoffea.algorithms.event_drop import DEFAULT_PT_EDGES, check_edges, rebin_values
from taucoffea.algorithms.reweight import WEIGHT_CORRECTION, PtWeights, compute_pt_weights, to_correctionlib
from taucoffea.columns.atomic import atomic_path, check_output, write_text_atomic
from taucoffea.errors import InputError, TaucoffeaError
from taucoffea.execution.config import ExecutorConfig
from taucoffea.execution.runner import RunReport
from taucoffea.execution.session import ExecutionSession, in_session, resolve_executor
from taucoffea.processors.event_drop import PtHistogramProcessor

__all__ = ["REPORT_FILE", "WEIGHTS_FILE", "WEIGHTS_ROOT", "ReweightResult", "contribution_fileset", "run_reweight"]

WEIGHTS_FILE = "adversarial_weights.json"
WEIGHTS_ROOT = "adversarial_weights.root"
REPORT_FILE = "reweight_report.json"


class ClosureError(TaucoffeaError):
    """The weighted MC does not reproduce the target (a bug, never a user error)."""


@dataclass
class ReweightResult:
    weights: PtWeights
    counts: dict[str, np.ndarray]
    weights_file: Path
    outputs: list[Path]
    report: RunReport

    def summary(self) -> str:
        return self.weights.summary()


def contribution_fileset(input_path: Any, cfg: AdversarialConfig, *, treename: str = "taus") -> tuple[dict[str, list[str]], str | None]:
    """``{contribution: files}`` for every contribution with taus in the batch; names the missing ones."""
    fileset, tree = resolve_fileset(input_path, treename=treename)
    wanted = [c.name for c in cfg.contributions if c.per_batch > 0]
    missing = [n for n in wanted if n not in fileset]
    if missing:
        raise InputError(
            f"contribution(s) {missing} have no input files under {input_path!r} (expected one folder per "
            f"contribution; found {sorted(fileset)})"
        )
    return {n: fileset[n] for n in wanted}, tree


def run_reweight(
    input_path: str | os.PathLike[str] | Mapping[str, Sequence[str]],
    output: str | os.PathLike[str],
    *,
    contributions: str | os.PathLike[str] | AdversarialConfig | None = None,
    composition: str | Mapping[str, int] | None = None,
    target: str | os.PathLike[str] | None = None,
    mode: str = "common",
    pt_edges: Sequence[float] = DEFAULT_PT_EDGES,
    pt_column: str = "tau_pt",
    treename: str = "taus",
    executor: ExecutorConfig | str | None = None,
    chunksize: int | None = None,
    overwrite: bool = False,
    session: ExecutionSession | None = None,
) -> ReweightResult:
    """Derive the adversarial pT weights from ``input_path`` (one folder per contribution)."""
    cfg = load_adversarial_config(contributions).with_composition(composition)
    edges = check_edges(pt_edges)
    out = Path(output)
    for name in (WEIGHTS_FILE, WEIGHTS_ROOT, REPORT_FILE):
        check_output(out / name, overwrite)
    fileset, tree = contribution_fileset(input_path, cfg, treename=treename)
    exec_cfg = resolve_executor(executor, session)
    proc = PtHistogramProcessor(edges, pt_column=pt_column)

    def _run(s: ExecutionSession) -> tuple[Any, RunReport]:
        return run_processor(
            s, proc, fileset, treename=tree, stage="reweight",
            stage_config={"edges": edges.tolist(), "files": fileset, "pt": pt_column},
            branches={pt_column}, chunksize=chunksize,
        )

    acc, report = in_session(session, exec_cfg, _run)
    counts = {ds: np.asarray(h.values(), float) for ds, h in (acc or {}).get("pt", {}).items()}
    target_values = None
    if target is not None:
        h = read_target(target)
        target_values = rebin_values(h.edges, h.values, edges, what=f"target '{target}'")
    composition_now = {n: k for n, k in cfg.composition().items() if k > 0}
    weights = compute_pt_weights(
        edges, counts, composition_now, {c.name: c.dataset_id for c in cfg.contributions}, cfg.data.name,
        target=target_values, mode=mode,
    )
    _check_closure(weights)
    out.mkdir(parents=True, exist_ok=True)
    weights_path = out / WEIGHTS_FILE
    with atomic_path(weights_path, overwrite=overwrite) as tmp:
        tmp.write_text(to_correctionlib(weights).model_dump_json(exclude_unset=True, indent=1))
        _read_back(tmp, weights)
    root_path = write_th1_file(
        out / WEIGHTS_ROOT,
        {cfg.by_name(n).weight_name: (weights.weights[k], edges) for k, n in enumerate(weights.names)},
        overwrite=overwrite,
    )
    report_data = {
        "mode": mode, "edges": edges.tolist(), "composition": composition_now, "data": cfg.data.name,
        "dataset_ids": dict(zip(weights.names, weights.dataset_ids, strict=True)),
        "weight_names": {n: cfg.by_name(n).weight_name for n in weights.names},
        "target": weights.target.tolist(), "target_source": str(target) if target is not None else f"contribution {cfg.data.name}",
        "counts": {n: counts[n].tolist() for n in weights.names},
        "expected_per_batch": {n: weights.expected[k].tolist() for k, n in enumerate(weights.names)},
        "weights": {n: weights.weights[k].tolist() for k, n in enumerate(weights.names)},
        "closure": weights.closure().tolist(), "unmatched_bins": [list(u) for u in weights.unmatched],
        "flow": "weight 0 outside the pT binning",
    }
    report_path = write_text_atomic(out / REPORT_FILE, json.dumps(report_data, indent=1, sort_keys=True) + "\n", overwrite=overwrite)
    report.write(out / "reweight_run_report.json")
    return ReweightResult(weights, counts, weights_path, [weights_path, root_path, report_path], report)


def _check_closure(weights: PtWeights) -> None:
    bad_bins = {i for _, i in weights.unmatched}
    clo = weights.closure()
    scale = max(float(np.abs(weights.target).max()), 1e-300)
    for i, c in enumerate(clo):
        if i not in bad_bins and abs(c) > 1e-9 * scale:
            raise ClosureError(f"reweighting closure fails in pT bin {i}: weighted MC - target = {c:g}")


def _read_back(path: Path, weights: PtWeights) -> None:
    import correctionlib

    corr = correctionlib.CorrectionSet.from_file(str(path))[WEIGHT_CORRECTION]
    centres = 0.5 * (weights.edges[1:] + weights.edges[:-1])
    for k, did in enumerate(weights.dataset_ids):
        got = np.asarray(corr.evaluate(np.full(centres.size, did, dtype=np.int64), centres))
        if not np.allclose(got, weights.weights[k], rtol=1e-15, atol=0):
            raise InputError(f"written weights for dataset_id {did} do not read back identically from '{path}'")
