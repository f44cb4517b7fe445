"""What the adversarial stages accept as input: files, list files, folders of datasets.

TauMLTools' ``skim_tree.py`` takes a ROOT file, a ``.txt`` list (``#`` lines skipped) or a
directory; our stages take the same, plus our own parquet outputs, and always end up with a
sorted ``{dataset: [files]}`` fileset and the tree name (``None`` for parquet).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import pyarrow.parquet as pq

from taucoffea.columns.discovery import discover_fileset
from taucoffea.errors import InputError

__all__ = ["entry_counts", "resolve_fileset"]

_SUFFIXES = (".root", ".parquet")


def _from_list(path: Path) -> list[str]:
    files = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        p = Path(line)
        if not p.is_absolute():
            p = (path.parent / p) if (path.parent / p).exists() else p
        files.append(str(p.resolve()))
    if not files:
        raise InputError(f"list file '{path}' names no input files")
    return files


def _group(files: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in files:
        out.setdefault(Path(f).parent.name or "dataset", []).append(f)
    return {ds: sorted(v) for ds, v in sorted(out.items())}


def resolve_fileset(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | Mapping[str, Sequence[str]],
    *,
    treename: str = "taus",
) -> tuple[dict[str, list[str]], str | None]:
    """``({dataset: [files]}, treename or None for parquet)`` from what the user gave.

    A folder holding ``.root`` files is read as ROOT, else as parquet; one run never mixes the
    two. Datasets are named after the folder holding their files.
    """
    if isinstance(inputs, Mapping):
        fileset = {ds: [str(Path(f).resolve()) for f in files] for ds, files in inputs.items()}
    else:
        items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
        fileset = {}
        for item in items:
            p = Path(item)
            if not p.exists():
                raise InputError(f"input '{p}' does not exist")
            if p.is_file() and p.suffix == ".txt":
                found = _group(_from_list(p))
            elif p.is_dir():
                try:
                    found = discover_fileset(p, suffix=".root")
                except InputError:
                    found = discover_fileset(p, suffix=".parquet")
            elif p.suffix in _SUFFIXES:
                found = _group([str(p.resolve())])
            else:
                raise InputError(f"input '{p}' is not a .root/.parquet file, a .txt list or a folder")
            for ds, files in found.items():
                fileset.setdefault(ds, []).extend(files)
    if not fileset:
        raise InputError(f"no input files in {inputs!r}")
    suffixes = {Path(f).suffix for files in fileset.values() for f in files}
    if not suffixes <= set(_SUFFIXES) or len(suffixes) != 1:
        raise InputError(f"inputs must be all .root or all .parquet files, got {sorted(suffixes)}")
    for ds, files in fileset.items():
        if len(set(files)) != len(files):
            raise InputError(f"dataset '{ds}' lists a file twice")
    return {ds: list(files) for ds, files in sorted(fileset.items())}, (treename if suffixes == {".root"} else None)


def entry_counts(
    fileset: Mapping[str, Sequence[str]], treename: str | None, *, skip_bad: bool = False
) -> tuple[dict[str, int], list[tuple[str, str, str]]]:
    """(entries per readable file, from metadata only; ``(dataset, file, reason)`` of the others).

    An unreadable file is an :class:`InputError` unless ``skip_bad`` (the executor's
    ``skip_bad_files``): then it is left out, warned about, and returned for the run report.
    """
    import uproot

    out: dict[str, int] = {}
    bad: list[tuple[str, str, str]] = []
    for dataset, files in fileset.items():
        for f in files:
            try:
                if treename is None:
                    out[f] = int(pq.ParquetFile(f).metadata.num_rows)
                else:
                    with uproot.open(f) as fh:
                        out[f] = int(fh[treename].num_entries)
            except Exception as err:  # uproot/pyarrow raise many types for a bad file
                reason = f"cannot read the number of entries: {type(err).__name__}: {err}"
                if not skip_bad:
                    raise InputError(f"{reason} of '{f}' (set skip_bad_files to skip such files)") from None
                warnings.warn(f"skipping bad file {f}: {reason}", stacklevel=2)
                bad.append((dataset, f, reason))
    return out, bad
