"""Model inputs from a :class:`ColumnBlock`: scaled tau features plus grids or object sets.

One builder serves training, validation, prediction and the benchmark, so a model always sees
its inputs computed the same way. Two layouts:

``deeptau``
    ``input_tau`` and six cell grids ``input_{inner,outer}_{egamma,muon,hadrons}`` (§6.4).
``light``
    ``input_tau`` and, per component group, the ``K`` highest-pT objects in the isolation cone
    as a padded set ``input_<group>`` ``(n, K, width)`` with a 0/1 mask ``input_<group>_mask``.
    Each element carries its own type's features (scaled with the inner or outer cone's
    parameters depending on where it lies), the other types' columns are 0 — the same feature
    blocks a DeepTau cell holds, without the grid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from taucoffea.errors import ConfigError
from taucoffea.ml.blocks import ColumnBlock
from taucoffea.ml.features import (
    CELL_TYPES,
    GRID_GROUPS,
    FeatureSpec,
    ObjectTable,
    Scaling,
    object_tables,
    required_columns,
    tau_features,
)
from taucoffea.ml.grids import INNER, OUTER, build_grids
from taucoffea.ml.set_kernels import rank_slots, scatter_scaled

__all__ = ["DEFAULT_MAX_OBJECTS", "INPUT_KINDS", "SET_GROUPS", "InputBuilder", "build_sets", "builder_from_config"]

INPUT_KINDS = ("light", "deeptau")

#: Object-set groups of the light model: the grid groups without GridGlobal.
SET_GROUPS: dict[str, tuple[str, ...]] = {g: types[1:] for g, types in GRID_GROUPS.items()}
DEFAULT_MAX_OBJECTS: dict[str, int] = {"egamma": 16, "muon": 4, "hadrons": 16}


def build_sets(
    n_tau: int,
    objects: Mapping[str, ObjectTable],
    spec: FeatureSpec,
    scaling: Scaling,
    max_objects: Mapping[str, int],
    groups: Mapping[str, tuple[str, ...]] = SET_GROUPS,
) -> dict[str, np.ndarray]:
    """Padded, pT-ordered object sets per group plus their masks (see module docstring).

    Ranking and writing are compiled (:mod:`taucoffea.ml.set_kernels`): they are the loader's
    main cost in training, and the kernels release the interpreter lock.
    """
    out: dict[str, np.ndarray] = {}
    for group, types in groups.items():
        k = int(max_objects[group])
        widths = [spec.n_features(t) for t in types]
        tensor = np.zeros((n_tau, k, sum(widths)), dtype=np.float32)
        mask = np.zeros((n_tau, k), dtype=np.float32)
        tabs = [objects[t] for t in types]
        tau = np.concatenate([t.tau for t in tabs]).astype(np.int64, copy=False) if tabs else np.zeros(0, np.int64)
        if tau.size and k > 0:
            pt = np.concatenate([t.pt for t in tabs]).astype(np.float64, copy=False)
            slots = rank_slots(tau, pt, n_tau, k)  # = lexsort((-pt, tau)), first K per tau
            mask.reshape(-1)[slots[slots >= 0]] = 1.0
            flat = tensor.reshape(n_tau * k, sum(widths))
            first = offset = 0
            for table, width in zip(tabs, widths):
                if width and table.size:
                    names = spec.enabled(table.cell_type)
                    scatter_scaled(flat, slots[first : first + table.size],
                                   np.ascontiguousarray(table.raw, dtype=np.float64), table.inner,
                                   scaling.parameters(table.cell_type, names, "inner"),
                                   scaling.parameters(table.cell_type, names, "outer"), offset)
                first += table.size
                offset += width
        out[f"input_{group}"] = tensor
        out[f"input_{group}_mask"] = mask
    return out


@dataclass
class InputBuilder:
    """Turns rows (a :class:`ColumnBlock`) into the named float32 arrays a model takes."""

    kind: str = "light"
    spec: FeatureSpec = field(default_factory=FeatureSpec)
    scaling: Scaling = field(default_factory=Scaling.identity)
    max_objects: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_MAX_OBJECTS))

    def __post_init__(self) -> None:
        if self.kind not in INPUT_KINDS:
            raise ConfigError(f"model input kind '{self.kind}' is not known; allowed: {', '.join(INPUT_KINDS)}")
        if self.kind == "light":
            unknown = sorted(set(self.max_objects) - set(SET_GROUPS))
            missing = sorted(set(SET_GROUPS) - set(self.max_objects))
            if unknown or missing:
                raise ConfigError(
                    f"max_objects must give exactly the groups {sorted(SET_GROUPS)} (unknown: {unknown}, missing: {missing})"
                )

    def columns(self) -> list[str]:
        """Input columns the features need."""
        return required_columns(self.spec)

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-sample shapes of the model inputs, by input name."""
        shapes: dict[str, tuple[int, ...]] = {"input_tau": (self.spec.n_features("TauFlat"),)}
        if self.kind == "deeptau":
            for grid in (INNER, OUTER):
                for group in GRID_GROUPS:
                    shapes[f"input_{grid.name}_{group}"] = (grid.n_cells, grid.n_cells, self.spec.group_width(group))
        else:
            for group in SET_GROUPS:
                k = int(self.max_objects[group])
                shapes[f"input_{group}"] = (k, self.spec.group_width(group, with_global=False))
                shapes[f"input_{group}_mask"] = (k,)
        return shapes

    def build(self, block: ColumnBlock) -> dict[str, np.ndarray]:
        """The model inputs for all rows of ``block``."""
        names = self.spec.enabled("TauFlat")
        x = {"input_tau": self.scaling.apply(tau_features(block, self.spec, "TauFlat"), "TauFlat", names, "global")}
        objects = object_tables(block, self.spec, CELL_TYPES)
        if self.kind == "deeptau":
            glob = tau_features(block, self.spec, "GridGlobal")
            for grid in (INNER, OUTER):
                for group, tensor in build_grids(block.n, objects, glob, self.spec, self.scaling, grid).items():
                    x[f"input_{grid.name}_{group}"] = tensor
        else:
            x.update(build_sets(block.n, objects, self.spec, self.scaling, self.max_objects))
        return x

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "disabled": self.spec.to_dict(), "max_objects": dict(self.max_objects)}


def builder_from_config(config: Mapping[str, object], scaling: Scaling | None = None) -> InputBuilder:
    """The :class:`InputBuilder` of a resolved training configuration."""
    spec = FeatureSpec(config["data"]["features"]["disabled"])  # type: ignore[index]
    return InputBuilder(config["model"]["name"], spec, scaling or Scaling.identity(),  # type: ignore[index]
                        config["model"]["light"]["max_objects"])  # type: ignore[index]
