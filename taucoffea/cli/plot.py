"""``taucoffea plot KIND``: figures in mplhep CMS style, PDF and PNG.

Each kind lives in a plotting module with ``cli(args)`` and, where it has options beyond
``--input``/``--output``, ``add_arguments(parser)``; modules are imported only when used.
"""

from __future__ import annotations

import argparse
import importlib

HELP = "make plots (spectra, roc, wp-eff, adversarial, …) in CMS style"

# kind → (help, module)
_KINDS: dict[str, tuple[str, str]] = {
    "spectra": ("spectra of a `taucoffea spectra` output folder", "taucoffea.plotting.spectra"),
    "roc": ("ROC curves from performance.json files", "taucoffea.plotting.roc"),
    "wp-eff": ("WP efficiencies vs pT/eta/phi/DM", "taucoffea.plotting.wp_eff"),
    "adversarial": ("Djet data vs stacked MC, y_adv, KS and chi2/ndf", "taucoffea.plotting.adversarial"),
    "adversarial-inputs": (
        "stacked MC vs data tau pT of the adversarial mixture, before/after weights",
        "taucoffea.plotting.adversarial_inputs",
    ),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    for name, (help_text, module_name) in _KINDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--input", required=True)
        p.add_argument("--output", required=True)
        p.set_defaults(_plot_module=module_name)
        module = importlib.import_module(module_name)
        if hasattr(module, "add_arguments"):
            module.add_arguments(p)


def run(args: argparse.Namespace) -> int:
    module = importlib.import_module(args._plot_module)
    return int(module.cli(args) or 0)
