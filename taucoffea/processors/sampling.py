"""SamplingProcessor: pass 2 of shuffle & merge (DESIGN §4).

Each tau of a kept type is accepted with its probability from the acceptance table and sent to
one of K buckets; both draws come from the tau's own counter-based random numbers, so the
result cannot depend on chunking or executor. Accepted rows of a chunk are written as one
Arrow IPC part (a record batch per bucket), named by the chunk's identity; the processor
returns the part references (lists, which coffea concatenates) and a histogram of what it
accepted (for the closure test).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
from coffea import processor

from taucoffea.algorithms.acceptance import AcceptanceTable, acceptance_probability
from taucoffea.algorithms.rng import entry_words
from taucoffea.columns.arrow_rows import take_rows
from taucoffea.columns.bulk import read_root_rows
from taucoffea.columns.parquet import write_bucketed_part
from taucoffea.columns.table import required_branches, select_columns, tau_table
from taucoffea.physics.dataset_hash import std_hash

__all__ = ["SORT_KEY", "SamplingProcessor"]

#: Column carrying each accepted row's random sort key between pass 2 and pass 3.
SORT_KEY = "_sm_key"
STAGE = "shuffle-merge"


class SamplingProcessor(processor.ProcessorABC):
    """Accept taus with the acceptance table's probabilities and scatter them into buckets."""

    def __init__(
        self,
        table: AcceptanceTable,
        file_groups: Mapping[str, str],
        parts_dir: str | os.PathLike[str],
        *,
        seed: int = 1234567,
        n_buckets: int = 1,
        parity: int = 3,
        include: Collection[str] | None = None,
        exclude: Collection[str] | None = None,
        fmt: str = "tautuple",
    ) -> None:
        if parity not in (0, 1, 3):
            raise ValueError(f"parity must be 0 (even evt), 1 (odd evt) or 3 (all), got {parity}")
        self.table = table
        self.file_groups = {os.path.abspath(k): v for k, v in file_groups.items()}
        self.parts_dir = str(parts_dir)
        self.seed, self.n_buckets, self.parity = int(seed), int(n_buckets), parity
        self.include, self.exclude, self.fmt = include, exclude, fmt

    def _accepted_counts(self, group: str, tau_type: np.ndarray, abs_eta: np.ndarray, pt: np.ndarray) -> dict[str, dict[int, np.ndarray]]:
        """Accepted taus per (|η|, pT) target bin — with flow, as the table's ``expected``."""
        eta_edges = np.concatenate([[-np.inf], self.table.eta_bins, [np.inf]])
        pt_edges = np.concatenate([[-np.inf], self.table.pt_bins, [np.inf]])
        out: dict[int, np.ndarray] = {}
        for t in np.unique(tau_type):
            sel = tau_type == t
            counts, _, _ = np.histogram2d(abs_eta[sel], pt[sel], bins=(eta_edges, pt_edges))
            out[int(t)] = counts
        return {group: out}

    def _columns_for(self, available: list[str]) -> tuple[list[str], list[str]]:
        """(columns copied to the output, columns read — those plus what sampling needs)."""
        fields = [f for f in available if f not in ("tauType", "dataset_id", "dataset_group_id")]
        columns = select_columns(fields, self.include, self.exclude)
        needed = set(columns) | {"tau_pt", "tau_eta", "evt"}
        return columns, [c for c in fields if c in needed] + ["tauType"]

    def process(self, events: Any) -> dict[str, Any]:
        meta = events.metadata
        dataset, filename = meta["dataset"], os.path.abspath(meta["filename"])
        start, stop = int(meta["entrystart"]), int(meta["entrystop"])
        group = self.file_groups[filename]
        if self.fmt == "tautuple" and meta.get("treename"):
            # whole rows are copied: one bulk read of every needed branch (see columns/bulk.py);
            # the branch list comes from the file, the events carry only a few branches
            plan: dict[str, list[str]] = {}

            def choose(available: list[str]) -> set[str]:
                plan["columns"], plan["wanted"] = self._columns_for(available)
                return required_branches(self.fmt, plan["wanted"])

            source = read_root_rows(filename, meta["treename"], choose, start, stop)
            columns, wanted = plan["columns"], plan["wanted"]
        else:
            source = events
            columns, wanted = self._columns_for(events.fields)
        table = tau_table(source, self.fmt, wanted)
        tau_type = np.asarray(table["tauType"])
        pt = ak.to_numpy(table["tau_pt"]).astype(np.float64)
        abs_eta = np.abs(ak.to_numpy(table["tau_eta"]).astype(np.float64))

        words = entry_words(self.seed, STAGE, dataset, os.path.basename(filename), start, stop)
        u_accept = (words[:, 0] >> np.uint64(11)).astype(np.float64) * 2.0**-53
        prob = acceptance_probability(self.table, group, tau_type, abs_eta, pt)
        accept = u_accept < prob
        if self.parity != 3:
            accept &= (ak.to_numpy(table["evt"]).astype(np.uint64) % np.uint64(2)) == np.uint64(self.parity)
        bucket = ((words[:, 1] >> np.uint64(11)).astype(np.float64) * 2.0**-53 * self.n_buckets).astype(np.int64)

        counts = self._accepted_counts(group, tau_type[accept], abs_eta[accept], pt[accept])
        parts: dict[int, list[str]] = {}
        index = np.flatnonzero(accept)
        if index.size:
            index = index[np.argsort(bucket[index], kind="stable")]  # each bucket's rows together
            record = {c: table[c] for c in columns}
            record["tauType"] = tau_type.astype(np.int32)
            record["dataset_id"] = np.full(len(tau_type), std_hash(dataset), dtype=np.uint64)
            record["dataset_group_id"] = np.full(len(tau_type), std_hash(group), dtype=np.uint64)
            record[SORT_KEY] = words[:, 2]
            path = Path(self.parts_dir) / dataset / os.path.basename(filename) / f"{start}-{stop}.arrow"
            parts = write_bucketed_part(take_rows(record, index), bucket[index], path)
        return {"parts": parts, "accepted": counts, "n_accepted": int(index.size), "n_read": stop - start}

    def postprocess(self, accumulator: Any) -> Any:
        return accumulator
