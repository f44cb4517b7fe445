"""Predictions the way a coffea user writes it: a fileset, a Runner, a Parsl executor.

    python processors/predict.py RUN_DIR INPUT OUTPUT_DIR [--format parquet|tautuple] [--workers 2]

Equivalent to ``taucoffea predict``; kept as a plain script to show that PredictProcessor works
in any coffea Runner. Each chunk writes a parquet part; the parts of every input file are then
concatenated in entry order into ``OUTPUT_DIR/<dataset>/<file>_pred.parquet``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import awkward as ak
import parsl
from coffea import processor
from coffea.nanoevents import BaseSchema
from parsl.config import Config
from parsl.executors import HighThroughputExecutor
from parsl.providers import LocalProvider

from taucoffea.columns.discovery import discover_fileset
from taucoffea.processors.predict import PredictProcessor
from taucoffea.columns.parquet import write_parquet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir")
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--format", default="parquet", choices=("parquet", "tautuple"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunksize", type=int, default=50_000)
    args = parser.parse_args()

    fileset = discover_fileset(args.input, suffix=".parquet" if args.format == "parquet" else ".root")
    output = Path(args.output)
    parts_dir = output / ".parts"
    config = Config(
        executors=[
            HighThroughputExecutor(
                address="127.0.0.1", max_workers_per_node=args.workers, provider=LocalProvider(init_blocks=1, max_blocks=1)
            )
        ],
        run_dir=tempfile.mkdtemp(prefix="parsl-"),
        strategy="none",
    )
    with parsl.load(config):
        runner = processor.Runner(
            executor=processor.ParslExecutor(),
            schema=BaseSchema,
            chunksize=args.chunksize,
            format="parquet" if args.format == "parquet" else "root",
        )
        out = runner(
            fileset,
            processor_instance=PredictProcessor(args.run_dir, parts_dir, fmt=args.format),
            treename="taus" if args.format == "tautuple" else "",
        )
    parsl.clear()

    for dataset, files in sorted(out["parts"].items()):
        for filename, pieces in sorted(files.items()):
            pieces = sorted(pieces, key=lambda p: p[0])
            table = ak.concatenate([ak.from_parquet(p[2]) for p in pieces])
            stem = Path(filename).name.rsplit(".", 1)[0]
            write_parquet(table, output / dataset / f"{stem}_pred.parquet")
            print(f"{dataset}/{stem}_pred.parquet: {len(table)} rows")


if __name__ == "__main__":
    main()
