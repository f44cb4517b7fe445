"""Run every stage benchmark and write the benchmarks page (``docs/benchmarks.md``).

    python benchmarks/run_all.py --quick [--output /tmp/bench.md]   # small sizes: a smoke test
    python benchmarks/run_all.py --medium                           # ~10 min on 2 cores: docs/benchmarks.md
    python benchmarks/run_all.py                                    # default (production-like) sizes
    python benchmarks/run_all.py --quick --dry-run                  # print the commands only
    python benchmarks/run_all.py --only spectra,scaling

Each script ``benchmarks/<stage>.py`` (all but ``_common.py`` and this one) runs as its own
subprocess, at two input sizes, so that the page can say how the cost grows. The script's
printed ratios and rates are captured; the peak resident memory of the script and the
processes it waited for comes from ``wait4``. Parsl workers are started detached by Parsl's
LocalProvider and are *not* in that number — the single-worker (iterative) figures are the
per-job memory. A script this file does not know is still run (with ``--quick`` in quick mode
if its ``--help`` offers it) and its output lines quoted.

The page ends with a production plan on paper (500 M taus on a 1 000-slot HTCondor pool)
computed from the measured per-core rates.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MODES = ("quick", "medium", "default")
_SKIP = {"_common.py", "run_all.py"}

# ------------------------------------------------------------------------------ parsing


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def _find(pattern: str, out: str) -> float | None:
    m = re.search(pattern, out, re.MULTILINE)
    return _num(m.group(1)) if m else None


def _parse_toy(out: str, _: Any) -> dict[str, Any]:
    rate = _find(r"^\s*total:\s*([\d,.]+) taus/s", out)
    return {"rate": rate, "gen_rate": _find(r"^\s*generation:\s*([\d,.]+) taus/s", out),
            "write_rate": _find(r"^\s*writing:\s*([\d,.]+) taus/s", out),
            "ratio": (rate * 60 / 1e6) if rate else None,
            "ratio_label": "M taus/min in total (target >= 1); no I/O limit: the toy *makes* its input"}


def _parse_spectra(out: str, _: Any) -> dict[str, Any]:
    return {"rate": _find(r"spectra stage, 1 worker \(iterative\):\s*([\d,.]+) taus/s", out),
            "io_rate": _find(r"bare uproot read of \d+ branches:\s*([\d,.]+) taus/s", out),
            "ratio": _find(r"ratio stage / raw I/O:\s*([\d.]+)", out),
            "ratio_label": "stage rate / bare uproot read of its branches (target >= 0.8)",
            "parsl_speedup": _find(r"Parsl 2-worker speedup:\s*([\d.]+)", out)}


def _parse_scaling(out: str, _: Any) -> dict[str, Any]:
    return {"rate": _find(r"scaling stage, 1 worker \(iterative\):\s*([\d,.]+) taus/s", out),
            "io_rate": _find(r"bare read, pyarrow \(1 thread\):\s*([\d,.]+) taus/s", out),
            "ratio": _find(r"ratio stage / bare pyarrow read:\s*([\d.]+)", out),
            "ratio_label": "stage rate / bare pyarrow read of its columns (target >= 0.7)",
            "floor_ratio": _find(r"ratio coffea floor / bare read:\s*([\d.]+)", out),
            "peak_mb": _find(r"peak RSS:\s*([\d,.]+) MB", out)}


def _parse_shuffle_merge(out: str, json_path: Path | None) -> dict[str, Any]:
    rows = json.loads(json_path.read_text()) if json_path and json_path.exists() else []
    return {"rows": rows, "ratio_label": "wall time / (bare read of all branches + bare parquet write) (target <= 2)"}


def _parse_training(out: str, json_path: Path | None) -> dict[str, Any]:
    data = json.loads(json_path.read_text()) if json_path and json_path.exists() else {}
    models = data.get("models", {})
    ratios = [m["ratio"] for m in models.values() if "ratio" in m]
    light = models.get("light", {})
    return {"models": models, "ratio": min(ratios) if ratios else None, "rate": light.get("fit_streamed_taus_per_s"),
            "ratio_label": "streamed-input training throughput / in-memory arrays (target >= 0.9)"}


def _parse_generic(out: str, _: Any) -> dict[str, Any]:
    return {"ratio": _find(r"ratio[^:\n]*:\s*([\d.]+)", out), "ratio_label": "first 'ratio' line printed"}


# ------------------------------------------------------------------------------ the table


@dataclass
class Bench:
    """How to run one benchmark script in each mode.

    ``sizes[mode]`` are the input sizes (one subprocess each) or, for a script that loops over
    sizes itself, ``None`` with ``argv`` given the whole list.
    """

    name: str
    argv: Callable[[list[int], Path], list[str]]
    sizes: dict[str, list[int]]
    parse: Callable[[str, Path | None], dict[str, Any]]
    one_call: bool = False  #: the script measures all sizes in one call (``--sizes``)
    uses_json: bool = False


KNOWN: dict[str, Bench] = {
    "toy": Bench("toy", lambda n, j: ["--n", str(n[0])],
                 {"quick": [20_000], "medium": [200_000, 400_000], "default": [500_000, 1_000_000]}, _parse_toy),
    "spectra": Bench("spectra", lambda n, j: ["--n", str(n[0]), "--chunksize", str(min(200_000, max(10_000, n[0] // 4)))],
                     {"quick": [20_000], "medium": [1_000_000, 2_000_000], "default": [2_000_000, 4_000_000]}, _parse_spectra),
    "shuffle_merge": Bench(
        "shuffle_merge",
        lambda n, j: ["--sizes", ",".join(map(str, n)), "--json", str(j),
                      "--input-per-file", str(max(10_000, min(1_000_000, n[-1] // 4))),
                      "--chunksize", str(min(200_000, max(5_000, n[0] // 5)))],
        # medium = default: the issue defines the target at >= 5 M taus
        {"quick": [40_000, 80_000], "medium": [2_500_000, 5_000_000], "default": [2_500_000, 5_000_000]},
        _parse_shuffle_merge, one_call=True, uses_json=True),
    "scaling": Bench("scaling", lambda n, j: ["--n", str(n[0]), "--files", str(max(2, min(10, n[0] // 50_000))),
                                              "--chunksize", str(min(200_000, max(5_000, n[0] // 5)))],
                     # medium = default: the issue defines the target at >= 1 M taus
                     {"quick": [5_000], "medium": [1_000_000, 2_000_000], "default": [1_000_000, 2_000_000]},
                     _parse_scaling),
    # quick: the light model only (the DeepTau graph alone takes ~6 GB and a minute to trace)
    "training": Bench("training", lambda n, j: ["--n", str(n[0]), "--n-deeptau", str(max(100, n[0] // 50)),
                                                "--models", "light" if n[0] < 1000 else "light,deeptau",
                                                "--epochs", "6", "--json", str(j)],
                      # medium: the script's own default size; at 5 k an epoch is 20 batches, its start-up
                      # weighs (light 0.76–0.78 there, 0.90 at 10 k; the DeepTau part swung 0.67–1.02)
                      {"quick": [500], "medium": [10_000], "default": [20_000]}, _parse_training, uses_json=True),
}


def discover() -> list[str]:
    """Benchmark scripts present, known ones first in pipeline order."""
    names = sorted(p.stem for p in HERE.glob("*.py") if p.name not in _SKIP)
    order = [n for n in KNOWN if n in names]
    return order + [n for n in names if n not in KNOWN]


def _generic(name: str) -> Bench:
    return Bench(name, lambda n, j: [], {m: [0] for m in MODES}, _parse_generic)


@dataclass
class Run:
    stage: str
    sizes: list[int]
    command: list[str]
    returncode: int | None = None
    wall_s: float = 0.0
    peak_mb: float = 0.0
    stdout: str = ""
    stderr: str = ""
    parsed: dict[str, Any] = field(default_factory=dict)


def plan(mode: str, only: set[str] | None, scratch: Path) -> list[tuple[Bench, Run, Path | None]]:
    jobs = []
    for name in discover():
        if only and name not in only:
            continue
        bench = KNOWN.get(name) or _generic(name)
        script = HERE / f"{name}.py"
        size_lists = [bench.sizes[mode]] if bench.one_call else [[n] for n in bench.sizes[mode]]
        for sizes in size_lists:
            json_path = scratch / f"{name}_{'_'.join(map(str, sizes))}.json" if bench.uses_json else None
            extra = bench.argv(sizes, json_path or scratch / "unused.json")
            if name not in KNOWN and mode == "quick":
                extra = ["--quick"] if _offers_quick(script) else ["--help"]
            jobs.append((bench, Run(name, sizes, [sys.executable, str(script), *extra]), json_path))
    return jobs


def _offers_quick(script: Path) -> bool:
    proc = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120)
    return "--quick" in proc.stdout


def execute(bench: Bench, run: Run, json_path: Path | None, timeout: float) -> Run:
    """Run one script; its peak RSS (and its waited-for children's) comes from ``wait4``."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg")
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(run.command, stdout=out, stderr=err, text=True, cwd=REPO, env=env)
        deadline = t0 + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.2)
        proc.returncode = os.waitstatus_to_exitcode(status)
        run.wall_s = time.perf_counter() - t0
        run.peak_mb = usage.ru_maxrss / 1024.0
        out.seek(0)
        err.seek(0)
        run.stdout, run.stderr = out.read(), err.read()
    run.returncode = proc.returncode
    try:
        run.parsed = bench.parse(run.stdout, json_path)
    except Exception as exc:  # a changed print format must not lose the other stages
        run.parsed = {"parse_error": f"{type(exc).__name__}: {exc}"}
    return run


# ------------------------------------------------------------------------------ the page


def machine() -> dict[str, Any]:
    model = "unknown"
    mem_gb = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = int(line.split()[1]) / 1024**2
    except OSError:
        pass
    versions = {}
    for pkg in ("coffea", "parsl", "uproot", "awkward", "numpy", "pyarrow"):
        try:
            from importlib.metadata import version

            versions[pkg] = version(pkg)
        except Exception:  # noqa: BLE001 - informational only
            versions[pkg] = "?"
    return {"cores": os.cpu_count(), "cpu": model, "memory_gb": mem_gb, "python": platform.python_version(),
            "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "versions": versions,
            "load": os.getloadavg()}


def _f(x: float | None, fmt: str = ",.0f") -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, fmt)


def _growth(points: list[tuple[int, float]]) -> str:
    """``cost ∝ n^k`` from the smallest and largest measurement (k = 1: linear)."""
    pts = [(n, t) for n, t in points if n and t]
    if len(pts) < 2:
        return "one size only"
    (n1, t1), (n2, t2) = pts[0], pts[-1]
    if n2 == n1 or t1 <= 0:
        return "–"
    k = math.log(t2 / t1) / math.log(n2 / n1)
    return f"time ×{t2 / t1:.2f} for input ×{n2 / n1:.1f} (cost ∝ n^{k:.2f})"


def _stage_section(name: str, runs: list[Run]) -> tuple[list[str], dict[str, Any]]:
    lines = [f"### {name}", ""]
    summary: dict[str, Any] = {}
    failed = [r for r in runs if r.returncode != 0]
    for r in failed:
        lines += [f"**failed** (exit {r.returncode}): `{' '.join(shlex.quote(c) for c in r.command[1:])}`", "",
                  "```", (r.stderr or r.stdout)[-1500:].strip(), "```", ""]
    ok = [r for r in runs if r.returncode == 0]
    if not ok:
        return lines, summary
    if name == "shuffle_merge":
        rows = [row for r in ok for row in r.parsed.get("rows", [])]
        peak = max(r.peak_mb for r in ok)
        lines += ["| input taus | output taus (files) | spectra s | acceptance s | sampling s | merge s | total s "
                  "| baseline s | ratio | peak RSS S&M MB |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for row in rows:
            sm, b = row["sm"], row["baseline"]
            lines.append(f"| {row['n']:,} | {sm['rows']:,} ({sm['n_files']}) | {sm['spectra']:.1f} | {sm['acceptance']:.1f} "
                         f"| {sm['sampling']:.1f} | {sm['merge']:.1f} | {sm['total']:.1f} | {b['total']:.1f} "
                         f"| {row['ratio']:.2f} | {sm['peak_rss_mb']:,.0f} |")
        lines += ["", f"Ratio: {ok[0].parsed['ratio_label']}. Peak RSS of the whole benchmark process tree: "
                  f"{peak:,.0f} MB.", ""]
        if rows:
            lines += [f"Growth: {_growth([(row['n'], row['sm']['total']) for row in rows])}; peak RSS "
                      f"{rows[0]['sm']['peak_rss_mb']:,.0f} → {rows[-1]['sm']['peak_rss_mb']:,.0f} MB.", ""]
            big = rows[-1]
            cmd = ok[-1].command
            chunk = int(cmd[cmd.index("--chunksize") + 1]) if "--chunksize" in cmd else 100_000
            parts = math.ceil(big["n"] / chunk) * big["sm"]["n_files"]  # about one part per chunk and bucket
            summary = {"ratio": max(row["ratio"] for row in rows), "peak_mb": big["sm"]["peak_rss_mb"],
                       "peak_growth": (rows[0]["n"], rows[0]["sm"]["peak_rss_mb"], big["n"], big["sm"]["peak_rss_mb"]),
                       "sampling_rate": big["n"] / big["sm"]["sampling"] if big["sm"]["sampling"] else None,
                       "spectra_rate": big["n"] / big["sm"]["spectra"] if big["sm"]["spectra"] else None,
                       "merge_rate": big["sm"]["rows"] / big["sm"]["merge"] if big["sm"]["merge"] else None,
                       "accept_fraction": big["sm"]["rows"] / big["n"], "n": big["n"],
                       "merge_s_per_part": big["sm"]["merge"] / parts if parts else None}
        return lines, summary
    if name == "training":
        lines += ["| model | taus | input building taus/s | fit streamed taus/s | fit in memory taus/s | ratio |",
                  "|---|---:|---:|---:|---:|---:|"]
        for r in ok:
            for kind, m in r.parsed.get("models", {}).items():
                lines.append(f"| {kind} | {m['taus']:,} | {_f(m['input_build_taus_per_s'])} | {_f(m['fit_streamed_taus_per_s'])} "
                             f"| {_f(m['fit_in_memory_taus_per_s'])} | {m['ratio']:.2f} |")
        lines += ["", f"Ratio: {ok[0].parsed['ratio_label']}. Peak RSS: {max(r.peak_mb for r in ok):,.0f} MB.", ""]
        summary = {"ratio": ok[-1].parsed.get("ratio"), "peak_mb": max(r.peak_mb for r in ok)}
        return lines, summary
    label = ok[0].parsed.get("ratio_label", "")
    lines += ["| input taus | stage taus/s (1 core) | raw-I/O taus/s | ratio | wall s (whole script) | peak RSS MB |",
              "|---:|---:|---:|---:|---:|---:|"]
    for r in ok:
        p = r.parsed
        peak = p.get("peak_mb") or r.peak_mb
        lines.append(f"| {_f(float(r.sizes[0]) if r.sizes[0] else None)} | {_f(p.get('rate'))} | {_f(p.get('io_rate'))} "
                     f"| {_f(p.get('ratio'), '.2f')} | {r.wall_s:.1f} | {peak:,.0f} |")
    lines += ["", f"Ratio: {label}."]
    floors = [r.parsed["floor_ratio"] for r in ok if r.parsed.get("floor_ratio")]
    if name == "scaling" and floors:
        lines.append(f"Coffea floor (the same Runner with a processor that only reads the columns) / bare read: "
                     f"{', '.join(f'{f:.2f}' for f in floors)} — the most any coffea processor reaches here.")
    if name == "spectra" and ok[-1].parsed.get("parsl_speedup"):
        lines.append(f"Parsl 2-worker speedup over 1 worker: {ok[-1].parsed['parsl_speedup']:.2f} (2 shared cores).")
    timed = [(r.sizes[0], r.sizes[0] / r.parsed["rate"]) for r in ok if r.parsed.get("rate")]
    lines += [f"Growth: {_growth(timed)}.", ""]
    if name not in KNOWN:
        lines += ["```", "\n".join(r.stdout.strip().splitlines()[-15:]), "```", ""]
    big = ok[-1]
    summary = {"ratio": big.parsed.get("ratio"), "rate": big.parsed.get("rate"),
               "peak_mb": big.parsed.get("peak_mb") or big.peak_mb}
    return lines, summary


#: On-paper assumptions of the production plan (stated on the page): bytes read per tau by a
#: pass over every branch (real TauTuples with PF-candidate lists), by the spectra pass (11
#: scalar branches), and the aggregate read bandwidth the storage gives one user.
BYTES_PER_TAU_ALL = 2_000
BYTES_PER_TAU_SPECTRA = 60
STORAGE_GB_PER_S = 5.0


def production_plan(summaries: dict[str, dict[str, Any]], n_taus: float = 500e6, slots: int = 1000) -> list[str]:
    """A paper plan for a production-size run, from the measured per-core rates.

    Each pass takes the longer of its compute time (work / (per-slot rate × slots)) and its
    read time (bytes / storage bandwidth): at 1 000 slots the storage, not the CPU, is what
    usually sets the pace.
    """
    sp = summaries.get("spectra", {}).get("rate") or summaries.get("shuffle_merge", {}).get("spectra_rate")
    sm = summaries.get("shuffle_merge", {})
    sc = summaries.get("scaling", {}).get("rate")
    per_file = chunksize = 200_000
    n_files = math.ceil(n_taus / per_file)
    n_chunks = n_files * math.ceil(per_file / chunksize)
    k_out = math.ceil(n_taus / 1_000_000)
    accept = sm.get("accept_fraction") or 0.25
    rows_out = n_taus * accept
    bw = STORAGE_GB_PER_S * 1e9
    lines = [f"## Production plan on paper: {n_taus / 1e6:,.0f} M taus on a {slots:,}-slot HTCondor pool", "",
             "Computed by `run_all.py` from the per-core rates measured above (one Parsl worker per slot, "
             "`configs/executors/condor.yaml` with `cores_per_slot: 1`). Assumed, not measured: "
             f"{BYTES_PER_TAU_ALL:,} bytes per tau for a pass over every branch (TauTuples with PF-candidate lists), "
             f"{BYTES_PER_TAU_SPECTRA} bytes per tau for the spectra branches, and {STORAGE_GB_PER_S:g} GB/s of aggregate "
             "read bandwidth for one user on EOS/dCache. Each pass takes the longer of its compute and its read "
             "time; the rates are those of a shared 2-core VM, so the compute times are upper estimates.", "",
             f"* **Inputs**: {n_files:,} TauTuple files of {per_file:,} taus; chunk size {chunksize:,} → {n_chunks:,} "
             f"chunks per pass, {n_chunks / slots:.1f} per slot (several chunks per slot let Parsl balance "
             "stragglers; one chunk per file keeps the per-chunk file-open cost below 1 %).",
             ]
    phases: list[float] = []

    def add(name: str, work: float, rate: float | None, bytes_per_tau: float, note: str) -> None:
        if not rate:
            lines.append(f"* **{name}**: not measured in this run.")
            return
        compute = work / (rate * slots)
        read = work * bytes_per_tau / bw
        wall = max(compute, read)
        phases.append(wall)
        bound = "storage-bound" if read > compute else "CPU-bound"
        lines.append(f"* **{name}**: {work / 1e6:,.0f} M taus at {rate:,.0f} taus/s/slot → compute {compute / 60:,.1f} min, "
                     f"read {work * bytes_per_tau / 1e9:,.0f} GB in {read / 60:,.1f} min → **{wall / 60:,.1f} min** "
                     f"({bound}); {note}")

    add("spectra (pass 1)", n_taus, sp, BYTES_PER_TAU_SPECTRA,
        "output: one small histogram file per dataset, merged on the driver.")
    add("shuffle & merge sampling (pass 2)", n_taus, sm.get("sampling_rate"), BYTES_PER_TAU_ALL,
        f"accepted fraction measured on the toy {accept:.2f} → {rows_out / 1e6:,.0f} M output taus, written as "
        "one Arrow IPC part per chunk (a record batch per bucket).")
    if sm.get("merge_rate"):
        per_bucket = rows_out / k_out
        by_rows = per_bucket / sm["merge_rate"]
        by_parts = n_chunks * (sm.get("merge_s_per_part") or 0.0)
        merge_job = max(by_rows, by_parts)
        waves = math.ceil(k_out / slots)
        phases.append(merge_job * waves)
        lines.append(f"* **merge (pass 3)**: K = {k_out} output files (one per 1 M input taus) of ~{per_bucket:,.0f} "
                     f"taus. Merge fan-in: each bucket job reads one part per chunk, {n_chunks:,} parts of "
                     f"~{per_bucket / n_chunks:,.0f} rows. A job takes the longer of rows / measured rate "
                     f"({sm['merge_rate']:,.0f} rows/s → {by_rows / 60:.1f} min) and parts × measured cost per part "
                     f"({1e3 * (sm.get('merge_s_per_part') or 0):.0f} ms → {by_parts / 60:.1f} min): "
                     f"**{merge_job / 60:.1f} min**; {k_out} jobs on {slots:,} slots = {waves} wave(s). Above ~5 000 "
                     "parts per bucket the fan-in is better split in two levels (first merge the parts of ~50 chunks).")
    add("feature scaling", rows_out, sc, BYTES_PER_TAU_ALL,
        "over the shuffled outputs; per-file partial sums merge exactly on the driver.")
    if phases:
        total = sum(phases)
        lines.append(f"* **Total**: {total / 60:,.0f} min of passes; plus ~5 min for {slots:,} HTCondor pilots to "
                     f"match and connect and a 1.3× allowance for stragglers and retries: "
                     f"**about {(1.3 * total + 300) / 3600:.1f} h**.")
    peaks = {k: v["peak_mb"] for k, v in summaries.items() if v.get("peak_mb") and k in ("spectra", "shuffle_merge", "scaling")}
    if peaks:
        worst = max(peaks.values())
        growth = ""
        if sm.get("peak_growth"):
            n1, m1, n2, m2 = sm["peak_growth"]
            growth = (f" At a fixed chunk size it is set by the chunk, not the input: shuffle & merge went from "
                      f"{m1:,.0f} to {m2:,.0f} MB for {n2 / n1:.0f}× the input.")
        lines.append(f"* **Memory per job**: measured peak RSS {', '.join(f'{k} {v:,.0f} MB' for k, v in peaks.items())}."
                     f"{growth} Request `mem_per_slot: {max(2, math.ceil(2 * worst / 1024))}` (GB, 2× the worst pass, "
                     "at the production chunk size of 200 000 — measure once at that size before a large run).")
    if sm.get("sampling_rate"):
        demand = slots * sm["sampling_rate"] * BYTES_PER_TAU_ALL / 1e9
        lines.append(f"* **Storage**: {slots:,} slots at the measured pass-2 rate would read {demand:,.1f} GB/s; "
                     + ("more than the assumed bandwidth — cap `max_blocks` near "
                        f"{int(slots * STORAGE_GB_PER_S / demand):,} slots, more give no speed."
                        if demand > STORAGE_GB_PER_S else "within the assumed bandwidth."))
    lines += ["* **Reliability settings**: `retries: 2` (lost workers and pre-empted slots), `skip_bad_files: true` "
              "with the run report's `bad_files` reviewed afterwards, and `checkpoint_dir` on shared storage so a "
              "lost driver resumes without redoing finished chunks (`docs/reliability.md`).", ""]
    return lines


def _target_met(ratio: float | None, label: str) -> str:
    m = re.search(r"target (>=|<=) ([\d.]+)", label)
    if ratio is None or not m:
        return "–"
    met = ratio >= float(m.group(2)) if m.group(1) == ">=" else ratio <= float(m.group(2))
    return "met" if met else "**not met**"


def write_page(path: Path, mode: str, runs: list[Run], info: dict[str, Any]) -> Path:
    from taucoffea.columns.atomic import (
        write_text_atomic,  # keeps `--dry-run` free of the package import
    )

    by_stage: dict[str, list[Run]] = {}
    for r in runs:
        by_stage.setdefault(r.stage, []).append(r)
    head = [
        "# Benchmarks", "",
        f"Generated by `python benchmarks/run_all.py{'' if mode == 'default' else ' --' + mode}` — do not edit by hand; "
        "re-run it to refresh this page.", "",
        "## Machine", "",
        f"* {info['cores']} cores: {info['cpu']}; {_f(info['memory_gb'], '.0f')} GB memory; 1-min load average "
        f"{info['load'][0]:.1f} at the start, {info.get('load_end', info['load'])[0]:.1f} at the end. The machine is "
        "shared and each figure is one measurement: absolute rates are indicative, and differences below ~30 % "
        "between the two sizes of a stage are within the noise. Ratios compare the stage with a bare read of the "
        "same files in the same process, minutes apart, and are the figures of merit.",
        f"* date: {info['date']}; Python {info['python']}; "
        + ", ".join(f"{k} {v}" for k, v in info["versions"].items()),
        f"* mode: {mode}; total wall time {sum(r.wall_s for r in runs) / 60:.1f} min", "",
        "## Summary", "",
        "Status: whether the script ran; *target*: whether its ratio meets the target the stage was written for "
        "(at the medium and quick sizes fixed costs — imports, Parsl start, file opening — weigh more than at the "
        "default sizes, so a missed target there says less than at the default sizes).", "",
        "| stage | figure of merit (ratio) | what the ratio compares | target | peak RSS MB | status |",
        "|---|---:|---|---|---:|---|",
    ]
    body: list[str] = ["## Per stage", ""]
    summaries: dict[str, dict[str, Any]] = {}
    for stage, stage_runs in by_stage.items():
        lines, summary = _stage_section(stage, stage_runs)
        summaries[stage] = summary
        body += lines
        ok = all(r.returncode == 0 for r in stage_runs)
        label = next((r.parsed.get("ratio_label") for r in stage_runs if r.parsed.get("ratio_label")), "")
        head.append(f"| {stage} | {_f(summary.get('ratio'), '.2f')} | {label} | {_target_met(summary.get('ratio'), label)} "
                    f"| {_f(summary.get('peak_mb'))} | {'ok' if ok else 'FAILED'} |")
    head.append("")
    commands = ["## Commands run", "", "```"] + [
        re.sub(r"\S*taucoffea-run-all-[^/\s]+/", "<tmp>/",
               f"{' '.join(shlex.quote(c) for c in [Path(r.command[1]).relative_to(REPO).as_posix(), *r.command[2:]])}")
        + f"   # {r.wall_s:.0f} s, exit {r.returncode}" for r in runs] + ["```", ""]
    text = "\n".join(head + body + production_plan(summaries) + commands)
    return write_text_atomic(path, text)


# ------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_const", const="quick", dest="mode", help="small sizes (smoke test)")
    g.add_argument("--medium", action="store_const", const="medium", dest="mode", help="~10 min on 2 cores (the shipped page)")
    p.set_defaults(mode="default")
    p.add_argument("--only", help="comma list of stages (default: every script found)")
    p.add_argument("--output", default=str(REPO / "docs" / "benchmarks.md"), help="page to write")
    p.add_argument("--json", help="also write the raw results here")
    p.add_argument("--dry-run", action="store_true", help="print the commands and exit")
    p.add_argument("--from-json", help="write the page from the raw results of an earlier --json, running nothing")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per script run")
    args = p.parse_args(argv)

    if args.from_json:  # re-render the page from saved raw results, without running anything
        saved = json.loads(Path(args.from_json).read_text())
        runs = [Run(**r) for r in saved["runs"]]
        print(f"[run_all] wrote {write_page(Path(args.output), saved['mode'], runs, saved['machine'])}")
        return 0
    only = {s.strip() for s in args.only.split(",")} if args.only else None
    with tempfile.TemporaryDirectory(prefix="taucoffea-run-all-") as tmp:
        jobs = plan(args.mode, only, Path(tmp))
        if not jobs:
            print("no benchmark selected", file=sys.stderr)
            return 2
        if args.dry_run:
            for _, run, _ in jobs:
                print(" ".join(shlex.quote(c) for c in run.command))
            return 0
        info = machine()
        runs = []
        for bench, run, json_path in jobs:
            print(f"[run_all] {run.stage} {run.sizes} ...", flush=True)
            execute(bench, run, json_path, args.timeout)
            runs.append(run)
            status = "ok" if run.returncode == 0 else f"FAILED (exit {run.returncode})"
            print(f"[run_all] {run.stage} {status} in {run.wall_s:.1f} s, peak RSS {run.peak_mb:,.0f} MB", flush=True)
        info["load_end"] = os.getloadavg()
        page = write_page(Path(args.output), args.mode, runs, info)
        print(f"[run_all] wrote {page}")
        if args.json:
            raw = [{**r.__dict__, "stdout": r.stdout[-5000:], "stderr": r.stderr[-5000:]} for r in runs]
            Path(args.json).write_text(json.dumps({"mode": args.mode, "machine": info, "runs": raw}, indent=1, default=str) + "\n")
    return 0 if all(r.returncode == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
