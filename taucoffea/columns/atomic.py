"""Atomic output: a file appears under its final name only when it is complete.

Every writer in taucoffea goes through :func:`atomic_path`, so an interrupted run, a full
disk or a crash never leaves a half-written file that a later stage would mistake for output.
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from taucoffea.errors import OutputExistsError, TaucoffeaError

__all__ = ["OUTPUT_ERRNOS", "atomic_path", "check_output", "write_text_atomic"]

#: errno values that mean "the output side is full or read-only", not "the input is bad".
OUTPUT_ERRNOS: frozenset[int] = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


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
    tmpdir = final.parent / f".tmp-{uuid.uuid4().hex[:12]}"
    tmp = tmpdir / final.name
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmpdir.mkdir()
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"writer produced no file at temporary path '{tmp}'")
        os.replace(tmp, final)
    except OSError as err:
        if err.errno not in OUTPUT_ERRNOS:
            raise
        # a full disk or quota is the most common production failure: say which output,
        # and that nothing half-written was left under its name
        raise TaucoffeaError(
            f"cannot write output '{final}': {os.strerror(err.errno)} ({err}); no partial file was left"
        ) from err
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
