"""processors/shuffle_merge.py (plain coffea Runner + ParslExecutor) = `taucoffea shuffle-merge`, byte for byte."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import write_mini_tautuple
from taucoffea.execution.config import ExecutorConfig
from taucoffea.stages.shuffle_merge import run_shuffle_merge
from taucoffea.stages.spectra import run_spectra

REPO = Path(__file__).resolve().parents[1]
GROUPS = """groups:
  GA: {dir: 'A', file: 'eventTuple.*', types: [e, mu, tau, jet]}
  GB: {dir: 'B', file: 'eventTuple.*', types: [e, mu, jet]}
"""
OPTIONS = {
    "pt_bins": "20, 30, 40, 60, 100",
    "eta_bins": "0, 1.2, 2.4",
    "tau_ratio": "e:1, mu:1, tau:2, jet:1",
    "seed": 2024,
    "n_files": 3,
    "lastbin_takeall": True,
    "lastbin_disbalance": 2.0,
}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): _sha(p) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow  # Parsl start-up + two Runner passes: ~15-20 s on 2 cores
def test_runner_script_matches_the_stage(tmp_path: Path) -> None:
    for ds, sizes in (("A", (5000, 3000)), ("B", (7000,))):
        for i, n in enumerate(sizes):
            write_mini_tautuple(tmp_path / "in" / ds / f"eventTuple_{i}.root", n, seed=77 * ord(ds) + i)
    (tmp_path / "groups.yaml").write_text(GROUPS)
    iterative = ExecutorConfig(executor="iterative", progress=False)
    run_spectra(tmp_path / "in", tmp_path / "spec", executor=iterative)
    stage = run_shuffle_merge(tmp_path / "groups.yaml", tmp_path / "in", tmp_path / "spec", tmp_path / "stage",
                              executor=iterative, chunksize=4000, **OPTIONS)

    cmd = [
        sys.executable, str(REPO / "processors" / "shuffle_merge.py"),
        "--cfg", str(tmp_path / "groups.yaml"), "--input", str(tmp_path / "in"), "--output", str(tmp_path / "script"),
        "--pt-bins", OPTIONS["pt_bins"], "--eta-bins", OPTIONS["eta_bins"], "--tau-ratio", OPTIONS["tau_ratio"],
        "--seed", str(OPTIONS["seed"]), "--n-files", str(OPTIONS["n_files"]),
        "--lastbin-takeall", "--lastbin-disbalance", str(OPTIONS["lastbin_disbalance"]),
        "--workers", "2", "--chunksize", "2500",
    ]
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    ours, theirs = _files(tmp_path / "script"), _files(tmp_path / "stage")
    compared = [f"ShuffleMergeSpectral_{k}.parquet" for k in range(OPTIONS["n_files"])] + [
        "dataset_hash.json", "datagroup_hash.json", "closure.json",
        "acceptance/acceptance.json", "acceptance/expected.json", "acceptance/expected_counts.txt",
        "acceptance/GA.root", "acceptance/GA_n.root", "acceptance/GB.root", "acceptance/GB_n.root",
    ]
    for name in compared:
        assert name in theirs and ours.get(name) == theirs[name], name
    assert sum(stage.rows) > 2000
    # pass 1 of the script writes the same spectra as `taucoffea spectra`
    for name, digest in _files(tmp_path / "spec").items():
        if name.endswith((".root", ".txt")):
            assert ours[f"spectra/{name}"] == digest, name
    assert not (tmp_path / "script" / ".parts").exists()
