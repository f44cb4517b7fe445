"""Models: the DeepTau grid CNN (reference §6.5) and a light default for CPUs.

Both take the named inputs of :class:`~taucoffea.ml.inputs.InputBuilder` and return a dict
``{"main_output": softmax(4)}``, plus ``"adv_output"`` (sigmoid) when an adversarial head is
attached (§7.5). Layer names follow TauMLTools (``tau_dense_k``, ``inner_egamma_conv_k``,
``final_dense_k`` …) so weights can be copied by layer name from a pretrained run; the
adversarial head's layers all start with ``adv`` (routing by prefix, see adversarial.py).

Layer widths accept the reference's formula strings (``"2*n*(1+drop)"`` with ``n`` = number of
inputs and ``drop`` = dropout rate), compiled by the project's safe expression compiler —
never ``eval``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from taucoffea.errors import ConfigError
from taucoffea.ml import import_keras
from taucoffea.ml.adversarial import GradientScale

keras = import_keras()
layers = keras.layers
ops = keras.ops

__all__ = [
    "ADVERSARIAL_DEFAULTS",
    "DEEPTAU_DEFAULTS",
    "LIGHT_DEFAULTS",
    "MaskedSetPool",
    "build_model",
    "deeptau",
    "layer_sizes",
    "light",
    "n_units",
]

_NET_KEYS = ("activation", "dropout_rate", "reduction_rate", "first_layer_width", "last_layer_width",
             "min_n_layers", "max_n_layers")

DEEPTAU_DEFAULTS: dict[str, Any] = {
    "tau_net": {"activation": "PReLU", "dropout_rate": 0.2, "reduction_rate": 1.4,
                "first_layer_width": "2*n*(1+drop)", "last_layer_width": "n*(1+drop)"},
    "comp_net": {"activation": "PReLU", "dropout_rate": 0.2, "reduction_rate": 1.6,
                 "first_layer_width": "2*n*(1+drop)", "last_layer_width": "n*(1+drop)"},
    "comp_merge_net": {"activation": "PReLU", "dropout_rate": 0.2, "reduction_rate": 1.6,
                       "first_layer_width": "n", "last_layer_width": 64},
    "conv_2d_net": {"activation": "PReLU", "dropout_rate": 0.2, "reduction_rate": None, "window_size": 3,
                    "pooling": None},
    "dense_net": {"activation": "PReLU", "dropout_rate": 0.2, "reduction_rate": 1, "first_layer_width": 200,
                  "last_layer_width": 200, "min_n_layers": 4},
    "first_layer_reg": None,
}

LIGHT_DEFAULTS: dict[str, Any] = {
    "tau_units": [64, 64],
    "set_units": [64, 64],
    "head_units": [128, 64],
    "activation": "relu",
    "dropout_rate": 0.1,
    "batch_norm": True,
    "max_objects": {"egamma": 16, "muon": 4, "hadrons": 16},
}

ADVERSARIAL_DEFAULTS: dict[str, Any] = {
    "units": None,  # None: the classification head's widths (the reference's dense_net)
    "k1": 1.0,
    "k2": 10.0,
}


# ============================================================================ widths
def n_units(spec: int | float | str, n: int, drop: float) -> int:
    """A layer width: a number, or a formula in ``n`` and ``drop`` (rounded up, as the reference)."""
    if isinstance(spec, bool):
        raise ConfigError(f"layer width must be a number or a formula string, got {spec!r}")
    if isinstance(spec, (int, float)):
        value = float(spec)
    elif isinstance(spec, str):
        from taucoffea.columns.selection import compile_expression

        expr = compile_expression(spec, columns=("n", "drop"))
        value = float(np.asarray(expr({"n": np.array([float(n)]), "drop": np.array([float(drop)])})).reshape(-1)[0])
    else:
        raise ConfigError(f"layer width must be a number or a formula string, got {spec!r}")
    if not math.isfinite(value) or value < 1:
        raise ConfigError(f"layer width {spec!r} gives {value} for n={n}, drop={drop}; must be >= 1")
    return int(math.ceil(value - 1e-9))


def layer_sizes(first: int, last: int, reduction_rate: float, min_n_layers: int | None = None,
                max_n_layers: int | None = None) -> list[int]:
    """The reference's ``get_layer_size_sequence``: shrink from ``first`` to ``last``."""
    if reduction_rate is None or reduction_rate <= 0:
        raise ConfigError(f"reduction_rate must be > 0, got {reduction_rate!r}")
    sizes: list[int] = []
    current, n = int(first), 1
    while True:
        sizes.append(current)
        n += 1
        if current > last:
            if max_n_layers is not None and n == max_n_layers:
                current = int(last)
            else:
                current = max(int(last), int(current / reduction_rate))
        elif min_n_layers is not None and n <= min_n_layers:
            continue
        else:
            return sizes
        if len(sizes) > 1000:
            raise ConfigError(f"layer size sequence from {first} to {last} does not converge (reduction_rate {reduction_rate})")


def _net_sizes(net: Mapping[str, Any], n_inputs: int) -> list[int]:
    drop = float(net.get("dropout_rate") or 0.0)
    first = n_units(net["first_layer_width"], n_inputs, drop)
    last = n_units(net["last_layer_width"], n_inputs, drop)
    return layer_sizes(first, last, float(net.get("reduction_rate") or 1.0), net.get("min_n_layers"), net.get("max_n_layers"))


# ============================================================================ blocks
class _Setup:
    """The reference's ``NetSetup``: activation → initialiser, BatchNorm, dropout kind."""

    def __init__(self, activation: str, dropout_rate: float, batch_norm: bool | None = None) -> None:
        self.activation = activation
        self.dropout_rate = float(dropout_rate or 0.0)
        key = activation.lower()
        if key in ("relu", "prelu", "tanh"):
            self.init, self.dropout, self.batch_norm = "he_uniform", layers.Dropout, True
        elif key == "selu":
            self.init, self.dropout, self.batch_norm = "lecun_normal", layers.AlphaDropout, False
        else:
            raise ConfigError(f"activation '{activation}' is not supported; allowed: relu, PReLU, tanh, selu")
        if batch_norm is not None:
            self.batch_norm = bool(batch_norm) and self.batch_norm

    def finish(self, x: Any, name: str, spatial: bool) -> Any:
        """BatchNorm → activation → dropout after a dense/conv layer."""
        if self.batch_norm:
            x = layers.BatchNormalization(name=f"{name}_norm")(x)
        if self.activation.lower() == "prelu":
            x = layers.PReLU(shared_axes=[1, 2] if spatial else None, name=f"{name}_activation")(x)
        else:
            x = layers.Activation(self.activation.lower(), name=f"{name}_activation")(x)
        if self.dropout_rate > 0:
            x = self.dropout(self.dropout_rate, name=f"{name}_dropout")(x)
        return x


def _regulariser(spec: str | None) -> Any:
    if not spec:
        return None
    kind, _, factor = str(spec).partition(",")
    try:
        value = float(factor)
    except ValueError:
        raise ConfigError(f"first_layer_reg '{spec}' must look like 'L1, 0.01' or 'L2, 0.01'") from None
    kind = kind.strip().upper()
    if kind == "L1":
        return keras.regularizers.L1(value)
    if kind == "L2":
        return keras.regularizers.L2(value)
    raise ConfigError(f"first_layer_reg '{spec}': kind must be L1 or L2")


def _dense_blocks(x: Any, sizes: Sequence[int], prefix: str, setup: _Setup, first_reg: Any = None) -> Any:
    for k, units in enumerate(sizes):
        name = f"{prefix}_{k}"
        x = layers.Dense(units, kernel_initializer=setup.init, kernel_regularizer=first_reg if k == 0 else None,
                         name=name)(x)
        x = setup.finish(x, name, spatial=False)
    return x


def _conv_blocks(x: Any, sizes: Sequence[int], prefix: str, setup: _Setup, first_reg: Any = None) -> Any:
    for k, filters in enumerate(sizes):
        name = f"{prefix}_{k}"
        x = layers.Conv2D(filters, (1, 1), kernel_initializer=setup.init,
                          kernel_regularizer=first_reg if k == 0 else None, name=name)(x)
        x = setup.finish(x, name, spatial=True)
    return x


def _setup(net: Mapping[str, Any], where: str) -> _Setup:
    unknown = sorted(set(net) - {*_NET_KEYS, "window_size", "pooling"})
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted({*_NET_KEYS, 'window_size', 'pooling'})}")
    return _Setup(str(net.get("activation", "relu")), float(net.get("dropout_rate") or 0.0))


# ============================================================================ heads
def _heads(features: Any, inputs: dict[str, Any], head_sizes: Sequence[int], setup: _Setup,
           adversarial: Mapping[str, Any] | None, name: str) -> Any:
    """Classification head ``final_dense_*`` → softmax, and the optional adversarial head."""
    x = features
    if adversarial is not None:
        x = GradientScale(float(adversarial.get("k1", 1.0)), name="class_grad_scale")(features)
    x = _dense_blocks(x, head_sizes, "final_dense", setup)
    x = layers.Dense(4, name="final_dense_last")(x)
    outputs = {"main_output": layers.Activation("softmax", name="main_output", dtype="float32")(x)}
    if adversarial is not None:
        a = GradientScale(-float(adversarial.get("k2", 10.0)), name="adv_grad_reversal")(features)
        adv_sizes = adversarial.get("units") or list(head_sizes)
        a = _dense_blocks(a, [int(u) for u in adv_sizes], "adv_dense", setup)
        a = layers.Dense(1, name="adv_dense_last")(a)
        outputs["adv_output"] = layers.Activation("sigmoid", name="adv_output", dtype="float32")(a)
    return keras.Model(inputs=inputs, outputs=outputs, name=name)


# ============================================================================ DeepTau
def deeptau(input_shapes: Mapping[str, tuple[int, ...]], config: Mapping[str, Any] | None = None,
            adversarial: Mapping[str, Any] | None = None) -> Any:
    """The DeepTau v2 architecture (§6.5): tau dense net, per-location grid CNNs, dense head."""
    given = dict(config or {})
    cfg = {k: ({**v, **(given.get(k) or {})} if isinstance(v, dict) else given.get(k, v)) for k, v in DEEPTAU_DEFAULTS.items()}
    unknown = sorted(set(given) - set(DEEPTAU_DEFAULTS))
    if unknown:
        raise ConfigError(f"model.deeptau: unknown key(s) {unknown}; allowed: {sorted(DEEPTAU_DEFAULTS)}")
    reg = _regulariser(cfg["first_layer_reg"])
    inputs = {name: keras.Input(shape=shape, name=name) for name, shape in input_shapes.items()}
    tau_net = cfg["tau_net"]
    n_tau = input_shapes["input_tau"][0]
    tau = _dense_blocks(inputs["input_tau"], _net_sizes(tau_net, n_tau), "tau_dense", _setup(tau_net, "tau_net"), reg)
    branches = [tau]
    comp_net, merge_net, conv_net = cfg["comp_net"], cfg["comp_merge_net"], cfg["conv_2d_net"]
    for loc in ("inner", "outer"):
        comps = []
        for group in ("egamma", "muon", "hadrons"):
            x = inputs[f"input_{loc}_{group}"]
            sizes = _net_sizes(comp_net, int(x.shape[-1]))
            comps.append(_conv_blocks(x, sizes, f"{loc}_{group}_conv", _setup(comp_net, "comp_net"), reg))
        x = layers.Concatenate(name=f"{loc}_cell_concat")(comps)
        x = _conv_blocks(x, _net_sizes(merge_net, int(x.shape[-1])), f"{loc}_all_conv", _setup(merge_net, "comp_merge_net"))
        x = _reduce_grid(x, loc, conv_net)
        branches.append(layers.Flatten(name=f"{loc}_cells_flatten")(x))
    features = layers.Concatenate(name="features_concat")(branches)
    dense_net = cfg["dense_net"]
    sizes = _net_sizes(dense_net, int(features.shape[-1]))
    return _heads(features, inputs, sizes, _setup(dense_net, "dense_net"), adversarial, "deeptau")


def _reduce_grid(x: Any, loc: str, net: Mapping[str, Any]) -> Any:
    """3×3 'valid' convolutions (with optional pooling on the outer grid) down to 1×1."""
    setup = _setup(net, "conv_2d_net")
    window = int(net.get("window_size") or 3)
    grid = int(x.shape[1])
    step = 0
    while grid > 1:
        pooling = net.get("pooling")
        if loc == "outer" and pooling is not None and step == int(pooling):
            size = 2 if grid % 2 == 0 and (grid // 2) % 2 == 1 else 3
            x = layers.MaxPooling2D(pool_size=size, strides=size, name=f"{loc}_all_pool_{step}")(x)
            grid = int(x.shape[1])
            if grid <= 1:
                break
        w = min(grid, window)
        n_in = int(x.shape[-1])
        rate = net.get("reduction_rate")
        filters = n_in if rate is None else int(math.ceil((grid / (grid - w + 1)) ** 2 * n_in / float(rate)))
        name = f"{loc}_all_{w}x{w}_{step}"
        x = layers.Conv2D(filters, (w, w), padding="valid", kernel_initializer=setup.init, name=name)(x)
        x = setup.finish(x, name, spatial=True)
        grid -= w - 1
        step += 1
    return x


# ============================================================================ light
@keras.saving.register_keras_serializable(package="taucoffea")
class MaskedSetPool(keras.layers.Layer):
    """Masked sum and max over the set axis: ``(n, K, F), (n, K) → (n, 2F)``; empty sets → 0."""

    def call(self, x: Any, valid: Any) -> Any:
        m = ops.expand_dims(ops.cast(valid, x.dtype), -1)
        total = ops.sum(x * m, axis=1)
        peak = ops.max(x * m - (1.0 - m) * 1e9, axis=1)
        any_obj = ops.cast(ops.sum(m, axis=1) > 0, x.dtype)
        return ops.concatenate([total, peak * any_obj], axis=-1)

    def compute_output_shape(self, x_shape: Any, valid_shape: Any) -> Any:
        return (x_shape[0], 2 * x_shape[-1])


def light(input_shapes: Mapping[str, tuple[int, ...]], config: Mapping[str, Any] | None = None,
          adversarial: Mapping[str, Any] | None = None) -> Any:
    """Tau features through a small dense net plus one deep-sets block per object group."""
    cfg = {**LIGHT_DEFAULTS, **(config or {})}
    unknown = sorted(set(cfg) - set(LIGHT_DEFAULTS))
    if unknown:
        raise ConfigError(f"model.light: unknown key(s) {unknown}; allowed: {sorted(LIGHT_DEFAULTS)}")
    setup = _Setup(str(cfg["activation"]), float(cfg["dropout_rate"] or 0.0), bool(cfg["batch_norm"]))
    set_setup = _Setup(str(cfg["activation"]), 0.0, batch_norm=False)  # padded rows would bias BatchNorm
    inputs = {name: keras.Input(shape=shape, name=name) for name, shape in input_shapes.items()}
    branches = [_dense_blocks(inputs["input_tau"], [int(u) for u in cfg["tau_units"]], "tau_dense", setup)]
    for group in ("egamma", "muon", "hadrons"):
        x = inputs[f"input_{group}"]
        for k, units in enumerate(cfg["set_units"]):
            name = f"{group}_set_dense_{k}"
            x = layers.Dense(int(units), kernel_initializer=set_setup.init, name=name)(x)
            x = set_setup.finish(x, name, spatial=False)
        branches.append(MaskedSetPool(name=f"{group}_set_pool")(x, inputs[f"input_{group}_mask"]))
    features = layers.Concatenate(name="features_concat")(branches)
    return _heads(features, inputs, [int(u) for u in cfg["head_units"]], setup, adversarial, "light")


def build_model(kind: str, input_shapes: Mapping[str, tuple[int, ...]], config: Mapping[str, Any] | None = None,
                adversarial: Mapping[str, Any] | None = None) -> Any:
    """``light`` or ``deeptau`` model for the given inputs."""
    if kind == "light":
        return light(input_shapes, config, adversarial)
    if kind == "deeptau":
        return deeptau(input_shapes, config, adversarial)
    raise ConfigError(f"model '{kind}' is not known; allowed: light, deeptau")
