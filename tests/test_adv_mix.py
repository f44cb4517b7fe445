"""Mix: plan, exact composition per batch, disjoint outputs, labels and weights, shuffling,
determinism (twice, across chunk sizes), error messages, the mixture plot."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import awkward as ak
import correctionlib
import numpy as np
import pytest
from conftest import MIX_AVAILABLE, MIX_EDGES, write_mix_inputs

from taucoffea.adversarial.contributions import DEFAULT_CONFIG
from taucoffea.algorithms.mixing import plan_mix, row_destinations
from taucoffea.algorithms.reweight import WEIGHT_CORRECTION
from taucoffea.errors import ConfigError, InputError, OutputExistsError
from taucoffea.execution.config import ExecutorConfig
from taucoffea.stages.mix import run_mix

ITER = ExecutorConfig(executor="iterative", progress=False)
EDGES = MIX_EDGES
AVAILABLE = MIX_AVAILABLE
COMP = DEFAULT_CONFIG.composition()


# ------------------------------------------------------------------------------ plan


def test_plan_defaults_and_errors() -> None:
    plan = plan_mix(AVAILABLE, COMP)
    assert sum(plan.n_batches) == 12 and plan.n_batches == (7, 5)  # 12 · 1125/1875 = 7.2
    assert plan.batch_size == 100 and plan.needed("W_jets") == 60
    assert plan_mix(AVAILABLE, COMP, n_trainval=4).n_batches == (4, 8)
    assert plan_mix(AVAILABLE, COMP, n_eval=2).n_batches == (10, 2)
    assert plan_mix(AVAILABLE, COMP, n_trainval=3, n_eval=3).n_batches == (3, 3)
    with pytest.raises(InputError, match=r"contribution 'W_jets' runs out: 13 batches .* need 65 taus, only 62"):
        plan_mix(AVAILABLE, COMP, n_trainval=8, n_eval=5)
    with pytest.raises(InputError, match="contribution 'DY_muons' runs out: it has 1 taus for 1 per batch"):
        plan_mix({**AVAILABLE, "DY_muons": 1}, COMP)
    with pytest.raises(ConfigError, match="train/val batches"):
        plan_mix(AVAILABLE, COMP, n_trainval=0)


def test_row_destinations_fill_every_slot_once() -> None:
    plan = plan_mix(AVAILABLE, COMP, n_trainval=3, n_eval=2)
    seen = {0: [], 1: []}
    for name in plan.names:
        rows = np.arange(AVAILABLE[name])
        out, pos = row_destinations(plan, name, rows, seed=4)
        k = COMP[name]
        # rows in input order: the first 3k to train/val, the next 2k to eval, the rest unused
        assert np.all(out[: 3 * k] == 0) and np.all(out[3 * k : 5 * k] == 1) and np.all(out[5 * k :] == -1)
        for o in (0, 1):
            seen[o].append(pos[out == o])
            assert np.array_equal(np.sort(pos[out == o] // 100), np.repeat(np.arange(plan.n_batches[o]), k))
    for o in (0, 1):
        allpos = np.sort(np.concatenate(seen[o]))
        np.testing.assert_array_equal(allpos, np.arange(plan.n_batches[o] * 100))
    # chunking cannot change a row's place
    out_a, pos_a = row_destinations(plan, "W_jets", np.arange(7, 19), seed=4)
    out_b, pos_b = row_destinations(plan, "W_jets", np.arange(0, 62), seed=4)
    np.testing.assert_array_equal(pos_a, pos_b[7:19])


# ------------------------------------------------------------------------------ stage


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mix_inputs(tmp_path_factory.mktemp("mix"))


def _mix(inputs: Path, out: Path, **kw) -> tuple:
    res = run_mix(inputs / "drop", out, weights=inputs / "weights" / "adversarial_weights.json", pt_edges=EDGES,
                  executor=ITER, **kw)
    return res, ak.from_parquet(res.outputs["trainval"]), ak.from_parquet(res.outputs["eval"])


def test_mixture(inputs: Path, tmp_path: Path) -> None:
    res, tv, ev = _mix(inputs, tmp_path / "m", seed=3, chunksize=40)
    assert res.plan.n_batches == (7, 5)
    assert len(tv) == 700 and len(ev) == 500
    ids = {c.name: c.dataset_id for c in DEFAULT_CONFIG.contributions}
    for rows, nb in ((tv, 7), (ev, 5)):
        did = ak.to_numpy(rows.dataset_id)
        for b in range(nb):  # exact composition in every batch of 100
            counts = Counter(did[b * 100 : (b + 1) * 100].tolist())
            assert counts == {ids[n]: k for n, k in COMP.items()}
        # labels and types as specified
        label, tau_type = ak.to_numpy(rows.adv_label), ak.to_numpy(rows.tauType)
        np.testing.assert_array_equal(label, (did == 0).astype(np.int32))
        np.testing.assert_array_equal(tau_type == 8, did == 0)
        np.testing.assert_array_equal(tau_type[did != 0], ak.to_numpy(rows.mytauType)[did != 0])
        # weights: the correctionlib values (float32), data weight 1
        corr = correctionlib.CorrectionSet.from_file(str(inputs / "weights" / "adversarial_weights.json"))[WEIGHT_CORRECTION]
        want = corr.evaluate(did.astype(np.int64), ak.to_numpy(rows.tau_pt).astype(np.float64)).astype(np.float32)
        np.testing.assert_array_equal(ak.to_numpy(rows.adv_weight), want)
        assert np.all(ak.to_numpy(rows.adv_weight)[did == 0] == 1.0) and np.all(want > 0)
        assert rows.fields[:3] == ["evt", "sampleType", "tauType"] and rows.fields[-2:] == ["adv_label", "adv_weight"]
        assert ak.all(ak.num(rows.pfCand_pt) == 3)
        # shuffled inside batches: data is not simply the first 50 rows
        assert not np.all(did[:50] == 0)
    # disjoint, and rows taken in input order: train/val first, then eval
    evt_tv, evt_ev = set(ak.to_numpy(tv.evt).tolist()), set(ak.to_numpy(ev.evt).tolist())
    assert not evt_tv & evt_ev
    for k, c in enumerate(DEFAULT_CONFIG.contributions):
        n = COMP[c.name]
        base = 1_000_000 * k
        assert {e - base for e in evt_tv if base <= e < base + 1_000_000} == set(range(7 * n))
        assert {e - base for e in evt_ev if base <= e < base + 1_000_000} == set(range(7 * n, 12 * n))
    assert res.closure["trainval"]["data_weight"] == 350.0


def test_deterministic_twice_and_across_chunk_sizes(inputs: Path, tmp_path: Path) -> None:
    a, _, _ = _mix(inputs, tmp_path / "a", seed=5, chunksize=25)
    b, _, _ = _mix(inputs, tmp_path / "b", seed=5, chunksize=25)
    c, _, _ = _mix(inputs, tmp_path / "c", seed=5, chunksize=100_000)
    d, tv_d, _ = _mix(inputs, tmp_path / "d", seed=6)
    for o in ("trainval", "eval"):
        assert a.outputs[o].read_bytes() == b.outputs[o].read_bytes() == c.outputs[o].read_bytes()
    assert a.outputs["trainval"].read_bytes() != d.outputs["trainval"].read_bytes()  # the seed matters
    tv_a = ak.from_parquet(a.outputs["trainval"])
    assert sorted(ak.to_numpy(tv_a.evt).tolist()) == sorted(ak.to_numpy(tv_d.evt).tolist())  # same rows, other order


def test_errors(inputs: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"contribution 'W_jets' runs out: 20 batches"):
        _mix(inputs, tmp_path / "x", n_trainval=10, n_eval=10)
    with pytest.raises(ConfigError, match="derived for composition"):
        _mix(inputs, tmp_path / "x", composition="data=40")
    with pytest.raises(InputError, match="does not exist"):
        run_mix(inputs / "drop", tmp_path / "x", weights=tmp_path / "nope.json", executor=ITER)
    _mix(inputs, tmp_path / "y", n_trainval=1, n_eval=1)
    with pytest.raises(OutputExistsError):
        _mix(inputs, tmp_path / "y", n_trainval=1, n_eval=1)


def test_wrong_type_in_contribution(inputs: Path, tmp_path: Path) -> None:
    import shutil

    from taucoffea.columns.parquet import write_parquet

    bad = tmp_path / "drop"
    shutil.copytree(inputs / "drop", bad)
    path = bad / "W_jets" / "part_0.parquet"
    rows = ak.from_parquet(path)
    rows = ak.with_field(rows, ak.where(ak.local_index(rows.evt) == 3, 2, rows.mytauType), "mytauType")
    write_parquet(rows, path)
    with pytest.raises(InputError, match="contribution .W_jets. should hold tau type 3 only.*types \\[2\\]"):
        run_mix(bad, tmp_path / "m", weights=inputs / "weights" / "adversarial_weights.json", executor=ITER)


def test_plot(inputs: Path, tmp_path: Path) -> None:
    from taucoffea.plotting.adversarial_inputs import plot_adversarial_inputs

    _mix(inputs, tmp_path / "m")
    written = plot_adversarial_inputs(tmp_path, tmp_path / "plots" / "adv_inputs.png", pt_edges=EDGES)
    assert sorted(p.suffix for p in written) == [".pdf", ".png"]
    assert all(p.stat().st_size > 5000 for p in written)
    with pytest.raises(InputError, match="no adv_trainval"):
        plot_adversarial_inputs(tmp_path / "plots", tmp_path / "p2")


def _cli(module, argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return module.run(parser.parse_args(argv))


def test_cli_reweight_and_mix(inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from taucoffea.cli import mix as mix_cli
    from taucoffea.cli import reweight as reweight_cli

    common = ["--executor", "iterative", "--quiet", "--pt-bins", "30, 40, 50, 70, 100, 400"]
    assert _cli(reweight_cli, ["--input", str(inputs / "drop"), "--output", str(tmp_path / "w"), "--mode", "per-contribution", *common]) == 0
    assert "pT weights (per-contribution)" in capsys.readouterr().out
    assert _cli(mix_cli, ["--input", str(inputs / "drop"), "--output", str(tmp_path / "m"), "--weights",
                          str(tmp_path / "w" / "adversarial_weights.json"), "--n-trainval", "2", "--n-eval", "1",
                          "--exclude-columns", "^pfCand_", *common]) == 0
    out = capsys.readouterr().out
    assert "2 train/val + 1 evaluation batches" in out and "adv_eval.parquet: 100 rows" in out
    rows = ak.from_parquet(tmp_path / "m" / "adv_trainval.parquet")
    assert len(rows) == 200 and "pfCand_pt" not in rows.fields


def test_resume_from_checkpoints(inputs: Path, tmp_path: Path) -> None:
    """With a checkpoint directory the chunk parts stay, so a repeated run reuses them."""
    cfg = ITER.replace(checkpoint_dir=str(tmp_path / "ckpt"))
    kw = dict(weights=inputs / "weights" / "adversarial_weights.json", pt_edges=EDGES, executor=cfg, chunksize=30)
    a = run_mix(inputs / "drop", tmp_path / "m", **kw)
    first = a.outputs["trainval"].read_bytes()
    assert a.report.checkpoint_dir and (tmp_path / "m" / ".parts-mix").is_dir()
    b = run_mix(inputs / "drop", tmp_path / "m", overwrite=True, **kw)
    assert b.outputs["trainval"].read_bytes() == first
    assert len(b.report.completed_chunks) >= 7
