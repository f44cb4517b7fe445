"""Row subsets of a chunk's columns, built straight as an arrow table.

Shuffle & merge copies whole rows (~300 branches, many of them PF-candidate lists) of the few
percent of taus it accepts. Taking them with awkward and converting with ``ak.to_arrow_table``
costs ~0.3 ms of dispatch per column and chunk, more than reading the chunk; here a flat or
singly-jagged numeric column is a pair of numpy arrays (offsets, content), the rows are taken
with numpy (one element-index computation shared by all lists of equal lengths) and wrapped as
arrow arrays without further copies. Anything else (records, deeper nesting) goes through
awkward. Fields are non-nullable and lists are ``large_list`` of non-nullable items, the types
awkward itself writes, so ``ak.from_parquet`` reads ``var * float32``, not option types.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import awkward as ak
import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["column_parts", "take_rows"]


def column_parts(array: Any) -> tuple[np.ndarray | None, np.ndarray] | None:
    """(offsets or None, content) of a flat or singly-jagged numeric column, as numpy views;
    None for any other layout. Offsets are int64 and may not start at 0."""
    if isinstance(array, np.ndarray):
        return (None, array) if array.ndim == 1 else None
    if not isinstance(array, ak.Array):
        return None
    layout = array.layout
    if isinstance(layout, ak.contents.NumpyArray):
        data = np.asarray(layout.data)
        return (None, data) if data.ndim == 1 else None
    if isinstance(layout, ak.contents.ListOffsetArray) and isinstance(layout.content, ak.contents.NumpyArray):
        offsets = np.asarray(layout.offsets.data).astype(np.int64, copy=False)
        content = np.asarray(layout.content.data)
        if content.ndim == 1 and offsets.size and offsets[-1] <= content.size:
            return offsets, content
    return None


class _ElementIndex:
    """Element indices of the taken rows, shared by every list column with the same offsets."""

    def __init__(self, index: np.ndarray) -> None:
        self.index = index
        self._known: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def __call__(self, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(new offsets starting at 0, indices into the content) for ``offsets``."""
        for known, new_offsets, elements in self._known:
            if known is offsets or (known.size == offsets.size and np.array_equal(known, offsets)):
                return new_offsets, elements
        starts = offsets[self.index]
        counts = offsets[self.index + 1] - starts
        new_offsets = np.zeros(self.index.size + 1, np.int64)
        np.cumsum(counts, out=new_offsets[1:])
        total = int(new_offsets[-1])
        elements = np.arange(total, dtype=np.int64)
        elements += np.repeat(starts - new_offsets[:-1], counts)
        self._known.append((offsets, new_offsets, elements))
        return new_offsets, elements


def _numpy_to_arrow(values: np.ndarray) -> pa.Array:
    import pyarrow as pa

    return pa.array(np.ascontiguousarray(values))


def take_rows(columns: Mapping[str, Any], index: np.ndarray) -> pa.Table:
    """Rows ``index`` (in that order) of ``{name: column}`` as an arrow table.

    Columns are numpy arrays or awkward arrays with one entry per row.
    """
    import pyarrow as pa

    index = np.asarray(index, dtype=np.int64)
    elements = _ElementIndex(index)
    arrays: list[pa.Array] = []
    fields: list[pa.Field] = []
    for name, column in columns.items():
        parts = column_parts(column)
        if parts is None:
            taken = ak.to_arrow(ak.without_parameters(ak.Array(column)[index]), extensionarray=False)
            arrays.append(taken)
            # nullable whatever this chunk holds: every chunk's part must have the same schema
            fields.append(pa.field(name, taken.type, nullable=True))
            continue
        offsets, content = parts
        if offsets is None:
            values = _numpy_to_arrow(content[index])
            arrays.append(values)
            fields.append(pa.field(name, values.type, nullable=False))
            continue
        new_offsets, element_index = elements(offsets)
        values = _numpy_to_arrow(content[element_index])
        list_type = pa.large_list(pa.field("item", values.type, nullable=False))
        arrays.append(pa.LargeListArray.from_arrays(pa.array(new_offsets), values, type=list_type))
        fields.append(pa.field(name, list_type, nullable=False))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))
