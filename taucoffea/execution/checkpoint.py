"""Chunk checkpoints that are safe to resume from.

coffea's ``SimpleCheckpointer`` keys chunks by dataset/file/range only, so a changed stage
configuration would silently reuse stale outputs, and it writes in place, so a kill during a
write leaves a truncated file. This checkpointer lives under a directory named after a hash of
the stage's configuration and the package version, and writes each chunk atomically.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import cloudpickle
from coffea.processor import CheckpointerABC

from taucoffea import __version__
from taucoffea.columns.atomic import atomic_path

__all__ = ["StageCheckpointer", "chunk_key", "clear_parts", "config_hash", "stage_parts"]


def config_hash(stage: str, config: Mapping[str, Any]) -> str:
    """Stable short hash of a stage configuration plus the code version."""
    payload = json.dumps({"stage": stage, "version": __version__, "config": config}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def chunk_key(metadata: Mapping[str, Any]) -> str:
    """Identity of a chunk: dataset, file, tree and entry range (what coffea hands a processor)."""
    name = os.path.basename(str(metadata["filename"]))
    uuid = metadata.get("fileuuid")
    uuid = uuid.hex() if isinstance(uuid, bytes) else str(uuid)
    return f"{metadata['dataset']}/{name}-{uuid[:12]}/{metadata.get('treename')}/{metadata['entrystart']}-{metadata['entrystop']}"


class StageCheckpointer(CheckpointerABC):
    """Save/load each chunk's output under ``<root>/<stage>-<config hash>/``."""

    def __init__(self, root: str | os.PathLike[str], stage: str, config: Mapping[str, Any]) -> None:
        self.directory = Path(root) / f"{stage}-{config_hash(stage, config)}"

    def _path(self, metadata: Any) -> Path:
        return self.directory / (chunk_key(metadata) + ".pkl")

    def load(self, metadata: Any, processor_instance: Any) -> Any:  # noqa: ARG002 - coffea API
        path = self._path(metadata)
        if not path.exists():
            return None
        try:
            with path.open("rb") as f:
                return cloudpickle.load(f)
        except Exception:  # an unreadable checkpoint is recomputed, never trusted
            return None

    def save(self, output: Any, metadata: Any, processor_instance: Any) -> None:  # noqa: ARG002
        path = self._path(metadata)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, tmp.open("wb") as f:
            cloudpickle.dump(output, f)

    def completed(self) -> list[str]:
        """Chunk keys with a saved output (for the run manifest)."""
        if not self.directory.exists():
            return []
        return sorted(
            str(p.relative_to(self.directory))[: -len(".pkl")]
            for p in self.directory.rglob("*.pkl")
            if not any(part.startswith(".tmp-") for part in p.parts)
        )


def clear_parts(parts_dir: str | os.PathLike[str], checkpointing: bool) -> None:
    """Remove a stage's parts folder — unless checkpoints may point into it.

    With a checkpoint directory, a resumed (or repeated) run takes finished chunks' outputs from
    the checkpoints, and those outputs are part paths: the parts must then stay. Part names are
    chunk identities, so a re-processed chunk overwrites its own part and stale ones are never
    read (only parts named by this run's accumulator are merged).
    """
    if not checkpointing:
        shutil.rmtree(parts_dir, ignore_errors=True)


@contextlib.contextmanager
def stage_parts(parts_dir: str | os.PathLike[str], checkpointing: bool) -> Iterator[Path]:
    """The parts folder of one run of a row-writing stage, for the ``with`` block that fills
    and merges it.

    Without checkpointing, stale parts are cleared on entry and the folder is removed on exit —
    after the merge, and also when the block fails or is interrupted: nothing can resume from
    parts that no checkpoint names, so a failed run must not leave them behind. With
    checkpointing the folder stays either way, because the checkpoints of the chunks finished
    before the failure point into it and the rerun takes their rows from there (see
    :func:`clear_parts`). The block's exception propagates unchanged.
    """
    clear_parts(parts_dir, checkpointing)
    try:
        yield Path(parts_dir)
    finally:
        clear_parts(parts_dir, checkpointing)
