"""Apply a trained run to per-tau rows (reference §8.1).

:class:`TrainedModel` bundles what a run directory holds — the model, its input builder, the
scaling it was trained with — so a prediction always computes the inputs exactly as training
did. :func:`prediction_columns` returns, for every input row and in input order, the four class
scores ``node_e``, ``node_mu``, ``node_tau``, ``node_jet``, the truth and bookkeeping columns the
evaluation needs, and for adversarial runs ``y_adv`` and ``Djet``. Rows without a reconstructed
tau (``tau_index`` < 0) get all-zero scores, as in the reference (A.19).

The model is loaded with ``compile=False`` (works across backends) and cached per process, so a
coffea worker loads it once, not once per chunk.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from taucoffea.errors import InputError
from taucoffea.ml.blocks import ColumnBlock

__all__ = [
    "ADVERSARIAL_COLUMNS",
    "NODE_COLUMNS",
    "PASSTHROUGH_COLUMNS",
    "TrainedModel",
    "load_trained",
    "prediction_columns",
]

NODE_COLUMNS: tuple[str, ...] = ("node_e", "node_mu", "node_tau", "node_jet")
#: Copied from the input when present (truth, bookkeeping, reference scores).
PASSTHROUGH_COLUMNS: tuple[str, ...] = (
    "tauType", "genLepton_kind", "toy_true_class",
    "truth_loglik_e", "truth_loglik_mu", "truth_loglik_tau", "truth_loglik_jet",
    "tau_byDeepTau2017v2p1VSeraw", "tau_byDeepTau2017v2p1VSmuraw", "tau_byDeepTau2017v2p1VSjetraw",
    "tau_byDeepTau2018v2p5VSeraw", "tau_byDeepTau2018v2p5VSmuraw", "tau_byDeepTau2018v2p5VSjetraw",
    "tau_byDeepTau2017v2p1VSe", "tau_byDeepTau2017v2p1VSmu", "tau_byDeepTau2017v2p1VSjet",  # WP bitmasks
    "tau_pt", "tau_eta", "tau_phi", "tau_decayMode", "tau_dz", "evt", "tau_index",
)
ADVERSARIAL_COLUMNS: tuple[str, ...] = ("adv_label", "adv_weight", "dataset_id")

_CACHE: dict[tuple[str, float, str], TrainedModel] = {}
_CACHE_LOCK = threading.Lock()


@dataclass
class TrainedModel:
    """A trained run ready to predict."""

    run_dir: Path
    model: Any
    builder: Any
    config: dict[str, Any]

    @property
    def adversarial(self) -> bool:
        return "adv_output" in self.model.output_names if hasattr(self.model, "output_names") else False

    @classmethod
    def load(cls, run_dir: str | os.PathLike[str], model_file: str = "model.keras") -> TrainedModel:
        from taucoffea.ml import import_keras
        from taucoffea.ml import adversarial as _adv  # noqa: F401 - registers custom layers
        from taucoffea.ml import losses as _losses  # noqa: F401 - registers custom objects
        from taucoffea.ml import models as _models  # noqa: F401 - registers custom layers
        from taucoffea.ml.config import resolve_config
        from taucoffea.ml.features import Scaling
        from taucoffea.ml.inputs import builder_from_config

        keras = import_keras()
        run = Path(run_dir)
        cfg_path, model_path = run / "config.yaml", run / model_file
        for p in (cfg_path, model_path):
            if not p.exists():
                raise InputError(f"'{run}' is not a finished training run: '{p.name}' is missing")
        config = resolve_config(yaml.safe_load(cfg_path.read_text()), where=str(cfg_path))
        scaling_path = run / "scaling.json"
        scaling = Scaling.load(scaling_path) if scaling_path.exists() else Scaling.identity()
        model = keras.saving.load_model(model_path, compile=False)
        return cls(run, model, builder_from_config(config, scaling), config)

    @property
    def columns(self) -> list[str]:
        """Input columns the model's features need."""
        return self.builder.columns()

    def predict(self, block: ColumnBlock, batch_size: int = 1000) -> dict[str, np.ndarray]:
        """Class scores (and ``y_adv``) for every row; zeros where there is no reco tau."""
        n = block.n
        out = {c: np.zeros(n, dtype=np.float32) for c in NODE_COLUMNS}
        adv = self.adversarial
        if adv:
            out["y_adv"] = np.zeros(n, dtype=np.float32)
        valid = _has_tau(block)
        rows = np.flatnonzero(valid)
        if rows.size == 0:
            return out
        sub = block.take(rows) if rows.size != n else block
        for lo in range(0, sub.n, batch_size):
            part = sub.slice(lo, lo + batch_size)
            x = self.builder.build(part)
            y = self.model.predict_on_batch(x)
            main = np.asarray(y["main_output"] if isinstance(y, Mapping) else y, dtype=np.float32)
            if not np.all(np.isfinite(main)):
                raise InputError(f"the model returned non-finite scores for rows of {block.source}")
            idx = rows[lo : lo + part.n]
            for k, c in enumerate(NODE_COLUMNS):
                out[c][idx] = main[:, k]
            if adv:
                out["y_adv"][idx] = np.asarray(y["adv_output"], dtype=np.float32).reshape(-1)
        return out


def _has_tau(block: ColumnBlock) -> np.ndarray:
    ok = np.ones(block.n, dtype=bool)
    if block.has("tau_index"):
        ok &= np.asarray(block.column("tau_index")) >= 0
    pt = np.asarray(block.column("tau_pt"), dtype=np.float64)
    ok &= np.isfinite(pt) & (pt > 0)
    return ok


def load_trained(run_dir: str | os.PathLike[str], model_file: str = "model.keras") -> TrainedModel:
    """:meth:`TrainedModel.load`, cached per process by path and modification time."""
    path = Path(run_dir).resolve()
    model_path = path / model_file
    if not model_path.exists():
        raise InputError(f"'{path}' is not a finished training run: '{model_file}' is missing")
    key = (str(path), model_path.stat().st_mtime, model_file)
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE.clear()
            _CACHE[key] = TrainedModel.load(path, model_file)
        return _CACHE[key]


def prediction_columns(trained: TrainedModel, data: Any, *, batch_size: int = 1000,
                       adversarial: bool | None = None, source: str | None = None) -> dict[str, np.ndarray]:
    """Prediction table of ``data`` (awkward record array, coffea events or mapping), row-aligned.

    ``adversarial`` (default: whether the model has an adversarial head) adds ``y_adv`` (when
    the model has one), ``adv_label``, ``adv_weight``, ``dataset_id`` and ``Djet``.
    """
    available = set(data.fields) if hasattr(data, "fields") else set(data.keys())
    adversarial = trained.adversarial if adversarial is None else adversarial
    optional = [c for c in (*PASSTHROUGH_COLUMNS, *(ADVERSARIAL_COLUMNS if adversarial else ())) if c in available]
    block = ColumnBlock.from_columns(data, trained.columns, optional=optional, source=source)
    table = trained.predict(block, batch_size)
    for c in optional:
        table[c] = block.column(c)
    if adversarial:
        missing = [c for c in ADVERSARIAL_COLUMNS if c not in available]
        if missing:
            raise InputError(f"adversarial predictions need column(s) {missing}, missing in {block.source}")
        den = table["node_tau"] + table["node_jet"]
        table["Djet"] = np.divide(table["node_tau"], den, out=np.zeros_like(den), where=den > 0)
    return table

