"""The feature-scaling stage: per-feature (mean, std, limits) as one coffea run, and job merges.

``run_scaling`` replaces the reference's HTCondor jobs + ``merge_feature_scaling_jobs.py``
with one ``Runner`` call whose accumulators merge by themselves; ``merge_scaling_jobs``
still combines runs made separately (e.g. on different sites) and gives the same numbers as
one run over all their files, because every run stores its exact per-file sums.

Outputs in the output folder (``<v>`` = ``Scaling_setup.version``):

* ``scaling_params_v<v>.json`` — ``{var_type: {feature: {cone: {mean, std, lim_min,
  lim_max, sqmean, num}}}}`` over all files (reference §5.3 layout);
* ``scaling_params_v<v>_log_<k>.json`` — the same after the first (k+1)·log_step files
  (jobs, for a merge with ``step``);
* ``quantile_params_v<v>.json`` — ``{var_type: {feature: {cone: {file_id | "all":
  {median, min, max, 1sigma: {left, right}, …}}}}}``;
* ``scaling_sums_v<v>.json`` — exact per-file sums, counts, non-finite counts and the
  feature settings: what a merge needs;
* ``scaling_hists_v<v>.npz`` — the quantile histograms over all files (for merges);
* ``scaling_report_v<v>.json`` — files, skipped files, non-finite values, low statistics.
"""

from __future__ import annotations

import glob
import io
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from taucoffea.algorithms.scaling import Moments, QuantileHist, parameter_entry, snapshot_plan
from taucoffea.columns.atomic import atomic_path, write_text_atomic
from taucoffea.columns.discovery import discover_fileset
from taucoffea.errors import ConfigError, InputError, OutputExistsError, TaucoffeaError
from taucoffea.execution.config import ExecutorConfig
from taucoffea.execution.runner import RunReport, run_processor
from taucoffea.execution.session import ExecutionSession, in_session, resolve_executor
from taucoffea.processors.scaling import ScalingProcessor
from taucoffea.scaling.config import FeatureConfig, load_feature_config, parse_file_range

__all__ = [
    "SUMS_FORMAT",
    "ScalingResult",
    "file_ids",
    "find_input_files",
    "iter_snapshot_files",
    "load_scaling_params",
    "merge_scaling_jobs",
    "natural_key",
    "output_names",
    "result_from_accumulator",
    "run_scaling",
    "write_scaling_outputs",
]

SUMS_FORMAT = "taucoffea-scaling-sums/1"
Key = tuple[str, str, str]


def output_names(version: str) -> dict[str, str]:
    """File names of a run with ``version`` (``log`` contains ``{k}``)."""
    v = f"v{version}"
    return {
        "final": f"scaling_params_{v}.json",
        "log": f"scaling_params_{v}_log_{{k}}.json",
        "quantiles": f"quantile_params_{v}.json",
        "sums": f"scaling_sums_{v}.json",
        "hists": f"scaling_hists_{v}.npz",
        "report": f"scaling_report_{v}.json",
    }


def natural_key(path: str) -> list[Any]:
    """Sort key comparing digit runs as numbers: ``…_2`` before ``…_10``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path))]


def file_ids(paths: Sequence[str]) -> dict[str, str]:
    """Reference file ids (``ShuffleMergeSpectral_12.parquet`` → ``"12"``), unique per run.

    If two files would get the same id, every file is named by its path relative to the
    files' common folder, without suffix, instead.
    """
    ids = {p: Path(p).name.rsplit(".", 1)[0].split("_")[-1] for p in paths}
    if len(set(ids.values())) == len(ids):
        return ids
    common = os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in paths]) if paths else ""
    return {p: os.path.splitext(os.path.relpath(os.path.abspath(p), common))[0] for p in paths}


def find_input_files(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], fmt: str | None = None
) -> tuple[list[str], str]:
    """Absolute input files in natural order, and their format (``parquet`` or ``tautuple``).

    Each input is a file, a folder (searched recursively), or a glob pattern.
    """
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    if fmt not in (None, "auto", "parquet", "tautuple"):
        raise ConfigError(f"input format '{fmt}' is not allowed; allowed: auto, parquet, tautuple")
    fmt = None if fmt == "auto" else fmt
    suffixes = {"parquet": ".parquet", "tautuple": ".root"}
    files: list[str] = []
    for item in items:
        text = os.fspath(item)
        if not os.path.exists(text) and any(c in text for c in "*?["):
            matched = [os.path.abspath(p) for p in glob.glob(text) if os.path.isfile(p)]
            if not matched:
                raise InputError(f"no input files match '{text}'")
            files += matched
            continue
        if not os.path.exists(text):
            raise InputError(f"input '{text}' does not exist")
        if os.path.isfile(text):
            files.append(os.path.abspath(text))
            continue
        wanted = [fmt] if fmt else ["parquet", "tautuple"]
        for f in wanted:
            try:
                found = discover_fileset(text, suffix=suffixes[f])
            except InputError:
                continue
            files += [os.path.abspath(p) for v in found.values() for p in v]
            break
        else:
            raise InputError(f"no {' or '.join(suffixes[w] for w in wanted)} files under '{text}'")
    files = sorted(set(files), key=natural_key)
    kinds = {("parquet" if f.endswith(".parquet") else "tautuple") for f in files}
    if fmt is None:
        if len(kinds) > 1:
            raise InputError("inputs mix parquet and ROOT files; give --format or separate inputs")
        fmt = kinds.pop()
    return files, fmt


# --------------------------------------------------------------------------------------------
# results


def _lims_for(spec: Mapping[str, Any], cone: str) -> tuple[float, float] | None:
    lims = spec.get("lims")
    if lims is None:
        return None
    value = lims.get(cone, lims.get("global"))
    return None if value is None else (float(value[0]), float(value[1]))


def build_params(specs: Mapping[str, Any], moments: Mapping[Key, Moments]) -> dict[str, Any]:
    """The parameter JSON (reference §5.2 formulas) from feature settings and summed moments."""
    out: dict[str, Any] = {}
    for t, feats in specs.items():
        out[t] = {}
        for name, spec in feats.items():
            scaling = spec["scaling"]
            if scaling in ("no_scaling", "categorical"):
                entry = {"global": parameter_entry(scaling, None)}
            elif scaling == "linear":
                cones = spec["cones"] if spec.get("lims_per_cone") else ["global"]
                entry = {c: parameter_entry("linear", _lims_for(spec, c)) for c in cones}
            else:
                entry = {c: parameter_entry("normal", _lims_for(spec, c), moments.get((t, name, c))) for c in spec["cones"]}
            out[t][name] = entry
    return out


def _stat_keys(specs: Mapping[str, Any]) -> list[Key]:
    return [
        (t, name, c)
        for t, feats in specs.items()
        for name, spec in feats.items()
        if spec["scaling"] in ("linear", "normal")
        for c in spec["cones"]
    ]


@dataclass
class ScalingResult:
    """Everything a scaling run (or merge) produced, in memory."""

    version: str
    specs: dict[str, Any]
    cone_definition: dict[str, float]
    files: list[str]
    entries: dict[str, int]
    per_file: dict[str, dict[Key, Moments]]
    nonfinite_per_file: dict[str, dict[Key, list[int]]]
    params: dict[str, Any]
    snapshots: list[tuple[int, int, dict[str, Any]]]  # (k, number of files or jobs, params)
    quantiles: dict[str, Any] | None
    total_hists: dict[Key, QuantileHist] | None
    quantile_mode: str
    report: RunReport | None = None
    bad_files: list[dict[str, str]] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)
    snapshot_unit: str = "files"

    @property
    def file_ids(self) -> dict[str, str]:
        return file_ids(self.files)

    def nonfinite(self) -> dict[Key, list[int]]:
        """[nan, +inf, −inf] per (type, feature, cone), summed over files; only non-zero."""
        total: dict[Key, list[int]] = {}
        for per in self.nonfinite_per_file.values():
            for key, counts in per.items():
                acc = total.setdefault(key, [0, 0, 0])
                for i in range(3):
                    acc[i] += int(counts[i])
        return {k: v for k, v in total.items() if any(v)}

    def low_statistics(self) -> list[Key]:
        """Normal features whose cone saw at most one value (mean/std left null)."""
        return [
            (t, f, c)
            for t, feats in self.params.items()
            for f, cones in feats.items()
            for c, e in cones.items()
            if e.get("num") is not None and e["mean"] is None
        ]

    def summary(self) -> str:
        n_taus = sum(self.entries.values())
        every = f" every {self.snapshots[0][1]} {self.snapshot_unit}" if self.snapshots else ""
        lines = [f"{len(self.files)} file(s), {n_taus} taus; {len(self.snapshots)} snapshot(s){every}"]
        for t, feats in self.params.items():
            n_norm = sum(1 for cones in feats.values() for e in cones.values() if e.get("num") is not None)
            lines.append(f"  {t:<16} {len(feats):>3} features, {n_norm:>3} normal (feature, cone) entries")
        for key, (nan, pinf, ninf) in sorted(self.nonfinite().items()):
            lines.append(f"  warning: {'/'.join(key)}: {nan} NaN, {pinf} +inf, {ninf} -inf excluded")
        low = self.low_statistics()
        if low:
            lines.append(f"  low statistics (<= 1 value, mean/std null): {', '.join('/'.join(k) for k in low)}")
        for bad in self.bad_files:
            lines.append(f"  skipped {bad['path']}: {bad['reason']}")
        return "\n".join(lines)


def _cumulative(per_file: Mapping[str, Mapping[Key, Moments]], groups: Sequence[Sequence[str]]) -> list[dict[Key, Moments]]:
    """Running totals after each group of files (exact, so the order of addition is free)."""
    out: list[dict[Key, Moments]] = []
    acc: dict[Key, Moments] = {}
    for group in groups:
        for path in group:
            for key, m in per_file.get(path, {}).items():
                acc[key] = acc[key] + m if key in acc else m
        out.append(dict(acc))
    return out


def _snapshots(
    specs: Mapping[str, Any], per_file: Mapping[str, Mapping[Key, Moments]], groups: Sequence[Sequence[str]], step: int | None
) -> tuple[dict[str, Any], list[tuple[int, int, dict[str, Any]]]]:
    totals = _cumulative(per_file, groups)
    plan = snapshot_plan(len(groups), step)
    snaps = [(k, n, build_params(specs, totals[n - 1])) for k, n in plan if k is not None]
    final = build_params(specs, totals[-1] if totals else {})
    return final, snaps


def _quantile_json(
    specs: Mapping[str, Any],
    hists_per_file: Mapping[str, Mapping[Key, QuantileHist]] | None,
    total: Mapping[Key, QuantileHist] | None,
    ids: Mapping[str, str],
    files: Sequence[str],
    per_file_summaries: Mapping[str, Mapping[Key, Any]] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for t, name, c in _stat_keys(specs):
        entry: dict[str, Any] = {}
        for path in files:
            if per_file_summaries is not None and path in per_file_summaries:
                summary = per_file_summaries[path].get((t, name, c))
                if summary is not None:
                    entry[ids[path]] = summary
            elif hists_per_file is not None and path in hists_per_file:
                entry[ids[path]] = hists_per_file[path].get((t, name, c), QuantileHist()).summary()
        if total is not None:
            entry["all"] = total.get((t, name, c), QuantileHist()).summary()
        out.setdefault(t, {}).setdefault(name, {})[c] = entry
    return out


def result_from_accumulator(
    acc: Mapping[str, Any],
    config: FeatureConfig,
    files: Sequence[str],
    *,
    var_types: Sequence[str] | None = None,
    log_step: int | None = None,
    version: str | None = None,
    quantiles: str | None = None,
) -> ScalingResult:
    """Turn a :class:`ScalingProcessor` output into parameters, snapshots and quantiles.

    ``files`` gives the order (snapshots count files in this order); files absent from the
    accumulator (skipped) are left out.
    """
    mode = quantiles or config.setup.quantiles
    version = str(version if version is not None else config.setup.version)
    step = log_step if log_step is not None else config.setup.log_step
    specs = _specs_for(config, var_types)
    per_acc = acc.get("files", {}) if acc else {}
    done = [f for f in files if f in per_acc]
    per_file = {f: dict(per_acc[f].get("moments", {})) for f in done}
    nonfinite = {f: {k: [int(x) for x in v] for k, v in per_acc[f].get("nonfinite", {}).items()} for f in done}
    entries = {f: int(per_acc[f].get("entries", 0)) for f in done}
    final, snaps = _snapshots(specs, per_file, [[f] for f in done], step)
    ids = file_ids(done)
    hists_per_file = None
    summaries = None
    total = None
    if mode in ("per_file", "total"):
        total = dict(acc.get("hists", {})) if acc else {}
    if mode == "per_file":
        # files read whole came back summarised (their histograms are in the total already);
        # files read in parts came back as per-file histograms: summarise and add them here
        summaries = {f: per_acc[f]["summaries"] for f in done if "summaries" in per_acc[f]}
        hists_per_file = {f: dict(per_acc[f].get("hists", {})) for f in done if "summaries" not in per_acc[f]}
        for f in done:
            for key, h in hists_per_file.get(f, {}).items():
                total[key] = total[key] + h if key in total else h
    quantile_json = None if mode == "none" else _quantile_json(specs, hists_per_file, total, ids, done, summaries)
    return ScalingResult(
        version=version,
        specs=specs,
        cone_definition=dict(config.cone_definition.__dict__),
        files=done,
        entries=entries,
        per_file=per_file,
        nonfinite_per_file=nonfinite,
        params=final,
        snapshots=snaps,
        quantiles=quantile_json,
        total_hists=total,
        quantile_mode=mode,
    )


def _specs_for(config: FeatureConfig, var_types: Sequence[str] | None) -> dict[str, Any]:
    specs = config.specs_json()
    if var_types is not None:
        config.active(var_types)  # validates the names
        specs = {t: specs[t] for t in var_types}
    return specs


# --------------------------------------------------------------------------------------------
# writing and reading


def _dump(obj: Any) -> str:
    return json.dumps(obj, indent=4, allow_nan=True) + "\n"


def _key_tree(items: Mapping[Key, Any], convert: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for (t, f, c), value in items.items():
        out.setdefault(t, {}).setdefault(f, {})[c] = convert(value)
    return out


def _key_items(tree: Mapping[str, Any], convert: Any) -> dict[Key, Any]:
    return {(t, f, c): convert(v) for t, feats in tree.items() for f, cones in feats.items() for c, v in cones.items()}


def _targets(out: Path, version: str, n_logs: int, mode: str) -> dict[str, Path]:
    names = output_names(version)
    targets = {"final": out / names["final"], "sums": out / names["sums"], "report": out / names["report"]}
    if mode != "none":
        targets["quantiles"] = out / names["quantiles"]
        targets["hists"] = out / names["hists"]
    for k in range(n_logs):
        targets[f"log{k}"] = out / names["log"].format(k=k)
    return targets


def check_outputs(output: str | os.PathLike[str], version: str, overwrite: bool) -> None:
    """Refuse a folder that already holds outputs of this version (unless ``overwrite``)."""
    out = Path(output)
    if overwrite or not out.exists():
        return
    names = output_names(version)
    existing = [out / n for k, n in names.items() if k != "log" and (out / n).exists()]
    existing += sorted(out.glob(names["log"].format(k="*")))
    if existing:
        raise OutputExistsError(
            f"output '{existing[0]}' already exists ({len(existing)} scaling output file(s) of version "
            f"{version} in '{out}'); pass --overwrite (overwrite=True) to replace them"
        )


def write_scaling_outputs(result: ScalingResult, output: str | os.PathLike[str], *, overwrite: bool = False) -> list[Path]:
    """Write every output file of ``result`` atomically; returns the paths written."""
    out = Path(output)
    check_outputs(out, result.version, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    names = output_names(result.version)
    written: list[Path] = []
    for k, n, params in result.snapshots:
        written.append(write_text_atomic(out / names["log"].format(k=k), _dump(params)))
    # stale snapshots of an overwritten earlier run would confuse the convergence plot
    keep = {p.name for p in written}
    for stale in out.glob(names["log"].format(k="*")):
        if stale.name not in keep:
            stale.unlink()
    written.append(write_text_atomic(out / names["final"], _dump(result.params)))
    if result.quantiles is not None:
        written.append(write_text_atomic(out / names["quantiles"], _dump(result.quantiles)))
    if result.total_hists is not None:
        written.append(_write_hists(out / names["hists"], result.total_hists))
    else:
        (out / names["hists"]).unlink(missing_ok=True)
    written.append(write_text_atomic(out / names["sums"], _dump(_sums_json(result))))
    written.append(write_text_atomic(out / names["report"], _dump(_report_json(result))))
    result.outputs = written
    return written


def _write_hists(path: Path, hists: Mapping[Key, QuantileHist]) -> Path:
    arrays: dict[str, np.ndarray] = {}
    for i, (key, h) in enumerate(hists.items()):
        arrays[f"key{i}"] = np.array(list(key))
        for name, arr in h.to_arrays().items():
            arrays[f"{name}{i}"] = arr
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())
    return path


def _read_hists(path: Path) -> dict[Key, QuantileHist]:
    out: dict[Key, QuantileHist] = {}
    with np.load(path, allow_pickle=False) as data:
        i = 0
        while f"key{i}" in data:
            key = tuple(str(x) for x in data[f"key{i}"])
            out[key] = QuantileHist.from_arrays({n: data[f"{n}{i}"] for n in ("keys", "counts", "mins", "maxs")})  # type: ignore[index]
            i += 1
    return out


def _sums_json(result: ScalingResult) -> dict[str, Any]:
    ids = result.file_ids
    return {
        "format": SUMS_FORMAT,
        "version": result.version,
        "quantiles": result.quantile_mode,
        "cone_definition": result.cone_definition,
        "features": result.specs,
        "files": [
            {
                "path": f,
                "id": ids[f],
                "entries": result.entries.get(f, 0),
                "moments": _key_tree(result.per_file.get(f, {}), Moments.to_json),
                "nonfinite": _key_tree(result.nonfinite_per_file.get(f, {}), list),
            }
            for f in result.files
        ],
    }


def _report_json(result: ScalingResult) -> dict[str, Any]:
    ids = result.file_ids
    return {
        "version": result.version,
        "files": [{"path": f, "id": ids[f], "entries": result.entries.get(f, 0)} for f in result.files],
        "skipped_files": result.bad_files,
        "snapshots": [{"log": k, result.snapshot_unit: n} for k, n, _ in result.snapshots],
        "nonfinite_excluded": _key_tree(
            result.nonfinite(), lambda v: {"nan": v[0], "posinf": v[1], "neginf": v[2]}
        ),
        "low_statistics": ["/".join(k) for k in result.low_statistics()],
        "run": asdict(result.report) if result.report is not None else None,
    }


def load_scaling_params(path: str | os.PathLike[str], *, expand_cones: bool = False) -> dict[str, Any]:
    """Read a parameter JSON with the "-inf"/"inf" limit strings turned into floats.

    ``expand_cones`` copies a ``global`` entry of a cone type to ``inner`` and ``outer`` (the
    reference's loader does this for no_scaling, categorical and single-range linear).
    """
    data = json.loads(Path(path).read_text())
    for feats in data.values():
        for cones in feats.values():
            for entry in cones.values():
                for k in ("lim_min", "lim_max"):
                    if isinstance(entry.get(k), str):
                        entry[k] = float(entry[k])
    if expand_cones:
        for feats in data.values():
            if any(set(c) & {"inner", "outer"} for c in feats.values()):
                for name, cones in feats.items():
                    if set(cones) == {"global"}:
                        feats[name] = {"inner": dict(cones["global"]), "outer": dict(cones["global"])}
    return data


# --------------------------------------------------------------------------------------------
# the stage


def _taucoffea_cause(err: BaseException) -> TaucoffeaError | None:
    """The first of our own errors in an exception's cause/context chain."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, TaucoffeaError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def run_scaling(
    config: FeatureConfig | str | os.PathLike[str] | Mapping[str, Any],
    input_path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None,
    output: str | os.PathLike[str] | None,
    *,
    fmt: str | None = None,
    file_range: str | Sequence[int] | None = None,
    log_step: int | None = None,
    version: str | int | None = None,
    var_types: Sequence[str] | None = None,
    quantiles: str | None = None,
    executor: ExecutorConfig | str | None = None,
    chunksize: int | None = None,
    overwrite: bool = False,
    session: ExecutionSession | None = None,
) -> ScalingResult:
    """Compute scaling parameters over the input files; write them to ``output`` (None: don't).

    ``input_path`` None uses ``Scaling_setup.file_path``. Files are sorted naturally, then
    sliced by ``file_range`` (``"a:b"`` or ``[a, b]``; config default). Existing outputs of the
    same version are refused before any work unless ``overwrite``.
    """
    cfg = load_feature_config(config)
    version = str(version if version is not None else cfg.setup.version)
    mode = quantiles or cfg.setup.quantiles
    if input_path is None:
        if not cfg.setup.file_path:
            raise ConfigError(f"{cfg.source}: no input given and Scaling_setup.file_path is not set")
        input_path = cfg.setup.file_path
    files, fmt = find_input_files(input_path, fmt)
    rng = parse_file_range(file_range, "file_range") if file_range is not None else cfg.setup.file_range
    if rng is not None:
        a, b = rng
        files = files[a:] if b == -1 else files[a:b]
        if not files:
            raise InputError(f"file_range {a}:{b} selects no files")
    if output is not None:
        check_outputs(output, version, overwrite)
    exec_cfg = resolve_executor(executor, session)
    proc = ScalingProcessor(cfg, var_types=var_types, quantiles=mode)
    treename = None if fmt == "parquet" else (cfg.setup.tree_name or "taus")
    stage_config = {
        "config": cfg.digest(), "files": files, "fmt": fmt, "quantiles": mode,
        "var_types": list(var_types) if var_types is not None else None,
    }

    def _run(s: ExecutionSession) -> tuple[Any, RunReport]:
        return run_processor(
            s, proc, {"scaling": files}, treename=treename, stage="scaling", stage_config=stage_config,
            branches=proc.columns, chunksize=chunksize, compress=False,  # per-file sums grow with the files
        )

    try:
        acc, report = in_session(session, exec_cfg, _run)
    except Exception as err:  # coffea wraps processor errors in a bare Exception
        cause = _taucoffea_cause(err)
        if cause is None:
            raise
        raise cause from err
    result = result_from_accumulator(
        acc or {}, cfg, files, var_types=var_types, log_step=log_step, version=version, quantiles=mode
    )
    result.report = report
    result.bad_files = [{"path": b.path, "reason": b.reason} for b in report.bad_files]
    missing = [f for f in report.files.get("scaling", []) if f not in result.files]
    result.bad_files += [{"path": f, "reason": "produced no output (skipped while processing)"} for f in missing]
    if output is not None:
        write_scaling_outputs(result, output, overwrite=overwrite)
    return result


# --------------------------------------------------------------------------------------------
# merging separately made runs


@dataclass
class _Job:
    folder: Path
    sums: dict[str, Any]
    quantiles: dict[str, Any] | None
    hists: dict[Key, QuantileHist] | None


def _load_job(folder: Path, version: str | None) -> _Job:
    pattern = f"scaling_sums_v{version}.json" if version is not None else "scaling_sums_v*.json"
    found = sorted(folder.glob(pattern))
    if not found:
        raise InputError(f"no {pattern} in '{folder}' (is it a `taucoffea scaling compute` output?)")
    if len(found) > 1:
        raise ConfigError(f"'{folder}' holds several versions {[p.name for p in found]}; pass --version")
    sums = json.loads(found[0].read_text())
    if sums.get("format") != SUMS_FORMAT:
        raise InputError(f"'{found[0]}' is not a {SUMS_FORMAT} file (format {sums.get('format')!r})")
    names = output_names(sums["version"])
    q_path, h_path = folder / names["quantiles"], folder / names["hists"]
    quantiles = json.loads(q_path.read_text()) if q_path.exists() else None
    hists = _read_hists(h_path) if h_path.exists() else None
    return _Job(folder, sums, quantiles, hists)


def _first_difference(a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    for t in sorted(set(a) | set(b)):
        if t not in a or t not in b:
            return f"var type '{t}'"
        for f in list(a[t]) + [x for x in b[t] if x not in a[t]]:
            if a[t].get(f) != b[t].get(f):
                return f"feature '{t}/{f}': {a[t].get(f)} vs {b[t].get(f)}"
    return "feature order"


def merge_scaling_jobs(
    inputs: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str] | None,
    *,
    step: int | None = None,
    version: str | int | None = None,
    overwrite: bool = False,
) -> ScalingResult:
    """Merge ``taucoffea scaling compute`` outputs (folders or glob patterns) into one.

    Jobs are taken in natural order of their folder names (the reference used unsorted glob
    order, A.14-like). The result equals one run over all their files: the exact per-file
    sums are added, so not even rounding differs. ``step`` writes ``…_log_<k>.json`` with the
    first (k+1)·step jobs, as ``merge_feature_scaling_jobs.py --step`` did.
    """
    folders: list[Path] = []
    for item in inputs:
        text = os.fspath(item)
        if not os.path.exists(text) and any(c in text for c in "*?["):
            folders += [Path(p) for p in glob.glob(text) if os.path.isdir(p)]
        else:
            folders.append(Path(text))
    folders = sorted(set(folders), key=lambda p: natural_key(str(p)))
    if not folders:
        raise InputError(f"no job folders match {list(map(str, inputs))}")
    if step is not None and (isinstance(step, bool) or step < 1):
        raise ConfigError(f"step must be an integer >= 1, got {step!r}")
    jobs = [_load_job(f, None if version is None else str(version)) for f in folders]
    ref = jobs[0].sums
    for job in jobs[1:]:
        s = job.sums
        if s["version"] != ref["version"]:
            raise ConfigError(f"jobs '{jobs[0].folder}' and '{job.folder}' have versions {ref['version']} and {s['version']}")
        if s["cone_definition"] != ref["cone_definition"]:
            raise ConfigError(f"jobs '{jobs[0].folder}' and '{job.folder}' use different cone definitions")
        if s["features"] != ref["features"]:
            raise ConfigError(
                f"jobs '{jobs[0].folder}' and '{job.folder}' were run with different feature settings: "
                f"{_first_difference(ref['features'], s['features'])}"
            )
    seen: dict[str, Path] = {}
    for job in jobs:
        for rec in job.sums["files"]:
            if rec["path"] in seen:
                raise ConfigError(f"file '{rec['path']}' is in both '{seen[rec['path']]}' and '{job.folder}'")
            seen[rec["path"]] = job.folder
    specs = ref["features"]
    files: list[str] = []
    groups: list[list[str]] = []
    per_file: dict[str, dict[Key, Moments]] = {}
    nonfinite: dict[str, dict[Key, list[int]]] = {}
    entries: dict[str, int] = {}
    summaries: dict[str, dict[Key, Any]] = {}
    for job in jobs:
        group = []
        job_ids = {rec["path"]: rec["id"] for rec in job.sums["files"]}
        for rec in job.sums["files"]:
            path = rec["path"]
            group.append(path)
            per_file[path] = _key_items(rec["moments"], Moments.from_json)
            nonfinite[path] = _key_items(rec["nonfinite"], list)
            entries[path] = int(rec["entries"])
            if job.quantiles is not None:
                fid = job_ids[path]
                summaries[path] = {
                    (t, f, c): by_file[fid]
                    for t, feats in job.quantiles.items()
                    for f, cones in feats.items()
                    for c, by_file in cones.items()
                    if fid in by_file
                }
        files += group
        groups.append(group)
    final, snaps = _snapshots(specs, per_file, groups, step)
    modes = {job.sums.get("quantiles") for job in jobs}
    mode = modes.pop() if len(modes) == 1 else "total"
    total: dict[Key, QuantileHist] | None = None
    if all(job.hists is not None for job in jobs):
        total = {}
        for job in jobs:
            assert job.hists is not None
            for key, h in job.hists.items():
                total[key] = total[key] + h if key in total else h
    elif mode != "none":
        mode = "none"
    ids = file_ids(files)
    quantile_json = None
    if mode != "none":
        quantile_json = _quantile_json(specs, None, total, ids, files, summaries if mode == "per_file" else None)
    result = ScalingResult(
        version=str(ref["version"]),
        specs=specs,
        cone_definition=ref["cone_definition"],
        files=files,
        entries=entries,
        per_file=per_file,
        nonfinite_per_file=nonfinite,
        params=final,
        snapshots=snaps,
        quantiles=quantile_json,
        total_hists=total,
        quantile_mode=mode,
        snapshot_unit="jobs",
    )
    if output is not None:
        write_scaling_outputs(result, output, overwrite=overwrite)
    return result


def iter_snapshot_files(folder: str | os.PathLike[str], version: str | None = None) -> list[Path]:
    """``…_log_0 … _log_{n−1}`` in index order, then the final file (convergence plots)."""
    out = Path(folder)
    if version is None:
        finals = sorted(out.glob("scaling_params_v*.json"))
        finals = [p for p in finals if "_log_" not in p.name]
        if len(finals) != 1:
            raise InputError(f"expected one scaling_params_v<version>.json in '{out}', found {[p.name for p in finals]}")
        version = finals[0].name[len("scaling_params_v") : -len(".json")]
    names = output_names(str(version))
    logs = list(out.glob(names["log"].format(k="*")))
    prefix = names["log"].split("{k}")[0]
    logs.sort(key=lambda p: int(p.name[len(prefix) : -len(".json")]))
    final = out / names["final"]
    if not final.exists():
        raise InputError(f"'{final}' does not exist")
    return logs + [final]

