"""``taucoffea validate``: chunk-by-chunk tests of the shuffle & merge output (spec §4)."""

from __future__ import annotations

import argparse

HELP = "check that shuffle & merge output is a uniform mixture (chunk tests, closure report)"


def _formats(text: str) -> list[str]:
    return [f.strip() for f in text.split(",") if f.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input", required=True, nargs="+",
        help="shuffle & merge output folder(s) and/or ShuffleMergeSpectral_<k>.parquet files",
    )
    parser.add_argument("--output", required=True, help="folder for pvalues.json, closure.json and plots")
    parser.add_argument("--nsplit", type=int, default=100, help="number of chunks of consecutive rows (default 100)")
    parser.add_argument("--test", default="both", choices=("chi2", "ks", "both"),
                        help="test of the pT / eta spectra (compositions always use chi2); default both")
    parser.add_argument("--reference", default="chunk0", choices=("chunk0", "rest"),
                        help="compare each chunk with chunk 0 (the original; default) or with the rest of the "
                        "output (independent p-values)")
    parser.add_argument("--pvthreshold", type=float, default=0.05, help="warn below this p-value (default 0.05)")
    parser.add_argument("--id-json", "--id_json", dest="id_json",
                        help="dataset_hash.json (default: next to the input files)")
    parser.add_argument("--group-id-json", "--group_id_json", dest="group_id_json",
                        help="datagroup_hash.json (default: next to the input files)")
    parser.add_argument("--use-dataset-id", "--use_dataset_id", dest="use_dataset_id", action="store_true",
                        help="also test the dataset composition (overall and within each group)")
    parser.add_argument("--expected-json", help="expected counts for the closure (default: acceptance/expected.json "
                        "next to the input files)")
    parser.add_argument("--formats", type=_formats, default=["pdf", "png"],
                        help="plot formats (default pdf,png; '' for none)")
    parser.add_argument("--fail-on-warning", action="store_true",
                        help="exit with status 1 when a test or the closure fails")
    parser.add_argument("--overwrite", action="store_true")


def run(args: argparse.Namespace) -> int:
    from taucoffea.stages.validate import run_validate

    result = run_validate(
        args.input,
        args.output,
        nsplit=args.nsplit,
        test=args.test,
        reference=args.reference,
        pvthreshold=args.pvthreshold,
        id_json=args.id_json,
        group_id_json=args.group_id_json,
        use_dataset_id=args.use_dataset_id,
        expected_json=args.expected_json,
        formats=args.formats,
        overwrite=args.overwrite,
    )
    return 1 if args.fail_on_warning and not result.ok else 0
