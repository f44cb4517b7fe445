"""Training configuration: defaults, YAML files, ``key.sub=value`` overrides, validation.

A training run is described by one nested mapping (``configs/training/light.yaml`` shows every
key). Files and overrides are merged onto :data:`DEFAULTS`; every key must exist there, so a
typo fails immediately with the key path and the allowed keys instead of silently training
with a default. Override values are parsed as YAML (``training.epochs=3`` is an int,
``data.features.disabled.TauFlat=[tau_phi,tau_mass]`` a list).

Two sub-trees are free-form and validated by their consumers: ``model.deeptau`` (the
TauMLTools ``*_net`` blocks) and ``data.features.disabled`` (var_type → feature names).
"""

from __future__ import annotations

import copy
import os
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from taucoffea.errors import ConfigError

__all__ = ["DEFAULTS", "apply_overrides", "load_config", "parse_overrides", "read_scan_file", "resolve_config"]


def _defaults() -> dict[str, Any]:
    from taucoffea.ml.features import DEFAULT_DISABLED

    # the model defaults are duplicated here (not imported) so that reading a config never
    # imports Keras; tests check they equal taucoffea.ml.models' constants
    return {
        "model": {
            "name": "light",
            "light": {
                "tau_units": [64, 64],
                "set_units": [64, 64],
                "head_units": [128, 64],
                "activation": "relu",
                "dropout_rate": 0.1,
                "batch_norm": True,
                "max_objects": {"egamma": 16, "muon": 4, "hadrons": 16},
            },
            "deeptau": {},
        },
        "data": {
            "input": None,
            "scaling": "auto",
            "scaling_sample": 20000,
            "validation_split": 0.3,
            "batch_size": 250,
            "max_batches": None,
            "max_batches_val": None,
            "workers": 1,
            "use_multiprocessing": False,
            "queue_size": 10,
            "cache_blocks": None,
            "features": {"disabled": {k: list(v) for k, v in DEFAULT_DISABLED.items()}},
        },
        "weights": {
            "source": "auto",
            "limit": 1.0e5,
            "policy": "populated",
        },
        "training": {
            "epochs": 5,
            "optimizer": "nadam",
            "learning_rate": 1.0e-3,
            "step_decay": 0,
            "loss": "tau_crossentropy_v2",
            "loss_sfs": [1.0, 2.5, 5.0, 1.5],
            "metrics": ["accuracy"],
            "seed": 42,
            "checkpoint_every_s": 43200.0,
            "checkpoint_check_batches": 100,
            "tensorboard": True,
            "tensorboard_update_freq": "epoch",
            "verbose": "auto",
            "pretrained": None,
        },
        "adversarial": {
            "enabled": False,
            "input": None,
            "n_adv_tau": 100,
            "k1": 1.0,
            "k2": 10.0,
            "learning_rate": 0.01,
            "optimizer": "nadam",
            "validation_split": 0.33,
            "units": None,
        },
        "mlflow": {
            "enabled": "auto",
            "tracking_uri": None,
            "experiment": "taucoffea",
        },
    }


DEFAULTS: dict[str, Any] = _defaults()

#: Sub-trees whose keys are checked by their consumers, not against DEFAULTS.
_FREE: tuple[tuple[str, ...], ...] = (("model", "deeptau"), ("data", "features", "disabled"))
#: Keys whose values may be of several types (checked by the consumer).
_ANY_TYPE: set[tuple[str, ...]] = {
    ("data", "input"), ("data", "scaling"), ("data", "max_batches"), ("data", "max_batches_val"),
    ("data", "cache_blocks"), ("weights", "source"), ("training", "tensorboard_update_freq"),
    ("training", "verbose"), ("training", "pretrained"), ("adversarial", "input"), ("adversarial", "units"),
    ("mlflow", "enabled"), ("mlflow", "tracking_uri"),
}


# YAML 1.1 (PyYAML) reads "1e-3" as a string; users mean a number
_FLOAT_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


def _numeric_text(value: Any) -> Any:
    if isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
        return float(value)
    if isinstance(value, list):
        return [_numeric_text(v) for v in value]
    return value


def _is_free(path: tuple[str, ...]) -> bool:
    return any(path[: len(f)] == f for f in _FREE)


def _dotted(path: Sequence[str]) -> str:
    return ".".join(path) if path else "<top level>"


def _check_value(path: tuple[str, ...], value: Any, default: Any, where: str) -> Any:
    value = _numeric_text(value)
    if path in _ANY_TYPE or _is_free(path) or default is None:
        return value
    key = _dotted(path)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: '{key}' must be true or false, got {value!r}")
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: '{key}' must be an integer, got {value!r}")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: '{key}' must be a number, got {value!r}")
        value = float(value)
    elif isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{where}: '{key}' must be a string, got {value!r}")
    elif isinstance(default, list):
        if not isinstance(value, list):
            raise ConfigError(f"{where}: '{key}' must be a list, got {value!r}")
    return value


def _merge(base: dict[str, Any], update: Mapping[str, Any], defaults: Mapping[str, Any], path: tuple[str, ...], where: str) -> None:
    if not isinstance(update, Mapping):
        raise ConfigError(f"{where}: '{_dotted(path)}' must be a mapping, got {update!r}")
    for key, value in update.items():
        sub = (*path, str(key))
        if _is_free(sub) or _is_free(path):
            if isinstance(value, Mapping) and isinstance(base.get(key), dict):
                _deep_update(base[key], value)
            else:
                base[key] = copy.deepcopy(value)
            continue
        if key not in defaults:
            raise ConfigError(f"{where}: unknown config key '{_dotted(sub)}'; allowed under '{_dotted(path)}': {sorted(defaults)}")
        default = defaults[key]
        if isinstance(default, dict) and not _is_free(sub):
            if value is None:
                continue
            _merge(base.setdefault(key, {}), value, default, sub, where)
        else:
            base[key] = _check_value(sub, value, default, where)


def _deep_update(base: dict[str, Any], update: Mapping[str, Any]) -> None:
    """Merge mappings recursively (lists and scalars are replaced)."""
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


def parse_overrides(tokens: Iterable[str]) -> list[tuple[tuple[str, ...], Any]]:
    """``["training.epochs=3", …]`` → ``[(("training", "epochs"), 3), …]`` (values parsed as YAML)."""
    out = []
    for token in tokens:
        key, sep, text = token.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override '{token}' must look like key.sub=value")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as err:
            raise ConfigError(f"override '{token}': value is not valid YAML: {err}") from None
        out.append((tuple(key.split(".")), _numeric_text(value)))
    return out


def apply_overrides(config: dict[str, Any], overrides: Iterable[str], where: str = "command line") -> dict[str, Any]:
    """A copy of ``config`` with ``key.sub=value`` overrides applied and validated."""
    result = copy.deepcopy(config)
    for path, value in parse_overrides(overrides):
        nested: Any = value
        for part in reversed(path):
            nested = {part: nested}
        _merge(result, nested, DEFAULTS, (), where)
    return result


def resolve_config(*layers: Mapping[str, Any] | None, overrides: Iterable[str] = (), where: str = "config") -> dict[str, Any]:
    """DEFAULTS ← each mapping in turn ← overrides; validated."""
    config = copy.deepcopy(DEFAULTS)
    for layer in layers:
        if layer:
            _merge(config, layer, DEFAULTS, (), where)
    config = apply_overrides(config, overrides)
    _validate(config)
    return config


def load_config(path: str | os.PathLike[str] | None, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Read a training YAML (``None``: the defaults) and apply overrides."""
    data: Mapping[str, Any] | None = None
    where = "defaults"
    if path is not None:
        p = Path(path)
        if not p.exists():
            raise ConfigError(f"training config '{p}' does not exist")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{p}: not valid YAML: {err}") from None
        where = str(p)
    return resolve_config(data, overrides=overrides, where=where)


def _validate(config: Mapping[str, Any]) -> None:
    allowed = {
        ("model", "name"): ("light", "deeptau"),
        ("weights", "policy"): ("strict", "populated"),
        ("training", "optimizer"): ("nadam", "adam", "sgd", "rmsprop", "adamw"),
        ("adversarial", "optimizer"): ("nadam", "adam", "sgd", "rmsprop", "adamw"),
    }
    for path, choices in allowed.items():
        value = config[path[0]][path[1]]
        if value not in choices:
            raise ConfigError(f"config '{_dotted(path)}' = {value!r} is not allowed; choose one of {list(choices)}")
    if config["data"]["batch_size"] < 1 or config["adversarial"]["n_adv_tau"] < 1:
        raise ConfigError("data.batch_size and adversarial.n_adv_tau must be >= 1")
    if config["training"]["epochs"] < 1:
        raise ConfigError(f"training.epochs must be >= 1, got {config['training']['epochs']}")
    freq = config["training"]["tensorboard_update_freq"]
    if not (freq == "epoch" or (isinstance(freq, int) and not isinstance(freq, bool) and freq > 0)):
        raise ConfigError(f"training.tensorboard_update_freq must be 'epoch' or a positive number of batches, got {freq!r}")
    if len(config["training"]["loss_sfs"]) != 4:
        raise ConfigError(f"training.loss_sfs must have 4 entries (e, mu, tau, jet), got {config['training']['loss_sfs']}")


def read_scan_file(path: str | os.PathLike[str]) -> list[list[str]]:
    """Override lines of a hyper-parameter scan file (``#`` comments and blank lines skipped)."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"scan file '{p}' does not exist")
    lines = []
    for number, raw in enumerate(p.read_text().splitlines(), 1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            tokens = shlex.split(text)
        except ValueError as err:
            raise ConfigError(f"{p}:{number}: cannot split line: {err}") from None
        parse_overrides(tokens)  # syntax check up front, with the line number on failure
        lines.append(tokens)
    if not lines:
        raise ConfigError(f"scan file '{p}' has no override lines")
    return lines
