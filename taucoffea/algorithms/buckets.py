"""Pass 3 of shuffle & merge: each bucket's parts → one permuted output file.

Rows carry a 64-bit random key drawn per input entry (pass 2); sorting a bucket by it is a
uniform random permutation that no chunking can change. Only one bucket is in memory at a
time, so peak memory is bounded by the largest bucket (≈ total / K), never by the dataset.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from taucoffea.errors import InputError

__all__ = ["key_threshold", "merge_bucket"]


def key_threshold(parts: Sequence[str | os.PathLike[str]], key: str, max_entries: int) -> int | None:
    """Largest key kept when only ``max_entries`` rows may survive, or ``None`` for all.

    Keeping the rows with the smallest random keys is a uniform random subset of everything
    accepted — unlike the original, which stops after the first ``max_entries`` it meets.
    """
    if max_entries is None or max_entries < 0:
        return None
    from taucoffea.columns.parquet import read_part_table

    keys = [read_part_table(str(p), [key]).column(key).to_numpy() for p in parts]
    allkeys = np.concatenate(keys) if keys else np.zeros(0, dtype=np.uint64)
    if allkeys.size <= max_entries:
        return None
    if max_entries == 0:
        return -1
    return int(np.partition(allkeys, max_entries - 1)[max_entries - 1])


def merge_bucket(
    parts: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    key: str,
    *,
    threshold: int | None = None,
    drop_key: bool = True,
) -> tuple[str, int]:
    """Concatenate ``parts`` (in the given order), sort by ``key``, write ``output`` atomically.

    Returns ``(output, n_rows)``. The sort is stable, so equal keys (probability ~1e-19 per
    pair) keep the deterministic part order. Works on arrow tables throughout: the rows are
    copied once, by arrow's ``take``, however many columns they have.
    """
    import pyarrow as pa

    from taucoffea.columns.parquet import read_part_table, write_table

    tables = []
    for p in parts:
        try:
            tables.append(read_part_table(str(p)))
        except Exception as err:
            raise InputError(f"cannot read shuffle part '{p}': {err}") from err
    if not tables:
        raise InputError(f"no parts to merge into '{output}'")
    try:
        table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise InputError(f"parts of '{output}' have different columns or types: {err}") from err
    keys = table.column(key).to_numpy().astype(np.uint64)
    order = np.argsort(keys, kind="stable")
    if threshold is not None:
        order = order[keys[order] <= np.uint64(threshold)] if threshold >= 0 else order[:0]
    table = table.take(pa.array(order))
    if drop_key:
        table = table.drop_columns([key])
    write_table(table, output)
    return str(Path(output)), table.num_rows
