"""The project's own exception types.

Every user-facing failure (bad config, bad selection, unreadable input, refusing to overwrite)
raises one of these, so callers and the CLI can tell a user mistake from a bug.
"""

from __future__ import annotations


class TaucoffeaError(Exception):
    """Base class of every error taucoffea raises on purpose."""


class ConfigError(TaucoffeaError, ValueError):
    """A configuration file or option is invalid (unknown key, wrong type, out of range)."""


class SelectionError(TaucoffeaError, ValueError):
    """A selection/expression string was rejected by the safe compiler."""


class InputError(TaucoffeaError):
    """An input file is missing, corrupt, empty, or lacks a needed branch."""


class OutputExistsError(TaucoffeaError, FileExistsError):
    """An output already exists and ``overwrite`` was not requested."""
