"""ml layer of taucoffea: DeepTau inputs, Keras 3 models, losses, adversarial training, trainer.

Importing this package only sets environment defaults; Keras itself is imported lazily by the
modules that need it, so ``taucoffea --help`` and the non-ML stages stay fast.

* ``KERAS_BACKEND`` defaults to ``tensorflow`` (tensorflow-cpu was the fastest backend on the
  2-core reference machine, see docs/training.md) but a user's choice (``jax``, ``torch``) is
  respected: all model code uses ``keras.ops`` only.
* ``TF_CPP_MIN_LOG_LEVEL`` defaults to 2 to silence TensorFlow's start-up chatter.
"""

from __future__ import annotations

import os
import warnings

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__all__ = ["import_keras"]


def import_keras():  # noqa: ANN201 - returns the keras module
    """Import Keras with the numpy-2 ``__array__ copy`` DeprecationWarning filtered.

    Keras under numpy 2 warns on every save / predict / get_weights; the warning is about a
    future numpy change, not about our code, and would otherwise drown real warnings.
    """
    warnings.filterwarnings("ignore", message=r".*__array__.*copy.*", category=DeprecationWarning)
    import keras

    return keras
