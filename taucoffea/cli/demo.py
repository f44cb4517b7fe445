"""``taucoffea demo``: toy data through the whole pipeline on local Parsl."""

from __future__ import annotations

import argparse

from taucoffea.cli.common import add_executor_arguments, executor_from_args

HELP = "run the whole pipeline on toy data (the README's main job)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", default="taucoffea-demo", help="where everything goes (default ./taucoffea-demo)")
    parser.add_argument("--until", help="stop after this stage (a stage name of configs/pipelines/demo.yaml)")
    parser.add_argument("--restart", action="store_true", help="redo stages that finished in an earlier run")
    add_executor_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from taucoffea.stages.demo import run_demo

    summary = run_demo(args.workdir, until=args.until, executor=executor_from_args(args), restart=args.restart)
    print("\n=== taucoffea demo: summary ===")
    for stage, line in summary["stages"].items():
        print(f"  {stage:<22} {line}")
    for key, per in summary.get("auc", {}).items():
        print(f"  AUC {key:<22} " + "   ".join(f"{name}: {auc:.4f}" for name, auc in per.items()))
    for vs, wps in summary.get("model_working_points_pt20-100", {}).items():
        print(f"  model WPs {vs}: " + "; ".join(f"{wp} {txt}" for wp, txt in wps.items()))
    for label, numbers in summary.get("adversarial_data_mc_agreement", {}).items():
        print(f"  data/MC agreement of Djet, {label} adversarial training: "
              f"KS distance {numbers['djet_ks_distance']}, chi2/ndf {numbers['djet_chi2_ndf']}")
    print(f"plots: open {summary['gallery']}")
    return 0
