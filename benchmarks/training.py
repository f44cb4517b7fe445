"""Training input pipeline benchmark: streamed parquet → PyDataset → fit versus in-memory arrays.

    python benchmarks/training.py [--n 10000] [--n-deeptau 1000] [--models light,deeptau]
                                  [--batch-size 250] [--workers 1] [--epochs 3] [--json out.json]

For each model the same architecture is trained twice in one process: fed by the streaming
``TauDataset`` (parquet row groups read and featurised while the model trains) and fed from
arrays already in memory (the best case, unbounded memory). The figure of merit is the ratio of
steady-state training throughputs (median over the epochs after the first, which includes
tracing; the two fits alternate epoch by epoch so that both see the same machine); the target
is ≥ 0.9. It also reports input building alone (taus/s), which for ``deeptau`` is the cell-grid
construction. Toy inputs are generated in a temporary folder (``--keep`` to keep them).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from taucoffea.ml import import_keras  # noqa: E402

keras = import_keras()

from taucoffea.ml.dataset import TauDataset, list_blocks  # noqa: E402
from taucoffea.ml.inputs import InputBuilder  # noqa: E402
from taucoffea.ml.losses import TauLoss  # noqa: E402
from taucoffea.ml.models import build_model  # noqa: E402
from taucoffea.ml.toydata import write_training_files  # noqa: E402


class _EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):  # noqa: ANN001
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):  # noqa: ANN001
        self.times = [*getattr(self, "times", []), time.perf_counter() - self._t]


def _model(kind: str, builder: InputBuilder) -> object:
    keras.utils.set_random_seed(1)
    model = build_model(kind, builder.input_shapes())
    model.compile(optimizer="nadam", loss={"main_output": TauLoss()})
    return model


def _steady(times: list[float]) -> float:
    return float(np.median(times[1:])) if len(times) > 1 else float(times[0])


def bench_model(kind: str, files: list[str], n: int, batch_size: int, workers: int, epochs: int) -> dict[str, float]:
    builder = InputBuilder(kind)
    ds = TauDataset(list_blocks(files), builder, batch_size, seed=1, workers=workers, max_batches=-(-n // batch_size))
    n_taus = sum(ds.rows(i).n for i in range(len(ds)))
    # numba's start in a process (~1 s, the set kernels) is paid once per training, not per batch
    builder.build(ds.rows(0))

    t0 = time.perf_counter()
    batches = [ds[i] for i in range(len(ds))]
    build_s = time.perf_counter() - t0

    x = {k: np.concatenate([b[0][k] for b in batches]) for k in batches[0][0]}
    y = {"main_output": np.concatenate([b[1]["main_output"] for b in batches])}
    w = {"main_output": np.concatenate([b[2]["main_output"] for b in batches])}
    del batches
    # the two fits take turns, one epoch each: on a shared machine the speed drifts by tens of
    # per cent within a minute, and alternating exposes both to the same drift
    streamed, in_memory = _model(kind, builder), _model(kind, builder)
    t_stream, t_memory = _EpochTimer(), _EpochTimer()
    for _ in range(epochs):
        streamed.fit(ds, epochs=1, verbose=0, shuffle=False, callbacks=[t_stream])
        in_memory.fit(x, y, sample_weight=w, batch_size=batch_size, epochs=1, verbose=0, shuffle=False,
                      callbacks=[t_memory])
    stream = n_taus / _steady(t_stream.times)
    memory = n_taus / _steady(t_memory.times)
    return {"taus": n_taus, "input_build_taus_per_s": n_taus / build_s, "fit_streamed_taus_per_s": stream,
            "fit_in_memory_taus_per_s": memory, "ratio": stream / memory}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=10_000, help="taus per epoch for the light model")
    p.add_argument("--n-deeptau", type=int, default=500, help="taus per epoch for the DeepTau model (~1 GFLOP/tau)")
    p.add_argument("--models", default="light,deeptau")
    p.add_argument("--batch-size", type=int, default=250)
    p.add_argument("--workers", type=int, default=1, help="PyDataset worker threads")
    p.add_argument("--epochs", type=int, default=3, help="epochs per measurement (the first one is not timed)")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--keep", action="store_true", help="keep the generated toy inputs")
    args = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="taucoffea-bench-"))
    try:
        n_max = max(args.n, args.n_deeptau)
        per_file = 5000
        files = [str(f) for f in write_training_files(tmp, n_files=-(-n_max // per_file), n_per_file=min(per_file, n_max), seed=5)]
        results = {"backend": keras.backend.backend(), "keras": keras.__version__, "cpu_count": os.cpu_count(),
                   "batch_size": args.batch_size, "workers": args.workers, "models": {}}
        for kind in [m.strip() for m in args.models.split(",") if m.strip()]:
            n = args.n if kind == "light" else args.n_deeptau
            res = bench_model(kind, files, n, args.batch_size, args.workers, args.epochs)
            results["models"][kind] = res
            print(f"{kind:8s} {res['taus']:>7d} taus  inputs {res['input_build_taus_per_s']:>9.0f} taus/s   "
                  f"fit streamed {res['fit_streamed_taus_per_s']:>8.0f}/s  in memory {res['fit_in_memory_taus_per_s']:>8.0f}/s  "
                  f"ratio {res['ratio']:.3f} {'(>= 0.9 ok)' if res['ratio'] >= 0.9 else '(below 0.9)'}", flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"inputs kept in {tmp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
