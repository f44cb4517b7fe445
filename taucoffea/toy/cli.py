"""``taucoffea toy``: write the toy TauTuples (the main CLI wires these two functions in)."""

from __future__ import annotations

import argparse

from taucoffea.toy.datasets import SIZES, TOY_DATASETS

__all__ = ["HELP", "add_arguments", "run"]

HELP = "write realistic toy TauTuples (known truth densities, mu-tau control region)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``taucoffea toy``."""
    parser.add_argument("--output", "-o", required=True,
                        help="output directory; files go to <output>/<dataset>/eventTuple_<i>.root")
    parser.add_argument("--seed", type=int, default=1234, help="master seed (default 1234)")
    parser.add_argument("--size", default="small",
                        help=f"{'|'.join(SIZES)} or a total number of taus (default small: "
                             f"{SIZES['small']:,} taus)")
    parser.add_argument("--datasets", default=None,
                        help="comma-separated subset of: " + ", ".join(TOY_DATASETS))
    parser.add_argument("--compression", default="lz4", choices=("lz4", "zlib", "none"),
                        help="ROOT basket compression (default lz4: fastest)")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a non-empty output directory, replacing toy files")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")


def run(args: argparse.Namespace) -> int:
    """Generate the toy sample; prints a per-dataset summary unless ``--quiet``."""
    from taucoffea.toy.generator import generate_toy

    manifest = generate_toy(args.output, seed=args.seed, size=args.size,
                            datasets=args.datasets, overwrite=args.overwrite,
                            progress=not args.quiet, compression=args.compression)
    if not args.quiet:
        for name, entry in manifest["datasets"].items():
            types = ", ".join(f"{k}={v}" for k, v in entry["per_type"].items())
            print(f"{name:26s} {entry['entries']:>9,d} taus in {len(entry['files'])} file(s) "
                  f"({types})")
        print(f"manifest: {args.output}/toy_manifest.json")
    return 0
