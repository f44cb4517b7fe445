"""Feature-scaling stage throughput against a bare read of the same columns, in one run.

    python benchmarks/scaling.py [--n 1000000] [--files 10] [--chunksize 100000] [--keep DIR]

Writes toy shuffle & merge-like parquet files (``ShuffleMergeSpectral_<k>.parquet``, the toy's
DY / ttbar / QCD / W+jets mix with full PF-candidate, electron and muon lists) into a temporary
folder, then measures on one core:

1. a bare read of exactly the columns the shipped DeepTau v2 features need
   (``pyarrow.parquet`` single-threaded, and ``awkward.from_parquet`` as coffea reads them);
2. ``taucoffea scaling compute`` with the coffea IterativeExecutor (reading included), after a
   warm-up run on the first file that pays the once-per-worker-process start (numba's LLVM,
   first imports; printed apart);

and prints taus/s of each and the ratio stage / bare read (target >= 0.7). The page cache is
warmed first so both sides read from memory.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import peak_rss_mb, timer  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "features" / "deeptau_v2.yaml"
DATASETS = ("QCD_Pt-15to7000", "DYJetsToLL_M-50", "TTToSemiLeptonic", "WJetsToLNu")


def make_files(folder: Path, n: int, n_files: int, seed: int = 1) -> list[Path]:
    from taucoffea.columns.parquet import write_parquet
    from taucoffea.toy.generator import generate_taus

    files = []
    per_file = -(-n // n_files)
    for k in range(n_files):
        m = min(per_file, n - k * per_file)
        if m <= 0:
            break
        path = folder / f"ShuffleMergeSpectral_{k}.parquet"
        write_parquet(generate_taus(DATASETS[k % len(DATASETS)], m, seed=seed, file_index=k), path)
        files.append(path)
    return files


def bare_read_pyarrow(files: list[Path], columns: list[str]) -> int:
    import pyarrow.parquet as pq

    n = 0
    for f in files:
        n += pq.ParquetFile(f).read(columns=columns, use_threads=False).num_rows
    return n


def bare_read_awkward(files: list[Path], columns: list[str]) -> int:
    import awkward as ak

    return sum(len(ak.from_parquet(f, columns=columns)) for f in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="toy taus (default 1 M)")
    parser.add_argument("--files", type=int, default=10, help="number of parquet files (default 10)")
    parser.add_argument("--chunksize", type=int, default=100_000)
    parser.add_argument("--keep", help="write the toy files here and keep them (default: a temporary folder)")
    args = parser.parse_args()

    from taucoffea.execution.config import ExecutorConfig
    from taucoffea.scaling.config import load_feature_config
    from taucoffea.stages.scaling import run_scaling

    columns = sorted(load_feature_config(CONFIG).columns())
    with tempfile.TemporaryDirectory(prefix="taucoffea-scaling-bench-") as tmp:
        folder = Path(args.keep) if args.keep else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        with timer() as t_gen:
            files = make_files(folder, args.n, args.files)
        size_mb = sum(f.stat().st_size for f in files) / 1e6
        print(f"toy: {args.n:,} taus in {len(files)} files ({size_mb:,.0f} MB) written in {t_gen['s']:.1f} s")

        bare_read_pyarrow(files, columns)  # warm the page cache
        with timer() as t_pa:
            n = bare_read_pyarrow(files, columns)
        with timer() as t_ak:
            bare_read_awkward(files, columns)
        cfg = ExecutorConfig(executor="iterative", progress=False)
        # a worker pays numba's one-off start (LLVM, ~1 s) and the first imports once per
        # process, not per chunk; pay them on the first file so that the rate below is the one
        # a long-lived worker of a pipeline session sees, and print them apart
        with timer() as t_warm:
            run_scaling(CONFIG, files[:1], None, executor=cfg, chunksize=args.chunksize)
        with timer() as t_stage:
            result = run_scaling(CONFIG, folder, None, executor=cfg, chunksize=args.chunksize)
        assert sum(result.entries.values()) == n

        rate_pa, rate_ak, rate_stage = n / t_pa["s"], n / t_ak["s"], n / t_stage["s"]
        first = n / len(files)
        print(f"warm-up on the first file: {t_warm['s']:.1f} s (steady-state ~{first / rate_stage:.1f} s: "
              f"the rest is the one-off start of a worker process)")
        n_stats = sum(len(c) for feats in result.params.values() for c in feats.values())
        print(f"columns read: {len(columns)}; (feature, cone) parameter entries: {n_stats}")
        print(f"bare read, pyarrow (1 thread):      {rate_pa:12,.0f} taus/s")
        print(f"bare read, awkward.from_parquet:    {rate_ak:12,.0f} taus/s")
        print(f"scaling stage, 1 worker (iterative): {rate_stage:12,.0f} taus/s")
        print(f"ratio stage / bare pyarrow read: {rate_stage / rate_pa:.2f}  (target >= 0.7)")
        print(f"ratio stage / awkward read:      {rate_stage / rate_ak:.2f}")
        print(f"peak RSS: {peak_rss_mb():,.0f} MB")


if __name__ == "__main__":
    main()
