"""Registry of the toy datasets: what each one contains, how big it is, how data differs from MC.

Each dataset is described by data only (class fractions, per-class pT spectra, the share of
leptons coming from τ decays, its share of the requested total size), so the generator code
stays generic and the documentation (``docs/toy.md``) can quote the numbers from one place.
Folder names follow the CMS sample names, so TauMLTools-style ``dir=`` regexes match them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

import numpy as np

from taucoffea.errors import ConfigError

__all__ = [
    "CLASS_NAMES",
    "DEFAULT_SHIFT",
    "E",
    "JET",
    "MU",
    "SIZES",
    "TAU",
    "TOY_DATASETS",
    "DataMCShift",
    "Spectrum",
    "ToyDataset",
    "class_fractions",
    "resolve_datasets",
    "resolve_sizes",
    "split_files",
]

#: Toy class indices; identical to the TauMLTools tau types e=0, mu=1, tau=2, jet=3.
E, MU, TAU, JET = 0, 1, 2, 3
CLASS_NAMES: tuple[str, ...] = ("e", "mu", "tau", "jet")

#: Named sizes: total number of taus over all requested datasets.
SIZES: dict[str, int] = {"small": 300_000, "medium": 2_000_000, "large": 10_000_000}

_MAX_PER_FILE = 50_000
_MIN_PER_FILE = 10_000


@dataclass(frozen=True)
class Spectrum:
    """A reco-tau pT spectrum as a mixture of simple shapes (all with pT ≥ 20 GeV).

    ``components`` holds ``(weight, kind, params)`` with kind
    ``"power"`` (params ``(n,)``: density ∝ pT^-n above 20 GeV),
    ``"gamma"`` (``(k, theta)``: pT = 20 + Gamma(k, θ), a Jacobian/Z-like peak at 20 + (k-1)θ)
    or ``"beta"`` (``(lo, hi, a, b)``: pT = lo + (hi - lo)·Beta(a, b), for resonance decays).
    """

    components: tuple[tuple[float, str, tuple[float, ...]], ...]


def _power(n: float) -> Spectrum:
    return Spectrum(((1.0, "power", (n,)),))


def _peak(k: float, theta: float, tail: float = 0.0, n_tail: float = 3.0) -> Spectrum:
    comps: list[tuple[float, str, tuple[float, ...]]] = [(1.0 - tail, "gamma", (k, theta))]
    if tail > 0:
        comps.append((tail, "power", (n_tail,)))
    return Spectrum(tuple(comps))


@dataclass(frozen=True)
class ToyDataset:
    """One toy dataset (one folder of ``eventTuple_<i>.root`` files).

    ``fractions`` are the e, μ, τ, jet shares of its taus; for a data set they are derived from
    ``processes`` (MC dataset name, share), which is how the data class mix is made equal to the
    MC mix by construction. ``lepton_from_tau`` is the share of e/μ rows that are τ→e/τ→μ
    decays (genLepton_kind 3/4) rather than prompt leptons (1/2). ``size_weight`` is the
    dataset's share of a named size. ``control_region`` samples model the μτ selection: one
    tau per event, a tag muon, and the MuTau preselection on the stored tau (see
    ``generator.CR_PRESELECTION``).
    """

    name: str
    description: str
    sample_type: int
    fractions: tuple[float, float, float, float]
    spectra: Mapping[int, Spectrum]
    size_weight: float
    lepton_from_tau: float = 0.0
    control_region: bool = False
    processes: tuple[tuple[str, float], ...] = ()
    mean_extra_entries: float = 1.0
    evaluation_only: bool = False


@dataclass(frozen=True)
class DataMCShift:
    """How the μτ-control-region "data" differs from the MC model (all 1/0 = no difference).

    The shifts change feature distributions only, never the class mix. Multiplicative factors
    scale the Poisson intensities / widths of the named component (``jet_*``: jets only,
    ``ue_charged_scale``: the soft charged underlying-event candidates of every class,
    ``pu_scale``: pile-up candidates, ``tau_dxy_lifetime_scale``: the genuine-τ IP lifetime
    width); ``tau_em_fraction_shift`` adds to the mean of the genuine-τ ``tau_emFraction`` Beta
    density; ``npv_mean`` is the mean number of primary vertices (MC: 30). The defaults were
    tuned so the VSjet score distributions of data and MC differ clearly (see docs/toy.md).
    """

    jet_iso_charged_scale: float = 1.50
    jet_iso_photon_scale: float = 1.40
    jet_signal_spread_scale: float = 1.10
    pu_scale: float = 1.15
    npv_mean: float = 33.0
    tau_em_fraction_shift: float = 0.10
    tau_dxy_lifetime_scale: float = 0.75
    ue_charged_scale: float = 1.50

    def to_dict(self) -> dict[str, float]:
        """Plain dict for the manifest."""
        return asdict(self)

    @classmethod
    def none(cls) -> DataMCShift:
        """A shift that changes nothing (data identical to MC)."""
        return cls(1.0, 1.0, 1.0, 1.0, 30.0, 0.0, 1.0, 1.0)


DEFAULT_SHIFT = DataMCShift()

# ---------------------------------------------------------------------------------------------
# Spectra shared by several datasets. Jets fall steeply (≈ pT^-4), Z→ττ visible taus peak at
# ~35 GeV, Z→ee/μμ leptons at the Jacobian peak ~42 GeV, H→ττ is slightly harder, top decays have
# long tails, the Z' electrons sit at ~1–2 TeV.
_JETS = _power(4.0)
_JETS_TT = _power(3.0)
_JETS_QCD = _power(3.5)
_DY_TAU = _peak(2.5, 10.0, tail=0.05)
_DY_LEP = _peak(6.0, 4.5, tail=0.15)
_W_LEP = _peak(3.0, 9.0, tail=0.1)
_TT_LEP = _peak(1.8, 35.0, tail=0.05, n_tail=2.5)
_H_TAU = _peak(2.5, 14.0, tail=0.05)
_ZP_E = Spectrum(((0.9, "beta", (300.0, 2200.0, 5.0, 1.6)), (0.1, "power", (2.0,))))


def _spectra(lep: Spectrum, tau: Spectrum, jet: Spectrum) -> dict[int, Spectrum]:
    return {E: lep, MU: lep, TAU: tau, JET: jet}


_MC: tuple[ToyDataset, ...] = (
    ToyDataset("DYJetsToLL_M-50", "Drell-Yan Z/γ*→ℓℓ + jets: taus, e/μ fakes and jets", 1,
               (0.12, 0.12, 0.30, 0.46), _spectra(_DY_LEP, _DY_TAU, _JETS), 0.13,
               lepton_from_tau=0.15, mean_extra_entries=1.2),
    ToyDataset("TTToSemiLeptonic", "tt̄ → semi-leptonic: all four classes, long tails", 1,
               (0.08, 0.08, 0.06, 0.78), _spectra(_TT_LEP, _TT_LEP, _JETS_TT), 0.08,
               lepton_from_tau=0.2, mean_extra_entries=2.5),
    ToyDataset("TTToHadronic", "tt̄ → hadronic: mostly jets", 1,
               (0.01, 0.01, 0.01, 0.97), _spectra(_TT_LEP, _TT_LEP, _JETS_TT), 0.04,
               lepton_from_tau=0.5, mean_extra_entries=3.0),
    ToyDataset("WJetsToLNu", "W→ℓν + jets: jets and some e/μ/τ", 1,
               (0.06, 0.06, 0.07, 0.81), _spectra(_W_LEP, _W_LEP, _JETS), 0.08,
               lepton_from_tau=0.15, mean_extra_entries=1.5),
    ToyDataset("QCD_Pt-15to7000", "QCD multijet: jets only", 1,
               (0.0, 0.0, 0.0, 1.0), _spectra(_JETS_QCD, _JETS_QCD, _JETS_QCD), 0.10,
               mean_extra_entries=2.0),
    ToyDataset("GluGluHToTauTau_M125", "H→ττ (evaluation): genuine taus, τ→e/μ, some jets", 1,
               (0.02, 0.02, 0.85, 0.11), _spectra(_H_TAU, _H_TAU, _JETS), 0.06,
               lepton_from_tau=1.0, mean_extra_entries=0.8, evaluation_only=True),
    ToyDataset("ZprimeToEE_M-4000", "Z'→ee: high-pT electrons (up to TeV)", 1,
               (0.9, 0.0, 0.0, 0.1), _spectra(_ZP_E, _ZP_E, _power(2.5)), 0.03,
               mean_extra_entries=0.5),
)

# μτ control region. The MC samples provide the adversarial contributions DY τ, tt τ, DY μ,
# tt jets, W jets and QCD jets (reference spec §7.3); "data" is their mixture with the shares
# below, generated with the DataMCShift applied.
_CR_MC: tuple[ToyDataset, ...] = (
    ToyDataset("DYJetsToLL_M-50_MuTau", "μτ CR: Z→ττ→μτ_h, Z→μμ (μ→τ fakes), some jets", 1,
               (0.02, 0.20, 0.70, 0.08), _spectra(_DY_LEP, _DY_TAU, _JETS), 0.07,
               lepton_from_tau=0.2, control_region=True),
    ToyDataset("TTToSemiLeptonic_MuTau", "μτ CR: tt̄ with genuine taus and jets", 1,
               (0.02, 0.03, 0.35, 0.60), _spectra(_TT_LEP, _TT_LEP, _JETS_TT), 0.07,
               lepton_from_tau=0.2, control_region=True),
    ToyDataset("WJetsToLNu_MuTau", "μτ CR: W→μν + jet (jet→τ fakes)", 1,
               (0.01, 0.01, 0.03, 0.95), _spectra(_W_LEP, _W_LEP, _JETS), 0.15,
               lepton_from_tau=0.15, control_region=True),
    ToyDataset("QCD_MuTau", "μτ CR: QCD multijet (jet→τ fakes)", 1,
               (0.0, 0.0, 0.0, 1.0), _spectra(_JETS, _JETS, _JETS), 0.14,
               control_region=True),
)

_DATA_PROCESSES: tuple[tuple[str, float], ...] = (
    ("DYJetsToLL_M-50_MuTau", 0.55),
    ("TTToSemiLeptonic_MuTau", 0.08),
    ("WJetsToLNu_MuTau", 0.22),
    ("QCD_MuTau", 0.15),
)


def _mixture_fractions(processes: Iterable[tuple[str, float]],
                       registry: Mapping[str, ToyDataset]) -> tuple[float, float, float, float]:
    total = np.zeros(4)
    for name, w in processes:
        total += w * np.asarray(registry[name].fractions)
    return tuple(float(x) for x in total / total.sum())  # type: ignore[return-value]


def _build_registry() -> dict[str, ToyDataset]:
    reg = {d.name: d for d in _MC + _CR_MC}
    data = ToyDataset(
        "SingleMuon_MuTau", "μτ CR data (sampleType 0): MC mixture with the data/MC shift", 0,
        _mixture_fractions(_DATA_PROCESSES, reg), {}, 0.12, control_region=True,
        processes=_DATA_PROCESSES,
    )
    reg[data.name] = data
    for d in reg.values():
        if abs(sum(d.fractions) - 1.0) > 1e-9:
            raise AssertionError(f"class fractions of toy dataset {d.name} do not sum to 1")
    return reg


#: All toy datasets by folder name, in generation order.
TOY_DATASETS: dict[str, ToyDataset] = _build_registry()


def class_fractions(name: str) -> np.ndarray:
    """Expected (e, μ, τ, jet) fractions of a dataset before the CR preselection."""
    return np.asarray(TOY_DATASETS[name].fractions, dtype=float)


def resolve_datasets(datasets: Iterable[str] | str | None) -> list[str]:
    """Validate a dataset selection (names or a comma list); ``None`` means all."""
    if datasets is None:
        return list(TOY_DATASETS)
    if isinstance(datasets, str):
        datasets = [d.strip() for d in datasets.split(",") if d.strip()]
    names = list(dict.fromkeys(datasets))
    unknown = [n for n in names if n not in TOY_DATASETS]
    if unknown or not names:
        raise ConfigError(
            f"unknown toy dataset(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"allowed are {', '.join(TOY_DATASETS)}"
        )
    return names


def resolve_sizes(size: str | int, datasets: Iterable[str]) -> dict[str, int]:
    """Number of taus per dataset for a named size or an explicit total.

    The total is shared by the datasets' ``size_weight`` (renormalised over the selection), so
    a ``--datasets`` subset still gets the requested total.
    """
    names = list(datasets)
    if isinstance(size, str) and size.strip().isdigit():
        size = int(size)
    if isinstance(size, str):
        if size not in SIZES:
            raise ConfigError(f"unknown toy size {size!r}; use one of {', '.join(SIZES)} or an "
                              "integer number of taus")
        total = SIZES[size]
    elif isinstance(size, (int, np.integer)) and not isinstance(size, bool) and size > 0:
        total = int(size)
    else:
        raise ConfigError(f"toy size must be {', '.join(SIZES)} or a positive integer, "
                          f"got {size!r}")
    weights = np.array([TOY_DATASETS[n].size_weight for n in names])
    raw = total * weights / weights.sum()
    counts = np.floor(raw).astype(np.int64)
    # hand out the remainder by largest fractional part, so the sum is exactly the total
    rest = total - int(counts.sum())
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[:rest]] += 1
    return {n: max(int(c), 1) for n, c in zip(names, counts, strict=True)}


def split_files(n: int, max_per_file: int = _MAX_PER_FILE) -> list[int]:
    """Split a dataset's taus into a few files of ≈10–50 k taus (sizes differ by at most 1).

    ``max_per_file`` raises the cap, e.g. for benchmarks with production-like file sizes.
    """
    n_files = max(math.ceil(n / max_per_file), min(3, n // _MIN_PER_FILE), 1)
    base, extra = divmod(n, n_files)
    return [base + (1 if i < extra else 0) for i in range(n_files)]

