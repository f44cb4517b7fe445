"""``taucoffea event-drop``: EventDrop (spec §7.2) — thin pT spectra down to a target shape."""

from __future__ import annotations

import argparse

from taucoffea.cli.common import add_executor_arguments, executor_from_args

HELP = "drop entries so each dataset's pT spectrum follows a target histogram (EventDrop)"


def _targets(items: list[str]) -> str | dict[str, str]:
    if len(items) == 1 and "=" not in items[0]:
        return items[0]
    out = {}
    for item in items:
        name, sep, spec = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"with several targets each must be DATASET=SPEC, got '{item}'")
        out[name] = spec
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, nargs="+", help="files, .txt lists or folders (e.g. a skim output)")
    parser.add_argument("--output", required=True, help="output folder: <output>/<dataset>/<input stem>.parquet")
    parser.add_argument(
        "--target", required=True, nargs="+",
        help="FILE.root:HISTPATH (e.g. datacard.root:mt_inclusive/EMB), FILE.json[:NAME], or dataset:NAME "
        "(the observed spectrum of an input dataset); several as DATASET=SPEC",
    )
    parser.add_argument("--n-tau", type=int, help="process exactly this many entries per dataset (error if fewer)")
    parser.add_argument("--pt-bins", help="pT bin edges (default: 30,35,...,200,400 as the original)")
    parser.add_argument("--seed", type=int, default=1234567)
    parser.add_argument("--datasets", nargs="+", help="only these input datasets")
    parser.add_argument("--include-columns", nargs="+", help="columns to keep: exact names or ^regex")
    parser.add_argument("--exclude-columns", nargs="+", help="columns to drop: exact names or ^regex")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    add_executor_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from taucoffea.algorithms.event_drop import DEFAULT_PT_EDGES
    from taucoffea.algorithms.rebin import parse_bin_edges
    from taucoffea.stages.event_drop import run_event_drop

    result = run_event_drop(
        args.input, args.output, target=_targets(args.target), n_tau=args.n_tau,
        pt_edges=parse_bin_edges(args.pt_bins, "--pt-bins") if args.pt_bins else DEFAULT_PT_EDGES,
        seed=args.seed, datasets=args.datasets, include_columns=args.include_columns,
        exclude_columns=args.exclude_columns, executor=executor_from_args(args), overwrite=args.overwrite,
    )
    print(result.summary())
    print(f"keep probabilities: {result.keep_file}")
    return 0
