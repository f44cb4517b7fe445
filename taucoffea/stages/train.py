"""The train stage, for pipelines: ``run_train`` (one training) and ``run_scan``.

Thin wrappers over :mod:`taucoffea.ml.trainer` with the stage-driver conventions: the config
comes from a path or mapping plus overrides; the data paths a pipeline resolves in its work
directory (``input_path``, ``scaling``, ``adversarial_input``, ``pretrained``) are explicit
parameters; an existing run is refused unless ``overwrite`` or ``resume``; ``session`` and
``executor`` are accepted like every stage (a single training runs in this process; a scan
runs its trainings as apps of the session).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from taucoffea.execution.session import ExecutionSession

__all__ = ["run_scan", "run_train"]

Overrides = Sequence[str] | Mapping[str, Any]


def _layer(overrides: Overrides, **paths: Any) -> tuple[dict[str, Any], list[str]]:
    """(nested mapping from dotted keys, ``key=value`` tokens)."""
    nested: dict[str, Any] = {}
    tokens: list[str] = []
    items = list(overrides.items()) if isinstance(overrides, Mapping) else []
    if not isinstance(overrides, Mapping):
        tokens = [str(t) for t in overrides]
    items += [(k, os.fspath(v)) for k, v in paths.items() if v is not None]
    for key, value in items:
        node = nested
        parts = str(key).split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested, tokens


def _config(config: str | os.PathLike[str] | Mapping[str, Any] | None, overrides: Overrides, **paths: Any) -> dict[str, Any]:
    from taucoffea.ml.config import load_config, resolve_config

    nested, tokens = _layer(overrides, **paths)
    base = load_config(config) if config is None or isinstance(config, (str, os.PathLike)) else dict(config)
    return resolve_config(base, nested, overrides=tokens)


def run_train(
    config: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    run_dir: str | os.PathLike[str] | None = None,
    *,
    input_path: str | os.PathLike[str] | None = None,
    scaling: str | os.PathLike[str] | None = None,
    adversarial_input: str | os.PathLike[str] | None = None,
    pretrained: str | os.PathLike[str] | None = None,
    overrides: Overrides = (),
    resume: bool = False,
    overwrite: bool = False,
    verbose: int | str | None = None,
    session: ExecutionSession | None = None,
    executor: Any = None,
) -> Any:
    """Train; returns :class:`taucoffea.ml.trainer.TrainResult`.

    ``overrides`` are ``key.sub=value`` strings or a mapping of dotted keys to values;
    ``adversarial_input`` also enables adversarial training.
    """
    from taucoffea.ml.trainer import train

    paths = {"data.input": input_path, "data.scaling": scaling, "adversarial.input": adversarial_input,
             "training.pretrained": pretrained}
    if adversarial_input is not None:
        overrides = _with(overrides, "adversarial.enabled", True)
    if resume:
        nested, tokens = _layer(overrides, **{k: v for k, v in paths.items() if v is not None})
        return train({}, run_dir, resume=True, overrides=tokens + _tokens(nested), verbose=verbose)
    return train(_config(config, overrides, **paths), run_dir, overwrite=overwrite, verbose=verbose)


def _with(overrides: Overrides, key: str, value: Any) -> Overrides:
    if isinstance(overrides, Mapping):
        return {**overrides, key: value}
    return [*overrides, f"{key}={str(value).lower() if isinstance(value, bool) else value}"]


def _tokens(nested: Mapping[str, Any], prefix: str = "") -> list[str]:
    import json

    out = []
    for k, v in nested.items():
        if isinstance(v, Mapping):
            out += _tokens(v, f"{prefix}{k}.")
        else:
            out.append(f"{prefix}{k}={json.dumps(v)}")  # JSON is YAML: typed on parsing
    return out


def run_scan(
    config: str | os.PathLike[str] | Mapping[str, Any] | None,
    scan_file: str | os.PathLike[str],
    base_dir: str | os.PathLike[str],
    *,
    input_path: str | os.PathLike[str] | None = None,
    overrides: Overrides = (),
    executor: Any = None,
    session: ExecutionSession | None = None,
    overwrite: bool = False,
) -> list[dict[str, Any]]:
    """One training per line of ``scan_file``; see :func:`taucoffea.ml.trainer.scan`."""
    from taucoffea.ml.config import read_scan_file
    from taucoffea.ml.trainer import scan

    return scan(_config(config, overrides, **{"data.input": input_path}), read_scan_file(scan_file), base_dir,
                session=session, executor=executor, overwrite=overwrite)
