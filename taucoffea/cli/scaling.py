"""``taucoffea scaling compute|merge``: feature-scaling parameters (feature_scaling.py family)."""

from __future__ import annotations

import argparse

from taucoffea.cli.common import add_executor_arguments, executor_from_args

HELP = "feature-scaling parameters (mean/std/limits per feature and cone) and job merges"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="scaling_command", metavar="ACTION", required=True)

    c = sub.add_parser("compute", help="compute parameters over per-tau files in one coffea run")
    c.add_argument("--cfg", required=True, help="features config, e.g. configs/features/deeptau_v2.yaml")
    c.add_argument("--input", nargs="+", help="files, folders or glob patterns (default: Scaling_setup.file_path)")
    c.add_argument("--output", help="output folder (default: Scaling_setup.output_json_folder)")
    c.add_argument("--format", default="auto", choices=("auto", "parquet", "tautuple"), help="input format (default: by suffix)")
    c.add_argument("--log-step", type=int, help="snapshot after every N files (default: Scaling_setup.log_step)")
    c.add_argument("--file-range", help="a:b slice of the naturally sorted files (b = -1: to the end)")
    c.add_argument("--version", help="version in the output names (default: Scaling_setup.version)")
    c.add_argument("--var-types", nargs="+", help="only these variable types (default: all)")
    c.add_argument("--quantiles", choices=("per_file", "total", "none"), help="quantiles per file (default), over all files, or none")
    c.add_argument("--overwrite", action="store_true", help="replace existing outputs of the same version")
    add_executor_arguments(c)
    c.set_defaults(_action=_compute)

    m = sub.add_parser("merge", help="merge outputs of separate compute runs (merge_feature_scaling_jobs)")
    m.add_argument("--input", nargs="+", required=True, help="job output folders or glob patterns")
    m.add_argument("--output", required=True, help="output folder")
    m.add_argument("--step", type=int, help="also write snapshots after every N jobs")
    m.add_argument("--version", help="which version to merge when a folder holds several")
    m.add_argument("--overwrite", action="store_true", help="replace existing outputs of the same version")
    m.set_defaults(_action=_merge)


def _compute(args: argparse.Namespace) -> int:
    from taucoffea.errors import ConfigError
    from taucoffea.scaling.config import load_feature_config
    from taucoffea.stages.scaling import run_scaling

    cfg = load_feature_config(args.cfg)
    output = args.output or cfg.setup.output_json_folder
    if not output:
        raise ConfigError(f"{args.cfg}: give --output or set Scaling_setup.output_json_folder")
    result = run_scaling(
        cfg,
        args.input,
        output,
        fmt=args.format,
        file_range=args.file_range,
        log_step=args.log_step,
        version=args.version,
        var_types=args.var_types,
        quantiles=args.quantiles,
        executor=executor_from_args(args),
        overwrite=args.overwrite,
    )
    print(result.summary())
    print(f"wrote {len(result.outputs)} files to {output}")
    return 0


def _merge(args: argparse.Namespace) -> int:
    from taucoffea.stages.scaling import merge_scaling_jobs

    result = merge_scaling_jobs(args.input, args.output, step=args.step, version=args.version, overwrite=args.overwrite)
    print(result.summary())
    print(f"wrote {len(result.outputs)} files to {args.output}")
    return 0


def run(args: argparse.Namespace) -> int:
    return args._action(args)
