"""A correctionlib correction that travels to workers as its JSON text.

Compiled correctionlib objects do not pickle; processors shipped to Parsl/HTCondor workers hold
the text and compile it once per process, on first use.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["LazyCorrection"]


class LazyCorrection:
    """``correction.evaluate(*inputs)`` as float64, compiled from ``json_text`` on first call."""

    def __init__(self, json_text: str, name: str) -> None:
        self.json_text, self.name = json_text, name
        self._compiled: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"json_text": self.json_text, "name": self.name, "_compiled": None}

    def evaluate(self, *inputs: Any) -> np.ndarray:
        if self._compiled is None:
            import correctionlib

            self._compiled = correctionlib.CorrectionSet.from_string(self.json_text)[self.name]
        return np.asarray(self._compiled.evaluate(*inputs), dtype=np.float64)
