"""``taucoffea skim``: TauMLTools' skim_tree.py (+ recompute_tautype) on the execution layer."""

from __future__ import annotations

import argparse

from taucoffea.cli.common import add_executor_arguments, executor_from_args

HELP = "select rows of TauTuples/parquet into parquet (and ROOT), optionally recomputing the tau type"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, nargs="+", help=".root/.parquet files, .txt lists ('#' lines skipped) or folders")
    parser.add_argument("--output", required=True, help="output folder: <output>/<dataset or contribution>/<input stem>.parquet")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--sel", help="selection in ROOT syntax, e.g. 'tau_pt > 30 && std::abs(tau_eta) < 2.3'")
    what.add_argument("--contributions", help="adversarial contributions YAML (configs/adversarial/selection.yaml): one output per contribution")
    parser.add_argument("--include-columns", nargs="+", help="columns to keep: exact names or ^regex")
    parser.add_argument("--exclude-columns", nargs="+", help="columns to drop: exact names or ^regex")
    parser.add_argument("--recompute-tautype", action="store_true", help="add 'mytauType' (-1 when unmatched); always on with --contributions")
    parser.add_argument("--root", action="store_true", help="also write <stem>.root (TTree 'taus', TauTuple C++ types)")
    parser.add_argument("--input-tree", default="taus", help="tree of ROOT inputs (default: taus)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    add_executor_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from taucoffea.stages.skim import run_skim

    result = run_skim(
        args.input, args.output, sel=args.sel, contributions=args.contributions,
        include_columns=args.include_columns, exclude_columns=args.exclude_columns,
        recompute_tautype=args.recompute_tautype, root=args.root, treename=args.input_tree,
        executor=executor_from_args(args), overwrite=args.overwrite,
    )
    print(result.summary())
    for item in result.extra.get("no_rows_selected", []):
        print(f"no row selected, no output: {item}")
    for bad in result.report.bad_files:
        print(f"skipped {bad.path}: {bad.reason}")
    return 0
