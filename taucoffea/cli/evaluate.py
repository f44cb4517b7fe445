"""``taucoffea evaluate``: ROC curves, AUCs and WP points into ``performance.json``."""

from __future__ import annotations

import argparse

HELP = "evaluate discriminators: weighted ROC/AUC and WP points per bin into performance.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True,
                        help="evaluation setup YAML (e.g. configs/evaluation/toy.yaml)")
    parser.add_argument("--input", help="predictions / per-tau files: a folder of "
                        "<sample>/*.parquet|*.root, one folder or one file (overrides inputs.path)")
    parser.add_argument("--output", required=True,
                        help="output folder; writes <output>/<discriminator key>/performance.json")
    parser.add_argument("--working-points", help="working_points.json for discriminators with "
                        "threshold WPs but no thresholds in their config (the trained model)")
    parser.add_argument("--overwrite", action="store_true",
                        help="start performance.json afresh instead of updating its entries")


def run(args: argparse.Namespace) -> int:
    from taucoffea.stages.evaluate import run_evaluate

    result = run_evaluate(args.config, args.output, input_path=args.input,
                          working_points=args.working_points, overwrite=args.overwrite)
    print(result.summary())
    print("taus per sample after cuts: " + ", ".join(f"{k}={v}" for k, v in result.n_rows.items()))
    for p in result.outputs:
        print(f"wrote {p}")
    return 0
