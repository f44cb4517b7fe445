"""``taucoffea derive-wp``: working-point thresholds for target genuine-tau efficiencies."""

from __future__ import annotations

import argparse

HELP = "derive working points (iterative WPMaker) into working_points.json and correctionlib"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True,
                        help="WP derivation YAML (configs/evaluation/derive_wp.yaml)")
    parser.add_argument("--input", help="predictions / per-tau files (overrides inputs.path)")
    parser.add_argument("--output", required=True, help="output folder (e.g. the run directory)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")


def run(args: argparse.Namespace) -> int:
    from taucoffea.stages.derive_wp import run_derive_wp

    result = run_derive_wp(args.config, args.output, input_path=args.input,
                           overwrite=args.overwrite)
    print(result.summary())
    for p in result.outputs:
        print(f"wrote {p}")
    return 0
