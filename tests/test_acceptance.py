"""Shuffle & merge core: rebinning, acceptance probabilities, correctionlib, expected counts."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import correctionlib
import hist
import numpy as np
import pytest
import uproot
from scipy import stats

from taucoffea.algorithms.acceptance import (
    ACCEPTANCE_CORRECTION,
    ACCEPTANCE_JSON,
    AcceptanceTable,
    _type_probabilities,
    acceptance_probability,
    compute_acceptance,
    entries_from_spectra,
    expected_by_type,
    format_expected_table,
    parse_tau_ratio,
    to_correctionlib,
    write_acceptance,
)
from taucoffea.algorithms.rebin import parse_bin_edges, rebin_hist2d
from taucoffea.algorithms.validation_stats import closure_report
from taucoffea.datagroups import DataGroup
from taucoffea.errors import ConfigError, InputError, OutputExistsError

TAU, JET = 2, 3  # TauType codes

README_PT = [20, 30, 40, 50, 60, 70, 80, 90, 100, 1000]
README_ETA = [0.0, 0.6, 1.2, 1.8, 2.4]


def _rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.Philox(key=seed))


def _fine_hist(storage: hist.storage.Storage | None = None) -> hist.Hist:
    """The reference spectra binning: 0.1 in |η| on [0, 2.5], 1 GeV in pT on [10, 5000]."""
    return hist.Hist(
        hist.axis.Regular(25, 0, 2.5, name="abs_eta"),
        hist.axis.Regular(4990, 10, 5000, name="pt"),
        storage=storage or hist.storage.Double(),
    )


# ------------------------------------------------------------------------------ rebinning


def test_rebin_reference_spectra_into_readme_binning() -> None:
    rng = _rng(1)
    n = 20000
    eta = rng.uniform(0, 2.7, n)  # some beyond the fine axis (fine overflow)
    pt = np.concatenate([rng.uniform(5, 1500, n - 100), rng.uniform(5000, 6000, 100)])
    h = _fine_hist()
    h.fill(abs_eta=eta, pt=pt)
    values, variances = rebin_hist2d(h, README_ETA, README_PT)
    assert values.shape == (len(README_ETA) + 1, len(README_PT) + 1)
    # independent binning of the raw values, flow included via infinite outer edges
    ex = np.concatenate(([-np.inf], README_ETA, [np.inf]))
    ey = np.concatenate(([-np.inf], README_PT, [np.inf]))
    direct, _, _ = np.histogram2d(eta, pt, bins=[ex, ey])
    np.testing.assert_array_equal(values, direct)
    np.testing.assert_array_equal(variances, direct)  # unweighted: Poisson variances
    assert values.sum() == n  # nothing lost: flow goes to flow


def test_rebin_flow_mapping() -> None:
    h = _fine_hist()
    # (|η|, pT, which coarse bin it must land in, with flow indices)
    points = [
        (0.3, 5.0, (1, 0)),  # fine pT underflow -> coarse pT underflow
        (0.3, 15.0, (1, 0)),  # fine inner bin below 20 GeV -> coarse underflow
        (0.3, 1500.0, (1, 10)),  # above 1000 -> overflow
        (0.3, 7000.0, (1, 10)),  # fine overflow -> overflow
        (2.45, 25.0, (5, 1)),  # fine inner bin above 2.4 -> η overflow
        (3.0, 25.0, (5, 1)),  # fine η overflow -> η overflow
        (-0.05, 25.0, (0, 1)),  # fine η underflow -> η underflow
        (1.25, 65.0, (3, 5)),
    ]
    for eta, pt, _ in points:
        h.fill(abs_eta=[eta], pt=[pt])
    values, _ = rebin_hist2d(h, README_ETA, README_PT)
    expected = np.zeros_like(values)
    for _, _, idx in points:
        expected[idx] += 1
    np.testing.assert_array_equal(values, expected)


def test_rebin_weighted_variances_and_no_flow_axes() -> None:
    h = hist.Hist(
        hist.axis.Regular(4, 0, 2, name="abs_eta", underflow=False, overflow=False),
        hist.axis.Variable([20, 30, 40, 60], name="pt"),
        storage=hist.storage.Weight(),
    )
    h.fill(abs_eta=[0.2, 0.7, 1.7], pt=[25, 35, 70], weight=[2.0, 3.0, 0.5])
    values, variances = rebin_hist2d(h, [0, 1, 2], [20, 40, 60])
    assert values.shape == (4, 4)
    assert values[1, 1] == 5.0 and variances[1, 1] == 4.0 + 9.0  # summed in quadrature
    assert values[2, 3] == 0.5 and variances[2, 3] == 0.25  # pT overflow kept


@pytest.mark.parametrize(
    ("eta", "pt", "pattern"),
    [
        (README_ETA, [20, 25.5, 100], r"pT target edge 25\.5 falls inside the input bin \[25, 26\)"),
        ([0, 0.65, 1.2], README_PT, r"\|η\| target edge 0\.65 falls inside the input bin \[0\.6, 0\.7\)"),
        ([0, 1.2, 3.0], README_PT, r"\|η\| target edge 3 is outside the input histogram range \[0, 2\.5\]"),
        (README_ETA, [5, 20, 100], r"pT target edge 5 is outside"),
        (README_ETA, [20, 100, 6000], r"pT target edge 6000 is outside"),
    ],
)
def test_rebin_incompatible_edges(eta: list[float], pt: list[float], pattern: str) -> None:
    with pytest.raises(ConfigError, match="incompatible bin edges: " + pattern):
        rebin_hist2d(_fine_hist(), eta, pt)


def test_rebin_accepts_every_tenth_edge() -> None:
    # Edges such as 1.8 are 1 ulp away from hist's 1.7999999999999998: the tolerance must absorb it.
    eta = [round(0.1 * k, 1) for k in range(26)]
    values, _ = rebin_hist2d(_fine_hist(), eta, [10, 11, 4999, 5000])
    assert values.shape == (27, 5)


def test_parse_bin_edges() -> None:
    np.testing.assert_array_equal(parse_bin_edges("20, 30 40,50"), [20, 30, 40, 50])
    with pytest.raises(ConfigError, match="strictly increasing"):
        parse_bin_edges("20, 30, 30")
    with pytest.raises(ConfigError, match="at least two edges"):
        parse_bin_edges("20")
    with pytest.raises(ConfigError, match="not a list of numbers"):
        parse_bin_edges("20, x")


# -------------------------------------------------------------- hand-made spectra & options

ETA = [0.0, 1.0, 2.0]
PT = [20.0, 40.0, 60.0, 100.0]
# inner (η row, pT column) counts, hand-picked
HAND = {
    ("A", "tau"): [[10, 20, 5], [40, 10, 3]],
    ("A", "jet"): [[100, 50, 10], [25, 100, 20]],
    ("B", "jet"): [[200, 100, 0], [50, 400, 40]],
}


def _spectrum(counts: list[list[float]]) -> hist.Hist:
    """A small fine (0.5 × 10 GeV) spectrum whose coarse-bin contents are ``counts``."""
    h = hist.Hist(
        hist.axis.Regular(4, 0, 2, name="abs_eta"),
        hist.axis.Regular(8, 20, 100, name="pt"),
        storage=hist.storage.Double(),
    )
    for i, j in itertools.product(range(2), range(3)):
        c = counts[i][j]
        if c:
            # split each count over two fine bins so the rebinning sums something
            h.fill(abs_eta=[0.25 + i, 0.75 + i], pt=[PT[j] + 5, PT[j + 1] - 5], weight=[c - c // 2, c // 2])
    return h


def _hand_entries(overrides: dict | None = None) -> dict[str, dict[str, np.ndarray]]:
    cells = dict(HAND)
    cells.update(overrides or {})
    groups = [DataGroup("A", "A.*", ".*", ("tau", "jet")), DataGroup("B", "B.*", ".*", ("jet",))]
    spectra: dict[str, dict[str, hist.Hist]] = {"A_ds": {}, "B_ds": {}}
    for (g, t), counts in cells.items():
        spectra[f"{g}_ds"][t] = _spectrum(counts)
    return entries_from_spectra(groups, {"A": ["A_ds"], "B": [("B_ds", "/x/B_ds/f.root")]}, spectra, PT, ETA)


def test_hand_computed_no_takeall_emptybin() -> None:
    t = compute_acceptance(_hand_entries(), PT, ETA, "jet:1, tau:1", enable_emptybin=True)
    assert t.groups == ("A", "B") and t.types == ("tau", "jet")
    inner = (slice(1, 3), slice(1, 4))
    # P = min(E)/E; B/jet has an empty bin -> 0, its min is 40
    np.testing.assert_allclose(t.bin_prob[0, 0][inner], [[0.3, 0.15, 0.6], [0.075, 0.3, 1.0]])
    np.testing.assert_allclose(t.bin_prob[1, 1][inner], [[0.2, 0.4, 0.0], [0.8, 0.1, 1.0]])
    np.testing.assert_allclose(t.expected_type_entries, [[18, 60], [0, 200]])
    np.testing.assert_allclose(t.total_type_entries, [18, 260])
    np.testing.assert_allclose(t.type_prob, [1.0, 18 / 260])
    assert not t.present[1, 0]
    # expected accepted: every non-empty bin of a (group, type) the same; 18 of each type
    np.testing.assert_allclose(t.expected[0, 0][inner], 3.0)
    np.testing.assert_allclose(t.expected.sum(axis=(0, 2, 3)), [18, 18])
    np.testing.assert_allclose(t.group_entries, [88 + 305, 790])


def test_hand_computed_takeall_and_last_two_bins_quirk() -> None:
    entries = _hand_entries()
    t = compute_acceptance(entries, PT, ETA, "jet:-1, tau:1", lastbin_takeall=True, lastbin_disbalance=1.0)
    # A/tau: flat region [[10, 20], [40, 10]], min 10, N = 4; last bin H = 5 + 3 = 8
    # dis = min(1, 1 * 8 / (4 * 10)) = 0.2; A/jet: min 25, H 30 -> 0.3; B/jet: min 50, H 40 -> 0.2
    np.testing.assert_allclose(t.dis_scale, [[0.2, 0.3], [1.0, 0.2]])
    np.testing.assert_allclose(t.bin_prob[0, 0][1:3, 1:3], 0.2 * np.array([[1, 0.5], [0.25, 1]]))
    np.testing.assert_array_equal(t.bin_prob[:, :, 0:3, 3][t.present], 1.0)  # take-all bin
    np.testing.assert_allclose(t.expected_type_entries, [[8 + 8, 30 + 30], [0, 40 + 40]])
    np.testing.assert_allclose(t.type_prob, [1.0, 1.0])  # single scaled type; jet is -1
    # the README guarantee: flat-region yield <= disbalance x last-bin count
    flat_yield = (t.entries * t.bin_prob)[:, :, 1:3, 1:3].sum(axis=(2, 3))
    last = t.entries[:, :, 0:3, 3].sum(axis=2)
    assert np.all(flat_yield <= 1.0 * last + 1e-9)

    legacy = compute_acceptance(
        entries, PT, ETA, "jet:-1, tau:1", lastbin_takeall=True, lastbin_disbalance=1.0, legacy_disbalance=True
    )
    # original: H over the last *two* pT bins: A/tau 20+10+5+3 = 38 -> 0.95; A/jet 50+100+10+20
    # = 180 -> 1; B/jet 100+400+0+40 = 540 -> 1
    np.testing.assert_allclose(legacy.dis_scale, [[0.95, 1.0], [1.0, 1.0]])
    legacy_yield = (legacy.entries * legacy.bin_prob)[0, 0, 1:3, 1:3].sum()
    assert legacy_yield == pytest.approx(38.0) and legacy_yield > 8.0  # guarantee broken


@pytest.mark.parametrize("takeall", [False, True])
@pytest.mark.parametrize("emptybin", [False, True])
@pytest.mark.parametrize("disbalance", [0.5, 1000.0])  # binding / not binding
@pytest.mark.parametrize("ratio", ["jet:1, tau:1", "jet:3, tau:1", "jet:-1, tau:2", "tau:-1, jet:-1"])
def test_option_matrix_invariants(takeall: bool, emptybin: bool, disbalance: float, ratio: str) -> None:
    # with emptybin, add an empty bin inside the flat region of B/jet
    over = {("B", "jet"): [[200, 0, 7], [50, 400, 40]]} if emptybin else {("B", "jet"): [[200, 100, 7], [50, 400, 40]]}
    entries = _hand_entries(over)
    t = compute_acceptance(
        entries, PT, ETA, ratio,
        lastbin_takeall=takeall, lastbin_disbalance=disbalance, enable_emptybin=emptybin,
    )
    r = parse_tau_ratio(ratio)
    n_flat = 2 if takeall else 3
    flat = (slice(1, 3), slice(1, 1 + n_flat))
    for g, i in zip(*np.nonzero(t.present), strict=True):
        E, P = t.entries[g, i], t.bin_prob[g, i]
        y = (E * P)[flat]
        nonempty = E[flat] > 0
        # flat: every non-empty bin yields min(E) * dis_scale; empty bins 0
        np.testing.assert_allclose(y[nonempty], E[flat][nonempty].min() * t.dis_scale[g, i])
        assert np.all(P[flat][~nonempty] == 0)
        assert P.max() == pytest.approx(1.0)
        assert np.all((P >= 0) & (P <= 1))
        if takeall:
            assert np.all(P[0:3, 3] == 1.0)
            h = E[0:3, 3].sum()
            assert y.sum() <= disbalance * h * (1 + 1e-12)
            if t.dis_scale[g, i] < 1:  # binding: at the bound, less the share of empty bins
                assert y.sum() == pytest.approx(disbalance * h * nonempty.mean())
            if disbalance == 1000.0:
                assert t.dis_scale[g, i] == 1.0
        else:
            assert t.dis_scale[g, i] == 1.0
            assert np.all(P[:, 0] == 0) and np.all(P[:, -1] == 0)
    # type ratio: accepted totals proportional to the requested ratio among scaled types
    totals = dict(zip(t.types, t.expected.sum(axis=(0, 2, 3)), strict=True))
    scaled = [x for x in t.types if r[x] != -1]
    for x in t.types:
        if r[x] == -1:
            assert t.type_prob[t.types.index(x)] == 1.0
            assert totals[x] == pytest.approx(t.total_type_entries[t.types.index(x)])
    if scaled:
        assert max(t.type_prob[t.types.index(x)] for x in scaled) == pytest.approx(1.0)
        for a, b in itertools.combinations(scaled, 2):
            assert totals[a] / totals[b] == pytest.approx(r[a] / r[b])
    # per-tau acceptance at bin centres is p_type * P
    for g in t.groups:
        gi = t.groups.index(g)
        for i, name in enumerate(t.types):
            code = {"tau": TAU, "jet": JET}[name]
            ce, cp = np.meshgrid([0.5, 1.5], [30.0, 50.0, 80.0], indexing="ij")
            got = acceptance_probability(t, g, code, ce, cp)
            want = t.type_prob[i] * t.bin_prob[gi, i, 1:3, 1:4] if t.present[gi, i] else np.zeros((2, 3))
            np.testing.assert_allclose(got, want, rtol=1e-15)


def test_disbalance_warning_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        compute_acceptance(_hand_entries(), PT, ETA, "jet:1, tau:1", lastbin_takeall=True, lastbin_disbalance=1.0)
    assert "group 'A', type 'tau': flat region scaled by 0.2" in caplog.text


# ----------------------------------------------------------------------------- errors


def test_error_empty_bin_without_emptybin() -> None:
    with pytest.raises(ConfigError, match=r"group 'B', type 'jet': empty bin \|η\| in \[0, 1\), pT in \[60, 100\)"):
        compute_acceptance(_hand_entries(), PT, ETA, "jet:1, tau:1")
    # with takeall the empty bin is in the take-all region: fine
    compute_acceptance(_hand_entries(), PT, ETA, "jet:1, tau:1", lastbin_takeall=True)


def test_error_all_bins_empty() -> None:
    entries = _hand_entries({("A", "tau"): [[0, 0, 5], [0, 0, 3]]})
    with pytest.raises(ConfigError, match=r"group 'A', type 'tau': every .* bin below the last pT bin is empty"):
        compute_acceptance(entries, PT, ETA, "jet:1, tau:1", lastbin_takeall=True, enable_emptybin=True)
    entries = _hand_entries({("A", "tau"): [[0, 0, 0], [0, 0, 0]]})
    with pytest.raises(ConfigError, match=r"group 'A', type 'tau': every \(\|η\|, pT\) bin is empty"):
        compute_acceptance(entries, PT, ETA, "jet:1, tau:1", enable_emptybin=True)


def test_error_last_bin_empty_with_takeall() -> None:
    entries = _hand_entries({("A", "jet"): [[100, 50, 0], [25, 100, 0]]})
    with pytest.raises(ConfigError, match=r"group 'A', type 'jet': the last pT bin \[60, 100\) is empty.*H == 0"):
        compute_acceptance(entries, PT, ETA, "jet:1, tau:1", lastbin_takeall=True)


def test_error_ratio_type_not_in_groups_and_group_type_not_in_ratio() -> None:
    with pytest.raises(ConfigError, match=r"tau type 'mu' is in the tau ratio but no data group keeps it"):
        compute_acceptance(_hand_entries(), PT, ETA, "jet:1, tau:1, mu:1", enable_emptybin=True)
    with pytest.raises(ConfigError, match=r"tau type 'jet' is kept by group\(s\) A, B but is missing from the tau ratio"):
        compute_acceptance(_hand_entries(), PT, ETA, "tau:1", enable_emptybin=True)


@pytest.mark.parametrize(
    ("ratio", "pattern"),
    [
        ("jet:-2, tau:1", r"jet:-2 is invalid; use a number >= 0, or -1"),
        ("jet:1, tau:1, jet:2", "type 'jet' given twice"),
        ("jet:1, tauon:1", "unknown tau type 'tauon'"),
        ("jet:1, tau", "entry 'tau' is not 'type:ratio'"),
        ("jet:x, tau:1", r"jet:'x' is not a number"),
        ("jet:1,, tau:1", "empty entry"),
        ("jet:nan, tau:1", "invalid"),
    ],
)
def test_error_tau_ratio(ratio: str, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        compute_acceptance(_hand_entries(), PT, ETA, ratio, enable_emptybin=True)


def test_parse_tau_ratio() -> None:
    assert parse_tau_ratio("jet:1, e:1, mu:1, tau:1") == {"jet": 1.0, "e": 1.0, "mu": 1.0, "tau": 1.0}
    assert parse_tau_ratio({"tau": -1, "jet": 0.5}) == {"tau": -1.0, "jet": 0.5}


def test_error_type_probability_edge_cases() -> None:
    # A_t == 0 cannot come out of non-empty spectra (min(E) > 0), so check the guard directly
    with pytest.raises(ConfigError, match=r"no taus of type 'jet' .*A_t == 0"):
        _type_probabilities(("tau", "jet"), {"tau": 1.0, "jet": -1.0}, np.array([5.0, 0.0]))
    with pytest.raises(ConfigError, match="every ratio other than -1 is 0"):
        compute_acceptance(_hand_entries(), PT, ETA, "jet:0, tau:0", enable_emptybin=True)
    # ratio 0 for one type: that type is dropped entirely
    t = compute_acceptance(_hand_entries(), PT, ETA, "jet:0, tau:1", enable_emptybin=True)
    np.testing.assert_allclose(t.type_prob, [1.0, 0.0])


def test_error_bad_inputs_and_options() -> None:
    good = _hand_entries()
    with pytest.raises(ConfigError, match=r"shape \(3, 3\); expected \(4, 5\)"):
        compute_acceptance({"A": {"tau": np.ones((3, 3))}}, PT, ETA, "tau:1")
    with pytest.raises(InputError, match="negative or non-finite"):
        compute_acceptance({"A": {"tau": -np.ones((4, 5))}}, PT, ETA, "tau:1")
    with pytest.raises(ConfigError, match="at least two pT bins"):
        compute_acceptance({"A": {"tau": np.ones((4, 3))}}, [20, 100], ETA, "tau:1", lastbin_takeall=True)
    with pytest.raises(ConfigError, match="lastbin_disbalance=0"):
        compute_acceptance(good, PT, ETA, "jet:1, tau:1", lastbin_takeall=True, lastbin_disbalance=0)
    with pytest.raises(ConfigError, match="must start at >= 0"):
        compute_acceptance({"A": {"tau": np.ones((4, 5))}}, PT, [-1, 0, 1], "tau:1")
    with pytest.raises(ConfigError, match="invalid data group name '../A'"):
        compute_acceptance({"../A": {"tau": np.ones((4, 5))}}, PT, ETA, "tau:1")
    with pytest.raises(ConfigError, match="keeps no tau type"):
        compute_acceptance({"A": {}}, PT, ETA, "tau:1")
    with pytest.raises(ConfigError, match="unknown data group 'C'"):
        acceptance_probability(compute_acceptance(good, PT, ETA, "jet:1, tau:1", enable_emptybin=True), "C", 2, 0.5, 30)


def test_entries_from_spectra_sums_datasets_and_missing_types() -> None:
    groups = [DataGroup("A", "A.*", ".*", ("tau", "jet"))]
    s1 = {"tau": _spectrum([[1, 2, 3], [4, 5, 6]])}
    s2 = {"tau": _spectrum([[10, 0, 0], [0, 0, 1]]), "jet": _spectrum([[7, 7, 7], [7, 7, 7]])}
    out = entries_from_spectra(groups, {"A": ["d1", "d2"]}, {"d1": s1, "d2": s2}, PT, ETA)
    np.testing.assert_array_equal(out["A"]["tau"][1:3, 1:4], [[11, 2, 3], [4, 5, 7]])
    np.testing.assert_array_equal(out["A"]["jet"][1:3, 1:4], 7)  # d1 had no jet histogram: 0 there
    with pytest.raises(InputError, match="no spectra for dataset 'd3' of data group 'A'"):
        entries_from_spectra(groups, {"A": ["d1", "d3"]}, {"d1": s1}, PT, ETA)


# ---------------------------------------------------------------- lookup & correctionlib


def _table(**kw: object) -> AcceptanceTable:
    opts: dict = {"lastbin_takeall": True, "lastbin_disbalance": 0.5, "enable_emptybin": True}
    opts.update(kw)
    return compute_acceptance(_hand_entries(), PT, ETA, "jet:2, tau:1", **opts)


@pytest.mark.parametrize("takeall", [False, True])
def test_correctionlib_agrees_with_numpy(tmp_path: Path, takeall: bool) -> None:
    t = _table(lastbin_takeall=takeall)
    rng = _rng(7)
    n = 4000
    eta = rng.uniform(-0.2, 2.3, n)
    pt = rng.uniform(10, 120, n)
    # exact edges: lower pT edge (rejected), threshold (take-all), upper edges (rejected)
    special_pt = [20.0, 40.0, 60.0, 100.0, np.nextafter(20.0, 200), np.nextafter(100.0, 0)]
    special_eta = [0.0, 1.0, 2.0, np.nextafter(2.0, 0), -0.0]
    sp, se = np.meshgrid(special_pt, special_eta)
    pt = np.concatenate([pt, sp.ravel()])
    eta = np.concatenate([eta, se.ravel()])
    path = tmp_path / "acc.json"
    path.write_text(to_correctionlib(t).model_dump_json(exclude_unset=True))
    from_file = correctionlib.CorrectionSet.from_file(str(path))[ACCEPTANCE_CORRECTION]
    in_memory = to_correctionlib(t).to_evaluator()[ACCEPTANCE_CORRECTION]
    for g in t.groups:
        for code in range(9):
            mine = acceptance_probability(t, g, code, eta, pt)
            for ev in (from_file, in_memory):
                np.testing.assert_allclose(ev.evaluate(g, code, eta, pt), mine, rtol=1e-12, atol=0)
    # boundaries, explicitly
    a = lambda e, p: float(acceptance_probability(t, "A", TAU, e, p))  # noqa: E731
    p_tau = t.type_prob[0]
    assert a(0.5, 20.0) == 0.0 and a(0.5, 100.0) == 0.0 and a(2.0, 30.0) == 0.0 and a(-0.1, 30) == 0.0
    assert a(0.5, np.nextafter(20.0, 200)) == pytest.approx(p_tau * t.bin_prob[0, 0, 1, 1])
    assert a(0.5, 60.0) == pytest.approx(p_tau * (1.0 if takeall else t.bin_prob[0, 0, 1, 3]))
    assert from_file.evaluate("A", TAU, 0.5, 20.0) == 0.0
    with pytest.raises(Exception):  # noqa: B017 - correctionlib's own error for a missing key
        from_file.evaluate("C", TAU, 0.5, 30.0)
    assert from_file.evaluate("B", TAU, 0.5, 30.0) == 0.0  # B does not keep tau


def test_eta_bins_not_starting_at_zero() -> None:
    # no lower |η| cut in the take-all bin: |η| < eta_bins[0] is accepted there, 0 elsewhere
    eta = [0.5, 1.0, 2.0]
    entries = {"A": {"tau": np.pad(np.array([[10.0, 20, 5], [40, 10, 3]]), 1)}}
    entries["A"]["tau"][0, 3] = 4.0  # taus with |η| < 0.5 in the last pT bin
    t = compute_acceptance(entries, PT, eta, "tau:1", lastbin_takeall=True, lastbin_disbalance=100)
    assert acceptance_probability(t, "A", TAU, 0.2, 80.0) == 1.0
    assert acceptance_probability(t, "A", TAU, 0.2, 30.0) == 0.0
    assert t.expected_type_entries[0, 0] == pytest.approx(4 * 10 + 8 + 4)
    ev = to_correctionlib(t).to_evaluator()[ACCEPTANCE_CORRECTION]
    e = np.array([0.0, 0.2, 0.49, 0.5, 0.7, 1.5, 1.99, 2.0, -0.1])
    for pt in (30.0, 50.0, 80.0, 20.0):
        np.testing.assert_allclose(ev.evaluate("A", TAU, e, np.full(e.size, pt)), acceptance_probability(t, "A", TAU, e, pt))


def test_acceptance_probability_vectorised_types() -> None:
    t = _table()
    types = np.array([TAU, JET, 0, 8, -1, 42, TAU])
    got = acceptance_probability(t, 0, types, 0.5, 30.0)
    p = t.type_prob[0] * t.bin_prob[0, 0, 1, 1], t.type_prob[1] * t.bin_prob[0, 1, 1, 1]
    np.testing.assert_allclose(got, [p[0], p[1], 0, 0, 0, 0, p[0]])
    assert not np.shares_memory(got, t.acceptance)
    with pytest.raises(ValueError):
        t.acceptance[0, 0, 1, 1] = 0.5  # read-only


def test_write_acceptance_roundtrip(tmp_path: Path) -> None:
    t = _table()
    written = write_acceptance(t, tmp_path)
    assert set(written) == {ACCEPTANCE_JSON, "A.root", "A_n.root", "B.root", "B_n.root", "expected_counts.txt"}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(written)  # no temporaries left
    cset = correctionlib.CorrectionSet.from_file(str(written[ACCEPTANCE_JSON]))
    assert cset[ACCEPTANCE_CORRECTION].evaluate("A", TAU, 0.5, 30.0) == pytest.approx(
        float(acceptance_probability(t, "A", TAU, 0.5, 30.0)), rel=1e-12
    )
    with uproot.open(written["A.root"]) as f:
        assert set(f.keys(cycle=False)) == {"tau_prob", "jet_prob"}
        h = f["tau_prob"]
        np.testing.assert_allclose(h.axis(0).edges(), ETA)
        np.testing.assert_allclose(h.axis(1).edges(), PT[:-1])  # take-all: all but the last bin
        np.testing.assert_allclose(h.values(), t.bin_prob[0, 0, 1:3, 1:3])
    with uproot.open(written["B_n.root"]) as f:
        assert set(f.keys(cycle=False)) == {"jet_entries"}
        np.testing.assert_array_equal(f["jet_entries"].values(flow=True), t.entries[1, 1])
        np.testing.assert_allclose(f["jet_entries"].axis(1).edges(), PT)
    with pytest.raises(OutputExistsError):
        write_acceptance(t, tmp_path)
    write_acceptance(t, tmp_path, overwrite=True)


def test_format_expected_table() -> None:
    t = compute_acceptance(_hand_entries(), PT, ETA, "jet:1, tau:1", enable_emptybin=True)
    text = format_expected_table(t)
    lines = text.splitlines()
    assert lines[0].split() == ["group", "tau", "jet", "total"]
    row_a = next(line for line in lines if line.startswith("A "))
    assert row_a.split() == ["A", "18.0", f"{60 * 18 / 260:.1f}", f"{18 + 60 * 18 / 260:.1f}"]
    row_b = next(line for line in lines if line.startswith("B "))
    assert row_b.split()[1] == "-"
    total = next(line for line in lines if line.startswith("total"))
    assert total.split()[1:] == ["18.0", "18.0", "36.0"]


# ------------------------------------------------------------------ Monte Carlo closure


def test_expected_counts_by_monte_carlo_sampling() -> None:
    """Accept every tau of the spectra with its probability; counts per bin must match E·p·P."""
    rng = _rng(2024)
    pt_bins = [20, 30, 40, 60, 100, 300]
    eta_bins = [0.0, 0.6, 1.2, 2.4]
    # (group, type, n, pT slope, |η| spread): different shapes per group and type
    sources = [("DY", "tau", 40000, 40.0, 1.2), ("DY", "jet", 30000, 25.0, 2.0),
               ("QCD", "jet", 120000, 15.0, 2.0), ("TT", "tau", 15000, 80.0, 1.0),
               ("TT", "jet", 20000, 50.0, 1.6)]
    taus = {}
    spectra: dict[str, dict[str, hist.Hist]] = {}
    for g, t, n, slope, spread in sources:
        pt = 15 + rng.exponential(slope, n)
        eta = np.abs(rng.normal(0, spread, n))
        h = _fine_hist()
        h.fill(abs_eta=eta, pt=pt)
        spectra.setdefault(g, {})[t] = h
        taus[(g, t)] = (eta, pt)
    groups = [DataGroup(g, g, ".*", tuple(t for gg, t, *_ in sources if gg == g)) for g in ("DY", "QCD", "TT")]
    entries = entries_from_spectra(groups, {g.name: [g.name] for g in groups}, spectra, pt_bins, eta_bins)
    table = compute_acceptance(
        entries, pt_bins, eta_bins, "jet:2, tau:1",
        lastbin_takeall=True, lastbin_disbalance=3.0, enable_emptybin=True,
    )
    ex = np.concatenate(([-np.inf], eta_bins, [np.inf]))
    ey = np.concatenate(([-np.inf], pt_bins, [np.inf]))
    observed = {t: np.zeros_like(table.expected[0, 0]) for t in table.types}
    code = {"tau": TAU, "jet": JET}
    for (g, t), (eta, pt) in taus.items():
        prob = acceptance_probability(table, g, code[t], eta, pt)
        keep = rng.random(eta.size) < prob
        counts, _, _ = np.histogram2d(eta[keep], pt[keep], bins=[ex, ey])
        observed[t] += counts
    mean, var = expected_by_type(table)
    report = closure_report(observed, mean, var)
    for t, r in report.items():
        assert r.ndf > 10
        assert r.pvalue > 0.01, (t, r.chi2, r.ndf)
        assert np.all(np.abs(r.pulls) < 5)
    # totals follow the requested ratio jet:tau = 2:1
    assert report["jet"].n_expected / report["tau"].n_expected == pytest.approx(2.0)
    # Poisson variances are larger than binomial ones: the test is still passed, less sharply
    assert closure_report(observed, mean)["jet"].pvalue > 0.01
    # a wrong expectation (5 % too many) is caught
    wrong = {t: m * 1.05 for t, m in mean.items()}
    assert min(r.pvalue for r in closure_report(observed, wrong, var).values()) < 1e-3
    # and the sum over bins agrees with the binomial total at the few-sigma level
    for t in table.types:
        z = (observed[t].sum() - mean[t].sum()) / np.sqrt(var[t].sum())
        assert abs(stats.norm.sf(abs(z))) > 1e-4
