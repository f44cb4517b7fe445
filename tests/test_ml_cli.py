"""``taucoffea train`` / ``taucoffea predict`` commands, scans, and the coffea runner script."""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
from pathlib import Path

import awkward as ak
import numpy as np
import pytest

pytest.importorskip("keras")

from taucoffea.errors import ConfigError  # noqa: E402
from taucoffea.ml.toydata import write_training_files  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:training weights:UserWarning")
REPO = Path(__file__).resolve().parents[1]
TINY = ["data.max_batches=3", "data.max_batches_val=1", "data.batch_size=100", "training.epochs=1",
        "model.light.set_units=[16]", "model.light.head_units=[16]", "model.light.tau_units=[16]"]


def _args(module, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return parser.parse_args(argv)


@pytest.fixture(scope="module")
def sm(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("clitoy")
    write_training_files(root / "sm", n_files=2, n_per_file=600, seed=12)
    return root / "sm"


def test_train_and_predict_commands(sm, tmp_path, capsys) -> None:
    from taucoffea.cli import predict as predict_cli
    from taucoffea.cli import train as train_cli

    run = tmp_path / "run"
    args = _args(train_cli, ["--config", str(REPO / "configs/training/light.yaml"), f"data.input={sm}", *TINY,
                             "--run-dir", str(run), "--verbose", "0"])
    assert train_cli.run(args) == 0
    assert "run directory" in capsys.readouterr().out and (run / "model.keras").exists()
    with pytest.raises(ConfigError, match="training.epoch'"):
        train_cli.run(_args(train_cli, [f"data.input={sm}", "training.epoch=2", "--run-dir", str(tmp_path / "x")]))
    with pytest.raises(ConfigError, match="--run-dir"):
        train_cli.run(_args(train_cli, ["--resume"]))
    assert train_cli.run(_args(train_cli, ["--run-dir", str(run), "--resume", "training.epochs=2", "--verbose", "0"])) == 0
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["0", "1"]
    out = tmp_path / "pred"
    files = sorted(str(p) for p in sm.glob("*.parquet"))
    pargs = _args(predict_cli, ["--run", str(run), "--input", *files, "--output", str(out), "--executor", "iterative", "--quiet"])
    assert predict_cli.run(pargs) == 0
    preds = sorted((out / "sm").glob("*_pred.parquet"))
    assert [p.name for p in preds] == ["ShuffleMergeSpectral_0_pred.parquet", "ShuffleMergeSpectral_1_pred.parquet"]
    assert len(ak.from_parquet(preds[0])) == 600


def test_scan_in_process_tabulates_every_line(sm, tmp_path) -> None:
    from taucoffea.cli import train as train_cli

    scan_file = tmp_path / "scan.txt"
    scan_file.write_text("# two learning rates and one broken line\ntraining.learning_rate=1e-3\n"
                         "training.learning_rate=3e-2 model.light.dropout_rate=0.0\ntraining.optimizer=adam training.loss=Hjet\n")
    args = _args(train_cli, [f"data.input={sm}", *TINY, "--scan", str(scan_file), "--run-dir", str(tmp_path / "scan"),
                             "--executor", "iterative", "--quiet"])
    assert train_cli.run(args) == 0
    rows = list(csv.DictReader((tmp_path / "scan" / "scan_results.csv").open()))
    assert [r["index"] for r in rows] == ["0", "1", "2"] and all(r["status"] == "ok" for r in rows)
    assert all(np.isfinite(float(r["val_loss"])) for r in rows)
    assert (tmp_path / "scan" / "scan_1" / "config.yaml").read_text().count("learning_rate: 0.03") == 1
    bad = tmp_path / "bad.txt"
    bad.write_text("training.learning_rat=1e-3\n")
    with pytest.raises(ConfigError, match="learning_rat"):  # checked before any training starts
        train_cli.run(_args(train_cli, [f"data.input={sm}", "--scan", str(bad), "--run-dir", str(tmp_path / "s2"),
                                        "--executor", "iterative"]))


@pytest.mark.slow  # Parsl start + two trainings in worker processes: 10-30 s on 2 cores
def test_scan_as_parsl_apps(sm, tmp_path) -> None:
    from taucoffea.execution.config import ExecutorConfig
    from taucoffea.ml.config import resolve_config
    from taucoffea.ml.trainer import scan

    cfg = resolve_config({"data": {"input": str(sm)}}, overrides=TINY)
    results = scan(cfg, [["training.seed=1"], ["training.seed=2"]], tmp_path / "scan",
                   executor=ExecutorConfig(executor="parsl", workers=2, progress=False))
    assert [r["status"] for r in results] == ["ok", "ok"]
    assert results[0]["val_loss"] != results[1]["val_loss"]  # different seeds, different trainings


@pytest.mark.slow
def test_runner_script(sm, tmp_path) -> None:
    from taucoffea.ml.config import resolve_config
    from taucoffea.ml.trainer import train

    run = tmp_path / "run"
    train(resolve_config({"data": {"input": str(sm)}}, overrides=TINY), run, verbose=0)
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, str(REPO / "processors" / "predict.py"), str(run), str(sm), str(tmp_path / "out"),
                          "--workers", "1", "--chunksize", "250"], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    pred = ak.from_parquet(tmp_path / "out" / "sm" / "ShuffleMergeSpectral_1_pred.parquet")
    src = ak.from_parquet(sm / "ShuffleMergeSpectral_1.parquet")
    np.testing.assert_array_equal(ak.to_numpy(pred.evt), ak.to_numpy(src.evt))


@pytest.mark.slow
def test_benchmark_script_runs(tmp_path) -> None:
    import json

    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "training.py"), "--n", "500", "--models", "light",
                          "--epochs", "2", "--json", str(tmp_path / "b.json")], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads((tmp_path / "b.json").read_text())["models"]["light"]
    assert res["taus"] == 500 and res["fit_streamed_taus_per_s"] > 0 and res["ratio"] > 0


def test_train_stage_for_pipelines(sm, tmp_path) -> None:
    from taucoffea.stages.train import run_train

    tiny = dict(t.split("=", 1) for t in TINY)
    import yaml

    overrides = {k: yaml.safe_load(v) for k, v in tiny.items()}
    res = run_train(None, tmp_path / "run", input_path=sm, overrides=overrides, verbose=0, session=None, executor="iterative")
    assert res.final and (tmp_path / "run" / "model.keras").exists()
    cfg = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert cfg["data"]["input"] == str(sm) and cfg["model"]["light"]["set_units"] == [16]
    res2 = run_train(None, tmp_path / "run", resume=True, overrides={"training.epochs": 2}, verbose=0)
    assert res2.initial_epoch == 1
