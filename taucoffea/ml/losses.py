"""TauMLTools' classification losses (reference §6.6), in ``keras.ops`` for every backend.

Class order e=0, μ=1, τ=2, jet=3; ε = 1e-7. The four scale factors are normalised to sum to 4
(``normalise_sfs``: the default [1, 2.5, 5, 1.5] becomes [0.4, 1.0, 2.0, 0.6]). Every function
returns one value per sample; Keras applies the sample weights and divides by the batch size,
which is the reference's ``Σ loss·w / n_tau``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from taucoffea.errors import ConfigError
from taucoffea.ml import import_keras

keras = import_keras()
ops = keras.ops

__all__ = [
    "DEFAULT_SFS",
    "EPSILON",
    "LOSS_NAMES",
    "TauLoss",
    "TauLossMetric",
    "make_metrics",
    "normalise_sfs",
    "tau_loss_values",
]

EPSILON = 1e-7
E, MU, TAU, JET = 0, 1, 2, 3
DEFAULT_SFS: tuple[float, float, float, float] = (1.0, 2.5, 5.0, 1.5)
_F_SCALE = 1.63636
_FCMB_SCALE = 1.17153


def normalise_sfs(sfs: Sequence[float]) -> tuple[float, float, float, float]:
    """Rescale (e, μ, τ, jet) factors so that they sum to 4 (``TauLosses.SetSFs``)."""
    values = [float(v) for v in sfs]
    if len(values) != 4 or any(v < 0 for v in values) or sum(values) <= 0:
        raise ConfigError(f"loss scale factors must be 4 non-negative numbers (e, mu, tau, jet) with a positive sum, got {list(sfs)}")
    total = sum(values)
    return tuple(4.0 * v / total for v in values)  # type: ignore[return-value]


def _clip(p: Any) -> Any:
    return ops.clip(p, EPSILON, 1.0 - EPSILON)


def _l_base(y: Any, p: Any, genuine: int, fake: int) -> Any:
    q = _clip(p[:, genuine] / (p[:, genuine] + p[:, fake] + EPSILON))
    return -(y[:, genuine] * ops.log(q) + y[:, fake] * ops.log(1.0 - q))


def _h_base(y: Any, p: Any, i: int, inverse: bool = False) -> Any:
    if inverse:
        return -(1.0 - y[:, i]) * ops.log(_clip(1.0 - p[:, i]))
    return -y[:, i] * ops.log(_clip(p[:, i]))


def _decay(p: Any) -> Any:
    return (ops.tanh(70.0 * (p[:, TAU] - 0.1)) + 1.0) / 2.0


def _f_base(y: Any, p: Any, i: int, gamma: float, decay: Any = 1.0, inverse: bool = False) -> Any:
    if gamma <= 0:
        raise ConfigError(f"focal loss gamma must be > 0, got {gamma}")
    pi = _clip(p[:, i])
    if inverse:
        return -decay * (1.0 - y[:, i]) * ops.power(pi, gamma) * ops.log(1.0 - pi)
    return -decay * y[:, i] * ops.power(1.0 - pi, gamma) * ops.log(pi)


def _definitions() -> dict[str, Callable[[Any, Any, tuple[float, ...]], Any]]:
    d: dict[str, Callable[[Any, Any, tuple[float, ...]], Any]] = {
        "Le": lambda y, p, s: _l_base(y, p, TAU, E),
        "Lmu": lambda y, p, s: _l_base(y, p, TAU, MU),
        "Ljet": lambda y, p, s: _l_base(y, p, TAU, JET),
        "He": lambda y, p, s: _h_base(y, p, E),
        "Hmu": lambda y, p, s: _h_base(y, p, MU),
        "Htau": lambda y, p, s: _h_base(y, p, TAU),
        "Hjet": lambda y, p, s: _h_base(y, p, JET),
        "Hbin": lambda y, p, s: _h_base(y, p, TAU, inverse=True),
        "Fe": lambda y, p, s: _F_SCALE * _f_base(y, p, E, 2.0, _decay(p)),
        "Fmu": lambda y, p, s: _F_SCALE * _f_base(y, p, MU, 2.0, _decay(p)),
        "Fjet": lambda y, p, s: _F_SCALE * _f_base(y, p, JET, 2.0, _decay(p)),
        "Fcmb": lambda y, p, s: _FCMB_SCALE * _f_base(y, p, TAU, 0.5, 1.0, inverse=True),
    }
    for name, idx in (("e", E), ("mu", MU), ("jet", JET)):
        d[f"Hcat_{name}"] = (lambda i: lambda y, p, s: _decay(p) * _h_base(y, p, i))(idx)
        d[f"Hcat_{name}Inv"] = (lambda i: lambda y, p, s: (1.0 - _decay(p)) * _h_base(y, p, i))(idx)
    d["tau_crossentropy"] = lambda y, p, s: s[E] * d["Le"](y, p, s) + s[MU] * d["Lmu"](y, p, s) + s[JET] * d["Ljet"](y, p, s)
    d["tau_crossentropy_v2"] = lambda y, p, s: (
        s[TAU] * d["Htau"](y, p, s)
        + (s[E] + s[MU] + s[JET]) * d["Fcmb"](y, p, s)
        + 5.0 * (s[E] * d["Fe"](y, p, s) + s[MU] * d["Fmu"](y, p, s) + s[JET] * d["Fjet"](y, p, s))
    )
    return d


_DEFS = _definitions()
LOSS_NAMES: tuple[str, ...] = tuple(_DEFS)


def tau_loss_values(name: str, y_true: Any, y_pred: Any, sfs: Sequence[float] = DEFAULT_SFS) -> Any:
    """Per-sample values of the named TauMLTools loss (``sfs`` un-normalised, as configured)."""
    if name not in _DEFS:
        raise ConfigError(f"unknown loss '{name}'; allowed: {', '.join(LOSS_NAMES)}")
    y = ops.cast(y_true, "float32")
    p = ops.cast(y_pred, "float32")
    return _DEFS[name](y, p, normalise_sfs(sfs))


@keras.saving.register_keras_serializable(package="taucoffea")
class TauLoss(keras.losses.Loss):
    """A TauMLTools loss as a serialisable Keras loss (default ``tau_crossentropy_v2``)."""

    def __init__(self, kind: str = "tau_crossentropy_v2", sfs: Sequence[float] = DEFAULT_SFS, name: str | None = None, **kwargs: Any) -> None:
        if kind not in _DEFS:
            raise ConfigError(f"unknown loss '{kind}'; allowed: {', '.join(LOSS_NAMES)}")
        normalise_sfs(sfs)
        super().__init__(name=name or kind, **kwargs)
        self.kind = kind
        self.sfs = tuple(float(v) for v in sfs)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return tau_loss_values(self.kind, y_true, y_pred, self.sfs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"kind": self.kind, "sfs": list(self.sfs)})
        return config


@keras.saving.register_keras_serializable(package="taucoffea")
class TauLossMetric(keras.metrics.Mean):
    """Weighted mean of a TauMLTools loss, for monitoring (the reference's metric list)."""

    def __init__(self, kind: str = "tau_crossentropy_v2", sfs: Sequence[float] = DEFAULT_SFS, name: str | None = None, **kwargs: Any) -> None:
        if kind not in _DEFS:
            raise ConfigError(f"unknown metric '{kind}'; allowed: accuracy, {', '.join(LOSS_NAMES)}")
        super().__init__(name=name or kind, **kwargs)
        self.kind = kind
        self.sfs = tuple(float(v) for v in sfs)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        return super().update_state(tau_loss_values(self.kind, y_true, y_pred, self.sfs), sample_weight=sample_weight)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"kind": self.kind, "sfs": list(self.sfs)})
        return config


def make_metrics(names: Sequence[str], sfs: Sequence[float] = DEFAULT_SFS) -> list[Any]:
    """Keras metric objects for config names (``accuracy`` or any of :data:`LOSS_NAMES`)."""
    out: list[Any] = []
    for name in names:
        if name == "accuracy":
            out.append(keras.metrics.CategoricalAccuracy(name="accuracy"))
        elif name in _DEFS:
            out.append(TauLossMetric(name, sfs))
        else:
            raise ConfigError(f"unknown metric '{name}'; allowed: accuracy, {', '.join(LOSS_NAMES)}")
    return out
