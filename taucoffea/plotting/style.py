"""CMS style for every taucoffea figure, and one way to save them (PDF + PNG)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mplhep  # noqa: E402
from matplotlib.transforms import ScaledTranslation  # noqa: E402

from taucoffea.columns.atomic import atomic_path  # noqa: E402

__all__ = ["cms_label", "new_figure", "save_figure", "PALETTE"]

#: The CMS (Petroff) colour cycle.
PALETTE: Sequence[str] = tuple(mplhep.styles.cms.cmap_petroff)


def new_figure(nrows: int = 1, ncols: int = 1, **kwargs: Any) -> tuple[Any, Any]:
    """A figure in CMS style (the style is applied per figure, never globally at import)."""
    with plt.style.context(mplhep.style.CMS):
        fig, axes = plt.subplots(nrows, ncols, **kwargs)
    return fig, axes


def cms_label(
    ax: Any, *, data: bool = False, text: str = "Preliminary", lumi: float | None = None, com: float = 13.6, **kwargs: Any
) -> None:
    """``CMS Simulation Preliminary`` (or data) label; ``data=False`` already says Simulation.

    Extra keywords go to ``mplhep.cms.label`` (e.g. ``rlabel=""`` on narrow panels).
    """
    kwargs.setdefault("fontsize", 14)
    with plt.style.context(mplhep.style.CMS):
        _, suffix, _, _ = mplhep.cms.label(text=text, data=data, lumi=lumi, com=com, ax=ax, **kwargs)
    if suffix is not None and kwargs.get("loc", 0) in (0, 1):
        # mplhep 1.3 places the italic suffix by the "CMS" extent at the creation dpi; drawn, the
        # two overlap by up to 1.5 pt: move it by 0.4 em, in points, so the gap holds at any dpi
        em = float(kwargs["fontsize"]) if isinstance(kwargs["fontsize"], int | float) else 14.0
        shift = ScaledTranslation(0.4 * em / 72.0, 0.0, ax.figure.dpi_scale_trans)
        suffix.set_transform(suffix.get_transform() + shift)


def save_figure(fig: Any, path: str | os.PathLike[str], formats: Sequence[str] = ("pdf", "png")) -> list[Path]:
    """Save ``fig`` as ``path.<fmt>`` for each format, atomically, and close it."""
    base = Path(path)
    written = []
    for fmt in formats:
        target = base.with_suffix(f".{fmt}")
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=fmt, dpi=110, bbox_inches="tight", metadata=_metadata(fmt))
        written.append(target)
    plt.close(fig)
    return written


def _metadata(fmt: str) -> dict[str, Any] | None:
    # Fixed metadata keeps the files reproducible (matplotlib stamps dates/versions otherwise).
    if fmt == "pdf":
        return {"CreationDate": None, "Producer": "taucoffea"}
    if fmt == "png":
        return {"Software": "taucoffea"}
    if fmt == "svg":
        return {"Date": None}
    return None
