"""Options shared by every stage command (executor, chunking, overwrite)."""

from __future__ import annotations

import argparse

from taucoffea.execution.config import ExecutorConfig, load_executor_config

__all__ = ["add_executor_arguments", "executor_from_args"]


def add_executor_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("execution")
    g.add_argument(
        "--executor",
        default="parsl",
        help="built-in executor (iterative, futures, parsl, condor, dask) or a YAML file "
        "such as configs/executors/condor.yaml (default: parsl, local workers)",
    )
    g.add_argument("--workers", type=int, help="number of local workers")
    g.add_argument("--chunksize", type=int, help="entries per chunk")
    g.add_argument("--retries", type=int, help="retries per chunk (Parsl: lost workers too)")
    g.add_argument("--skip-bad-files", action="store_true", default=None, help="skip unreadable/invalid files and list them")
    g.add_argument("--checkpoint-dir", help="resume from / save chunk outputs in this directory")
    g.add_argument("--quiet", action="store_true", help="no progress bars")


def executor_from_args(args: argparse.Namespace) -> ExecutorConfig:
    cfg = load_executor_config(args.executor)
    return cfg.replace(
        workers=args.workers,
        chunksize=args.chunksize,
        retries=args.retries,
        skip_bad_files=args.skip_bad_files,
        checkpoint_dir=args.checkpoint_dir,
        progress=False if args.quiet else None,
    )
