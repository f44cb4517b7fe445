"""Bulk reads of one chunk's rows, for processors that need many columns of every row.

coffea hands a processor lazy NanoEvents that read a column at a time: for parquet a whole-file
column per call (sliced to the chunk afterwards), for ROOT one uproot array per branch wrapped
into awkward's virtual arrays. Feature scaling (~120 columns) and the sampling pass of shuffle &
merge (every branch) read instead the chunk's rows of all their columns in one call — measured
1.3–1.6× faster — and still run as coffea processors: the Runner chunks, schedules and merges.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

from taucoffea.errors import InputError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["parquet_num_rows", "read_parquet_rows", "read_root_rows"]


def read_root_rows(
    path: str | os.PathLike[str],
    treename: str,
    branches: Collection[str] | Callable[[list[str]], Collection[str]],
    start: int,
    stop: int,
) -> dict[str, Any]:
    """``{branch: awkward array}`` of entries ``[start, stop)`` of ``treename``, in one uproot call.

    ``branches`` may be a function of the tree's branch names (in file order) that picks them.
    """
    import uproot

    with uproot.open(path, array_cache=None) as f:
        tree = f[treename]
        available = list(tree.keys())
        wanted = set(branches(available) if callable(branches) else branches)
        missing = sorted(wanted - set(available))
        if missing:
            raise InputError(f"branch(es) {missing} missing in file '{path}'")
        return tree.arrays(filter_name=sorted(wanted), entry_start=start, entry_stop=stop, how=dict)


def parquet_num_rows(path: str | os.PathLike[str]) -> int:
    """Rows in a parquet file, from its footer."""
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


def read_parquet_rows(path: str | os.PathLike[str], columns: list[str], start: int, stop: int) -> pa.Table:
    """Rows ``[start, stop)`` of ``columns`` in one read of the row groups they span."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path, pre_buffer=True)  # one read per column chunk: ~15 % faster from memory
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
