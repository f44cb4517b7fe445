"""Spectra stage throughput against the raw-I/O limit measured in the same run.

    python benchmarks/spectra.py [--n 2000000]

Prints taus/s of (1) a bare uproot read of exactly the branches the stage needs, (2) the stage
on one worker (coffea IterativeExecutor), their ratio (target ≥ 0.8), and (3) the stage on
Parsl with 1 and 2 local workers, with the 2-worker speedup.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uproot

sys.path.insert(0, str(Path(__file__).parent))
from _common import timer, toy_data  # noqa: E402

from taucoffea.columns.discovery import discover_fileset  # noqa: E402
from taucoffea.columns.table import required_branches  # noqa: E402
from taucoffea.execution.config import ExecutorConfig  # noqa: E402
from taucoffea.execution.session import ExecutionSession  # noqa: E402
from taucoffea.stages.spectra import run_spectra  # noqa: E402


def bare_read(fileset: dict[str, list[str]], branches: list[str]) -> int:
    n = 0
    for files in fileset.values():
        for f in files:
            with uproot.open(f) as fh:
                arrays = fh["taus"].arrays(branches, library="np")
                n += len(next(iter(arrays.values())))
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2_000_000, help="toy taus (default 2 M)")
    parser.add_argument("--chunksize", type=int, default=200_000)
    args = parser.parse_args()

    data = toy_data(args.n)
    fileset = discover_fileset(data)
    branches = sorted(required_branches("tautuple", ["tau_pt", "tau_eta", "tauType"]))
    bare_read(fileset, branches)  # warm the page cache so both sides read from memory
    with timer() as t_io:
        n = bare_read(fileset, branches)
    iterative = ExecutorConfig(executor="iterative", progress=False)
    with timer() as t_cold:
        run_spectra(fileset, None, executor=iterative, chunksize=args.chunksize)
    with timer() as t_one:
        run_spectra(fileset, None, executor=iterative, chunksize=args.chunksize)
    rate_io, rate_one = n / t_io["s"], n / t_one["s"]
    print(f"taus: {n:,} in {sum(len(v) for v in fileset.values())} files")
    print(f"bare uproot read of {len(branches)} branches: {rate_io:12,.0f} taus/s")
    print(f"spectra stage, 1 worker (iterative):  {rate_one:12,.0f} taus/s  (file metadata cached)")
    print(f"  first run, pre-flight opens every file: {n / t_cold['s']:12,.0f} taus/s")
    print(f"ratio stage / raw I/O: {rate_one / rate_io:.2f}  (target >= 0.8)")
    rates = {}
    for workers in (1, 2):
        cfg = ExecutorConfig(executor="parsl", workers=workers, progress=False)
        with ExecutionSession(cfg) as session:
            run_spectra(fileset, None, session=session, chunksize=args.chunksize)  # warm: workers started
            with timer() as t:
                run_spectra(fileset, None, session=session, chunksize=args.chunksize)
        rates[workers] = n / t["s"]
        print(f"spectra stage, Parsl {workers} worker(s): {rates[workers]:12,.0f} taus/s (workers already running)")
    print(f"Parsl 2-worker speedup: {rates[2] / rates[1]:.2f}")


if __name__ == "__main__":
    main()
