"""``taucoffea shuffle-merge``: ShuffleMergeSpectral as map-reduce on the execution layer."""

from __future__ import annotations

import argparse

from taucoffea.cli.common import add_executor_arguments, executor_from_args

HELP = "build training files with flat (pT, |eta|) spectra per tau type (ShuffleMergeSpectral)"


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got '{text}'")


def _names(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cfg", required=True, help="data groups: original .cfg or YAML (configs/datagroups/)")
    parser.add_argument("--input", required=True, help="folder of <dataset>/<file>.root TauTuples")
    parser.add_argument("--input-spec", required=True, help="spectra folder from `taucoffea spectra`")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--pt-bins", required=True, help="e.g. '20, 30, 40, 50, 60, 70, 80, 90, 100, 1000'")
    parser.add_argument("--eta-bins", required=True, help="e.g. '0., 0.6, 1.2, 1.8, 2.4'")
    parser.add_argument("--tau-ratio", required=True, help="e.g. 'jet:1, e:1, mu:1, tau:1' (-1: take all)")
    parser.add_argument("--seed", type=int, default=1234567)
    parser.add_argument("--n-files", type=int, default=1, help="number of output files K (buckets)")
    parser.add_argument("--max-entries", type=int, help="keep a uniform random subset of this many taus")
    parser.add_argument("--parity", type=int, default=3, choices=(0, 1, 3), help="0 even evt, 1 odd, 3 all")
    parser.add_argument("--lastbin-takeall", type=_bool, default=False, nargs="?", const=True)
    parser.add_argument("--lastbin-disbalance", type=float, default=1.0)
    parser.add_argument("--enable-emptybin", type=_bool, default=False, nargs="?", const=True)
    parser.add_argument("--include-columns", help="comma list; exact names or ^regex")
    parser.add_argument("--disabled-branches", "--exclude-columns", dest="exclude_columns", help="comma list; exact names or ^regex")
    parser.add_argument("--overwrite", action="store_true")
    add_executor_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from taucoffea.stages.shuffle_merge import run_shuffle_merge

    result = run_shuffle_merge(
        args.cfg,
        args.input,
        args.input_spec,
        args.output,
        pt_bins=args.pt_bins,
        eta_bins=args.eta_bins,
        tau_ratio=args.tau_ratio,
        seed=args.seed,
        n_files=args.n_files,
        max_entries=args.max_entries,
        parity=args.parity,
        lastbin_takeall=args.lastbin_takeall,
        lastbin_disbalance=args.lastbin_disbalance,
        enable_emptybin=args.enable_emptybin,
        include_columns=_names(args.include_columns),
        exclude_columns=_names(args.exclude_columns),
        executor=executor_from_args(args),
        overwrite=args.overwrite,
    )
    print(result.summary())
    return 0
