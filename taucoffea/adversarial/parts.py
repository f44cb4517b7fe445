"""Per-chunk parquet parts and their reassembly into one output file per input file.

Processors that write rows (skim, event drop, mix) write one part per chunk, named by the
chunk's identity (input file and entry range), and return its path. The stage then puts the
parts of each input file back together in entry order, so the output is the same bytes
whatever the chunk size, executor or completion order.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from taucoffea.columns.atomic import atomic_path
from taucoffea.columns.rootio import recreate
from taucoffea.errors import InputError

__all__ = [
    "concat_parts",
    "event_rows",
    "file_key",
    "merge_file_parts",
    "output_stems",
    "write_part",
    "write_root_taus",
]


def file_key(path: str) -> str:
    """A short stable name for an input file inside a parts folder (its identity, not its bytes)."""
    digest = hashlib.blake2b(os.path.abspath(path).encode(), digest_size=6).hexdigest()
    return f"{Path(path).stem}-{digest}"


def output_stems(files: Sequence[str]) -> dict[str, str]:
    """``{input file: output stem}``; the input's stem, prefixed by its index if two collide."""
    stems = [Path(f).stem for f in files]
    if len(set(stems)) == len(stems):
        return dict(zip(files, stems, strict=True))
    return {f: f"{i:04d}_{s}" for i, (f, s) in enumerate(zip(files, stems, strict=True))}


def event_rows(events: Any, columns: Iterable[str], index: np.ndarray | None = None) -> dict[str, Any]:
    """Selected rows of ``columns`` as plain awkward/numpy arrays.

    uproot's per-branch parameters (typename, __doc__) depend on how the arrays were read, so
    they are dropped: the written bytes then depend on the values only.
    """
    out: dict[str, Any] = {}
    for c in columns:
        arr = events[c]
        if index is not None:
            arr = arr[index]
        out[c] = ak.without_parameters(arr) if isinstance(arr, ak.Array) else arr
    return out


def write_part(columns: Mapping[str, Any], parts_dir: str | os.PathLike[str], label: str, filename: str, start: int, stop: int) -> str | None:
    """Write one chunk's rows; ``None`` (nothing written) when the chunk kept no row."""
    from taucoffea.columns.parquet import write_parquet

    rows = ak.zip(dict(columns), depth_limit=1)
    if len(rows) == 0:
        return None
    path = Path(parts_dir) / label / file_key(filename) / f"{int(start):012d}-{int(stop):012d}.parquet"
    write_parquet(rows, path)
    return str(path)


def concat_parts(parts: Sequence[tuple[int, str]]) -> ak.Array:
    """Rows of the parts in entry order (parts are ``(entry_start, path)``)."""
    ordered = sorted(parts)
    starts = [s for s, _ in ordered]
    if len(set(starts)) != len(starts):
        raise InputError(f"duplicate chunk parts (a chunk processed twice?): {[p for _, p in ordered]}")
    arrays = [ak.from_parquet(p) for _, p in ordered]
    return arrays[0] if len(arrays) == 1 else ak.concatenate(arrays)


def merge_file_parts(parts: Sequence[tuple[int, str]], output: str | os.PathLike[str], *, overwrite: bool = True, root: bool = False) -> int:
    """Concatenate one input file's parts into ``output`` (parquet; plus ``.root`` if asked)."""
    from taucoffea.columns.parquet import write_parquet

    rows = concat_parts(parts)
    write_parquet(rows, output, overwrite=overwrite)
    if root:
        write_root_taus(rows, Path(output).with_suffix(".root"), overwrite=overwrite)
    return len(rows)


def _cpp_type(array: np.ndarray) -> np.ndarray:
    """float64 → float32 and int64 → int32 (when the values fit): the TauTuple's C++ types."""
    if array.dtype == np.float64:
        return array.astype(np.float32)
    if array.dtype == np.int64:
        info = np.iinfo(np.int32)
        if array.size == 0 or (array.min() >= info.min and array.max() <= info.max):
            return array.astype(np.int32)
    return array


def _jagged_groups(rows: ak.Array, fields: Collection[str]) -> tuple[list[str], dict[str, list[str]]]:
    flat: list[str] = []
    groups: dict[str, list[str]] = {}
    for f in fields:
        if rows[f].ndim == 1:
            flat.append(f)
        else:
            prefix = f.split("_", 1)[0] if "_" in f else f
            groups.setdefault(prefix, []).append(f)
    # a group shares one counter only if every member has the same list lengths
    for prefix, members in list(groups.items()):
        counts = ak.num(rows[members[0]])
        if len(members) > 1 and not all(ak.all(ak.num(rows[m]) == counts) for m in members[1:]):
            del groups[prefix]
            for m in members:
                groups[m] = [m]
    return flat, groups


def write_root_taus(rows: ak.Array, path: str | os.PathLike[str], *, overwrite: bool = True, treename: str = "taus") -> Path:
    """Write rows as a TTree with TauTuple C++ types (not RNTuple; DESIGN §3).

    Jagged columns sharing a prefix (``pfCand_pt``, ``pfCand_eta`` …) are written as one
    collection with uproot's counter ``n<prefix>`` (``npfCand``), which is the TauTuple layout;
    an existing flat counter column of that name is therefore not written twice.
    """
    fields = list(rows.fields)
    flat, groups = _jagged_groups(rows, fields)
    counters = {f"n{prefix}" for prefix, members in groups.items() if len(members) > 1 or members[0] != prefix}
    data: dict[str, Any] = {}
    for f in flat:
        if f in counters:
            continue
        data[f] = _cpp_type(ak.to_numpy(rows[f]))
    for prefix, members in groups.items():
        if len(members) == 1 and members[0] == prefix:
            arr = rows[prefix]
            content = _cpp_type(ak.to_numpy(ak.flatten(arr)))
            data[prefix] = ak.unflatten(content, ak.num(arr))
            continue
        inner = {}
        for m in members:
            arr = rows[m]
            inner[m[len(prefix) + 1 :]] = ak.unflatten(_cpp_type(ak.to_numpy(ak.flatten(arr))), ak.num(arr))
        data[prefix] = ak.zip(inner)
    types = {k: (v.dtype if isinstance(v, np.ndarray) else v.type.content) for k, v in data.items()}
    final = Path(path)
    with atomic_path(final, overwrite=overwrite) as tmp, recreate(tmp, key=final.name) as f:
        tree = f.mktree(treename, types, title=treename)
        if len(rows):
            tree.extend(data)
    return final
