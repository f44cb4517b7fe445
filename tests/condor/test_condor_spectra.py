"""The spectra stage on a real HTCondor pool gives the same files as a local run."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from conftest import write_mini_tautuple
from taucoffea.execution.config import ExecutorConfig
from taucoffea.stages.spectra import run_spectra

pytestmark = [pytest.mark.condor, pytest.mark.slow]


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.root"))}


def test_spectra_through_condor_provider_matches_local(condor_pool, tmp_path):
    work = condor_pool.scratch_dir("spectra")
    for ds, sizes in (("DY", (3000, 2000)), ("QCD", (4000,))):
        for i, n in enumerate(sizes):
            write_mini_tautuple(work / "in" / ds / f"eventTuple_{i}.root", n, seed=50 + 10 * i + len(ds))
    for p in (work / "in").rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    condor_pool.executor_yaml(work / "condor.yaml", chunksize=1500)
    proc = condor_pool.run(
        [
            condor_pool.python, "-m", "taucoffea.cli.main", "spectra",
            "--input", str(work / "in"), "--output", str(work / "out"),
            "--executor", str(work / "condor.yaml"),
        ],
        cwd=work,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_spectra(work / "in", tmp_path / "local", executor=ExecutorConfig(executor="iterative", progress=False))
    condor = _digests(work / "out")
    assert condor and condor == _digests(tmp_path / "local")
    report = json.loads((work / "out" / "spectra_report.json").read_text())
    assert report["executor"] == "condor"
