"""``taucoffea predict``: apply a trained run to per-tau files (one prediction parquet per file)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from taucoffea.cli.common import add_executor_arguments, executor_from_args

HELP = "apply a trained model to per-tau files (parquet or TauTuple ROOT)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, help="training run directory (holds model.keras and config.yaml)")
    parser.add_argument("--input", required=True, nargs="+",
                        help="files, a dataset folder, or a folder of dataset folders")
    parser.add_argument("--output", required=True, help="output folder for <dataset>/<file>_pred.parquet")
    parser.add_argument("--format", default="auto", choices=("auto", "parquet", "tautuple"))
    parser.add_argument("--batch-size", type=int, default=1000, help="taus per model call")
    parser.add_argument("--adversarial", action="store_true", default=None,
                        help="write y_adv/adv_label/adv_weight/dataset_id/Djet (default: if the model has an adversarial head)")
    parser.add_argument("--model-file", default="model.keras", help="model inside the run (e.g. checkpoints/epoch_003.keras)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing prediction files")
    add_executor_arguments(parser)


def _input(paths: list[str]) -> str | dict[str, list[str]]:
    if len(paths) == 1:
        return paths[0]
    fileset: dict[str, list[str]] = {}
    for p in paths:
        path = Path(p)
        fileset.setdefault(path.resolve().parent.name or "dataset", []).append(os.path.abspath(p))
    return fileset


def run(args: argparse.Namespace) -> int:
    from taucoffea.stages.predict import run_predict

    result = run_predict(
        args.run,
        _input(args.input),
        args.output,
        fmt=args.format,
        executor=executor_from_args(args),
        batch_size=args.batch_size,
        adversarial=args.adversarial,
        model_file=args.model_file,
        overwrite=args.overwrite,
    )
    print(result.summary())
    for bad in result.bad_files:
        print(f"skipped {bad}")
    print(f"wrote {len(result.outputs)} prediction files to {args.output}")
    return 0
