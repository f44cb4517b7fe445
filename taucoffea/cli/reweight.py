"""``taucoffea reweight``: adversarial pT weights per contribution (correctionlib + TH1Ds)."""

from __future__ import annotations

import argparse

from taucoffea.cli.common import add_executor_arguments, executor_from_args

HELP = "pT weights per adversarial contribution so the weighted MC matches the data per bin"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="folder with one sub-folder per contribution (event-drop output)")
    parser.add_argument("--output", required=True, help="output folder for adversarial_weights.{json,root}")
    parser.add_argument("--contributions", help="contributions YAML (default: the built-in = configs/adversarial/selection.yaml)")
    parser.add_argument("--composition", help="taus per batch, e.g. 'data=50,DY_taus=36,...' (default from the contributions)")
    parser.add_argument("--target", help="match this histogram (FILE.root:HISTPATH or FILE.json) instead of the data")
    parser.add_argument("--mode", default="common", choices=("common", "per-contribution"), help="how the MC total is split (docs/adversarial.md)")
    parser.add_argument("--pt-bins", help="pT bin edges (default: the event-drop binning 30,...,400)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    add_executor_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from taucoffea.algorithms.event_drop import DEFAULT_PT_EDGES
    from taucoffea.algorithms.rebin import parse_bin_edges
    from taucoffea.stages.reweight import run_reweight

    result = run_reweight(
        args.input, args.output, contributions=args.contributions, composition=args.composition,
        target=args.target, mode=args.mode,
        pt_edges=parse_bin_edges(args.pt_bins, "--pt-bins") if args.pt_bins else DEFAULT_PT_EDGES,
        executor=executor_from_args(args), overwrite=args.overwrite,
    )
    print(result.summary())
    print(f"weights: {result.weights_file}")
    return 0
