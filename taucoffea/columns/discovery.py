"""Turn what a user points at (a folder of dataset folders, one folder, one file) into a fileset.

Datasets are named after the folder holding their files, as in TauMLTools (the dataset id is a
hash of that name), and files are sorted so the fileset — and with it every output — does not
depend on the filesystem's directory order.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from taucoffea.errors import InputError

__all__ = ["discover_fileset"]


def discover_fileset(
    path: str | os.PathLike[str], *, suffix: str = ".root", pattern: str | None = None
) -> dict[str, list[str]]:
    """``{dataset: [files]}`` from a file, a dataset folder, or a folder of dataset folders.

    ``pattern`` is a regular expression full-matched against each file's base name.
    """
    root = Path(path)
    if not root.exists():
        raise InputError(f"input '{root}' does not exist")
    regex = re.compile(pattern) if pattern else None

    def keep(p: Path) -> bool:
        if not p.is_file() or p.name.startswith("."):
            return False
        if regex is not None:
            return regex.fullmatch(p.name) is not None
        return p.name.endswith(suffix)

    if root.is_file():
        return {root.parent.name or "dataset": [str(root.resolve())]}
    fileset: dict[str, list[str]] = {}
    direct = sorted(p for p in root.iterdir() if keep(p))
    if direct:
        fileset[root.resolve().name] = [str(p.resolve()) for p in direct]
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(p for p in sub.rglob("*") if keep(p) and not any(q.startswith(".") for q in p.relative_to(sub).parts))
        if files:
            fileset[sub.name] = [str(p.resolve()) for p in files]
    if not fileset:
        raise InputError(f"no input files matching '{pattern or '*' + suffix}' under '{root}'")
    return fileset
