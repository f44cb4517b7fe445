"""Fault drills: what a production run meets, provoked on purpose.

* a Parsl worker SIGKILLed while it holds a chunk → Parsl's retries finish the run, same bytes;
* the driver interrupted (SIGINT / SIGKILL of the real CLI) and resumed from its checkpoints →
  no finished chunk is processed again, same bytes as an uninterrupted run;
* corrupt / truncated / empty / branch-less inputs and a file deleted mid-run → skipped and
  listed in the run report, or one clean :class:`InputError` naming the file, never a partial
  output;
* a row-writing stage failing midway → its hidden parts folder (and shuffle & merge's new
  ``acceptance/``) removed, unless checkpointing: then the parts stay and the rerun resumes;
* a full disk (tiny tmpfs, or ``RLIMIT_FSIZE``) → one clear error, no half-written file.

See ``docs/reliability.md`` for what each drill proves and what is not covered.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import threading
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import psutil
import pytest
from conftest import MIX_EDGES, write_mini_tautuple, write_mix_inputs

from taucoffea.errors import InputError, TaucoffeaError
from taucoffea.execution.config import ExecutorConfig
from taucoffea.execution.session import ExecutionSession
from taucoffea.processors.spectra import SpectrumProcessor
from taucoffea.stages.spectra import run_spectra

REPO = Path(__file__).resolve().parents[1]


def _iterative(**kw: Any) -> ExecutorConfig:
    return ExecutorConfig(executor="iterative", progress=False, **kw)


def _tmp_leftovers(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob(".tmp-*")) if root.exists() else []


def _files(root: Path) -> dict[str, bytes]:
    """Every regular file under ``root`` (relative name → bytes)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------
# 1. a Parsl worker killed while it processes a chunk


class _SleepOnce(SpectrumProcessor):
    """Writes its pid to ``marker`` and sleeps inside one chunk — the first time only.

    Every attempt at that chunk appends the worker's pid to ``attempts``, so the test can
    see that the chunk really ran twice, in two different processes.
    """

    def __init__(self, binning: Any, fmt: str, marker: str, attempts: str) -> None:
        super().__init__(binning, fmt)
        self.marker, self.attempts = marker, attempts

    def process(self, events: Any) -> dict[str, Any]:
        m = events.metadata
        if Path(m["filename"]).name == "f1.root" and m["entrystart"] == 300:
            with open(self.attempts, "a") as f:
                f.write(f"{os.getpid()}\n")
            if not os.path.exists(self.marker):
                Path(self.marker).write_text(str(os.getpid()))
                time.sleep(120)  # killed long before this ends
        return super().process(events)


def _kill_worker_when_marked(marker: Path, killed: dict[str, Any], run_dir: Path, timeout: float = 90.0) -> None:
    """SIGKILL the process named in ``marker`` — only if it is a Parsl worker of this test.

    LocalProvider starts the worker pool detached (it is not our child), so "of this test"
    means: its ``process_worker_pool`` logs into this test's Parsl run directory.
    """
    t0 = time.monotonic()
    while not (marker.exists() and marker.read_text()):
        if time.monotonic() - t0 > timeout:
            return
        time.sleep(0.05)
    victim = psutil.Process(int(marker.read_text()))
    ancestors = victim.parents()
    pools = [" ".join(p.cmdline()) for p in ancestors if "process_worker_pool" in " ".join(p.cmdline())]
    killed["under_worker_pool"] = bool(pools)
    killed["under_this_test"] = any(str(run_dir) in cmd for cmd in pools)
    if killed["under_worker_pool"] and killed["under_this_test"]:
        victim.send_signal(signal.SIGKILL)
        killed["pid"] = victim.pid


def test_parsl_worker_killed_mid_chunk_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import taucoffea.stages.spectra as spectra_stage
    from taucoffea.execution.session import ExecutionSession

    for i in range(2):
        write_mini_tautuple(tmp_path / "in" / "D" / f"f{i}.root", 900, seed=70 + i)
    run_spectra(tmp_path / "in", tmp_path / "undisturbed", executor=_iterative(), chunksize=300)

    marker, attempts = tmp_path / "victim.pid", tmp_path / "attempts.txt"
    monkeypatch.setattr(
        spectra_stage, "SpectrumProcessor", lambda binning, fmt: _SleepOnce(binning, fmt, str(marker), str(attempts))
    )
    killed: dict[str, Any] = {}
    killer = threading.Thread(target=_kill_worker_when_marked, args=(marker, killed, tmp_path / "parsl"), daemon=True)
    killer.start()
    cfg = ExecutorConfig(executor="parsl", workers=2, retries=2, progress=False, run_dir=str(tmp_path / "parsl"))
    with ExecutionSession(cfg) as session:
        result = run_spectra(tmp_path / "in", tmp_path / "disturbed", session=session, chunksize=300)
    killer.join(timeout=5)

    assert killed.get("under_worker_pool") and killed.get("under_this_test"), killed
    assert "pid" in killed, "the chunk's worker was never killed"
    tries = attempts.read_text().split()
    assert len(tries) == 2 and tries[0] == str(killed["pid"]) and tries[1] != tries[0]
    assert result.report.bad_files == []
    for name in ("D.root", "D.txt"):
        assert (tmp_path / "disturbed" / name).read_bytes() == (tmp_path / "undisturbed" / name).read_bytes()


def test_parsl_worker_killed_without_retries_fails_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import taucoffea.stages.spectra as spectra_stage
    from taucoffea.execution.session import ExecutionSession

    for i in range(2):
        write_mini_tautuple(tmp_path / "in" / "D" / f"f{i}.root", 900, seed=70 + i)
    marker, attempts = tmp_path / "victim.pid", tmp_path / "attempts.txt"
    monkeypatch.setattr(
        spectra_stage, "SpectrumProcessor", lambda binning, fmt: _SleepOnce(binning, fmt, str(marker), str(attempts))
    )
    killed: dict[str, Any] = {}
    threading.Thread(target=_kill_worker_when_marked, args=(marker, killed, tmp_path / "parsl"), daemon=True).start()
    # the control for the drill above: without retries the lost worker fails the run
    from parsl.executors.high_throughput.errors import WorkerLost

    with pytest.raises(WorkerLost):
        with ExecutionSession(ExecutorConfig(executor="parsl", workers=2, retries=0, progress=False,
                                              run_dir=str(tmp_path / "parsl"))) as session:
            run_spectra(tmp_path / "in", tmp_path / "out", session=session, chunksize=300)
    assert "pid" in killed
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


# ------------------------------------------------------------------------------------------
# 2. the driver interrupted and resumed from its checkpoint

_DRIVER = textwrap.dedent(
    """
    # the real `taucoffea` CLI, with every chunk's start and end marked in $TC_MARKS and an
    # optional sleep per chunk, so the test can interrupt it at a known point
    import os, signal, sys, time
    from pathlib import Path

    # a process started in the background inherits SIGINT ignored (and Python then keeps it
    # ignored); the drill plays a user pressing Ctrl-C in a terminal, so restore that
    signal.signal(signal.SIGINT, signal.default_int_handler)
    marks, delay = Path(os.environ["TC_MARKS"]), float(os.environ.get("TC_DELAY", "0"))

    def mark(cls):
        original = cls.process
        def process(self, events):
            m = events.metadata
            key = f"{m['dataset']}~{Path(m['filename']).name}~{m['entrystart']}-{m['entrystop']}"
            (marks / f"start~{key}").touch()
            time.sleep(delay)
            out = original(self, events)
            (marks / f"done~{key}").touch()
            return out
        cls.process = process

    from taucoffea.processors.sampling import SamplingProcessor
    from taucoffea.processors.skim import SkimProcessor
    from taucoffea.processors.spectra import SpectrumProcessor
    for cls in (SpectrumProcessor, SkimProcessor, SamplingProcessor):
        mark(cls)
    from taucoffea.cli.main import main
    sys.exit(main(sys.argv[1:]))
    """
)


def _chunks(marks: Path, what: str) -> list[str]:
    return sorted(p.name.split("~", 1)[1] for p in marks.glob(f"{what}~*"))


class _Driver:
    """Runs the marked CLI in a subprocess; optionally signals it after ``n`` chunks started."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.script = tmp / "driver.py"
        self.script.write_text(_DRIVER)

    def __call__(self, argv: list[str], marks: str, *, interrupt_at: int | None = None,
                 sig: int = signal.SIGINT, delay: float = 0.0) -> tuple[int, str, Path]:
        folder = self.tmp / marks
        folder.mkdir()
        env = dict(os.environ, TC_MARKS=str(folder), TC_DELAY=str(delay))
        proc = subprocess.Popen([sys.executable, str(self.script), *argv], env=env, cwd=self.tmp,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if interrupt_at is not None:
            t0 = time.monotonic()
            # the signal lands while chunk number `interrupt_at` sleeps: the ones before it are
            # done and (iterative executor) checkpointed, that one is not
            while len(_chunks(folder, "start")) < interrupt_at:
                assert proc.poll() is None, f"finished before the interrupt: {proc.communicate()}"
                assert time.monotonic() - t0 < 120
                time.sleep(0.02)
            proc.send_signal(sig)
        _, err = proc.communicate(timeout=300)
        return proc.returncode, err, folder


def _check_resume(first: Path, second: Path, everything: Path) -> None:
    """No chunk finished before the interrupt runs again; together the runs did every chunk once."""
    done1, started2, done2 = _chunks(first, "done"), _chunks(second, "start"), _chunks(second, "done")
    assert done1, "nothing was finished before the interrupt"
    assert not set(done1) & set(started2), "a chunk finished before the interrupt was processed again"
    assert len(started2) == len(set(started2)) == len(done2)
    assert sorted(done1 + done2) == _chunks(everything, "done")
    interrupted = set(_chunks(first, "start")) - set(done1)
    assert len(interrupted) == 1 and interrupted <= set(done2)


def _write_inputs(root: Path) -> None:
    for ds, sizes in (("A", (1200, 900)), ("B", (1500,))):
        for i, n in enumerate(sizes):
            write_mini_tautuple(root / ds / f"eventTuple_{i}.root", n, seed=1000 * ord(ds) + i)


def test_spectra_cli_interrupted_by_sigint_resumes_without_redoing_chunks(tmp_path: Path) -> None:
    _write_inputs(tmp_path / "in")
    drive = _Driver(tmp_path)

    def argv(out: str, ckpt: str) -> list[str]:
        return ["spectra", "--input", str(tmp_path / "in"), "--output", str(tmp_path / out), "--executor", "iterative",
                "--chunksize", "300", "--quiet", "--checkpoint-dir", str(tmp_path / ckpt)]

    rc, err, first = drive(argv("out", "ckpt"), "m1", interrupt_at=4, sig=signal.SIGINT, delay=0.4)
    assert rc == 130 and "interrupted" in err, err
    assert not (tmp_path / "out").exists() or not _files(tmp_path / "out")  # nothing half-done
    rc, err, second = drive(argv("out", "ckpt"), "m2")
    assert rc == 0, err
    rc, err, everything = drive(argv("reference", "fresh"), "m3")
    assert rc == 0, err
    _check_resume(first, second, everything)
    report = json.loads((tmp_path / "out" / "spectra_report.json").read_text())
    assert len(report["completed_chunks"]) == len(_chunks(everything, "done"))
    produced, reference = _files(tmp_path / "out"), _files(tmp_path / "reference")
    assert sorted(produced) == sorted(reference)
    for name in produced:
        if name != "spectra_report.json":  # records the checkpoint folder
            assert produced[name] == reference[name], name


def test_skim_cli_killed_by_sigkill_resumes_without_redoing_chunks(tmp_path: Path) -> None:
    _write_inputs(tmp_path / "in")
    drive = _Driver(tmp_path)

    def argv(out: str, ckpt: str) -> list[str]:
        return ["skim", "--input", str(tmp_path / "in"), "--output", str(tmp_path / out), "--sel", "tau_pt > 35",
                "--executor", "iterative", "--chunksize", "300", "--quiet", "--checkpoint-dir", str(tmp_path / ckpt)]

    rc, _, first = drive(argv("out", "ckpt"), "m1", interrupt_at=5, sig=signal.SIGKILL, delay=0.4)
    assert rc == -signal.SIGKILL
    assert not list((tmp_path / "out").rglob("*.parquet")) or all(".parts" in str(p) for p in (tmp_path / "out").rglob("*.parquet"))
    rc, err, second = drive(argv("out", "ckpt"), "m2")
    assert rc == 0, err
    rc, err, everything = drive(argv("reference", "fresh"), "m3")
    assert rc == 0, err
    _check_resume(first, second, everything)
    outputs = sorted(p.relative_to(tmp_path / "out") for p in (tmp_path / "out").glob("*/*.parquet"))
    assert outputs == sorted(p.relative_to(tmp_path / "reference") for p in (tmp_path / "reference").glob("*/*.parquet"))
    assert len(outputs) == 3
    for rel in outputs:
        assert (tmp_path / "out" / rel).read_bytes() == (tmp_path / "reference" / rel).read_bytes()
    assert not _tmp_leftovers(tmp_path / "out")


_GROUPS = """groups:
  GA: {dir: 'A', file: 'eventTuple.*', types: [e, mu, tau, jet]}
  GB: {dir: 'B', file: 'eventTuple.*', types: [e, mu, tau, jet]}
"""


def test_shuffle_merge_cli_killed_by_sigkill_resumes(tmp_path: Path) -> None:
    _write_inputs(tmp_path / "in")
    (tmp_path / "groups.yaml").write_text(_GROUPS)
    run_spectra(tmp_path / "in", tmp_path / "spec", executor=_iterative())
    drive = _Driver(tmp_path)

    def argv(out: str, ckpt: str) -> list[str]:
        return ["shuffle-merge", "--cfg", str(tmp_path / "groups.yaml"), "--input", str(tmp_path / "in"),
                "--input-spec", str(tmp_path / "spec"), "--output", str(tmp_path / out),
                "--pt-bins", "20, 30, 40, 60, 100", "--eta-bins", "0, 1.2, 2.4", "--tau-ratio", "e:1, mu:2, tau:1, jet:1",
                "--n-files", "2", "--seed", "42", "--executor", "iterative", "--chunksize", "300", "--quiet",
                "--checkpoint-dir", str(tmp_path / ckpt)]

    rc, _, first = drive(argv("out", "ckpt"), "m1", interrupt_at=4, sig=signal.SIGKILL, delay=0.4)
    assert rc == -signal.SIGKILL
    assert not list((tmp_path / "out").glob("ShuffleMergeSpectral_*"))
    rc, err, second = drive(argv("out", "ckpt"), "m2")
    assert rc == 0, err
    rc, err, everything = drive(argv("reference", "fresh"), "m3")
    assert rc == 0, err
    _check_resume(first, second, everything)
    for k in range(2):
        name = f"ShuffleMergeSpectral_{k}.parquet"
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "reference" / name).read_bytes()


# ------------------------------------------------------------------------------------------
# 3. bad input files: skipped and reported, or one clean failure


def _spectra_parquet(path: Path, n: int, seed: int) -> None:
    from taucoffea.columns.parquet import write_parquet

    rng = np.random.Generator(np.random.Philox(seed))
    write_parquet(
        ak.zip({"tau_pt": (20 + rng.exponential(30, n)).astype(np.float32),
                "tau_eta": rng.uniform(-2.4, 2.4, n).astype(np.float32),
                "tauType": rng.integers(0, 4, n).astype(np.int32)}),
        path,
    )


def _make_bad(kind: str, folder: Path) -> Path:
    """Two good files plus one bad one of ``kind``; returns the bad file's path."""
    suffix = ".parquet" if "parquet" in kind else ".root"
    good = []
    for i in range(2):
        path = folder / "D" / f"good_{i}{suffix}"
        if suffix == ".root":
            write_mini_tautuple(path, 400, seed=200 + i)
        else:
            _spectra_parquet(path, 400, seed=200 + i)
        good.append(path)
    bad = folder / "D" / f"z_{kind}{suffix}"  # sorts last: the good files are read first
    if kind == "corrupt_root":
        bad.write_bytes(b"not a ROOT file at all " * 200)
    elif kind == "truncated_root":
        bad.write_bytes(good[0].read_bytes()[:2000])
    elif kind == "empty_tree":
        write_mini_tautuple(bad, 0, seed=3)
    elif kind == "missing_branch":
        write_mini_tautuple(bad, 400, seed=4, drop=("tau_eta",))
    elif kind in ("vanishing_root", "vanishing_parquet"):
        if suffix == ".root":
            write_mini_tautuple(bad, 400, seed=5)
        else:
            _spectra_parquet(bad, 400, seed=5)
    elif kind == "truncated_parquet":
        _spectra_parquet(bad, 400, seed=6)
        data = bad.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    else:  # pragma: no cover
        raise AssertionError(kind)
    return bad


class _DeleteOnFirstChunk(SpectrumProcessor):
    """Deletes ``victim`` while processing the first chunk: after the pre-flight passed it."""

    def __init__(self, binning: Any, fmt: str, victim: str) -> None:
        super().__init__(binning, fmt)
        self.victim = victim

    def process(self, events: Any) -> dict[str, Any]:
        if os.path.exists(self.victim):
            os.unlink(self.victim)
        return super().process(events)


BAD_KINDS = {
    # kind: a piece of the reason that must be reported
    "corrupt_root": "cannot be read as ROOT",
    "truncated_root": "cannot be read",
    "empty_tree": "empty",
    "missing_branch": "tau_eta",
    "truncated_parquet": "cannot be read as parquet",
    "vanishing_root": "during the run",
    "vanishing_parquet": "during the run",
}


@pytest.mark.parametrize("skip", [True, False], ids=["skip", "fail"])
@pytest.mark.parametrize("kind", sorted(BAD_KINDS))
def test_bad_input_is_skipped_and_reported_or_fails_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, skip: bool
) -> None:
    import taucoffea.stages.spectra as spectra_stage

    bad = _make_bad(kind, tmp_path / "in")
    fmt = "parquet" if bad.suffix == ".parquet" else "tautuple"
    if kind.startswith("vanishing"):
        monkeypatch.setattr(spectra_stage, "SpectrumProcessor",
                            lambda binning, f: _DeleteOnFirstChunk(binning, f, str(bad)))
    out = tmp_path / "out"
    cfg = _iterative(skip_bad_files=skip)
    fileset = {"D": sorted(str(p) for p in (tmp_path / "in" / "D").iterdir())}
    if not skip:
        with pytest.raises(InputError) as err:
            run_spectra(fileset, out, fmt=fmt, executor=cfg, chunksize=150)
        assert bad.name in str(err.value) and "skip" in str(err.value)
        assert not out.exists() or not _files(out), "a failed run left outputs behind"
        assert not _tmp_leftovers(tmp_path)
        return
    with pytest.warns(UserWarning, match=bad.name):
        result = run_spectra(fileset, out, fmt=fmt, executor=cfg, chunksize=150)
    assert [(Path(b.path).name, BAD_KINDS[kind] in b.reason) for b in result.report.bad_files] == [(bad.name, True)]
    listed = json.loads((out / "spectra_report.json").read_text())["bad_files"]
    assert [Path(b["path"]).name for b in listed] == [bad.name]
    assert sorted(Path(f).name for f in result.report.files["D"]) == sorted(
        p.name for p in (tmp_path / "in" / "D").iterdir() if p.name != bad.name)
    assert result.entries == {"D": {str(p): 400 for p in sorted((tmp_path / "in" / "D").glob("good_*"))}}
    total = sum(int(h.sum(flow=True)) for h in result.spectra["D"].values()) + result.not_valid["D"]
    assert total == 800  # exactly the good files' rows, nothing of the bad one
    assert not _tmp_leftovers(tmp_path)


def _deleting_first(original: Any, victim: Path) -> Any:
    """``SkimProcessor.process`` that deletes ``victim`` while the first chunk is processed."""

    def process(self: Any, events: Any) -> Any:
        victim.unlink(missing_ok=True)
        return original(self, events)

    return process


def test_file_vanishing_during_a_row_writing_stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Skim writes parts per chunk: a failure must not leave a final output, skipping must
    leave the other files' outputs exactly as without the bad file."""
    from taucoffea.processors.skim import SkimProcessor
    from taucoffea.stages.skim import run_skim

    bad = _make_bad("vanishing_root", tmp_path / "in")
    keep = bad.read_bytes()
    monkeypatch.setattr(SkimProcessor, "process", _deleting_first(SkimProcessor.process, bad))
    with pytest.raises(InputError, match=bad.name):
        run_skim(tmp_path / "in", tmp_path / "fail", sel="tau_pt > 30", executor=_iterative(), chunksize=150)
    assert not list((tmp_path / "fail").glob("D/*.parquet")) and not _tmp_leftovers(tmp_path / "fail")
    assert not _parts_dirs(tmp_path / "fail")  # no checkpoints: nothing could resume from the parts

    bad.write_bytes(keep)
    with pytest.warns(UserWarning, match=bad.name):
        result = run_skim(tmp_path / "in", tmp_path / "skip", sel="tau_pt > 30",
                          executor=_iterative(skip_bad_files=True), chunksize=150)
    assert [Path(b.path).name for b in result.report.bad_files] == [bad.name]
    assert sorted(p.name for p in (tmp_path / "skip" / "D").glob("*.parquet")) == ["good_0.parquet", "good_1.parquet"]
    monkeypatch.undo()
    clean = tmp_path / "clean"
    for p in sorted((tmp_path / "in" / "D").glob("good_*")):
        (clean / "D").mkdir(parents=True, exist_ok=True)
        (clean / "D" / p.name).write_bytes(p.read_bytes())
    run_skim(clean, tmp_path / "reference", sel="tau_pt > 30", executor=_iterative(), chunksize=150)
    for name in ("good_0.parquet", "good_1.parquet"):
        assert (tmp_path / "skip" / "D" / name).read_bytes() == (tmp_path / "reference" / "D" / name).read_bytes()
    assert not _tmp_leftovers(tmp_path)


def test_skim_skips_a_corrupt_first_file(tmp_path: Path) -> None:
    """The up-front checks (cuts compiled against a file's columns) use the first readable file."""
    from taucoffea.stages.skim import run_skim

    write_mini_tautuple(tmp_path / "in" / "D" / "b_good.root", 300, seed=1)
    (tmp_path / "in" / "D" / "a_corrupt.root").write_bytes(b"garbage" * 100)
    result = run_skim(tmp_path / "in", tmp_path / "out", sel="tau_pt > 30",
                      executor=_iterative(skip_bad_files=True))
    assert [Path(b.path).name for b in result.report.bad_files] == ["a_corrupt.root"]
    assert [p.name for p in result.outputs["D"]] == ["b_good.parquet"]
    with pytest.raises(InputError, match="a_corrupt.root"):
        run_skim(tmp_path / "in", tmp_path / "out2", sel="tau_pt > 30", executor=_iterative())


def test_event_drop_skips_a_corrupt_first_file_and_reports_it(tmp_path: Path) -> None:
    """Event drop counts entries of every file before its passes: a bad one is skipped and
    listed (with skip_bad_files) or named in the error (without)."""
    from taucoffea.stages.event_drop import run_event_drop
    from taucoffea.stages.skim import run_skim

    write_mini_tautuple(tmp_path / "in" / "D" / "b_good.root", 400, seed=2)
    run_skim(tmp_path / "in", tmp_path / "skim", sel="tau_pt > 0", executor=_iterative())
    (tmp_path / "skim" / "D" / "a_corrupt.parquet").write_bytes(b"PAR1" + b"garbage" * 50)
    edges = [20.0, 40.0, 60.0, 100.0, 1000.0]
    with pytest.raises(InputError, match=r"a_corrupt.parquet.*skip_bad_files"):
        run_event_drop(tmp_path / "skim", tmp_path / "drop0", target="dataset:D", pt_edges=edges,
                       executor=_iterative())
    result = run_event_drop(tmp_path / "skim", tmp_path / "drop", target="dataset:D", pt_edges=edges,
                            executor=_iterative(skip_bad_files=True))
    assert [Path(b.path).name for b in result.report.bad_files] == ["a_corrupt.parquet"]
    assert [p.name for p in result.outputs["D"]] == ["b_good.parquet"]


# ------------------------------------------------------------------------------------------
# 4. what a row-writing stage that fails midway leaves behind

Stage = Callable[..., Any]


def _parts_dirs(out: Path) -> list[str]:
    """The hidden parts folders in a stage's output (``.parts*``, predict's ``.predict_parts``)."""
    return sorted(p.name for p in out.glob(".*parts*")) if out.exists() else []


def _parts_files(out: Path) -> int:
    return sum(1 for d in out.glob(".*parts*") for p in d.rglob("*") if p.is_file()) if out.exists() else 0


def _row_outputs(out: Path) -> dict[str, bytes]:
    """The stage's row outputs: parquet files outside its hidden folders."""
    return {k: v for k, v in _files(out).items() if k.endswith(".parquet") and not k.startswith(".")}


class _FailSecondChunk:
    """Wraps ``cls.process``: records the chunks it completes and, when armed, fails the run's
    second chunk with an :class:`InputError` — after the first one wrote its part (and, with
    checkpointing, its checkpoint), so the failed run has something to leave behind."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, cls: type) -> None:
        self.armed, self.out, self.done, self.parts_at_failure = False, Path(), [], 0
        original = cls.process

        def process(proc: Any, events: Any) -> Any:
            m = events.metadata
            key = f"{m['dataset']}~{Path(m['filename']).name}~{m['entrystart']}-{m['entrystop']}"
            if self.armed and self.done:
                self.parts_at_failure = _parts_files(self.out)
                raise InputError(f"injected failure in chunk {key}")
            result = original(proc, events)
            self.done.append(key)
            return result

        monkeypatch.setattr(cls, "process", process)

    def start(self, out: Path, *, armed: bool) -> None:
        self.armed, self.out, self.done, self.parts_at_failure = armed, out, [], 0


def _skim_stage(tmp: Path, request: pytest.FixtureRequest) -> tuple[Stage, type]:
    from taucoffea.processors.skim import SkimProcessor
    from taucoffea.stages.skim import run_skim

    _write_inputs(tmp / "in")
    return lambda out, cfg, **kw: run_skim(tmp / "in", out, sel="tau_pt > 30", executor=cfg, chunksize=300, **kw), SkimProcessor


def _event_drop_stage(tmp: Path, request: pytest.FixtureRequest) -> tuple[Stage, type]:
    from taucoffea.processors.event_drop import EventDropProcessor
    from taucoffea.stages.event_drop import run_event_drop
    from taucoffea.stages.skim import run_skim

    _write_inputs(tmp / "in")
    run_skim(tmp / "in", tmp / "skim", sel="tau_pt > 0", executor=_iterative())
    edges = [20.0, 40.0, 60.0, 100.0, 1000.0]
    return (lambda out, cfg, **kw: run_event_drop(tmp / "skim", out, target="dataset:A", pt_edges=edges, executor=cfg,
                                                  chunksize=300, **kw)), EventDropProcessor


@pytest.fixture(scope="module")
def mix_inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mix_inputs(tmp_path_factory.mktemp("mix"))


def _mix_stage(tmp: Path, request: pytest.FixtureRequest) -> tuple[Stage, type]:
    from taucoffea.processors.mix import MixProcessor
    from taucoffea.stages.mix import run_mix

    inputs = request.getfixturevalue("mix_inputs")
    weights = inputs / "weights" / "adversarial_weights.json"
    return (lambda out, cfg, **kw: run_mix(inputs / "drop", out, weights=weights, pt_edges=MIX_EDGES, executor=cfg,
                                           chunksize=30, **kw)), MixProcessor


def _shuffle_merge_stage(tmp: Path, request: pytest.FixtureRequest) -> tuple[Stage, type]:
    from taucoffea.processors.sampling import SamplingProcessor
    from taucoffea.stages.shuffle_merge import run_shuffle_merge

    _write_inputs(tmp / "in")
    (tmp / "groups.yaml").write_text(_GROUPS)
    run_spectra(tmp / "in", tmp / "spec", executor=_iterative())
    return (lambda out, cfg, **kw: run_shuffle_merge(
        tmp / "groups.yaml", tmp / "in", tmp / "spec", out, pt_bins="20, 30, 40, 60, 100", eta_bins="0, 1.2, 2.4",
        tau_ratio="e:1, mu:2, tau:1, jet:1", n_files=2, seed=42, executor=cfg, chunksize=300, **kw)), SamplingProcessor


def _predict_stage(tmp: Path, request: pytest.FixtureRequest) -> tuple[Stage, type]:
    """Predict with the model stubbed out: the drill is about the stage's parts, not Keras."""
    import taucoffea.ml.predict as ml_predict
    import taucoffea.stages.predict as predict_stage
    from taucoffea.processors.predict import PredictProcessor

    monkeypatch = request.getfixturevalue("monkeypatch")
    run_dir = tmp / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("{}\n")
    (run_dir / "model.keras").write_bytes(b"stub")
    monkeypatch.setattr(predict_stage, "_branches", lambda *_: ["tau_pt"])
    monkeypatch.setattr(ml_predict, "load_trained", lambda *_: types.SimpleNamespace(columns=["tau_pt"]))
    monkeypatch.setattr(ml_predict, "prediction_columns",
                        lambda trained, data, **_: {"node_tau": np.asarray(data["tau_pt"], np.float32) / 100})
    for i in range(2):
        _spectra_parquet(tmp / "in" / "D" / f"f{i}.parquet", 900, seed=300 + i)
    return (lambda out, cfg, **kw: predict_stage.run_predict(run_dir, tmp / "in", out, executor=cfg, chunksize=300,
                                                             **kw)), PredictProcessor


ROW_WRITING_STAGES = {"skim": _skim_stage, "event-drop": _event_drop_stage, "mix": _mix_stage,
                      "shuffle-merge": _shuffle_merge_stage, "predict": _predict_stage}


@pytest.mark.parametrize("stage", sorted(ROW_WRITING_STAGES))
def test_failed_row_writing_stage_removes_its_parts_unless_they_serve_a_resume(
    tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, stage: str
) -> None:
    """Without checkpointing nothing can resume from a failed run's parts: they must go. With
    checkpointing they must stay — the finished chunks' checkpoints point into them — and the
    rerun takes those chunks from there instead of processing them again."""
    run, cls = ROW_WRITING_STAGES[stage](tmp_path, request)
    fault = _FailSecondChunk(monkeypatch, cls)
    fault.start(tmp_path / "reference", armed=False)
    run(tmp_path / "reference", _iterative())
    everything = fault.done

    plain = tmp_path / "plain"
    fault.start(plain, armed=True)
    with pytest.raises(InputError, match="injected failure in chunk"):
        run(plain, _iterative())
    assert fault.parts_at_failure > 0, "the drill failed the run before any part was written"
    assert _parts_dirs(plain) == [] and not _row_outputs(plain) and not _tmp_leftovers(plain)
    assert not (plain / "acceptance").exists()  # shuffle & merge: output of a run that did not finish

    resumed, cfg = tmp_path / "resumed", _iterative(checkpoint_dir=str(tmp_path / "ckpt"))
    fault.start(resumed, armed=True)
    with pytest.raises(InputError, match="injected failure in chunk"):
        run(resumed, cfg)
    finished = fault.done
    assert finished and _parts_files(resumed) >= fault.parts_at_failure > 0
    assert not (resumed / "acceptance").exists()  # recomputed by the rerun, nothing resumes from it
    fault.start(resumed, armed=False)
    with ExecutionSession(cfg) as session:  # as in a pipeline: the session's checkpoint_dir counts
        run(resumed, None, session=session)
    assert not set(finished) & set(fault.done), "a chunk finished before the failure was processed again"
    assert sorted(finished + fault.done) == sorted(everything)
    assert _parts_dirs(resumed), "parts named by checkpoints must survive a finished run too"
    produced = _row_outputs(resumed)
    assert produced and produced == _row_outputs(tmp_path / "reference")


def test_failed_shuffle_merge_keeps_an_acceptance_folder_it_did_not_create(
    tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the folder a failed run created is removed: an earlier run's stays."""
    run, cls = _shuffle_merge_stage(tmp_path, request)
    run(tmp_path / "out", _iterative())
    fault = _FailSecondChunk(monkeypatch, cls)
    fault.start(tmp_path / "out", armed=True)
    with pytest.raises(InputError, match="injected failure in chunk"):
        run(tmp_path / "out", _iterative(), overwrite=True)
    assert (tmp_path / "out" / "acceptance" / "acceptance.json").exists()
    assert not _parts_dirs(tmp_path / "out")


# ------------------------------------------------------------------------------------------
# 5. the output disk is full


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Any:
    """A 16 KiB tmpfs (the spectra ROOT file of the inputs below is ~50 kB)."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the RLIMIT_FSIZE drill covers disk-full without it")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mnt)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip()}); the RLIMIT_FSIZE drill covers disk-full")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_disk_full_on_tmpfs_gives_a_clear_error_and_no_half_written_file(tmp_path: Path, tiny_tmpfs: Path) -> None:
    _write_inputs(tmp_path / "in")
    out = tiny_tmpfs / "spectra"
    with pytest.raises(TaucoffeaError, match=r"cannot write output '.*A\.root': No space left on device") as err:
        run_spectra(tmp_path / "in", out, executor=_iterative())
    assert "no partial file was left" in str(err.value)
    assert not (out / "A.root").exists()
    assert not _tmp_leftovers(tiny_tmpfs)
    assert not [p for p in tiny_tmpfs.rglob("*") if p.is_file()]


def _limit_file_size() -> None:  # runs in the child between fork and exec
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG instead of killing


def test_file_size_limit_gives_a_clear_cli_error_and_no_half_written_file(tmp_path: Path) -> None:
    _write_inputs(tmp_path / "in")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "taucoffea.cli.main", "spectra", "--input", str(tmp_path / "in"), "--output", str(out),
         "--executor", "iterative", "--quiet"],
        capture_output=True, text=True, timeout=300, preexec_fn=_limit_file_size, cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "error: cannot write output" in proc.stderr and "A.root" in proc.stderr and "File too large" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (out / "A.root").exists() and not (out / "B.root").exists()
    assert not _tmp_leftovers(out)


# ------------------------------------------------------------------------------------------
# the benchmark runner (benchmarks/run_all.py): its plan, and a quick end-to-end run


def test_benchmark_runner_dry_run_lists_every_script() -> None:
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "run_all.py"), "--quick", "--dry-run"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    scripts = {p.stem for p in (REPO / "benchmarks").glob("*.py")} - {"_common", "run_all"}
    listed = {Path(line.split()[1]).stem for line in proc.stdout.splitlines() if line.strip()}
    assert scripts and listed == scripts


def test_benchmark_runner_page_from_canned_runs(tmp_path: Path) -> None:
    """The page is built from what the scripts print: feed it known output, check the figures."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import run_all
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    spectra_out = ("bare uproot read of 11 branches:      1,000,000 taus/s\n"
                   "spectra stage, 1 worker (iterative):    800,000 taus/s  (file metadata cached)\n"
                   "ratio stage / raw I/O: 0.80  (target >= 0.8)\nParsl 2-worker speedup: 1.90\n")
    runs = [run_all.Run("spectra", [n], ["python", str(REPO / "benchmarks" / "spectra.py")], 0, 1.0, 300.0, spectra_out)
            for n in (1_000_000, 2_000_000)]
    for r in runs:
        r.parsed = run_all._parse_spectra(r.stdout, None)
    runs[1].parsed["rate"] = 400_000.0  # twice the input at half the rate: cost grows as n^2
    page = run_all.write_page(tmp_path / "bench.md", "quick", runs, run_all.machine())
    text = page.read_text()
    assert "| spectra | 0.80 |" in text and "Parsl 2-worker speedup over 1 worker: 1.90" in text
    assert "cost ∝ n^2.00" in text
    assert "500 M taus on a 1,000-slot HTCondor pool" in text and "spectra (pass 1)" in text
    assert "model name" not in text and str(os.cpu_count()) in text


@pytest.mark.slow  # runs every benchmark at its smallest size (~1.5 min on 2 cores)
def test_benchmark_runner_quick_run(tmp_path: Path) -> None:
    page = tmp_path / "bench.md"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "run_all.py"), "--quick", "--output", str(page)],
                          capture_output=True, text=True, timeout=900,
                          env=dict(os.environ, TAUCOFFEA_BENCH_CACHE=str(tmp_path / "cache")))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = page.read_text()
    assert "FAILED" not in text and "## Production plan on paper" in text
