"""``taucoffea validate``: is the shuffle & merge output a uniform mixture? (reference spec §4)

The merged files (``ShuffleMergeSpectral_<k>.parquet``, in order of ``k``) are read as one
table and split into ``nsplit`` chunks of consecutive rows exactly as the original's
RDataFrame ``Range`` split: row ``r`` of the concatenation (``N`` rows in all) belongs to chunk
``r · nsplit // N``, so chunks have equal row counts up to one. As in the original, chunk 0 is
compared with every chunk (itself included, p = 1) by
:func:`~taucoffea.algorithms.validation_stats.compare_chunks`: tau-type, sample-type, data-group
(and, opt-in, dataset) composition with χ², and the pT / η spectra within each of those
categories with χ² and/or KS. ``reference="rest"`` compares each chunk with the rest of the
output instead (same tests, same layout), which makes the p-values of a fair split independent
of one chunk's fluctuation.

Memory stays bounded: only the six or so flat columns the tests need are read (never the
jagged candidate lists), batch by batch, and only the reference chunk, the current chunk and
per-chunk histograms are held — except for KS against the rest, which keeps every tau's pT and
η once per tested variable (≈ 8 bytes × variables per tau, e.g. 240 MB for 10 M taus).

When the stage's ``acceptance/expected.json`` is found and the files are the stage's complete
output, a closure report compares the observed (type, |η|, pT) counts with the expected ones
(pulls, flatness χ²/ndf per type). That file is written by the shuffle & merge stage through
:func:`write_expected_json`, defined here next to its reader.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from scipy import stats

from taucoffea.algorithms.acceptance import AcceptanceTable, expected_by_type
from taucoffea.algorithms.validation_stats import (
    TypeClosure,
    chi2_vs_rest,
    closure_report,
    compare_chunks,
    failed_tests,
    ks_vs_rest,
    merge_pvalues,
)
from taucoffea.columns.atomic import check_output, write_text_atomic
from taucoffea.errors import ConfigError, InputError
from taucoffea.physics.tautypes import TAU_TYPE_NAMES, SampleType

__all__ = [
    "EXPECTED_JSON",
    "ETA_HIST",
    "PT_HIST",
    "REFERENCES",
    "ChunkDistribution",
    "ExpectedCounts",
    "FailedTest",
    "ValidationResult",
    "chunk_bounds",
    "find_merged_files",
    "read_expected_json",
    "run_validate",
    "write_expected_json",
]

#: Name of the expected-counts file inside the stage's ``acceptance/`` folder.
EXPECTED_JSON = "expected.json"
#: pT and η histograms of the tests: the original's binning (plus under/overflow bins).
PT_HIST = (100, 0.0, 1000.0)
ETA_HIST = (10, -2.5, 2.5)
TESTS = ("chi2", "ks")
#: What each chunk is compared with: chunk 0 (the original) or all other chunks together.
REFERENCES = ("chunk0", "rest")
_MERGED = re.compile(r"ShuffleMergeSpectral_(\d+)\.parquet")
_KINEMATIC = ("tau_pt", "tau_eta")
_EXPECTED_FORMAT = "taucoffea-shuffle-merge-expected"


# --------------------------------------------------------------------- expected counts


@dataclass(frozen=True)
class ExpectedCounts:
    """What the closure needs from a shuffle & merge run (arrays on the flow grid)."""

    pt_bins: np.ndarray
    eta_bins: np.ndarray
    expected: dict[str, np.ndarray]  #: per type, Σ_g E·a per (|η|, pT) bin with flow
    variance: dict[str, np.ndarray]  #: per type, binomial Σ_g E·a·(1 − a)
    parity: int
    max_entries: int | None
    outputs: tuple[str, ...]  #: file names of the complete output


def write_expected_json(
    table: AcceptanceTable,
    path: str | os.PathLike[str],
    *,
    parity: int,
    max_entries: int | None,
    outputs: Sequence[str],
    overwrite: bool = True,
) -> Path:
    """Write expected accepted counts per type (and their binomial variances) as strict JSON.

    ``acceptance.json`` (correctionlib) and ``<group>_n.root`` hold the same information, but
    recomputing the flow bins from correctionlib's shifted edges is fragile; this small file
    states the numbers directly, with the options that decide whether they apply
    (``parity``/``max_entries`` thin the output in ways the table does not describe).
    """
    mean, var = expected_by_type(table)
    data = {
        "format": _EXPECTED_FORMAT,
        "version": 1,
        "layout": "expected[type][eta_bin][pt_bin], index 0 = underflow, -1 = overflow",
        "pt_bins": table.pt_bins.tolist(),
        "eta_bins": table.eta_bins.tolist(),
        "types": list(table.types),
        "parity": int(parity),
        "max_entries": None if max_entries is None else int(max_entries),
        "outputs": [Path(o).name for o in outputs],
        "expected": {t: mean[t].tolist() for t in table.types},
        "variance": {t: var[t].tolist() for t in table.types},
    }
    return write_text_atomic(path, json.dumps(data, indent=1, allow_nan=False) + "\n", overwrite=overwrite)


def read_expected_json(path: str | os.PathLike[str]) -> ExpectedCounts:
    """Read :func:`write_expected_json`'s file; a malformed one is an :class:`InputError`."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read expected counts '{path}': {err}") from err
    if not isinstance(data, dict) or data.get("format") != _EXPECTED_FORMAT:
        raise InputError(f"'{path}' is not a shuffle & merge expected-counts file (format {_EXPECTED_FORMAT!r})")
    try:
        pt, eta = np.asarray(data["pt_bins"], float), np.asarray(data["eta_bins"], float)
        shape = (eta.size + 1, pt.size + 1)
        expected = {t: np.asarray(v, float) for t, v in data["expected"].items()}
        variance = {t: np.asarray(v, float) for t, v in data["variance"].items()}
        parity = int(data["parity"])
        max_entries = data["max_entries"]
        outputs = tuple(str(o) for o in data["outputs"])
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(f"expected counts '{path}': missing or malformed key ({err})") from err
    if set(expected) != set(variance) or any(a.shape != shape for a in (*expected.values(), *variance.values())):
        raise InputError(f"expected counts '{path}': arrays must have shape {shape} for every type")
    return ExpectedCounts(pt, eta, expected, variance, parity, max_entries, outputs)


# ---------------------------------------------------------------------------- reading


def find_merged_files(inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Merged files from folders (their ``ShuffleMergeSpectral_<k>.parquet``) and/or files.

    Sorted by folder, then by the number ``k`` (so ``_10`` follows ``_9``; the original sorted
    names as text); any other file name sorts after them by name. Nothing found, or a path
    that does not exist, is an :class:`InputError`.
    """
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    if not items:
        raise InputError("no --input given")
    files: set[Path] = set()
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = [f for f in p.iterdir() if f.is_file() and _MERGED.fullmatch(f.name)]
            if not found:
                raise InputError(f"no ShuffleMergeSpectral_<k>.parquet files in '{p}'")
            files.update(found)
        elif p.is_file():
            files.add(p)
        else:
            raise InputError(f"input '{p}' does not exist")

    def key(f: Path) -> tuple[str, int, int, str]:
        m = _MERGED.fullmatch(f.name)
        return (str(f.parent), 0 if m else 1, int(m.group(1)) if m else 0, f.name)

    return sorted(files, key=key)


def chunk_bounds(n_rows: int, nsplit: int) -> np.ndarray:
    """Row boundaries: chunk ``k`` is rows ``[b[k], b[k+1])``, i.e. ``k = r · nsplit // n_rows``.

    ``b[k] = ceil(k · n_rows / nsplit)``, the first row with ``r · nsplit ≥ k · n_rows``.
    """
    # Python integers: exact for any size (k · n_rows can exceed 2**63 only in theory)
    return np.array([-((-k * n_rows) // nsplit) for k in range(nsplit + 1)], dtype=np.int64)


def _iter_chunks(
    files: Sequence[Path], columns: Sequence[str], bounds: np.ndarray, batch_size: int
) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """Yield ``(k, columns)`` for every chunk in order, reading ``columns`` batch by batch."""
    nsplit = bounds.size - 1
    pieces: list[dict[str, np.ndarray]] = []
    k, row = 0, 0

    def emit() -> dict[str, np.ndarray]:
        chunk = {c: np.concatenate([p[c] for p in pieces]) if pieces else np.zeros(0) for c in columns}
        pieces.clear()
        return chunk

    while k < nsplit and bounds[k + 1] <= row:  # leading empty chunks (nsplit > rows)
        yield k, emit()
        k += 1
    for f in files:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=batch_size, columns=list(columns)):
            arrays = {c: batch.column(c).to_numpy(zero_copy_only=False) for c in columns}
            start, row = row, row + batch.num_rows
            pos = start
            while pos < row:
                end = min(row, int(bounds[k + 1]))
                pieces.append({c: a[pos - start : end - start] for c, a in arrays.items()})
                pos = end
                while k < nsplit and bounds[k + 1] <= pos:
                    yield k, emit()
                    k += 1
    while k < nsplit:
        yield k, emit()
        k += 1


def _schema_columns(files: Sequence[Path]) -> tuple[int, list[set[str]]]:
    total, names = 0, []
    for f in files:
        try:
            pf = pq.ParquetFile(f)
        except Exception as err:  # pyarrow raises several types for non-parquet files
            raise InputError(f"cannot read '{f}' as parquet ({type(err).__name__}: {err})") from err
        total += pf.metadata.num_rows
        names.append(set(pf.schema_arrow.names))
    return total, names


def _load_hashes(path: Path | None, what: str, files: Sequence[Path], default_name: str) -> dict[str, int]:
    """Read a S&M hash table (``name → hash``, values strings as in the original's JSON)."""
    if path is None:
        folder = files[0].parent
        path = folder / default_name
        if not path.exists():
            raise InputError(f"no {what} given and '{path}' does not exist; pass it explicitly")
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read {what} '{path}': {err}") from err
    if not isinstance(data, dict) or not data:
        raise InputError(f"{what} '{path}' must be a non-empty JSON object name -> hash")
    out = {}
    for name, value in data.items():
        try:
            h = int(value)
        except (TypeError, ValueError):
            raise InputError(f"{what} '{path}': value of {name!r} is not an integer hash: {value!r}") from None
        if not 0 <= h < 2**64:
            raise InputError(f"{what} '{path}': value of {name!r} is not a 64-bit unsigned integer")
        out[str(name)] = h
    return out


# ----------------------------------------------------------- per-chunk distributions


@dataclass
class ChunkDistribution:
    """Counts per chunk of what one test compares, for the plots.

    ``labels`` (categories, last one ``unknown``) or ``edges`` (pT / η with an under- and an
    overflow bin at both ends of ``counts``); ``counts`` has one row per chunk.
    """

    path: str
    counts: np.ndarray
    labels: list[str] | None = None
    edges: np.ndarray | None = None


class _Variables:
    """The tested variables and their category coding (as ``compare_chunks``)."""

    def __init__(self, group_ids: Mapping[str, int], dataset_ids: Mapping[str, int] | None, sample_type: bool):
        spec: list[tuple[str, str, list[str], list[int]]] = [
            ("tauType", "tauType", list(TAU_TYPE_NAMES), list(range(len(TAU_TYPE_NAMES)))),
        ]
        if sample_type:
            spec.append(("sampleType", "sampleType", [s.name for s in SampleType], [int(s) for s in SampleType]))
        groups = sorted(group_ids)
        spec.append(("uh_dataset_group_id", "dataset_group_id", groups, [group_ids[g] for g in groups]))
        if dataset_ids is not None:
            ds = sorted(dataset_ids)
            spec.append(("uh_dataset_id", "dataset_id", ds, [dataset_ids[d] for d in ds]))
        self.spec = spec
        self.with_datasets = dataset_ids is not None

    @staticmethod
    def codes(values: np.ndarray, table: Sequence[int]) -> np.ndarray:
        """Index of each value in ``table``; ``len(table)`` (unknown) for anything else."""
        tab = np.asarray(table, dtype=np.uint64)
        if values.dtype.kind == "f" or values.dtype.kind == "i":
            valid = values >= 0
            vals = np.where(valid, values, 0).astype(np.uint64)
        else:
            vals, valid = values.astype(np.uint64), np.ones(values.shape, dtype=bool)
        order = np.argsort(tab, kind="stable")
        srt = tab[order]
        pos = np.clip(np.searchsorted(srt, vals), 0, srt.size - 1)
        hit = valid & (srt[pos] == vals)
        return np.where(hit, order[pos], tab.size).astype(np.int64)


class _Histograms:
    """Accumulates :class:`ChunkDistribution` rows chunk by chunk (and, with ``keep_values``,
    each pT / η slice's values in row order, for KS against the rest)."""

    def __init__(self, variables: _Variables, nsplit: int, keep_values: bool = False) -> None:
        self.vars, self.nsplit = variables, nsplit
        self.pt_edges = np.linspace(PT_HIST[1], PT_HIST[2], PT_HIST[0] + 1)
        self.eta_edges = np.linspace(ETA_HIST[1], ETA_HIST[2], ETA_HIST[0] + 1)
        self.dists: dict[str, ChunkDistribution] = {}
        self.values: dict[str, list[np.ndarray]] | None = {} if keep_values else None

    def _row(self, path: str, k: int, counts: np.ndarray, **kw: Any) -> None:
        d = self.dists.get(path)
        if d is None:
            d = self.dists[path] = ChunkDistribution(path, np.zeros((self.nsplit, counts.size)), **kw)
        d.counts[k] = counts

    def add(self, k: int, chunk: Mapping[str, np.ndarray]) -> None:
        ds_codes = None
        if self.vars.with_datasets:
            _, col, _, table = self.vars.spec[-1]
            ds_codes = _Variables.codes(chunk[col], table)
            ds_labels = [*self.vars.spec[-1][2], "unknown"]
        for top, col, labels, table in self.vars.spec:
            codes = _Variables.codes(chunk[col], table)
            names = [*labels, "unknown"]
            self._row(top, k, np.bincount(codes, minlength=len(names)).astype(float), labels=names)
            for c in np.unique(codes):
                sel = codes == c
                base = f"{top}/{names[c]}"
                for name, edges in (("tau_pt", self.pt_edges), ("tau_eta", self.eta_edges)):
                    x = chunk[name][sel]
                    idx = np.searchsorted(edges, x.astype(np.float64), side="right")
                    counts = np.bincount(idx, minlength=edges.size + 1).astype(float)
                    self._row(f"{base}/{name}", k, counts, edges=edges)
                    if self.values is not None:
                        self.values.setdefault(f"{base}/{name}", []).append(x)
                if top == "uh_dataset_group_id" and ds_codes is not None:
                    counts = np.bincount(ds_codes[sel], minlength=len(ds_labels)).astype(float)
                    self._row(f"{base}/uh_dataset_id", k, counts, labels=ds_labels)


# --------------------------------------------------------------------------- the stage


@dataclass(frozen=True)
class FailedTest:
    path: str  #: e.g. ``tauType/tau/tau_pt``
    test: str  #: ``chi2`` or ``ks``
    chunks: list[int]

    def __str__(self) -> str:
        return f"{self.test} test failed for {self.path}: chunk(s) {self.chunks}"


@dataclass
class ValidationResult:
    files: list[Path]
    n_entries: int
    nsplit: int
    tests: tuple[str, ...]
    threshold: float
    pvalues: dict[str, Any]  #: the ``pvalues.json`` tree
    failed: list[FailedTest]
    closure: dict[str, TypeClosure] | None  #: per type, None when not applicable
    closure_note: str  #: why the closure was (not) done
    unexpected_types: dict[str, int] = field(default_factory=dict)  #: taus of types not expected at all
    notes: list[str] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)
    distributions: dict[str, ChunkDistribution] = field(default_factory=dict, repr=False)
    reference: str = "chunk0"  #: one of :data:`REFERENCES`

    @property
    def closure_failed(self) -> list[str]:
        """Types whose closure p-value is below the threshold."""
        return [t for t, c in (self.closure or {}).items() if c.pvalue < self.threshold]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.closure_failed and not self.unexpected_types

    @property
    def tested_pvalues(self) -> list[float]:
        """Every p-value of every chunk test, except chunk 0 against itself (trivially 1) and
        untestable (empty) sides."""
        first = 1 if self.reference == "chunk0" else 0
        return [p for v in _pvalue_lists(self.pvalues) for p in v[first:] if p is not None]

    @property
    def uniformity_pvalue(self) -> float | None:
        """KS p-value of :attr:`tested_pvalues` against the uniform distribution of a fair split.

        Meaningful with ``reference="rest"`` (nearly independent tests); against chunk 0 the
        p-values share that chunk's fluctuation and the number is indicative only. Binned χ²
        p-values of sparse histograms are slightly conservative, which makes this test
        conservative too.
        """
        ps = self.tested_pvalues
        return float(stats.kstest(ps, "uniform").pvalue) if len(ps) >= 2 else None

    def summary(self) -> str:
        ps = self.tested_pvalues
        below = sum(p < self.threshold for p in ps)
        how = ("in correlated groups: every chunk is compared with the same chunk 0; "
               "--reference rest compares each with the rest of the output"
               if self.reference == "chunk0" else "each chunk is compared with the rest of the output")
        lines = [
            f"{self.n_entries} entries in {len(self.files)} file(s), {self.nsplit} chunks, "
            f"tests {'+'.join(self.tests)}; {below} of {len(ps)} p-values below {self.threshold:g} "
            f"(a fair split gives about {self.threshold * len(ps):.1f}, {how})"
        ]
        uniform = self.uniformity_pvalue
        if uniform is not None:
            caveat = "" if self.reference == "rest" else " (correlated p-values: indicative only)"
            lines.append(f"p-values against a uniform distribution: KS p = {uniform:.3g}{caveat}")
        lines += [f"note: {n}" for n in self.notes]
        for f in self.failed:
            lines.append(f"[WARNING] {f}")
        if not self.failed:
            lines.append("all chunk tests passed")
        if self.closure is None:
            lines.append(f"closure: {self.closure_note}")
        if self.unexpected_types:
            lines.append(f"[WARNING] closure: taus of types without expected counts: {self.unexpected_types}")
        for t, c in (self.closure or {}).items():
            chi2 = "inf" if not np.isfinite(c.chi2) else f"{c.chi2:.1f}"
            flag = "  [WARNING] closure failed" if c.pvalue < self.threshold else ""
            lines.append(
                f"closure {t:>4}: observed {c.n_observed:.0f}, expected {c.n_expected:.1f}, "
                f"chi2/ndf {chi2}/{c.ndf}, p={c.pvalue:.3g}{flag}"
            )
        return "\n".join(lines)


def _pvalue_lists(node: Mapping[str, Any]) -> Iterator[list[Any]]:
    for key, value in node.items():
        if key.startswith("pvalues") and isinstance(value, list):
            yield value
        elif isinstance(value, Mapping):
            yield from _pvalue_lists(value)


def _parse_tests(test: str) -> tuple[str, ...]:
    t = test.lower()
    if t == "both":
        return TESTS
    if t in TESTS:
        return (t,)
    raise ConfigError(f"--test {test!r}: allowed are chi2, ks, both")


def _combine(trees: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """One §4 tree: ``pvalues`` holds the first test's p-values; with both tests the pT / η
    leaves also get ``pvalues_ks`` (composition tests are χ² in either mode)."""
    tests = list(trees)
    out = trees[tests[0]]
    if len(tests) == 1:
        return out

    def walk(src: Mapping[str, Any], dst: dict[str, Any], path: tuple[str, ...]) -> None:
        for key, value in src.items():
            if key == "pvalues":
                if path and path[-1] in _KINEMATIC:
                    dst["pvalues_ks"] = value
            elif isinstance(value, Mapping):
                walk(value, dst.setdefault(key, {}), (*path, key))

    walk(trees["ks"], out, ())
    return out


def run_validate(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    nsplit: int = 100,
    test: str = "both",
    pvthreshold: float = 0.05,
    id_json: str | os.PathLike[str] | None = None,
    group_id_json: str | os.PathLike[str] | None = None,
    use_dataset_id: bool = False,
    expected_json: str | os.PathLike[str] | None = None,
    formats: Sequence[str] = ("pdf", "png"),
    overwrite: bool = False,
    batch_size: int = 262_144,
    verbose: bool = True,
    reference: str = "chunk0",
) -> ValidationResult:
    """Validate merged shuffle & merge files and write ``pvalues.json``, plots, ``closure.json``.

    ``reference``: ``chunk0`` (the original: every chunk against chunk 0) or ``rest`` (every
    chunk against all the others; module docstring). ``inputs``: folders and/or files. Hash tables default to ``dataset_hash.json`` /
    ``datagroup_hash.json`` next to the first file, ``expected_json`` to
    ``acceptance/expected.json`` there (the closure is skipped, with a note, when it is absent
    or does not describe exactly these files). ``formats=()`` writes no plots.
    """
    if nsplit < 1:
        raise ConfigError(f"--nsplit must be >= 1, got {nsplit}")
    if not 0 < pvthreshold < 1:
        raise ConfigError(f"--pvthreshold must be in (0, 1), got {pvthreshold}")
    tests = _parse_tests(test)
    if reference not in REFERENCES:
        raise ConfigError(f"--reference {reference!r}: allowed are {', '.join(REFERENCES)}")
    formats = [f.strip().lower() for f in formats if f.strip()]
    bad_fmt = [f for f in formats if f not in ("pdf", "png", "svg")]
    if bad_fmt:
        raise ConfigError(f"--formats: unsupported {bad_fmt}; allowed are pdf, png, svg")
    files = find_merged_files(inputs)
    out = Path(output)
    for name in ("pvalues.json", "closure.json", "validation_summary.json"):
        check_output(out / name, overwrite)

    group_ids = _load_hashes(Path(group_id_json) if group_id_json else None, "data-group hash table", files,
                             "datagroup_hash.json")
    dataset_ids = (
        _load_hashes(Path(id_json) if id_json else None, "dataset hash table", files, "dataset_hash.json")
        if use_dataset_id else None
    )
    total, schemas = _schema_columns(files)
    if total == 0:
        raise InputError(f"the {len(files)} input file(s) hold no rows")
    required = ["tauType", "dataset_group_id", *_KINEMATIC] + (["dataset_id"] if use_dataset_id else [])
    for f, names in zip(files, schemas, strict=True):
        missing = [c for c in required if c not in names]
        if missing:
            raise InputError(f"'{f}' lacks column(s) {missing} needed by the validation")
    with_sample_type = all("sampleType" in names for names in schemas)
    notes = [] if with_sample_type else ["sampleType is missing in some input; its test is skipped"]
    columns = required + (["sampleType"] if with_sample_type else [])

    expected, closure_note = _expected_for(files, expected_json)
    variables = _Variables(group_ids, dataset_ids, with_sample_type)
    against_rest = reference == "rest"
    histograms = _Histograms(variables, nsplit, keep_values=against_rest and "ks" in tests)
    results: dict[str, list[dict[str, Any]]] = {t: [] for t in tests}
    observed: dict[str, np.ndarray] = {}
    unexpected_types: dict[str, int] = {}
    chunk0: dict[str, np.ndarray] | None = None
    for k, chunk in _iter_chunks(files, columns, chunk_bounds(total, nsplit), batch_size):
        if k == 0:
            chunk0 = chunk
        assert chunk0 is not None
        for t in tests if not against_rest else ():
            res = compare_chunks(chunk, chunk0, group_ids=group_ids, dataset_ids=dataset_ids, test=t,
                                 pt_hist=PT_HIST, eta_hist=ETA_HIST)
            if not with_sample_type:
                res.pop("sampleType", None)
            results[t].append(res)
        histograms.add(k, chunk)
        if expected is not None:
            _fill_observed(observed, unexpected_types, chunk, expected)

    trees = {t: _trees_vs_rest(histograms, t) if against_rest else merge_pvalues(results[t]) for t in tests}
    failed = []
    for t in tests:
        for path, chunks in failed_tests(trees[t], pvthreshold).items():
            kinematic = path.split("/")[-1] in _KINEMATIC
            if kinematic or t == tests[0]:  # composition tests are χ² in every tree: list once
                failed.append(FailedTest(path, t if kinematic else "chi2", chunks))
    pvalues = _combine(trees)
    closure = closure_report(observed, expected.expected, expected.variance) if expected is not None else None

    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(pvalues, indent=1, allow_nan=False) + "\n"
    written = [write_text_atomic(out / "pvalues.json", text, overwrite=overwrite)]
    if closure is not None and expected is not None:
        written.append(_write_closure(out / "closure.json", closure, observed, expected,
                                      closure_note, unexpected_types, overwrite))
    result = ValidationResult(
        files=files, n_entries=total, nsplit=nsplit, tests=tests, threshold=pvthreshold, pvalues=pvalues,
        failed=failed, closure=closure, closure_note=closure_note, notes=notes, distributions=histograms.dists,
        unexpected_types=unexpected_types, reference=reference,
    )
    if formats:
        from taucoffea.plotting.validation import plot_chunk_tests, plot_closure, plot_pvalue_distribution

        written += plot_chunk_tests(result, out / "plots", formats)
        written += plot_pvalue_distribution(result, out / "plots" / "pvalue_distribution", formats)
        if closure is not None and expected is not None:
            written += plot_closure(closure, expected.eta_bins, expected.pt_bins, out / "plots", formats)
    written.append(_write_summary(out / "validation_summary.json", result, overwrite))
    result.outputs = written
    if verbose:
        _print_header(files, total, group_ids, dataset_ids)
        print(result.summary())
    return result


def _trees_vs_rest(histograms: _Histograms, test: str) -> dict[str, Any]:
    """The :func:`merge_pvalues` tree of one test with every chunk against all the others.

    χ² needs only the per-chunk histograms (the rest is the total minus the chunk); KS takes
    the slice's values kept in row order, where each chunk's values are one contiguous run.
    """
    tree: dict[str, Any] = {}
    for path, dist in histograms.dists.items():
        if test == "ks" and path.rsplit("/", 1)[-1] in _KINEMATIC:
            assert histograms.values is not None
            splits = np.concatenate([[0], np.cumsum(dist.counts.sum(axis=1))]).astype(np.int64)
            ps = ks_vs_rest(np.concatenate(histograms.values[path]), splits)
        else:
            ps = chi2_vs_rest(dist.counts)
        node = tree
        for key in path.split("/"):
            node = node.setdefault(key, {})
        node["pvalues"] = [None if np.isnan(p) else float(p) for p in ps]
    return tree


def _expected_for(
    files: Sequence[Path], expected_json: str | os.PathLike[str] | None
) -> tuple[ExpectedCounts | None, str]:
    """The expected counts if they describe exactly ``files``; otherwise None and why not."""
    path = Path(expected_json) if expected_json else files[0].parent / "acceptance" / EXPECTED_JSON
    if not path.exists():
        if expected_json:
            raise InputError(f"expected counts '{path}' do not exist")
        return None, f"not done: no '{path}' (written by `taucoffea shuffle-merge`)"
    exp = read_expected_json(path)
    if exp.parity != 3 or exp.max_entries is not None:
        return None, (f"not done: the run used parity={exp.parity}, max_entries={exp.max_entries}, "
                      "which thin the output beyond the expected counts")
    names = sorted(f.name for f in files)
    folders = {f.parent.resolve() for f in files}
    if names != sorted(exp.outputs) or len(folders) != 1:
        return None, (f"not done: the closure needs exactly the run's {len(exp.outputs)} output file(s) "
                      f"{sorted(exp.outputs)} from one folder, got {names}")
    return exp, f"done against '{path}'"


def _fill_observed(observed: dict[str, np.ndarray], unexpected: dict[str, int],
                   chunk: Mapping[str, np.ndarray], exp: ExpectedCounts) -> None:
    """Accepted taus per type on the (|η|, pT) flow grid, binned as the sampling processor."""
    shape = (exp.eta_bins.size + 1, exp.pt_bins.size + 1)
    for t in exp.expected:
        observed.setdefault(t, np.zeros(shape))
    tau_type = np.asarray(chunk["tauType"]).astype(np.int64)
    i_eta = np.searchsorted(exp.eta_bins, np.abs(chunk["tau_eta"].astype(np.float64)), side="right")
    i_pt = np.searchsorted(exp.pt_bins, chunk["tau_pt"].astype(np.float64), side="right")
    flat = i_eta * shape[1] + i_pt
    for code in np.unique(tau_type):
        sel = tau_type == code
        name = TAU_TYPE_NAMES[code] if 0 <= code < len(TAU_TYPE_NAMES) else str(code)
        if name in observed:
            observed[name] += np.bincount(flat[sel], minlength=shape[0] * shape[1]).reshape(shape)
        else:  # a type no group keeps (or a ratio of 0) must never be written
            unexpected[name] = unexpected.get(name, 0) + int(sel.sum())


def _write_closure(path: Path, closure: Mapping[str, TypeClosure], observed: Mapping[str, np.ndarray],
                   exp: ExpectedCounts, note: str, unexpected: Mapping[str, int], overwrite: bool) -> Path:
    data: dict[str, Any] = {
        "note": note,
        "unexpected_types": dict(unexpected),
        "layout": "per type: arrays [eta_bin][pt_bin], index 0 = underflow, -1 = overflow",
        "pt_bins": exp.pt_bins.tolist(),
        "eta_bins": exp.eta_bins.tolist(),
        "types": {},
    }
    for t, c in closure.items():
        data["types"][t] = {**c.to_dict(), "observed": observed[t].tolist(), "expected": exp.expected[t].tolist()}
    return write_text_atomic(path, json.dumps(data, indent=1, allow_nan=False) + "\n", overwrite=overwrite)


def _write_summary(path: Path, r: ValidationResult, overwrite: bool) -> Path:
    data = {
        "files": [str(f) for f in r.files],
        "n_entries": r.n_entries,
        "nsplit": r.nsplit,
        "tests": list(r.tests),
        "pvthreshold": r.threshold,
        "failed": [{"path": f.path, "test": f.test, "chunks": f.chunks} for f in r.failed],
        "closure_note": r.closure_note,
        "closure_failed": r.closure_failed,
        "unexpected_types": r.unexpected_types,
        "notes": r.notes,
        "reference": r.reference,
        "uniformity_pvalue": r.uniformity_pvalue,
        "ok": r.ok,
    }
    return write_text_atomic(path, json.dumps(data, indent=1, allow_nan=False) + "\n", overwrite=overwrite)


def _print_header(files: Sequence[Path], total: int, group_ids: Mapping[str, int],
                  dataset_ids: Mapping[str, int] | None) -> None:
    print(f"validating {len(files)} file(s), {total} entries")
    print("data groups (uh_dataset_group_id index: name = hash):")
    for i, g in enumerate(sorted(group_ids)):
        print(f"  {i}: {g} = {group_ids[g]}")
    if dataset_ids is not None:
        print("datasets (uh_dataset_id index: name = hash):")
        for i, d in enumerate(sorted(dataset_ids)):
            print(f"  {i}: {d} = {dataset_ids[d]}")
