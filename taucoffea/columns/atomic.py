"""Atomic output: a file appears under its final name only when it is complete.

Every writer in taucoffea goes through :func:`atomic_path`, so an interrupted run, a full
disk or a crash never leaves a half-written file that a later stage would mistake for output.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from taucoffea.errors import OutputExistsError

__all__ = ["atomic_path", "check_output", "write_text_atomic"]


def check_output(path: str | os.PathLike[str], overwrite: bool) -> Path:
    """Refuse to clobber an existing output unless the user asked for it."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(
            f"output '{path}' already exists; pass --overwrite (overwrite=True) to replace it"
        )
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path; rename it onto ``path`` only if the block succeeds.

    The temporary file has the final *base name* inside a hidden sibling directory: writers
    such as uproot look at the suffix and store the base name inside the file, so the bytes
    are the same as if written in place. Same filesystem, so ``os.replace`` is atomic.
    """
    final = check_output(path, overwrite)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = final.parent / f".tmp-{uuid.uuid4().hex[:12]}"
    tmpdir.mkdir()
    tmp = tmpdir / final.name
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"writer produced no file at temporary path '{tmp}'")
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        with contextlib.suppress(OSError):
            tmpdir.rmdir()


def write_text_atomic(path: str | os.PathLike[str], text: str, *, overwrite: bool = True) -> Path:
    """Write a small text file (JSON, lists) atomically."""
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(text)
    return Path(path)
