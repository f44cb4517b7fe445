"""``performance.json`` and ``working_points.json``: the evaluation records of a run.

``performance.json`` keeps the original layout (spec §8.2) so old tooling can read it::

    {"name": <discriminator>, ...metadata..., "metrics": {"roc_curve": [...], "roc_wp": [...]}}

Each entry holds the bin key ``pt_min, pt_max, eta_min, eta_max, dm_bin, vs_type,
dataset_alias``, ``auc_score`` (null for WP curves), ``false_positive_rate``,
``true_positive_rate`` and optionally ``thresholds``, ``wp_names`` and the error lists
``{false,true}_positive_rate_{up,down}``. An entry with the same key **replaces** the old one,
so re-running the evaluation of one bin never duplicates it.

Differences from the original, on purpose:
* ``*_down`` is the distance to the lower edge and ``*_up`` to the upper one (the original
  swapped the names and compensated when plotting, Appendix A.18);
* ``dm_bin`` is stored sorted, bin edges as floats, so keys compare by value;
* float lists are written with the shortest repr that round-trips (the original used
  ``{:.4e}``, available as ``float_format=".4e"``), non-finite values as ``null`` — the
  first ROC threshold is ``+inf``, which the original's encoder wrote as the invalid JSON
  token ``inf``; :func:`roc_from_entry` turns a ``null`` threshold back into ``+inf``;
* keys are written in a fixed order and entries sorted by their key, so the file depends
  only on its content, not on the order bins were evaluated in.
"""

from __future__ import annotations

import copy
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from correctionlib import schemav2

from taucoffea.algorithms.roc import RocCurve
from taucoffea.columns.atomic import write_text_atomic
from taucoffea.errors import InputError

__all__ = [
    "CURVE_TYPES",
    "KEY_FIELDS",
    "add_entry",
    "dumps_performance",
    "load_performance",
    "load_working_points",
    "new_performance",
    "roc_from_entry",
    "save_performance",
    "save_working_points",
    "save_wp_correctionlib",
    "select_entry",
    "wp_to_correctionlib",
]

CURVE_TYPES: tuple[str, ...] = ("roc_curve", "roc_wp")
KEY_FIELDS: tuple[str, ...] = (
    "pt_min", "pt_max", "eta_min", "eta_max", "dm_bin", "vs_type", "dataset_alias",
)  # fmt: skip
_DATA_FIELDS: tuple[str, ...] = (
    "auc_score", "false_positive_rate", "true_positive_rate", "thresholds", "wp_names",
    "false_positive_rate_up", "false_positive_rate_down",
    "true_positive_rate_up", "true_positive_rate_down",
)  # fmt: skip
_FLOAT_LISTS = {f for f in _DATA_FIELDS if f not in ("auc_score", "wp_names")}


# --------------------------------------------------------------------------- entries


def new_performance(name: str, **metadata: Any) -> dict[str, Any]:
    """An empty record for discriminator ``name`` (extra top-level keys, e.g. ``period``)."""
    if "metrics" in metadata:
        raise InputError("new_performance: 'metrics' is reserved")
    return {"name": str(name), **metadata, "metrics": {t: [] for t in CURVE_TYPES}}


def _norm_key(
    pt_min: float, pt_max: float, eta_min: float, eta_max: float,
    dm_bin: Sequence[int], vs_type: str, dataset_alias: str,
) -> dict[str, Any]:  # fmt: skip
    key = {
        "pt_min": float(pt_min), "pt_max": float(pt_max),
        "eta_min": float(eta_min), "eta_max": float(eta_max),
        "dm_bin": sorted(int(d) for d in dm_bin),
        "vs_type": str(vs_type), "dataset_alias": str(dataset_alias),
    }  # fmt: skip
    if not key["vs_type"] or not key["dataset_alias"]:
        raise InputError("performance entry: vs_type and dataset_alias must be non-empty")
    return key


def _matches(entry: Mapping[str, Any], selection: Mapping[str, Any]) -> bool:
    for k, v in selection.items():
        if k not in entry:
            return False
        ev = entry[k]
        if k == "dm_bin":
            if sorted(int(d) for d in ev) != sorted(int(d) for d in v):
                return False
        elif k in ("pt_min", "pt_max", "eta_min", "eta_max"):
            if float(ev) != float(v):
                return False
        elif ev != v:
            return False
    return True


def add_entry(
    perf: Mapping[str, Any],
    curve_type: str,
    roc: RocCurve,
    *,
    pt_min: float,
    pt_max: float,
    eta_min: float,
    eta_max: float,
    dm_bin: Sequence[int],
    vs_type: str,
    dataset_alias: str,
    auc_score: float | None = None,
    wp_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """A copy of ``perf`` with the curve stored under its bin key, replacing any entry with
    the same key (and any duplicates an older file might hold)."""
    if curve_type not in CURVE_TYPES:
        raise InputError(f"add_entry: curve_type '{curve_type}', allowed: {list(CURVE_TYPES)}")
    key = _norm_key(pt_min, pt_max, eta_min, eta_max, dm_bin, vs_type, dataset_alias)
    entry: dict[str, Any] = dict(key)
    entry["auc_score"] = None if auc_score is None else float(auc_score)
    entry["false_positive_rate"] = roc.fpr.tolist()
    entry["true_positive_rate"] = roc.tpr.tolist()
    if roc.thresholds is not None:
        entry["thresholds"] = roc.thresholds.tolist()
    if wp_names is not None:
        if len(wp_names) != len(roc):
            raise InputError(f"add_entry: {len(wp_names)} wp_names for {len(roc)} points")
        entry["wp_names"] = [str(n) for n in wp_names]
    for prefix, err in (("false_positive_rate", roc.fpr_err), ("true_positive_rate", roc.tpr_err)):
        if err is not None:
            entry[f"{prefix}_down"] = err[0].tolist()
            entry[f"{prefix}_up"] = err[1].tolist()

    out = copy.deepcopy(dict(perf))
    metrics = out.setdefault("metrics", {})
    if not isinstance(metrics, dict):
        raise InputError("add_entry: 'metrics' of the performance record is not a mapping")
    kept = [e for e in metrics.get(curve_type, []) if not _matches(e, key)]
    metrics[curve_type] = [*kept, entry]
    return out


def select_entry(
    perf: Mapping[str, Any], curve_type: str, **selection: Any
) -> dict[str, Any] | None:
    """The single entry of ``curve_type`` matching ``selection`` (None if there is none).

    Like the original ``select_curve`` it raises when more than one entry matches — with
    :func:`add_entry` that can only happen for a partial selection or a hand-edited file.
    """
    entries = perf.get("metrics", {}).get(curve_type, [])
    found = [e for e in entries if _matches(e, selection)]
    if len(found) > 1:
        sel = ", ".join(f"{k}={v!r}" for k, v in selection.items())
        raise InputError(f"select_entry: {len(found)} '{curve_type}' entries match {sel}")
    return found[0] if found else None


def _floats(values: Sequence[Any] | None, null_as: float) -> np.ndarray:
    return np.array([null_as if v is None else float(v) for v in values], dtype=np.float64)


def roc_from_entry(entry: Mapping[str, Any]) -> RocCurve:
    """Rebuild a :class:`RocCurve` from an entry (``null`` threshold → ``+inf``)."""
    try:
        fpr = _floats(entry["false_positive_rate"], math.nan)
        tpr = _floats(entry["true_positive_rate"], math.nan)
    except KeyError as err:
        raise InputError(f"performance entry lacks '{err.args[0]}'") from None
    thr = entry.get("thresholds")
    errs = []
    for prefix in ("false_positive_rate", "true_positive_rate"):
        if f"{prefix}_down" in entry and f"{prefix}_up" in entry:
            errs.append(np.vstack([_floats(entry[f"{prefix}_down"], math.nan),
                                   _floats(entry[f"{prefix}_up"], math.nan)]))  # fmt: skip
        else:
            errs.append(None)
    return RocCurve(
        fpr=fpr,
        tpr=tpr,
        thresholds=None if thr is None else _floats(thr, math.inf),
        fpr_err=errs[0],
        tpr_err=errs[1],
    )


# --------------------------------------------------------------------------- JSON writing


def _fmt_float(x: float, float_format: str | None) -> str:
    x = float(x)
    if not math.isfinite(x):
        return "null"
    return repr(x) if float_format is None else format(x, float_format)


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, bool, int, float, np.integer, np.floating))


def _dump(obj: Any, level: int, float_format: str | None) -> str:
    pad, pad1 = "    " * level, "    " * (level + 1)
    if isinstance(obj, Mapping):
        if not obj:
            return "{}"
        items = [f"{pad1}{json.dumps(str(k))}: {_dump(v, level + 1, float_format)}"
                 for k, v in obj.items()]  # fmt: skip
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, np.ndarray):
        obj = obj.tolist()
    if isinstance(obj, (list, tuple)):
        if not obj:
            return "[]"
        if all(_is_scalar(v) for v in obj):
            return "[" + ", ".join(_dump(v, level, float_format) for v in obj) + "]"
        return "[\n" + ",\n".join(pad1 + _dump(v, level + 1, float_format) for v in obj) + (
            "\n" + pad + "]"
        )
    if obj is None:
        return "null"
    if isinstance(obj, (bool, np.bool_)):
        return "true" if obj else "false"
    if isinstance(obj, (int, np.integer)):
        return str(int(obj))
    if isinstance(obj, (float, np.floating)):
        return _fmt_float(obj, float_format)
    if isinstance(obj, str):
        return json.dumps(obj, ensure_ascii=False)
    raise InputError(f"performance.json: cannot serialise value of type {type(obj).__name__}")


def _entry_sort_key(entry: Mapping[str, Any]) -> tuple[Any, ...]:
    return (
        str(entry.get("vs_type", "")), str(entry.get("dataset_alias", "")),
        [int(d) for d in entry.get("dm_bin", [])],
        float(entry.get("eta_min", 0.0)), float(entry.get("eta_max", 0.0)),
        float(entry.get("pt_min", 0.0)), float(entry.get("pt_max", 0.0)),
    )  # fmt: skip


def _canonical(perf: Mapping[str, Any]) -> dict[str, Any]:
    metrics = perf.get("metrics", {})
    out: dict[str, Any] = {"name": perf.get("name")}
    for k in sorted(k for k in perf if k not in ("name", "metrics")):
        out[k] = perf[k]
    # Both standard curve types are always written (possibly empty) so that a record's text
    # does not depend on whether it was created empty or grown from nothing.
    ordered_types = [*CURVE_TYPES, *sorted(t for t in metrics if t not in CURVE_TYPES)]
    out["metrics"] = {}
    for t in ordered_types:
        entries = []
        for e in sorted(metrics.get(t, []), key=_entry_sort_key):
            fixed = [k for k in (*KEY_FIELDS, *_DATA_FIELDS) if k in e]
            rest = sorted(k for k in e if k not in fixed)
            entries.append({k: e[k] for k in (*fixed, *rest)})
        out["metrics"][t] = entries
    return out


def dumps_performance(perf: Mapping[str, Any], float_format: str | None = None) -> str:
    """The canonical text of a performance record (fixed key order, one line per list)."""
    if "metrics" not in perf or not isinstance(perf["metrics"], Mapping):
        raise InputError("performance record has no 'metrics' mapping")
    return _dump(_canonical(perf), 0, float_format) + "\n"


def save_performance(
    perf: Mapping[str, Any],
    path: str | os.PathLike[str],
    *,
    float_format: str | None = None,
    overwrite: bool = True,
) -> Path:
    """Write ``perf`` atomically. ``overwrite`` defaults to True because the file is
    read, updated with :func:`add_entry` and rewritten, as in the original."""
    return write_text_atomic(path, dumps_performance(perf, float_format), overwrite=overwrite)


def _load_json(path: str | os.PathLike[str], what: str) -> Any:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputError(f"{what} '{path}' does not exist") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{what} '{path}' is not valid JSON: {err}") from None


def load_performance(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and structurally check a ``performance.json``."""
    data = _load_json(path, "performance file")
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
        raise InputError(f"performance file '{path}': expected an object with a 'metrics' object")
    for t, entries in data["metrics"].items():
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise InputError(f"performance file '{path}': metrics.{t} must be a list of objects")
        for i, e in enumerate(entries):
            missing = [k for k in (*KEY_FIELDS, "false_positive_rate", "true_positive_rate")
                       if k not in e]  # fmt: skip
            if missing:
                raise InputError(
                    f"performance file '{path}': metrics.{t}[{i}] lacks {', '.join(missing)}"
                )
    return data


# --------------------------------------------------------------------------- working points


def _check_wps(wps: Mapping[str, Mapping[str, float]], where: str) -> None:
    if not isinstance(wps, Mapping) or not wps:
        raise InputError(f"{where}: expected a non-empty object {{vs_type: {{WP: threshold}}}}")
    for vs, table in wps.items():
        if not isinstance(table, Mapping) or not table:
            raise InputError(f"{where}: '{vs}' must map WP names to thresholds")
        for wp, thr in table.items():
            if isinstance(thr, bool) or not isinstance(thr, (int, float, np.floating)):
                raise InputError(f"{where}: threshold {vs}.{wp} = {thr!r} is not a number")
            if not math.isfinite(float(thr)):
                raise InputError(f"{where}: threshold {vs}.{wp} = {thr!r} is not finite")


def _loosest_first(
    wps: Mapping[str, Mapping[str, float]], decimals: int | None
) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for vs, table in wps.items():
        vals = {str(wp): float(t) if decimals is None else round(float(t), decimals)
                for wp, t in table.items()}  # fmt: skip
        out[str(vs)] = dict(sorted(vals.items(), key=lambda kv: kv[1]))
    return out


def save_working_points(
    wps: Mapping[str, Mapping[str, float]],
    path: str | os.PathLike[str],
    *,
    decimals: int | None = 4,
    overwrite: bool = False,
) -> Path:
    """Write ``working_points.json``: ``{vs_type: {WP: threshold}}``, each vs type's WPs
    loosest (lowest threshold) first, thresholds rounded to ``decimals`` as in the original
    (None keeps them exact)."""
    _check_wps(wps, "working points")
    text = json.dumps(_loosest_first(wps, decimals), indent=4) + "\n"
    return write_text_atomic(path, text, overwrite=overwrite)


def load_working_points(path: str | os.PathLike[str]) -> dict[str, dict[str, float]]:
    """Read ``working_points.json`` keeping the file's order (loosest first)."""
    data = _load_json(path, "working-points file")
    _check_wps(data, f"working-points file '{path}'")
    return {vs: {wp: float(t) for wp, t in table.items()} for vs, table in data.items()}


def wp_to_correctionlib(
    wps: Mapping[str, Mapping[str, float]],
    *,
    name: str = "tau_wp_thresholds",
    description: str | None = None,
) -> schemav2.CorrectionSet:
    """Working points as a correctionlib set: ``(vs_type, wp) → threshold``.

    Both inputs are string categories without a default, so an unknown vs type or WP fails
    loudly instead of silently cutting at some default value. The cut is ``score > thr``.
    """
    _check_wps(wps, "wp_to_correctionlib")
    ordered = _loosest_first(wps, None)
    data = schemav2.Category(
        nodetype="category",
        input="vs_type",
        content=[
            schemav2.CategoryItem(
                key=vs,
                value=schemav2.Category(
                    nodetype="category",
                    input="wp",
                    content=[schemav2.CategoryItem(key=wp, value=thr) for wp, thr in t.items()],
                ),
            )
            for vs, t in ordered.items()
        ],
    )
    corr = schemav2.Correction(
        name=name,
        description=description
        or "DeepTau-style working-point thresholds; a tau passes if score_vs_<vs_type> > value",
        version=1,
        inputs=[
            schemav2.Variable(name="vs_type", type="string", description="e, mu or jet"),
            schemav2.Variable(name="wp", type="string", description="working-point name"),
        ],
        output=schemav2.Variable(name="threshold", type="real", description="score threshold"),
        data=data,
    )
    return schemav2.CorrectionSet(
        schema_version=2, description="taucoffea working points", corrections=[corr]
    )


def save_wp_correctionlib(
    wps: Mapping[str, Mapping[str, float]],
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    **kwargs: Any,
) -> Path:
    """Write :func:`wp_to_correctionlib` as JSON, atomically."""
    cset = wp_to_correctionlib(wps, **kwargs)
    return write_text_atomic(
        path, cset.model_dump_json(exclude_unset=True, indent=2) + "\n", overwrite=overwrite
    )
