"""Shared fixtures: small hand-made TauTuples and the real NanoAOD samples in ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "nano_dy.root").exists():
        pytest.skip(f"real NanoAOD samples not found in {SHARED_DATA} (the workplace's shared/data folder)")
    return SHARED_DATA


def write_mini_tautuple(path: Path, n: int, seed: int, *, drop: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """A TauTuple with just the branches gen matching needs, with known truth.

    Types are drawn uniformly from e/mu/tau/jet; ~10 % of rows are made invalid in ways the
    reference gen-match rejects (ΔR > 0.2, vis pT below threshold, no reco tau).
    """
    from taucoffea.columns.atomic import atomic_path
    from taucoffea.columns.rootio import recreate

    rng = np.random.Generator(np.random.Philox(seed))
    cls = rng.integers(0, 4, n)
    pt = (20 + rng.exponential(30, n)).astype(np.float32)
    eta = rng.uniform(-2.4, 2.4, n).astype(np.float32)
    phi = rng.uniform(-np.pi, np.pi, n).astype(np.float32)
    kind = np.choose(cls, [1, 2, 5, 0]).astype(np.int32)
    lep_index = np.where(cls < 3, 0, -1).astype(np.int32)
    jet_index = np.where(cls == 3, 0, -1).astype(np.int32)
    vis_pt = (pt * rng.uniform(0.9, 1.1, n)).astype(np.float32)
    vis_eta = (eta + rng.normal(0, 0.02, n)).astype(np.float32)
    vis_phi = (phi + rng.normal(0, 0.02, n)).astype(np.float32)
    bad = rng.random(n) < 0.1
    vis_eta = np.where(bad & (cls < 3), eta + 1.0, vis_eta).astype(np.float32)
    tau_index = np.where(bad & (cls == 3), -1, 0).astype(np.int32)
    expected = np.where(bad, -1, cls).astype(np.int32)
    branches = {
        "evt": np.arange(n, dtype=np.uint64) + np.uint64(seed * 1_000_000),
        "sampleType": np.ones(n, dtype=np.int32),
        "genLepton_kind": kind,
        "genLepton_index": lep_index,
        "genJet_index": jet_index,
        "genLepton_vis_pt": vis_pt,
        "genLepton_vis_eta": vis_eta,
        "genLepton_vis_phi": vis_phi,
        "tau_index": tau_index,
        "tau_pt": pt,
        "tau_eta": eta,
        "tau_phi": phi,
    }
    branches = {k: v for k, v in branches.items() if k not in drop}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, recreate(tmp) as f:
        tree = f.mktree("taus", {k: v.dtype for k, v in branches.items()})
        tree.extend(branches)
    return {"expected_type": expected, "abs_eta": np.abs(eta), "pt": pt}


@pytest.fixture
def mini_tuples(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """Two datasets, three files: ``tmp/input/{A,B}/eventTuple_<i>.root``."""
    root = tmp_path / "input"
    truth: dict[str, list[np.ndarray]] = {"A": [], "B": []}
    for ds, sizes in (("A", (3000, 2500)), ("B", (4000,))):
        for i, n in enumerate(sizes):
            t = write_mini_tautuple(root / ds / f"eventTuple_{i}.root", n, seed=100 * ord(ds) + i)
            truth[ds].append(t["expected_type"])
    return root, {ds: np.concatenate(v) for ds, v in truth.items()}


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep the file-metadata cache of the test run out of the user's ~/.cache."""
    os.environ["TAUCOFFEA_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MPLBACKEND", "Agg")


#: pT edges of the adversarial mix inputs' weights
MIX_EDGES = [30.0, 40, 50, 70, 100, 400]
#: taus available per contribution: W_jets is the scarcest (62 // 5 = 12 batches)
MIX_AVAILABLE = {"data": 900, "DY_taus": 700, "tt_taus": 60, "DY_muons": 25, "tt_jets": 30, "W_jets": 62,
                 "QCD_jets": 80}


def write_mix_inputs(root: Path) -> Path:
    """Inputs of the adversarial mix under ``root``: ``drop/<contribution>/part_*.parquet`` (two
    files for data and DY τ) and their pT weights in ``weights/`` (shared by the mix tests and
    the fault drills)."""
    import awkward as ak

    from taucoffea.adversarial.contributions import DEFAULT_CONFIG
    from taucoffea.columns.parquet import write_parquet
    from taucoffea.execution.config import ExecutorConfig
    from taucoffea.stages.reweight import run_reweight

    rng = np.random.Generator(np.random.Philox(8))
    for k, c in enumerate(DEFAULT_CONFIG.contributions):
        n = MIX_AVAILABLE[c.name]
        pt = (30 + rng.exponential(12 + 4 * k, n)).clip(30, 399).astype(np.float32)
        rows = ak.zip(
            {
                "evt": np.arange(n, dtype=np.uint64) + np.uint64(1_000_000 * k),
                "sampleType": np.full(n, 0 if c.is_data else 1, np.int32),
                "tauType": np.full(n, -1, np.int32),
                "tau_pt": pt,
                "mytauType": np.full(n, 8 if c.is_data else c.tau_type, np.int32),
                "dataset_id": np.full(n, np.iinfo(np.uint64).max, np.uint64),
                "pfCand_pt": ak.unflatten(rng.random(3 * n).astype(np.float32), np.full(n, 3)),
            },
            depth_limit=1,
        )
        cut = n // 3 if c.name in ("data", "DY_taus") else n
        write_parquet(rows[:cut], root / "drop" / c.name / "part_0.parquet")
        if cut < n:
            write_parquet(rows[cut:], root / "drop" / c.name / "part_1.parquet")
    run_reweight(root / "drop", root / "weights", pt_edges=MIX_EDGES,
                 executor=ExecutorConfig(executor="iterative", progress=False))
    return root
