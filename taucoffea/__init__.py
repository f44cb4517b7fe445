"""taucoffea: the TauMLTools tau-identification pipeline as coffea processors.

The public API is deliberately small; see ``docs/architecture.md`` for the layers.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
