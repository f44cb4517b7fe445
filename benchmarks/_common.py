"""Helpers shared by the benchmark scripts: toy data cache, timing, peak memory."""

from __future__ import annotations

import os
import resource
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

CACHE = Path(os.environ.get("TAUCOFFEA_BENCH_CACHE", Path.home() / ".cache" / "taucoffea-bench"))


def toy_data(n_taus: int, seed: int = 1, datasets: list[str] | None = None, per_file: int = 200_000) -> Path:
    """Toy TauTuples of about ``n_taus`` taus, generated once and cached between runs.

    Files hold up to ``per_file`` taus, like production TauTuples (the toy default of 50 k
    would make per-file metadata reads dominate every measurement).
    """
    from taucoffea.toy.generator import generate_toy

    name = f"toy_{n_taus}_{seed}_{per_file}" + ("_" + "_".join(datasets) if datasets else "")
    out = CACHE / name
    if not (out / "toy_manifest.json").exists():
        generate_toy(out, seed=seed, size=n_taus, datasets=datasets, overwrite=True, progress=False, max_per_file=per_file)
    return out


@contextmanager
def timer() -> Iterator[dict[str, float]]:
    box: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        yield box
    finally:
        box["s"] = time.perf_counter() - t0


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
