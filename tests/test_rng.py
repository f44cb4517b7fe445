"""Counter-based RNG: chunking-invariant, stream-separated, uniform."""

from __future__ import annotations

import numpy as np
from scipy import stats

from taucoffea.algorithms.rng import entry_uniforms, entry_words


def test_any_split_gives_the_same_words():
    whole = entry_words(7, "stage", "DY", "f0", 0, 5000)
    rng = np.random.default_rng(0)
    cuts = np.sort(rng.choice(np.arange(1, 5000), 17, replace=False))
    pieces = [entry_words(7, "stage", "DY", "f0", a, b) for a, b in zip([0, *cuts], [*cuts, 5000], strict=True)]
    np.testing.assert_array_equal(np.concatenate(pieces), whole)


def test_streams_differ_by_every_key_part():
    base = entry_words(7, "stage", "DY", "f0", 0, 100)
    for args in ((8, "stage", "DY", "f0"), (7, "other", "DY", "f0"), (7, "stage", "TT", "f0"), (7, "stage", "DY", "f1")):
        assert not np.array_equal(entry_words(*args, 0, 100), base)


def test_uniform_and_independent_columns():
    u = entry_uniforms(3, "s", "d", "f", 0, 200_000)
    assert u.min() >= 0.0 and u.max() < 1.0
    for col in range(4):
        assert stats.kstest(u[:, col], "uniform").pvalue > 0.001
    r = np.corrcoef(u.T)[np.triu_indices(4, 1)]
    assert np.all(np.abs(r) < 5 / np.sqrt(len(u)))
