"""The adversarial domain-adaptation inputs (DeepTau v2p5; reference spec §7).

The chain is skim → event drop → pT reweighting → data/MC mix; see ``docs/adversarial.md``.
This package holds what the chain's stages share: the contributions of the mixture
(:mod:`~taucoffea.adversarial.contributions`), reading target histograms
(:mod:`~taucoffea.adversarial.histio`), resolving inputs (:mod:`~taucoffea.adversarial.inputs`)
and the per-chunk parquet parts (:mod:`~taucoffea.adversarial.parts`). The pure algorithms live
in ``taucoffea.algorithms.{event_drop,reweight,mixing}``, the processors and stage drivers in
``taucoffea.processors`` and ``taucoffea.stages``.
"""

from taucoffea.adversarial.contributions import (
    ADVERSARIAL_SELECTION,
    DEFAULT_CONFIG,
    TAU_TYPE_COLUMN,
    AdversarialConfig,
    Contribution,
    load_adversarial_config,
    parse_composition,
)
from taucoffea.adversarial.histio import Hist1D, read_target, write_hist_json, write_th1_file

__all__ = [
    "ADVERSARIAL_SELECTION",
    "DEFAULT_CONFIG",
    "TAU_TYPE_COLUMN",
    "AdversarialConfig",
    "Contribution",
    "Hist1D",
    "load_adversarial_config",
    "parse_composition",
    "read_target",
    "write_hist_json",
    "write_th1_file",
]
