"""DeepTau cell grids and object sets against a slow pure-Python reference on hand-made taus."""

from __future__ import annotations

import math

import numpy as np
import pytest

from taucoffea.errors import InputError
from taucoffea.ml.blocks import ColumnBlock
from taucoffea.ml.features import FEATURE_NAMES, FeatureSpec, Scaling, object_tables, required_columns, tau_features
from taucoffea.ml.grids import INNER, OUTER, build_grids, cell_index
from taucoffea.ml.inputs import InputBuilder, build_sets

KEEP = ("valid", "rel_pt", "deta", "dphi")
PF_CODE = {"PfCand_chHad": 1, "PfCand_electron": 2, "PfCand_muon": 3, "PfCand_gamma": 4, "PfCand_nHad": 5}
SOURCE = {**{t: "pfCand" for t in PF_CODE}, "Electron": "ele", "Muon": "muon"}


def _spec() -> FeatureSpec:
    """Only valid / rel_pt / deta / dphi per object type, and rho as GridGlobal."""
    disabled = {}
    for t, names in FEATURE_NAMES.items():
        if t == "TauFlat":
            continue
        prefix = names[0][: -len("valid")]  # e.g. "pfCand_ele_", "ele_", "muon_"
        keep = ("rho",) if t == "GridGlobal" else tuple(prefix + k for k in KEEP)
        disabled[t] = [n for n in names if n not in keep]
    spec = FeatureSpec(disabled)
    for t in FEATURE_NAMES:
        if t not in ("TauFlat", "GridGlobal"):
            assert spec.n_features(t) == 4, (t, spec.enabled(t))
    return spec


# hand-made taus: (pt, eta, phi, rho) and objects (tau, source, particleType or None, pt, eta, phi)
TAUS = [(50.0, 0.0, 0.0, 11.0), (20.0, 1.0, 3.13, 12.0), (100.0, -0.5, -1.0, 13.0), (35.0, 2.0, 0.5, 14.0)]
OBJECTS = [
    (0, "pfCand", 1, 10.0, 0.0099, 0.0),    # inner cell (0, 0): 0.0099/0.02 + 0.5 < 1
    (0, "pfCand", 1, 12.0, 0.0101, 0.0),    # inner cell (1, 0)
    (0, "pfCand", 1, 3.0, 0.0050, 0.0049),  # same inner cell as the first, lower pT: loses
    (0, "pfCand", 1, 10.0, -0.003, 0.002),  # same cell, same pT as the first: first in list wins
    (0, "pfCand", 4, 2.0, 0.001, -0.001),   # photon in the chHad's cell: own feature block
    (0, "pfCand", 5, 4.0, 0.0, 0.059),      # ΔR 0.059 < r_sig 0.06: inner
    (0, "pfCand", 5, 5.0, 0.0, -0.061),     # ΔR 0.061 > r_sig: outer only
    (0, "pfCand", 2, 7.0, 0.3, 0.3),        # ΔR 0.42: outer
    (0, "pfCand", 3, 9.0, 0.36, 0.36),      # ΔR 0.509: outside the isolation cone
    (0, "pfCand", 0, 9.0, 0.01, 0.0),       # undefined particle type: ignored
    (0, "pfCand", 6, 9.0, 0.01, 0.0),       # HF: ignored
    (0, "ele", None, 20.0, 0.02, 0.01),
    (0, "muon", None, 30.0, -0.2, 0.1),
    (1, "pfCand", 1, 8.0, 1.0, -3.13),      # Δφ wraps: 2π − 6.26 = +0.0232
    (1, "pfCand", 4, 1.0, 1.04, 3.10),      # Δφ −0.03; pT 20 → r_sig 0.1
    (1, "pfCand", 2, 6.0, 1.099, 3.13),     # ΔR 0.099 < 0.1: inner
    (2, "pfCand", 1, 30.0, -0.5, -1.0),     # pT 100 → r_sig 0.05
    (2, "pfCand", 1, 1.0, -0.5, -1.049),    # ΔR 0.049: inner
    (2, "pfCand", 1, 2.0, -0.5, -1.051),    # ΔR 0.051: outer only
    (2, "muon", None, 50.0, -0.49, -0.98),
    (2, "ele", None, 15.0, -0.9, -0.7),     # ΔR 0.5 exactly-ish: just outside (0.5 not < 0.5)
]


def _block() -> ColumnBlock:
    cols = {"tau_pt": [], "tau_eta": [], "tau_phi": [], "rho": []}
    for pt, eta, phi, rho in TAUS:
        for k, v in zip(cols, (pt, eta, phi, rho)):
            cols[k].append(v)
    flat = {k: np.asarray(v, dtype=np.float32) for k, v in cols.items()}
    lists = {}
    from taucoffea.ml.blocks import _Collection

    for source in ("pfCand", "ele", "muon"):
        objs = [o for o in OBJECTS if o[1] == source]
        counts = np.array([sum(1 for o in objs if o[0] == t) for t in range(len(TAUS))])
        objs = sorted(objs, key=lambda o: o[0])  # stable: list order kept within a tau
        fields = {"pt": np.array([o[3] for o in objs], np.float32), "eta": np.array([o[4] for o in objs], np.float32),
                  "phi": np.array([o[5] for o in objs], np.float32)}
        if source == "pfCand":
            fields["particleType"] = np.array([o[2] for o in objs], np.int32)
        lists[source] = _Collection(np.concatenate(([0], np.cumsum(counts))), fields)
    return ColumnBlock(len(TAUS), flat, lists, "hand-made")


def _ref_index(x: float, size: float, n: int) -> int | None:
    i = int(math.copysign(math.floor(abs(x) / size + 0.5), x)) if x != 0 else 0
    if abs(x) <= size * n / 2 and abs(i) <= n // 2:
        return i
    return None


def _wrap(x: float) -> float:
    while x > math.pi:
        x -= 2 * math.pi
    while x <= -math.pi:
        x += 2 * math.pi
    return x


def _reference(grid, spec: FeatureSpec) -> dict[str, np.ndarray]:
    """Loops over taus and objects, as the C++ CellGrid does (float32 inputs, double maths)."""
    f32 = lambda v: float(np.float32(v))  # noqa: E731
    ptype_to_type = {v: k for k, v in PF_CODE.items()}
    n = grid.n_cells
    groups = {"egamma": ("GridGlobal", "PfCand_electron", "PfCand_gamma", "Electron"),
              "muon": ("GridGlobal", "PfCand_muon", "Muon"), "hadrons": ("GridGlobal", "PfCand_chHad", "PfCand_nHad")}
    out = {g: np.zeros((len(TAUS), n, n, sum(spec.n_features(t) for t in types)), np.float32) for g, types in groups.items()}
    for ti, (tpt, teta, tphi, rho) in enumerate(TAUS):
        tpt, teta, tphi = f32(tpt), f32(teta), f32(tphi)
        r_sig = max(3.0 / max(tpt, 30.0), 0.05)
        best: dict[tuple[int, int, str], tuple[float, list[float]]] = {}
        occupied = set()
        for oi, (t, source, ptype, pt, eta, phi) in enumerate(OBJECTS):
            if t != ti:
                continue
            if source == "pfCand":
                if ptype in (0, 6, 7):
                    continue
                otype = ptype_to_type[ptype]
            else:
                otype = "Electron" if source == "ele" else "Muon"
            deta = f32(eta) - teta
            dphi = _wrap(f32(phi) - tphi)
            dr = math.hypot(deta, dphi)
            if dr >= 0.5 or (grid.name == "inner" and not dr < r_sig):
                continue
            ie, ip = _ref_index(deta, grid.cell_size, n), _ref_index(dphi, grid.cell_size, n)
            if ie is None or ip is None:
                continue
            key = (ie, ip, otype)
            occupied.add((ie, ip))
            if key not in best or f32(pt) > best[key][0]:
                best[key] = (f32(pt), [1.0, f32(pt) / tpt, deta, dphi])
        for g, types in groups.items():
            offset = 0
            for typ in types:
                if typ == "GridGlobal":
                    for ie, ip in occupied:
                        out[g][ti, ie + n // 2, ip + n // 2, offset] = rho
                else:
                    for (ie, ip, otype), (_, feats) in best.items():
                        if otype == typ:
                            out[g][ti, ie + n // 2, ip + n // 2, offset : offset + 4] = feats
                offset += spec.n_features(typ)
    return out


@pytest.mark.parametrize("grid", [INNER, OUTER], ids=["inner", "outer"])
def test_grids_match_python_reference(grid) -> None:
    spec = _spec()
    block = _block()
    objects = object_tables(block, spec)
    glob = tau_features(block, spec, "GridGlobal")
    got = build_grids(block.n, objects, glob, spec, Scaling.identity(), grid)
    want = _reference(grid, spec)
    for group in want:
        assert got[group].shape == want[group].shape
        np.testing.assert_allclose(got[group], want[group], rtol=1e-6, atol=1e-7, err_msg=f"{grid.name} {group}")
    # the hand-made cases really exercise the rules
    had = got["hadrons"]
    if grid is INNER:
        c = INNER.max_index
        # hadrons layout: GridGlobal rho (0), chHad valid/rel_pt/deta/dphi (1-4), nHad (5-8)
        assert had[0, c, c, 2] == pytest.approx(10.0 / 50.0)  # highest pT of three, first on the tie
        assert had[0, c, c, 3] == pytest.approx(np.float32(0.0099))
        assert had[0, c + 1, c, 2] == pytest.approx(12.0 / 50.0)
        assert had[0, c, c + 3, 5] == 1.0  # nHad at ΔR 0.059 (signal cone) is in the inner grid
        assert had[0, c, c - 3, 5] == 0.0  # …the one at 0.061 is not
        assert had[0, c, c, 0] == 11.0 and had[0, c + 5, c + 5, 0] == 0.0  # GridGlobal only in occupied cells
        assert had[1, c, c + 1, 1] == 1.0  # φ wrap-around: +0.0232 → cell +1
        assert not had[3].any()  # a tau without objects: GridGlobal stays 0 too
    else:
        assert got["muon"][0, :, :, 5].sum() == 1.0  # the PAT muon (ΔR 0.22) is in the outer grid only


def test_cell_index_edges() -> None:
    x = np.array([0.0, 0.0099, 0.01, -0.0101, 0.0999, 0.1099, 0.11, -0.11, 0.2])
    idx, ok = cell_index(x, INNER)
    assert idx[ok].tolist() == [0, 0, 1, -1, 5, 5]
    assert ok.tolist() == [True] * 6 + [False] * 3  # |x| = 0.11 would overflow the index: rejected
    idx, ok = cell_index(np.array([0.524, -0.5, 0.525, 0.526]), OUTER)
    assert ok.tolist() == [True, True, False, False] and idx[:2].tolist() == [10, -10]


def test_signal_cone_and_unknown_particle_type() -> None:
    spec = _spec()
    block = _block()
    tables = object_tables(block, spec)
    chhad = tables["PfCand_chHad"]
    inner_of_tau2 = chhad.inner[chhad.tau == 2]
    assert inner_of_tau2.tolist() == [True, True, False]  # ΔR 0, 0.049 < 0.05 ≤ 0.051
    bad = _block()
    bad.lists["pfCand"].fields["particleType"][0] = 8
    with pytest.raises(InputError, match="particleType"):
        object_tables(bad, spec)


def test_sets_keep_highest_pt_objects_in_order() -> None:
    spec = _spec()
    block = _block()
    objects = object_tables(block, spec)
    sets = build_sets(block.n, objects, spec, Scaling.identity(), {"egamma": 2, "muon": 4, "hadrons": 3})
    had, mask = sets["input_hadrons"], sets["input_hadrons_mask"]
    # tau 0 hadrons in the cone (chHad 10, 12, 3, 10; nHad 4, 5): top three by pT = 12, 10, 10 (list order)
    assert mask[0].tolist() == [1, 1, 1]
    assert had[0, :, 1].tolist() == pytest.approx([12 / 50, 10 / 50, 10 / 50])
    assert had[0, 1, 2] == pytest.approx(np.float32(0.0099))  # the first of the equal-pT pair comes first
    assert not had[0, :, 4:].any()  # no nHad among the top three: its block stays 0
    eg = sets["input_egamma"]
    # tau 0 egamma: ele 20 (Electron block at offset 8), PF electron 7 (offset 0)
    assert eg[0, 0, 8] == 1.0 and eg[0, 1, 0] == 1.0
    assert sets["input_muon_mask"][3].sum() == 0


def test_builder_shapes_on_toy_taus() -> None:
    from taucoffea.toy.generator import generate_taus

    arr = generate_taus("TTToSemiLeptonic", 300, seed=5)
    for kind in ("light", "deeptau"):
        builder = InputBuilder(kind)
        block = ColumnBlock.from_columns(arr, builder.columns())
        x = builder.build(block)
        assert {k: v.shape[1:] for k, v in x.items()} == builder.input_shapes()
        assert all(np.isfinite(v).all() and v.dtype == np.float32 for v in x.values())
    assert InputBuilder("deeptau").input_shapes()["input_inner_egamma"] == (11, 11, 86)
    assert InputBuilder("deeptau").input_shapes()["input_outer_hadrons"] == (21, 21, 38)
    assert InputBuilder().input_shapes()["input_tau"] == (43,)
    assert "pfCand_particleType" in required_columns(FeatureSpec())
