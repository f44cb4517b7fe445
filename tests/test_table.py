"""Input layer: NanoAOD flattening and TauTuple tau types, on real files where possible."""

from __future__ import annotations

from collections import Counter

import awkward as ak
import numpy as np
import pytest
import uproot
from coffea.nanoevents import BaseSchema, NanoEventsFactory

from taucoffea.columns.table import required_branches, tau_table
from taucoffea.errors import ConfigError, InputError


def _events(path, tree):
    # the metadata is what coffea.processor.Runner attaches to every chunk
    return NanoEventsFactory.from_root(
        {str(path): tree}, schemaclass=BaseSchema, mode="virtual", metadata={"filename": str(path), "dataset": "t"}
    ).events()


def test_nanoaod_dy_types_follow_genpartflav(shared_data):
    flav = ak.flatten(uproot.open(shared_data / "nano_dy.root")["Events"]["Tau_genPartFlav"].array())
    expected = Counter()
    for f in ak.to_list(flav):
        expected[{0: 3, 1: 0, 3: 0, 2: 1, 4: 1, 5: 2}[f]] += 1
    table = tau_table(_events(shared_data / "nano_dy.root", "Events"), "nanoaod")
    assert len(table["tau_pt"]) == 29
    assert Counter(table["tauType"].tolist()) == expected
    # matched leptons: the visible gen p4 (GenVisTau for τh, GenPart for e/μ) lies within the
    # reference matching cone of the reco tau; an indexing mix-up would put it far away
    matched = table["genLepton_index"] >= 0
    assert matched.sum() == 28
    dphi = (table["tau_phi"] - table["genLepton_vis_phi"] + np.pi) % (2 * np.pi) - np.pi
    dr = np.hypot(table["tau_eta"] - table["genLepton_vis_eta"], dphi)
    assert np.all(dr[matched] < 0.2)
    # raw scores and bitmasks keep TauTuple names; the VSjet bitmask is consistent with the raw score
    raw = table["tau_byDeepTau2017v2p1VSjetraw"]
    bits = table["tau_byDeepTau2017v2p1VSjet"].astype(np.int64)
    assert raw.shape == bits.shape == (29,)
    loosest = (bits & 1) > 0  # VVVLoose is bit 0 in the TauTuple convention
    assert np.all(raw[loosest] > 0.2599605 - 1e-6)


def test_nanoaod_data_rows_are_data_type(shared_data):
    table = tau_table(_events(shared_data / "nano_dimuon.root", "Events"), "nanoaod", ("tau_pt", "tauType", "sampleType", "evt"))
    assert len(table["tau_pt"]) == 30
    assert set(table["tauType"].tolist()) == {8}
    assert set(table["sampleType"].tolist()) == {0}
    assert len(table["evt"]) == 30


def test_tautuple_types_match_truth(tmp_path):
    from conftest import write_mini_tautuple

    truth = write_mini_tautuple(tmp_path / "a" / "t.root", 2000, seed=3)
    table = tau_table(_events(tmp_path / "a" / "t.root", "taus"), "tautuple", ("tau_pt", "tauType"))
    np.testing.assert_array_equal(table["tauType"], truth["expected_type"])
    assert (truth["expected_type"] == -1).sum() > 50


def test_missing_branch_names_file_and_branch(tmp_path):
    from conftest import write_mini_tautuple

    write_mini_tautuple(tmp_path / "a" / "t.root", 100, seed=1, drop=("genJet_index",))
    with pytest.raises(InputError, match=r"genJet_index.*t\.root"):
        tau_table(_events(tmp_path / "a" / "t.root", "taus"), "tautuple", ("tau_pt", "tauType"))


def test_unknown_format_is_config_error():
    with pytest.raises(ConfigError, match="allowed: tautuple, nanoaod, parquet"):
        required_branches("miniaod", ["tau_pt"])


def test_required_branches_translate_names():
    assert "genLepton_vis_phi" in required_branches("tautuple", ["tauType"])
    nano = required_branches("nanoaod", ["tau_pt", "tau_byDeepTau2017v2p1VSjetraw", "evt", "tauType"])
    assert nano == {"nTau", "Tau_pt", "Tau_rawDeepTau2017v2p1VSjet", "event"}
