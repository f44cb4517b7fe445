"""The execution session: one coffea executor factory and, for Parsl, one DataFlowKernel.

A pipeline run opens one :class:`ExecutionSession` and runs all its stages inside it, so the
Parsl workers start once (≈ 6 s) instead of once per stage. Leaving the session — normally or
through an exception — always cleans the DataFlowKernel up, so no interchange process outlives
the run (coffea_notes: a DFK that is never cleaned up leaves one behind).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

from coffea import processor

from taucoffea.errors import ConfigError
from taucoffea.execution.config import ExecutorConfig, load_executor_config

__all__ = ["ExecutionSession", "in_session", "parsl_config", "resolve_executor"]


def _worker_env_init(extra: str) -> str:
    """Make HTEX workers find this interpreter's scripts and this package's modules."""
    bindir = os.path.dirname(sys.executable)
    paths = [p for p in sys.path if p and os.path.isdir(p)]
    lines = [f"export PATH={bindir}:$PATH", f"export PYTHONPATH={os.pathsep.join(paths)}${{PYTHONPATH:+:$PYTHONPATH}}"]
    if extra:
        lines.append(extra)
    return "; ".join(lines)


def parsl_config(cfg: ExecutorConfig, run_dir: str) -> Any:
    """The Parsl ``Config`` for a ``parsl`` (local) or ``condor`` executor config."""
    from parsl.config import Config
    from parsl.executors import HighThroughputExecutor
    from parsl.providers import CondorProvider, LocalProvider

    if cfg.executor == "parsl":
        htex = HighThroughputExecutor(
            label="taucoffea_local",
            address="127.0.0.1",
            max_workers_per_node=cfg.workers,
            cores_per_worker=1,
            heartbeat_period=5,
            heartbeat_threshold=30,
            provider=LocalProvider(init_blocks=1, min_blocks=1, max_blocks=1, worker_init=_worker_env_init(cfg.worker_init)),
        )
        strategy = "none"
    elif cfg.executor == "condor":
        from parsl.addresses import address_by_hostname

        c = cfg.condor
        environment = dict(c.environment)
        transfer = []
        if c.x509_proxy:
            if not os.path.exists(c.x509_proxy):
                raise ConfigError(f"condor: x509_proxy '{c.x509_proxy}' does not exist")
            transfer.append(os.path.abspath(c.x509_proxy))
            environment["X509_USER_PROXY"] = os.path.basename(c.x509_proxy)
        htex = HighThroughputExecutor(
            label="taucoffea_condor",
            address=c.address or address_by_hostname(),
            max_workers_per_node=c.cores_per_slot,
            cores_per_worker=1,
            provider=CondorProvider(
                nodes_per_block=c.nodes_per_block,
                cores_per_slot=c.cores_per_slot,
                mem_per_slot=c.mem_per_slot,
                init_blocks=c.init_blocks,
                min_blocks=c.min_blocks,
                max_blocks=c.max_blocks,
                worker_init=c.worker_init or cfg.worker_init,
                requirements=c.requirements,
                transfer_input_files=transfer,
                environment=environment or None,
                scheduler_options=c.scheduler_options,
                walltime=c.walltime,
            ),
        )
        strategy = "simple"
    else:
        raise ConfigError(f"executor '{cfg.executor}' does not use Parsl")
    return Config(
        executors=[htex],
        retries=cfg.retries,
        run_dir=run_dir,
        strategy=strategy,
        # the first block is submitted at the first strategy tick (5 s by default)
        strategy_period=1,
        usage_tracking=0,
        initialize_logging=True,
    )


class _IterativeExecutor(processor.IterativeExecutor):
    """coffea's IterativeExecutor draws its progress bar even with ``status=False`` (it passes
    ``disable`` to rich as a task field); without status this one runs the same loop bare."""

    def __call__(self, items: Any, function: Callable[..., Any], accumulator: Any) -> Any:
        if self.status or len(items) == 0:
            return super().__call__(items, function, accumulator)
        from coffea.processor.accumulator import accumulate

        return accumulate(map(function, items), accumulator), 0


class ExecutionSession:
    """Context manager owning the executor resources of one pipeline run.

    >>> with ExecutionSession(ExecutorConfig(executor="iterative")) as session:
    ...     executor = session.coffea_executor()
    """

    def __init__(self, cfg: ExecutorConfig) -> None:
        self.cfg = cfg
        self._dfk: Any = None
        self._run_dir: str | None = None
        self._dask_client: Any = None

    def __enter__(self) -> ExecutionSession:
        if self.cfg.executor in ("parsl", "condor"):
            import parsl

            self._run_dir = self.cfg.run_dir or tempfile.mkdtemp(prefix="taucoffea-parsl-")
            os.makedirs(self._run_dir, exist_ok=True)
            with contextlib.suppress(Exception):
                parsl.clear()
            self._dfk = parsl.load(parsl_config(self.cfg, self._run_dir))
        elif self.cfg.executor == "dask":
            try:
                from distributed import Client, LocalCluster
            except ImportError:
                raise ConfigError("executor 'dask' needs the optional extra: pip install 'taucoffea[dask]'") from None
            if self.cfg.dask_scheduler:
                self._dask_client = Client(self.cfg.dask_scheduler)
            else:
                self._dask_client = Client(LocalCluster(n_workers=self.cfg.workers, threads_per_worker=1))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(failed=exc_type is not None)

    def close(self, failed: bool = False) -> None:
        """Release workers; keep Parsl logs only when something went wrong."""
        if self._dfk is not None:
            import parsl

            try:
                self._dfk.cleanup()
            finally:
                parsl.clear()
                self._dfk = None
                if self._run_dir and not self.cfg.run_dir and not failed:
                    shutil.rmtree(self._run_dir, ignore_errors=True)
        if self._dask_client is not None:
            cluster = getattr(self._dask_client, "cluster", None)
            self._dask_client.close()
            if cluster is not None:
                cluster.close()
            self._dask_client = None

    @property
    def parallel(self) -> bool:
        """Whether :meth:`map` runs on workers (a Parsl DataFlowKernel is loaded)."""
        return self._dfk is not None

    @property
    def run_dir(self) -> str | None:
        return self._run_dir

    def map(self, func: Callable[[Any], Any], items: Sequence[Any], desc: str = "tasks") -> list[Any]:
        """Run ``func`` on each item — Parsl apps on the session's workers, else in-process.

        For work that is not a coffea processor (e.g. merging shuffle buckets): results come
        back in the order of ``items``; the first failure is raised.
        """
        if self._dfk is None or not items:
            return [func(item) for item in items]
        from parsl import python_app

        app = python_app(func, executors="all", data_flow_kernel=self._dfk)
        futures = [app(item) for item in items]
        results = []
        for i, fut in enumerate(futures):
            if self.cfg.progress:
                print(f"\r{desc}: {i}/{len(futures)}", end="", flush=True)
            results.append(fut.result())
        if self.cfg.progress:
            print(f"\r{desc}: {len(futures)}/{len(futures)}")
        return results

    def coffea_executor(self, desc: str = "Processing", *, compress: bool = True) -> Any:
        """A fresh coffea executor bound to this session's resources.

        ``compress=False`` for outputs that grow with the files (the scaling stage's per-file
        sums): merging on the driver, coffea decompresses, merges and re-compresses the *whole*
        accumulator on every round of finished chunks — quadratic in the number of chunks.
        Outputs of a fixed size (histograms) keep lz4, which keeps sparse ones small in flight
        and on the driver.
        """
        cfg = self.cfg
        common = {"status": cfg.progress, "desc": desc, "unit": "chunk"}
        if cfg.executor == "iterative":
            return _IterativeExecutor(retries=cfg.retries, **common)
        if not compress:
            common["compression"] = None
        if cfg.executor == "futures":
            return processor.FuturesExecutor(workers=cfg.workers, retries=cfg.retries, **common)
        if cfg.executor in ("parsl", "condor"):
            if self._dfk is None:
                raise RuntimeError("ExecutionSession must be entered before asking for a Parsl executor")
            # Parsl's own Config(retries=…) covers lost workers; coffea's in-process retries
            # would re-run plain bugs, so they follow the same setting.
            return processor.ParslExecutor(retries=cfg.retries, **common)
        if cfg.executor == "dask":
            return processor.DaskExecutor(client=self._dask_client, retries=cfg.retries, **common)
        raise ConfigError(f"unknown executor '{cfg.executor}'")


T = TypeVar("T")


def in_session(session: ExecutionSession | None, cfg: ExecutorConfig, func: Callable[[ExecutionSession], T]) -> T:
    """``func(session)`` in the caller's session, or in a new one opened (and closed) for it.

    Stages take an optional ``session`` so that a pipeline shares one Parsl start-up; alone,
    they open their own.
    """
    if session is not None:
        return func(session)
    with ExecutionSession(cfg) as own:
        return func(own)


def resolve_executor(
    executor: ExecutorConfig | str | os.PathLike[str] | Mapping[str, Any] | None,
    session: ExecutionSession | None = None,
) -> ExecutorConfig:
    """The executor configuration that actually runs a stage.

    Inside a caller's ``session`` (a pipeline) the session's configuration runs the chunks —
    its ``checkpoint_dir`` and ``skip_bad_files`` are the ones that count — so a stage must
    read those, not its own ``executor`` argument. Alone, the stage opens a session from
    ``executor`` (an :class:`ExecutorConfig`, or anything :func:`load_executor_config` takes).
    ``executor`` is loaded in both cases, so a wrong executor spec is an error even when a
    session makes it unused.
    """
    cfg = executor if isinstance(executor, ExecutorConfig) else load_executor_config(executor)
    return session.cfg if session is not None else cfg
