"""Run a processor over a fileset through ``coffea.processor.Runner``, with a pre-flight check.

coffea skips only some kinds of bad file and reports them only as warnings on the workers.
Users of big productions want the opposite: every bad file named up front, skipped with a
report or failing the run cleanly, as they choose. The pre-flight opens each file's metadata
(cheap), checks the tree, its entries and the branches the stage needs, and writes the verdict
into the run report together with the chunks that completed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from coffea import processor
from coffea.nanoevents import BaseSchema

from taucoffea.columns.atomic import OUTPUT_ERRNOS, write_text_atomic
from taucoffea.errors import InputError, TaucoffeaError
from taucoffea.execution.checkpoint import StageCheckpointer
from taucoffea.execution.session import ExecutionSession

__all__ = ["BadFile", "RunReport", "preflight", "run_processor"]


@dataclass(frozen=True)
class BadFile:
    dataset: str
    path: str
    reason: str


@dataclass
class RunReport:
    """What a stage run did: for the manifest and for re-running only what failed."""

    stage: str
    executor: str
    chunksize: int
    files: dict[str, list[str]] = field(default_factory=dict)
    bad_files: list[BadFile] = field(default_factory=list)
    checkpoint_dir: str | None = None
    completed_chunks: list[str] = field(default_factory=list)

    def write(self, path: str | os.PathLike[str]) -> Path:
        data = asdict(self)
        return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


_CACHE_VERSION = 1


def _cache_dir() -> Path:
    root = os.environ.get("TAUCOFFEA_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "taucoffea"
    )
    return Path(root) / "file-metadata"


def _cache_path(path: str, treename: str | None) -> Path | None:
    """Cache entry of one file, keyed by its identity on disk (path, size, mtime)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    ident = f"{_CACHE_VERSION}|{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}|{treename}"
    return _cache_dir() / (hashlib.sha256(ident.encode()).hexdigest()[:32] + ".json")


def _file_metadata(path: str, treename: str | None) -> dict[str, Any]:
    """Entries, UUID and column names of one file — or the reason it cannot be used.

    Opening a TTree costs a full deserialisation of its branch list (~0.1 s for a toy
    TauTuple, more for real ones), the same order as reading a whole chunk. The answer is
    cached per file identity, so later stages and re-runs over the same inputs skip it, and
    coffea is handed the numbers instead of opening every file once more to find them.
    """
    cache = _cache_path(path, treename)
    if cache is None:
        return {"bad": "file does not exist"}
    if cache.exists():
        try:
            return json.loads(cache.read_text())
        except (OSError, ValueError):
            pass
    meta = _read_root_metadata(path, treename) if treename is not None else _read_parquet_metadata(path)
    if "bad" not in meta:
        with contextlib.suppress(OSError):
            write_text_atomic(cache, json.dumps(meta))
    return meta


def _read_root_metadata(path: str, treename: str) -> dict[str, Any]:
    import uproot

    try:
        with uproot.open(path) as f:
            if treename not in f:
                return {"bad": f"tree '{treename}' not found (keys: {sorted(f.keys(cycle=False))[:10]})"}
            tree = f[treename]
            return {"numentries": int(tree.num_entries), "uuid": f.file.fUUID.hex(), "columns": sorted(tree.keys())}
    except Exception as err:  # corrupt or not ROOT: uproot raises many types
        return {"bad": f"cannot be read as ROOT ({type(err).__name__}: {err})"}


def _read_parquet_metadata(path: str) -> dict[str, Any]:
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(path)
        return {
            "numentries": int(meta.metadata.num_rows),
            "uuid": hashlib.md5(path.encode()).hexdigest(),  # what coffea uses for parquet
            "columns": sorted(meta.schema_arrow.names),
        }
    except Exception as err:
        return {"bad": f"cannot be read as parquet ({type(err).__name__}: {err})"}


def _verdict(meta: Mapping[str, Any], treename: str | None, branches: Collection[str]) -> str | None:
    if "bad" in meta:
        return str(meta["bad"])
    if meta["numentries"] == 0:
        return f"tree '{treename}' is empty" if treename else "parquet file has no rows"
    missing = sorted(set(branches) - set(meta["columns"]))
    if missing:
        what = f"branch(es) {missing} in tree '{treename}'" if treename else f"column(s) {missing}"
        return f"missing {what}"
    return None


def preflight(
    fileset: Mapping[str, Sequence[str]],
    treename: str | None,
    branches: Collection[str],
    session: ExecutionSession | None = None,
) -> tuple[dict[str, list[str]], list[BadFile], dict[str, dict[str, Any]]]:
    """Split a fileset into readable files and bad ones (with the reason for each).

    Also returns the per-file metadata (entries, UUID) for coffea. With a Parsl session the
    files are opened on the workers in parallel.
    """
    items = [(ds, path) for ds, files in fileset.items() for path in files]
    todo = [(p, treename) for _, p in items]
    metas = session.map(_metadata_job, todo, desc="pre-flight") if session is not None else [_metadata_job(t) for t in todo]
    good: dict[str, list[str]] = {}
    bad: list[BadFile] = []
    known: dict[str, dict[str, Any]] = {}
    for (dataset, path), meta in zip(items, metas, strict=True):
        reason = _verdict(meta, treename, branches)
        if reason is None:
            good.setdefault(dataset, []).append(path)
            known[path] = meta
        else:
            bad.append(BadFile(dataset, path, reason))
    return good, bad, known


def _metadata_job(item: tuple[str, str | None]) -> dict[str, Any]:
    return _file_metadata(*item)


def _with_preload(fileset: Mapping[str, Sequence[str]], known: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """coffea's fileset form that preloads, per dataset, the branches all its files have."""
    out: dict[str, Any] = {}
    for dataset, files in fileset.items():
        common = set.intersection(*(set(known[p]["columns"]) for p in files))
        out[dataset] = {"files": list(files), "preload": sorted(common)}
    return out


def _raise_own_error(err: BaseException) -> None:
    seen: set[int] = set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, TaucoffeaError):
            raise cause from err
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__


def _coffea_metadata_cache(
    fileset: Mapping[str, Sequence[str]], treename: str | None, known: Mapping[str, Mapping[str, Any]]
) -> dict[Any, dict[str, Any]]:
    """coffea's ``metadata_cache``: ``FileMeta`` → ``{numentries, uuid, file_entries}``, so it
    opens nothing.

    coffea hands the keys of a file's metadata that it does not reserve to every chunk of the
    file as ``events.metadata``: ``file_entries`` thus tells a processor whether its chunk is
    the whole file (the scaling processor then ships final per-file results), for ROOT and
    parquet alike, without opening the file again.
    """
    from coffea.processor.executor import FileMeta

    cache = {}
    for dataset, files in fileset.items():
        for path in files:
            meta = known[path]
            cache[FileMeta(dataset, os.path.abspath(path), treename or "")] = {
                "numentries": meta["numentries"],
                "uuid": bytes.fromhex(meta["uuid"]),
                "file_entries": meta["numentries"],
            }
    return cache


def run_processor(
    session: ExecutionSession,
    processor_instance: processor.ProcessorABC,
    fileset: Mapping[str, Sequence[str]],
    *,
    treename: str | None,
    stage: str,
    stage_config: Mapping[str, Any],
    branches: Collection[str] = (),
    chunksize: int | None = None,
    read_only_branches: bool = False,
    preload_all: bool = False,
    compress: bool = True,
) -> tuple[Any, RunReport]:
    """Run ``processor_instance`` over ``fileset`` (``{dataset: [paths]}``) in ``session``.

    ``treename`` ``None`` means parquet input. ``branches`` are checked in the pre-flight;
    with ``read_only_branches`` the events handed to the processor hold only those (the
    NanoEvents form of a 200-branch TauTuple costs as much to build as a chunk to read).
    ``preload_all`` reads every branch of a chunk in one uproot call (for processors that copy
    whole rows): column-by-column lazy reads cost ~3× a bulk read on a 300-branch tree.
    ``compress=False`` for outputs that grow with the files (see
    :meth:`ExecutionSession.coffea_executor`). ``stage_config`` keys the checkpoint directory,
    so a changed configuration never reuses stale chunk outputs. Raises :class:`InputError` listing every bad file unless the
    session's config says to skip them.
    """
    cfg = session.cfg
    chunksize = chunksize or cfg.chunksize
    good, bad, known = preflight(fileset, treename, branches, session if session.parallel else None)
    if bad and not cfg.skip_bad_files:
        listing = "\n".join(f"  {b.path}: {b.reason}" for b in bad)
        raise InputError(f"{len(bad)} bad input file(s) for stage '{stage}':\n{listing}\n(set skip_bad_files to skip them)")
    report = RunReport(stage=stage, executor=cfg.executor, chunksize=chunksize, files=good, bad_files=bad)
    if bad:
        import warnings

        for b in bad:
            warnings.warn(f"skipping bad file {b.path}: {b.reason}", stacklevel=2)
    if not good:
        raise InputError(f"no readable input files for stage '{stage}'")

    checkpointer = None
    if cfg.checkpoint_dir:
        checkpointer = StageCheckpointer(cfg.checkpoint_dir, stage, {**stage_config, "chunksize": chunksize})
        report.checkpoint_dir = str(checkpointer.directory)
    abs_fileset = {ds: [os.path.abspath(p) for p in files] for ds, files in good.items()}
    known = {os.path.abspath(p): m for p, m in known.items()}
    runner = processor.Runner(
        executor=session.coffea_executor(desc=stage, compress=compress),
        metadata_cache=_coffea_metadata_cache(abs_fileset, treename, known),
        chunksize=chunksize,
        schema=BaseSchema,
        format="root" if treename is not None else "parquet",
        skipbadfiles=(OSError, InputError) if cfg.skip_bad_files else False,
        checkpointer=checkpointer,
    )
    options = {"filter_name": sorted(branches)} if read_only_branches and treename is not None else {}
    try:
        # ``run`` (not ``__call__``) also hands back the work items that completed, which
        # tells a file that broke after the pre-flight (skipped by coffea) from a good one
        wrapped = runner.run(
            _with_preload(abs_fileset, known) if preload_all and treename is not None else abs_fileset,
            processor_instance=processor_instance,
            treename=treename or "",
            iteritems_options=options,
        )
    except TaucoffeaError:
        raise
    except Exception as err:
        # coffea wraps what a processor raises into a plain Exception("Failed processing …");
        # a user mistake found on the rows (one of our error types) is re-raised as itself,
        # so the CLI prints one clear line instead of a traceback
        _raise_own_error(err)
        _raise_input_error(err, stage, {p for files in abs_fileset.values() for p in files})
        raise
    output = wrapped["out"]
    for dataset, path, done, total in _unfinished_files(wrapped.get("processed", ()), abs_fileset, known):
        bad_file = BadFile(dataset, path, f"became unreadable during the run: {total - done} of {total} entries not processed")
        report.bad_files.append(bad_file)
        report.files[dataset] = [p for p in report.files.get(dataset, []) if os.path.abspath(p) != path]
        import warnings

        warnings.warn(f"skipped bad file {path}: {bad_file.reason}", stacklevel=2)
    if checkpointer is not None:
        report.completed_chunks = checkpointer.completed()
    return output, report


def _unfinished_files(
    processed: Collection[Any], fileset: Mapping[str, Sequence[str]], known: Mapping[str, Mapping[str, Any]]
) -> list[tuple[str, str, int, int]]:
    """Files whose chunks did not all complete: coffea's ``skipbadfiles`` dropped them."""
    done: dict[tuple[str, str], int] = {}
    for item in processed:
        key = (item.dataset, os.path.abspath(item.filename))
        done[key] = done.get(key, 0) + int(item.entrystop) - int(item.entrystart)
    out = []
    for dataset, files in fileset.items():
        for path in files:
            total = int(known[path]["numentries"])
            if done.get((dataset, path), 0) < total:
                out.append((dataset, path, done.get((dataset, path), 0), total))
    return out


_WORK_ITEM_FILE = re.compile(r"filename='([^']+)'")


def _raise_input_error(err: BaseException, stage: str, inputs: Collection[str]) -> None:
    """An input file that broke after the pre-flight → :class:`InputError` naming it.

    Only failures that are about one of the run's input files qualify: coffea's "failed to
    open / create events" wrappers, or an ``OSError`` that names an input. A full output disk
    or an ``OSError`` of the processor's own files is left as it is.
    """
    chain: list[BaseException] = []
    cause: BaseException | None = err
    while cause is not None and all(cause is not c for c in chain):
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    if any(isinstance(c, OSError) and c.errno in OUTPUT_ERRNOS for c in chain):
        return  # a full disk on the output side is not the input file's fault
    opening = any(str(c).startswith(("Failed to open file", "Failed creating nanoevents")) for c in chain)
    about_input = any(
        isinstance(c, OSError) and (getattr(c, "filename", None) in inputs or any(f in str(c) for f in inputs))
        for c in chain
    )
    if not (opening or about_input):
        return
    files = sorted({m for c in chain for m in _WORK_ITEM_FILE.findall(str(c))} & set(inputs)) or sorted(
        {f for c in chain if isinstance(c, OSError) for f in inputs if f in str(c) or getattr(c, "filename", None) == f}
    )
    root = chain[-1]
    named = ", ".join(f"'{f}'" for f in files) or "an input file"
    raise InputError(
        f"stage '{stage}': {named} could not be read although it passed the pre-flight "
        f"(deleted, moved or changed during the run?): {type(root).__name__}: {root}\n"
        "(set skip_bad_files to skip such files and list them in the run report)"
    ) from err
