"""``taucoffea run PIPELINE.yaml``: run the stages of a pipeline file in one session."""

from __future__ import annotations

import argparse

from taucoffea.cli.common import add_executor_arguments, executor_from_args

HELP = "run a pipeline YAML (stages in order, one execution session)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pipeline", nargs="?", help="pipeline YAML, e.g. configs/adversarial/toy.yaml")
    parser.add_argument("--workdir", help="folder for the pipeline's data (relative paths in the YAML live here)")
    parser.add_argument("--until", help="stop after this stage")
    parser.add_argument("--resume", action="store_true", help="skip stages that completed before with the same options")
    parser.add_argument("--overwrite", action="store_true", help="let stages replace existing outputs")
    parser.add_argument("--list-stages", action="store_true", help="list the stages a pipeline can use and exit")
    add_executor_arguments(parser)
    # the pipeline file chooses the executor unless one is given on the command line
    parser.set_defaults(executor=None)


def run(args: argparse.Namespace) -> int:
    from taucoffea.errors import ConfigError
    from taucoffea.stages.pipeline import STAGES, run_pipeline

    if args.list_stages:
        for name, spec in sorted(STAGES.items()):
            allowed, required = spec.parameters()
            keys = "any flag of the command" if allowed is None else ", ".join(sorted(allowed))
            print(f"{name:<13} {spec.help}\n{'':<13} keys: {keys} (required: {', '.join(sorted(required)) or '-'})")
        return 0
    if not args.pipeline or not args.workdir:
        raise ConfigError("give a pipeline file and --workdir")
    executor = executor_from_args(args) if args.executor is not None else None
    overrides = {
        "workers": args.workers, "chunksize": args.chunksize, "retries": args.retries,
        "skip_bad_files": args.skip_bad_files, "checkpoint_dir": args.checkpoint_dir,
        "progress": False if args.quiet else None,
    }
    run_pipeline(
        args.pipeline, args.workdir, executor=executor, executor_overrides=overrides,
        overwrite=args.overwrite, until=args.until, resume=args.resume,
    )
    print(f"pipeline done; see {args.workdir}/pipeline_report.json")
    return 0
