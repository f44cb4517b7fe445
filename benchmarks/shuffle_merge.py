"""Shuffle & merge benchmark: wall time of all passes against a bare read + write, and peak memory.

    python benchmarks/shuffle_merge.py                      # 2.5 M and 5 M toy taus (default)
    python benchmarks/shuffle_merge.py --sizes 1000000,2000000
    python benchmarks/shuffle_merge.py --n 200000           # quick: 100 k and 200 k

For each input size the toy TauTuples of the training datasets (those ``configs/datagroups/
toy.yaml`` selects) are generated once into ``--workdir`` (kept as a cache), then two
measurements run, each in a fresh Python process so that its peak RSS is its own:

* **shuffle & merge**: the spectra stage, then ``run_shuffle_merge`` (acceptance, sampling,
  merge) with the iterative executor (one process: its RSS is the whole cost). The passes are
  timed by wrapping the stage's ``write_acceptance`` and ``run_processor``: acceptance ends
  when its files are written, sampling is the Runner pass, merge is everything after it.
* **baseline**: a bare ``uproot`` read of every branch of the same files (what the sampling
  pass must read at least once) plus a bare streaming parquet write (same compression) of as
  many rows as shuffle & merge accepted.

The input files are read once before each measurement, so both read from the page cache.

Printed: the time of each pass, the ratio (shuffle & merge) / (baseline), target ≤ 2.0, and the
peak RSS of both, target: flat as the input grows. Memory can only be flat if the output
files keep their size, so the number of output files grows with the input
(``--input-per-file`` input taus per output file), as a user would run it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CFG = REPO / "configs" / "datagroups" / "toy.yaml"
OPTIONS: dict[str, Any] = {
    # the README example of the original tool
    "pt_bins": "20, 30, 40, 50, 60, 70, 80, 90, 100, 1000",
    "eta_bins": "0., 0.6, 1.2, 1.8, 2.4",
    "tau_ratio": "jet:1, e:1, mu:1, tau:1",
    "lastbin_takeall": True,
    "lastbin_disbalance": 100.0,
    "enable_emptybin": True,
}


def _peak_rss_mb() -> float:
    """Peak resident memory of this process and its waited-for children (Linux: KiB)."""
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(self_kb, child_kb) / 1024


def training_datasets() -> list[str]:
    from taucoffea.datagroups import read_datagroups
    from taucoffea.toy.datasets import TOY_DATASETS

    groups = read_datagroups(CFG)
    return [d for d in TOY_DATASETS if any(g.matches(d, "eventTuple_0.root") for g in groups)]


#: Taus per toy file: production TauTuples hold ~200 k (the toy default of 50 k would make the
#: per-file cost of reading ~200 TBranch objects weigh 4x more than it does in production).
PER_FILE = 200_000


def ensure_toy(workdir: Path, n: int, seed: int) -> Path:
    """Toy TauTuples of ``n`` training taus, generated once and reused."""
    from taucoffea.toy.generator import TOY_VERSION, generate_toy

    path = workdir / f"toy_n{n}_seed{seed}_v{TOY_VERSION}_f{PER_FILE}"
    if not (path / "toy_manifest.json").exists():
        print(f"generating {n:,} toy taus into {path} ...", flush=True)
        t0 = time.perf_counter()
        generate_toy(path, seed=seed, size=n, datasets=training_datasets(), overwrite=True, progress=False,
                     max_per_file=PER_FILE)
        print(f"  done in {time.perf_counter() - t0:.0f} s", flush=True)
    return path


# ------------------------------------------------------------------ measurements (child)


@contextlib.contextmanager
def _phase_clock(marks: dict[str, float]) -> Iterator[None]:
    """Record when the stage finishes its acceptance files and its Runner pass."""
    import taucoffea.stages.shuffle_merge as sm

    orig_write, orig_run = sm.write_acceptance, sm.run_processor

    def write_acceptance(*a: Any, **kw: Any) -> Any:
        out = orig_write(*a, **kw)
        marks["acceptance_done"] = time.perf_counter()
        return out

    def run_processor(*a: Any, **kw: Any) -> Any:
        out = orig_run(*a, **kw)
        marks["sampling_done"] = time.perf_counter()
        return out

    sm.write_acceptance, sm.run_processor = write_acceptance, run_processor
    try:
        yield
    finally:
        sm.write_acceptance, sm.run_processor = orig_write, orig_run


def measure_shuffle_merge(data: Path, out: Path, n_files: int, chunksize: int, seed: int) -> dict[str, Any]:
    from taucoffea.execution.config import ExecutorConfig
    from taucoffea.stages.shuffle_merge import run_shuffle_merge
    from taucoffea.stages.spectra import run_spectra

    executor = ExecutorConfig(executor="iterative", progress=False, chunksize=chunksize)
    t0 = time.perf_counter()
    run_spectra(data, out / "spectra", executor=executor)
    t1 = time.perf_counter()
    marks: dict[str, float] = {}
    with _phase_clock(marks), contextlib.redirect_stdout(sys.stderr):
        result = run_shuffle_merge(CFG, data, out / "spectra", out / "sm", executor=executor, seed=seed,
                                   n_files=n_files, **OPTIONS)
    t2 = time.perf_counter()
    return {
        "spectra": t1 - t0,
        "acceptance": marks["acceptance_done"] - t1,
        "sampling": marks["sampling_done"] - marks["acceptance_done"],
        "merge": t2 - marks["sampling_done"],
        "total": t2 - t0,
        "rows": sum(result.rows),
        "n_files": n_files,
        "peak_rss_mb": _peak_rss_mb(),
    }


def measure_baseline(data: Path, out: Path, rows: int, chunksize: int) -> dict[str, Any]:
    import awkward as ak
    import pyarrow.parquet as pq
    import uproot

    from taucoffea.datagroups import match_files, read_datagroups

    files = sorted(str(p) for fs in match_files(read_datagroups(CFG), data).values() for _, p in fs)
    out.mkdir(parents=True, exist_ok=True)
    t_read = t_write = 0.0
    n_read, left, writer = 0, rows, None
    t = time.perf_counter()
    for f in files:
        with uproot.open(f) as fh:
            for batch in fh["taus"].iterate(step_size=chunksize, library="ak"):
                n_read += len(batch)
                now = time.perf_counter()
                t_read += now - t
                t = now
                if left > 0:
                    table = ak.to_arrow_table(batch[:left])
                    if writer is None:
                        writer = pq.ParquetWriter(out / "baseline.parquet", table.schema, compression="zstd",
                                                  compression_level=3)
                    writer.write_table(table, row_group_size=64 * 1024)
                    left -= min(left, len(batch))
                    now = time.perf_counter()
                    t_write += now - t
                    t = now
    if writer is not None:
        t = time.perf_counter()
        writer.close()
        t_write += time.perf_counter() - t
    return {"read": t_read, "write": t_write, "total": t_read + t_write, "read_rows": n_read,
            "written_rows": rows - left, "peak_rss_mb": _peak_rss_mb()}


# ------------------------------------------------------------------------- driver


def _warm_page_cache(data: Path) -> None:
    """Read every input file once, so that both measurements read from memory: whichever ran
    second would otherwise find the files the first one brought into the page cache."""
    for path in sorted(data.rglob("*.root")):
        with path.open("rb") as f:
            while f.read(1 << 24):
                pass


def _child(kind: str, **kw: Any) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--_measure", kind, "--_args", json.dumps(kw)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} measurement failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(
    sizes: list[int], workdir: Path, seed: int, chunksize: int, input_per_file: int, keep: bool
) -> list[dict[str, Any]]:
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in sizes:
        data = ensure_toy(workdir, n, seed)
        scratch = Path(tempfile.mkdtemp(prefix=f"sm_{n}_", dir=workdir))
        try:
            n_files = max(1, math.ceil(n / input_per_file))
            _warm_page_cache(data)
            sm = _child("sm", data=str(data), out=str(scratch), n_files=n_files, chunksize=chunksize, seed=seed)
            _warm_page_cache(data)
            base = _child("baseline", data=str(data), out=str(scratch / "baseline"), rows=sm["rows"],
                          chunksize=chunksize)
        finally:
            if not keep:
                shutil.rmtree(scratch, ignore_errors=True)
        rows.append({"n": n, "sm": sm, "baseline": base, "ratio": sm["total"] / base["total"]})
        _print_row(rows[-1])
    return rows


def _print_row(r: dict[str, Any]) -> None:
    sm, b = r["sm"], r["baseline"]
    print(
        f"{r['n']:>10,} taus in, {sm['rows']:>9,} out ({sm['n_files']} files) | "
        f"spectra {sm['spectra']:6.1f} s  acceptance {sm['acceptance']:5.1f} s  sampling {sm['sampling']:6.1f} s  "
        f"merge {sm['merge']:6.1f} s  = {sm['total']:6.1f} s | baseline read {b['read']:6.1f} s + write "
        f"{b['write']:5.1f} s = {b['total']:6.1f} s | ratio {r['ratio']:.2f} | "
        f"peak RSS S&M {sm['peak_rss_mb']:,.0f} MB, "
        f"baseline {b['peak_rss_mb']:,.0f} MB",
        flush=True,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", help="comma list of input sizes (taus); default 2500000,5000000")
    p.add_argument("--n", "--size", dest="n", type=int, help="largest input size; runs n/2 and n")
    p.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "taucoffea-bench"),
                   help="toy data cache and scratch space")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--chunksize", type=int, default=PER_FILE, help="taus per chunk (default: one toy file)")
    p.add_argument("--input-per-file", type=int, default=1_000_000, help="input taus per output file (K = n / this)")
    p.add_argument("--keep", action="store_true", help="keep the outputs in the workdir")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--_measure", choices=("sm", "baseline"), help=argparse.SUPPRESS)
    p.add_argument("--_args", help=argparse.SUPPRESS)
    args = p.parse_args()

    if args._measure:
        kw = json.loads(args._args)
        kw["data"], kw["out"] = Path(kw["data"]), Path(kw["out"])
        res = measure_shuffle_merge(**kw) if args._measure == "sm" else measure_baseline(**kw)
        print(json.dumps(res))
        return

    if args.sizes:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    elif args.n:
        sizes = [args.n // 2, args.n]
    else:
        sizes = [2_500_000, 5_000_000]
    rows = run(sizes, Path(args.workdir), args.seed, args.chunksize, args.input_per_file, args.keep)
    worst = max(r["ratio"] for r in rows)
    rss = [r["sm"]["peak_rss_mb"] for r in rows]
    print(f"\ntime ratio (shuffle & merge / bare read + write): worst {worst:.2f} (target <= 2.0: "
          f"{'met' if worst <= 2.0 else 'NOT met'})")
    print("peak RSS of shuffle & merge: " + ", ".join(f"{r['n']:,} taus: {m:,.0f} MB" for r, m in zip(rows, rss))
          + f" (largest/smallest input: {rss[-1] / rss[0]:.2f})")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
