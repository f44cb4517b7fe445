"""``taucoffea run PIPELINE.yaml``: stages listed in YAML, run in order in one ExecutionSession.

A pipeline file looks like::

    description: adversarial inputs on toy data
    executor: iterative          # built-in name, executor YAML, or a mapping (CLI overrides)
    stages:
      - toy:        {output: toy, size: {SingleMuon_MuTau: 20000}, seed: 1234}
      - skim:       {input: toy, output: skim, contributions: selection.yaml}
      - event-drop: {input: skim, output: drop, target: "dataset:DY_taus"}

Each entry is ``{stage name: options}``; options are the stage function's keyword arguments
(``input`` stands for ``input_path``), checked against its signature before anything runs, so
a typo fails at once with the stage, the key and the allowed keys. Relative data paths are
taken inside ``--workdir``; relative config files (``contributions``, ``executor``) next to the
pipeline file. All stages share one :class:`ExecutionSession` (Parsl starts once).

New stages are added with :func:`register_stage` — a name, the ``module:function`` to call and
which options are paths — without touching the runner.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from taucoffea.columns.atomic import write_text_atomic
from taucoffea.errors import ConfigError, OutputExistsError
from taucoffea.execution.config import ExecutorConfig, load_executor_config
from taucoffea.execution.session import ExecutionSession

__all__ = ["STAGES", "PipelineStep", "StageSpec", "load_pipeline", "register_stage", "run_pipeline"]

#: Keyword arguments the runner itself supplies to every stage (not allowed in the YAML).
_RUNNER_ARGS = ("session", "executor", "overwrite")


@dataclass(frozen=True)
class StageSpec:
    """How the runner calls one stage.

    ``target`` is ``"module:function"`` (imported only when the stage runs). ``data_paths``
    are options resolved inside the work directory, ``config_paths`` next to the pipeline file;
    ``aliases`` map YAML keys to parameter names.
    """

    name: str
    target: str
    data_paths: tuple[str, ...] = ()
    config_paths: tuple[str, ...] = ()
    aliases: Mapping[str, str] = field(default_factory=dict)
    converters: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)
    help: str = ""

    def function(self) -> Callable[..., Any]:
        module, _, attr = self.target.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as err:
            raise ConfigError(f"pipeline stage '{self.name}': cannot load '{self.target}' ({err})") from None

    def parameters(self) -> tuple[set[str] | None, set[str]]:
        """(allowed YAML keys — ``None``: any, the function takes ``**options`` and checks
        them itself — and required YAML keys) from the function's signature."""
        sig = inspect.signature(self.function())
        inverse = {v: k for k, v in self.aliases.items()}
        allowed: set[str] | None = set()
        required: set[str] = set()
        open_keys = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
        for p in sig.parameters.values():
            if p.name in _RUNNER_ARGS or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            key = inverse.get(p.name, p.name)
            allowed.add(key)
            if p.default is p.empty:
                required.add(key)
        return (None if open_keys else allowed), required


#: Registered stages by name.
STAGES: dict[str, StageSpec] = {}


def register_stage(spec: StageSpec, *, replace: bool = False) -> StageSpec:
    """Make a stage available to pipelines (``replace`` to redefine an existing name)."""
    if spec.name in STAGES and not replace:
        raise ConfigError(f"pipeline stage '{spec.name}' is already registered")
    STAGES[spec.name] = spec
    return spec


_IN = {"input": "input_path"}


def _spectrum_binning(value: Any) -> Any:
    """``{pt: "n, min, max", eta: "n, min, max"}`` → ``SpectrumBinning``."""
    from taucoffea.algorithms.spectra import HistSpec, SpectrumBinning

    if not isinstance(value, Mapping) or set(value) - {"pt", "eta"}:
        raise ConfigError(f"spectra binning must be a mapping with keys 'pt' and/or 'eta' ('n_bins, min, max'), got {value!r}")
    defaults = SpectrumBinning()
    return SpectrumBinning(
        pt=HistSpec.parse(value["pt"]) if "pt" in value else defaults.pt,
        eta=HistSpec.parse(value["eta"]) if "eta" in value else defaults.eta,
    )

for _spec in (
    StageSpec("toy", "taucoffea.stages.pipeline:run_toy_stage", data_paths=("output",),
              help="toy TauTuples (kept when already there with the same request)"),
    StageSpec("spectra", "taucoffea.stages.spectra:run_spectra", data_paths=("input", "output"), aliases=_IN,
              converters={"binning": _spectrum_binning}, help="(|eta|, pT) spectra per tau type"),
    StageSpec("skim", "taucoffea.stages.skim:run_skim", data_paths=("input", "output"), config_paths=("contributions",),
              aliases=_IN, help="selection, tau-type recomputation, column filter"),
    StageSpec("event-drop", "taucoffea.stages.event_drop:run_event_drop", data_paths=("input", "output", "target"),
              aliases=_IN, help="thin pT spectra down to a target shape"),
    StageSpec("reweight", "taucoffea.stages.reweight:run_reweight", data_paths=("input", "output", "target"),
              config_paths=("contributions",), aliases=_IN, help="adversarial pT weights per contribution"),
    StageSpec("mix", "taucoffea.stages.mix:run_mix", data_paths=("input", "output", "weights"),
              config_paths=("contributions",), aliases=_IN, help="adversarial data/MC mixture"),
    StageSpec("shuffle-merge", "taucoffea.stages.shuffle_merge:run_shuffle_merge",
              data_paths=("input", "input_spec", "output"), config_paths=("cfg",),
              aliases={"input": "input_dir"}, help="flat (pT, |eta|) training files"),
    StageSpec("validate", "taucoffea.stages.validate:run_validate", data_paths=("input", "output", "expected_json"),
              aliases={"input": "inputs"}, help="chunk-to-chunk tests and closure of shuffle & merge output"),
    StageSpec("scaling", "taucoffea.stages.scaling:run_scaling", data_paths=("input", "output"),
              config_paths=("config",), aliases=_IN, help="feature scaling parameters"),
    StageSpec("evaluate", "taucoffea.stages.evaluate:run_evaluate", data_paths=("input", "output", "working_points"),
              config_paths=("config",), aliases=_IN, help="ROC curves, AUC and WP points into performance.json"),
    StageSpec("derive-wp", "taucoffea.stages.derive_wp:run_derive_wp", data_paths=("input", "output"),
              config_paths=("config",), aliases=_IN, help="working points (WPMaker)"),
    StageSpec("train", "taucoffea.stages.train:run_train",
              data_paths=("run_dir", "input", "scaling", "adversarial_input", "pretrained"),
              config_paths=("config",), aliases=_IN, help="train the tau classifier (Keras)"),
    StageSpec("predict", "taucoffea.stages.predict:run_predict", data_paths=("run_dir", "input", "output"),
              aliases=_IN, help="apply a trained run to per-tau files"),
    StageSpec("plot", "taucoffea.stages.pipeline:run_plot_stage", data_paths=("input", "output", "working_points"),
              config_paths=("config",),
              help="any `taucoffea plot KIND` (options as its command-line flags, without dashes)"),
):
    register_stage(_spec)


@dataclass(frozen=True)
class PipelineStep:
    index: int
    name: str
    options: dict[str, Any]


@dataclass(frozen=True)
class Pipeline:
    source: Path
    steps: tuple[PipelineStep, ...]
    executor: Any = None
    description: str = ""


_TOP_KEYS = {"description", "executor", "stages"}


def load_pipeline(path: str | os.PathLike[str]) -> Pipeline:
    """Read and validate a pipeline file (unknown stages and keys are errors, naming the file)."""
    src = Path(path)
    if not src.is_file():
        raise ConfigError(f"pipeline file '{src}' does not exist")
    try:
        data = yaml.safe_load(src.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{src}: not valid YAML: {err}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{src}: expected a mapping with 'stages'")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ConfigError(f"{src}: unknown key(s) {unknown}; allowed: {sorted(_TOP_KEYS)}")
    raw = data.get("stages")
    if not isinstance(raw, Sequence) or isinstance(raw, str) or not raw:
        raise ConfigError(f"{src}: 'stages' must be a non-empty list of {{stage: options}} entries")
    steps = []
    for i, entry in enumerate(raw, start=1):
        if isinstance(entry, str):
            name, options = entry, {}
        elif isinstance(entry, Mapping) and len(entry) == 1:
            name, options = next(iter(entry.items()))
            options = {} if options is None else options
        else:
            raise ConfigError(f"{src}: stage #{i} must be 'name' or a one-key mapping {{name: options}}, got {entry!r}")
        if name not in STAGES:
            raise ConfigError(f"{src}: stage #{i}: unknown pipeline stage '{name}'; known stages: {', '.join(sorted(STAGES))}")
        if not isinstance(options, Mapping):
            raise ConfigError(f"{src}: stage #{i} ('{name}'): options must be a mapping, got {options!r}")
        allowed, required = STAGES[name].parameters()
        bad = [] if allowed is None else sorted(set(options) - allowed)
        if bad:
            raise ConfigError(f"{src}: stage #{i} ('{name}'): unknown key(s) {bad}; allowed: {sorted(allowed)}")
        missing = sorted(required - set(options))
        if missing:
            raise ConfigError(f"{src}: stage #{i} ('{name}'): missing required key(s) {missing}")
        steps.append(PipelineStep(i, name, dict(options)))
    return Pipeline(src, tuple(steps), data.get("executor"), str(data.get("description", "")))


def _resolve(value: Any, base: Path) -> Any:
    if isinstance(value, str):
        if value.startswith("dataset:") or os.path.isabs(value):
            return value
        return str(base / value)
    if isinstance(value, Mapping):
        return {k: _resolve(v, base) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_resolve(v, base) for v in value]
    return value


def _call_options(step: PipelineStep, spec: StageSpec, workdir: Path, config_dir: Path) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for key, value in step.options.items():
        if key in spec.data_paths:
            value = _resolve(value, workdir)
        elif key in spec.config_paths:
            value = _resolve(value, config_dir)
        if key in spec.converters:
            value = spec.converters[key](value)
        kwargs[spec.aliases.get(key, key)] = value
    return kwargs


def _executor(spec: Any, override: ExecutorConfig | None, config_dir: Path) -> ExecutorConfig:
    if override is not None:
        return override
    if isinstance(spec, str) and spec.endswith((".yaml", ".yml")) and not os.path.isabs(spec):
        spec = str(config_dir / spec)
    return load_executor_config(spec)


def run_pipeline(
    path: str | os.PathLike[str],
    workdir: str | os.PathLike[str],
    *,
    executor: ExecutorConfig | None = None,
    executor_overrides: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    until: str | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """Run every stage of ``path`` in order inside one session; return per-stage results.

    With ``resume`` a stage that already completed with the same options (a marker in
    ``<workdir>/.pipeline/``) is skipped, so an interrupted pipeline goes on where it stopped.

    ``executor`` replaces the pipeline file's executor; ``executor_overrides`` (``None`` values
    ignored) adjust whichever is used. ``until`` stops after the first stage of that name. A ``pipeline_report.json`` in the work
    directory lists each stage, its resolved options and its run time.
    """
    pipe = load_pipeline(path)
    if until is not None and until not in {s.name for s in pipe.steps}:
        raise ConfigError(f"--until '{until}' is not a stage of {pipe.source}; stages: {[s.name for s in pipe.steps]}")
    wd = Path(workdir).resolve()
    wd.mkdir(parents=True, exist_ok=True)
    config_dir = pipe.source.resolve().parent
    cfg = _executor(pipe.executor, executor, config_dir).replace(**dict(executor_overrides or {}))
    # resolve and check every stage before the first one runs
    calls = [(step, STAGES[step.name], _call_options(step, STAGES[step.name], wd, config_dir)) for step in pipe.steps]
    results: dict[str, Any] = {}
    record: list[dict[str, Any]] = []
    with ExecutionSession(cfg) as session:
        for step, spec, kwargs in calls:
            func = spec.function()
            marker = wd / ".pipeline" / f"{step.index:02d}-{step.name}-{_options_hash(kwargs)}.done"
            if resume and marker.exists():
                print(f"[run] stage {step.index}/{len(calls)}: {step.name}: done before, skipped", flush=True)
                results[f"{step.index}:{step.name}"] = None
                record.append({"stage": step.name, "options": kwargs, "seconds": 0.0, "skipped": True})
                if step.name == until:
                    break
                continue
            print(f"[run] stage {step.index}/{len(calls)}: {step.name}", flush=True)
            accepted = inspect.signature(func).parameters
            runner_args = {"session": session, "overwrite": overwrite or resume}
            t0 = time.perf_counter()
            result = func(**kwargs, **{k: v for k, v in runner_args.items() if k in accepted})
            dt = time.perf_counter() - t0
            marker.parent.mkdir(exist_ok=True)
            marker.touch()
            summary = getattr(result, "summary", None)
            if callable(summary):
                print(summary())
            print(f"[run] {step.name} done in {dt:.1f} s", flush=True)
            results[f"{step.index}:{step.name}"] = result
            record.append({"stage": step.name, "options": kwargs, "seconds": round(dt, 2)})
            if step.name == until:
                break
    write_text_atomic(
        wd / "pipeline_report.json",
        json.dumps({"pipeline": str(pipe.source), "executor": cfg.executor, "stages": record}, indent=1, default=str) + "\n",
    )
    return results


def _options_hash(kwargs: Mapping[str, Any]) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(kwargs, sort_keys=True, default=str).encode()).hexdigest()[:12]


# ----------------------------------------------------------------------------- plot adapter


@dataclass
class PlotStageResult:
    kind: str
    output: Path

    def summary(self) -> str:
        files = sorted(self.output.rglob("*.png")) if self.output.is_dir() else []
        files += [p for p in (self.output.with_suffix(".png"),) if p.exists()]
        return f"plot {self.kind}: {len(files)} PNG file(s) at {self.output}"


def run_plot_stage(
    kind: str,
    input: str | os.PathLike[str] | Sequence[str],  # noqa: A002 - the command's --input
    output: str | os.PathLike[str],
    **options: Any,
) -> PlotStageResult:
    """Any ``taucoffea plot KIND``; options are its flags (``only_suspicious: true``…).

    Parsed through the command's own argument parser, so a pipeline accepts exactly what the
    command line does and reports unknown options the same way.
    """
    import argparse

    from taucoffea.cli import plot as plot_cli

    parser = argparse.ArgumentParser(prog="taucoffea plot", add_help=False, exit_on_error=False)
    plot_cli.add_arguments(parser)
    inputs = ",".join(map(str, input)) if isinstance(input, (list, tuple)) else str(input)
    argv = [kind, "--input", inputs, "--output", str(output)]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value not in (False, None):
            argv += [flag, *(map(str, value) if isinstance(value, (list, tuple)) else [str(value)])]
    try:
        args = parser.parse_args(argv)
    except (argparse.ArgumentError, SystemExit) as err:
        raise ConfigError(f"pipeline stage 'plot' ({kind}): bad options {options!r}: {err}") from None
    plot_cli.run(args)
    return PlotStageResult(kind, Path(output))


# ------------------------------------------------------------------------------ toy adapter


@dataclass
class ToyStageResult:
    output: Path
    generated: bool
    entries: dict[str, int]

    def summary(self) -> str:
        what = "generated" if self.generated else "already present, kept"
        return f"toy {what} in {self.output}: " + ", ".join(f"{k}={v}" for k, v in self.entries.items())


def run_toy_stage(
    output: str | os.PathLike[str],
    *,
    size: int | str | Mapping[str, int] = "small",
    datasets: Sequence[str] | None = None,
    seed: int = 1234,
    progress: bool = False,
    session: ExecutionSession | None = None,  # noqa: ARG001 - the toy writes in-process
    overwrite: bool = False,
) -> ToyStageResult:
    """Make toy TauTuples unless ``output`` already holds exactly this request.

    ``size`` is a named size, a total, or ``{dataset: taus}`` — per-dataset sizes let a
    pipeline make enough of the rare contributions without inflating the others.
    """
    from taucoffea.toy.generator import generate_toy

    out = Path(output)
    request = {"seed": int(seed), "size": dict(size) if isinstance(size, Mapping) else size,
               "datasets": list(datasets) if datasets is not None else None}
    marker = out / "pipeline_toy_request.json"
    if marker.is_file() and json.loads(marker.read_text()) == request:
        manifest = json.loads((out / "toy_manifest.json").read_text())
        return ToyStageResult(out, False, {k: v.get("entries", 0) for k, v in manifest["datasets"].items()})
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise OutputExistsError(f"toy folder '{out}' holds other files than this pipeline's toy request; pass --overwrite")
    if isinstance(size, Mapping) and datasets is not None:
        raise ConfigError("toy stage: give either 'size' per dataset or 'datasets', not both")
    if isinstance(size, Mapping):
        merged: dict[str, Any] = {}
        for i, (ds, n) in enumerate(size.items()):
            manifest = generate_toy(out, seed=seed, size=int(n), datasets=[ds], overwrite=overwrite or i > 0, progress=progress)
            merged = {**manifest, "datasets": {**merged.get("datasets", {}), **manifest["datasets"]}, "size": request["size"]}
        write_text_atomic(out / "toy_manifest.json", json.dumps(merged, indent=2) + "\n")
        manifest = merged
    else:
        manifest = generate_toy(out, seed=seed, size=size, datasets=datasets, overwrite=overwrite, progress=progress)
    write_text_atomic(marker, json.dumps(request) + "\n")
    return ToyStageResult(out, True, {k: v.get("entries", 0) for k, v in manifest["datasets"].items()})
