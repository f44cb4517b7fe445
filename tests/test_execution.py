"""Execution layer: config validation, pre-flight of bad files, Parsl clean-up, resume."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from conftest import write_mini_tautuple
from taucoffea.errors import ConfigError, InputError
from taucoffea.execution.config import ExecutorConfig, load_executor_config
from taucoffea.execution.runner import preflight
from taucoffea.execution.session import ExecutionSession

REPO = Path(__file__).resolve().parents[1]


def test_builtin_and_shipped_configs_load():
    assert load_executor_config("iterative").executor == "iterative"
    assert load_executor_config(None).executor == "parsl"
    for name in ("local", "iterative", "condor"):
        cfg = load_executor_config(REPO / "configs" / "executors" / f"{name}.yaml")
        assert cfg.chunksize >= 1
    condor = load_executor_config(REPO / "configs" / "executors" / "condor.yaml")
    assert condor.executor == "condor" and condor.condor.cores_per_slot == 4


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"executr": "parsl"}, r"unknown key\(s\) \['executr'\].*allowed"),
        ({"executor": "slurm"}, "executor 'slurm' is not known; allowed"),
        ({"workers": "two"}, "'workers' must be of type int"),
        ({"chunksize": 0}, "'chunksize' must be an integer >= 1"),
        ({"retries": -1}, "'retries' must be an integer >= 0"),
        ({"condor": {"memory": 4}}, r"condor: unknown key\(s\) \['memory'\]"),
        ({"skip_bad_files": "yes"}, "'skip_bad_files' must be of type bool"),
    ],
)
def test_bad_config_named(data, message):
    with pytest.raises(ConfigError, match=message):
        load_executor_config(data)


def test_bad_yaml_file_named(tmp_path):
    p = tmp_path / "ex.yaml"
    p.write_text("executor: parsl\nworkerz: 3\n")
    with pytest.raises(ConfigError, match=r"ex\.yaml: unknown key\(s\) \['workerz'\]"):
        load_executor_config(p)
    with pytest.raises(ConfigError, match="neither a built-in"):
        load_executor_config(tmp_path / "missing.yaml")


def test_preflight_names_every_bad_file(tmp_path):
    good = tmp_path / "D" / "good.root"
    write_mini_tautuple(good, 50, seed=1)
    nobranch = tmp_path / "D" / "nobranch.root"
    write_mini_tautuple(nobranch, 50, seed=2, drop=("tau_eta",))
    empty = tmp_path / "D" / "empty.root"
    write_mini_tautuple(empty, 0, seed=3)
    corrupt = tmp_path / "D" / "corrupt.root"
    corrupt.write_bytes(b"this is not a ROOT file" * 100)
    truncated = tmp_path / "D" / "truncated.root"
    truncated.write_bytes(good.read_bytes()[:400])
    missing = tmp_path / "D" / "missing.root"
    files = [good, nobranch, empty, corrupt, truncated, missing]
    ok, bad, meta = preflight({"D": [str(f) for f in files]}, "taus", ["tau_pt", "tau_eta"])
    assert meta[str(good)]["numentries"] == 50
    assert ok == {"D": [str(good)]}
    reasons = {Path(b.path).name: b.reason for b in bad}
    assert "tau_eta" in reasons["nobranch.root"]
    assert "empty" in reasons["empty.root"]
    assert "cannot be read as ROOT" in reasons["corrupt.root"]
    assert "cannot be read" in reasons["truncated.root"]
    assert "does not exist" in reasons["missing.root"]


def _interchanges() -> list[psutil.Process]:
    me = psutil.Process()
    return [p for p in me.children(recursive=True) if "interchange" in " ".join(p.cmdline())]


@pytest.mark.slow
def test_parsl_cleaned_up_after_exception():
    with pytest.raises(RuntimeError, match="boom"):
        with ExecutionSession(ExecutorConfig(executor="parsl", workers=1, progress=False)) as s:
            assert s.coffea_executor() is not None
            assert _interchanges(), "the HTEX interchange should be running inside the session"
            raise RuntimeError("boom")
    psutil.wait_procs(_interchanges(), timeout=10)
    assert not _interchanges()


def test_run_fails_cleanly_listing_bad_files(tmp_path):
    from taucoffea.stages.spectra import run_spectra

    write_mini_tautuple(tmp_path / "in" / "D" / "a.root", 100, seed=1)
    (tmp_path / "in" / "D" / "b.root").write_bytes(b"garbage")
    with pytest.raises(InputError, match=r"b\.root: cannot be read as ROOT"):
        run_spectra(tmp_path / "in", tmp_path / "out", executor=ExecutorConfig(executor="iterative", progress=False))
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    skipped = run_spectra(
        tmp_path / "in", tmp_path / "out", executor=ExecutorConfig(executor="iterative", progress=False, skip_bad_files=True)
    )
    assert [Path(b.path).name for b in skipped.report.bad_files] == ["b.root"]
    assert sum(skipped.entries["D"].values()) == 100


_RESUME_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from taucoffea.execution.config import ExecutorConfig
    from taucoffea.execution.runner import run_processor
    from taucoffea.execution.session import ExecutionSession
    from taucoffea.processors.spectra import SpectrumProcessor

    class Marking(SpectrumProcessor):
        # records every chunk it processes; dies hard (like a killed driver) after `die_after`
        def __init__(self, marks, die_after):
            super().__init__()
            self.marks, self.die_after = Path(marks), die_after
        def process(self, events):
            out = super().process(events)
            m = events.metadata
            (self.marks / f"{Path(m['filename']).name}-{m['entrystart']}").touch()
            if self.die_after and len(list(self.marks.iterdir())) >= self.die_after:
                os._exit(9)
            return out

    inp, marks, ckpt, die_after, result = sys.argv[1:]
    files = sorted(str(p) for p in Path(inp).glob("*.root"))
    cfg = ExecutorConfig(executor="iterative", progress=False, checkpoint_dir=ckpt)
    with ExecutionSession(cfg) as s:
        out, report = run_processor(s, Marking(marks, int(die_after)), {"D": files}, treename="taus",
                                    stage="spectra", stage_config={"test": 1}, chunksize=500)
    h = out["spectra"]["D"]
    Path(result).write_text(repr({t: h[t].values().tolist() for t in sorted(h)}) + repr(out["not_valid"]))
    """
)


def test_resume_processes_only_missing_chunks(tmp_path):
    for i, n in enumerate((1200, 1300)):
        write_mini_tautuple(tmp_path / "in" / f"f{i}.root", n, seed=10 + i)
    script = tmp_path / "resume.py"
    script.write_text(_RESUME_SCRIPT)

    def run(marks: str, ckpt: str, die_after: int, result: str) -> int:
        (tmp_path / marks).mkdir(exist_ok=True)
        args = [sys.executable, str(script), str(tmp_path / "in"), str(tmp_path / marks), str(tmp_path / ckpt), str(die_after), str(tmp_path / result)]
        return subprocess.run(args, cwd=tmp_path, capture_output=True, timeout=300).returncode

    assert run("marks1", "ckpt", 4, "r1.txt") == 9  # killed after its 4th chunk
    first = {p.name for p in (tmp_path / "marks1").iterdir()}
    assert len(first) == 4
    assert run("marks2", "ckpt", 0, "r2.txt") == 0
    second = {p.name for p in (tmp_path / "marks2").iterdir()}
    # the 3 chunks checkpointed before the kill are not redone; the one being processed
    # when the process died (never checkpointed) is
    assert run("marks3", "fresh", 0, "r3.txt") == 0
    everything = {p.name for p in (tmp_path / "marks3").iterdir()}
    assert len(everything) == 5  # coffea splits 1200 → 2 × 600 and 1300 → 3 × ~434
    assert len(second) == len(everything) - 3
    assert len(first & second) == 1
    assert first | second == everything
    assert (tmp_path / "r2.txt").read_text() == (tmp_path / "r3.txt").read_text()
