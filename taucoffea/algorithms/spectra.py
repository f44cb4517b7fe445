"""(|η|, pT) spectra per tau type: binning, filling, and the on-disk TH2D contract.

The spectra are the input of shuffle & merge, which rebins them onto coarser target bins, so
they are kept fine (reference default: 1 GeV × 0.1) and written under the original
CreateSpectralHists names (``eta_pt_hist_<type>``, x = |η|, y = pT) for TauMLTools tooling.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import hist
import numpy as np
import uproot

from taucoffea.columns.atomic import atomic_path, write_text_atomic
from taucoffea.columns.rootio import recreate
from taucoffea.errors import ConfigError, InputError

__all__ = [
    "HistSpec",
    "SpectrumBinning",
    "fill_spectra",
    "read_entries_txt",
    "read_spectra",
    "write_entries_txt",
    "write_spectra",
]

_TAU_TYPE_NAMES = ("e", "mu", "tau", "jet", "emb_e", "emb_mu", "emb_tau", "emb_jet", "data")
HIST_PREFIX = "eta_pt_hist_"
NOT_VALID = "not_valid"


@dataclass(frozen=True)
class HistSpec:
    """A uniform axis as CreateSpectralHists spells it: ``"n_bins, min, max"``."""

    n_bins: int
    low: float
    high: float

    def __post_init__(self) -> None:
        if self.n_bins < 1 or not self.low < self.high:
            raise ConfigError(f"invalid histogram spec {self}: need n_bins >= 1 and min < max")

    @classmethod
    def parse(cls, text: str | Iterable[float]) -> HistSpec:
        parts = [p for p in text.replace(",", " ").split()] if isinstance(text, str) else list(text)
        if len(parts) != 3:
            raise ConfigError(f"histogram spec '{text}' must have 3 values: 'n_bins, min, max'")
        try:
            n = int(parts[0])
            low, high = float(parts[1]), float(parts[2])
        except ValueError as err:
            raise ConfigError(f"histogram spec '{text}' is not 'n_bins, min, max': {err}") from None
        return cls(n, low, high)

    def __str__(self) -> str:
        return f"{self.n_bins}, {self.low:g}, {self.high:g}"


@dataclass(frozen=True)
class SpectrumBinning:
    """Spectrum binning; the default is the reference driver's hard-coded 1 GeV × 0.1."""

    pt: HistSpec = HistSpec(4990, 10.0, 5000.0)
    eta: HistSpec = HistSpec(25, 0.0, 2.5)

    def empty(self) -> hist.Hist:
        return hist.Hist(
            hist.axis.Regular(self.eta.n_bins, self.eta.low, self.eta.high, name="abs_eta", label="|η|"),
            hist.axis.Regular(self.pt.n_bins, self.pt.low, self.pt.high, name="pt", label="p_T [GeV]"),
            storage=hist.storage.Double(),
        )


def fill_spectra(
    tau_type: np.ndarray, abs_eta: np.ndarray, pt: np.ndarray, binning: SpectrumBinning
) -> tuple[dict[str, hist.Hist], int]:
    """Histogram valid taus per type; return the histograms and the number of invalid rows.

    Invalid rows (``tau_type < 0``) only count towards ``not_valid``, as in the original.
    Histograms exist only for types that occur (the original creates them lazily).
    """
    tau_type = np.asarray(tau_type)
    valid = tau_type >= 0
    out: dict[str, hist.Hist] = {}
    if valid.any():
        types = tau_type[valid]
        eta_v = np.asarray(abs_eta, dtype=np.float64)[valid]
        pt_v = np.asarray(pt, dtype=np.float64)[valid]
        order = np.argsort(types, kind="stable")
        types, eta_v, pt_v = types[order], eta_v[order], pt_v[order]
        present, starts = np.unique(types, return_index=True)
        bounds = list(starts[1:]) + [len(types)]
        for t, lo, hi in zip(present, starts, bounds, strict=True):
            h = binning.empty()
            h.fill(abs_eta=eta_v[lo:hi], pt=pt_v[lo:hi])
            out[_TAU_TYPE_NAMES[int(t)]] = h
    return out, int((~valid).sum())


def write_spectra(
    path: str | os.PathLike[str], hists: Mapping[str, hist.Hist], not_valid: int, *, overwrite: bool = False
) -> Path:
    """Write one dataset's spectra as a ROOT file with TH2D ``eta_pt_hist_<type>`` and ``not_valid``."""
    nv = hist.Hist(hist.axis.Regular(1, 0.0, 2.0, name="x"), storage=hist.storage.Double())
    nv.fill(x=np.ones(1), weight=float(not_valid))
    with atomic_path(path, overwrite=overwrite) as tmp, recreate(tmp) as f:
        for name in sorted(hists, key=_type_order):
            f[HIST_PREFIX + name] = hists[name]
        f[NOT_VALID] = nv
    return Path(path)


def _type_order(name: str) -> int:
    return _TAU_TYPE_NAMES.index(name) if name in _TAU_TYPE_NAMES else len(_TAU_TYPE_NAMES)


def read_spectra(path: str | os.PathLike[str]) -> tuple[dict[str, hist.Hist], int]:
    """Read a spectra ROOT file (ours or the original tool's) back into ``hist.Hist`` objects."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"spectra file '{path}' does not exist")
    try:
        f = uproot.open(path)
    except Exception as err:  # uproot raises several types for a non-ROOT file
        raise InputError(f"cannot read spectra file '{path}': {err}") from err
    with f:
        hists = {}
        not_valid = 0
        for key in f.keys(cycle=False):
            if key.startswith(HIST_PREFIX):
                hists[key[len(HIST_PREFIX) :]] = _named(f[key].to_hist())
            elif key == NOT_VALID:
                not_valid = int(round(f[key].values(flow=True).sum()))
    return hists, not_valid


def _named(h: hist.Hist) -> hist.Hist:
    """Give a histogram read from ROOT our axis names (ROOT stores x/y, not names)."""
    eta, pt = h.axes
    out = hist.Hist(
        hist.axis.Variable(eta.edges, name="abs_eta", label="|η|"),
        hist.axis.Variable(pt.edges, name="pt", label="p_T [GeV]"),
        storage=hist.storage.Double(),
    )
    out.view(flow=True)[...] = h.values(flow=True)
    return out


def write_entries_txt(path: str | os.PathLike[str], entries: Mapping[str, int], *, overwrite: bool = False) -> Path:
    """``<path> <n_entries>`` per file: the list shuffle & merge splits work with."""
    lines = "".join(f"{name} {int(n)}\n" for name, n in sorted(entries.items()))
    return write_text_atomic(path, lines, overwrite=overwrite)


def read_entries_txt(path: str | os.PathLike[str]) -> dict[str, int]:
    """Parse ``path n_entries`` lines; the count is the text after the last space (as the original)."""
    out: dict[str, int] = {}
    for i, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        name, sep, n = line.rstrip().rpartition(" ")
        if not sep or not n.isdigit():
            raise InputError(f"{path}:{i}: expected '<file> <n_entries>', got '{line}'")
        out[name] = int(n)
    return out
