"""The contributions of the adversarial μτ control-region mixture (reference spec §7.1, §7.3).

A *contribution* is one slice of the control region that enters the data/MC mixture with a
fixed number of taus per batch: the data, and six MC slices defined by a sample and a tau type
(DY τ, tt τ, DY μ, tt jets, W jets, QCD jets). The same description drives every step: the
skim cuts (base selection + ``mytauType == k``), the event drop (one keep probability per
contribution), the pT weights (one weight histogram per contribution, named as the original's
``data``, ``DYT``, … TH1Ds) and the mix (``dataset_id`` and rows per batch).

The description lives in one YAML file (``configs/adversarial/selection.yaml``) so a user can
point the chain at real samples by changing dataset names, without touching code.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from taucoffea.errors import ConfigError
from taucoffea.physics.tautypes import TAU_TYPE_NAMES, TauType

__all__ = [
    "ADVERSARIAL_SELECTION",
    "DEFAULT_CONFIG",
    "TAU_TYPE_COLUMN",
    "AdversarialConfig",
    "Contribution",
    "load_adversarial_config",
    "parse_composition",
]

#: Column the skim writes the recomputed tau type into (−1 when no valid gen match).
TAU_TYPE_COLUMN = "mytauType"

#: The documented MuTau control-region selection (spec §7.1), in ROOT syntax.
ADVERSARIAL_SELECTION = (
    "tau_byDeepTau2017v2p1VSjetraw > 0.9 && tau_pt > 30 && std::abs(tau_eta) < 2.3"
    " && tau_decayModeFindingNewDMs != 0"
    " && (tau_decayMode == 0 || tau_decayMode == 1 || tau_decayMode == 10 || tau_decayMode == 11)"
    " && tau_byDeepTau2017v2p1VSeraw > 0.1686942 && tau_byDeepTau2017v2p1VSmuraw > 0.8754835"
    " && tau_index >= 0 && has_extramuon == 0 && has_extraelectron == 0 && has_dimuon == 0"
)

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_\-]*")


@dataclass(frozen=True)
class Contribution:
    """One slice of the mixture.

    ``tau_type`` is ``None`` for the data contribution (its rows are labelled ``tauType`` 8 and
    ``adv_label`` 1); for MC it is the ``mytauType`` the skim requires. ``cut`` is an optional
    extra ROOT-syntax cut ANDed to the base selection.
    """

    name: str
    dataset: str
    dataset_id: int
    weight_name: str
    per_batch: int
    tau_type: int | None = None
    cut: str = ""

    @property
    def is_data(self) -> bool:
        return self.tau_type is None

    def selection(self, base: str, type_column: str = TAU_TYPE_COLUMN) -> str:
        """The full skim cut: base selection, the type requirement and the extra cut."""
        parts = [f"({base})"] if base.strip() else []
        parts.append("(sampleType == 0)" if self.is_data else f"({type_column} == {self.tau_type})")
        if self.cut.strip():
            parts.append(f"({self.cut})")
        return " && ".join(parts)


@dataclass(frozen=True)
class AdversarialConfig:
    """The base selection and the ordered contributions (order = order inside a batch)."""

    selection: str
    contributions: tuple[Contribution, ...]
    source: str = "<built-in>"

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.contributions)

    @property
    def data(self) -> Contribution:
        return next(c for c in self.contributions if c.is_data)

    def by_name(self, name: str) -> Contribution:
        for c in self.contributions:
            if c.name == name:
                return c
        raise ConfigError(f"{self.source}: unknown contribution '{name}'; known: {', '.join(self.names)}")

    def composition(self) -> dict[str, int]:
        """Taus per batch for each contribution, in batch order."""
        return {c.name: c.per_batch for c in self.contributions}

    @property
    def batch_size(self) -> int:
        return sum(c.per_batch for c in self.contributions)

    def with_composition(self, composition: Mapping[str, int] | str | None) -> AdversarialConfig:
        """A copy with some per-batch counts replaced (``"data=50,DY_taus=36"`` or a mapping)."""
        if composition is None:
            return self
        changes = parse_composition(composition) if isinstance(composition, str) else dict(composition)
        unknown = sorted(set(changes) - set(self.names))
        if unknown:
            raise ConfigError(f"composition: unknown contribution(s) {unknown}; known: {', '.join(self.names)}")
        contribs = tuple(
            replace(c, per_batch=_count(changes[c.name], f"composition: {c.name}")) if c.name in changes else c
            for c in self.contributions
        )
        return AdversarialConfig(self.selection, contribs, self.source)


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where}: taus per batch must be an integer >= 0, got {value!r}")
    return value


def parse_composition(text: str) -> dict[str, int]:
    """``"data=50,DY_taus=36"`` → ``{"data": 50, "DY_taus": 36}``."""
    out: dict[str, int] = {}
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        name, sep, value = item.partition("=")
        if not sep or not value.strip().lstrip("-").isdigit():
            raise ConfigError(f"composition: expected NAME=COUNT, got '{item}'")
        out[name.strip()] = int(value)
    if not out:
        raise ConfigError(f"composition: nothing given in '{text}'")
    return out


def _validate(cfg: AdversarialConfig) -> None:
    where = cfg.source
    if not cfg.contributions:
        raise ConfigError(f"{where}: no contributions")
    for key in ("name", "weight_name", "dataset_id"):
        values = [getattr(c, key) for c in cfg.contributions]
        dup = sorted({str(v) for v in values if values.count(v) > 1})
        if dup:
            raise ConfigError(f"{where}: duplicate contribution {key}(s) {dup}")
    data = [c.name for c in cfg.contributions if c.is_data]
    if len(data) != 1:
        raise ConfigError(f"{where}: exactly one contribution must be data (no tau_type), found {data or 'none'}")
    for c in cfg.contributions:
        if not _NAME.fullmatch(c.name):
            raise ConfigError(f"{where}: contribution name '{c.name}' must be letters, digits, '_' or '-'")
        _count(c.per_batch, f"{where}: contribution '{c.name}' per_batch")
        if isinstance(c.dataset_id, bool) or not isinstance(c.dataset_id, int) or c.dataset_id < 0:
            raise ConfigError(f"{where}: contribution '{c.name}' dataset_id must be an integer >= 0, got {c.dataset_id!r}")
        if not c.dataset:
            raise ConfigError(f"{where}: contribution '{c.name}' has no dataset")
    if cfg.data.per_batch == 0 or cfg.batch_size == cfg.data.per_batch:
        raise ConfigError(f"{where}: a batch needs data and MC taus; composition {cfg.composition()}")


def _tau_type(value: Any, where: str) -> int:
    if isinstance(value, str):
        if value not in TAU_TYPE_NAMES or value == "data":
            allowed = [n for n in TAU_TYPE_NAMES if n != "data"]
            raise ConfigError(f"{where}: tau_type '{value}' is not an MC tau type; allowed: {allowed}")
        return int(TauType[value])
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < int(TauType.data):
        raise ConfigError(f"{where}: tau_type must be a name or an integer 0..7, got {value!r}")
    return value


_KEYS = {"name", "dataset", "dataset_id", "weight_name", "per_batch", "tau_type", "data", "cut"}


def _contribution(item: Any, where: str) -> Contribution:
    if not isinstance(item, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {item!r}")
    unknown = sorted(set(item) - _KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(_KEYS)}")
    missing = sorted({"name", "dataset", "dataset_id", "per_batch"} - set(item))
    if missing:
        raise ConfigError(f"{where}: missing key(s) {missing}")
    is_data = bool(item.get("data", False))
    if is_data == ("tau_type" in item):
        raise ConfigError(f"{where}: give either 'data: true' or a 'tau_type', not both or neither")
    name = str(item["name"])
    return Contribution(
        name=name,
        dataset=str(item["dataset"]),
        dataset_id=item["dataset_id"],
        weight_name=str(item.get("weight_name", name)),
        per_batch=item["per_batch"],
        tau_type=None if is_data else _tau_type(item["tau_type"], f"{where} ({name})"),
        cut=str(item.get("cut", "") or ""),
    )


def load_adversarial_config(spec: str | os.PathLike[str] | Mapping[str, Any] | AdversarialConfig | None = None) -> AdversarialConfig:
    """Read ``selection.yaml`` (path), a mapping of the same layout, or the built-in default."""
    if spec is None:
        return DEFAULT_CONFIG
    if isinstance(spec, AdversarialConfig):
        return spec
    if isinstance(spec, Mapping):
        data, where = spec, "adversarial config"
    else:
        path = Path(spec)
        if not path.is_file():
            raise ConfigError(f"adversarial selection config '{path}' does not exist")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from None
        where = str(path)
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping at top level")
    unknown = sorted(set(data) - {"selection", "contributions", "description"})
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: contributions, description, selection")
    if "contributions" not in data or not isinstance(data["contributions"], Sequence):
        raise ConfigError(f"{where}: 'contributions' must be a list")
    contribs = tuple(_contribution(item, f"{where}: contributions[{i}]") for i, item in enumerate(data["contributions"]))
    selection = data.get("selection", ADVERSARIAL_SELECTION)
    if not isinstance(selection, str):
        raise ConfigError(f"{where}: 'selection' must be a string")
    return AdversarialConfig(" ".join(selection.split()), contribs, where)


#: The spec's §7.3 table on the toy's μτ control-region samples.
DEFAULT_CONFIG = AdversarialConfig(
    ADVERSARIAL_SELECTION,
    (
        Contribution("data", "SingleMuon_MuTau", 0, "data", 50, None),
        Contribution("DY_taus", "DYJetsToLL_M-50_MuTau", 1, "DYT", 36, int(TauType.tau)),
        Contribution("tt_taus", "TTToSemiLeptonic_MuTau", 2, "TTT", 2, int(TauType.tau)),
        Contribution("DY_muons", "DYJetsToLL_M-50_MuTau", 3, "DYM", 1, int(TauType.mu)),
        Contribution("tt_jets", "TTToSemiLeptonic_MuTau", 4, "TTJ", 1, int(TauType.jet)),
        Contribution("W_jets", "WJetsToLNu_MuTau", 5, "WJ", 5, int(TauType.jet)),
        Contribution("QCD_jets", "QCD_MuTau", 6, "QCD", 5, int(TauType.jet)),
    ),
)
