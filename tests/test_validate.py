"""``taucoffea validate`` on real shuffle & merge output of mini TauTuples: fair vs biased."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import awkward as ak
import matplotlib.image
import numpy as np
import pytest

from conftest import write_mini_tautuple
from taucoffea.algorithms.validation_stats import closure_report
from taucoffea.errors import ConfigError, InputError, OutputExistsError
from taucoffea.execution.config import ExecutorConfig
from taucoffea.columns.parquet import write_parquet
from taucoffea.stages.shuffle_merge import run_shuffle_merge
from taucoffea.stages.spectra import run_spectra
from taucoffea.stages.validate import (
    _iter_chunks,
    chunk_bounds,
    find_merged_files,
    read_expected_json,
    run_validate,
)

ITER = ExecutorConfig(executor="iterative", progress=False)
GROUPS = """groups:
  GA: {dir: 'A', file: 'eventTuple.*', types: [e, mu, tau, jet]}
  GB: {dir: 'B', file: 'eventTuple.*', types: [e, mu, tau, jet]}
"""
PT, ETA = "20, 30, 40, 60, 100", "0, 1.2, 2.4"


def _strict_json(path: Path):
    def reject(token: str):
        raise AssertionError(f"non-standard JSON constant {token} in {path}")

    return json.loads(path.read_text(), parse_constant=reject)


@pytest.fixture(scope="module")
def sm_output(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("val")
    for ds, sizes in (("A", (9000, 7000)), ("B", (20000,))):
        for i, n in enumerate(sizes):
            write_mini_tautuple(d / "in" / ds / f"eventTuple_{i}.root", n, seed=500 * ord(ds) + i)
    (d / "groups.yaml").write_text(GROUPS)
    run_spectra(d / "in", d / "spec", executor=ITER)
    run_shuffle_merge(
        d / "groups.yaml", d / "in", d / "spec", d / "sm", pt_bins=PT, eta_bins=ETA,
        tau_ratio="e:1, mu:2, tau:1, jet:1", n_files=3, seed=7, executor=ITER,
    )
    return d / "sm"


def _all_rows(folder: Path) -> ak.Array:
    return ak.concatenate([ak.from_parquet(p) for p in find_merged_files(folder)])


def _copy_side_files(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True)
    for name in ("dataset_hash.json", "datagroup_hash.json"):
        shutil.copy(src / name, dst / name)


# ------------------------------------------------------------------------------ chunking


@pytest.mark.parametrize(("n_rows", "nsplit"), [(10, 3), (1000, 100), (7, 7), (3, 5), (12345, 17), (1, 1)])
def test_chunk_bounds_are_the_rdataframe_split(n_rows: int, nsplit: int) -> None:
    chunk_of_row = np.arange(n_rows) * nsplit // n_rows  # the original's rdfentry_ * N / tot
    bounds = chunk_bounds(n_rows, nsplit)
    assert bounds[0] == 0 and bounds[-1] == n_rows
    for k in range(nsplit):
        assert np.array_equal(np.flatnonzero(chunk_of_row == k), np.arange(bounds[k], bounds[k + 1]))
    sizes = np.diff(bounds)
    assert sizes.max() - sizes.min() <= 1


def test_chunks_span_files_and_batches_in_order(tmp_path: Path) -> None:
    sizes = (5, 13, 1, 8)
    files, start = [], 0
    for i, n in enumerate(sizes):
        path = tmp_path / f"ShuffleMergeSpectral_{i}.parquet"
        write_parquet(ak.zip({"row": np.arange(start, start + n), "x": np.ones(n)}, depth_limit=1), path)
        files.append(path)
        start += n
    total = sum(sizes)
    for nsplit in (1, 4, 27, 30):
        chunks = list(_iter_chunks(files, ["row"], chunk_bounds(total, nsplit), batch_size=3))
        assert [k for k, _ in chunks] == list(range(nsplit))
        rows = [c["row"] for _, c in chunks]
        assert np.array_equal(np.concatenate(rows), np.arange(total))
        for k, r in enumerate(rows):
            assert np.all(r * nsplit // total == k)


def test_files_sorted_by_number_and_missing_inputs(tmp_path: Path) -> None:
    for k in (10, 2, 1):
        (tmp_path / f"ShuffleMergeSpectral_{k}.parquet").write_bytes(b"")
    (tmp_path / "other.parquet").write_bytes(b"")
    assert [p.name for p in find_merged_files(tmp_path)] == [f"ShuffleMergeSpectral_{k}.parquet" for k in (1, 2, 10)]
    with pytest.raises(InputError, match="does not exist"):
        find_merged_files(tmp_path / "nope")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(InputError, match="no ShuffleMergeSpectral"):
        find_merged_files(tmp_path / "empty_dir")


# ------------------------------------------------------------------------ fair vs biased


def test_fair_split_passes_and_closure_closes(sm_output: Path, tmp_path: Path) -> None:
    r = run_validate(sm_output, tmp_path / "v", nsplit=5, test="both", pvthreshold=1e-3, formats=(),
                     use_dataset_id=True, verbose=False)
    assert r.failed == [], "\n".join(map(str, r.failed))
    assert r.n_entries == len(_all_rows(sm_output)) > 8000
    # the closure: observed per (type, |η|, pT) bin consistent with the expected binomial counts
    assert r.closure is not None and set(r.closure) == {"e", "mu", "tau", "jet"}
    for t, c in r.closure.items():
        assert c.pvalue > 1e-3, f"{t}: chi2 {c.chi2:.1f}/{c.ndf}"
        assert c.ndf == 8  # 2 |η| × 4 pT bins, flow bins have σ = 0 and match exactly
    assert r.ok
    # the closure equals the stage's own (same counts, computed from the written files)
    stage = json.loads((sm_output / "closure.json").read_text())
    for t, c in r.closure.items():
        assert c.n_observed == stage[t]["n_observed"]
        assert c.chi2 == pytest.approx(stage[t]["chi2"], rel=1e-9)


def _biased_copy(sm_output: Path, dst: Path, nsplit: int, *, relabel_mu_in: int | None) -> Path:
    """The output as one file with chunk 3's pT scaled up by 30 % and, optionally, 40 % of the
    mu of another chunk relabelled as e (the type composition changes, spectra do not)."""
    rows = _all_rows(sm_output)
    n = len(rows)
    b = chunk_bounds(n, nsplit)
    cols = {f: ak.to_numpy(rows[f]).copy() for f in rows.fields}
    if relabel_mu_in is not None:
        rng = np.random.Generator(np.random.Philox(3))
        inside = np.zeros(n, bool)
        inside[b[relabel_mu_in] : b[relabel_mu_in + 1]] = True
        cols["tauType"][inside & (cols["tauType"] == 1) & (rng.random(n) < 0.4)] = 0
    cols["tau_pt"][b[3] : b[4]] *= np.float32(1.3)
    _copy_side_files(sm_output, dst)
    write_parquet(ak.zip(cols, depth_limit=1), dst / "ShuffleMergeSpectral_0.parquet")
    return dst


def test_biased_chunks_are_flagged(sm_output: Path, tmp_path: Path) -> None:
    nsplit = 5
    biased = _biased_copy(sm_output, tmp_path / "biased", nsplit, relabel_mu_in=1)
    r = run_validate(biased, tmp_path / "v", nsplit=nsplit, test="both", pvthreshold=1e-3, formats=(),
                     verbose=False)
    failed = {(f.path, f.test): f.chunks for f in r.failed}
    assert failed.get(("tauType", "chi2")) == [1]
    for test in ("chi2", "ks"):
        assert 3 in failed.get(("sampleType/MC/tau_pt", test), []), failed
        assert 3 in failed.get(("uh_dataset_group_id/GB/tau_pt", test), []), failed
    assert {k for chunks in failed.values() for k in chunks} <= {1, 3}
    assert r.closure is None and "no" in r.closure_note  # no acceptance/expected.json here
    assert not r.ok


def test_closure_flags_missing_taus(sm_output: Path, tmp_path: Path) -> None:
    dst = tmp_path / "cut"
    shutil.copytree(sm_output, dst)
    victim = dst / "ShuffleMergeSpectral_1.parquet"
    rows = ak.from_parquet(victim)
    in_bin = (rows.tauType == 3) & (rows.tau_pt > 30) & (rows.tau_pt < 40) & (abs(rows.tau_eta) < 1.2)
    assert ak.sum(in_bin) > 50
    write_parquet(rows[~in_bin], victim)

    r = run_validate(dst, tmp_path / "v", nsplit=2, pvthreshold=1e-3, formats=(), verbose=False)
    assert r.closure is not None
    assert r.closure["jet"].pvalue < 1e-6
    pulls = r.closure["jet"].pulls
    assert pulls[1, 2] == pulls.min() < -5  # |η| bin [0, 1.2), pT bin [30, 40) (flow index +1)
    for t in ("e", "mu", "tau"):
        assert r.closure[t].pvalue > 1e-3
    assert r.closure_failed == ["jet"] and not r.ok
    data = _strict_json(tmp_path / "v" / "closure.json")
    assert data["types"]["jet"]["n_observed"] == pytest.approx(r.closure["jet"].n_observed)


def test_closure_skipped_for_a_subset_of_files(sm_output: Path, tmp_path: Path) -> None:
    r = run_validate(sm_output / "ShuffleMergeSpectral_0.parquet", tmp_path / "v", nsplit=3,
                     formats=(), verbose=False)
    assert r.closure is None and "exactly" in r.closure_note
    assert not (tmp_path / "v" / "closure.json").exists()


def test_expected_json_matches_the_table(sm_output: Path) -> None:
    exp = read_expected_json(sm_output / "acceptance" / "expected.json")
    stage = json.loads((sm_output / "closure.json").read_text())
    assert sorted(exp.outputs) == sorted(p.name for p in find_merged_files(sm_output))
    for t, e in exp.expected.items():
        assert e.sum() == pytest.approx(stage[t]["n_expected"], rel=1e-12)
        assert np.all(exp.variance[t] <= e + 1e-12)  # binomial variance E·a·(1 − a) ≤ E·a


def test_closure_json_is_strict_with_impossible_counts() -> None:
    # σ = 0 and o ≠ e: pull and χ² are infinite; the dict must still be standard JSON
    r = closure_report({"jet": np.array([5.0, 1.0])}, {"jet": np.array([5.0, 0.0])},
                       {"jet": np.array([2.0, 0.0])})["jet"]
    d = r.to_dict()
    text = json.dumps(d, allow_nan=False)
    assert json.loads(text)["chi2"] is None and json.loads(text)["pulls"] == [0.0, None]


# ------------------------------------------------------------------ outputs and plots


def test_pvalues_json_layout(sm_output: Path, tmp_path: Path) -> None:
    nsplit = 4
    run_validate(sm_output, tmp_path / "both", nsplit=nsplit, use_dataset_id=True, formats=(), verbose=False)
    p = _strict_json(tmp_path / "both" / "pvalues.json")
    assert set(p) == {"tauType", "sampleType", "uh_dataset_group_id", "uh_dataset_id"}
    assert set(p["tauType"]) == {"pvalues", "e", "mu", "tau", "jet"}  # empty categories left out
    assert len(p["tauType"]["pvalues"]) == nsplit and p["tauType"]["pvalues"][0] == 1.0
    leaf = p["tauType"]["tau"]["tau_pt"]
    assert set(leaf) == {"pvalues", "pvalues_ks"} and len(leaf["pvalues_ks"]) == nsplit
    assert all(0 <= x <= 1 for x in leaf["pvalues"] + leaf["pvalues_ks"])
    assert set(p["uh_dataset_group_id"]["GA"]) == {"tau_pt", "tau_eta", "uh_dataset_id"}
    assert set(p["sampleType"]) == {"pvalues", "MC"}

    run_validate(sm_output, tmp_path / "ks", nsplit=nsplit, test="ks", formats=(), verbose=False)
    ks = _strict_json(tmp_path / "ks" / "pvalues.json")
    assert set(ks) == {"tauType", "sampleType", "uh_dataset_group_id"}
    assert set(ks["tauType"]["tau"]["tau_pt"]) == {"pvalues"}
    assert ks["tauType"]["tau"]["tau_pt"]["pvalues"] == leaf["pvalues_ks"]
    summary = _strict_json(tmp_path / "ks" / "validation_summary.json")
    assert summary["nsplit"] == nsplit and summary["tests"] == ["ks"]


def test_plots_exist_and_are_not_blank(sm_output: Path, tmp_path: Path) -> None:
    r = run_validate(sm_output, tmp_path / "v", nsplit=3, formats=("png",), verbose=False)
    pngs = {p.name for p in r.outputs if p.suffix == ".png"}
    for name in ("tauType", "tauType_tau_tau_pt", "sampleType_MC_tau_eta", "uh_dataset_group_id_GB_tau_pt",
                 "closure_e", "closure_jet"):
        assert f"{name}.png" in pngs
        img = matplotlib.image.imread(tmp_path / "v" / "plots" / f"{name}.png")
        assert img.shape[0] > 300 and img.shape[1] > 300
        assert img[..., :3].std() > 0.05  # not a blank canvas
    assert not any(p.suffix == ".pdf" for p in r.outputs)


def test_refusals_and_errors(sm_output: Path, tmp_path: Path) -> None:
    from taucoffea.cli import validate as cli

    def cli_run(*argv: str) -> int:
        parser = argparse.ArgumentParser()
        cli.add_arguments(parser)
        return cli.run(parser.parse_args(list(argv)))

    assert cli_run("--input", str(sm_output), "--output", str(tmp_path / "v"), "--nsplit", "2", "--formats", "") == 0
    assert (tmp_path / "v" / "pvalues.json").exists()
    with pytest.raises(OutputExistsError):
        cli_run("--input", str(sm_output), "--output", str(tmp_path / "v"), "--formats", "")
    with pytest.raises(InputError, match="nowhere"):
        cli_run("--input", str(tmp_path / "nowhere"), "--output", str(tmp_path / "x"))
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(sm_output / "ShuffleMergeSpectral_0.parquet", lone)
    with pytest.raises(InputError, match="datagroup_hash.json"):
        cli_run("--input", str(lone), "--output", str(tmp_path / "x"))
    with pytest.raises(InputError, match="dataset_hash.json"):
        cli_run("--input", str(lone), "--output", str(tmp_path / "x"), "--use-dataset-id",
                "--group-id-json", str(sm_output / "datagroup_hash.json"))
    with pytest.raises(ConfigError, match="nsplit"):
        cli_run("--input", str(sm_output), "--output", str(tmp_path / "x"), "--nsplit", "0")
    with pytest.raises(ConfigError, match="formats"):
        run_validate(sm_output, tmp_path / "x", formats=("jpg",))
    (lone / "ShuffleMergeSpectral_1.parquet").write_text("not parquet")
    with pytest.raises(InputError, match="ShuffleMergeSpectral_1.parquet"):
        cli_run("--input", str(lone), "--output", str(tmp_path / "x"),
                "--group-id-json", str(sm_output / "datagroup_hash.json"))
    with pytest.raises(SystemExit):  # --input is required
        cli_run("--output", str(tmp_path / "x"))


# ------------------------------------------------------------- each chunk against the rest


def _leaf_paths(node: dict, path: tuple[str, ...] = ()) -> set[str]:
    found = set()
    for key, value in node.items():
        if key.startswith("pvalues"):
            found.add("/".join((*path, key)))
        elif isinstance(value, dict):
            found |= _leaf_paths(value, (*path, key))
    return found


def test_reference_rest_recomputed_from_the_rows(sm_output: Path, tmp_path: Path) -> None:
    from scipy import stats

    from taucoffea.algorithms.validation_stats import chi2_test

    nsplit = 5
    rest = run_validate(sm_output, tmp_path / "rest", nsplit=nsplit, reference="rest", use_dataset_id=True,
                        formats=("png",), verbose=False)
    first = run_validate(sm_output, tmp_path / "chunk0", nsplit=nsplit, use_dataset_id=True, formats=(),
                         verbose=False)
    # the same tests in the same layout, so every reader of pvalues.json works on both
    written = _strict_json(tmp_path / "rest" / "pvalues.json")
    assert _leaf_paths(written) == _leaf_paths(first.pvalues) and written == rest.pvalues
    assert rest.reference == "rest" and "rest of the output" in rest.summary()

    rows = _all_rows(sm_output)
    b = chunk_bounds(len(rows), nsplit)
    tau_type = ak.to_numpy(rows["tauType"])
    edges = np.linspace(0.0, 1000.0, 101)
    for code, name in ((2, "tau"), (3, "jet")):
        pt = ak.to_numpy(rows["tau_pt"]).astype(np.float64)
        in_type = tau_type == code
        leaf = rest.pvalues["tauType"][name]["tau_pt"]
        for k in range(nsplit):
            in_chunk = np.zeros(len(rows), bool)
            in_chunk[b[k] : b[k + 1]] = True
            mine, others = pt[in_type & in_chunk], pt[in_type & ~in_chunk]
            assert leaf["pvalues_ks"][k] == pytest.approx(stats.ks_2samp(mine, others).pvalue, rel=1e-9)
            hist = [np.bincount(np.searchsorted(edges, x, side="right"), minlength=102) for x in (mine, others)]
            assert leaf["pvalues"][k] == pytest.approx(chi2_test(*hist).pvalue, rel=1e-9)
    assert rest.pvalues["tauType"]["pvalues"][0] < 1.0  # chunk 0 is tested too, not trivially 1
    img = matplotlib.image.imread(tmp_path / "rest" / "plots" / "tauType_tau_tau_pt.png")
    assert img[..., :3].std() > 0.05
    with pytest.raises(ConfigError, match="reference"):
        run_validate(sm_output, tmp_path / "x", reference="chunk1", formats=(), verbose=False)


def test_reference_rest_finds_the_biased_chunk(sm_output: Path, tmp_path: Path) -> None:
    nsplit = 5
    biased = _biased_copy(sm_output, tmp_path / "biased", nsplit, relabel_mu_in=None)
    r = run_validate(biased, tmp_path / "v", nsplit=nsplit, reference="rest", pvthreshold=1e-3, formats=(),
                     verbose=False)
    failed = {(f.path, f.test): f.chunks for f in r.failed}
    for test in ("chi2", "ks"):
        assert 3 in failed.get(("sampleType/MC/tau_pt", test), []), failed
        leaf = r.pvalues["sampleType"]["MC"]["tau_pt"]["pvalues" if test == "chi2" else "pvalues_ks"]
        assert int(np.argmin(leaf)) == 3
    # every composition test passes: pT scaling moves no tau between categories
    assert not [f for f in r.failed if f.path.split("/")[-1] not in ("tau_pt", "tau_eta")]
    # with 5 chunks the rest of every other chunk holds a quarter of the biased taus, so other
    # chunks may fail too; the biased one stands out in every failing test
    for (path, test), _ in failed.items():
        node = r.pvalues
        for key in path.split("/"):
            node = node[key]
        ps = np.array(node["pvalues" if test == "chi2" else "pvalues_ks"], dtype=float)
        assert int(np.argmin(ps)) == 3 and ps[3] < np.delete(ps, 3).min() ** 3, (path, test, ps)


def test_pvalue_distribution_fair_vs_biased(sm_output: Path, tmp_path: Path) -> None:
    """A fair split's p-values (each chunk against the rest) are compatible with uniform; one
    biased chunk out of 10 makes small p-values too frequent. The figure shows it."""
    from scipy import stats

    fair = run_validate(sm_output, tmp_path / "fair", nsplit=10, reference="rest", formats=("png",), verbose=False)
    assert len(fair.tested_pvalues) > 100
    assert fair.uniformity_pvalue == pytest.approx(stats.kstest(fair.tested_pvalues, "uniform").pvalue)
    assert fair.uniformity_pvalue > 1e-3
    summary = _strict_json(tmp_path / "fair" / "validation_summary.json")
    assert summary["reference"] == "rest" and summary["uniformity_pvalue"] == pytest.approx(fair.uniformity_pvalue)
    assert "KS p =" in fair.summary() and "indicative" not in fair.summary()
    img = matplotlib.image.imread(tmp_path / "fair" / "plots" / "pvalue_distribution.png")
    assert img.shape[0] > 300 and img[..., :3].std() > 0.05

    biased = _biased_copy(sm_output, tmp_path / "biased", 10, relabel_mu_in=None)
    bad = run_validate(biased, tmp_path / "bad", nsplit=10, reference="rest", formats=(), verbose=False)
    assert bad.uniformity_pvalue < 1e-4
    first = run_validate(sm_output, tmp_path / "chunk0", nsplit=10, formats=(), verbose=False)
    assert "indicative only" in first.summary()  # correlated p-values against chunk 0
