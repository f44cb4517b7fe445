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

__all__ = [
    "flat_column",
    "read_part",
    "read_part_table",
    "write_bucketed_part",
    "write_parquet",
    "write_table",
]

_ROW_GROUP = 64 * 1024


def write_parquet(array: ak.Array, path: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
    """Atomic, reproducible parquet (awkward round-trips jagged lists unchanged)."""
    with atomic_path(path, overwrite=overwrite) as tmp:
        ak.to_parquet(array, tmp, compression="zstd", compression_level=3, row_group_size=_ROW_GROUP)
    return Path(path)


def write_table(table: pa.Table, path: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
    """Atomic, reproducible parquet of an arrow table, with :func:`write_parquet`'s settings."""
    import pyarrow.parquet as pq

    with atomic_path(path, overwrite=overwrite) as tmp:
        pq.write_table(table.combine_chunks(), tmp, compression="zstd", compression_level=3,
                       row_group_size=_ROW_GROUP)
    return Path(path)


def write_bucketed_part(table: pa.Table, bucket: np.ndarray, path: Path) -> dict[int, list[str]]:
    """One Arrow IPC file per chunk, one record batch per bucket; returns ``{bucket: ["path::batch"]}``.

    ``table`` rows must be ordered by ``bucket`` (each bucket's rows contiguous). Parts are
    read back once, by pass 3: IPC with lz4 buffers costs a fraction of parquet's per-column
    encoding (hundreds of branches × K buckets × chunks column chunks), and one file per chunk
    instead of one per (chunk, bucket) avoids a fixed per-file cost that dominated small chunks.
    """
    import pyarrow as pa

    bucket = np.asarray(bucket)
    if bucket.size > 1 and np.any(bucket[1:] < bucket[:-1]):
        raise ValueError("write_bucketed_part: rows must be ordered by bucket")
    present, starts = np.unique(bucket, return_index=True)
    stops = [*starts[1:], len(bucket)]
    table = table.combine_chunks()
    out: dict[int, list[str]] = {}
    options = pa.ipc.IpcWriteOptions(compression="lz4")
    with atomic_path(path) as tmp:
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema, options=options) as writer:
            n_batches = 0
            for k, lo, hi in zip(present, starts, stops, strict=True):
                refs = out.setdefault(int(k), [])
                for batch in table.slice(lo, hi - lo).to_batches():
                    writer.write_batch(batch)
                    refs.append(f"{path}::{n_batches}")
                    n_batches += 1
    return out


def read_part_table(ref: str, columns: list[str] | None = None) -> pa.Table:
    """One bucket of a chunk part (``path::batch``, see :func:`write_bucketed_part`) as an arrow
    table, or a whole parquet file when ``ref`` is a plain path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path, sep, batch = ref.rpartition("::")
    if not sep:
        return pq.read_table(ref, columns=columns)
    with pa.OSFile(path, "rb") as source:  # reads into memory: nothing points into a closed map
        record_batch = pa.ipc.open_file(source).get_batch(int(batch))
        table = pa.Table.from_batches([record_batch])
        return table.select(columns) if columns is not None else table


def read_part(ref: str, columns: list[str] | None = None) -> ak.Array:
    """:func:`read_part_table` as an awkward array."""
    return ak.from_arrow(read_part_table(ref, columns))


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
