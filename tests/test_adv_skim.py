"""Skim: same rows as a numpy mask, contributions cut by recomputed type, safe selections,
column filters, ROOT output types, determinism across chunk sizes."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from taucoffea.adversarial.contributions import DEFAULT_CONFIG
from taucoffea.errors import ConfigError, InputError, OutputExistsError, SelectionError
from taucoffea.execution.config import ExecutorConfig
from taucoffea.physics.tautypes import compute_tau_type
from taucoffea.stages.skim import run_skim

ITER = ExecutorConfig(executor="iterative", progress=False)
SEL = "tau_pt > 35 && (std::abs(tau_eta) < 1.5 || tau_decayMode == 10) && !(has_dimuon != 0)"


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from taucoffea.toy.generator import generate_toy

    out = tmp_path_factory.mktemp("advtoy")
    generate_toy(out, seed=11, size=9000, datasets=["SingleMuon_MuTau", "DYJetsToLL_M-50_MuTau", "TTToSemiLeptonic_MuTau"],
                 progress=False)
    return out


def _input(path: Path) -> ak.Array:
    with uproot.open(path) as f:
        return f["taus"].arrays()


def _equal_rows(a: ak.Array, b: ak.Array, fields: list[str]) -> None:
    assert len(a) == len(b)
    for f in fields:
        assert ak.all(ak.ravel(a[f]) == ak.ravel(b[f])), f
        assert ak.all(ak.num(a[f], axis=-1) == ak.num(b[f], axis=-1)) if a[f].ndim > 1 else True


def test_skim_equals_numpy_mask(toy: Path, tmp_path: Path) -> None:
    res = run_skim(toy, tmp_path / "out", sel=SEL, executor=ITER, chunksize=1500)
    for ds in ("SingleMuon_MuTau", "DYJetsToLL_M-50_MuTau"):
        src = _input(toy / ds / "eventTuple_0.root")
        pt, eta = ak.to_numpy(src.tau_pt), ak.to_numpy(src.tau_eta)
        mask = (pt > 35) & ((np.abs(eta) < 1.5) | (ak.to_numpy(src.tau_decayMode) == 10)) & (ak.to_numpy(src.has_dimuon) == 0)
        assert 0 < mask.sum() < len(src)
        out = ak.from_parquet(tmp_path / "out" / ds / "eventTuple_0.parquet")
        assert out.fields == src.fields  # all columns, input order
        _equal_rows(out, src[mask], src.fields)  # same rows, in entry order, jagged lists included
        assert res.selected[ds] == int(mask.sum())


def test_contributions_cut_by_recomputed_type(toy: Path, tmp_path: Path) -> None:
    cfg = DEFAULT_CONFIG
    # W/QCD are not in this toy: the error names the contribution and its dataset
    with pytest.raises(InputError, match="contribution 'W_jets' needs dataset 'WJetsToLNu_MuTau'"):
        run_skim(toy, tmp_path / "skim", contributions=cfg, executor=ITER)
    from taucoffea.adversarial.contributions import AdversarialConfig

    small = AdversarialConfig(cfg.selection, tuple(c for c in cfg.contributions if c.name not in ("W_jets", "QCD_jets")))
    res = run_skim(toy, tmp_path / "skim", contributions=small, executor=ITER, chunksize=2000)
    base = DEFAULT_CONFIG.selection
    from taucoffea.columns.selection import compile_selection

    for c in small.contributions:
        src = _input(toy / c.dataset / "eventTuple_0.root")
        flat = {f: ak.to_numpy(src[f]) for f in src.fields if src[f].ndim == 1}
        mytype = compute_tau_type(flat)
        mask = compile_selection(base)(flat) & ((flat["sampleType"] == 0) if c.is_data else (mytype == c.tau_type))
        out = ak.from_parquet(tmp_path / "skim" / c.name / "eventTuple_0.parquet")
        assert res.selected[c.name] == int(mask.sum()) == len(out)
        np.testing.assert_array_equal(ak.to_numpy(out.evt), flat["evt"][mask])
        np.testing.assert_array_equal(ak.to_numpy(out.mytauType), mytype[mask])
        assert out.fields[-1] == "mytauType"
    assert res.selected["DY_taus"] > 100 and res.selected["data"] > 100


@pytest.mark.parametrize(
    "hostile",
    [
        "__import__('os').system('touch pwned')",
        "tau_pt.__class__.__bases__",
        "open('/etc/passwd')",
        "tau_pt > 30; import os",
        "(lambda: 1)()",
        "exec('x=1')",
        "tau_pt[0] > 1",
        "[t for t in tau_pt]",
        "tau_pt > 30 && not_a_column < 2",
    ],
)
def test_hostile_selections_rejected(toy: Path, tmp_path: Path, hostile: str) -> None:
    with pytest.raises(SelectionError):
        run_skim(toy, tmp_path / "out", sel=hostile, executor=ITER)
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()
    assert not (tmp_path / "out").exists()  # nothing ran, nothing written


def test_columns_root_output_and_types(toy: Path, tmp_path: Path) -> None:
    ds = toy / "DYJetsToLL_M-50_MuTau"
    run_skim(ds, tmp_path / "o", sel="tau_pt > 40", include_columns=["evt", "tau_pt", "^pfCand_", "npfCand", "tau_decayMode"],
             exclude_columns=["^pfCand_(vertex|track)"], recompute_tautype=True, root=True, executor=ITER)
    pq_rows = ak.from_parquet(tmp_path / "o" / ds.name / "eventTuple_0.parquet")
    assert "pfCand_pt" in pq_rows.fields and "pfCand_vertex_x" not in pq_rows.fields and "tau_eta" not in pq_rows.fields
    assert "mytauType" not in pq_rows.fields  # recomputed, but not included
    with uproot.open(tmp_path / "o" / ds.name / "eventTuple_0.root") as f:
        tree = f["taus"]
        assert tree.classname == "TTree"
        types = {k: tree[k].typename for k in tree.keys()}
        assert types["evt"] == "uint64_t" and types["tau_pt"] == "float" and types["tau_decayMode"] == "int32_t"
        assert types["npfCand"] == "int32_t" and types["pfCand_pt"] == "float[]"
        assert not any(t in ("double", "int64_t") for t in types.values())
        back = tree.arrays()
    _equal_rows(back, pq_rows, pq_rows.fields)
    with pytest.raises(ConfigError, match="tau_ptt"):
        run_skim(ds, tmp_path / "o2", sel="tau_pt > 40", include_columns=["tau_ptt"], executor=ITER)


def test_deterministic_across_chunk_sizes(toy: Path, tmp_path: Path) -> None:
    ds = toy / "DYJetsToLL_M-50_MuTau"
    cols = ["evt", "^tau_", "^pfCand_p", "mytauType"]
    a = run_skim(ds, tmp_path / "a", sel=SEL, recompute_tautype=True, include_columns=cols, executor=ITER, chunksize=700)
    b = run_skim(ds, tmp_path / "b", sel=SEL, recompute_tautype=True, include_columns=cols, executor=ITER, chunksize=100_000)
    assert a.report.chunksize != b.report.chunksize
    for ds, files in a.outputs.items():
        for fa, fb in zip(files, b.outputs[ds], strict=True):
            assert fa.read_bytes() == fb.read_bytes()


def test_list_file_overwrite_and_empty(toy: Path, tmp_path: Path) -> None:
    lst = tmp_path / "files.txt"
    lst.write_text(f"# a comment\n{toy / 'TTToSemiLeptonic_MuTau' / 'eventTuple_0.root'}\n\n# {toy / 'nope.root'}\n")
    res = run_skim(lst, tmp_path / "o", sel="tau_pt > 1e6", executor=ITER, include_columns=["evt", "tau_pt"])
    assert res.selected == {"TTToSemiLeptonic_MuTau": 0}
    assert res.outputs["TTToSemiLeptonic_MuTau"] == [] and res.extra["no_rows_selected"]
    cols = ["evt", "tau_pt"]
    run_skim(lst, tmp_path / "o", sel="tau_pt > 50", executor=ITER, include_columns=cols)
    with pytest.raises(OutputExistsError, match="--overwrite"):
        run_skim(lst, tmp_path / "o", sel="tau_pt > 60", executor=ITER, include_columns=cols)
    run_skim(lst, tmp_path / "o", sel="tau_pt > 60", executor=ITER, overwrite=True, include_columns=cols)
    out = ak.from_parquet(tmp_path / "o" / "TTToSemiLeptonic_MuTau" / "eventTuple_0.parquet")
    assert ak.min(out.tau_pt) > 60
    with pytest.raises(ConfigError, match="exactly one"):
        run_skim(lst, tmp_path / "x", executor=ITER)


def test_cli_skim(toy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from taucoffea.cli import skim as skim_cli

    parser = argparse.ArgumentParser()
    skim_cli.add_arguments(parser)
    args = parser.parse_args(["--input", str(toy / "TTToSemiLeptonic_MuTau"), "--output", str(tmp_path / "o"),
                              "--sel", "tau_pt > 50", "--include-columns", "evt", "tau_pt", "--recompute-tautype",
                              "--root", "--executor", "iterative", "--quiet"])
    assert skim_cli.run(args) == 0
    assert "TTToSemiLeptonic_MuTau" in capsys.readouterr().out
    assert (tmp_path / "o" / "TTToSemiLeptonic_MuTau" / "eventTuple_0.root").exists()
    with pytest.raises(SystemExit):  # --sel and --contributions exclude each other
        parser.parse_args(["--input", "x", "--output", "y", "--sel", "a", "--contributions", "b"])
