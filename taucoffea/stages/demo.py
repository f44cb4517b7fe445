"""The demo: ``configs/pipelines/demo.yaml`` on toy data, a closing summary and a gallery.

The chain itself is an ordinary pipeline (``taucoffea run`` runs the same file); the demo adds
resuming by default (a re-run skips finished stages), the summary of the numbers people look
at first, and ``index.html`` with every plot.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

import taucoffea
from taucoffea.columns.atomic import write_text_atomic
from taucoffea.errors import ConfigError
from taucoffea.execution.config import ExecutorConfig

__all__ = ["demo_pipeline", "run_demo"]


def demo_pipeline() -> Path:
    """The demo's pipeline file, from the repository checkout taucoffea is installed from."""
    path = Path(taucoffea.__file__).resolve().parents[1] / "configs" / "pipelines" / "demo.yaml"
    if not path.exists():
        raise ConfigError(
            f"the demo needs the repository's configs/ folder ({path} not found): "
            "install taucoffea from a checkout with `pip install -e .`"
        )
    return path


def _first_line(result: Any) -> str:
    summary = getattr(result, "summary", None)
    text = summary() if callable(summary) else ""
    return text.splitlines()[0] if text else ""


def _physics_summary(wd: Path) -> dict[str, Any]:
    """AUCs per discriminator, the model's fake rates at its WPs, data/MC agreement."""
    out: dict[str, Any] = {}
    aucs: dict[str, dict[str, float]] = {}
    for perf in sorted((wd / "evaluation").glob("*/performance.json")):
        data = json.loads(perf.read_text())
        for entry in data.get("metrics", {}).get("roc_curve", []):
            key = f"vs {entry['vs_type']}, pT {entry['pt_min']:g}-{entry['pt_max']:g}"
            aucs.setdefault(key, {})[data.get("name", perf.parent.name)] = round(entry["auc_score"], 5)
        if data.get("key") == "model":
            fakes = {}
            for entry in data.get("metrics", {}).get("roc_wp", []):
                if entry["pt_max"] <= 100:
                    fakes[f"vs {entry['vs_type']}"] = {
                        wp: f"eff {tpr:.3f}, mis-id {fpr:.2e}"
                        for wp, tpr, fpr in zip(entry["wp_names"], entry["true_positive_rate"], entry["false_positive_rate"], strict=True)
                    }
            out["model_working_points_pt20-100"] = fakes
    if aucs:
        out["auc"] = aucs
    agreement = wd / "plots" / "adversarial" / "adversarial_agreement.json"
    if agreement.exists():
        results = json.loads(agreement.read_text()).get("results", {})
        out["adversarial_data_mc_agreement"] = {
            label: {"djet_ks_distance": round(r["ks_distance"], 4), "djet_chi2_ndf": round(r["chi2_ndf"], 2)}
            for label, r in results.items()
        }
    return out


def _gallery(workdir: Path) -> Path:
    """``index.html`` showing every PNG under ``plots/`` and the validation plots."""
    plots = sorted(p for p in workdir.rglob("*.png") if ".tmp-" not in str(p))
    sections: dict[str, list[Path]] = {}
    for p in plots:
        sections.setdefault(str(p.parent.relative_to(workdir)), []).append(p)
    body = []
    for name, files in sections.items():
        body.append(f"<h2>{html.escape(name)}</h2>")
        for f in files:
            rel = html.escape(str(f.relative_to(workdir)))
            pdf = f.with_suffix(".pdf")
            link = html.escape(str(pdf.relative_to(workdir))) if pdf.exists() else rel
            body.append(
                f'<figure><a href="{link}"><img src="{rel}" width="460" loading="lazy"></a>'
                f"<figcaption>{html.escape(f.stem)}</figcaption></figure>"
            )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>taucoffea demo</title>"
        "<style>body{font-family:sans-serif;margin:2em} figure{display:inline-block;margin:6px;"
        "vertical-align:top} figcaption{font-size:small;text-align:center}</style></head><body>"
        f"<h1>taucoffea demo</h1><p>{len(plots)} plots; click a plot for its PDF.</p>"
        + "\n".join(body)
        + "</body></html>\n"
    )
    return write_text_atomic(workdir / "index.html", page)


def run_demo(
    workdir: str | os.PathLike[str] = "taucoffea-demo",
    *,
    until: str | None = None,
    executor: ExecutorConfig | None = None,
    restart: bool = False,
) -> dict[str, Any]:
    """Run the demo chain in ``workdir``; return (and write to ``summary.json``) the summary."""
    from taucoffea.stages.pipeline import run_pipeline

    wd = Path(workdir)
    results = run_pipeline(demo_pipeline(), wd, executor=executor, until=until, resume=not restart, overwrite=restart)
    summary: dict[str, Any] = {"workdir": str(wd.resolve()), "stages": {}}
    for key, result in results.items():
        summary["stages"][key] = _first_line(result) if result is not None else "done before (resumed)"
    summary.update(_physics_summary(wd))
    summary["gallery"] = str(_gallery(wd).resolve())
    write_text_atomic(wd / "summary.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary
