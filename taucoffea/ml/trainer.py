"""The trainer: one run directory per training, resumable, reproducible.

A run directory holds::

    config.yaml               the resolved configuration (defaults + file + overrides)
    run_info.json             versions, git commit, backend, timings, final metrics
    scaling.json              the scaling parameters the inputs were built with
    training_weights.json     the sample weights (correctionlib), when used
    model.keras               the final model
    metrics.csv               one row per epoch (Keras CSVLogger)
    checkpoints/epoch_NNN.keras    after each epoch (NNN = epochs completed)
    checkpoints/time_eNNN_bNNNNNN.keras   every ``checkpoint_every_s`` seconds (reference: 12 h)
    tensorboard/{train,validation}/   scalar logs

``--resume`` continues from the newest epoch checkpoint with the stored configuration (plus
any overrides, e.g. more epochs); because the batch order depends only on (seed, epoch) the
resumed run sees the same batches as an uninterrupted one (dropout draws are not restored).
"""

from __future__ import annotations

import contextlib
import copy
import datetime as _dt
import hashlib
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from taucoffea.columns.atomic import atomic_path, write_text_atomic
from taucoffea.errors import ConfigError, OutputExistsError, TaucoffeaError
from taucoffea.ml import import_keras
from taucoffea.ml.config import apply_overrides, resolve_config

keras = import_keras()

# the custom layers, losses and optimizer must be registered before any model is loaded
from taucoffea.ml import adversarial as _adversarial  # noqa: E402,F401
from taucoffea.ml import losses as _losses  # noqa: E402,F401
from taucoffea.ml import models as _models  # noqa: E402,F401

__all__ = ["TrainResult", "build_datasets", "copy_weights_by_name", "make_builder", "run_info", "scan", "train"]

_OPTIMIZERS = {"nadam": "Nadam", "adam": "Adam", "sgd": "SGD", "rmsprop": "RMSprop", "adamw": "AdamW"}
_EPOCH_CKPT = re.compile(r"epoch_(\d+)\.keras")


@dataclass
class TrainResult:
    """What a training produced."""

    run_dir: Path
    history: dict[str, list[float]] = field(default_factory=dict)
    final: dict[str, float] = field(default_factory=dict)
    model_path: Path | None = None
    initial_epoch: int = 0


# ============================================================================ provenance
def _git_commit() -> tuple[str | None, bool | None]:
    src = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return None, None
        dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        return commit.stdout.strip(), bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None, None


def run_info() -> dict[str, Any]:
    """Versions and provenance recorded in every run directory."""
    import taucoffea

    backend = keras.backend.backend()
    backend_version = None
    with contextlib.suppress(Exception):
        backend_version = __import__({"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend, backend)).__version__
    commit, dirty = _git_commit()
    return {
        "taucoffea_version": taucoffea.__version__,
        "keras_version": keras.__version__,
        "backend": backend,
        "backend_version": backend_version,
        "numpy_version": np.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "host": platform.node(),
        "git_commit": commit,
        "git_dirty": dirty,
    }


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=_jsonable) + "\n")


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


# ============================================================================ inputs
def make_builder(config: Mapping[str, Any], scaling: Any) -> Any:
    """The :class:`InputBuilder` a configuration describes."""
    from taucoffea.ml.inputs import builder_from_config

    return builder_from_config(config, scaling)


def _read_sample(blocks: Sequence[Any], columns: Sequence[str], n: int) -> Any:
    import awkward as ak

    from taucoffea.ml.blocks import ColumnBlock

    parts, have = [], 0
    for blk in blocks:
        arr = ak.from_parquet(blk.path, columns=list(columns), row_groups=[blk.row_group])[blk.start : blk.stop]
        parts.append(ColumnBlock.from_columns(arr, columns, source=f"'{blk.path}'"))
        have += parts[-1].n
        if have >= n:
            break
    block = ColumnBlock.concatenate(parts)
    return block.slice(0, n)


def _prepare_scaling(config: Mapping[str, Any], run_dir: Path, train_blocks: Sequence[Any], resume: bool) -> Any:
    from taucoffea.ml.features import FeatureSpec, Scaling, estimate_scaling
    from taucoffea.ml.inputs import InputBuilder

    target = run_dir / "scaling.json"
    if resume and target.exists():
        return Scaling.load(target)
    source = config["data"]["scaling"]
    if source in (None, "none"):
        return Scaling.identity()
    if source == "auto":
        spec = FeatureSpec(config["data"]["features"]["disabled"])
        columns = InputBuilder(config["model"]["name"], spec).columns()
        sample = _read_sample(train_blocks, columns, int(config["data"]["scaling_sample"]))
        params = estimate_scaling(sample, spec)
        _write_json(target, params)
        return Scaling.load(target)
    src = Path(str(source))
    scaling = Scaling.load(src)
    shutil.copyfile(src, target)
    return Scaling(scaling.params, str(target))


def _prepare_weights(config: Mapping[str, Any], run_dir: Path, train_blocks: Sequence[Any], resume: bool) -> Any:
    from taucoffea.ml import weights as tw

    target = run_dir / "training_weights.json"
    if resume:
        return tw.load_weights(target) if target.exists() else None
    cfg = config["weights"]
    source = cfg["source"]
    if source in (None, "none"):
        return None
    if isinstance(source, str) and source.endswith(".json") and source != "auto":
        shutil.copyfile(source, target)
        return tw.load_weights(target)
    if source == "auto":
        spectra = _spectra_from_blocks(train_blocks)
    elif isinstance(source, str) and source.endswith(".root"):
        spectra = tw.spectra_from_root(source)
    else:
        raise ConfigError(f"weights.source must be 'auto', 'none', a correctionlib .json or a spectrum .root file, got {source!r}")
    weights = tw.compute_training_weights(spectra)
    weights.check(float(cfg["limit"]), cfg["policy"])
    weights.write(target)
    return tw.load_weights(target)


def _spectra_from_blocks(blocks: Sequence[Any]) -> Any:
    import pyarrow.parquet as pq

    from taucoffea.ml.weights import spectra_from_arrays

    types, pts, etas = [], [], []
    for blk in blocks:
        table = pq.ParquetFile(blk.path).read_row_group(blk.row_group, columns=["tauType", "tau_pt", "tau_eta"])
        types.append(table.column("tauType").to_numpy()[blk.start : blk.stop])
        pts.append(table.column("tau_pt").to_numpy()[blk.start : blk.stop])
        etas.append(np.abs(table.column("tau_eta").to_numpy()[blk.start : blk.stop]))
    return spectra_from_arrays(np.concatenate(types), np.concatenate(pts), np.concatenate(etas))


def build_datasets(config: Mapping[str, Any], builder: Any, weights: Any, initial_epoch: int = 0,
                   run_dir: Path | None = None) -> tuple[Any, Any]:
    """(train, validation) PyDatasets for a configuration (adversarial ones when enabled)."""
    from taucoffea.ml.dataset import AdversarialDataset, TauDataset, find_parquet, split_blocks

    data = config["data"]
    if not data["input"]:
        raise ConfigError("data.input is not set: give the shuffle & merge output folder (ShuffleMergeSpectral_*.parquet)")
    train_blocks, val_blocks = split_blocks(find_parquet(data["input"]), float(data["validation_split"]))
    seed = int(config["training"]["seed"])
    common = {"workers": int(data["workers"]), "use_multiprocessing": bool(data["use_multiprocessing"]),
              "max_queue_size": int(data["queue_size"]), "cache_blocks": data["cache_blocks"]}
    train = TauDataset(train_blocks, builder, int(data["batch_size"]), weights=weights, seed=seed, shuffle=True,
                       epoch=initial_epoch, max_batches=data["max_batches"], **common)
    val = None
    if val_blocks:
        val = TauDataset(val_blocks, builder, int(data["batch_size"]), weights=weights, seed=seed, shuffle=False,
                         max_batches=data["max_batches_val"], **common)
    adv = config["adversarial"]
    if not adv["enabled"]:
        return train, val
    if not adv["input"]:
        raise ConfigError("adversarial.enabled is true but adversarial.input (the mixed control-region parquet) is not set")
    a_train, a_val = split_blocks(find_parquet(adv["input"]), float(adv["validation_split"]))
    extra = ("adv_label", "adv_weight")
    n_adv = int(adv["n_adv_tau"])
    for ds in (train, val):
        if ds is not None:
            ds.workers = 1  # the wrapper below runs the workers
    common_adv = {k: v for k, v in common.items() if k != "cache_blocks"}
    adv_train = TauDataset(a_train, builder, n_adv, seed=seed + 1, shuffle=True, epoch=initial_epoch, extra_columns=extra)
    train = AdversarialDataset(train, adv_train, **common_adv)
    if val is not None and a_val:
        adv_val = TauDataset(a_val, builder, n_adv, seed=seed + 1, shuffle=False, extra_columns=extra)
        val = AdversarialDataset(val, adv_val, **common_adv)
    else:
        val = None
    return train, val


# ============================================================================ model
def copy_weights_by_name(model: Any, source: Any) -> tuple[list[str], list[str]]:
    """Copy weights layer by layer where names and shapes agree (the reference's pretrained start).

    Returns (copied layer names, layers of ``model`` with weights that were not copied).
    """
    from taucoffea.ml.adversarial import GradientScale

    by_name = {layer.name: layer for layer in source.layers}
    copied, missing = [], []
    for layer in model.layers:
        if not layer.weights or isinstance(layer, GradientScale):
            continue
        src = by_name.get(layer.name)
        if src is None or len(src.weights) != len(layer.weights) or any(
            tuple(a.shape) != tuple(b.shape) for a, b in zip(src.weights, layer.weights)
        ):
            missing.append(layer.name)
            continue
        layer.set_weights(src.get_weights())
        copied.append(layer.name)
    return copied, missing


def _optimizer(name: str, learning_rate: float) -> Any:
    return keras.optimizers.get({"class_name": _OPTIMIZERS[name], "config": {"learning_rate": float(learning_rate)}})


def _compile(model: Any, config: Mapping[str, Any]) -> None:
    from taucoffea.ml.adversarial import RoutedOptimizer
    from taucoffea.ml.losses import TauLoss, make_metrics

    tr = config["training"]
    loss = {"main_output": TauLoss(tr["loss"], tr["loss_sfs"])}
    metrics = {"main_output": make_metrics(tr["metrics"], tr["loss_sfs"])}
    optimizer = _optimizer(tr["optimizer"], tr["learning_rate"])
    if config["adversarial"]["enabled"]:
        adv = config["adversarial"]
        optimizer = RoutedOptimizer(optimizer, _optimizer(adv["optimizer"], adv["learning_rate"]))
        loss["adv_output"] = keras.losses.BinaryCrossentropy(name="adv_loss")
        metrics["adv_output"] = [keras.metrics.BinaryAccuracy(name="accuracy")]
    model.compile(optimizer=optimizer, loss=loss, weighted_metrics=metrics)


def _build_model(config: Mapping[str, Any], builder: Any) -> Any:
    from taucoffea.ml.models import build_model

    kind = config["model"]["name"]
    adv = config["adversarial"]
    head = {"k1": adv["k1"], "k2": adv["k2"], "units": adv["units"]} if adv["enabled"] else None
    cfg = config["model"]["light"] if kind == "light" else config["model"]["deeptau"]
    return build_model(kind, builder.input_shapes(), cfg, head)


def _load_pretrained(path: str) -> Any:
    p = Path(path)
    if p.is_dir():
        p = p / "model.keras"
    if not p.exists():
        raise ConfigError(f"training.pretrained: '{p}' does not exist (give a run directory or a .keras file)")
    return keras.saving.load_model(p, compile=False)


# ============================================================================ callbacks
def _callbacks(run_dir: Path, config: Mapping[str, Any], resume: bool) -> list[Any]:
    from taucoffea.ml.adversarial import GradientMonitor
    from taucoffea.ml.tblog import TensorBoardScalars

    tr = config["training"]
    out: list[Any] = []
    if config["adversarial"]["enabled"]:
        out.append(GradientMonitor())
    if int(tr["step_decay"]) > 0:
        lr0, every = float(tr["learning_rate"]), int(tr["step_decay"])
        out.append(keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr0 * 0.5 ** (epoch // every)))
    out.append(keras.callbacks.TerminateOnNaN())
    tb = TensorBoardScalars(run_dir / "tensorboard", tr["tensorboard_update_freq"]) if tr["tensorboard"] else None
    out.append(_RunCallback(run_dir, float(tr["checkpoint_every_s"]), int(tr["checkpoint_check_batches"]), tb))
    out.append(keras.callbacks.CSVLogger(str(run_dir / "metrics.csv"), append=resume))
    mlflow_cb = _mlflow_callback(run_dir, config)
    if mlflow_cb is not None:
        out.append(mlflow_cb)
    return out


def _save_model(model: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        model.save(tmp)


class _RunCallback(keras.callbacks.Callback):
    """Epoch and time-based checkpoints, TensorBoard scalars."""

    def __init__(self, run_dir: Path, every_s: float, check_batches: int, tb: Any) -> None:
        super().__init__()
        self.run_dir, self.every_s, self.check_batches, self.tb = run_dir, every_s, max(1, check_batches), tb
        self._last_save = time.monotonic()
        self._epoch = 0
        self._step = 0

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self._step += 1
        if self.tb is not None:
            self.tb.batch(self._step, logs)
        if (batch + 1) % self.check_batches == 0 and time.monotonic() - self._last_save >= self.every_s:
            _save_model(self.model, self.run_dir / "checkpoints" / f"time_e{self._epoch:03d}_b{batch + 1:06d}.keras")
            self._last_save = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        _save_model(self.model, self.run_dir / "checkpoints" / f"epoch_{epoch + 1:03d}.keras")
        if self.tb is not None:
            self.tb.epoch(epoch, logs)

    def on_train_end(self, logs: Any = None) -> None:
        if self.tb is not None:
            self.tb.close()


def _mlflow_callback(run_dir: Path, config: Mapping[str, Any]) -> Any:
    enabled = config["mlflow"]["enabled"]
    if enabled is False or enabled == "false":
        return None
    try:
        import mlflow  # noqa: F401
    except ImportError:
        if enabled is True:
            raise ConfigError("mlflow.enabled is true but mlflow is not installed (pip install mlflow)") from None
        return None

    class MlflowLogger(keras.callbacks.Callback):
        """Optional: the same run in MLflow (params, per-epoch metrics, the run directory)."""

        def on_train_begin(self, logs: Any = None) -> None:
            import mlflow

            uri = config["mlflow"]["tracking_uri"] or (run_dir.resolve().parent / "mlruns").as_uri()
            mlflow.set_tracking_uri(uri)
            mlflow.set_experiment(config["mlflow"]["experiment"])
            self._run = mlflow.start_run(run_name=run_dir.name)
            mlflow.log_params({k: str(v)[:250] for k, v in _flatten(config).items()})

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            import mlflow

            mlflow.log_metrics({k: float(v) for k, v in (logs or {}).items() if _finite(v)}, step=epoch)

        def on_train_end(self, logs: Any = None) -> None:
            import mlflow

            with contextlib.suppress(Exception):
                mlflow.log_artifact(str(run_dir / "config.yaml"))
                mlflow.log_artifact(str(run_dir / "metrics.csv"))
            mlflow.end_run()

    return MlflowLogger()


def _finite(v: Any) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


# ============================================================================ run directory
def _latest_epoch_checkpoint(run_dir: Path) -> tuple[int, Path | None]:
    best, path = 0, None
    for p in (run_dir / "checkpoints").glob("epoch_*.keras"):
        m = _EPOCH_CKPT.fullmatch(p.name)
        if m and int(m.group(1)) > best:
            best, path = int(m.group(1)), p
    return best, path


def _prepare_run_dir(run_dir: Path, config: Mapping[str, Any], resume: bool, overwrite: bool,
                     overrides: Sequence[str]) -> dict[str, Any]:
    cfg_path = run_dir / "config.yaml"
    if resume:
        if not cfg_path.exists():
            raise ConfigError(f"cannot resume: '{cfg_path}' does not exist (not a run directory)")
        stored = yaml.safe_load(cfg_path.read_text())
        resolved = resolve_config(stored, where=str(cfg_path))
        resolved = apply_overrides(resolved, overrides)
        resolve_config(resolved)  # validate again
    else:
        if run_dir.exists() and any(run_dir.iterdir()):
            if not overwrite:
                raise OutputExistsError(f"run directory '{run_dir}' is not empty; use --resume to continue it or --overwrite to replace it")
            if not cfg_path.exists():
                raise OutputExistsError(f"refusing to overwrite '{run_dir}': it does not look like a run directory (no config.yaml)")
            shutil.rmtree(run_dir)
        resolved = copy.deepcopy(dict(config))
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(cfg_path, yaml.safe_dump(resolved, sort_keys=False))
    return resolved


def default_run_dir(config: Mapping[str, Any], base: str | os.PathLike[str] = "runs") -> Path:
    """``runs/<model>[_adv]_<YYYYmmdd-HHMMSS>``."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    suffix = "_adv" if config["adversarial"]["enabled"] else ""
    return Path(base) / f"{config['model']['name']}{suffix}_{stamp}"


# ============================================================================ train
def train(
    config: Mapping[str, Any],
    run_dir: str | os.PathLike[str] | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    overrides: Sequence[str] = (),
    verbose: int | str | None = None,
) -> TrainResult:
    """Train the model a resolved configuration describes; see the module docstring."""
    from taucoffea.ml.dataset import find_parquet, split_blocks

    run_path = Path(run_dir) if run_dir is not None else default_run_dir(config)
    cfg = _prepare_run_dir(run_path, config, resume, overwrite, overrides)
    tr = cfg["training"]
    initial_epoch, checkpoint = _latest_epoch_checkpoint(run_path) if resume else (0, None)
    info_path = run_path / "run_info.json"
    info = json.loads(info_path.read_text()) if resume and info_path.exists() else {}
    info.update(run_info())
    info.update({"status": "running", "started": _dt.datetime.now().isoformat(timespec="seconds"),
                 "initial_epoch": initial_epoch,
                 "config_sha256": hashlib.sha256(yaml.safe_dump(cfg, sort_keys=True).encode()).hexdigest()})
    _write_json(info_path, info)

    keras.utils.set_random_seed(int(tr["seed"]) + initial_epoch)
    if not cfg["data"]["input"]:
        raise ConfigError("data.input is not set: give the shuffle & merge output folder (ShuffleMergeSpectral_*.parquet)")
    train_blocks, _ = split_blocks(find_parquet(cfg["data"]["input"]), float(cfg["data"]["validation_split"]))
    scaling = _prepare_scaling(cfg, run_path, train_blocks, resume)
    weights = _prepare_weights(cfg, run_path, train_blocks, resume)
    builder = make_builder(cfg, scaling)
    train_ds, val_ds = build_datasets(cfg, builder, weights, initial_epoch, run_path)
    scaling.warn_unscaled()

    if checkpoint is not None:
        model = keras.saving.load_model(checkpoint)
    else:
        model = _build_model(cfg, builder)
        if tr["pretrained"]:
            copied, missing = copy_weights_by_name(model, _load_pretrained(str(tr["pretrained"])))
            info.update({"pretrained": str(tr["pretrained"]), "pretrained_copied": len(copied), "pretrained_missing": missing})
            if missing:
                warnings.warn(f"pretrained: {len(missing)} layer(s) not found in the pretrained model: {missing[:10]}", stacklevel=2)
        _compile(model, cfg)
    info["n_params"] = int(model.count_params())
    _write_json(info_path, info)

    verbose = tr["verbose"] if verbose is None else verbose
    if verbose == "auto":
        verbose = 1 if sys.stdout.isatty() else 2
    epochs = int(tr["epochs"])
    history: dict[str, list[float]] = {}
    if initial_epoch < epochs:
        t0 = time.monotonic()
        from taucoffea.ml.dataset import EpochSetter

        callbacks = [EpochSetter(train_ds), *_callbacks(run_path, cfg, resume)]
        hist = model.fit(train_ds, validation_data=val_ds, epochs=epochs, initial_epoch=initial_epoch,
                         callbacks=callbacks, verbose=verbose, shuffle=False)
        history = {k: [float(x) for x in v] for k, v in hist.history.items()}
        info["fit_seconds"] = round(time.monotonic() - t0, 3)
        info["train_batches_per_epoch"] = len(train_ds)
        losses = history.get("loss", [])
        if losses and not math.isfinite(losses[-1]):
            info["status"] = "failed: loss is not finite"
            _write_json(info_path, info)
            raise TaucoffeaError(f"training diverged: loss is {losses[-1]} (see {run_path / 'metrics.csv'})")
    model_path = run_path / "model.keras"
    _save_model(model, model_path)
    final = _final_metrics(run_path, history)
    info.update({"status": "finished", "finished": _dt.datetime.now().isoformat(timespec="seconds"),
                 "epochs_done": max(epochs, initial_epoch), "final_metrics": final})
    _write_json(info_path, info)
    return TrainResult(run_path, history, final, model_path, initial_epoch)


def _final_metrics(run_dir: Path, history: Mapping[str, list[float]]) -> dict[str, float]:
    if history:
        return {k: v[-1] for k, v in history.items() if v}
    path = run_dir / "metrics.csv"
    if path.exists():
        import csv

        rows = list(csv.DictReader(path.open()))
        if rows:
            return {k: float(v) for k, v in rows[-1].items() if k != "epoch" and _finite(v)}
    return {}


# ============================================================================ scans
def _scan_task(item: Mapping[str, Any]) -> dict[str, Any]:
    """One scan line, run wherever the executor puts it (a Parsl app or in-process)."""
    result: dict[str, Any] = {"index": item["index"], "overrides": list(item["overrides"]), "run_dir": item["run_dir"]}
    try:
        config = resolve_config(item["config"], overrides=item["overrides"])
        res = train(config, item["run_dir"], overwrite=item.get("overwrite", False), verbose=0)
        f = res.final
        result.update({"status": "ok", "loss": f.get("loss"), "val_loss": f.get("val_loss"),
                       "accuracy": f.get("main_output_accuracy", f.get("accuracy")),
                       "val_accuracy": f.get("val_main_output_accuracy", f.get("val_accuracy"))})
    except Exception as err:  # a failed line must not stop the others; its error is tabulated
        result.update({"status": f"error: {type(err).__name__}: {err}"})
    return result


def scan(
    config: Mapping[str, Any],
    lines: Sequence[Sequence[str]],
    base_dir: str | os.PathLike[str],
    *,
    session: Any = None,
    executor: Any = None,
    overwrite: bool = False,
) -> list[dict[str, Any]]:
    """Run one training per override line (TauMLTools-style hyper-parameter scan).

    Each line becomes ``<base_dir>/scan_<i>``; the trainings run as Parsl apps through the
    execution session (locally or on HTCondor) or in-process for the ``iterative`` executor.
    Returns one result row per line (final loss / accuracy, or the error) and writes
    ``scan_results.json`` and ``scan_results.csv`` in ``base_dir``.
    """
    from taucoffea.execution.session import in_session, resolve_executor

    base = Path(base_dir)
    base.mkdir(parents=True, exist_ok=True)
    for tokens in lines:
        resolve_config(config, overrides=tokens)  # fail fast on a bad line, before any training starts
    items = [{"index": i, "overrides": list(t), "config": dict(config), "run_dir": str((base / f"scan_{i}").resolve()),
              "overwrite": overwrite} for i, t in enumerate(lines)]
    cfg = resolve_executor(executor, session)
    results = in_session(session, cfg, lambda s: s.map(_scan_task, items, desc="trainings"))
    _write_json(base / "scan_results.json", {"results": results})
    write_text_atomic(base / "scan_results.csv", format_scan(results, csv=True))
    return results


def format_scan(results: Sequence[Mapping[str, Any]], csv: bool = False) -> str:
    """The scan results as a fixed-width table (or CSV)."""
    cols = ("index", "val_loss", "val_accuracy", "loss", "accuracy", "status", "overrides")
    if csv:
        import csv as _csv
        import io

        buf = io.StringIO()
        w = _csv.writer(buf)
        w.writerow(cols)
        for r in results:
            w.writerow([" ".join(r.get(c) or []) if c == "overrides" else r.get(c) for c in cols])
        return buf.getvalue()

    def fmt(v: Any) -> str:
        return f"{v:.5g}" if isinstance(v, float) else str(v)

    lines = [f"{'#':>3} {'val_loss':>10} {'val_acc':>8} {'loss':>10}  status  overrides"]
    for r in results:
        lines.append(f"{r['index']:>3} {fmt(r.get('val_loss')):>10} {fmt(r.get('val_accuracy')):>8} "
                     f"{fmt(r.get('loss')):>10}  {str(r.get('status'))[:40]}  {' '.join(r.get('overrides') or [])}")
    return "\n".join(lines)

