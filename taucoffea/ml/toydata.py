"""Small training inputs from the toy generator, for tests, benchmarks and documentation.

``write_training_files`` stands in for the shuffle & merge output: toy taus of several MC
datasets, gen-matched into ``tauType``, not-valid rows dropped, mixed and shuffled, written as
``ShuffleMergeSpectral_<k>.parquet``. ``write_control_region`` stands in for the mixed μτ
control region of the adversarial chain (columns + ``adv_label`` 1 data / 0 MC,
``adv_weight``, ``dataset_id``). Both are deterministic in ``seed``; the real pipeline stages
produce the same layouts at scale.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import awkward as ak
import numpy as np

from taucoffea.physics.dataset_hash import std_hash
from taucoffea.physics.tautypes import compute_tau_type

__all__ = ["MC_DATASETS", "CR_DATASETS", "labelled_taus", "write_control_region", "write_training_files"]

MC_DATASETS: tuple[str, ...] = ("DYJetsToLL_M-50", "TTToSemiLeptonic", "WJetsToLNu", "QCD_Pt-15to7000")
CR_DATASETS: tuple[str, ...] = ("DYJetsToLL_M-50_MuTau", "TTToSemiLeptonic_MuTau", "WJetsToLNu_MuTau", "QCD_MuTau")
CR_DATA = "SingleMuon_MuTau"


def labelled_taus(dataset: str, n: int, seed: int, file_index: int = 0) -> ak.Array:
    """Toy rows of one dataset with ``tauType`` (gen match) and ``dataset_id`` set."""
    from taucoffea.toy.generator import generate_taus

    arr = generate_taus(dataset, n, seed=seed, file_index=file_index)
    cols = {c: ak.to_numpy(arr[c]) for c in ("genLepton_kind", "genLepton_index", "genJet_index", "tau_pt", "tau_eta",
                                             "tau_phi", "genLepton_vis_pt", "genLepton_vis_eta", "genLepton_vis_phi",
                                             "sampleType", "tau_index")}
    tau_type = compute_tau_type(cols).astype(np.int32)
    arr = ak.with_field(arr, tau_type, "tauType")
    return ak.with_field(arr, np.full(len(arr), std_hash(dataset), dtype=np.uint64), "dataset_id")


def write_training_files(
    output: str | os.PathLike[str], *, n_files: int = 2, n_per_file: int = 2000, seed: int = 1,
    datasets: Sequence[str] = MC_DATASETS, balance: bool = True,
) -> list[Path]:
    """``ShuffleMergeSpectral_<k>.parquet`` files with valid (tauType 0..3) toy taus.

    With ``balance`` the four types are subsampled to equal counts (as S&M's 1:1:1:1 ratio).
    """
    from taucoffea.columns.parquet import write_parquet

    rng = np.random.Generator(np.random.Philox(key=[int(seed), 0x5EED]))
    total = n_files * n_per_file
    factor = 2 if balance else 1
    while True:
        want = int(total * 1.2 * factor / len(datasets)) + 500
        parts = []
        for i, ds in enumerate(datasets):
            arr = labelled_taus(ds, want, seed=seed * 1000 + i)
            parts.append(arr[ak.to_numpy(arr.tauType) >= 0])
        rows = ak.concatenate(parts)
        t = ak.to_numpy(rows.tauType)
        per = min(int((t == k).sum()) for k in range(4))
        if not balance or 4 * per >= total or factor >= 64:
            break
        factor *= 2
    if balance:
        keep = np.concatenate([rng.permutation(np.flatnonzero(t == k))[:per] for k in range(4)])
        rows = rows[np.sort(keep)]
    rows = rows[rng.permutation(len(rows))[:total]]
    out = Path(output)
    paths = []
    for k in range(n_files):
        part = rows[k * n_per_file : (k + 1) * n_per_file]
        if len(part):
            paths.append(write_parquet(part, out / f"ShuffleMergeSpectral_{k}.parquet"))
    return paths


def write_control_region(
    output: str | os.PathLike[str], *, n: int = 2000, seed: int = 2, data_fraction: float = 0.5,
) -> Path:
    """One mixed control-region parquet: ``data_fraction`` data rows, the rest MC."""
    from taucoffea.columns.parquet import write_parquet

    rng = np.random.Generator(np.random.Philox(key=[int(seed), 0xAD7]))
    n_data = int(round(n * data_fraction))
    data = labelled_taus(CR_DATA, n_data, seed=seed)
    mc_parts = []
    n_mc = n - n_data
    for i, ds in enumerate(CR_DATASETS):
        arr = labelled_taus(ds, n_mc // len(CR_DATASETS) + 1, seed=seed * 100 + i)
        mc_parts.append(arr[ak.to_numpy(arr.tauType) >= 0])
    mc = ak.concatenate(mc_parts)[: n - n_data]
    rows = ak.concatenate([data, mc])
    label = np.concatenate([np.ones(len(data), np.float32), np.zeros(len(mc), np.float32)])
    rows = ak.with_field(rows, label, "adv_label")
    rows = ak.with_field(rows, np.ones(len(rows), np.float32), "adv_weight")
    rows = rows[rng.permutation(len(rows))]
    return write_parquet(rows, Path(output) / "mixed_control_region.parquet")
