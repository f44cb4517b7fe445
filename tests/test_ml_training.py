"""End to end: streamed training of the light model, run directory, resume, predictions."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
from scipy.stats import rankdata

keras = pytest.importorskip("keras")

from taucoffea.execution.config import ExecutorConfig  # noqa: E402
from taucoffea.ml.config import resolve_config  # noqa: E402
from taucoffea.ml.toydata import write_control_region, write_training_files  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:training weights:UserWarning")
ITERATIVE = ExecutorConfig(executor="iterative", progress=False)


def _auc(score: np.ndarray, label: np.ndarray) -> float:
    """Mann-Whitney AUC (ties averaged)."""
    r = rankdata(score)
    n1 = label.sum()
    n0 = label.size - n1
    return float((r[label == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("mltoy")
    write_training_files(root / "sm", n_files=4, n_per_file=3000, seed=3)
    write_training_files(root / "eval", n_files=1, n_per_file=4000, seed=77)
    write_control_region(root / "cr", n=1500, seed=5)
    return {"sm": root / "sm", "eval": root / "eval" / "ShuffleMergeSpectral_0.parquet", "cr": root / "cr", "root": root}


@pytest.fixture(scope="module")
def light_run(toy) -> object:
    from taucoffea.ml.trainer import train

    cfg = resolve_config({"data": {"input": str(toy["sm"]), "validation_split": 0.25, "workers": 2},
                          "training": {"epochs": 4, "tensorboard_update_freq": 10}})
    return train(cfg, toy["root"] / "run_light", verbose=0)


def test_light_model_beats_best_single_feature(light_run, toy) -> None:
    from taucoffea.ml.blocks import ColumnBlock
    from taucoffea.ml.features import FeatureSpec, required_columns, tau_features
    from taucoffea.ml.predict import load_trained, prediction_columns

    ev = ak.from_parquet(toy["eval"])
    pred = prediction_columns(load_trained(light_run.run_dir), ev)
    t = ak.to_numpy(ev.tauType)
    sel = (t == 2) | (t == 3)
    y = (t[sel] == 2).astype(int)
    d_jet = pred["node_tau"][sel] / (pred["node_tau"][sel] + pred["node_jet"][sel])
    model_auc = _auc(d_jet, y)
    spec = FeatureSpec()
    feats = tau_features(ColumnBlock.from_columns(ev, required_columns(spec, cells=False)), spec)[sel]
    single = max(max(a, 1 - a) for a in (_auc(np.nan_to_num(feats[:, j], nan=-9.0), y) for j in range(feats.shape[1])))
    # ~2000 held-out tau/jet rows: the AUC's standard error is ~0.005
    print(f"AUC tau vs jet: model {model_auc:.4f}, best single feature {single:.4f}")
    assert model_auc > single + 0.03, (model_auc, single)
    assert np.allclose(pred["node_e"] + pred["node_mu"] + pred["node_tau"] + pred["node_jet"], 1.0, atol=1e-5)


def test_run_directory(light_run) -> None:
    run = light_run.run_dir
    for name in ("config.yaml", "run_info.json", "scaling.json", "training_weights.json", "model.keras", "metrics.csv"):
        assert (run / name).exists(), name
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3] and "val_loss" in rows[0]
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    assert sorted(p.name for p in (run / "checkpoints").glob("epoch_*.keras")) == [f"epoch_00{i}.keras" for i in (1, 2, 3, 4)]
    info = json.loads((run / "run_info.json").read_text())
    assert info["status"] == "finished" and info["keras_version"] == keras.__version__ and info["taucoffea_version"]
    assert "git_commit" in info and info["n_params"] > 1000 and info["final_metrics"]["loss"] == pytest.approx(float(rows[-1]["loss"]))
    events = sorted((run / "tensorboard").rglob("events.out.tfevents.*"))
    assert {p.parent.name for p in events} == {"train", "validation"}
    try:
        from tensorflow.python.summary.summary_iterator import summary_iterator
    except ImportError:
        return
    tags = {v.tag for p in events for e in summary_iterator(str(p)) for v in e.summary.value}
    assert {"epoch_loss", "epoch_accuracy", "batch_loss"} <= tags


def test_save_load_gives_same_predictions(light_run, toy) -> None:
    from taucoffea.ml.predict import TrainedModel

    ev = ak.from_parquet(toy["eval"])[:600]
    trained = TrainedModel.load(light_run.run_dir)
    from taucoffea.ml.blocks import ColumnBlock

    x = trained.builder.build(ColumnBlock.from_columns(ev, trained.columns))
    a = trained.model.predict(x, verbose=0)["main_output"]
    compiled = keras.saving.load_model(light_run.run_dir / "model.keras")  # with optimizer state
    b = compiled.predict(x, verbose=0)["main_output"]
    last = keras.saving.load_model(light_run.run_dir / "checkpoints" / "epoch_004.keras", compile=False)
    c = last.predict(x, verbose=0)["main_output"]
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    tmp = light_run.run_dir.parent / "resaved.keras"
    trained.model.save(tmp)
    np.testing.assert_array_equal(keras.saving.load_model(tmp, compile=False).predict(x, verbose=0)["main_output"], a)


def test_batches_are_deterministic_and_cover_each_row_once(toy) -> None:
    from taucoffea.ml.dataset import TauDataset, find_parquet, split_blocks
    from taucoffea.ml.inputs import InputBuilder

    train_blocks, val_blocks = split_blocks(find_parquet(toy["sm"]), 0.25)
    assert len(val_blocks) == 1 and Path(val_blocks[0].path).name == "ShuffleMergeSpectral_3.parquet"
    builder = InputBuilder("light")

    def order(ds: TauDataset) -> list[float]:
        return np.concatenate([ds.rows(i).column("tau_pt") for i in range(len(ds))]).tolist()

    a = TauDataset(train_blocks, builder, 256, seed=9, workers=2)
    b = TauDataset(train_blocks, builder, 256, seed=9, cache_blocks=1)
    e0 = order(a)
    assert e0 == order(b)
    assert len(e0) == 9000 and len(a) == 3 * 12  # batches never straddle files: 3000 = 11·256 + 184
    a.set_epoch(1)
    e1 = order(a)
    assert e1 != e0 and sorted(e1) == sorted(e0)  # a new permutation of the same rows
    x, y, w = a[0]
    np.testing.assert_array_equal(x["input_tau"], builder.build(a.rows(0))["input_tau"])
    assert y["main_output"].sum() == len(y["main_output"]) and w["main_output"].min() >= 0
    val = TauDataset(val_blocks, builder, 500, shuffle=False)
    first = order(val)
    val.set_epoch(3)
    assert order(val) == first
    assert first == ak.to_numpy(ak.from_parquet(val_blocks[0].path, columns=["tau_pt"]).tau_pt).tolist()


def test_batches_sliced_from_built_pieces_equal_batches_built_alone(toy) -> None:
    from taucoffea.ml.dataset import TauDataset, find_parquet, split_blocks
    from taucoffea.ml.inputs import InputBuilder

    train_blocks, _ = split_blocks(find_parquet(toy["sm"]), 0.25)
    light = InputBuilder("light")
    a = TauDataset(train_blocks, light, 256, seed=9, workers=2)
    b = TauDataset(train_blocks, light, 256, seed=9, cache_blocks=1)  # pieces evicted and rebuilt
    assert a.piece_rows > 256 and a.piece_rows % 256 == 0  # several batches per build call
    for epoch in (0, 1):
        for ds in (a, b):
            ds.set_epoch(epoch)
        for i in range(len(a)):
            alone = light.build(a.rows(i))
            for x in (a[i][0], b.inputs(i)):
                assert x.keys() == alone.keys()
                for k in alone:  # the last batch of each block (184 rows) included
                    np.testing.assert_array_equal(x[k], alone[k], err_msg=f"epoch {epoch} batch {i} {k}")
    grids = TauDataset(train_blocks, InputBuilder("deeptau"), 64, seed=9, max_batches=2)
    assert grids.piece_rows == 64  # ~0.5 MB of grids per tau: one batch per piece
    np.testing.assert_array_equal(grids.inputs(1)["input_inner_hadrons"],
                                  InputBuilder("deeptau").build(grids.rows(1))["input_inner_hadrons"])


def test_resume_continues_where_it_stopped(toy) -> None:
    from taucoffea.ml.trainer import train

    cfg = resolve_config({"data": {"input": str(toy["sm"]), "max_batches": 4, "max_batches_val": 2},
                          "model": {"light": {"dropout_rate": 0.0}}, "training": {"epochs": 2}})
    full = train(cfg, toy["root"] / "run_full", verbose=0)
    first = train(resolve_config(cfg, overrides=["training.epochs=1"]), toy["root"] / "run_resumed", verbose=0)
    assert first.final
    resumed = train({}, toy["root"] / "run_resumed", resume=True, overrides=["training.epochs=2"], verbose=0)
    assert resumed.initial_epoch == 1
    rows = list(csv.DictReader((toy["root"] / "run_resumed" / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    # same data order, restored optimizer state: the resumed second epoch matches the uninterrupted one
    assert resumed.final["loss"] == pytest.approx(full.final["loss"], rel=1e-3)
    assert resumed.final["val_loss"] == pytest.approx(full.final["val_loss"], rel=1e-3)
    with pytest.raises(Exception, match="not empty"):
        train(cfg, toy["root"] / "run_full", verbose=0)


def test_predict_stage_rows_aligned_with_inputs(light_run, toy, tmp_path) -> None:
    from taucoffea.ml.predict import load_trained, prediction_columns
    from taucoffea.stages.predict import FILEMAP_NAME, run_predict

    out = tmp_path / "pred"
    result = run_predict(light_run.run_dir, {"evalset": [str(toy["eval"])]}, out,
                         executor=ITERATIVE.replace(chunksize=700), batch_size=300)
    assert len(result.outputs) == 1
    pred = ak.from_parquet(result.outputs[0])
    src = ak.from_parquet(toy["eval"])
    assert len(pred) == len(src)
    np.testing.assert_array_equal(ak.to_numpy(pred.evt), ak.to_numpy(src.evt))
    np.testing.assert_array_equal(ak.to_numpy(pred.tau_index), ak.to_numpy(src.tau_index))
    for c in ("tauType", "genLepton_kind", "toy_true_class", "truth_loglik_tau", "tau_byDeepTau2017v2p1VSjetraw", "tau_dz"):
        assert c in pred.fields
    direct = prediction_columns(load_trained(light_run.run_dir), src)
    np.testing.assert_allclose(ak.to_numpy(pred.node_tau), direct["node_tau"], rtol=1e-5, atol=1e-6)  # chunking-independent
    filemap = json.loads((out / FILEMAP_NAME).read_text())
    assert filemap == {str(result.outputs[0].resolve()): str(toy["eval"].resolve())}
    assert not (out / ".predict_parts").exists()
    with pytest.raises(Exception, match="already exists"):
        run_predict(light_run.run_dir, {"evalset": [str(toy["eval"])]}, out, executor=ITERATIVE)


def test_predict_on_tautuple_root(light_run, tmp_path) -> None:
    from taucoffea.stages.predict import run_predict
    from taucoffea.toy.generator import generate_file_columns
    from taucoffea.toy.writer import write_taus

    cols, lists = generate_file_columns("GluGluHToTauTau_M125", 1200, seed=4)
    write_taus(tmp_path / "in" / "GluGluHToTauTau_M125" / "eventTuple_0.root", cols, lists)
    result = run_predict(light_run.run_dir, tmp_path / "in", tmp_path / "out", fmt="tautuple",
                         executor=ITERATIVE.replace(chunksize=500))
    pred = ak.from_parquet(result.outputs[0])
    assert len(pred) == 1200
    np.testing.assert_array_equal(ak.to_numpy(pred.evt), cols["evt"])
    no_tau = cols["tau_index"] < 0
    assert no_tau.any() and np.all(ak.to_numpy(pred.node_tau)[no_tau] == 0)  # no reco tau: zero scores (A.19)
    t = ak.to_numpy(pred.tauType)
    assert set(np.unique(t)) <= {-1, 0, 1, 2, 3} and (t == 2).sum() > 500  # recomputed from the gen match


def test_adversarial_training_and_predictions(light_run, toy, tmp_path) -> None:
    from taucoffea.ml.trainer import train
    from taucoffea.stages.predict import run_predict

    cfg = resolve_config({"data": {"input": str(toy["sm"]), "max_batches": 4, "max_batches_val": 2},
                          "training": {"epochs": 1, "pretrained": str(light_run.run_dir)},
                          "adversarial": {"enabled": True, "input": str(toy["cr"]), "n_adv_tau": 60}})
    res = train(cfg, tmp_path / "adv", verbose=0)
    for key in ("main_output_loss", "adv_output_loss", "adv_output_accuracy", "grad_shared", "grad_class", "grad_adv",
                "val_adv_output_loss"):
        assert key in res.final and np.isfinite(res.final[key]), key
    info = json.loads((tmp_path / "adv" / "run_info.json").read_text())
    assert info["pretrained_copied"] > 5 and all(m.startswith("adv") for m in info["pretrained_missing"])
    out = run_predict(tmp_path / "adv", toy["cr"], tmp_path / "pred", executor=ITERATIVE)
    pred = ak.from_parquet(out.outputs[0])
    for c in ("y_adv", "adv_label", "adv_weight", "dataset_id", "Djet", "node_jet"):
        assert c in pred.fields, c
    d = ak.to_numpy(pred.Djet)
    np.testing.assert_allclose(d, ak.to_numpy(pred.node_tau) / (ak.to_numpy(pred.node_tau) + ak.to_numpy(pred.node_jet)), rtol=1e-6)
    assert np.all((ak.to_numpy(pred.y_adv) > 0) & (ak.to_numpy(pred.y_adv) < 1))


def test_time_checkpoints_and_optional_mlflow(toy, tmp_path, monkeypatch) -> None:
    import sys
    import types

    from taucoffea.ml.trainer import train

    calls: list[tuple[str, object]] = []
    fake = types.ModuleType("mlflow")
    for name in ("set_tracking_uri", "set_experiment", "log_params", "log_artifact", "end_run"):
        setattr(fake, name, lambda *a, _n=name, **k: calls.append((_n, a)))
    fake.start_run = lambda **k: calls.append(("start_run", k))
    fake.log_metrics = lambda metrics, step: calls.append(("log_metrics", (dict(metrics), step)))
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    cfg = resolve_config({"data": {"input": str(toy["sm"]), "max_batches": 4, "max_batches_val": 1},
                          "training": {"epochs": 2, "checkpoint_every_s": 0.0, "checkpoint_check_batches": 2},
                          "mlflow": {"enabled": True, "experiment": "unit"}})
    train(cfg, tmp_path / "run", verbose=0)
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("time_*.keras"))
    assert names == ["time_e000_b000002.keras", "time_e000_b000004.keras", "time_e001_b000002.keras", "time_e001_b000004.keras"]
    kinds = [c[0] for c in calls]
    assert kinds[:4] == ["set_tracking_uri", "set_experiment", "start_run", "log_params"] and kinds[-1] == "end_run"
    epochs = [c[1] for c in calls if c[0] == "log_metrics"]
    assert [step for _, step in epochs] == [0, 1] and "val_loss" in epochs[0][0]
