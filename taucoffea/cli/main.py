"""The ``taucoffea`` command: one subcommand per pipeline step."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from taucoffea import __version__
from taucoffea.errors import TaucoffeaError

# subcommand → module under taucoffea.cli (each has HELP, add_arguments, run)
_COMMANDS: dict[str, str] = {
    "toy": "taucoffea.toy.cli",
    "spectra": "taucoffea.cli.spectra",
    "shuffle-merge": "taucoffea.cli.shuffle_merge",
    "validate": "taucoffea.cli.validate",
    "scaling": "taucoffea.cli.scaling",
    "train": "taucoffea.cli.train",
    "predict": "taucoffea.cli.predict",
    "evaluate": "taucoffea.cli.evaluate",
    "derive-wp": "taucoffea.cli.derive_wp",
    "skim": "taucoffea.cli.skim",
    "event-drop": "taucoffea.cli.event_drop",
    "reweight": "taucoffea.cli.reweight",
    "mix": "taucoffea.cli.mix",
    "run": "taucoffea.cli.run",
    "plot": "taucoffea.cli.plot",
    "demo": "taucoffea.cli.demo",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The full parser, or — with ``command`` — one whose other subcommands are bare stubs.

    Each command module imports what it needs (matplotlib, the toy generator, Keras…); building
    only the chosen one keeps ``taucoffea spectra …`` from paying for all the others at start-up.
    """
    parser = argparse.ArgumentParser(
        prog="taucoffea", description="Tau identification pipeline (TauMLTools workflow) on coffea + Parsl."
    )
    parser.add_argument("--version", action="version", version=f"taucoffea {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in _COMMANDS.items():
        if command is not None and name != command:
            sub.add_parser(name)
            continue
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=getattr(module, "HELP", None), description=getattr(module, "HELP", None))
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # the first token that is not a top-level option names the command
    first = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(first if first in _COMMANDS else None)
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 1
    try:
        return int(args._run(args) or 0)
    except TaucoffeaError as err:
        print(f"taucoffea {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"taucoffea {args.command}: interrupted; finished chunks are kept if --checkpoint-dir was set", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
