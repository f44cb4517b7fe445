"""Throughput of the toy TauTuple generator on one core: generation, writing, total.

    python benchmarks/toy.py [--n 200000] [--compression lz4] [--datasets A,B]

Generation is timed on the size mix of the requested datasets (the share each dataset gets in
``--size small``), writing on the generated files, total = both. Numbers are taus per second
and per minute; the requirement is ≥ 1 M taus/minute in total.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from taucoffea.toy.datasets import resolve_datasets, resolve_sizes  # noqa: E402
from taucoffea.toy.generator import generate_file_columns  # noqa: E402
from taucoffea.toy.writer import write_taus  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=200_000, help="total taus (default 200000)")
    p.add_argument("--datasets", default=None)
    p.add_argument("--compression", default="lz4", choices=("lz4", "zlib", "none"))
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    names = resolve_datasets(args.datasets)
    sizes = resolve_sizes(args.n, names)
    t_gen = t_write = 0.0
    total = 0
    print(f"{'dataset':26s} {'taus':>8s} {'gen/s':>10s} {'write/s':>10s} {'MB':>7s}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            n = sizes[name]
            t0 = time.perf_counter()
            cols, lists = generate_file_columns(name, n, args.seed, 0)
            t1 = time.perf_counter()
            path = Path(tmp) / name / "eventTuple_0.root"
            write_taus(path, cols, lists, overwrite=True, compression=args.compression,
                       uuid_seed=name)
            t2 = time.perf_counter()
            t_gen += t1 - t0
            t_write += t2 - t1
            total += n
            print(f"{name:26s} {n:8d} {n / (t1 - t0):10.0f} {n / (t2 - t1):10.0f} "
                  f"{path.stat().st_size / 1e6:7.1f}")
    for label, t in (("generation", t_gen), ("writing", t_write), ("total", t_gen + t_write)):
        print(f"{label:>10s}: {total / t:10.0f} taus/s = {60 * total / t / 1e6:5.2f} M taus/min "
              f"({t:.1f} s for {total} taus)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
