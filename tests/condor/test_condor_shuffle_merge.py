"""Shuffle & merge on a real HTCondor pool writes the bytes of a local run.

Both map passes run in HTCondor jobs: the sampling pass as coffea chunks through Parsl's
CondorProvider, the merge as Parsl apps (one per output file). The parts travel through the
scratch folder the pool shares with the submit side, as on a real pool's shared filesystem.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import pytest

from taucoffea.execution.config import ExecutorConfig
from taucoffea.stages.shuffle_merge import run_shuffle_merge
from taucoffea.stages.spectra import run_spectra

pytestmark = [pytest.mark.condor, pytest.mark.slow]

GROUPS = """groups:
  DY: {dir: 'DY.*', file: '.*\\.root', types: [jet, e, mu, tau]}
  TT: {dir: 'TT.*', file: '.*\\.root', types: [jet, e, mu, tau]}
  QCD: {dir: 'QCD.*', file: '.*\\.root', types: [jet]}
"""
OPTIONS = ["--pt-bins", "20, 30, 40, 50, 70, 100, 1000", "--eta-bins", "0., 1.2, 2.4",
           "--tau-ratio", "jet:1, e:1, mu:1, tau:1", "--lastbin-takeall", "--lastbin-disbalance", "100",
           "--enable-emptybin", "--n-files", "2", "--seed", "11"]


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.suffix in (".parquet", ".json") and "report" not in p.name}


def test_shuffle_merge_through_condor_provider_matches_local(condor_pool, tmp_path):
    from taucoffea.toy.generator import generate_toy

    work = condor_pool.scratch_dir("shuffle_merge")
    sizes = {"DYJetsToLL_M-50": 1600, "TTToSemiLeptonic": 1200, "QCD_Pt-15to7000": 1200}
    for i, (ds, n) in enumerate(sizes.items()):
        generate_toy(work / "in", seed=5, size=n, datasets=[ds], overwrite=i > 0, progress=False,
                     max_per_file=n // 2 + 3)
    (work / "groups.yaml").write_text(GROUPS)
    for p in work.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    condor_pool.executor_yaml(work / "condor.yaml", chunksize=500)
    # the spectra (pass 1) are made locally: tests/condor/test_condor_spectra.py covers that stage
    local = ExecutorConfig(executor="iterative", progress=False)
    run_spectra(work / "in", work / "spectra", executor=local)
    for p in (work / "spectra").rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    proc = condor_pool.run(
        [condor_pool.python, "-m", "taucoffea.cli.main", "shuffle-merge", "--cfg", str(work / "groups.yaml"),
         "--input", str(work / "in"), "--input-spec", str(work / "spectra"), "--output", str(work / "out"),
         "--executor", str(work / "condor.yaml"), *OPTIONS],
        cwd=work,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    from taucoffea.cli.shuffle_merge import add_arguments  # the same options, parsed as the CLI does

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--cfg", "x", "--input", "x", "--input-spec", "x", "--output", "x", *OPTIONS])
    run_shuffle_merge(
        work / "groups.yaml", work / "in", work / "spectra", tmp_path / "local", executor=local, chunksize=700,
        pt_bins=args.pt_bins, eta_bins=args.eta_bins, tau_ratio=args.tau_ratio, seed=args.seed,
        n_files=args.n_files, lastbin_takeall=args.lastbin_takeall, lastbin_disbalance=args.lastbin_disbalance,
        enable_emptybin=args.enable_emptybin,
    )
    condor, here = _digests(work / "out"), _digests(tmp_path / "local")
    assert sum(name.startswith("ShuffleMergeSpectral_") for name in condor) == 2
    assert condor == here
    assert not (work / "out" / ".parts").exists()
    assert json.loads((work / "out" / "shuffle_merge_report.json").read_text())["executor"] == "condor"
