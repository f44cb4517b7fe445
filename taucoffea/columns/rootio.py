"""Reproducible ROOT writing with uproot.

uproot stamps every file, directory and key with the wall-clock time and a time-based UUID,
so two runs with the same inputs give different bytes. DESIGN §5 promises byte-identical
outputs, so our writers open files through :func:`recreate`, which fixes both: the UUID comes
from the file name and the timestamps are a constant epoch. The clock shim is installed only
for the duration of the write, and a lock keeps concurrent writers in one process consistent.
"""

from __future__ import annotations

import contextlib
import datetime as _datetime
import os
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import uproot
import uproot.writing._cascade as _cascade
import uproot.writing._cascadetree as _cascadetree
import uproot.writing.writable as _writable

__all__ = ["FIXED_TIMESTAMP", "recreate"]

#: What every fDatime in our ROOT files says (the TauMLTools tag used as reference).
FIXED_TIMESTAMP = _datetime.datetime(2025, 5, 19, 0, 0, 0)

_lock = threading.RLock()
_depth = 0


class _FixedDatetime(_datetime.datetime):
    @classmethod
    def now(cls, tz: Any = None) -> _datetime.datetime:  # noqa: ARG003 - signature of datetime.now
        return FIXED_TIMESTAMP


class _DatetimeModule:
    """Stands in for the ``datetime`` module inside uproot's writer modules."""

    datetime = _FixedDatetime

    def __getattr__(self, name: str) -> Any:
        return getattr(_datetime, name)


_MODULES = (_cascade, _cascadetree, _writable)


@contextlib.contextmanager
def _fixed_clock() -> Iterator[None]:
    global _depth
    with _lock:
        if _depth == 0:
            saved = [m.datetime for m in _MODULES]
            for m in _MODULES:
                m.datetime = _DatetimeModule()
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
            if _depth == 0:
                for m, s in zip(_MODULES, saved, strict=True):
                    m.datetime = s


@contextlib.contextmanager
def recreate(path: str | os.PathLike[str], *, key: str | None = None, **options: Any) -> Iterator[Any]:
    """``uproot.recreate`` with deterministic UUIDs and timestamps.

    ``key`` seeds the UUIDs (default: the final file name, so a temporary name used for atomic
    writing does not leak into the bytes).
    """
    seed = key if key is not None else os.path.basename(os.fspath(path))
    counter = iter(range(1 << 30))

    def _uuid() -> uuid.UUID:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"taucoffea:{seed}:{next(counter)}")

    with _fixed_clock():
        with uproot.recreate(path, uuid_function=_uuid, **options) as f:
            yield f
