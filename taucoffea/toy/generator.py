"""Orchestration: draw complete toy TauTuple rows for a dataset file, and the whole toy sample.

One file of one dataset is one independent random stream: a numpy ``Philox`` keyed by
(seed, dataset name, file index), so any file can be regenerated alone and the output does not
depend on which other datasets or files were requested. Everything is vectorised over taus.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from taucoffea.columns.atomic import write_text_atomic
from taucoffea.errors import ConfigError, OutputExistsError
from taucoffea.toy.candidates import (
    CAND_PARAMS,
    Jagged,
    candidate_loglik_terms,
    candidate_summaries,
    count_terms,
    sample_counts,
    sample_electrons,
    sample_muons,
    sample_pf_candidates,
    shifted_cand_params,
)
from taucoffea.toy.datasets import (
    CLASS_NAMES,
    DEFAULT_SHIFT,
    JET,
    TAU,
    TOY_DATASETS,
    DataMCShift,
    ToyDataset,
    resolve_datasets,
    resolve_sizes,
    split_files,
)
from taucoffea.toy.densities import MC_PARAMS, sample_scalars, scalar_loglik_terms, shifted_params
from taucoffea.toy.reference import reference_scores
from taucoffea.toy.spectra import sample_abs_eta, sample_pt

__all__ = [
    "CR_PRESELECTION",
    "LIST_PREFIXES",
    "NOT_VALID_FRACTION",
    "TOY_VERSION",
    "columns_from_awkward",
    "generate_file_columns",
    "generate_taus",
    "generate_toy",
    "loglik_terms",
    "ordered_columns",
    "rng_for",
    "to_awkward",
    "truth_logliks",
]

#: Bumped whenever the same seed would give different files.
TOY_VERSION = "1.0"

#: Share of MC rows made deliberately not gen-matchable (``toy_gen_valid`` = 0).
NOT_VALID_FRACTION = 0.015

#: MuTau-selector-like preselection of the stored control-region taus (ROOT syntax, for docs).
CR_PRESELECTION = ("tau_index >= 0 && tau_pt > 20 && abs(tau_eta) < 2.3 && "
                   "tau_decayModeFindingNewDMs > 0.5 && tau_byDeepTau2017v2p1VSjetraw > 0.2599605")

#: Candidate collections: (prefix in branch names, uproot counter branch).
LIST_PREFIXES: dict[str, str] = {"pfCand": "npfCand", "ele": "nele", "muon": "nmuon"}

_LOWEST_F = np.finfo(np.float32).min
_LOWEST_I = np.iinfo(np.int32).min
_UINT64_MAX = np.iinfo(np.uint64).max
_FILE_PATTERN = re.compile(r"eventTuple_\d+\.root")


def rng_for(seed: int, dataset: str, file_index: int, purpose: str = "rows") -> np.random.Generator:
    """The Philox stream of one (seed, dataset, file, purpose); never global state."""
    digest = hashlib.blake2b(f"taucoffea.toy/{TOY_VERSION}/{int(seed)}/{dataset}/{int(file_index)}"
                             f"/{purpose}".encode(), digest_size=16).digest()
    return np.random.Generator(np.random.Philox(key=int.from_bytes(digest, "little")))


# --------------------------------------------------------------------------------------------
# row drawing


def _categorical(rng: np.random.Generator, probs: Iterable[float], n: int) -> np.ndarray:
    cdf = np.cumsum(np.asarray(list(probs), dtype=float))
    return np.minimum(np.searchsorted(cdf / cdf[-1], rng.random(n), side="right"),
                      cdf.size - 1).astype(np.int64)


def _event_structure(rng: np.random.Generator, n: int, mean_extra: float, single: bool
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(event number per row, entry_index, total_entries); events of 1 + Poisson(mean) rows."""
    if single or n == 0:
        ev = np.arange(n)
        return ev, np.zeros(n, np.int64), np.ones(n, np.int64)
    sizes = 1 + rng.poisson(mean_extra, n)  # n events always suffice
    ends = np.cumsum(sizes)
    n_ev = int(np.searchsorted(ends, n)) + 1
    sizes = sizes[:n_ev]
    sizes[-1] -= int(ends[n_ev - 1] - n)
    ev = np.repeat(np.arange(n_ev), sizes)
    starts = np.cumsum(sizes) - sizes
    entry = np.arange(n) - starts[ev]
    return ev, entry, sizes[ev]


def loglik_terms(scalars: Mapping[str, np.ndarray], pf: Jagged, ele: Jagged, mu: Jagged
                 ) -> dict[str, np.ndarray]:
    """All class-dependent log-density terms of stored rows under the MC model, (n, 4) each."""
    tau = _tau_view(scalars)
    terms = scalar_loglik_terms(scalars, MC_PARAMS)
    terms.update(candidate_loglik_terms(tau, pf, ele, mu, CAND_PARAMS))
    return terms


def truth_logliks(cols: Mapping[str, np.ndarray], lists: Mapping[str, Jagged]) -> np.ndarray:
    """Recompute the (n, 4) truth log-likelihoods from stored columns and lists alone.

    The generator stores exactly this (in float32); rows without a reconstructed tau
    (``tau_index`` < 0) get 0. Used by the tests to prove that nothing latent enters the truth.
    """
    n = np.asarray(cols["tau_pt"]).size
    out = np.zeros((n, 4))
    keep = np.flatnonzero(np.asarray(cols["tau_index"]) >= 0)
    sub, sub_lists = _take(dict(cols), dict(lists), keep)
    terms = loglik_terms(sub, sub_lists["pfCand"], sub_lists["ele"], sub_lists["muon"])
    out[keep] = sum(terms.values())
    return out


def _tau_view(cols: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    f64 = np.float64
    return {
        "pt": cols["tau_pt"].astype(f64), "eta": cols["tau_eta"].astype(f64),
        "phi": cols["tau_phi"].astype(f64), "dm": cols["tau_decayMode"].astype(np.int64),
        "charge": cols["tau_charge"].astype(np.int64), "dxy": cols["tau_dxy"].astype(f64),
        "dxy_error": cols["tau_dxy_error"].astype(f64), "dz": cols["tau_dz"].astype(f64),
        "dz_error": cols["tau_dz_error"].astype(f64), "npv": cols["npv"].astype(f64),
        "pv_x": cols["pv_x"].astype(f64), "pv_y": cols["pv_y"].astype(f64),
        "pv_z": cols["pv_z"].astype(f64),
    }


def _draw_rows(rng: np.random.Generator, ds: ToyDataset, n: int, shift: DataMCShift,
               preselect: bool = False
               ) -> tuple[dict[str, np.ndarray], dict[str, Jagged]]:
    """Draw ``n`` rows; with ``preselect`` return only those passing the CR preselection.

    Stage A draws everything the DeepTau-like score needs (kinematics, tau-level features,
    multiplicities) plus the gen truth; stage B draws the candidate lists of the surviving rows
    and evaluates the exact truth log-likelihoods on what is stored.
    """
    if ds.processes:
        raise ConfigError(f"dataset {ds.name!r} is a mixture; draw it per process")
    is_data = ds.sample_type == 0
    sp = shifted_params(MC_PARAMS, shift) if is_data else MC_PARAMS
    cp = shifted_cand_params(CAND_PARAMS, shift) if is_data else CAND_PARAMS
    cls = _categorical(rng, ds.fractions, n)
    pt = np.empty(n)
    for c in range(4):
        sel = np.flatnonzero(cls == c)
        if sel.size:
            pt[sel] = sample_pt(rng, ds.spectra[c], sel.size)
    abseta = sample_abs_eta(rng, n, 2.3 if ds.control_region else 2.5)
    eta = np.where(rng.random(n) < 0.5, -abseta, abseta)
    phi = rng.uniform(-np.pi, np.pi, n)
    cols: dict[str, np.ndarray] = {}
    cols["tau_pt"] = pt.astype(np.float32)
    cols["tau_eta"] = eta.astype(np.float32)
    cols["tau_phi"] = phi.astype(np.float32)
    pt, eta, phi = (cols[k].astype(np.float64) for k in ("tau_pt", "tau_eta", "tau_phi"))

    # event-level quantities (shared by the rows of an event)
    ev, entry, total = _event_structure(rng, n, ds.mean_extra_entries, ds.control_region)
    n_ev = int(ev[-1]) + 1 if n else 0
    npv_mean = shift.npv_mean if is_data else 30.0
    npv = np.maximum(rng.poisson(npv_mean, n_ev), 1)
    cols["_event"] = ev
    cols["entry_index"] = entry.astype(np.int32)
    cols["total_entries"] = total.astype(np.int32)
    cols["npv"] = npv[ev].astype(np.int32)
    rho = np.maximum(0.55 * npv + 1.5 * rng.standard_normal(n_ev), 0.0)
    cols["rho"] = rho[ev].astype(np.float32)
    cols["pv_x"] = (0.0107 + 0.001 * rng.standard_normal(n_ev))[ev].astype(np.float32)
    cols["pv_y"] = (0.0417 + 0.001 * rng.standard_normal(n_ev))[ev].astype(np.float32)
    cols["pv_z"] = (3.5 * rng.standard_normal(n_ev))[ev].astype(np.float32)

    # ---- stage A: tau-level features, multiplicities, reference scores, gen truth
    cols.update(sample_scalars(rng, cls, pt, eta, phi, sp))
    dm = cols["tau_decayMode"]
    cols["tau_decayModeFinding"] = np.isin(dm, (0, 1, 2, 10)).astype(np.int32)
    cols["tau_decayModeFindingNewDMs"] = np.ones(n, np.int32)
    cols["tau_inside_ecal_crack"] = ((np.abs(eta) > 1.46) & (np.abs(eta) < 1.558)).astype(np.int32)
    cols["tau_index"] = entry.astype(np.int32)
    tau = _tau_view(cols)
    counts = sample_counts(rng, cls, tau, cp)
    terms = scalar_loglik_terms(cols, MC_PARAMS)
    terms.update(count_terms(tau["pt"], tau["dm"], counts.n_photons, counts.lead_type,
                             counts.iso.sum(axis=2), counts.n_ele, counts.n_muon, CAND_PARAMS))
    cols.update(reference_scores(rng, terms))
    cols["toy_true_class"] = cls.astype(np.int32)
    no_tau = _gen_fields(rng, ds, cls, cols, is_data)
    cols["_no_tau"] = no_tau
    if preselect:
        keep = np.flatnonzero(_cr_pass(cols) & ~no_tau)
        cols = {k: v[keep] for k, v in cols.items()}
        cls, counts = cls[keep], counts.take(keep)
        tau = _tau_view(cols)

    # ---- stage B: candidate lists, their summaries and the exact truth
    pf = sample_pf_candidates(rng, cls, tau, counts, cp)
    ele = sample_electrons(rng, cls, tau, counts.n_ele, cp)
    mu = sample_muons(rng, cls, tau, counts.n_muon, cp)
    cols.update(candidate_summaries(tau, pf))
    total_ll = sum(loglik_terms(cols, pf, ele, mu).values())
    for c, name in enumerate(CLASS_NAMES):
        cols[f"truth_loglik_{name}"] = total_ll[:, c].astype(np.float32)
    _blank_missing_taus(cols, np.flatnonzero(cols.pop("_no_tau")))
    return cols, {"pfCand": pf, "ele": ele, "muon": mu}


def _gen_fields(rng: np.random.Generator, ds: ToyDataset, cls: np.ndarray,
                cols: dict[str, np.ndarray], is_data: bool) -> np.ndarray:
    """Gen lepton / gen jet truth consistent with the TauMLTools gen match (spec §1.2).

    Returns the mask of rows that will lose their reconstructed tau (not-valid kind (a)).
    """
    n = cls.size
    f32 = np.float32
    pt = cols["tau_pt"].astype(np.float64)
    eta = cols["tau_eta"].astype(np.float64)
    phi = cols["tau_phi"].astype(np.float64)
    nz = rng.standard_normal((n, 8))
    u = rng.random((n, 4))
    lepton = (cls != JET) & (not is_data)
    kind = np.select([cls == TAU, cls == 0, cls == 1], [5, 1, 2], _LOWEST_I)
    from_tau = u[:, 0] < ds.lepton_from_tau
    kind = np.where((cls <= 1) & from_tau, kind + 2, kind)
    resp = np.where(cls == TAU, np.clip(np.exp(0.08 * nz[:, 0]), 0.8, 1.5),
                    np.clip(np.exp(0.05 * nz[:, 0]), 0.8, 1.5))
    vis_mass = np.select([cls == 0, cls == 1],
                         [0.000511, 0.10566],
                         np.maximum(cols["tau_mass"] * (1.0 + 0.1 * nz[:, 1]), 0.13957))
    cols["genLepton_index"] = np.where(lepton, 0, -1).astype(np.int32)
    cols["genLepton_kind"] = np.where(lepton, kind, _LOWEST_I).astype(np.int32)
    cols["genLepton_charge"] = np.where(lepton, cols["tau_charge"], _LOWEST_I).astype(np.int32)
    cols["genLepton_vis_pt"] = np.where(lepton, pt * resp, _LOWEST_F).astype(f32)
    cols["genLepton_vis_eta"] = np.where(lepton, eta + 0.01 * nz[:, 2], _LOWEST_F).astype(f32)
    cols["genLepton_vis_phi"] = np.where(
        lepton, (phi + 0.01 * nz[:, 3] + np.pi) % (2 * np.pi) - np.pi, _LOWEST_F).astype(f32)
    cols["genLepton_vis_mass"] = np.where(lepton, vis_mass, _LOWEST_F).astype(f32)

    # gen jets: always for jets, often for genuine taus, sometimes for leptons
    p_jet = np.select([cls == JET, cls == TAU], [1.0, 0.9], 0.3)
    has_jet = (u[:, 1] < p_jet) & (not is_data)
    jresp = np.clip(np.exp(np.log(0.75) + 0.2 * nz[:, 4]), 0.2, 1.2)
    cols["genJet_index"] = np.where(has_jet, 0, -1).astype(np.int32)
    cols["genJet_pt"] = np.where(has_jet, pt / jresp, _LOWEST_F).astype(f32)
    cols["genJet_eta"] = np.where(has_jet, eta + 0.03 * nz[:, 5], _LOWEST_F).astype(f32)
    cols["genJet_phi"] = np.where(
        has_jet, (phi + 0.03 * nz[:, 6] + np.pi) % (2 * np.pi) - np.pi, _LOWEST_F).astype(f32)
    cols["genJet_mass"] = np.where(has_jet, 0.12 * pt / jresp * u[:, 2], _LOWEST_F).astype(f32)
    cols["toy_gen_valid"] = np.ones(n, np.int32)
    if is_data:
        return np.zeros(n, dtype=bool)
    return _inject_not_valid(rng, cls, cols)


def _inject_not_valid(rng: np.random.Generator, cls: np.ndarray, cols: dict[str, np.ndarray]
                      ) -> np.ndarray:
    """Make ≈1.5 % of MC rows not gen-matchable, in the three ways real TauTuples are.

    (a) a gen lepton without a reconstructed tau (``tau_index`` = -1, tau fields ``lowest()``,
    truth log-likelihoods 0; applied at the end by :func:`_blank_missing_taus`, the returned
    mask marks these rows); (b) a gen lepton whose visible pT is below the 8/15 GeV threshold;
    (c) a gen lepton outside ΔR 0.2, or for jets no gen jet at all.
    """
    n = cls.size
    pick = np.flatnonzero(rng.random(n) < NOT_VALID_FRACTION)
    how = rng.integers(0, 3, pick.size)
    lep = cls[pick] != JET
    how = np.where(lep, how, 2)
    cols["toy_gen_valid"][pick] = 0
    a, b, c = pick[how == 0], pick[how == 1], pick[how == 2]
    # (b)
    lo = np.where(cls[b] == TAU, 8.0, 2.0)
    hi = np.where(cls[b] == TAU, 14.5, 7.5)
    cols["genLepton_vis_pt"][b] = (lo + (hi - lo) * rng.random(b.size)).astype(np.float32)
    # (c)
    c_lep, c_jet = c[cls[c] != JET], c[cls[c] == JET]
    dr = 0.25 + 0.15 * rng.random(c_lep.size)
    ang = 2 * np.pi * rng.random(c_lep.size)
    vis_eta = cols["tau_eta"][c_lep] + dr * np.cos(ang)
    cols["genLepton_vis_eta"][c_lep] = vis_eta.astype(np.float32)
    cols["genLepton_vis_phi"][c_lep] = ((cols["tau_phi"][c_lep] + dr * np.sin(ang) + np.pi)
                                        % (2 * np.pi) - np.pi).astype(np.float32)
    cols["genJet_index"][c_jet] = -1
    for k in ("genJet_pt", "genJet_eta", "genJet_phi", "genJet_mass"):
        cols[k][c_jet] = _LOWEST_F
    no_tau = np.zeros(n, dtype=bool)
    no_tau[a] = True
    return no_tau


def _blank_missing_taus(cols: dict[str, np.ndarray], a: np.ndarray) -> None:
    """TauTuple defaults in every tau field of rows without a reconstructed tau."""
    for k, v in cols.items():
        if not k.startswith("tau_"):
            continue
        if k == "tau_index":
            v[a] = -1
        elif v.dtype == np.uint16:
            v[a] = 0
        elif v.dtype.kind == "f":
            v[a] = _LOWEST_F
        else:
            v[a] = _LOWEST_I
    for name in CLASS_NAMES:
        cols[f"truth_loglik_{name}"][a] = 0.0


# --------------------------------------------------------------------------------------------
# files


def _take(cols: dict[str, np.ndarray], lists: dict[str, Jagged], rows: np.ndarray
          ) -> tuple[dict[str, np.ndarray], dict[str, Jagged]]:
    """Rows ``rows`` (integer indices, in that order) of the flat columns and the lists."""
    out = {k: v[rows] for k, v in cols.items()}
    new_lists = {}
    for name, jag in lists.items():
        starts = (np.cumsum(jag.counts) - jag.counts)[rows]
        counts = jag.counts[rows]
        first = np.cumsum(counts) - counts
        el = np.repeat(starts - first, counts) + np.arange(int(counts.sum()))
        new_lists[name] = Jagged(counts, {k: v[el] for k, v in jag.fields.items()})
    return out, new_lists


def _concat(parts: list[tuple[dict[str, np.ndarray], dict[str, Jagged]]]
            ) -> tuple[dict[str, np.ndarray], dict[str, Jagged]]:
    cols = {k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]}
    lists = {}
    for name in parts[0][1]:
        js = [p[1][name] for p in parts]
        lists[name] = Jagged(np.concatenate([j.counts for j in js]),
                             {k: np.concatenate([j.fields[k] for j in js]) for k in js[0].fields})
    return cols, lists


def _cr_pass(cols: Mapping[str, np.ndarray]) -> np.ndarray:
    return ((cols["tau_index"] >= 0) & (cols["tau_pt"] > 20) & (np.abs(cols["tau_eta"]) < 2.3)
            & (cols["tau_decayModeFindingNewDMs"] > 0)
            & (cols["tau_byDeepTau2017v2p1VSjetraw"] > 0.2599605))


def generate_file_columns(dataset: str | ToyDataset, n: int, seed: int = 1234,
                          file_index: int = 0, *, shift: DataMCShift = DEFAULT_SHIFT
                          ) -> tuple[dict[str, np.ndarray], dict[str, Jagged]]:
    """Flat columns and candidate lists of file ``file_index`` of ``dataset`` (``n`` rows).

    ``dataset`` is a registry name or, for studies and tests, a custom :class:`ToyDataset`
    (e.g. equal spectra for all classes).
    """
    if isinstance(dataset, ToyDataset):
        ds = dataset
    else:
        ds = TOY_DATASETS[resolve_datasets([dataset])[0]]
    if n < 0:
        raise ConfigError(f"number of toy taus must be >= 0, got {n}")
    rng = rng_for(seed, ds.name, file_index)
    if not ds.control_region:
        cols, lists = _draw_rows(rng, ds, n, shift)
    else:
        cols, lists = _draw_control_region(rng, ds, n, shift)
    _bookkeeping(rng, ds, file_index, cols)
    return cols, lists


def _draw_control_region(rng: np.random.Generator, ds: ToyDataset, n: int, shift: DataMCShift
                         ) -> tuple[dict[str, np.ndarray], dict[str, Jagged]]:
    """μτ control-region rows: the MuTau preselection applied by stratified rejection.

    The class fractions of a CR dataset are those *after* the preselection. The number of rows
    of every (process, class) stratum is drawn first from those fractions; each stratum is then
    filled by drawing rows of that class until enough pass. So the preselection shapes the
    features but cannot change the class mix — in particular not in "data", whose shifted
    features pass it at other rates than MC.
    """
    procs = ds.processes or ((ds.name, 1.0),)
    names = [p for p, _ in procs]
    w = np.array([x for _, x in procs], dtype=float)
    proc = _categorical(rng, w, n)
    strata = []
    for i, name in enumerate(names):
        pds = TOY_DATASETS[name] if ds.processes else ds
        k_proc = int((proc == i).sum())
        cls_counts = np.bincount(_categorical(rng, pds.fractions, k_proc), minlength=4)
        for c in range(4):
            if cls_counts[c]:
                onehot = tuple(float(j == c) for j in range(4))
                sub = replace(pds, fractions=onehot, processes=(), sample_type=ds.sample_type,
                              control_region=True)
                strata.append(_fill_stratum(rng, sub, int(cls_counts[c]), shift))
    if not strata:
        return _draw_rows(rng, replace(ds, processes=()), 0, shift)
    cols, lists = _concat(strata)
    cols, lists = _take(cols, lists, rng.permutation(n))
    cols["_event"] = np.arange(n)
    return cols, lists


def _fill_stratum(rng: np.random.Generator, ds: ToyDataset, k: int, shift: DataMCShift
                  ) -> tuple[dict[str, np.ndarray], dict[str, Jagged]]:
    parts = []
    have, rate = 0, 0.5
    while have < k:
        m = max(int((k - have) / rate * 1.15) + 32, 128)
        c, li = _draw_rows(rng, ds, m, shift, preselect=True)
        got = c["tau_pt"].size
        rate = max(got / m, 0.01)
        c, li = _take(c, li, np.arange(min(got, k - have)))
        parts.append((c, li))
        have += min(got, k - have)
    return _concat(parts)


def _bookkeeping(rng: np.random.Generator, ds: ToyDataset, file_index: int,
                 cols: dict[str, np.ndarray]) -> None:
    n = cols["tau_pt"].size
    ev = cols.pop("_event")
    is_data = ds.sample_type == 0
    cols["run"] = np.full(n, 315252 + file_index if is_data else 1, np.uint32)
    cols["lumi"] = (1 + ev // 500).astype(np.uint32)
    cols["evt"] = ((np.uint64(file_index) << np.uint64(32)) + ev.astype(np.uint64) + np.uint64(1))
    cols["sampleType"] = np.full(n, ds.sample_type, np.int32)
    cols["tauType"] = np.full(n, -1, np.int32)
    cols["dataset_id"] = np.full(n, _UINT64_MAX, np.uint64)
    cols["dataset_group_id"] = np.full(n, _UINT64_MAX, np.uint64)
    cols["genEventWeight"] = np.ones(n, np.float32)
    cr = ds.control_region
    u = rng.random((n, 4))
    nz = rng.standard_normal((n, 2))
    phi = cols["tau_phi"].astype(np.float64)
    cols["tagObj_valid"] = np.full(n, int(cr), np.int32)
    cols["tagObj_kind"] = np.full(n, 1 if cr else _LOWEST_I, np.int32)
    cols["tagObj_pt"] = (np.where(cr, 24.0 + rng.gamma(2.0, 8.0, n), _LOWEST_F)).astype(np.float32)
    cols["tagObj_eta"] = np.where(cr, 4.2 * u[:, 0] - 2.1, _LOWEST_F).astype(np.float32)
    cols["tagObj_phi"] = np.where(cr, (phi + np.pi + 0.3 * nz[:, 0] + np.pi) % (2 * np.pi) - np.pi,
                                  _LOWEST_F).astype(np.float32)
    cols["tagObj_mass"] = np.full(n, 0.10566 if cr else _LOWEST_F, np.float32)
    cols["tagObj_charge"] = np.where(cr, -cols["tau_charge"].astype(np.int64),
                                     _LOWEST_I).astype(np.int32)
    cols["has_extramuon"] = (cr & (u[:, 1] < 0.03)).astype(np.int32)
    cols["has_extraelectron"] = (cr & (u[:, 2] < 0.02)).astype(np.int32)
    cols["has_dimuon"] = (cr & (u[:, 3] < 0.02)).astype(np.int32)


# column order of the written tree: bookkeeping first, then tau, truth, tag; lists last
_FIRST = ("run", "lumi", "evt", "sampleType", "tauType", "dataset_id", "dataset_group_id",
          "npv", "rho", "pv_x", "pv_y", "pv_z", "genEventWeight", "entry_index", "total_entries",
          "tau_index")


def ordered_columns(cols: Mapping[str, np.ndarray]) -> list[str]:
    """Stable branch order: bookkeeping, tau_*, gen*, tag*, truth/toy columns."""
    rest = [k for k in cols if k not in _FIRST]

    def key(k: str) -> tuple[int, int]:
        for i, p in enumerate(("tau_", "genLepton_", "genJet_", "tagObj_", "has_", "truth_",
                               "toy_")):
            if k.startswith(p):
                return (i, rest.index(k))
        return (7, rest.index(k))

    return list(_FIRST) + sorted(rest, key=key)


def to_awkward(cols: Mapping[str, np.ndarray], lists: Mapping[str, Jagged]) -> ak.Array:
    """Record array with TauTuple names: flat columns, ``n<list>`` counters, jagged lists."""
    contents: dict[str, ak.contents.Content] = {}
    for k in ordered_columns(cols):
        contents[k] = ak.contents.NumpyArray(cols[k])
    for prefix, counter in LIST_PREFIXES.items():
        jag = lists[prefix]
        contents[counter] = ak.contents.NumpyArray(jag.counts.astype(np.int32))
        offsets = ak.index.Index64(np.concatenate(([0], np.cumsum(jag.counts))).astype(np.int64))
        for f, v in jag.fields.items():
            contents[f"{prefix}_{f}"] = ak.contents.ListOffsetArray(offsets,
                                                                     ak.contents.NumpyArray(v))
    n = next(iter(cols.values())).size
    return ak.Array(ak.contents.RecordArray(list(contents.values()), list(contents), length=n))


def columns_from_awkward(arr: ak.Array) -> tuple[dict[str, np.ndarray], dict[str, Jagged]]:
    """Split a toy record array (from :func:`generate_taus` or read back from a file) into flat
    numpy columns and :class:`Jagged` lists, the inputs of :func:`truth_logliks`."""
    cols: dict[str, np.ndarray] = {}
    lists: dict[str, Jagged] = {}
    prefixes = tuple(f"{p}_" for p in LIST_PREFIXES)
    for name in arr.fields:
        if not name.startswith(prefixes) and name not in LIST_PREFIXES.values():
            cols[name] = ak.to_numpy(arr[name])
    for prefix in LIST_PREFIXES:
        names = [f for f in arr.fields if f.startswith(prefix + "_")]
        counts = ak.to_numpy(ak.num(arr[names[0]], axis=1)).astype(np.int64)
        lists[prefix] = Jagged(counts, {f[len(prefix) + 1:]: ak.to_numpy(ak.flatten(arr[f]))
                                        for f in names})
    return cols, lists


def generate_taus(dataset: str | ToyDataset, n: int, seed: int = 1234, file_index: int = 0, *,
                  shift: DataMCShift = DEFAULT_SHIFT) -> ak.Array:
    """In-memory toy rows of one dataset file, exactly what ``eventTuple_<file_index>.root``
    of that dataset holds when ``n`` equals its entry count (plus nothing else)."""
    cols, lists = generate_file_columns(dataset, n, seed, file_index, shift=shift)
    return to_awkward(cols, lists)


# --------------------------------------------------------------------------------------------
# whole sample


def _check_output_dir(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"toy output '{out}' exists and is not a directory")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise OutputExistsError(f"toy output directory '{out}' is not empty; pass --overwrite "
                                "(overwrite=True) to replace its toy files")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def generate_toy(output: str | os.PathLike[str], *, seed: int = 1234, size: str | int = "small",
                 datasets: Iterable[str] | str | None = None, overwrite: bool = False,
                 progress: bool = True, shift: DataMCShift = DEFAULT_SHIFT,
                 compression: str = "lz4", max_per_file: int | None = None) -> dict[str, Any]:
    """Write the toy TauTuples ``<output>/<dataset>/eventTuple_<i>.root`` and a manifest.

    Returns the manifest (also written as ``<output>/toy_manifest.json``): seed, version,
    sizes, per-file entries / per-type counts / sha256, the data/MC shift. Refuses a non-empty
    ``output`` unless ``overwrite``; then stale ``eventTuple_*.root`` files of the written
    datasets are removed so the folder matches the manifest.
    """
    from taucoffea.toy.writer import write_taus  # local: keeps uproot off the import path

    names = resolve_datasets(datasets)
    sizes = resolve_sizes(size, names)
    out = Path(output)
    _check_output_dir(out, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    cap = {} if max_per_file is None else {"max_per_file": int(max_per_file)}
    plan = [(name, i, n_i) for name in names for i, n_i in enumerate(split_files(sizes[name], **cap))]
    manifest: dict[str, Any] = {
        "generator": "taucoffea.toy", "version": TOY_VERSION, "seed": int(seed),
        "size": size if isinstance(size, str) else int(size), "compression": compression,
        "not_valid_fraction": NOT_VALID_FRACTION, "cr_preselection": CR_PRESELECTION,
        "data_mc_shift": shift.to_dict(), "class_names": list(CLASS_NAMES), "datasets": {},
    }
    for name in names:
        ds = TOY_DATASETS[name]
        d_dir = out / name
        if d_dir.is_dir():
            keep = {f"eventTuple_{i}.root" for n_, i, _ in plan if n_ == name}
            for old in d_dir.iterdir():
                if _FILE_PATTERN.fullmatch(old.name) and old.name not in keep:
                    old.unlink()
        manifest["datasets"][name] = {
            "description": ds.description, "sample_type": ds.sample_type,
            "control_region": ds.control_region, "expected_fractions": list(ds.fractions),
            "processes": [list(p) for p in ds.processes], "files": [],
        }
    with _progress(progress, sum(n for _, _, n in plan)) as advance:
        for name, i, n_i in plan:
            cols, lists = generate_file_columns(name, n_i, seed, i, shift=shift)
            path = out / name / f"eventTuple_{i}.root"
            write_taus(path, cols, lists, overwrite=True, compression=compression,
                       uuid_seed=f"{seed}/{name}/{i}")
            cls = cols["toy_true_class"]
            manifest["datasets"][name]["files"].append({
                "path": f"{name}/eventTuple_{i}.root", "entries": int(n_i),
                "per_type": {c: int((cls == k).sum()) for k, c in enumerate(CLASS_NAMES)},
                "not_valid": int((cols["toy_gen_valid"] == 0).sum()),
                "sha256": _sha256(path),
            })
            advance(n_i, f"{name} [{i}]")
    for entry in manifest["datasets"].values():
        entry["entries"] = sum(f["entries"] for f in entry["files"])
        entry["per_type"] = {c: sum(f["per_type"][c] for f in entry["files"]) for c in CLASS_NAMES}
    manifest["total_taus"] = sum(e["entries"] for e in manifest["datasets"].values())
    write_text_atomic(out / "toy_manifest.json", json.dumps(manifest, indent=2) + "\n",
                      overwrite=True)
    return manifest


class _progress:
    """A rich progress bar over taus written, or a no-op when disabled."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled, self.total = enabled, total
        self._bar: Any = None

    def __enter__(self) -> Any:
        if not self.enabled:
            return lambda n, desc: None
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeRemainingColumn)
        self._bar = Progress(TextColumn("toy {task.description}"), BarColumn(),
                             MofNCompleteColumn(), TimeRemainingColumn())
        self._bar.start()
        task = self._bar.add_task("", total=self.total)

        def advance(n: int, desc: str) -> None:
            self._bar.update(task, advance=n, description=desc)

        return advance

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
