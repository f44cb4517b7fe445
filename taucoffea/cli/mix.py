"""``taucoffea mix``: the adversarial data/MC mixture (EventMix, spec §7.3) as parquet."""

from __future__ import annotations

import argparse

from taucoffea.cli.common import add_executor_arguments, executor_from_args

HELP = "mix data and MC contributions into adv_trainval.parquet and adv_eval.parquet (EventMix)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="folder with one sub-folder per contribution (event-drop output)")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--weights", required=True, help="adversarial_weights.json from `taucoffea reweight`")
    parser.add_argument("--contributions", help="contributions YAML (default: the built-in = configs/adversarial/selection.yaml)")
    parser.add_argument("--composition", help="taus per batch, e.g. 'data=50,DY_taus=36,...'")
    parser.add_argument("--n-trainval", type=int, help="train/val batches (default: from availability, 3:2 like 1125:750)")
    parser.add_argument("--n-eval", type=int, help="evaluation batches (default: the rest)")
    parser.add_argument("--seed", type=int, default=1234567, help="seed of the shuffle inside each batch")
    parser.add_argument("--include-columns", nargs="+", help="columns to keep: exact names or ^regex")
    parser.add_argument("--exclude-columns", nargs="+", help="columns to drop: exact names or ^regex")
    parser.add_argument("--pt-bins", help="pT bins of the closure printed for each output")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    add_executor_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from taucoffea.algorithms.event_drop import DEFAULT_PT_EDGES
    from taucoffea.algorithms.rebin import parse_bin_edges
    from taucoffea.stages.mix import run_mix

    result = run_mix(
        args.input, args.output, weights=args.weights, contributions=args.contributions,
        composition=args.composition, n_trainval=args.n_trainval, n_eval=args.n_eval, seed=args.seed,
        include_columns=args.include_columns, exclude_columns=args.exclude_columns,
        pt_edges=parse_bin_edges(args.pt_bins, "--pt-bins") if args.pt_bins else DEFAULT_PT_EDGES,
        executor=executor_from_args(args), overwrite=args.overwrite,
    )
    print(result.summary())
    return 0
