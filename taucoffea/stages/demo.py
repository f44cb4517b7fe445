"""The demo: the whole pipeline on toy data, in one command and one Parsl session.

Stages run in order and each leaves a ``.done-<stage>`` marker, so an interrupted demo picks up
where it stopped; ``until`` stops early. All stages share one ExecutionSession, so the Parsl
workers start once.
"""

from __future__ import annotations

import html
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taucoffea.errors import ConfigError
from taucoffea.execution.config import ExecutorConfig
from taucoffea.execution.session import ExecutionSession

__all__ = ["DEMO_STAGES", "run_demo"]


@dataclass
class DemoContext:
    workdir: Path
    size: str
    seed: int
    session: ExecutionSession
    progress: bool
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def toy_dir(self) -> Path:
        return self.workdir / "toy"

    @property
    def plots_dir(self) -> Path:
        return self.workdir / "plots"


def _toy(ctx: DemoContext) -> None:
    from taucoffea.toy.generator import generate_toy

    manifest = generate_toy(ctx.toy_dir, seed=ctx.seed, size=ctx.size, overwrite=True, progress=ctx.progress)
    ctx.summary["toy"] = {"datasets": len(manifest.get("datasets", {})), "taus": manifest.get("total_taus")}


def _spectra(ctx: DemoContext) -> None:
    from taucoffea.stages.spectra import run_spectra

    result = run_spectra(ctx.toy_dir, ctx.workdir / "spectra", session=ctx.session, overwrite=True)
    print(result.summary())
    valid = sum(int(h.sum(flow=True)) for per in result.spectra.values() for h in per.values())
    ctx.summary["spectra"] = {"datasets": len(result.entries), "valid_taus": valid, "not_valid": sum(result.not_valid.values())}


def _plot_spectra(ctx: DemoContext) -> None:
    from taucoffea.plotting.spectra import plot_spectra_dir

    plot_spectra_dir(ctx.workdir / "spectra", ctx.plots_dir / "spectra")


DEMO_STAGES: dict[str, Callable[[DemoContext], None]] = {
    "toy": _toy,
    "spectra": _spectra,
    "plot-spectra": _plot_spectra,
}


def _gallery(workdir: Path) -> Path:
    """``index.html`` showing every PNG under ``plots/``, grouped by folder."""
    plots = sorted((workdir / "plots").rglob("*.png"))
    sections: dict[str, list[Path]] = {}
    for p in plots:
        sections.setdefault(str(p.parent.relative_to(workdir / "plots")), []).append(p)
    body = []
    for name, files in sections.items():
        body.append(f"<h2>{html.escape(name)}</h2>")
        for f in files:
            rel = html.escape(str(f.relative_to(workdir)))
            pdf = html.escape(str(f.with_suffix(".pdf").relative_to(workdir)))
            body.append(f'<figure><a href="{pdf}"><img src="{rel}" width="480"></a><figcaption>{html.escape(f.stem)}</figcaption></figure>')
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>taucoffea demo</title>"
        "<style>body{font-family:sans-serif} figure{display:inline-block;margin:6px}</style></head><body>"
        "<h1>taucoffea demo</h1>" + "\n".join(body) + "</body></html>\n"
    )
    out = workdir / "index.html"
    out.write_text(page)
    return out


def run_demo(
    workdir: str | os.PathLike[str] = "taucoffea-demo",
    *,
    size: str = "small",
    seed: int = 1234,
    until: str | None = None,
    executor: ExecutorConfig | None = None,
    restart: bool = False,
) -> dict[str, Any]:
    """Run the demo chain; return (and write to ``summary.json``) the closing summary."""
    if until is not None and until not in DEMO_STAGES:
        raise ConfigError(f"--until '{until}' is not a demo stage; stages: {', '.join(DEMO_STAGES)}")
    wd = Path(workdir)
    wd.mkdir(parents=True, exist_ok=True)
    cfg = executor or ExecutorConfig()
    summary_path = wd / "summary.json"
    previous = json.loads(summary_path.read_text()) if summary_path.exists() and not restart else {}
    with ExecutionSession(cfg) as session:
        ctx = DemoContext(wd, size, seed, session, cfg.progress, summary=previous)
        for name, stage in DEMO_STAGES.items():
            marker = wd / f".done-{name}"
            if marker.exists() and not restart:
                print(f"[demo] {name}: already done (remove {marker} to redo)")
            else:
                print(f"[demo] {name} ...", flush=True)
                t0 = time.perf_counter()
                stage(ctx)
                ctx.summary.setdefault("timing_s", {})[name] = round(time.perf_counter() - t0, 1)
                marker.touch()
                summary_path.write_text(json.dumps(ctx.summary, indent=2, sort_keys=True) + "\n")
            if name == until:
                break
    gallery = _gallery(wd)
    ctx.summary["gallery"] = str(gallery)
    summary_path.write_text(json.dumps(ctx.summary, indent=2, sort_keys=True) + "\n")
    return ctx.summary
