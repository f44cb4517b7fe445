"""Spectral shuffle & merge the way a coffea user writes it: one Runner, a Parsl executor, four passes.

    python processors/shuffle_merge.py --cfg configs/datagroups/toy.yaml --input TOY_DIR --output OUT \\
        --pt-bins "20, 30, 40, 50, 60, 70, 80, 90, 100, 1000" --eta-bins "0., 0.6, 1.2, 1.8, 2.4" \\
        --tau-ratio "jet:1, e:1, mu:1, tau:1" [--seed 1234567] [--n-files 1] [--workers 2]

1. spectra: ``SpectrumProcessor`` over the files the data groups select (skipped with
   ``--input-spec`` pointing to a ``taucoffea spectra`` folder);
2. acceptance probabilities from the spectra (printed, and written to ``OUT/acceptance/``);
3. sampling: ``SamplingProcessor`` keeps each tau with its probability and scatters it into
   one of ``--n-files`` buckets (parquet parts);
4. merge: each bucket sorted by its random keys into ``ShuffleMergeSpectral_<k>.parquet``, one
   Parsl app per bucket.

The files written are byte-identical to ``taucoffea shuffle-merge`` with the same options
(``tests/test_shuffle_merge_script.py`` checks it): every random decision is a function of the
tau alone, so neither this Runner nor its chunk size changes anything.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import parsl
from coffea import processor
from coffea.nanoevents import BaseSchema
from parsl import python_app
from parsl.config import Config
from parsl.executors import HighThroughputExecutor
from parsl.providers import LocalProvider

from taucoffea.algorithms.acceptance import (
    compute_acceptance,
    entries_from_spectra,
    expected_by_type,
    format_expected_table,
    write_acceptance,
)
from taucoffea.algorithms.buckets import key_threshold, merge_bucket
from taucoffea.algorithms.rebin import parse_bin_edges
from taucoffea.algorithms.spectra import read_spectra, write_entries_txt, write_spectra
from taucoffea.algorithms.validation_stats import closure_report
from taucoffea.columns.atomic import write_text_atomic
from taucoffea.datagroups import group_fileset, match_files, read_datagroups
from taucoffea.physics.dataset_hash import std_hash
from taucoffea.physics.tautypes import TAU_TYPE_NAMES
from taucoffea.processors import SpectrumProcessor
from taucoffea.processors.sampling import SORT_KEY, SamplingProcessor
from taucoffea.stages.shuffle_merge import OUTPUT_PATTERN
from taucoffea.stages.validate import EXPECTED_JSON, write_expected_json


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got '{text}'")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfg", required=True, help="data groups (.cfg or YAML)")
    parser.add_argument("--input", required=True, help="folder of <dataset>/<file>.root TauTuples")
    parser.add_argument("--output", required=True)
    parser.add_argument("--input-spec", help="spectra folder from `taucoffea spectra` (default: compute them)")
    parser.add_argument("--pt-bins", required=True)
    parser.add_argument("--eta-bins", required=True)
    parser.add_argument("--tau-ratio", required=True)
    parser.add_argument("--seed", type=int, default=1234567)
    parser.add_argument("--n-files", type=int, default=1)
    parser.add_argument("--max-entries", type=int)
    parser.add_argument("--parity", type=int, default=3, choices=(0, 1, 3))
    parser.add_argument("--lastbin-takeall", type=_bool, default=False, nargs="?", const=True)
    parser.add_argument("--lastbin-disbalance", type=float, default=1.0)
    parser.add_argument("--enable-emptybin", type=_bool, default=False, nargs="?", const=True)
    parser.add_argument("--disabled-branches", help="comma list of columns not copied (exact names or ^regex)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunksize", type=int, default=100_000)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    out = Path(args.output).resolve()
    pt, eta = parse_bin_edges(args.pt_bins, "pt bins"), parse_bin_edges(args.eta_bins, "eta bins")
    groups = read_datagroups(args.cfg)
    matched = match_files(groups, args.input)  # {group: [(dataset, path)]}, groups sorted
    fileset, file_groups = group_fileset(matched)
    exclude = [c.strip() for c in args.disabled_branches.split(",") if c.strip()] if args.disabled_branches else None

    config = Config(
        executors=[
            HighThroughputExecutor(
                address="127.0.0.1",
                max_workers_per_node=args.workers,
                provider=LocalProvider(init_blocks=1, max_blocks=1),
            )
        ],
        run_dir=tempfile.mkdtemp(prefix="parsl-"),
        strategy="none",
    )
    parts_dir = out / ".parts"
    shutil.rmtree(parts_dir, ignore_errors=True)
    with parsl.load(config):
        runner = processor.Runner(executor=processor.ParslExecutor(), schema=BaseSchema, chunksize=args.chunksize)

        # 1. spectra (written as `taucoffea spectra` does, then read back as the stage reads them)
        spec_dir = Path(args.input_spec) if args.input_spec else out / "spectra"
        if not args.input_spec:
            spec = runner(fileset, processor_instance=SpectrumProcessor(), treename="taus")
            for ds, entries in sorted(spec["entries"].items()):
                hists = spec["spectra"].get(ds, {})
                write_spectra(spec_dir / f"{ds}.root", hists, spec["not_valid"][ds], overwrite=True)
                write_entries_txt(spec_dir / f"{ds}.txt", entries, overwrite=True)
        spectra = {ds: read_spectra(spec_dir / f"{ds}.root")[0] for ds in sorted(fileset)}

        # 2. acceptance probabilities
        table = compute_acceptance(
            entries_from_spectra(groups, matched, spectra, pt, eta), pt, eta, args.tau_ratio,
            lastbin_takeall=args.lastbin_takeall, lastbin_disbalance=args.lastbin_disbalance,
            enable_emptybin=args.enable_emptybin,
        )
        print(format_expected_table(table))
        write_acceptance(table, out / "acceptance", overwrite=True)

        # 3. sampling into buckets
        sampler = SamplingProcessor(
            table, file_groups, parts_dir, seed=args.seed, n_buckets=args.n_files, parity=args.parity, exclude=exclude
        )
        acc = runner(fileset, processor_instance=sampler, treename="taus")

        # 4. one merge app per bucket
        parts = acc["parts"]
        empty = [k for k in range(args.n_files) if not parts.get(k)]
        if empty:
            raise SystemExit(f"no taus were accepted into bucket(s) {empty}; use fewer --n-files or more input")
        threshold = None
        if args.max_entries is not None:
            threshold = key_threshold(sorted(p for ps in parts.values() for p in ps), SORT_KEY, args.max_entries)
        merge = python_app(merge_bucket, executors="all")
        futures = [
            merge(sorted(parts[k]), str(out / OUTPUT_PATTERN.format(k=k)), SORT_KEY, threshold=threshold)
            for k in range(args.n_files)
        ]
        merged = [f.result() for f in futures]
    parsl.clear()
    shutil.rmtree(parts_dir, ignore_errors=True)

    datasets = sorted(fileset)
    for name, table_ in (("datagroup_hash.json", [g.name for g in groups]), ("dataset_hash.json", datasets)):
        hashes = {x: str(std_hash(x)) for x in table_}  # strings, as the original's JSON
        write_text_atomic(out / name, json.dumps(hashes, indent=2, sort_keys=True) + "\n")

    # closure: accepted counts per type and (|η|, pT) bin against the expected binomial counts
    shape = table.expected.shape[2:]
    observed = {t: np.zeros(shape) for t in table.types}
    for per_type in acc["accepted"].values():
        for code, counts in per_type.items():
            if TAU_TYPE_NAMES[code] in observed:
                observed[TAU_TYPE_NAMES[code]] += counts
    closure = {}
    if args.max_entries is None and args.parity == 3:
        closure = {t: c.to_dict() for t, c in closure_report(observed, *expected_by_type(table)).items()}
    write_text_atomic(out / "closure.json", json.dumps(closure, indent=1, sort_keys=True) + "\n")
    write_expected_json(table, out / "acceptance" / EXPECTED_JSON, parity=args.parity,
                        max_entries=args.max_entries, outputs=[p for p, _ in merged])
    for path, n in merged:
        print(f"{path}: {n} taus")
    for t, c in closure.items():
        print(f"{t:>4}: observed {c['n_observed']:.0f}, expected {c['n_expected']:.1f}, p={c['pvalue']:.3f}")


if __name__ == "__main__":
    main()
