"""Shuffle & merge end to end on hand-made TauTuples with known truth."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot
from scipy import stats

from conftest import write_mini_tautuple
from taucoffea.errors import ConfigError, OutputExistsError
from taucoffea.execution.config import ExecutorConfig
from taucoffea.physics.dataset_hash import std_hash
from taucoffea.stages.shuffle_merge import run_shuffle_merge
from taucoffea.stages.spectra import run_spectra

ITER = ExecutorConfig(executor="iterative", progress=False)
PT = "20, 30, 40, 60, 100"
ETA = "0, 1.2, 2.4"
GROUPS = """groups:
  GA: {dir: 'A', file: 'eventTuple.*', types: [e, mu, tau, jet]}
  GB: {dir: 'B', file: 'eventTuple.*', types: [e, mu, tau, jet]}
"""


@pytest.fixture(scope="module")
def sm_inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("sm")
    for ds, sizes in (("A", (12000, 8000)), ("B", (30000,))):
        for i, n in enumerate(sizes):
            write_mini_tautuple(d / "in" / ds / f"eventTuple_{i}.root", n, seed=1000 * ord(ds) + i)
    (d / "groups.yaml").write_text(GROUPS)
    run_spectra(d / "in", d / "spec", executor=ITER)
    return d


def _run(d: Path, out: str, **kw):
    args = {"pt_bins": PT, "eta_bins": ETA, "tau_ratio": "e:1, mu:2, tau:1, jet:1", "n_files": 3, "executor": ITER, "seed": 42}
    args.update(kw)
    return run_shuffle_merge(d / "groups.yaml", d / "in", d / "spec", d / out, **args)


def _digest(paths) -> list[str]:
    return [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths]


@pytest.fixture(scope="module")
def reference(sm_inputs):
    return _run(sm_inputs, "ref", chunksize=5000)


def _input_rows(d: Path) -> dict[str, ak.Array]:
    rows = {}
    for ds in ("A", "B"):
        parts = [uproot.open(p)["taus"].arrays() for p in sorted((d / "in" / ds).glob("*.root"))]
        rows[ds] = ak.concatenate(parts)
    return rows


def test_flat_spectra_and_ratio(reference):
    table = reference.table
    for t, c in reference.closure.items():
        assert c["pvalue"] > 1e-3, f"{t}: flatness chi2 {c['chi2']:.1f}/{c['ndf']}"
    # the flat region: every bin of a type has the same expected count (the target is flat)
    for i, t in enumerate(table.types):
        exp = table.expected[:, i].sum(axis=0)[1:-1, 1:-1]
        np.testing.assert_allclose(exp, exp.mean(), rtol=1e-9)
    # requested ratio e:mu:tau:jet = 1:2:1:1, within binomial errors of what was accepted
    observed = {t: reference.observed[t].sum() for t in table.types}
    total = sum(observed.values())
    for t, share in {"e": 0.2, "mu": 0.4, "tau": 0.2, "jet": 0.2}.items():
        expected = table.expected[:, table.types.index(t)].sum()
        sigma = np.sqrt(expected)
        assert abs(observed[t] - expected) < 4 * sigma
        assert abs(observed[t] / total - share) < 0.02


def test_rows_are_unmodified_inputs_without_duplicates(sm_inputs, reference):
    out = ak.concatenate([ak.from_parquet(p) for p in reference.outputs])
    assert len(out) == sum(reference.rows) > 10_000
    inputs = _input_rows(sm_inputs)
    ids = {std_hash(ds): ds for ds in inputs}
    key = ak.to_numpy(out["dataset_id"]).astype(np.uint64) * np.uint64(0) + ak.to_numpy(out["evt"]).astype(np.uint64)
    pairs = set(zip(ak.to_numpy(out["dataset_id"]).tolist(), key.tolist(), strict=True))
    assert len(pairs) == len(out), "a tau was written twice"
    for did, ds in ids.items():
        mine = out[out["dataset_id"] == did]
        src = inputs[ds]
        pos = np.searchsorted(ak.to_numpy(src["evt"]), ak.to_numpy(mine["evt"]))
        matched = src[pos]
        for field in src.fields:
            np.testing.assert_array_equal(ak.to_numpy(mine[field]), ak.to_numpy(matched[field]), err_msg=field)
        assert set(np.unique(ak.to_numpy(mine["dataset_group_id"]))) == {std_hash("G" + ds)}
    # the tau type written is the gen-match type, and only valid taus are taken
    assert set(np.unique(ak.to_numpy(out["tauType"]))) == {0, 1, 2, 3}


def test_buckets_are_uniform_mixtures(reference):
    # each output file holds each (group, type) in proportion to the whole: chi2 of the
    # contingency table (files × group/type) is consistent with independence
    tables = []
    for p in reference.outputs:
        a = ak.from_parquet(p, columns=["dataset_group_id", "tauType"])
        code = ak.to_numpy(a["tauType"]) + 10 * (ak.to_numpy(a["dataset_group_id"]) == std_hash("GA"))
        tables.append(np.bincount(code, minlength=14)[[0, 1, 2, 3, 10, 11, 12, 13]])
    assert stats.chi2_contingency(np.array(tables)).pvalue > 1e-3
    # and the order inside a file is not the input order
    evt = ak.to_numpy(ak.from_parquet(reference.outputs[0], columns=["evt"])["evt"]).astype(np.int64)
    assert abs(stats.spearmanr(np.arange(evt.size), evt).statistic) < 0.05


def test_identical_bytes_for_chunk_sizes_and_executors(sm_inputs, reference):
    other = _run(sm_inputs, "c1000", chunksize=1000)
    assert _digest(other.outputs) == _digest(reference.outputs)
    parsl = _run(sm_inputs, "parsl", chunksize=3000, executor=ExecutorConfig(executor="parsl", workers=2, progress=False))
    assert _digest(parsl.outputs) == _digest(reference.outputs)


def test_seed_changes_selection(sm_inputs, reference):
    other = _run(sm_inputs, "seed43", seed=43, chunksize=50000)
    assert _digest(other.outputs) != _digest(reference.outputs)


def test_max_entries_and_parity(sm_inputs, reference):
    limited = _run(sm_inputs, "max", max_entries=5000, chunksize=50000)
    assert sum(limited.rows) == 5000
    full = {int(e) for p in reference.outputs for e in ak.to_numpy(ak.from_parquet(p, columns=["evt"])["evt"])}
    sub = [int(e) for p in limited.outputs for e in ak.to_numpy(ak.from_parquet(p, columns=["evt"])["evt"])]
    assert set(sub) <= full
    even = _run(sm_inputs, "even", parity=0, chunksize=50000)
    evts = np.concatenate([ak.to_numpy(ak.from_parquet(p, columns=["evt"])["evt"]) for p in even.outputs])
    assert evts.size > 0 and np.all(evts % 2 == 0)
    assert abs(evts.size / sum(reference.rows) - 0.5) < 0.03


def test_hash_tables_and_side_outputs(sm_inputs, reference):
    out = sm_inputs / "ref"
    assert json.loads((out / "datagroup_hash.json").read_text()) == {"GA": str(std_hash("GA")), "GB": str(std_hash("GB"))}
    assert json.loads((out / "dataset_hash.json").read_text()) == {"A": str(std_hash("A")), "B": str(std_hash("B"))}
    assert (out / "acceptance" / "acceptance.json").exists()
    assert (out / "acceptance" / "GA.root").exists() and (out / "acceptance" / "GA_n.root").exists()
    assert not (out / ".parts").exists()


def test_refusals(sm_inputs, reference):
    with pytest.raises(OutputExistsError):
        _run(sm_inputs, "ref")
    with pytest.raises(ConfigError, match="incompatible|edge"):
        _run(sm_inputs, "bad", pt_bins="20, 25.5, 100")
    with pytest.raises(ConfigError, match="ratio"):
        _run(sm_inputs, "bad2", tau_ratio="e:1, mu:1, tau:1")
