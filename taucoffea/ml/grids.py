"""DeepTau cell grids (reference §6.4): inner 11×11 cells of 0.02, outer 21×21 cells of 0.05.

Everything is vectorised over all taus of a batch at once: objects are keyed by
(tau, η cell, φ cell), the highest-pT object per key and type is found with one ``lexsort``,
and features are scattered into the ``[tau][ieta][iphi][feature]`` tensor with fancy indexing.

Rules (as the loader, with the decisions noted):

* inner grid: objects with ΔR < r_sig(tau pT) (strict); outer grid: ΔR < 0.5, signal-cone
  objects included (``rm_inner_from_outer`` off);
* cell index for odd sizes ``i = sign(x)·floor(|x|/size + 0.5)``, accepted if
  |x| ≤ size·n/2 **and** |i| ≤ n//2 — the second condition drops the degenerate
  |x| = size·n/2 case where the reference's index overflows and throws;
* per cell and object type only the highest-pT object is used (first in list order on ties);
* ``GridGlobal`` features go only into cells that hold at least one object of any type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from taucoffea.ml.features import GRID_GROUPS, FeatureSpec, ObjectTable, Scaling

__all__ = ["INNER", "OUTER", "GridSpec", "build_grids", "cell_index", "highest_pt_per_cell"]


@dataclass(frozen=True)
class GridSpec:
    """A square grid of ``n_cells`` × ``n_cells`` cells of ``cell_size`` in η and φ."""

    name: str
    n_cells: int
    cell_size: float

    @property
    def max_index(self) -> int:
        return self.n_cells // 2

    @property
    def half_width(self) -> float:
        return self.cell_size * self.n_cells / 2.0


INNER = GridSpec("inner", 11, 0.02)
OUTER = GridSpec("outer", 21, 0.05)


def cell_index(x: np.ndarray, grid: GridSpec) -> tuple[np.ndarray, np.ndarray]:
    """Signed cell index of offsets ``x`` and whether the offset lies inside the grid."""
    x = np.asarray(x, dtype=np.float64)
    if grid.n_cells % 2 == 1:
        idx = np.sign(x) * np.floor(np.abs(x) / grid.cell_size + 0.5)
        ok = (np.abs(x) <= grid.half_width) & (np.abs(idx) <= grid.max_index)
    else:  # even sizes: floor(x/size), the top index is skipped
        idx = np.floor(x / grid.cell_size)
        ok = (np.abs(x) <= grid.half_width) & (idx >= -grid.max_index) & (idx < grid.max_index)
    return idx.astype(np.int64), ok


def highest_pt_per_cell(key: np.ndarray, pt: np.ndarray) -> np.ndarray:
    """Indices of the highest-pT element for each distinct ``key`` (first one on ties)."""
    if key.size == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((-np.asarray(pt, dtype=np.float64), key))  # stable: ties keep list order
    k = key[order]
    first = np.ones(k.size, dtype=bool)
    first[1:] = k[1:] != k[:-1]
    return order[first]


def _place(table: ObjectTable, grid: GridSpec, inner_only: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(chosen object indices, tau, η cell, φ cell) of the objects filling this grid."""
    ie, ok_e = cell_index(table.deta, grid)
    ip, ok_p = cell_index(table.dphi, grid)
    ok = ok_e & ok_p
    if inner_only:
        ok &= table.inner
    sel = np.flatnonzero(ok)
    ie = ie[sel] + grid.max_index
    ip = ip[sel] + grid.max_index
    key = (table.tau[sel] * grid.n_cells + ie) * grid.n_cells + ip
    best = highest_pt_per_cell(key, table.pt[sel])
    return sel[best], table.tau[sel][best], ie[best], ip[best]


def build_grids(
    n_tau: int,
    objects: Mapping[str, ObjectTable],
    global_raw: np.ndarray,
    spec: FeatureSpec,
    scaling: Scaling,
    grid: GridSpec,
    groups: Mapping[str, tuple[str, ...]] = GRID_GROUPS,
) -> dict[str, np.ndarray]:
    """One float32 tensor ``(n_tau, n, n, width)`` per component group for one grid.

    ``global_raw`` are the unscaled GridGlobal features per tau (``(n_tau, n_global)``).
    """
    n = grid.n_cells
    placed = {t: _place(tab, grid, grid.name == "inner") for t, tab in objects.items()}
    occupied = np.zeros((n_tau, n, n), dtype=bool)
    for _, tau, ie, ip in placed.values():
        occupied[tau, ie, ip] = True
    global_names = spec.enabled("GridGlobal")
    global_scaled = scaling.apply(global_raw, "GridGlobal", global_names, grid.name) if global_names else None
    out: dict[str, np.ndarray] = {}
    for group, types in groups.items():
        width = sum(spec.n_features(t) for t in types)
        tensor = np.zeros((n_tau, n, n, width), dtype=np.float32)
        offset = 0
        for var_type in types:
            n_feat = spec.n_features(var_type)
            if n_feat == 0:
                continue
            if var_type == "GridGlobal":
                t_idx, e_idx, p_idx = np.nonzero(occupied)
                tensor[t_idx, e_idx, p_idx, offset : offset + n_feat] = global_scaled[t_idx]
            elif var_type in placed:
                chosen, tau, ie, ip = placed[var_type]
                table = objects[var_type]
                values = scaling.apply(table.raw[chosen], var_type, spec.enabled(var_type), grid.name)
                tensor[tau, ie, ip, offset : offset + n_feat] = values
            offset += n_feat
        out[group] = tensor
    return out
