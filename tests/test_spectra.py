"""Spectra stage: totals, orientation, determinism across executors and chunk sizes."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import uproot

from taucoffea.algorithms.spectra import HistSpec, SpectrumBinning, read_entries_txt, read_spectra
from taucoffea.errors import ConfigError, OutputExistsError
from taucoffea.execution.config import ExecutorConfig
from taucoffea.stages.spectra import run_spectra

REPO = Path(__file__).resolve().parents[1]
ITER = ExecutorConfig(executor="iterative", progress=False)
NAMES = ("e", "mu", "tau", "jet")


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.root"))}


def test_totals_equal_valid_taus(mini_tuples, tmp_path):
    root, truth = mini_tuples
    result = run_spectra(root, tmp_path / "out", executor=ITER, chunksize=1000)
    for ds, expected in truth.items():
        hists, not_valid = read_spectra(tmp_path / "out" / f"{ds}.root")
        assert not_valid == int((expected == -1).sum())
        for t, name in enumerate(NAMES):
            assert hists[name].sum(flow=True) == (expected == t).sum()
        entries = read_entries_txt(tmp_path / "out" / f"{ds}.txt")
        assert sum(entries.values()) == len(expected)
        assert all(Path(p).exists() for p in entries)
    assert "A" in result.summary()


def test_root_layout_matches_original(mini_tuples, tmp_path):
    root, _ = mini_tuples
    run_spectra(root, tmp_path / "out", executor=ITER)
    with uproot.open(tmp_path / "out" / "A.root") as f:
        h = f["eta_pt_hist_tau"]
        assert h.classname == "TH2D"
        x, y = h.axes
        assert (x.low, x.high, len(x)) == (0.0, 2.5, 25)  # x = |eta|, 0.1 bins
        assert (y.low, y.high, len(y)) == (10.0, 5000.0, 4990)  # y = pT, 1 GeV bins
        assert f["not_valid"].classname == "TH1D"


def test_same_output_for_chunk_sizes_and_executors(mini_tuples, tmp_path):
    root, _ = mini_tuples
    run_spectra(root, tmp_path / "c1000", executor=ITER, chunksize=1000)
    run_spectra(root, tmp_path / "c100k", executor=ITER, chunksize=100_000)
    parsl_cfg = ExecutorConfig(executor="parsl", workers=2, progress=False)
    run_spectra(root, tmp_path / "parsl", executor=parsl_cfg, chunksize=700)
    reference = _digest(tmp_path / "c1000")
    assert reference and reference == _digest(tmp_path / "c100k") == _digest(tmp_path / "parsl")
    # equal bytes imply equal contents; check contents too so a failure says what differs
    a, _ = read_spectra(tmp_path / "c1000" / "B.root")
    b, _ = read_spectra(tmp_path / "parsl" / "B.root")
    for name in a:
        np.testing.assert_array_equal(a[name].values(flow=True), b[name].values(flow=True))


def test_refuses_to_overwrite(mini_tuples, tmp_path):
    root, _ = mini_tuples
    run_spectra(root, tmp_path / "out", executor=ITER)
    with pytest.raises(OutputExistsError, match="--overwrite"):
        run_spectra(root, tmp_path / "out", executor=ITER)
    run_spectra(root, tmp_path / "out", executor=ITER, overwrite=True)


def test_custom_binning_and_bad_spec(mini_tuples, tmp_path):
    root, truth = mini_tuples
    binning = SpectrumBinning(pt=HistSpec.parse("98, 20, 1000"), eta=HistSpec.parse("5, 0, 2.5"))
    result = run_spectra(root, None, executor=ITER, binning=binning)
    h = result.spectra["A"]["jet"]
    assert h.axes[1].size == 98 and h.sum(flow=True) == (truth["A"] == 3).sum()
    for bad in ("10, 5, 1", "0, 0, 1", "1, 2", "a, 0, 1"):
        with pytest.raises(ConfigError):
            HistSpec.parse(bad)


def test_nanoaod_spectra(shared_data, tmp_path):
    result = run_spectra(
        {"DY": [str(shared_data / "nano_dy.root")]}, tmp_path / "out", fmt="nanoaod", executor=ITER, chunksize=10
    )
    assert sum(h.sum(flow=True) for h in result.spectra["DY"].values()) == 29
    assert result.entries["DY"][str(shared_data / "nano_dy.root")] == 40


def test_cli_and_plot(mini_tuples, tmp_path):
    root, _ = mini_tuples
    from taucoffea.cli.main import main

    assert main(["spectra", "--input", str(root), "--output", str(tmp_path / "s"), "--executor", "iterative", "--quiet"]) == 0
    assert main(["spectra", "--input", str(root), "--output", str(tmp_path / "s"), "--executor", "iterative"]) == 2
    assert main(["plot", "spectra", "--input", str(tmp_path / "s"), "--output", str(tmp_path / "plots")]) == 0
    png = tmp_path / "plots" / "spectra_A.png"
    assert png.exists() and png.stat().st_size > 20_000
    assert (tmp_path / "plots" / "spectra_A.pdf").stat().st_size > 5_000


@pytest.mark.slow
def test_runner_script_matches_stage(mini_tuples, tmp_path):
    root, _ = mini_tuples
    run_spectra(root, tmp_path / "stage", executor=ITER)
    proc = subprocess.run(
        [sys.executable, str(REPO / "processors" / "spectra.py"), str(root), str(tmp_path / "script"), "--workers", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _digest(tmp_path / "stage") == _digest(tmp_path / "script")
