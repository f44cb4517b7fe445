"""``taucoffea train``: train a model (light / DeepTau, optionally adversarial) or run a scan."""

from __future__ import annotations

import argparse

from taucoffea.cli.common import add_executor_arguments, executor_from_args

HELP = "train the tau classifier (Keras 3): light or DeepTau model, adversarial option, scans"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value",
                        help="config overrides, values parsed as YAML (e.g. training.epochs=3 data.batch_size=500)")
    parser.add_argument("--config", help="training YAML (default: built-in defaults = configs/training/light.yaml)")
    parser.add_argument("--run-dir", help="run directory (default: runs/<model>_<timestamp>); with --scan: the scan folder")
    parser.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last epoch checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    parser.add_argument("--adversarial", action="store_true", help="enable adversarial training (adversarial.enabled=true)")
    parser.add_argument("--scan", metavar="FILE", help="hyper-parameter scan: one line of overrides per training")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), help="Keras fit verbosity (default: 1 on a terminal, else 2)")
    add_executor_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from taucoffea.errors import ConfigError
    from taucoffea.ml.config import load_config, read_scan_file

    overrides = list(args.overrides) + (["adversarial.enabled=true"] if args.adversarial else [])
    if args.resume:
        if not args.run_dir:
            raise ConfigError("--resume needs --run-dir (the run to continue)")
        if args.config:
            raise ConfigError("--resume uses the run's stored config.yaml; give changes as overrides, not --config")
        from taucoffea.ml.trainer import train

        result = train({}, args.run_dir, resume=True, overrides=overrides, verbose=args.verbose)
        _report(result)
        return 0
    config = load_config(args.config, overrides)
    if args.scan:
        from taucoffea.ml.trainer import default_run_dir, format_scan, scan

        lines = read_scan_file(args.scan)
        base = args.run_dir or str(default_run_dir(config)) + "_scan"
        results = scan(config, lines, base, executor=executor_from_args(args), overwrite=args.overwrite)
        print(format_scan(results))
        print(f"scan results: {base}/scan_results.csv")
        return 0 if all(r.get("status") == "ok" for r in results) else 1
    from taucoffea.ml.trainer import train

    result = train(config, args.run_dir, overwrite=args.overwrite, verbose=args.verbose)
    _report(result)
    return 0


def _report(result) -> None:  # noqa: ANN001
    final = ", ".join(f"{k}={v:.4g}" for k, v in sorted(result.final.items()) if k.endswith(("loss", "accuracy")))
    print(f"run directory: {result.run_dir}")
    print(f"model: {result.model_path}")
    if final:
        print(f"final: {final}")
