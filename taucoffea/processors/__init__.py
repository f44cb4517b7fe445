"""coffea processors: thin ``ProcessorABC`` classes over the algorithms layer.

Each works inside any ``coffea.processor.Runner`` built with ``schema=BaseSchema``.
"""

from taucoffea.processors.event_drop import EventDropProcessor, PtHistogramProcessor
from taucoffea.processors.mix import MixProcessor
from taucoffea.processors.predict import PredictProcessor
from taucoffea.processors.sampling import SamplingProcessor
from taucoffea.processors.scaling import ScalingProcessor
from taucoffea.processors.skim import SkimProcessor
from taucoffea.processors.spectra import SpectrumProcessor

__all__ = [
    "EventDropProcessor",
    "MixProcessor",
    "PredictProcessor",
    "PtHistogramProcessor",
    "SamplingProcessor",
    "ScalingProcessor",
    "SkimProcessor",
    "SpectrumProcessor",
]
