"""``taucoffea plot KIND``: figures in mplhep CMS style, PDF and PNG."""

from __future__ import annotations

import argparse

HELP = "make plots (spectra, …) in CMS style"


def _spectra(args: argparse.Namespace) -> int:
    from taucoffea.plotting.spectra import plot_spectra_dir

    written = plot_spectra_dir(args.input, args.output)
    for p in written:
        print(p)
    return 0


_KINDS = {
    "spectra": ("spectra of a `taucoffea spectra` output folder", _spectra),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    for name, (help_text, func) in _KINDS.items():
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--input", required=True)
        p.add_argument("--output", required=True)
        p.set_defaults(_plot=func)


def run(args: argparse.Namespace) -> int:
    return args._plot(args)
