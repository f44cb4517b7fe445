"""``taucoffea demo``: toy data through the whole pipeline on local Parsl."""

from __future__ import annotations

import argparse
import json

from taucoffea.cli.common import add_executor_arguments, executor_from_args

HELP = "run the whole pipeline on toy data (the README's main job)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", default="taucoffea-demo", help="where everything goes (default ./taucoffea-demo)")
    parser.add_argument("--size", default="small", choices=("small", "medium"), help="toy data size")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--until", help="stop after this stage")
    parser.add_argument("--restart", action="store_true", help="redo stages already done")
    add_executor_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from taucoffea.stages.demo import run_demo

    summary = run_demo(
        args.workdir, size=args.size, seed=args.seed, until=args.until, executor=executor_from_args(args), restart=args.restart
    )
    print("\n=== taucoffea demo summary ===")
    print(json.dumps(summary, indent=2, sort_keys=True))
    print(f"open {summary['gallery']} to see the plots")
    return 0
