"""The adversarial inputs the way a coffea user writes them: filesets, Runners, a Parsl executor.

    python processors/adversarial_inputs.py TOY_DIR OUTPUT_DIR [--workers 2] [--chunksize N]

Skim (contributions of configs/adversarial/selection.yaml) → event drop to the DY τ pT shape
→ pT weights → data/MC mix, each step a taucoffea processor in a plain
``coffea.processor.Runner`` with ``ParslExecutor`` and a DataFlowKernel loaded by hand. The
bookkeeping between the steps (merging per-chunk parts, keep probabilities, weights, the
mixing plan) uses the same library functions as ``taucoffea run configs/adversarial/toy.yaml``,
so with the same options the outputs are the same bytes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

import parsl
from coffea import processor
from coffea.nanoevents import BaseSchema
from parsl.config import Config
from parsl.executors import HighThroughputExecutor
from parsl.providers import LocalProvider

from taucoffea.adversarial import TAU_TYPE_COLUMN, load_adversarial_config
from taucoffea.adversarial.inputs import entry_counts, resolve_fileset
from taucoffea.adversarial.parts import merge_file_parts, output_stems
from taucoffea.algorithms.buckets import merge_bucket
from taucoffea.algorithms.event_drop import keep_probabilities
from taucoffea.algorithms.event_drop import to_correctionlib as keep_to_correctionlib
from taucoffea.algorithms.mixing import OUTPUTS, plan_mix
from taucoffea.algorithms.rebin import parse_bin_edges
from taucoffea.algorithms.reweight import compute_pt_weights
from taucoffea.algorithms.reweight import to_correctionlib as weights_to_correctionlib
from taucoffea.processors.event_drop import EventDropProcessor, PtHistogramProcessor
from taucoffea.processors.mix import POSITION, MixProcessor
from taucoffea.processors.skim import SkimProcessor
from taucoffea.stages.mix import OUTPUT_NAMES, mix_columns

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "adversarial" / "selection.yaml"


def merge_outputs(parts: dict, fileset: dict, out: Path) -> None:
    """Per-chunk parts → one parquet per input file and output label, in entry order."""
    for label, per_file in parts.items():
        for files in fileset.values():
            stems = output_stems(files)
            for f in files:
                chunks = [p for p in per_file.get(os.path.abspath(f), []) if p[1]]
                if chunks:
                    merge_file_parts(chunks, out / label / f"{stems[f]}.parquet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="toy folder with the *_MuTau samples")
    parser.add_argument("output")
    parser.add_argument("--contributions", default=str(CONFIG))
    parser.add_argument("--composition", help="e.g. 'data=50,DY_taus=36,...'")
    parser.add_argument("--pt-bins", default="30, 35, 40, 45, 50, 55, 60, 70, 80, 100, 140, 400")
    parser.add_argument("--target", default="DY_taus", help="contribution whose pT shape the others are thinned to")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunksize", type=int, default=100_000)
    args = parser.parse_args()

    cfg = load_adversarial_config(args.contributions).with_composition(args.composition)
    edges = parse_bin_edges(args.pt_bins, "--pt-bins")
    out = Path(args.output)
    toy, tree = resolve_fileset(args.input)
    selections: dict[str, dict[str, str]] = {}
    for c in cfg.contributions:
        selections.setdefault(c.dataset, {})[c.name] = c.selection(cfg.selection)
    toy = {ds: files for ds, files in toy.items() if ds in selections}

    config = Config(
        executors=[HighThroughputExecutor(address="127.0.0.1", max_workers_per_node=args.workers,
                                          provider=LocalProvider(init_blocks=1, max_blocks=1))],
        run_dir=tempfile.mkdtemp(prefix="parsl-"),
        strategy="none",
    )
    with parsl.load(config):

        def runner(fmt: str) -> processor.Runner:
            return processor.Runner(executor=processor.ParslExecutor(), schema=BaseSchema,
                                    chunksize=args.chunksize, format=fmt)

        # 1. skim: one pass per sample, one output folder per contribution
        acc = runner("root")(toy, treename=tree, processor_instance=SkimProcessor(
            selections, out / ".parts", recompute_tautype=True, tau_type_column=TAU_TYPE_COLUMN))
        merge_outputs(acc["parts"], toy, out / "skim")
        skim, _ = resolve_fileset(out / "skim")

        # 2. event drop: observed pT, keep probabilities (correctionlib), the drop itself
        acc = runner("parquet")(skim, treename="", processor_instance=PtHistogramProcessor(edges))
        observed = {ds: h.values() for ds, h in acc["pt"].items()}
        keep = {ds: keep_probabilities(edges, observed[args.target], o) for ds, o in observed.items()}
        keep_json = keep_to_correctionlib(keep).model_dump_json(exclude_unset=True, indent=1)
        acc = runner("parquet")(skim, treename="", processor_instance=EventDropProcessor(
            keep_json, edges, out / ".parts", seed=args.seed))
        merge_outputs(acc["parts"], skim, out / "drop")
        drop, _ = resolve_fileset(out / "drop")

        # 3. pT weights per contribution (the weighted MC of a batch matches its data)
        acc = runner("parquet")(drop, treename="", processor_instance=PtHistogramProcessor(edges))
        composition = {n: k for n, k in cfg.composition().items() if k > 0}
        weights = compute_pt_weights(edges, {ds: h.values() for ds, h in acc["pt"].items()}, composition,
                                     {c.name: c.dataset_id for c in cfg.contributions}, cfg.data.name)
        print(weights.summary())
        weights_json = weights_to_correctionlib(weights).model_dump_json(exclude_unset=True, indent=1)

        # 4. mix: whole batches, shuffled inside each batch, two disjoint outputs
        counts, _ = entry_counts(drop, None)
        plan = plan_mix({n: sum(counts[f] for f in files) for n, files in drop.items()}, cfg.composition())
        print(plan.describe())
        offsets, used = {}, {}
        for n, files in drop.items():
            start = 0
            for f in files:
                if start < plan.needed(n):
                    offsets[f] = start
                    used.setdefault(n, []).append(f)
                start += counts[f]
        acc = runner("parquet")(used, treename="", processor_instance=MixProcessor(
            plan, offsets, weights_json, out / ".parts", seed=args.seed, columns=mix_columns(used, None, None, None),
            dataset_ids={c.name: c.dataset_id for c in cfg.contributions},
            tau_types={c.name: c.tau_type for c in cfg.contributions}))
        for o in OUTPUTS:
            path, n = merge_bucket(sorted(acc["parts"][o]), out / OUTPUT_NAMES[o], POSITION)
            print(f"{path}: {n} taus")
    parsl.clear()
    shutil.rmtree(out / ".parts", ignore_errors=True)


if __name__ == "__main__":
    main()
