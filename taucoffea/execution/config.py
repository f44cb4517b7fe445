"""Executor configuration: YAML in, validated dataclass out.

One YAML file (or a built-in name) describes how a stage runs: which coffea executor, how many
workers, chunk size, retries, bad-file policy, checkpointing and, for HTCondor, the job shape.
Unknown keys are errors that name the key and the allowed ones — a typo must never silently
fall back to a default on a 1 000-slot production.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from taucoffea.errors import ConfigError

__all__ = ["EXECUTORS", "CondorOptions", "ExecutorConfig", "load_executor_config"]

EXECUTORS: tuple[str, ...] = ("iterative", "futures", "parsl", "condor", "dask")


@dataclass(frozen=True)
class CondorOptions:
    """The HTCondor job shape handed to ``parsl.providers.CondorProvider``."""

    worker_init: str = ""
    cores_per_slot: int = 1
    mem_per_slot: float = 2.0  # GB, as CondorProvider expects
    requirements: str = ""
    x509_proxy: str | None = None  # path; transferred with the job and exported as X509_USER_PROXY
    init_blocks: int = 1
    min_blocks: int = 0
    max_blocks: int = 10
    nodes_per_block: int = 1
    walltime: str = "01:00:00"
    scheduler_options: str = ""
    environment: dict[str, str] = field(default_factory=dict)
    address: str | None = None  # interface the workers connect back to; None = this host's name

    def __post_init__(self) -> None:
        # a job shape that HTCondor would reject (or match to nothing) must fail here, before
        # a pilot is submitted, naming the key
        for name, low in (("cores_per_slot", 1), ("nodes_per_block", 1), ("init_blocks", 0), ("min_blocks", 0), ("max_blocks", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigError(f"condor option '{name}' must be an integer >= {low}, got {value!r}")
        if self.min_blocks > self.max_blocks:
            raise ConfigError(f"condor option 'min_blocks' ({self.min_blocks}) exceeds 'max_blocks' ({self.max_blocks})")
        if not isinstance(self.mem_per_slot, (int, float)) or not math.isfinite(self.mem_per_slot) or self.mem_per_slot <= 0:
            raise ConfigError(f"condor option 'mem_per_slot' must be a positive number of GB, got {self.mem_per_slot!r}")
        if not re.fullmatch(r"\d+:[0-5]\d:[0-5]\d", str(self.walltime)):
            raise ConfigError(f"condor option 'walltime' must look like HH:MM:SS, got {self.walltime!r}")


@dataclass(frozen=True)
class ExecutorConfig:
    """How a stage runs. Defaults give the laptop case: Parsl HTEX with two local workers."""

    executor: str = "parsl"
    workers: int = 2
    chunksize: int = 100_000
    retries: int = 0
    skip_bad_files: bool = False
    progress: bool = True
    checkpoint_dir: str | None = None
    worker_init: str = ""
    run_dir: str | None = None
    dask_scheduler: str | None = None
    condor: CondorOptions = field(default_factory=CondorOptions)

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise ConfigError(f"executor '{self.executor}' is not known; allowed: {', '.join(EXECUTORS)}")
        for name in ("workers", "chunksize"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"executor option '{name}' must be an integer >= 1, got {value!r}")
        if not isinstance(self.retries, int) or self.retries < 0:
            raise ConfigError(f"executor option 'retries' must be an integer >= 0, got {self.retries!r}")

    def replace(self, **changes: Any) -> ExecutorConfig:
        """A copy with some options changed (CLI overrides); ``None`` values are ignored."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def _from_mapping(cls: type, data: Mapping[str, Any], where: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    allowed = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        f = allowed[key]
        if key == "condor":
            value = _from_mapping(CondorOptions, {} if value is None else value, f"{where}: condor")
        else:
            value = _check_type(value, f, where)
        kwargs[key] = value
    return cls(**kwargs)


def _check_type(value: Any, f: dataclasses.Field, where: str) -> Any:
    expected = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    checks = {
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "bool": lambda v: isinstance(v, bool),
        "str": lambda v: isinstance(v, str),
        "str | None": lambda v: v is None or isinstance(v, str),
        "dict[str, str]": lambda v: isinstance(v, Mapping) and all(isinstance(k, str) for k in v),
    }
    check = checks.get(expected)
    if check is not None and not check(value):
        raise ConfigError(f"{where}: key '{f.name}' must be of type {expected}, got {value!r}")
    if expected == "float":
        value = float(value)
    return value


def load_executor_config(spec: str | os.PathLike[str] | Mapping[str, Any] | None = None) -> ExecutorConfig:
    """Build an :class:`ExecutorConfig` from a YAML path, a built-in name or a mapping.

    A bare name (``parsl``, ``iterative``, ``condor`` …) gives that executor with defaults; a
    path to a YAML file gives exactly what it says, validated.
    """
    if spec is None:
        return ExecutorConfig()
    if isinstance(spec, Mapping):
        return _from_mapping(ExecutorConfig, spec, "executor config")
    if not isinstance(spec, (str, os.PathLike)):
        raise ConfigError(
            f"executor must be a built-in name, a YAML path or a mapping of options, got {type(spec).__name__} {spec!r}"
        )
    text = os.fspath(spec)
    if text in EXECUTORS:
        return ExecutorConfig(executor=text)
    path = Path(text)
    if not path.exists():
        raise ConfigError(
            f"executor '{text}' is neither a built-in ({', '.join(EXECUTORS)}) nor an existing YAML file"
        )
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    return _from_mapping(ExecutorConfig, data, str(path))
