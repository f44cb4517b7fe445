"""Reading target pT histograms and writing the 1-D histograms the adversarial stages produce.

A target can be

* ``FILE.root:PATH`` — a TH1 inside a ROOT file, e.g. a datacard's ``mt_inclusive/EMB`` (the
  original EventDrop's ``--target_file`` + ``--target_histo``); ``FILE.root`` alone works
  when the file holds exactly one TH1;
* ``FILE.json`` — a histogram written by us (:func:`write_hist_json`: ``{"edges", "values"}``),
  optionally ``FILE.json:NAME`` for one entry of a ``{name: histogram}`` file, or a ``hist``
  UHI serialisation.

Flow bins of a target are ignored: the drop and the weights only act inside their binning.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from taucoffea.columns.atomic import atomic_path, write_text_atomic
from taucoffea.columns.rootio import recreate
from taucoffea.errors import InputError

__all__ = ["Hist1D", "read_target", "write_hist_json", "write_th1_file"]


@dataclass(frozen=True)
class Hist1D:
    """Regular-bin contents of a 1-D histogram (no flow) and where it came from."""

    edges: np.ndarray
    values: np.ndarray
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"edges": [float(x) for x in self.edges], "values": [float(x) for x in self.values]}


def _split_spec(spec: str) -> tuple[Path, str | None]:
    for suffix in (".root", ".json"):
        marker = suffix + ":"
        if marker in spec:
            head, _, name = spec.partition(marker)
            return Path(head + suffix), name or None
    return Path(spec), None


def _from_root(path: Path, name: str | None, spec: str) -> Hist1D:
    import uproot

    try:
        f = uproot.open(path)
    except Exception as err:  # not ROOT, truncated …
        raise InputError(f"target '{spec}': cannot open '{path}' as ROOT ({type(err).__name__}: {err})") from None
    with f:
        if name is None:
            th1 = [k for k, c in f.classnames(cycle=False).items() if c.startswith("TH1")]
            if len(th1) != 1:
                raise InputError(f"target '{spec}': give the histogram as FILE.root:PATH; 1-D histograms in the file: {th1}")
            name = th1[0]
        try:
            obj = f[name]
        except Exception:
            keys = sorted(f.keys(cycle=False))
            raise InputError(f"target '{spec}': no object '{name}' in '{path}'; keys: {keys[:30]}") from None
        if not obj.classname.startswith("TH1"):
            raise InputError(f"target '{spec}': '{name}' is a {obj.classname}, not a 1-D histogram (TH1)")
        values, edges = obj.to_numpy(flow=False)
    return Hist1D(np.asarray(edges, float), np.asarray(values, float), f"{path}:{name}")


def _from_json(path: Path, name: str | None, spec: str) -> Hist1D:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"target '{spec}': cannot read '{path}' as JSON ({err})") from None
    if name is not None:
        if not isinstance(data, Mapping) or name not in data:
            keys = sorted(data) if isinstance(data, Mapping) else []
            raise InputError(f"target '{spec}': no histogram '{name}' in '{path}'; entries: {keys}")
        data = data[name]
    if isinstance(data, Mapping) and "edges" in data and "values" in data:
        return Hist1D(np.asarray(data["edges"], float), np.asarray(data["values"], float), str(path))
    if isinstance(data, Mapping) and "axes" in data and "storage" in data:
        import hist
        from hist import serialization

        h = hist.Hist(serialization.from_uhi(data))
        if h.ndim != 1:
            raise InputError(f"target '{spec}': expected a 1-D histogram, got {h.ndim} axes")
        return Hist1D(np.asarray(h.axes[0].edges, float), np.asarray(h.values(), float), str(path))
    raise InputError(f"target '{spec}': '{path}' is not a histogram JSON ({{'edges': [...], 'values': [...]}} or UHI)")


def read_target(spec: str | os.PathLike[str]) -> Hist1D:
    """Read a target histogram (see module doc)."""
    text = os.fspath(spec)
    path, name = _split_spec(text)
    if not path.is_file():
        raise InputError(f"target '{text}': file '{path}' does not exist")
    if path.suffix == ".root":
        return _from_root(path, name, text)
    if path.suffix == ".json":
        return _from_json(path, name, text)
    raise InputError(f"target '{text}': expected FILE.root:HISTPATH or FILE.json")


def write_hist_json(path: str | os.PathLike[str], hists: Mapping[str, Hist1D] | Hist1D, *, overwrite: bool = True) -> Path:
    """One histogram (``{"edges", "values"}``) or several (``{name: …}``) as readable JSON."""
    data = hists.to_dict() if isinstance(hists, Hist1D) else {k: h.to_dict() for k, h in hists.items()}
    return write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True) + "\n", overwrite=overwrite)


def write_th1_file(path: str | os.PathLike[str], hists: Mapping[str, tuple[Sequence[float], Sequence[float]]], *, overwrite: bool = True) -> Path:
    """``{name: (values, edges)}`` as TH1Ds in one ROOT file (e.g. ``data``, ``DYT``, … weights)."""
    final = Path(path)
    with atomic_path(final, overwrite=overwrite) as tmp, recreate(tmp, key=final.name) as f:
        for name, (values, edges) in hists.items():
            f[name] = (np.asarray(values, dtype=np.float64), np.asarray(edges, dtype=np.float64))
    return final
