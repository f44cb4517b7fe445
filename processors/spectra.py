"""Spectra the way a coffea user writes it: a fileset, a Runner, a Parsl executor.

    python processors/spectra.py INPUT_DIR OUTPUT_DIR [--format tautuple|nanoaod] [--workers 2]

Equivalent to ``taucoffea spectra``; kept as a plain script to show that SpectrumProcessor
works in any coffea Runner.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import parsl
from coffea import processor
from coffea.nanoevents import BaseSchema
from parsl.config import Config
from parsl.executors import HighThroughputExecutor
from parsl.providers import LocalProvider

from taucoffea.algorithms.spectra import write_entries_txt, write_spectra
from taucoffea.columns.discovery import discover_fileset
from taucoffea.processors import SpectrumProcessor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--format", default="tautuple", choices=("tautuple", "nanoaod"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunksize", type=int, default=100_000)
    args = parser.parse_args()

    fileset = discover_fileset(args.input)
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
        runner = processor.Runner(executor=processor.ParslExecutor(), schema=BaseSchema, chunksize=args.chunksize)
        out = runner(
            fileset,
            processor_instance=SpectrumProcessor(fmt=args.format),
            treename="taus" if args.format == "tautuple" else "Events",
        )
    parsl.clear()

    output = Path(args.output)
    for dataset, entries in sorted(out["entries"].items()):
        write_spectra(output / f"{dataset}.root", out["spectra"].get(dataset, {}), out["not_valid"][dataset], overwrite=True)
        write_entries_txt(output / f"{dataset}.txt", entries, overwrite=True)
        print(f"{dataset}: {sum(entries.values())} entries, types {sorted(out['spectra'].get(dataset, {}))}")


if __name__ == "__main__":
    main()
