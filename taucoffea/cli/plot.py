"""``taucoffea plot KIND``: figures in mplhep CMS style, PDF and PNG.

Each kind names a ``module:function`` taking the parsed arguments, and optionally a
``module:function`` adding its options beyond ``--input``/``--output``; modules are imported
only when the parser is built or the kind runs.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import Any

HELP = "make plots (spectra, roc, wp-eff, adversarial, scaling, …) in CMS style"

_P = "taucoffea.plotting."
# kind → (help, runner, extra-arguments adder or None)
_KINDS: dict[str, tuple[str, str, str | None]] = {
    "spectra": ("spectra of a `taucoffea spectra` output folder", _P + "spectra:cli", None),
    "roc": ("ROC curves from performance.json files", _P + "roc:cli", _P + "roc:add_arguments"),
    "wp-eff": ("WP efficiencies vs pT/eta/phi/DM", _P + "wp_eff:cli", _P + "wp_eff:add_arguments"),
    "adversarial": (
        "Djet data vs stacked MC, y_adv, KS and chi2/ndf",
        _P + "adversarial:cli",
        _P + "adversarial:add_arguments",
    ),
    "adversarial-inputs": (
        "stacked MC vs data tau pT of the adversarial mixture, before/after weights",
        _P + "adversarial_inputs:cli",
        None,
    ),
    "scaling-convergence": (
        "box plots of snapshot-to-snapshot changes of scaling parameters",
        _P + "scaling:scaling_convergence_cli",
        _P + "scaling:add_scaling_convergence_arguments",
    ),
    "quantile-ranges": (
        "clamp range vs quantile ranges of the scaling, suspicious flags",
        _P + "scaling:quantile_ranges_cli",
        _P + "scaling:add_quantile_ranges_arguments",
    ),
}


def _resolve(target: str) -> Callable[..., Any]:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    for name, (help_text, runner, extra) in _KINDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--input", required=True)
        p.add_argument("--output", required=True)
        p.set_defaults(_plot=runner)
        if extra:
            _resolve(extra)(p)


def run(args: argparse.Namespace) -> int:
    return int(_resolve(args._plot)(args) or 0)
