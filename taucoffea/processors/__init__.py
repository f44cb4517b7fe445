"""coffea processors: thin ``ProcessorABC`` classes over the algorithms layer.

Each works inside any ``coffea.processor.Runner`` built with ``schema=BaseSchema``.
"""

from taucoffea.processors.spectra import SpectrumProcessor

__all__ = ["SpectrumProcessor"]
