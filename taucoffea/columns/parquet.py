"""Parquet as our datasets use it: atomic, reproducible, jagged lists intact.

Shared by every stage that writes rows (shuffle & merge parts and outputs, skims, mixes,
predictions), so all of them round-trip through awkward the same way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import awkward as ak
import numpy as np

from taucoffea.columns.atomic import atomic_path
from taucoffea.errors import InputError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["flat_column", "read_part", "read_rows", "write_bucketed_part", "write_parquet"]


def write_parquet(array: ak.Array, path: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
    """Atomic, reproducible parquet (awkward round-trips jagged lists unchanged)."""
    with atomic_path(path, overwrite=overwrite) as tmp:
        ak.to_parquet(array, tmp, compression="zstd", compression_level=3, row_group_size=64 * 1024)
    return Path(path)


def write_bucketed_part(rows: ak.Array, bucket: np.ndarray, path: Path) -> dict[int, list[str]]:
    """One parquet file per chunk, one row group per bucket; returns ``{bucket: ["path::group"]}``.

    A file per (chunk, bucket) costs a fixed ~0.1–0.2 s of parquet schema handling each, which
    dominated small chunks; row groups let pass 3 read exactly one bucket of a chunk.
    """
    import pyarrow.parquet as pq

    order = np.argsort(bucket, kind="stable")
    rows, bucket = rows[order], bucket[order]
    present, starts = np.unique(bucket, return_index=True)
    stops = [*starts[1:], len(bucket)]
    table = ak.to_arrow_table(rows)
    out: dict[int, list[str]] = {}
    with atomic_path(path) as tmp:
        with pq.ParquetWriter(tmp, table.schema, compression="zstd", compression_level=3) as writer:
            for group, (k, lo, hi) in enumerate(zip(present, starts, stops, strict=True)):
                writer.write_table(table.slice(lo, hi - lo), row_group_size=hi - lo)
                out[int(k)] = [f"{path}::{group}"]
    return out


def read_part(ref: str, columns: list[str] | None = None) -> ak.Array:
    """Read one bucket of a chunk part (``path::group``, see :func:`write_bucketed_part`), or a
    whole parquet file when ``ref`` is a plain path."""
    import pyarrow.parquet as pq

    path, sep, group = ref.rpartition("::")
    if not sep:
        return ak.from_parquet(ref, columns=columns)
    return ak.from_arrow(pq.ParquetFile(path).read_row_group(int(group), columns=columns))


def read_rows(path: str | os.PathLike[str], columns: list[str], start: int, stop: int) -> pa.Table:
    """Rows ``[start, stop)`` of ``columns`` in one bulk read of the row groups they span.

    coffea's parquet source reads one whole-file column at a time and slices it per chunk;
    processors that need many columns of every row (feature scaling) read here instead.
    """
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    missing = sorted(set(columns) - set(pf.schema_arrow.names))
    if missing:
        raise InputError(f"column(s) {missing} missing in file '{path}'")
    groups, first, offset = [], 0, 0
    meta = pf.metadata
    for g in range(meta.num_row_groups):
        n = meta.row_group(g).num_rows
        if offset < stop and offset + n > start:
            if not groups:
                first = offset
            groups.append(g)
        offset += n
    table = pf.read_row_groups(groups, columns=columns, use_threads=False)
    return table.slice(start - first, stop - start)


def flat_column(column: pa.ChunkedArray | pa.Array, name: str = "") -> tuple[np.ndarray | None, np.ndarray]:
    """(elements per row or None for a scalar column, flat values) of a numeric arrow column,
    without copies where arrow allows (a list column's content is one buffer)."""
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if isinstance(column, pa.ExtensionArray):  # awkward's arrow extension types
        column = column.storage
    if column.null_count:
        raise InputError(f"column '{name}' has {column.null_count} missing (null) values")
    if isinstance(column, (pa.ListArray, pa.LargeListArray)):
        offsets = np.asarray(column.offsets)
        values = column.values
        if isinstance(values, pa.ExtensionArray):
            values = values.storage
        if isinstance(values, (pa.ListArray, pa.LargeListArray)):
            raise InputError(f"column '{name}' is nested deeper than one list level")
        if values.null_count:
            raise InputError(f"column '{name}' has missing (null) list elements")
        flat = values.to_numpy(zero_copy_only=False)[offsets[0] : offsets[-1]]
        return np.diff(offsets).astype(np.int64), flat
    return None, column.to_numpy(zero_copy_only=False)
