"""The features config of feature scaling: YAML in, validated :class:`FeatureConfig` out.

The layout is the reference's (``Training/configs/training_v1.yaml``, spec §5.1)::

    Scaling_setup: {file_path, output_json_folder, file_range, tree_name, log_step, version,
                    selection, cone_definition, cone_selection, quantiles}
    Features_all:  {var_type: [{feature: [selection_cut, aliases, scaling_type, *lim_params]}]}
    Features_disable: {var_type: [feature, …]}

``cone_definition`` and ``cone_selection`` may also sit at the top level. Cuts and aliases
are ROOT-style expressions compiled by :mod:`taucoffea.columns.selection` (never evaluated as
code, unlike uproot's alias strings). Every problem is a :class:`ConfigError` naming the
file, the key path and the allowed values, raised before any file is read.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from taucoffea.algorithms.scaling import SCALING_TYPES, ConeDefinition
from taucoffea.columns.selection import CompiledExpression, Selection, compile_expression, compile_selection
from taucoffea.errors import ConfigError, SelectionError

__all__ = [
    "QUANTILE_MODES",
    "FeatureConfig",
    "FeatureSpec",
    "ScalingSetup",
    "TypeCones",
    "load_feature_config",
    "parse_feature_config",
]

@functools.lru_cache(maxsize=4096)
def _expression(text: str) -> CompiledExpression:
    """Compiled numeric expression, cached: configs repeat the same aliases many times."""
    return compile_expression(text)


@functools.lru_cache(maxsize=1024)
def _selection(text: str) -> Selection:
    return compile_selection(text)


#: How quantiles are kept: per input file (reference), only over all files, or not at all.
QUANTILE_MODES: tuple[str, ...] = ("per_file", "total", "none")

_TOP_KEYS = ("Scaling_setup", "Features_all", "Features_disable", "cone_definition", "cone_selection")
_SETUP_KEYS = (
    "file_path", "output_json_folder", "file_range", "tree_name", "log_step", "version",
    "selection", "cone_definition", "cone_selection", "quantiles",
)
_CONE_DEF_KEYS = {"inner": ("min_pt", "min_radius", "opening_coef"), "outer": ("dR",)}
_CONE_SEL_KEYS = ("var_names", "cone_types")
_VAR_NAME_KEYS = ("pt", "eta", "phi")
_SPELLINGS = {"no scaling": "no_scaling"}  # the README's spelling (reference A.15)


@dataclass(frozen=True)
class ScalingSetup:
    """``Scaling_setup`` minus the cone keys (those become :class:`FeatureConfig` fields)."""

    file_path: str | None = None
    output_json_folder: str | None = None
    file_range: tuple[int, int] | None = None  # slice of the sorted file list; None = all
    tree_name: str = "taus"
    log_step: int | None = None
    version: str = "1"
    quantiles: str = "per_file"


@dataclass(frozen=True)
class TypeCones:
    """Where a variable type's objects sit: per tau (``global``) or in inner/outer cones."""

    var_type: str
    cones: tuple[str, ...]
    eta: str | None = None
    phi: str | None = None
    pt: str | None = None

    @property
    def is_global(self) -> bool:
        return self.cones == ("global",)


@dataclass(frozen=True)
class FeatureSpec:
    """One feature: its cut, aliases, scaling type and limits per cone."""

    var_type: str
    name: str
    cut: str | None
    aliases: tuple[tuple[str, str], ...]
    scaling: str
    lims: tuple[tuple[str, tuple[float, float]], ...] | None  # per cone; None = none given
    lims_per_cone: bool  # given as a {cone: [a, b]} dict (decides the JSON cone keys)
    disabled: bool = False

    @property
    def alias_map(self) -> dict[str, str]:
        return dict(self.aliases)

    def lims_for(self, cone: str) -> tuple[float, float] | None:
        if self.lims is None:
            return None
        d = dict(self.lims)
        return d.get(cone, d.get("global"))

    def compiled(self) -> tuple[CompiledExpression, Selection | None, dict[str, CompiledExpression]]:
        """(value expression, cut or None, every alias used), compiled."""
        aliases = {k: _expression(v) for k, v in self.aliases}
        value = aliases.get(self.name) or _expression(self.name)
        cut = _selection(self.cut) if self.cut else None
        return value, cut, aliases

    def columns(self) -> set[str]:
        """Input columns (after resolving aliases) that the value and the cut read."""
        value, cut, aliases = self.compiled()
        todo = set(value.columns) | (set(cut.columns) if cut is not None else set())
        out: set[str] = set()
        seen: set[str] = set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            if name in aliases:
                todo |= set(aliases[name].columns)
            else:
                out.add(name)
        return out


@dataclass(frozen=True)
class FeatureConfig:
    """A validated features config (see the module docstring)."""

    source: str
    setup: ScalingSetup
    cone_definition: ConeDefinition
    cone_selection: Mapping[str, TypeCones]
    features: Mapping[str, tuple[FeatureSpec, ...]]  # every feature of Features_all, in order
    raw: Mapping[str, Any] = field(repr=False, default_factory=dict)

    @property
    def var_types(self) -> list[str]:
        return list(self.features)

    def active(self, var_types: Sequence[str] | None = None) -> dict[str, list[FeatureSpec]]:
        """Enabled features per type (optionally only ``var_types``), in config order."""
        types = self.var_types if var_types is None else list(var_types)
        unknown = sorted(set(types) - set(self.features))
        if unknown:
            raise ConfigError(f"{self.source}: unknown var type(s) {unknown}; allowed: {self.var_types}")
        return {t: [f for f in self.features[t] if not f.disabled] for t in types}

    def columns(self, var_types: Sequence[str] | None = None) -> set[str]:
        """Every input column the enabled features (and their cones) read."""
        out: set[str] = set()
        for t, feats in self.active(var_types).items():
            cones = self.cone_selection[t]
            needs_stats = any(f.scaling in ("linear", "normal") for f in feats)
            if needs_stats and not cones.is_global:
                out |= {cones.eta or "", cones.phi or "", "tau_pt", "tau_eta", "tau_phi"}
            for f in feats:
                if f.scaling in ("linear", "normal"):
                    out |= f.columns()
        out.discard("")
        return out

    def digest(self) -> str:
        """Hash of everything that decides the numbers (not of paths or output options)."""
        payload = {
            "cone_definition": self.cone_definition.__dict__,
            "cones": {t: c.__dict__ for t, c in sorted(self.cone_selection.items())},
            "features": {t: [f.__dict__ for f in fs] for t, fs in self.features.items()},
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=list).encode()).hexdigest()[:16]

    def specs_json(self) -> dict[str, Any]:
        """The per-feature settings a merge must find identical in every job."""
        return {
            t: {
                f.name: {
                    "scaling": f.scaling,
                    "lims": None if f.lims is None else {c: list(v) for c, v in f.lims},
                    "lims_per_cone": f.lims_per_cone,
                    "cones": list(self.cone_selection[t].cones),
                    "cut": f.cut,
                    "aliases": dict(f.aliases),
                }
                for f in fs
                if not f.disabled
            }
            for t, fs in self.features.items()
        }


# --------------------------------------------------------------------------------------------
# loading


def load_feature_config(spec: str | os.PathLike[str] | Mapping[str, Any]) -> FeatureConfig:
    """Load and validate a features config from a YAML path (``yaml.safe_load``) or a mapping."""
    if isinstance(spec, FeatureConfig):
        return spec
    if isinstance(spec, Mapping):
        return parse_feature_config(spec, "<features config>")
    path = Path(spec)
    if not path.is_file():
        raise ConfigError(f"features config '{path}' does not exist")
    try:
        # the C implementation of the same safe loader when available (≈10x faster)
        data = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    return parse_feature_config(data, str(path))


def _fail(where: str, key: str, message: str) -> ConfigError:
    return ConfigError(f"{where}: {key}: {message}")


def _check_keys(data: Any, allowed: Sequence[str], where: str, key: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise _fail(where, key, f"expected a mapping, got {type(data).__name__} {data!r}")
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise _fail(where, key, f"unknown key(s) {unknown}; allowed: {list(allowed)}")
    return data


def _number(value: Any, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(where, key, f"must be a number, got {value!r}")
    return float(value)


def parse_feature_config(data: Any, source: str = "<features config>") -> FeatureConfig:
    """Validate an already-parsed features config (see the module docstring for the layout)."""
    top = _check_keys(data if data is not None else {}, _TOP_KEYS, source, "top level")
    setup_raw = _check_keys(top.get("Scaling_setup") or {}, _SETUP_KEYS, source, "Scaling_setup")
    for k in ("cone_definition", "cone_selection"):
        if k in top and k in setup_raw:
            raise _fail(source, k, "given both at the top level and inside Scaling_setup; keep one")
    setup = _parse_setup(setup_raw, source)
    cone_def = _parse_cone_definition(top.get("cone_definition", setup_raw.get("cone_definition")), source)
    if "Features_all" not in top:
        raise _fail(source, "Features_all", "missing; it lists the features per variable type")
    feats_raw = top["Features_all"]
    if not isinstance(feats_raw, Mapping):
        raise _fail(source, "Features_all", f"expected a mapping {{var_type: [features]}}, got {type(feats_raw).__name__}")
    if not feats_raw:
        raise _fail(source, "Features_all", "is empty")
    cone_sel_raw = top.get("cone_selection", setup_raw.get("cone_selection")) or {}
    cone_sel = _parse_cone_selection(cone_sel_raw, list(feats_raw), source)
    disabled = _parse_disabled(top.get("Features_disable") or {}, feats_raw, source)
    features: dict[str, tuple[FeatureSpec, ...]] = {}
    for var_type, items in feats_raw.items():
        features[var_type] = _parse_type_features(var_type, items, cone_sel[var_type], disabled.get(var_type, set()), source)
    return FeatureConfig(source, setup, cone_def, cone_sel, features, dict(top))


def _parse_setup(raw: Mapping[str, Any], where: str) -> ScalingSetup:
    kw: dict[str, Any] = {}
    for key in ("file_path", "output_json_folder", "tree_name"):
        if raw.get(key) is not None:
            if not isinstance(raw[key], str):
                raise _fail(where, f"Scaling_setup.{key}", f"must be a string, got {raw[key]!r}")
            kw[key] = raw[key]
    if raw.get("file_range") is not None:
        kw["file_range"] = parse_file_range(raw["file_range"], f"{where}: Scaling_setup.file_range")
    if raw.get("log_step") is not None:
        step = raw["log_step"]
        if isinstance(step, bool) or not isinstance(step, int) or step < 1:
            raise _fail(where, "Scaling_setup.log_step", f"must be an integer >= 1, got {step!r}")
        kw["log_step"] = step
    if raw.get("version") is not None:
        version = raw["version"]
        if isinstance(version, bool) or not isinstance(version, (int, str)) or not str(version).strip():
            raise _fail(where, "Scaling_setup.version", f"must be an integer or a name, got {version!r}")
        if any(c in str(version) for c in "/\\ ") or str(version).startswith("."):
            raise _fail(where, "Scaling_setup.version", f"{version!r} cannot be part of a file name")
        kw["version"] = str(version)
    if raw.get("quantiles") is not None:
        if raw["quantiles"] not in QUANTILE_MODES:
            raise _fail(where, "Scaling_setup.quantiles", f"{raw['quantiles']!r} is not allowed; allowed: {list(QUANTILE_MODES)}")
        kw["quantiles"] = raw["quantiles"]
    _check_selection_anchors(raw.get("selection"), where, "Scaling_setup.selection")
    return ScalingSetup(**kw)


def parse_file_range(value: Any, where: str = "file_range") -> tuple[int, int] | None:
    """``[a, b]`` / ``"a:b"`` → ``(a, b)`` (a slice of the sorted files; b = −1: to the end);
    ``-1`` or ``None`` → all files."""
    if value is None or value == -1:
        return None
    if isinstance(value, str):
        parts = value.split(":")
        if len(parts) != 2:
            raise ConfigError(f"{where}: expected 'a:b', got {value!r}")
        try:
            a = int(parts[0]) if parts[0].strip() else 0
            b = int(parts[1]) if parts[1].strip() else -1
        except ValueError:
            raise ConfigError(f"{where}: expected integers 'a:b', got {value!r}") from None
        value = [a, b]
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or any(isinstance(v, bool) or not isinstance(v, int) for v in value)
    ):
        raise ConfigError(f"{where}: expected [a, b] with integers (or -1 for all files), got {value!r}")
    a, b = int(value[0]), int(value[1])
    if a < 0 or (b != -1 and b < a):
        raise ConfigError(f"{where}: need 0 <= a <= b (or b = -1), got {value!r}")
    return a, b


def _check_selection_anchors(value: Any, where: str, key: str) -> None:
    """``selection`` only carries YAML anchors: strings (or nested mappings of strings)."""
    if value is None:
        return
    if isinstance(value, str):
        try:
            compile_selection(value)
        except SelectionError as err:
            raise _fail(where, key, f"invalid cut: {err}") from None
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            _check_selection_anchors(v, where, f"{key}.{k}")
        return
    raise _fail(where, key, f"must be a cut string or a mapping of them, got {value!r}")


def _parse_cone_definition(raw: Any, where: str) -> ConeDefinition:
    if raw is None:
        return ConeDefinition()
    data = _check_keys(raw, tuple(_CONE_DEF_KEYS), where, "cone_definition")
    kw: dict[str, float] = {}
    for cone, keys in _CONE_DEF_KEYS.items():
        sub = _check_keys(data.get(cone) or {}, keys, where, f"cone_definition.{cone}")
        for k, v in sub.items():
            value = _number(v, where, f"cone_definition.{cone}.{k}")
            if value <= 0:
                raise _fail(where, f"cone_definition.{cone}.{k}", f"must be > 0, got {v!r}")
            kw["outer_dr" if k == "dR" else k] = value
    return ConeDefinition(**kw)


def _parse_cone_selection(raw: Any, var_types: list[str], where: str) -> dict[str, TypeCones]:
    data = _check_keys(raw, var_types, where, "cone_selection")
    out: dict[str, TypeCones] = {}
    for t in var_types:
        key = f"cone_selection.{t}"
        entry = _check_keys(data.get(t) or {}, _CONE_SEL_KEYS, where, key)
        names = _check_keys(entry.get("var_names") or {}, _VAR_NAME_KEYS, where, f"{key}.var_names")
        for k, v in names.items():
            if not isinstance(v, str) or not v.isidentifier():
                raise _fail(where, f"{key}.var_names.{k}", f"must be a column name, got {v!r}")
        cone_types = entry.get("cone_types", [None])
        if not isinstance(cone_types, list) or not cone_types:
            raise _fail(where, f"{key}.cone_types", f"must be [null] or a list of inner/outer, got {cone_types!r}")
        if cone_types == [None]:
            cones: tuple[str, ...] = ("global",)
        else:
            bad = [c for c in cone_types if c not in ("inner", "outer")]
            if bad or len(set(cone_types)) != len(cone_types):
                raise _fail(where, f"{key}.cone_types", f"{cone_types!r} is not allowed; allowed: [null] or a list of 'inner', 'outer'")
            cones = tuple(c for c in ("inner", "outer") if c in cone_types)
            missing = [k for k in ("eta", "phi") if k not in names]
            if missing:
                raise _fail(where, f"{key}.var_names", f"cones {list(cones)} need the constituent column(s) {missing}")
        out[t] = TypeCones(t, cones, names.get("eta"), names.get("phi"), names.get("pt"))
    return out


def _parse_disabled(raw: Any, feats_raw: Mapping[str, Any], where: str) -> dict[str, set[str]]:
    data = _check_keys(raw, list(feats_raw), where, "Features_disable")
    out: dict[str, set[str]] = {}
    for t, names in data.items():
        if names is None:
            continue
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise _fail(where, f"Features_disable.{t}", f"must be a list of feature names, got {names!r}")
        items = feats_raw[t] or []
        if not isinstance(items, list):
            raise _fail(where, f"Features_all.{t}", f"must be a list of {{feature: [...]}} entries, got {items!r}")
        known = {next(iter(item)) for item in items if isinstance(item, Mapping) and len(item) == 1}
        unknown = sorted(set(names) - known)
        if unknown:
            raise _fail(where, f"Features_disable.{t}", f"unknown feature(s) {unknown}; they must be listed in Features_all.{t}")
        out[t] = set(names)
    return out


def _parse_type_features(
    var_type: str, items: Any, cones: TypeCones, disabled: set[str], where: str
) -> tuple[FeatureSpec, ...]:
    key = f"Features_all.{var_type}"
    if not isinstance(items, list) or not items:
        raise _fail(where, key, f"must be a non-empty list of {{feature: [cut, aliases, scaling_type, lims]}}, got {items!r}")
    out: list[FeatureSpec] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        if not isinstance(item, Mapping) or len(item) != 1:
            raise _fail(where, f"{key}[{i}]", f"each entry must be a single-key mapping {{feature: [...]}}, got {item!r}")
        name, spec = next(iter(item.items()))
        fkey = f"{key}.{name}"
        if not isinstance(name, str) or not name.isidentifier():
            raise _fail(where, fkey, "the feature name must be an identifier")
        if name in seen:
            raise _fail(where, fkey, "listed twice")
        seen.add(name)
        out.append(_parse_feature(var_type, name, spec, cones, name in disabled, where, fkey))
    return tuple(out)


def _parse_feature(
    var_type: str, name: str, spec: Any, cones: TypeCones, disabled: bool, where: str, key: str
) -> FeatureSpec:
    if not isinstance(spec, list) or len(spec) not in (3, 4):
        raise _fail(where, key, f"must be [selection_cut, aliases, scaling_type] plus optional lim_params, got {spec!r}")
    cut, aliases, scaling = spec[0], spec[1], spec[2]
    if cut is not None and not isinstance(cut, str):
        raise _fail(where, f"{key}.selection_cut", f"must be a cut string or null, got {cut!r}")
    if aliases is None:
        aliases = {}
    if not isinstance(aliases, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in aliases.items()):
        raise _fail(where, f"{key}.aliases", f"must be a mapping {{name: expression}} or null, got {aliases!r}")
    if not isinstance(scaling, str):
        raise _fail(where, f"{key}.scaling_type", f"must be a string; allowed: {list(SCALING_TYPES)}")
    scaling = _SPELLINGS.get(scaling, scaling)
    if scaling not in SCALING_TYPES:
        raise _fail(where, f"{key}.scaling_type", f"{spec[2]!r} is not allowed; allowed: {list(SCALING_TYPES)} (or 'no scaling')")
    lims, per_cone = _parse_lims(spec[3] if len(spec) == 4 else None, len(spec) == 4, scaling, cones, where, f"{key}.lim_params")
    feature = FeatureSpec(var_type, name, cut, tuple(aliases.items()), scaling, lims, per_cone, disabled)
    _check_expressions(feature, where, key)
    return feature


def _parse_lims(
    raw: Any, given: bool, scaling: str, cones: TypeCones, where: str, key: str
) -> tuple[tuple[tuple[str, tuple[float, float]], ...] | None, bool]:
    if not given:
        if scaling == "linear":
            raise _fail(where, key, "linear scaling needs lim_params [a, b] or {cone: [a, b]}")
        return None, False
    if scaling in ("no_scaling", "categorical"):
        raise _fail(where, key, f"'{scaling}' takes no lim_params, got {raw!r}")

    def pair(value: Any, k: str) -> tuple[float, float]:
        if not isinstance(value, list) or len(value) != 2:
            raise _fail(where, k, f"must be [a, b], got {value!r}")
        a, b = _number(value[0], where, k), _number(value[1], where, k)
        if not a < b:
            raise _fail(where, k, f"needs a < b, got {value!r}")
        return a, b

    if isinstance(raw, list):
        return (("global", pair(raw, key)),), False
    if isinstance(raw, Mapping):
        allowed = cones.cones
        unknown = sorted(str(c) for c in raw if c not in allowed)
        missing = [c for c in allowed if c not in raw]
        if unknown or missing:
            raise _fail(where, key, f"per-cone limits must name exactly the cones {list(allowed)} of this type; got {list(raw)}")
        return tuple((c, pair(raw[c], f"{key}.{c}")) for c in allowed), True
    raise _fail(where, key, f"must be [a, b] or {{cone: [a, b]}}, got {raw!r}")


def _check_expressions(feature: FeatureSpec, where: str, key: str) -> None:
    aliases = feature.alias_map
    compiled: dict[str, CompiledExpression] = {}
    for alias, expr in aliases.items():
        try:
            compiled[alias] = _expression(expr)
        except SelectionError as err:
            raise _fail(where, f"{key}.aliases.{alias}", f"invalid expression: {err}") from None
    if feature.cut:
        try:
            _selection(feature.cut)
        except SelectionError as err:
            raise _fail(where, f"{key}.selection_cut", f"invalid cut: {err}") from None
    # alias chains must not loop
    for a, e in compiled.items():
        if a in e.columns:
            raise _fail(where, f"{key}.aliases.{a}", "refers to itself")
    graph = {a: set(e.columns) & set(aliases) for a, e in compiled.items()}
    state: dict[str, int] = {}

    def visit(node: str) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                raise _fail(where, f"{key}.aliases", f"alias cycle through '{node}' and '{nxt}'")
            if nxt not in state:
                visit(nxt)
        state[node] = 2

    for a in graph:
        if a not in state:
            visit(a)
