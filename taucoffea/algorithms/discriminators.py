"""Discriminators: one description of "where a tau-ID score and its working points come from".

The evaluation compares very different things on the same taus — a trained network's class
probabilities, the DeepTau raw scores and WP bitmasks stored in the inputs, a legacy ID that
only has WP bits, and the toy's Bayes-optimal likelihood ratio. The original
(``Evaluation/utils/evaluation.py::Discriminator``) described each by a small dataclass filled
from YAML; so do we, with the same field names where they exist (``name``, ``pred_column``
≈ ``score_column``, ``wp_from``, ``wp_column``, ``wp_name_to_index``, ``wp_thresholds``).

A description resolves to two function tables, so adding a source means adding one function:

* :data:`SCORE_SOURCES` (``score_from``) — ``node``: the vs-type score
  ``p_τ/(p_τ+p_t)`` of ``node_*`` columns (0 where ``p_τ = 0``); ``column``: a raw-score
  column such as ``tau_byDeepTau2017v2p1VS${vs_type}raw``; ``loglik``: the toy's exact
  per-class log-likelihoods, score ``1/(1+exp(ll_t − ll_τ))`` (the "ideal" discriminator);
  ``null``: no continuous score (WP bits only, no ROC curve — the original ``raw: False``).
* :data:`WP_SOURCES` (``wp_from``) — ``wp_column``: bit ``(col >> idx) & 1`` of a TauTuple
  WP bitmask, ``idx`` from ``wp_name_to_index`` (default: the ``DiscriminatorWP`` enum);
  ``thresholds``: ``score > thr`` (strict, as the original ``count_passed``) with thresholds
  given inline, read from a ``working_points.json``, or ``reference:<set>`` for the values
  stated in TauMLTools (§8.5); ``null``: no WPs.

``${vs_type}`` in any column template is replaced by ``e``, ``mu`` or ``jet``.

The likelihood-ratio score saturates: in float64 ``1/(1+exp(−x))`` is exactly 1 for
``x ≳ 37``, which would merge the purest taus into one tie and bend the top of the Bayes ROC.
A ROC curve depends only on the ordering of scores, so :meth:`Discriminator.ranking_score`
returns the log-likelihood ratio itself for ``loglik`` (and the score otherwise) and
:meth:`Discriminator.score_from_ranking` maps ROC thresholds back to the score scale.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy.special import expit

from taucoffea.algorithms.roc import score_vs
from taucoffea.errors import ConfigError, InputError
from taucoffea.physics.working_points import REFERENCE_THRESHOLDS, WP_BITS, WP_NAMES_VS

__all__ = [
    "SCORE_SOURCES",
    "VS_TYPES",
    "WP_SOURCES",
    "Discriminator",
    "discriminator_from_mapping",
    "load_discriminator",
    "read_yaml_mapping",
]

#: The vs types a tau-ID discriminates against.
VS_TYPES: tuple[str, ...] = ("e", "mu", "jet")

_TEMPLATE = "${vs_type}"
_PLACEHOLDER_RE = re.compile(r"\$\{([^}]*)\}")
_KEY_RE = re.compile(r"[A-Za-z0-9_.+-]+")
_REFERENCE_PREFIX = "reference:"


def read_yaml_mapping(path: str | os.PathLike[str], what: str) -> dict[str, Any]:
    """Safely load a YAML file that must hold a mapping; errors name the file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read {what} '{path}': {err.strerror or err}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{what} '{path}': invalid YAML: {err}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{what} '{path}': expected a mapping at top level, "
                          f"got {type(data).__name__}")
    return data


def _fill(template: str, vs_type: str, where: str) -> str:
    out = template.replace(_TEMPLATE, vs_type)
    other = _PLACEHOLDER_RE.search(out)
    if other:
        raise ConfigError(f"{where}: unknown placeholder '${{{other.group(1)}}}' in "
                          f"'{template}'; only ${{vs_type}} is substituted")
    return out


def _check_vs(vs_type: str) -> None:
    if vs_type not in VS_TYPES:
        raise ConfigError(f"unknown vs type {vs_type!r}; allowed: {', '.join(VS_TYPES)}")


def _get(table: Any, name: str, who: str) -> np.ndarray:
    try:
        col = table[name]
    except (KeyError, IndexError, ValueError, TypeError):
        raise InputError(f"discriminator '{who}': input has no column '{name}'") from None
    if hasattr(col, "to_numpy"):
        col = col.to_numpy()
    return np.asarray(col)


@dataclass(frozen=True)
class Discriminator:
    """A tau-ID discriminator: its score source and its working-point source.

    ``key`` names the discriminator in file and folder names; ``name`` is the legend label
    and the ``name`` of its ``performance.json``. ``wp_thresholds`` is ``{vs: {wp: thr}}``
    once resolved (see :func:`discriminator_from_mapping` for the accepted spellings).
    """

    name: str
    key: str
    score_from: str | None = "node"
    score_column: str | None = None
    node_prefix: str = "node_"
    loglik_prefix: str = "truth_loglik_"
    wp_from: str | None = None
    wp_column: str | None = None
    wp_name_to_index: dict[str, dict[str, int]] | None = None
    wp_thresholds: dict[str, dict[str, float]] | None = None
    description: str = ""

    def __post_init__(self) -> None:
        where = f"discriminator '{self.name}'"
        if not self.name:
            raise ConfigError("discriminator: 'name' must be a non-empty string")
        if not _KEY_RE.fullmatch(self.key or ""):
            raise ConfigError(f"{where}: key {self.key!r} may only contain letters, digits "
                              "and '_.+-' (it names output folders)")
        if self.score_from not in SCORE_SOURCES and self.score_from is not None:
            raise ConfigError(f"{where}: score_from={self.score_from!r}; allowed: "
                              f"{', '.join(SCORE_SOURCES)} or null")
        if self.score_from == "column" and not self.score_column:
            raise ConfigError(f"{where}: score_from 'column' needs 'score_column'")
        if self.wp_from not in WP_SOURCES and self.wp_from is not None:
            raise ConfigError(f"{where}: wp_from={self.wp_from!r}; allowed: "
                              f"{', '.join(WP_SOURCES)} or null")
        if self.wp_from == "wp_column" and not self.wp_column:
            raise ConfigError(f"{where}: wp_from 'wp_column' needs 'wp_column'")
        if self.wp_from == "thresholds" and self.score_from is None:
            raise ConfigError(f"{where}: wp_from 'thresholds' cuts on the score, "
                              "so score_from must not be null")
        if self.score_from is None and self.wp_from is None:
            raise ConfigError(f"{where}: has neither a score (score_from) nor WPs (wp_from)")

    # ----------------------------------------------------------------------- scores

    @property
    def has_score(self) -> bool:
        """Whether there is a continuous score (a ROC curve can be drawn)."""
        return self.score_from is not None

    def score_columns(self, vs_type: str) -> list[str]:
        """Input columns the score against ``vs_type`` reads."""
        _check_vs(vs_type)
        if self.score_from == "node":
            return [f"{self.node_prefix}tau", f"{self.node_prefix}{vs_type}"]
        if self.score_from == "loglik":
            return [f"{self.loglik_prefix}tau", f"{self.loglik_prefix}{vs_type}"]
        if self.score_from == "column":
            assert self.score_column is not None
            return [_fill(self.score_column, vs_type, f"discriminator '{self.name}'")]
        return []

    def wp_columns(self, vs_type: str) -> list[str]:
        """Input columns the WPs against ``vs_type`` read."""
        _check_vs(vs_type)
        if self.wp_from == "wp_column":
            assert self.wp_column is not None
            return [_fill(self.wp_column, vs_type, f"discriminator '{self.name}'")]
        if self.wp_from == "thresholds":
            return self.score_columns(vs_type)
        return []

    def columns(self, vs_type: str) -> list[str]:
        """Every input column needed against ``vs_type`` (score and WPs), without repeats."""
        return list(dict.fromkeys([*self.score_columns(vs_type), *self.wp_columns(vs_type)]))

    def score(self, table: Any, vs_type: str) -> np.ndarray:
        """The score against ``vs_type`` (float64, higher = more tau-like)."""
        return self.score_from_ranking(self.ranking_score(table, vs_type))

    def ranking_score(self, table: Any, vs_type: str) -> np.ndarray:
        """A strictly increasing function of :meth:`score` that does not saturate (the
        log-likelihood ratio for ``loglik``, the score itself otherwise): use it for ROCs."""
        _check_vs(vs_type)
        if self.score_from is None:
            raise ConfigError(f"discriminator '{self.name}' has no score (score_from: null)")
        return SCORE_SOURCES[self.score_from](self, table, vs_type)

    def score_from_ranking(self, values: Any) -> np.ndarray:
        """Map :meth:`ranking_score` values (e.g. ROC thresholds) to the score scale; ``+inf``
        (the ROC's "select nothing" placeholder) stays ``+inf``."""
        v = np.asarray(values, dtype=np.float64)
        if self.score_from != "loglik":
            return v
        return np.where(np.isposinf(v), np.inf, expit(v))

    # ----------------------------------------------------------------------- working points

    def wp_names(self, vs_type: str) -> list[str]:
        """The WPs defined against ``vs_type``, loosest first (empty if none)."""
        _check_vs(vs_type)
        if self.wp_from == "wp_column":
            table = (self.wp_name_to_index or {}).get(vs_type)
            if table is None:
                return list(WP_NAMES_VS[vs_type])
            return sorted(table, key=lambda wp: table[wp])
        if self.wp_from == "thresholds":
            thr = (self.wp_thresholds or {}).get(vs_type, {})
            return sorted(thr, key=lambda wp: thr[wp])
        return []

    def has_wps(self, vs_type: str) -> bool:
        return bool(self.wp_names(vs_type))

    def wp_masks(self, table: Any, vs_type: str) -> dict[str, np.ndarray]:
        """``{wp: pass mask}`` for every WP against ``vs_type``, loosest first."""
        names = self.wp_names(vs_type)
        if not names:
            return {}
        assert self.wp_from is not None
        return WP_SOURCES[self.wp_from](self, table, vs_type, names)

    def passes(self, table: Any, vs_type: str, wp: str) -> np.ndarray:
        """Pass mask of one WP; a WP this discriminator does not define is a ConfigError."""
        names = self.wp_names(vs_type)
        if wp not in names:
            raise ConfigError(f"discriminator '{self.name}' has no WP '{wp}' against "
                              f"{vs_type}; defined: {names or 'none'}")
        assert self.wp_from is not None
        return WP_SOURCES[self.wp_from](self, table, vs_type, [wp])[wp]

    def with_thresholds(self, thresholds: Mapping[str, Mapping[str, float]]) -> Discriminator:
        """A copy whose WPs are ``score > thr`` with the given thresholds."""
        return replace(self, wp_from="thresholds",
                       wp_thresholds=_check_thresholds(thresholds, f"discriminator "
                                                       f"'{self.name}'"))


# --------------------------------------------------------------------------- function tables


def _node_score(d: Discriminator, table: Any, vs_type: str) -> np.ndarray:
    p_tau, p_other = (_get(table, c, d.name) for c in d.score_columns(vs_type))
    return score_vs(p_tau, p_other)


def _column_score(d: Discriminator, table: Any, vs_type: str) -> np.ndarray:
    (col,) = d.score_columns(vs_type)
    return np.asarray(_get(table, col, d.name), dtype=np.float64)


def _loglik_ratio(d: Discriminator, table: Any, vs_type: str) -> np.ndarray:
    ll_tau, ll_other = (np.asarray(_get(table, c, d.name), dtype=np.float64)
                        for c in d.score_columns(vs_type))  # fmt: skip
    # sigmoid(ll_tau − ll_t) = 1/(1 + exp(ll_t − ll_tau)); the ratio is its ranking score.
    with np.errstate(invalid="ignore"):
        return ll_tau - ll_other


def _bit_masks(d: Discriminator, table: Any, vs_type: str, names: list[str]
               ) -> dict[str, np.ndarray]:
    (col,) = d.wp_columns(vs_type)
    bits = _get(table, col, d.name)
    if not np.issubdtype(bits.dtype, np.integer):
        if np.issubdtype(bits.dtype, np.floating) and np.all(bits == np.floor(bits)):
            bits = bits.astype(np.int64)
        else:
            raise InputError(f"discriminator '{d.name}': WP column '{col}' is not an integer "
                             f"bitmask (dtype {bits.dtype})")
    bits = bits.astype(np.int64)
    index = (d.wp_name_to_index or {}).get(vs_type) or {wp: WP_BITS[wp] for wp in names}
    return {wp: ((bits >> int(index[wp])) & 1).astype(bool) for wp in names}


def _threshold_masks(d: Discriminator, table: Any, vs_type: str, names: list[str]
                     ) -> dict[str, np.ndarray]:
    score = d.score(table, vs_type)
    thr = (d.wp_thresholds or {})[vs_type]
    return {wp: score > float(thr[wp]) for wp in names}


#: ``score_from`` → function ``(discriminator, table, vs_type) -> ranking score``.
SCORE_SOURCES: dict[str, Callable[[Discriminator, Any, str], np.ndarray]] = {
    "node": _node_score,
    "column": _column_score,
    "loglik": _loglik_ratio,
}
#: ``wp_from`` → function ``(discriminator, table, vs_type, wp names) -> {wp: mask}``.
WP_SOURCES: dict[str, Callable[[Discriminator, Any, str, list[str]], dict[str, np.ndarray]]] = {
    "wp_column": _bit_masks,
    "thresholds": _threshold_masks,
}


# --------------------------------------------------------------------------- construction


def _check_thresholds(wps: Any, where: str) -> dict[str, dict[str, float]]:
    if not isinstance(wps, Mapping) or not wps:
        raise ConfigError(f"{where}: wp_thresholds must map vs types to {{WP: threshold}}")
    out: dict[str, dict[str, float]] = {}
    for vs, table in wps.items():
        if vs not in VS_TYPES:
            raise ConfigError(f"{where}: wp_thresholds has unknown vs type {vs!r}; "
                              f"allowed: {', '.join(VS_TYPES)}")
        if not isinstance(table, Mapping) or not table:
            raise ConfigError(f"{where}: wp_thresholds.{vs} must map WP names to thresholds")
        clean: dict[str, float] = {}
        for wp, thr in table.items():
            if isinstance(thr, bool) or not isinstance(thr, (int, float)) or not np.isfinite(thr):
                raise ConfigError(f"{where}: wp_thresholds.{vs}.{wp} = {thr!r} is not a "
                                  "finite number")
            clean[str(wp)] = float(thr)
        out[str(vs)] = dict(sorted(clean.items(), key=lambda kv: kv[1]))
    return out


def _check_index_map(value: Any, where: str) -> dict[str, dict[str, int]]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: wp_name_to_index must map vs types to {{WP: bit}}")
    out: dict[str, dict[str, int]] = {}
    for vs, table in value.items():
        if vs not in VS_TYPES:
            raise ConfigError(f"{where}: wp_name_to_index has unknown vs type {vs!r}")
        if not isinstance(table, Mapping) or not table:
            raise ConfigError(f"{where}: wp_name_to_index.{vs} must map WP names to bits")
        clean = {}
        for wp, bit in table.items():
            if isinstance(bit, bool) or not isinstance(bit, int) or not 0 <= bit < 63:
                raise ConfigError(f"{where}: wp_name_to_index.{vs}.{wp} = {bit!r} must be a "
                                  "bit index 0..62")
            clean[str(wp)] = bit
        out[str(vs)] = clean
    return out


def _resolve_path(value: str, base_dirs: list[Path], where: str) -> Path:
    p = Path(value).expanduser()
    if p.is_absolute():
        candidates = [p]
    else:
        candidates = [b / p for b in base_dirs] + [Path.cwd() / p]
    for c in candidates:
        if c.is_file():
            return c
    tried = ", ".join(f"'{c}'" for c in dict.fromkeys(candidates))
    raise ConfigError(f"{where}: wp_thresholds file '{value}' not found (tried {tried})")


def _thresholds_from(value: Any, base_dirs: list[Path], where: str
                     ) -> dict[str, dict[str, float]] | None:
    if value is None:
        return None
    if isinstance(value, str):
        if value.startswith(_REFERENCE_PREFIX):
            name = value[len(_REFERENCE_PREFIX):]
            if name not in REFERENCE_THRESHOLDS:
                raise ConfigError(f"{where}: unknown reference thresholds {name!r}; "
                                  f"allowed: {', '.join(REFERENCE_THRESHOLDS)}")
            return _check_thresholds(REFERENCE_THRESHOLDS[name], where)
        from taucoffea.algorithms.performance import load_working_points

        path = _resolve_path(value, base_dirs, where)
        try:
            return _check_thresholds(load_working_points(path), f"{where} ({path})")
        except InputError as err:
            raise ConfigError(f"{where}: {err}") from None
    return _check_thresholds(value, where)


_FIELDS = {
    "name", "key", "score_from", "score_column", "pred_column", "node_prefix",
    "loglik_prefix", "wp_from", "wp_column", "wp_name_to_index", "wp_thresholds",
    "description", "raw",
}  # fmt: skip


def _default_key(name: str) -> str:
    key = re.sub(r"[^A-Za-z0-9_.+-]+", "_", name).strip("_")
    return key or "discriminator"


def discriminator_from_mapping(
    mapping: Mapping[str, Any],
    *,
    source: str = "discriminator",
    base_dir: str | os.PathLike[str] | None = None,
) -> Discriminator:
    """Build and validate a :class:`Discriminator` from a config mapping.

    Keys: ``name`` (required), ``key`` (default: ``name`` made file-safe), ``score_from``
    (``node`` default, ``column``, ``loglik`` or null), ``score_column`` (alias
    ``pred_column``, implies ``score_from: column``), ``node_prefix``, ``loglik_prefix``,
    ``wp_from``, ``wp_column``, ``wp_name_to_index``, ``wp_thresholds`` (a mapping, a path
    to ``working_points.json`` — relative to ``base_dir`` or the working directory — or
    ``reference:DeepTau2017v2p1`` / ``reference:DeepTau2018v2p5``), ``description``. The
    original's ``raw: false`` is accepted and means ``score_from: null``. An unknown key is
    an error, so a typo never silently changes what is evaluated.
    """
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"{source}: expected a mapping, got {type(mapping).__name__}")
    unknown = sorted(set(mapping) - _FIELDS)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {unknown}; allowed: {sorted(_FIELDS)}")
    name = mapping.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{source}: 'name' must be a non-empty string")
    where = f"{source} ('{name}')"
    score_column = mapping.get("score_column", mapping.get("pred_column"))
    if "score_column" in mapping and "pred_column" in mapping:
        raise ConfigError(f"{where}: give 'score_column' or its alias 'pred_column', not both")
    score_from = mapping.get("score_from", "column" if score_column else "node")
    if mapping.get("raw") is False:
        score_from = None
    wp_from = mapping.get("wp_from")
    thresholds_value = mapping.get("wp_thresholds")
    if wp_from is None and thresholds_value is not None:
        wp_from = "thresholds"
    bases = [Path(base_dir)] if base_dir is not None else []
    index_map = mapping.get("wp_name_to_index")
    for text_key in ("score_column", "wp_column", "node_prefix", "loglik_prefix"):
        value = score_column if text_key == "score_column" else mapping.get(text_key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{where}: '{text_key}' must be a string, got {value!r}")
    return Discriminator(
        name=name.strip(),
        key=str(mapping.get("key") or _default_key(name)),
        score_from=score_from,
        score_column=score_column,
        node_prefix=mapping.get("node_prefix", "node_"),
        loglik_prefix=mapping.get("loglik_prefix", "truth_loglik_"),
        wp_from=wp_from,
        wp_column=mapping.get("wp_column"),
        wp_name_to_index=None if index_map is None else _check_index_map(index_map, where),
        wp_thresholds=_thresholds_from(thresholds_value, bases, where),
        description=str(mapping.get("description", "")),
    )


def load_discriminator(path: str | os.PathLike[str], **overrides: Any) -> Discriminator:
    """Read a discriminator YAML (``configs/evaluation/discriminators/*.yaml``); keyword
    ``overrides`` replace keys of the file (e.g. ``wp_thresholds=...``)."""
    path = Path(path)
    data = read_yaml_mapping(path, "discriminator config")
    data.update(overrides)
    return discriminator_from_mapping(data, source=f"discriminator config '{path}'",
                                      base_dir=path.parent)


def resolve_discriminator(disc: Any, where: str, base: Path | None = None) -> Discriminator:
    """The ``discriminator`` entry of a stage config: a YAML path (relative to ``base`` when it
    exists there) or an inline mapping."""
    if isinstance(disc, (str, os.PathLike)):
        p = Path(disc)
        if not p.is_absolute() and base is not None and (base / p).is_file():
            p = base / p
        return load_discriminator(p)
    if isinstance(disc, Mapping):
        return discriminator_from_mapping(disc, source=f"{where}: discriminator", base_dir=base)
    raise ConfigError(f"{where}: 'discriminator' (a discriminator YAML path or a mapping) is required, got {disc!r}")
