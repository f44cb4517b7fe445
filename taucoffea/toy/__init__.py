"""Toy TauTuples: realistic stand-ins for the CMS tuples, with a known Bayes-optimal answer.

``generate_toy`` writes the sample (``taucoffea toy``), ``generate_taus`` returns one dataset
file in memory; ``TOY_DATASETS`` describes the datasets and ``DataMCShift`` how the μτ
control-region data differs from MC. See ``docs/toy.md``.
"""

from __future__ import annotations

from taucoffea.toy.datasets import CLASS_NAMES, DEFAULT_SHIFT, TOY_DATASETS, DataMCShift
from taucoffea.toy.generator import TOY_VERSION, generate_taus, generate_toy

__all__ = [
    "CLASS_NAMES",
    "DEFAULT_SHIFT",
    "TOY_DATASETS",
    "TOY_VERSION",
    "DataMCShift",
    "generate_taus",
    "generate_toy",
]
