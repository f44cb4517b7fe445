"""Adversarial domain adaptation (reference §7.5) inside a plain ``model.fit``, on any backend.

TauMLTools writes a custom ``train_step`` with two gradient tapes. Here the same update comes
from the graph itself (keras_notes: shown to work on TensorFlow, JAX and PyTorch):

* :class:`GradientScale` is the identity forward and multiplies the gradient flowing back by
  a factor: ``sg(x) + f·(x − sg(x))`` with ``sg = stop_gradient``. Between the shared features
  and the adversarial head it has ``f = −k2`` (gradient reversal); between the shared features
  and the classification head it has ``f = k1``. With loss weights 1 and 1 the shared layers
  receive ``k1·∇L_class − k2·∇L_adv``, the class head ``∇L_class`` and the adversarial head
  ``∇L_adv`` — exactly the reference's update.
* :class:`RoutedOptimizer` owns two optimizers and routes every variable by its path: layers
  whose names start with ``adv`` go to the adversarial optimizer (own learning rate, default
  0.01), the rest to the main one. It also accumulates the mean |gradient| of the shared
  layers, the class head and the adversarial head for the logs.
* :func:`adversarial_batch_weights` turns per-row weights of a concatenated (main + adversarial)
  batch into Keras sample weights whose ``sum_over_batch_size`` reduction equals the
  reference's ``Σ loss·w / n_tau`` and ``Σ BCE·w_adv / n_adv`` for any ratio of the two parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from taucoffea.ml import import_keras

keras = import_keras()
ops = keras.ops

__all__ = [
    "ADV_PREFIX",
    "CLASS_PREFIX",
    "GradientMonitor",
    "GradientScale",
    "RoutedOptimizer",
    "adversarial_batch_weights",
    "variable_group",
]

#: Layer-name prefix of the adversarial head (routed to the adversarial optimizer).
ADV_PREFIX = "adv"
#: Layer-name prefix of the classification head (``final_dense_*``, as in TauMLTools).
CLASS_PREFIX = "final"


def variable_group(path: str, adv_prefix: str = ADV_PREFIX, class_prefix: str = CLASS_PREFIX) -> str:
    """``adv``, ``class`` or ``shared`` for a variable path such as ``final_dense_0/kernel``."""
    top = path.split("/")[-2] if "/" in path else path
    if top.startswith(adv_prefix):
        return "adv"
    if top.startswith(class_prefix):
        return "class"
    return "shared"


@keras.saving.register_keras_serializable(package="taucoffea")
class GradientScale(keras.layers.Layer):
    """Identity forward; gradient × ``factor`` backward (−λ: gradient reversal).

    The factor is a non-trainable weight, so it can be ramped during training
    (``layer.factor.assign(...)``) and is saved with the model.
    """

    def __init__(self, factor: float = -1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.initial_factor = float(factor)

    def build(self, input_shape: Any) -> None:
        self.factor = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(self.initial_factor), trainable=False, name="factor"
        )

    def call(self, x: Any) -> Any:
        frozen = ops.stop_gradient(x)
        return frozen + ops.cast(self.factor, x.dtype) * (x - frozen)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["factor"] = self.initial_factor
        return config


@keras.saving.register_keras_serializable(package="taucoffea")
class RoutedOptimizer(keras.optimizers.Optimizer):
    """Two optimizers in one: ``adv*`` layers → ``adv_optimizer``, everything else → ``main``."""

    def __init__(self, main_optimizer: Any, adv_optimizer: Any, adv_prefix: str = ADV_PREFIX,
                 class_prefix: str = CLASS_PREFIX, name: str = "routed_optimizer", **kwargs: Any) -> None:
        kwargs.pop("learning_rate", None)
        super().__init__(learning_rate=0.0, name=name)
        self.main_optimizer = keras.optimizers.get(main_optimizer)
        self.adv_optimizer = keras.optimizers.get(adv_optimizer)
        self.adv_prefix = adv_prefix
        self.class_prefix = class_prefix

    def _group(self, variable: Any) -> str:
        return variable_group(variable.path, self.adv_prefix, self.class_prefix)

    def build(self, var_list: Sequence[Any]) -> None:
        main = [v for v in var_list if self._group(v) != "adv"]
        adv = [v for v in var_list if self._group(v) == "adv"]
        self.main_optimizer.build(main)
        self.adv_optimizer.build(adv)
        # [Σ shared, Σ class, Σ adv mean |g|, number of steps]; set outside the tracker
        stats = self.add_variable(shape=(4,), dtype="float32", initializer="zeros", name="grad_stats")
        object.__setattr__(self, "_grad_stats", stats)
        super().build(var_list)

    @property
    def grad_stats(self) -> Any:
        return self._grad_stats

    @property
    def variables(self) -> list[Any]:
        return self._variables[:] + self.main_optimizer.variables + self.adv_optimizer.variables

    @property
    def iterations(self) -> Any:
        return self.main_optimizer.iterations

    @property
    def learning_rate(self) -> Any:
        return self.main_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        self.main_optimizer.learning_rate = value

    def apply(self, grads: Sequence[Any], trainable_variables: Sequence[Any] | None = None) -> None:
        if not self.built:
            self.build(trainable_variables)
            self.built = True
        variables = list(trainable_variables) if trainable_variables is not None else list(self._trainable_variables)
        routed: dict[str, tuple[list[Any], list[Any]]] = {"main": ([], []), "adv": ([], [])}
        magnitude: dict[str, list[Any]] = {"shared": [], "class": [], "adv": []}
        for g, v in zip(grads, variables):
            if g is None:
                continue
            group = self._group(v)
            routed["adv" if group == "adv" else "main"][0].append(g)
            routed["adv" if group == "adv" else "main"][1].append(v)
            magnitude[group].append(ops.mean(ops.abs(ops.cast(g, "float32"))))
        means = [ops.mean(ops.stack(magnitude[k])) if magnitude[k] else ops.zeros(()) for k in ("shared", "class", "adv")]
        self._grad_stats.assign(self._grad_stats + ops.stack([*means, ops.ones(())]))
        if routed["main"][0]:
            self.main_optimizer.apply(*routed["main"])
        if routed["adv"][0]:
            self.adv_optimizer.apply(*routed["adv"])

    def apply_gradients(self, grads_and_vars: Sequence[tuple[Any, Any]]) -> Any:
        grads, variables = zip(*grads_and_vars)
        self.apply(grads, variables)
        return self.iterations

    def finalize_variable_values(self, var_list: Sequence[Any]) -> None:
        self.main_optimizer.finalize_variable_values([v for v in var_list if self._group(v) != "adv"])
        self.adv_optimizer.finalize_variable_values([v for v in var_list if self._group(v) == "adv"])

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "main_optimizer": keras.saving.serialize_keras_object(self.main_optimizer),
            "adv_optimizer": keras.saving.serialize_keras_object(self.adv_optimizer),
            "adv_prefix": self.adv_prefix,
            "class_prefix": self.class_prefix,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> RoutedOptimizer:
        config = dict(config)
        main = keras.saving.deserialize_keras_object(config.pop("main_optimizer"), custom_objects=custom_objects)
        adv = keras.saving.deserialize_keras_object(config.pop("adv_optimizer"), custom_objects=custom_objects)
        return cls(main, adv, **config)


class GradientMonitor(keras.callbacks.Callback):
    """Adds ``grad_shared``, ``grad_class``, ``grad_adv`` (epoch means of mean |g|) to the logs.

    Must come before the CSV / TensorBoard callbacks so they see the added values.
    """

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        opt = self.model.optimizer
        if isinstance(opt, RoutedOptimizer) and opt.built:
            opt.grad_stats.assign(np.zeros(4, dtype=np.float32))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        opt = self.model.optimizer
        if logs is None or not isinstance(opt, RoutedOptimizer) or not opt.built:
            return
        stats = np.asarray(keras.ops.convert_to_numpy(opt.grad_stats), dtype=np.float64)
        steps = max(stats[3], 1.0)
        logs.update({"grad_shared": stats[0] / steps, "grad_class": stats[1] / steps, "grad_adv": stats[2] / steps})


def adversarial_batch_weights(w_main: np.ndarray, w_adv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample weights for a batch of ``n_tau`` main rows followed by ``n_adv`` adversarial rows.

    Returns (class-output weights, adv-output weights) of length ``n_tau + n_adv``: zero on the
    other part, and scaled by ``N/n_tau`` resp. ``N/n_adv`` so that Keras' division by the full
    batch size ``N`` gives the reference's per-part normalisation.
    """
    n_tau, n_adv = len(w_main), len(w_adv)
    n = n_tau + n_adv
    cls = np.zeros(n, dtype=np.float32)
    adv = np.zeros(n, dtype=np.float32)
    if n_tau:
        cls[:n_tau] = np.asarray(w_main, dtype=np.float64) * n / n_tau
    if n_adv:
        adv[n_tau:] = np.asarray(w_adv, dtype=np.float64) * n / n_adv
    return cls, adv
