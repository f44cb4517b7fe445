"""The compiled per-feature pass agrees with the numpy reference; bulk parquet row reads."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from taucoffea.algorithms.feature_stats import segment_statistics
from taucoffea.algorithms.scaling import Moments, QuantileHist
from taucoffea.columns.bulk import read_parquet_rows
from taucoffea.columns.parquet import flat_column
from taucoffea.errors import InputError


def _reference(x: np.ndarray) -> tuple[Moments, QuantileHist, np.ndarray | None]:
    x = np.asarray(x, dtype=np.float64)
    finite = np.isfinite(x)
    bad = None
    if not finite.all():
        b = x[~finite]
        bad = np.array([np.isnan(b).sum(), (b == np.inf).sum(), (b == -np.inf).sum()])
    return Moments.from_values(x[finite], finite=True), QuantileHist.from_values(x[finite], finite=True), bad


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.bool_, np.uint8])
def test_kernel_matches_numpy_reference_on_gathered_segments(dtype):
    rng = np.random.default_rng(4)
    raw = rng.normal(1e3, 25.0, 50_000)
    if dtype == np.bool_:
        values = raw > 1e3
    else:
        values = raw.astype(dtype) if np.dtype(dtype).kind == "f" else np.round(raw).astype(dtype)
    idx = np.concatenate([np.flatnonzero(raw < 990), np.flatnonzero(raw > 1010)])
    n_first = int((raw < 990).sum())
    stats = segment_statistics(values, idx, [(0, n_first), (n_first, idx.size)])
    for (m, h, bad), part in zip(stats, (idx[:n_first], idx[n_first:]), strict=True):
        rm, rh, rbad = _reference(values[part])
        assert bad is None and rbad is None
        assert h == rh  # identical bins, counts, per-bin min and max
        assert m.n == rm.n
        assert m.mean == pytest.approx(rm.mean, rel=1e-14)
        assert m.std == pytest.approx(rm.std, rel=1e-10)
        x = values[part].astype(np.float64)
        assert m.std == pytest.approx(np.std(x), rel=1e-10)


def test_nonfinite_values_are_counted_and_left_out():
    x = np.array([1.0, np.nan, 2.0, np.inf, -np.inf, -np.inf, 3.0, np.nan, np.nan])
    [(m, h, bad)] = segment_statistics(x, None, [(0, x.size)])
    assert bad.tolist() == [3, 1, 2]
    assert (m.n, m.mean) == (3, 2.0)
    assert h.total == 3 and h.mins.min() == 1.0 and h.maxs.max() == 3.0


def test_all_nonfinite_and_empty_segments():
    x = np.array([np.nan, np.inf], dtype=np.float32)
    [(m, h, bad)] = segment_statistics(x, None, [(0, 2)])
    assert m.n == 0 and m.mean is None and h.total == 0 and bad.tolist() == [1, 1, 0]
    stats = segment_statistics(np.arange(5.0), np.zeros(0, np.int64), [(0, 0), (0, 0)])
    assert all(m.n == 0 and h.total == 0 and bad is None for m, h, bad in stats)


def test_large_mean_keeps_the_variance():
    """The sampled shift keeps Σ(x−r)² from cancelling: σ = 1e-3 on a mean of 1e9."""
    rng = np.random.default_rng(5)
    x = 1e9 + rng.normal(0.0, 1e-3, 100_000)
    [(m, _, _)] = segment_statistics(x, None, [(0, x.size)], hist=False)
    assert m.std == pytest.approx(np.std(x), rel=1e-6)


def test_sorted_input_with_far_tail_is_still_exact_enough():
    """A sample that misses a far cluster costs digits, not correctness."""
    x = np.concatenate([np.zeros(1_000_000), np.full(10, 1e6)])
    [(m, _, _)] = segment_statistics(x, None, [(0, x.size)], hist=False)
    assert m.mean == pytest.approx(np.mean(x), rel=1e-9)  # the tolerance against numpy
    assert m.std == pytest.approx(np.std(x), rel=1e-9)


def test_float64_overflow_falls_back_to_exact_sums():
    x = np.array([1e300, -1e300, 3e300, 2.0])
    [(m, h, _)] = segment_statistics(x, None, [(0, x.size)])
    ref = Moments.from_values(x)
    assert m == ref
    assert h.total == 4


def test_histograms_merge_across_calls_without_leftovers():
    """The reused scratch arrays are reset: a second call sees only its own values."""
    a = np.array([1.0, 1.0, 2.0])
    b = np.array([2.0, 5.0])
    [(_, ha, _)] = segment_statistics(a, None, [(0, 3)])
    [(_, hb, _)] = segment_statistics(b, None, [(0, 2)])
    assert ha == QuantileHist.from_values(a) and hb == QuantileHist.from_values(b)


def test_rejects_non_numeric_values():
    with pytest.raises(TypeError, match="flat numeric"):
        segment_statistics(np.array(["a", "b"]), None, [(0, 2)])


# ------------------------------------------------------------------------------- parquet rows


def _write(path, n: int, row_group: int) -> ak.Array:
    rng = np.random.default_rng(6)
    counts = rng.integers(0, 5, n)
    arr = ak.zip({"a": np.arange(n, dtype=np.float32),
                  "l": ak.unflatten(rng.normal(size=int(counts.sum())), counts)}, depth_limit=1)
    pq.write_table(ak.to_arrow_table(arr), path, row_group_size=row_group)
    return arr


@pytest.mark.parametrize(("start", "stop"), [(0, 1000), (0, 10), (95, 305), (299, 301), (900, 1000), (500, 500)])
def test_read_parquet_rows_spans_row_groups(tmp_path, start, stop):
    path = tmp_path / "f.parquet"
    arr = _write(path, 1000, row_group=100)
    table = read_parquet_rows(path, ["a", "l"], start, stop)
    assert table.num_rows == stop - start
    counts, flat = flat_column(table.column("l"), "l")
    expected = arr["l"][start:stop]
    assert counts.tolist() == ak.num(expected).tolist()
    assert np.array_equal(flat, ak.to_numpy(ak.flatten(expected)))
    none, a = flat_column(table.column("a"), "a")
    assert none is None and np.array_equal(a, np.arange(start, stop, dtype=np.float32))


def test_read_parquet_rows_names_missing_columns_and_nulls(tmp_path):
    path = tmp_path / "f.parquet"
    _write(path, 50, row_group=20)
    with pytest.raises(InputError, match=r"\['nope'\] missing in file .*f.parquet"):
        read_parquet_rows(path, ["a", "nope"], 0, 10)
    with pytest.raises(InputError, match="'x' has 1 missing"):
        flat_column(pa.chunked_array([pa.array([1.0, None])]), "x")
    with pytest.raises(InputError, match="nested deeper"):
        flat_column(pa.array([[[1.0]], [[2.0, 3.0]]]), "y")


def test_cone_labels_equal_the_numpy_cone_masks():
    from taucoffea.algorithms.feature_stats import cone_labels
    from taucoffea.algorithms.scaling import ConeDefinition, cone_masks

    rng = np.random.default_rng(7)
    n = 2_000
    counts = rng.integers(0, 30, n)
    m = int(counts.sum())
    tau_pt = rng.exponential(40.0, n).astype(np.float32)
    tau_eta = rng.uniform(-2.3, 2.3, n).astype(np.float32)
    tau_phi = rng.uniform(-np.pi, np.pi, n).astype(np.float32)
    eta = (np.repeat(tau_eta, counts) + rng.normal(0.0, 0.3, m)).astype(np.float32)
    phi = np.repeat(tau_phi, counts) + rng.normal(0.0, 0.3, m)
    phi[::7] += 2 * np.pi * rng.integers(-3, 4, phi[::7].size)  # unwrapped angles, several turns
    cone = ConeDefinition()
    labels = cone_labels(counts, tau_pt, tau_eta, tau_phi, eta, phi.astype(np.float32), cone)
    inner, outer = cone_masks(*(np.repeat(a, counts) for a in (tau_pt, tau_eta, tau_phi)), eta,
                              phi.astype(np.float32), cone)
    assert np.array_equal(labels == 1, inner) and np.array_equal(labels == 2, outer)
    assert inner.sum() > 1000 and outer.sum() > 1000 and (labels == 0).sum() > 1000
    with pytest.raises(ValueError, match="do not match"):
        cone_labels(counts[:-1], tau_pt, tau_eta, tau_phi, eta, phi, cone)


# ------------------------------------------------------------------------------- arrow rows


def test_take_rows_equals_awkward_take_for_every_layout(tmp_path):
    from taucoffea.columns.arrow_rows import take_rows

    rng = np.random.default_rng(8)
    n = 500
    counts = rng.integers(0, 6, n)
    other = rng.integers(0, 3, n)
    columns = {
        "flat": rng.normal(size=n).astype(np.float32),
        "flag": rng.integers(0, 2, n).astype(bool),
        "jag": ak.unflatten(rng.normal(size=int(counts.sum())), counts),
        "jag_same": ak.unflatten(rng.integers(0, 9, int(counts.sum())).astype(np.int32), counts),
        "jag_other": ak.unflatten(rng.normal(size=int(other.sum())).astype(np.float32), other),
        "sliced": ak.unflatten(rng.normal(size=int(counts.sum()) + 7), np.concatenate([counts, [7]]))[:n],
        "nested": ak.Array([[[float(i)]] * int(c) for i, c in enumerate(other)]),  # through awkward
    }
    index = np.concatenate([rng.choice(n, 200, replace=False), [0, n - 1]])
    table = take_rows(columns, index)
    back = ak.from_arrow(table)
    for name, col in columns.items():
        assert ak.to_list(back[name]) == ak.to_list(ak.Array(col)[index]), name
    assert str(ak.type(back["jag"])) == "202 * var * float64"  # no option types
    assert table.schema.field("jag").nullable is False
    empty = take_rows(columns, np.zeros(0, np.int64))
    assert empty.num_rows == 0 and empty.schema.names == list(columns)


@pytest.mark.parametrize("min_radius", [0.05, 0.6])  # 0.6: a signal cone wider than the outer cone
def test_cone_labels_on_the_cone_edges(min_radius):
    """Elements placed on (and one ulp around) both cone edges, along η, φ and diagonals:
    the squared-distance shortcut must hand these to hypot and agree with the numpy masks."""
    from taucoffea.algorithms.feature_stats import cone_labels
    from taucoffea.algorithms.scaling import ConeDefinition, cone_masks, signal_cone_radius

    rng = np.random.default_rng(8)
    n = 400
    cone = ConeDefinition(min_radius=min_radius)
    tau_pt = rng.uniform(5.0, 200.0, n)
    tau_eta = rng.uniform(-2.0, 2.0, n)
    tau_phi = rng.uniform(-np.pi, np.pi, n)
    radii = np.stack([signal_cone_radius(tau_pt, cone), np.full(n, cone.outer_dr)], axis=1)
    angles = rng.uniform(0, 2 * np.pi, (n, 2))
    elements = []
    for k in range(2):
        for shift in (-1, 0, 1):
            r = np.nextafter(radii[:, k], np.inf) if shift > 0 else (np.nextafter(radii[:, k], 0) if shift < 0 else radii[:, k])
            for a in (angles[:, k], np.zeros(n), np.full(n, np.pi / 2)):
                elements.append((tau_eta + r * np.cos(a), tau_phi + r * np.sin(a)))
    counts = np.full(n, len(elements))
    eta = np.stack([e for e, _ in elements], axis=1).ravel()
    phi = np.stack([p for _, p in elements], axis=1).ravel()
    labels = cone_labels(counts, tau_pt, tau_eta, tau_phi, eta, phi, cone)
    inner, outer = cone_masks(*(np.repeat(a, counts) for a in (tau_pt, tau_eta, tau_phi)), eta, phi, cone)
    assert np.array_equal(labels == 1, inner) and np.array_equal(labels == 2, outer)
    assert inner.any() and (~inner).any()
