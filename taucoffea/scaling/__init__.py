"""Feature scaling: the features config and its validation (``config``).

The statistics live in :mod:`taucoffea.algorithms.scaling`, the coffea processor in
:mod:`taucoffea.processors.scaling`, the stage driver (compute, merge, outputs) in
:mod:`taucoffea.stages.scaling`. See ``docs/scaling.md``.
"""

from taucoffea.scaling.config import FeatureConfig, FeatureSpec, TypeCones, load_feature_config

__all__ = ["FeatureConfig", "FeatureSpec", "TypeCones", "load_feature_config"]
