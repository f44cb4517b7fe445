"""``taucoffea spectra``: the CreateSpectralHists step."""

from __future__ import annotations

import argparse

from taucoffea.cli.common import add_executor_arguments, executor_from_args

HELP = "(|eta|, pT) spectra per tau type and dataset (CreateSpectralHists)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="a file, a dataset folder, or a folder of dataset folders")
    parser.add_argument("--output", required=True, help="output folder for <dataset>.root and <dataset>.txt")
    parser.add_argument("--format", default="tautuple", choices=("tautuple", "nanoaod", "parquet"))
    parser.add_argument("--pt-hist", default="4990, 10, 5000", help="'n_bins, min, max' (default 1 GeV bins)")
    parser.add_argument("--eta-hist", default="25, 0, 2.5", help="'n_bins, min, max' of |eta| (default 0.1 bins)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    add_executor_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from taucoffea.algorithms.spectra import HistSpec, SpectrumBinning
    from taucoffea.stages.spectra import run_spectra

    binning = SpectrumBinning(pt=HistSpec.parse(args.pt_hist), eta=HistSpec.parse(args.eta_hist))
    result = run_spectra(
        args.input,
        args.output,
        fmt=args.format,
        executor=executor_from_args(args),
        binning=binning,
        overwrite=args.overwrite,
    )
    print(result.summary())
    for bad in result.report.bad_files:
        print(f"skipped {bad.path}: {bad.reason}")
    print(f"wrote {len(result.outputs)} files to {args.output}")
    return 0
