"""Rebinning fine (|η|, pT) spectra onto the coarse shuffle & merge bins.

The rule is the original ``RebinAndFill`` (``Core/interface/RootExt.h``, reference spec §3.4):
the input range must cover the target range and every input bin must lie inside a single
target bin; contents are then summed, and the input's under/overflow go to the target's
under/overflow. Anything else would split an input bin between two target bins, which can only
be done by guessing, so it is an error.

Edge comparison. The original compares edges with a relative tolerance of 2ε·|a + b|. Our
input edges come from ``hist`` Regular axes, which compute edge *i* as ``lo + i/n·(hi - lo)``:
edge 18 of ``Regular(25, 0, 2.5)`` is 1.7999999999999998, one ulp below the user's ``1.8``.
A tolerance relative to the *edge* fails at 0 and is tight near it; we instead use
``_EDGE_RTOL = 16 ε`` times the largest magnitude on the axis (ulps of the axis scale). For the
reference spectra that is 8.9e-15 in |η| and 1.8e-11 GeV in pT: far above rounding noise and far
below any bin width, so 0.6 / 1.2 / 1.8 / 2.4 are accepted and 0.65 or 25.5 are rejected.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import hist
import numpy as np

from taucoffea.errors import ConfigError

__all__ = ["parse_bin_edges", "rebin_hist2d", "validate_edges"]

_EDGE_RTOL = 16 * np.finfo(np.float64).eps


def parse_bin_edges(text: str | Iterable[float], what: str = "bins") -> np.ndarray:
    """Parse ``"20, 30, 40"`` (commas and/or blanks, as ``--pt-bins``) into validated edges."""
    if isinstance(text, str):
        parts = text.replace(",", " ").split()
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise ConfigError(f"{what} {text!r}: not a list of numbers") from None
    else:
        values = list(text)
    return validate_edges(values, what)


def validate_edges(edges: Sequence[float] | np.ndarray, what: str = "bins") -> np.ndarray:
    """Return ``edges`` as float64 after checking: ≥ 2 finite values, strictly increasing."""
    try:
        arr = np.asarray(edges, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} {edges!r}: not a list of numbers") from None
    if arr.ndim != 1 or arr.size < 2:
        raise ConfigError(f"{what} {list(np.atleast_1d(arr))}: need at least two edges")
    if not np.all(np.isfinite(arr)):
        raise ConfigError(f"{what} {arr.tolist()}: edges must be finite")
    bad = np.nonzero(np.diff(arr) <= 0)[0]
    if bad.size:
        i = int(bad[0])
        raise ConfigError(
            f"{what} {arr.tolist()}: edges must be strictly increasing "
            f"(edge {arr[i]:g} is followed by {arr[i + 1]:g})"
        )
    return arr


def rebin_hist2d(
    h: hist.Hist, eta_edges: Sequence[float], pt_edges: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Rebin a 2-D (|η|, pT) histogram onto ``eta_edges`` × ``pt_edges``; return (values, variances).

    Both arrays include flow bins: shape ``(len(eta_edges) + 1, len(pt_edges) + 1)``, index 0
    the underflow and -1 the overflow of each axis. Axis 0 of ``h`` must be |η| and axis 1 pT
    (the spectra contract). Input axes without flow bins contribute nothing there. Where the
    storage keeps no variances (a ``Double`` histogram filled with weights), the contents are
    used, as ROOT does for a TH2D without Sumw2.

    Raises :class:`ConfigError` ("incompatible bin edges …", naming the edge) if the input
    range does not cover the target range or a target edge falls inside an input bin.
    """
    if len(h.axes) != 2:
        raise ConfigError(f"expected a 2-D (|η|, pT) histogram, got {len(h.axes)} axes")
    names = tuple(ax.name for ax in h.axes)
    if names == ("pt", "abs_eta"):
        raise ConfigError("histogram axes are (pt, abs_eta); the spectra contract is (abs_eta, pt)")
    eta_new = validate_edges(eta_edges, "eta bins")
    pt_new = validate_edges(pt_edges, "pt bins")

    values = _full_flow(h, h.values(flow=True))
    variances_raw = h.variances(flow=True)
    variances = values.copy() if variances_raw is None else _full_flow(h, variances_raw)

    map_eta = _bin_map(np.asarray(h.axes[0].edges, dtype=np.float64), eta_new, "|η|")
    map_pt = _bin_map(np.asarray(h.axes[1].edges, dtype=np.float64), pt_new, "pT")
    shape = (eta_new.size + 1, pt_new.size + 1)
    return _scatter(values, map_eta, map_pt, shape), _scatter(variances, map_eta, map_pt, shape)


def _full_flow(h: hist.Hist, arr: np.ndarray) -> np.ndarray:
    """Pad an axis that has no under/overflow bin, so every array is (n + 2) per axis."""
    arr = np.asarray(arr, dtype=np.float64)
    pads = []
    for ax in h.axes:
        traits = ax.traits
        pads.append((0 if traits.underflow else 1, 0 if traits.overflow else 1))
    return np.pad(arr, pads)


def _bin_map(old: np.ndarray, new: np.ndarray, what: str) -> np.ndarray:
    """For each old bin including flow (n_old + 2), the index of its new bin including flow."""
    tol = _EDGE_RTOL * max(np.max(np.abs(old)), np.max(np.abs(new)))
    if old[0] > new[0] + tol or old[-1] < new[-1] - tol:
        offending = new[0] if old[0] > new[0] + tol else new[-1]
        raise ConfigError(
            f"incompatible bin edges: {what} target edge {offending:g} is outside the input "
            f"histogram range [{old[0]:g}, {old[-1]:g}] (the input must cover the target range)"
        )
    # Every target edge must coincide with an input edge; then no input bin straddles a
    # target edge, which is the "each old bin inside one new bin" rule.
    nearest = np.clip(np.searchsorted(old, new), 1, old.size - 1)
    below, above = old[nearest - 1], old[nearest]
    dist = np.minimum(np.abs(new - below), np.abs(new - above))
    bad = np.nonzero(dist > tol)[0]
    if bad.size:
        i = int(bad[0])
        raise ConfigError(
            f"incompatible bin edges: {what} target edge {new[i]:g} falls inside the input bin "
            f"[{below[i]:g}, {above[i]:g}); target edges must be input edges"
        )
    # Assign each old bin by its centre; with coinciding edges the centre decides unambiguously.
    centres = 0.5 * (old[:-1] + old[1:])
    inner = np.searchsorted(new, centres, side="right")  # 0 = underflow, len(new) = overflow
    return np.concatenate(([0], inner, [new.size]))


def _scatter(arr: np.ndarray, map_x: np.ndarray, map_y: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    out = np.zeros(shape, dtype=np.float64)
    ix, iy = np.meshgrid(map_x, map_y, indexing="ij")
    np.add.at(out, (ix, iy), arr)
    return out
