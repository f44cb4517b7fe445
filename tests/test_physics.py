"""Physics layer: dataset hash, gen matching, tau types, decay modes, working points."""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

import awkward as ak
import numpy as np
import pytest

from taucoffea.errors import ConfigError, InputError
from taucoffea.physics import (
    ADVERSARIAL_DECAY_MODES,
    DM_NAMES,
    EVAL_DECAY_MODES,
    HPS_DECAY_MODES,
    REFERENCE_THRESHOLDS,
    TAU_TYPE_NAMES,
    TAUTUPLE_DEFAULT_FLOAT,
    TAUTUPLE_DEFAULT_INT,
    WP_BITS,
    WP_NAMES_VS,
    GenLeptonKind,
    GenLeptonMatch,
    SampleType,
    TauType,
    compute_tau_type,
    delta_phi,
    delta_r,
    gen_lepton_match,
    is_hps_decay_mode,
    n_charged_prongs,
    n_neutral_prongs,
    nanoaod_id_to_tautuple_bitmask,
    passes_wp,
    std_hash,
    tau_type,
    tau_type_from_name,
    wp_bitmask,
)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.Philox(seed))


# ------------------------------------------------------------------------------------------
# dataset hash

# reference spec §3.7, checked there against g++
HASH_VECTORS = [
    ("DY", 10918959937480734963),
    ("TT", 10229932817631443077),
    ("TT_had", 2369361609141487133),
    ("W", 7441895245890971439),
    ("QCD", 9072256947540860514),
    ("Higgs", 4403348560354579678),
    ("Zprime_e", 5892584894037048799),
    ("TauGun", 9146040637532569934),
    ("DYJetsToLL_M-50-amcatnloFXFX", 8818179049956320228),
    ("", 6142509188972423790),
]


@pytest.mark.parametrize(("name", "expected"), HASH_VECTORS)
def test_std_hash_reference_vectors(name: str, expected: int) -> None:
    assert std_hash(name) == expected


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not available")
def test_std_hash_matches_libstdcxx(tmp_path: Path) -> None:
    """Every length 0..40 (all tail sizes, several full words) and non-ASCII text."""
    rng = _rng(7)
    alphabet = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") + [
        "é", "τ", "μ", "→",
    ]
    strings = ["".join(rng.choice(alphabet, size=n)) for n in range(41)]
    src = tmp_path / "h.cpp"
    src.write_text(
        "#include <functional>\n#include <iostream>\n#include <string>\n"
        "int main(){std::string s; while(std::getline(std::cin, s))"
        " std::cout << std::hash<std::string>{}(s) << '\\n';}\n"
    )
    exe = tmp_path / "h"
    subprocess.run(["g++", "-O1", "-o", str(exe), str(src)], check=True, timeout=120)
    out = subprocess.run(
        [str(exe)], input="\n".join(strings) + "\n", capture_output=True, check=True,
        text=True, encoding="utf-8", timeout=60,
    ).stdout.split()
    assert [int(v) for v in out] == [std_hash(s) for s in strings]


# ------------------------------------------------------------------------------------------
# tau types and names


def test_tau_type_names_and_lookup() -> None:
    assert TAU_TYPE_NAMES == ("e", "mu", "tau", "jet", "emb_e", "emb_mu", "emb_tau", "emb_jet",
                              "data")
    for i, name in enumerate(TAU_TYPE_NAMES):
        assert tau_type_from_name(name) == i
    with pytest.raises(ConfigError) as err:
        tau_type_from_name("muon")
    assert "'muon'" in str(err.value) and "emb_jet" in str(err.value)


def test_defaults_are_cpp_lowest() -> None:
    assert TAUTUPLE_DEFAULT_FLOAT == np.float32(-3.4028235e38)
    assert TAUTUPLE_DEFAULT_INT == -2147483648


# ------------------------------------------------------------------------------------------
# delta phi / delta R


def test_delta_phi_wraps_into_half_open_interval() -> None:
    rng = _rng(11)
    a = rng.uniform(-20, 20, 10_000)
    b = rng.uniform(-20, 20, 10_000)
    d = delta_phi(a, b)
    assert np.all(d >= -np.pi) and np.all(d < np.pi)
    turns = (a - b - d) / (2 * np.pi)
    np.testing.assert_allclose(turns, np.round(turns), atol=1e-9)
    assert delta_phi(np.pi, 0.0) == pytest.approx(-np.pi)  # +π maps to -π
    assert delta_phi(3.1, -3.1) == pytest.approx(6.2 - 2 * np.pi)


def test_delta_r_awkward_and_lowest_without_warnings() -> None:
    eta1 = ak.Array(np.array([0.0, 1.0, TAUTUPLE_DEFAULT_FLOAT], dtype=np.float32))
    phi1 = ak.Array(np.array([3.0, 0.0, TAUTUPLE_DEFAULT_FLOAT], dtype=np.float32))
    eta2 = ak.Array(np.array([0.0, 1.3, 0.5], dtype=np.float32))
    phi2 = ak.Array(np.array([-3.0, 0.4, 1.0], dtype=np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dr = ak.to_numpy(delta_r(eta1, phi1, eta2, phi2))
    assert dr[0] == pytest.approx(2 * np.pi - 6.0, rel=1e-6)
    assert dr[1] == pytest.approx(0.5, rel=1e-6)
    assert np.isfinite(dr[2]) and dr[2] > 1e37


# ------------------------------------------------------------------------------------------
# gen matching (reference spec §1.2)

LOWEST = float(TAUTUPLE_DEFAULT_FLOAT)


def _match(rows: list[dict], dtype: type = np.float64) -> np.ndarray:
    """Rows of (kind, lep, jet, eta, phi, vis_pt, vis_eta, vis_phi); tau_pt is irrelevant."""
    col = {k: [r[k] for r in rows] for k in rows[0]}
    return gen_lepton_match(
        np.array(col["kind"], np.int32), np.array(col["lep"], np.int32),
        np.array(col["jet"], np.int32), np.full(len(rows), 30.0, dtype),
        np.array(col["eta"], dtype), np.array(col["phi"], dtype),
        np.array(col["vis_pt"], dtype), np.array(col["vis_eta"], dtype),
        np.array(col["vis_phi"], dtype),
    )


def _row(kind=5, lep=0, jet=-1, eta=0.0, phi=0.0, vis_pt=30.0, vis_eta=0.0, vis_phi=0.0):
    return dict(kind=kind, lep=lep, jet=jet, eta=eta, phi=phi, vis_pt=vis_pt, vis_eta=vis_eta,
                vis_phi=vis_phi)


M = GenLeptonMatch
K = GenLeptonKind


def test_gen_match_kinds() -> None:
    rows = [
        _row(kind=K.PromptElectron),
        _row(kind=K.PromptMuon),
        _row(kind=K.TauDecayedToElectron),
        _row(kind=K.TauDecayedToMuon),
        _row(kind=K.TauDecayedToHadrons),
        _row(kind=K.Other),  # C++ throws
        _row(kind=0),  # not a GenLeptonKind: also throws in C++
        _row(kind=K.Other, vis_eta=1.0),  # ΔR is tested before the kind: no throw
        _row(lep=-1, jet=3),  # no gen lepton but a gen jet
        _row(lep=-1, jet=-1),  # nothing
        _row(kind=K.TauDecayedToHadrons, vis_pt=10.0, jet=2),  # lepton fails: no jet fallback
    ]
    expected = [M.Electron, M.Muon, M.TauElectron, M.TauMuon, M.Tau, M.Invalid, M.Invalid,
                M.NoneMatch, M.NoMatch, M.NoneMatch, M.NoneMatch]
    assert _match(rows).tolist() == [int(e) for e in expected]
    assert _match(rows).dtype == np.int32


def test_gen_match_delta_r_boundary() -> None:
    # float64 inputs so that ΔR can be exactly 0.2: C++ rejects only ΔR > 0.2
    just_above = np.nextafter(0.2, 1.0)
    rows = [
        _row(eta=0.2, vis_eta=0.0),
        _row(eta=0.0, vis_eta=-0.2),
        _row(phi=0.2, vis_phi=0.0),
        _row(eta=just_above, vis_eta=0.0),
        _row(phi=0.0, vis_phi=just_above),
        _row(eta=0.12, phi=0.16, vis_eta=0.0, vis_phi=0.0),  # 3-4-5 triangle: ΔR = 0.2
    ]
    got = _match(rows)
    assert got[:3].tolist() == [M.Tau] * 3
    assert got[3:5].tolist() == [M.NoneMatch] * 2
    # 0.12² + 0.16² rounds to either side of 0.04; whatever sqrt gives, the rule is `> 0.2`
    dr = float(delta_r(0.12, 0.16, 0.0, 0.0))
    assert got[5] == (M.NoneMatch if dr > 0.2 else M.Tau)


def test_gen_match_float32_promotes_like_cpp() -> None:
    # float32(0.1) is slightly above 0.1, so in double precision (as the C++ computes) the
    # distance is 0.2000000030 > 0.2 and the lepton is rejected.
    got = _match([_row(eta=0.1, vis_eta=-0.1)], dtype=np.float32)
    assert got.tolist() == [M.NoneMatch]


def test_gen_match_delta_phi_wrap() -> None:
    rows = [
        _row(phi=np.pi - 0.05, vis_phi=-np.pi + 0.05),  # Δφ = 0.1 across the ±π seam
        _row(phi=-np.pi + 0.01, vis_phi=np.pi - 0.01),
        _row(phi=3.0, vis_phi=-3.0),  # Δφ = 2π - 6 = 0.283: too far
    ]
    assert _match(rows).tolist() == [M.Tau, M.Tau, M.NoneMatch]


@pytest.mark.parametrize(
    ("kind", "threshold", "match"),
    [
        (K.PromptElectron, 8.0, M.Electron),
        (K.PromptMuon, 8.0, M.Muon),
        (K.TauDecayedToElectron, 8.0, M.TauElectron),
        (K.TauDecayedToMuon, 8.0, M.TauMuon),
        (K.TauDecayedToHadrons, 15.0, M.Tau),
    ],
)
def test_gen_match_vis_pt_thresholds(kind: int, threshold: float, match: int) -> None:
    below = float(np.nextafter(np.float32(threshold), np.float32(0)))
    rows = [_row(kind=kind, vis_pt=threshold), _row(kind=kind, vis_pt=below)]
    assert _match(rows, dtype=np.float32).tolist() == [match, M.NoneMatch]
    if threshold == 8.0:  # 8 <= pT < 15 is enough for leptons
        assert _match([_row(kind=kind, vis_pt=10.0)]).tolist() == [match]


def test_gen_match_absent_tau_is_none_without_warnings() -> None:
    rows = [
        _row(eta=LOWEST, phi=LOWEST, vis_eta=0.3, vis_phi=-2.0),
        _row(kind=K.Other, eta=LOWEST, phi=LOWEST, vis_eta=0.3, vis_phi=-2.0),
        _row(lep=-1, jet=0, eta=LOWEST, phi=LOWEST, vis_eta=LOWEST, vis_phi=LOWEST,
             vis_pt=LOWEST),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = _match(rows, dtype=np.float32)
    assert got.tolist() == [M.NoneMatch, M.NoneMatch, M.NoMatch]


# ------------------------------------------------------------------------------------------
# tau type (reference spec §1.3)

S = SampleType
TT = TauType

TABLE = [
    (S.MC, M.Electron, TT.e),
    (S.MC, M.TauElectron, TT.e),
    (S.MC, M.Muon, TT.mu),
    (S.MC, M.TauMuon, TT.mu),
    (S.MC, M.Tau, TT.tau),
    (S.Embedded, M.Tau, TT.emb_tau),
    (S.MC, M.NoMatch, TT.jet),
    (S.Data, M.NoMatch, TT.data),
    (S.Embedded, M.NoMatch, TT.emb_jet),
    (S.Embedded, M.TauMuon, TT.emb_mu),
    (S.Embedded, M.TauElectron, TT.emb_e),
]
INCOMPATIBLE = [
    (S.Embedded, M.Electron),
    (S.Embedded, M.Muon),
    (S.Data, M.Electron),
    (S.Data, M.Tau),
    (S.Data, M.TauMuon),
    (S.MC, M.NoneMatch),
    (S.Embedded, M.NoneMatch),
    (S.MC, M.Invalid),
    (S.Data, M.Invalid),
    (3, M.Tau),  # unknown sample type
]


def test_tau_type_table() -> None:
    samples = [s for s, _, _ in TABLE] + [s for s, _ in INCOMPATIBLE]
    matches = [m for _, m, _ in TABLE] + [m for _, m in INCOMPATIBLE]
    expected = [int(t) for _, _, t in TABLE] + [-1] * len(INCOMPATIBLE)
    got = tau_type(np.array(matches), np.array(samples))
    assert got.dtype == np.int32
    assert got.tolist() == expected


def test_tau_type_data_deviation() -> None:
    # real data has no gen information at all: NoneMatch must still be "data"
    assert tau_type(np.array([M.NoneMatch]), np.array([S.Data])).tolist() == [TT.data]


def _tau_table(n: int, **overrides) -> dict[str, np.ndarray]:
    table = {
        "genLepton_kind": np.full(n, K.TauDecayedToHadrons, np.int32),
        "genLepton_index": np.zeros(n, np.int32),
        "genJet_index": np.full(n, -1, np.int32),
        "tau_pt": np.full(n, 40.0, np.float32),
        "tau_eta": np.zeros(n, np.float32),
        "tau_phi": np.zeros(n, np.float32),
        "genLepton_vis_pt": np.full(n, 35.0, np.float32),
        "genLepton_vis_eta": np.full(n, 0.05, np.float32),
        "genLepton_vis_phi": np.zeros(n, np.float32),
        "sampleType": np.full(n, S.MC, np.int32),
        "tau_index": np.zeros(n, np.int32),
    }
    for key, value in overrides.items():
        table[key] = np.asarray(value, dtype=table[key].dtype)
    return table


def test_compute_tau_type_end_to_end() -> None:
    table = _tau_table(
        6,
        genLepton_kind=[5, 1, 5, 6, 5, 5],
        genLepton_index=[0, 0, -1, 0, 0, -1],
        genJet_index=[-1, -1, 0, -1, -1, -1],
        sampleType=[1, 1, 1, 1, 2, 0],
        tau_index=[0, 0, 0, 0, -1, 0],
    )
    got = compute_tau_type(table)
    # tau, e, jet, invalid(kind Other) -> -1, no reco tau -> -1, data
    assert got.tolist() == [TT.tau, TT.e, TT.jet, -1, -1, TT.data]
    assert compute_tau_type(ak.Array(table)).tolist() == got.tolist()
    with pytest.raises(InputError, match="1 row"):
        compute_tau_type(table, strict=True)
    del table["genJet_index"]
    with pytest.raises(InputError, match="genJet_index"):
        compute_tau_type(table)


# ------------------------------------------------------------------------------------------
# decay modes


def test_decay_modes() -> None:
    dms = np.array(HPS_DECAY_MODES)
    assert n_charged_prongs(dms).tolist() == [1, 1, 1, 2, 2, 3, 3]
    assert n_neutral_prongs(dms).tolist() == [0, 1, 2, 0, 1, 0, 1]
    assert n_charged_prongs(10) == 3
    assert set(DM_NAMES) == set(HPS_DECAY_MODES)
    assert set(EVAL_DECAY_MODES) == set(HPS_DECAY_MODES) - {5, 6}
    assert ADVERSARIAL_DECAY_MODES == (0, 1, 10, 11)
    assert is_hps_decay_mode(np.array([0, 3, 11, -1])).tolist() == [True, False, True, False]


# ------------------------------------------------------------------------------------------
# working points


def test_wp_bits_and_names() -> None:
    assert WP_BITS["VVVLoose"] == 0 and WP_BITS["Medium"] == 4 and WP_BITS["VVVTight"] == 8
    assert WP_NAMES_VS["mu"] == ("VLoose", "Loose", "Medium", "Tight")
    for version in REFERENCE_THRESHOLDS.values():
        for vs, thresholds in version.items():
            assert tuple(thresholds) == WP_NAMES_VS[vs]
            values = list(thresholds.values())
            assert values == sorted(values), "thresholds must tighten"


def test_wp_bitmask_and_passes() -> None:
    thresholds = REFERENCE_THRESHOLDS["DeepTau2017v2p1"]["mu"]  # bits 2..5
    scores = np.array([0.0, 0.1058354, 0.11, 0.3, 0.6, 0.9, np.nan], dtype=np.float64)
    got = wp_bitmask(scores, thresholds)
    assert got.dtype == np.uint16
    # "> threshold": a score equal to the VLoose cut does not pass it
    assert got.tolist() == [0, 0, 0b100, 0b1100, 0b11100, 0b111100, 0]
    assert passes_wp(got, "Medium").tolist() == [False] * 4 + [True, True, False]
    assert not passes_wp(got, "VVVLoose").any()
    with pytest.raises(ConfigError, match="'Meduim'"):
        passes_wp(got, "Meduim")


def test_wp_bitmask_cumulative_for_ordered_thresholds() -> None:
    scores = _rng(3).uniform(0, 1, 5000)
    mask = wp_bitmask(scores, REFERENCE_THRESHOLDS["DeepTau2018v2p5"]["jet"]).astype(np.int64)
    assert np.all((mask & (mask + 1)) == 0)  # 2**k - 1 for VSjet (bit 0 = VVVLoose)
    n_passed = np.log2(mask + 1).round().astype(int)
    cuts = np.array(list(REFERENCE_THRESHOLDS["DeepTau2018v2p5"]["jet"].values()))
    assert np.array_equal(n_passed, (scores[:, None] > cuts[None, :]).sum(axis=1))


def test_nanoaod_conversion() -> None:
    cumulative = np.array([0, 1, 3, 7, 15], dtype=np.uint8)
    assert nanoaod_id_to_tautuple_bitmask(cumulative, "mu").tolist() == [0, 4, 12, 28, 60]
    assert nanoaod_id_to_tautuple_bitmask(cumulative, "jet").tolist() == [0, 1, 3, 7, 15]
    assert nanoaod_id_to_tautuple_bitmask(np.array([255]), "e").tolist() == [255]
    mu = nanoaod_id_to_tautuple_bitmask(np.array([1, 15]), "mu")
    assert passes_wp(mu, "VLoose").tolist() == [True, True]
    assert passes_wp(mu, "Loose").tolist() == [False, True]
    assert passes_wp(mu, "Tight").tolist() == [False, True]
    index = np.array([0, 1, 2, 4])
    assert nanoaod_id_to_tautuple_bitmask(index, "mu", encoding="index").tolist() == [
        0, 4, 12, 60]
    for bad, vs, encoding in [([2], "jet", "bitmask"), ([31], "mu", "bitmask"),
                              ([5], "mu", "index"), ([-1], "e", "bitmask")]:
        with pytest.raises(InputError):
            nanoaod_id_to_tautuple_bitmask(np.array(bad), vs, encoding=encoding)
    with pytest.raises(ConfigError, match="'tau'"):
        nanoaod_id_to_tautuple_bitmask(cumulative, "tau")


@pytest.mark.parametrize("filename", ["nano_dy.root", "nano_dimuon.root"])
def test_nanoaod_ids_agree_with_reference_thresholds(filename: str) -> None:
    """Real NanoAOD: converted ID bits == bits rebuilt from raw scores and §8.5 thresholds."""
    path = SHARED_DATA / filename
    if not path.exists():
        pytest.skip(f"{path} not available")
    uproot = pytest.importorskip("uproot")
    events = uproot.open(path)["Events"]
    for vs in ("e", "mu", "jet"):
        raw = ak.flatten(events[f"Tau_rawDeepTau2017v2p1VS{vs}"].array())
        ids = ak.flatten(events[f"Tau_idDeepTau2017v2p1VS{vs}"].array())
        assert len(ids) > 20
        converted = nanoaod_id_to_tautuple_bitmask(ids, vs)
        rebuilt = wp_bitmask(raw, REFERENCE_THRESHOLDS["DeepTau2017v2p1"][vs])
        assert converted.tolist() == rebuilt.tolist()
