"""``taucoffea run``: validation messages, the adversarial chain end to end (small and the
shipped toy.yaml), and the coffea runner script giving the same bytes under Parsl."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import awkward as ak
import pytest
import yaml

from taucoffea.errors import ConfigError
from taucoffea.stages.pipeline import STAGES, StageSpec, load_pipeline, register_stage, run_pipeline

ROOT = Path(__file__).resolve().parents[1]
TOY_YAML = ROOT / "configs" / "adversarial" / "toy.yaml"
SMALL_SIZES = {"SingleMuon_MuTau": 2400, "DYJetsToLL_M-50_MuTau": 4800, "TTToSemiLeptonic_MuTau": 1200,
               "WJetsToLNu_MuTau": 9600, "QCD_MuTau": 7200}


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _small_pipeline(tmp: Path) -> Path:
    data = yaml.safe_load(TOY_YAML.read_text())
    data["stages"][0]["toy"]["size"] = SMALL_SIZES
    for stage in data["stages"]:
        opts = next(iter(stage.values()))
        if "contributions" in opts:
            opts["contributions"] = str(ROOT / "configs" / "adversarial" / opts["contributions"])
    return _write(tmp / "small.yaml", data)


def _cli(argv: list[str]) -> int:
    from taucoffea.cli import run as run_cli

    parser = argparse.ArgumentParser()
    run_cli.add_arguments(parser)
    return run_cli.run(parser.parse_args(argv))


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ([{"skimm": {}}], r"stage #1: unknown pipeline stage 'skimm'; known stages: .*event-drop.*mix.*reweight.*skim.*spectra.*toy"),
        ([{"skim": {"input": "a", "output": "b", "sell": "x"}}], r"stage #1 \('skim'\): unknown key\(s\) \['sell'\]; allowed: .*'sel'"),
        ([{"mix": {"input": "a", "output": "b"}}], r"stage #1 \('mix'\): missing required key\(s\) \['weights'\]"),
        ([{"reweight": ["input"]}], r"stage #1 \('reweight'\): options must be a mapping"),
        ([{"skim": {}, "mix": {}}], r"stage #1 must be 'name' or a one-key mapping"),
        ([{"skim": {"input": "a", "output": "b", "session": 1}}], r"unknown key\(s\) \['session'\]"),
        ([], "non-empty list"),
    ],
)
def test_validation_messages(tmp_path: Path, stages: list, message: str) -> None:
    path = _write(tmp_path / "p.yaml", {"stages": stages})
    with pytest.raises(ConfigError, match=message) as err:
        run_pipeline(path, tmp_path / "wd")
    assert "p.yaml" in str(err.value)
    assert not (tmp_path / "wd").exists()  # nothing ran


def test_top_level_and_until(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['stage'\]"):
        run_pipeline(_write(tmp_path / "a.yaml", {"stage": []}), tmp_path / "wd")
    with pytest.raises(ConfigError, match="does not exist"):
        run_pipeline(tmp_path / "missing.yaml", tmp_path / "wd")
    path = _write(tmp_path / "b.yaml", {"stages": [{"toy": {"output": "toy", "size": 10}}]})
    with pytest.raises(ConfigError, match="--until 'mix' is not a stage"):
        run_pipeline(path, tmp_path / "wd", until="mix")
    with pytest.raises(ConfigError, match="'skim' is already registered"):
        register_stage(StageSpec("skim", "x:y"))


def test_register_a_new_stage(tmp_path: Path) -> None:
    """Extensible by name: a stage defined elsewhere runs with path options resolved."""
    spec = StageSpec("echo-test", f"{__name__}:echo_stage", data_paths=("output",))
    register_stage(spec, replace=True)
    try:
        assert spec.parameters() == ({"output", "text"}, {"output"})
        path = _write(tmp_path / "p.yaml", {"executor": "iterative", "stages": [{"echo-test": {"output": "x.txt", "text": "hi"}}]})
        results = run_pipeline(path, tmp_path / "wd")
        assert (tmp_path / "wd" / "x.txt").read_text() == "hi"
        assert results["1:echo-test"] == "ok"
        report = json.loads((tmp_path / "wd" / "pipeline_report.json").read_text())
        assert report["stages"][0]["stage"] == "echo-test"
    finally:
        STAGES.pop("echo-test", None)


def echo_stage(output: str, *, text: str = "", session=None, overwrite: bool = False) -> str:  # noqa: ANN001
    assert session is not None
    Path(output).write_text(text)
    return "ok"


def test_shipped_pipeline_validates() -> None:
    pipe = load_pipeline(TOY_YAML)
    assert [s.name for s in pipe.steps] == ["toy", "skim", "event-drop", "reweight", "mix"]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("pipe")
    assert _cli([str(_small_pipeline(tmp)), "--workdir", str(tmp / "wd"), "--quiet"]) == 0
    return tmp


def test_small_pipeline_end_to_end(small_run: Path) -> None:
    wd = small_run / "wd"
    tv = ak.from_parquet(wd / "mix" / "adv_trainval.parquet")
    ev = ak.from_parquet(wd / "mix" / "adv_eval.parquet")
    assert len(tv) % 100 == 0 and len(ev) % 100 == 0 and len(tv) >= 100 and len(ev) >= 100
    for rows in (tv, ev):
        counts = Counter(ak.to_numpy(rows.dataset_id[:100]).tolist())
        assert counts == {0: 50, 1: 36, 2: 2, 3: 1, 4: 1, 5: 5, 6: 5}
    assert not set(zip(ak.to_numpy(tv.dataset_id), ak.to_numpy(tv.evt), strict=True)) & set(
        zip(ak.to_numpy(ev.dataset_id), ak.to_numpy(ev.evt), strict=True))
    report = json.loads((wd / "pipeline_report.json").read_text())
    assert [s["stage"] for s in report["stages"]] == ["toy", "skim", "event-drop", "reweight", "mix"]
    # a second run keeps the toy (same request) and, with --overwrite, redoes the skim identically
    skim = wd / "skim" / "W_jets" / "eventTuple_0.parquet"
    before = skim.read_bytes()
    toy_mtime = (wd / "toy" / "QCD_MuTau" / "eventTuple_0.root").stat().st_mtime_ns
    with pytest.raises(Exception, match="--overwrite"):
        _cli([str(small_run / "small.yaml"), "--workdir", str(wd), "--quiet", "--until", "skim"])
    assert _cli([str(small_run / "small.yaml"), "--workdir", str(wd), "--overwrite", "--quiet", "--until", "skim"]) == 0
    assert skim.read_bytes() == before
    assert (wd / "toy" / "QCD_MuTau" / "eventTuple_0.root").stat().st_mtime_ns == toy_mtime
    assert [s["stage"] for s in json.loads((wd / "pipeline_report.json").read_text())["stages"]] == ["toy", "skim"]


@pytest.mark.slow  # Parsl start-up plus five Runner passes: ~30-40 s on 2 shared cores
def test_runner_script_gives_the_same_bytes_under_parsl(small_run: Path) -> None:
    wd = small_run / "wd"
    out = small_run / "script"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "processors" / "adversarial_inputs.py"), str(wd / "toy"), str(out),
         "--workers", "2", "--chunksize", "3000"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("adv_trainval.parquet", "adv_eval.parquet"):
        assert (out / name).read_bytes() == (wd / "mix" / name).read_bytes()
    for p in (wd / "drop").rglob("*.parquet"):
        assert (out / "drop" / p.relative_to(wd / "drop")).read_bytes() == p.read_bytes()


@pytest.mark.slow  # the shipped toy pipeline: ~130 k toy taus, ~30-60 s
def test_shipped_toy_pipeline_and_plot(tmp_path: Path) -> None:
    from taucoffea.plotting.adversarial_inputs import plot_adversarial_inputs

    assert _cli([str(TOY_YAML), "--workdir", str(tmp_path), "--quiet"]) == 0
    tv = ak.from_parquet(tmp_path / "mix" / "adv_trainval.parquet")
    ev = ak.from_parquet(tmp_path / "mix" / "adv_eval.parquet")
    assert len(tv) >= 1000 and len(ev) >= 600
    mix_report = json.loads((tmp_path / "mix" / "mix_report.json").read_text())
    for o in ("trainval", "eval"):
        c = mix_report["closure"][o]
        assert abs(c["mc_weight"] - c["data_weight"]) < 0.1 * c["data_weight"]
    written = plot_adversarial_inputs(tmp_path, tmp_path / "plots" / "adversarial_inputs")
    assert all(p.exists() for p in written)


def test_cli_list_stages(capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(["--list-stages"]) == 0
    out = capsys.readouterr().out
    for name in ("toy", "spectra", "skim", "event-drop", "reweight", "mix"):
        assert name in out
    with pytest.raises(ConfigError, match="--workdir"):
        _cli([str(TOY_YAML)])
