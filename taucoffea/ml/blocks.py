"""A compact, sliceable in-memory form of per-tau rows with jagged candidate lists.

The data loader reads one parquet row group at a time and then cuts many small batches out of
it. Awkward slicing per batch would re-do offset bookkeeping for every field; instead a
:class:`ColumnBlock` keeps flat numpy arrays per tau and, per candidate collection
(``pfCand``, ``ele``, ``muon``), one offsets array plus flat per-candidate arrays, so a batch is
a handful of numpy slices. The same class wraps what a coffea processor receives, so training
and prediction share one featurisation path.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import awkward as ak
import numpy as np

from taucoffea.errors import InputError

__all__ = ["COLLECTIONS", "ColumnBlock", "collection_of"]

#: Jagged candidate collections of a TauTuple, by column prefix.
COLLECTIONS: tuple[str, ...] = ("pfCand", "ele", "muon")


def collection_of(column: str) -> str | None:
    """The collection prefix of a jagged column name (``pfCand_pt`` → ``pfCand``), else None."""
    head, _, rest = column.partition("_")
    return head if rest and head in COLLECTIONS else None


@dataclass
class _Collection:
    offsets: np.ndarray  # int64, length n + 1, starting at 0
    fields: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)


@dataclass
class ColumnBlock:
    """Per-tau columns (``flat``) and jagged collections (``lists``) for ``n`` taus."""

    n: int
    flat: dict[str, np.ndarray]
    lists: dict[str, _Collection]
    source: str = "the input"

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_columns(
        cls, data: Any, columns: Collection[str], *, source: str | None = None, optional: Collection[str] = ()
    ) -> ColumnBlock:
        """Build from an awkward record array, coffea events or a mapping of arrays.

        ``columns`` must all exist (an :class:`InputError` names the first missing one and the
        source); ``optional`` columns are taken when present.
        """
        available = set(data.fields) if hasattr(data, "fields") else set(data.keys())
        src = source or _source_of(data)
        missing = sorted(c for c in columns if c not in available)
        if missing:
            raise InputError(f"column(s) {missing} missing in {src}")
        wanted = list(dict.fromkeys([*columns, *(c for c in optional if c in available)]))
        return cls._assemble(((name, *_awkward_parts(data[name], name)) for name in wanted), src)

    @classmethod
    def from_arrow(cls, table: Any, columns: Collection[str], *, source: str = "the input") -> ColumnBlock:
        """Build from a ``pyarrow.Table`` (a parquet row group) without going through awkward:
        the loader reads a block per few batches, and awkward's conversion cost 4× the read."""
        from taucoffea.columns.parquet import flat_column

        present = set(table.column_names)
        missing = sorted(c for c in columns if c not in present)
        if missing:
            raise InputError(f"column(s) {missing} missing in {source}")
        return cls._assemble(((name, *flat_column(table.column(name), name)) for name in columns), source)

    @classmethod
    def _assemble(cls, parts: Iterable[tuple[str, np.ndarray | None, np.ndarray]], src: str) -> ColumnBlock:
        """A block from ``(name, elements per row or None, flat values)`` per column."""
        flat: dict[str, np.ndarray] = {}
        lists: dict[str, _Collection] = {}
        n: int | None = None
        for name, counts, values in parts:
            prefix = collection_of(name)
            if counts is not None:
                if prefix is None:
                    raise InputError(f"column '{name}' is a list but not of a candidate collection "
                                     f"({', '.join(COLLECTIONS)}) in {src}")
                coll = lists.get(prefix)
                if coll is None:
                    coll = lists[prefix] = _Collection(np.concatenate(([0], np.cumsum(counts))))
                elif coll.offsets[-1] != values.size or not np.array_equal(coll.counts, counts):
                    raise InputError(f"column '{name}' has list lengths that differ from the other {prefix}_* columns in {src}")
                coll.fields[name[len(prefix) + 1 :]] = values
                length = counts.size
            else:
                flat[name] = values
                length = values.shape[0]
            if n is None:
                n = length
            elif n != length:
                raise InputError(f"column '{name}' has {length} rows, expected {n} in {src}")
        return cls(int(n or 0), flat, lists, src)

    # ---------------------------------------------------------------- access
    def column(self, name: str) -> np.ndarray:
        """A per-tau column; :class:`InputError` naming the column and source if absent."""
        try:
            return self.flat[name]
        except KeyError:
            raise InputError(f"column '{name}' missing in {self.source}") from None

    def has(self, name: str) -> bool:
        prefix = collection_of(name)
        if prefix is not None and prefix in self.lists:
            return name[len(prefix) + 1 :] in self.lists[prefix].fields
        return name in self.flat

    def counts(self, prefix: str) -> np.ndarray:
        """Number of candidates per tau in a collection (zeros if the block has none)."""
        coll = self.lists.get(prefix)
        return coll.counts if coll is not None else np.zeros(self.n, dtype=np.int64)

    def field(self, prefix: str, name: str) -> np.ndarray:
        """Flat per-candidate values of ``<prefix>_<name>``."""
        coll = self.lists.get(prefix)
        if coll is None or name not in coll.fields:
            raise InputError(f"column '{prefix}_{name}' missing in {self.source}")
        return coll.fields[name]

    # ---------------------------------------------------------------- row selection
    def slice(self, start: int, stop: int) -> ColumnBlock:
        """Rows ``start … stop-1`` (views, no copies)."""
        start, stop = max(0, int(start)), min(self.n, int(stop))
        flat = {k: v[start:stop] for k, v in self.flat.items()}
        lists = {}
        for prefix, coll in self.lists.items():
            lo, hi = coll.offsets[start], coll.offsets[stop]
            lists[prefix] = _Collection(coll.offsets[start : stop + 1] - lo, {k: v[lo:hi] for k, v in coll.fields.items()})
        return ColumnBlock(stop - start, flat, lists, self.source)

    def take(self, rows: np.ndarray) -> ColumnBlock:
        """Rows in the given order (a permutation or any index array)."""
        rows = np.asarray(rows, dtype=np.int64)
        flat = {k: v[rows] for k, v in self.flat.items()}
        lists = {}
        for prefix, coll in self.lists.items():
            counts = coll.counts[rows]
            offsets = np.concatenate(([0], np.cumsum(counts)))
            element = _gather_index(coll.offsets[rows], counts)
            lists[prefix] = _Collection(offsets, {k: v[element] for k, v in coll.fields.items()})
        return ColumnBlock(rows.size, flat, lists, self.source)

    @staticmethod
    def concatenate(blocks: Iterable[ColumnBlock]) -> ColumnBlock:
        """Stack blocks with the same columns (used to build adversarial batches)."""
        blocks = list(blocks)
        first = blocks[0]
        flat = {k: np.concatenate([b.flat[k] for b in blocks]) for k in first.flat}
        lists = {}
        for prefix, coll in first.lists.items():
            counts = np.concatenate([b.lists[prefix].counts for b in blocks])
            lists[prefix] = _Collection(
                np.concatenate(([0], np.cumsum(counts))),
                {k: np.concatenate([b.lists[prefix].fields[k] for b in blocks]) for k in coll.fields},
            )
        return ColumnBlock(sum(b.n for b in blocks), flat, lists, first.source)


def _gather_index(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Flat element indices of the lists starting at ``starts`` with ``counts`` elements."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    return np.repeat(starts - first, counts) + np.arange(total, dtype=np.int64)


def _awkward_parts(arr: Any, name: str) -> tuple[np.ndarray | None, np.ndarray]:
    """(elements per row or None, flat values) of an awkward, numpy or coffea column; lists are
    taken as lists only for candidate-collection columns, as :meth:`ColumnBlock._assemble` needs."""
    if collection_of(name) is not None and isinstance(arr, ak.Array) and arr.ndim == 2:
        counts = np.asarray(ak.num(arr, axis=1), dtype=np.int64)
        return counts, np.asarray(ak.to_numpy(ak.flatten(arr, axis=1)))
    return None, np.asarray(ak.to_numpy(arr) if isinstance(arr, ak.Array) else arr)


def _source_of(data: Any) -> str:
    meta = getattr(data, "metadata", None)
    if isinstance(meta, Mapping) and meta.get("filename"):
        return f"file '{meta['filename']}'"
    return "the input"
