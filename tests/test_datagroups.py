"""Data-group configs: the original .cfg syntax, the YAML form, validation, file matching."""

from __future__ import annotations

from pathlib import Path

import pytest

from taucoffea.datagroups import DataGroup, match_files, read_datagroups
from taucoffea.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "datagroups"

TOY_DATASETS = [
    "DYJetsToLL_M-50",
    "TTToSemiLeptonic",
    "TTToHadronic",
    "WJetsToLNu",
    "QCD_Pt-15to7000",
    "GluGluHToTauTau_M125",
    "ZprimeToEE_M-4000",
    "DYJetsToLL_M-50_MuTau",
    "TTToSemiLeptonic_MuTau",
    "WJetsToLNu_MuTau",
    "QCD_Pt-15to7000_MuTau",
    "SingleMuon_MuTau",
]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_cfg_syntax_continuation_quotes_comments_blank_lines(tmp_path: Path) -> None:
    cfg = _write(
        tmp_path,
        "g.cfg",
        "# a comment line\n"
        "\n"
        "Zeta: dir=(Z.*) file=.*\\.root types=e\n"
        "   # indented comment\n"
        'Alpha: dir="(A one|A two)" \\\n'
        "       file=f.* \\\n"
        '       types="jet, e" mix_p=0.25\n'
        "#Gamma: dir=(G.*) file=.* types=tau \\\n"
        "    types=still part of the commented item\n"
        "Beta: dir=B file=x types=mu\n",
    )
    groups = read_datagroups(cfg)
    # alphabetical, not file order (the original's std::map)
    assert [g.name for g in groups] == ["Alpha", "Beta", "Zeta"]
    alpha = groups[0]
    assert alpha.dir == "(A one|A two)"  # quoted value keeps its blank
    assert alpha.file == "f.*"
    assert alpha.types == ("jet", "e")
    assert alpha.mix_p == pytest.approx(0.25)
    assert groups[1].mix_p is None
    assert groups[2].file == r".*\.root"


def test_alphabetical_order_is_byte_order(tmp_path: Path) -> None:
    cfg = _write(tmp_path, "g.cfg", "b: dir=b file=x types=e\nTT_had: dir=t file=x types=e\nTT: dir=T file=x types=e\nW: dir=w file=x types=e\n")
    assert [g.name for g in read_datagroups(cfg)] == ["TT", "TT_had", "W", "b"]


def test_duplicate_group_names_both_lines(tmp_path: Path) -> None:
    cfg = _write(tmp_path, "g.cfg", "DY: dir=a file=b types=e\n\n# c\nDY: dir=c file=d types=e\n")
    with pytest.raises(ConfigError, match=r"duplicate data group 'DY'.*line 1.*line 4"):
        read_datagroups(cfg)


def test_unknown_key_names_key_and_allowed(tmp_path: Path) -> None:
    cfg = _write(tmp_path, "g.cfg", "DY: dir=a file=b types=e colour=red\n")
    with pytest.raises(ConfigError, match=r"unknown key 'colour'.*allowed keys are dir, file, types"):
        read_datagroups(cfg)


def test_unknown_tau_type(tmp_path: Path) -> None:
    cfg = _write(tmp_path, "g.cfg", "DY: dir=a file=b types=jet,electron\n")
    with pytest.raises(ConfigError, match=r"unknown tau type 'electron'"):
        read_datagroups(cfg)


@pytest.mark.parametrize(
    ("line", "pattern"),
    [
        ("DY dir=a file=b types=e", "expected '<name>: key=value"),
        ("DY: dir=a file=b", "missing or empty key 'types'"),
        ("DY: dir=a file=b types=e dir=c", "key 'dir' given twice"),
        ("DY: dir=a file=b types=e # trailing", "cannot parse '#'"),
        ("DY: dir=( file=b types=e", "invalid dir regex"),
        ("DY: dir=a file=b types=e,e", "listed twice"),
        ("DY: dir=a file=b types=e mix_p=lots", "mix_p='lots' is not a number"),
        ('DY: dir="a file=b types=e', "cannot parse"),
        ("D/Y: dir=a file=b types=e", "invalid group name"),
    ],
)
def test_cfg_errors(tmp_path: Path, line: str, pattern: str) -> None:
    cfg = _write(tmp_path, "g.cfg", line + "\n")
    with pytest.raises(ConfigError, match=pattern):
        read_datagroups(cfg)


def test_cfg_error_names_file_and_line(tmp_path: Path) -> None:
    cfg = _write(tmp_path, "g.cfg", "# x\nDY: dir=a file=b types=e colour=red\n")
    with pytest.raises(ConfigError, match=r"g\.cfg:2"):
        read_datagroups(cfg)


def test_yaml_equivalent_and_validated(tmp_path: Path) -> None:
    y = _write(
        tmp_path,
        "g.yaml",
        "groups:\n"
        "  Zeta: {dir: '(Z.*)', file: '.*', types: [e]}\n"
        "  Alpha: {dir: A, file: f, types: 'jet, e', mix_p: 0.5}\n",
    )
    c = _write(tmp_path, "g.cfg", "Zeta: dir=(Z.*) file=.* types=e\nAlpha: dir=A file=f types=jet,e mix_p=0.5\n")
    assert read_datagroups(y) == read_datagroups(c)
    assert read_datagroups(y)[0].mix_p == 0.5

    bad = _write(tmp_path, "bad.yaml", "groups:\n  DY: {dir: a, file: b, types: [e], colour: red}\n")
    with pytest.raises(ConfigError, match="unknown key 'colour'"):
        read_datagroups(bad)
    dup = _write(tmp_path, "dup.yaml", "groups:\n  DY: {dir: a, file: b, types: [e]}\n  DY: {dir: c, file: d, types: [e]}\n")
    with pytest.raises(ConfigError, match=r"duplicate key 'DY' \(first on line 2, again on line 3\)"):
        read_datagroups(dup)
    top = _write(tmp_path, "top.yaml", "grups: {}\n")
    with pytest.raises(ConfigError, match="single key 'groups'"):
        read_datagroups(top)
    typ = _write(tmp_path, "typ.yaml", "groups:\n  DY: {dir: a, file: b, types: [tau, muon]}\n")
    with pytest.raises(ConfigError, match="unknown tau type 'muon'"):
        read_datagroups(typ)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        read_datagroups(tmp_path / "nope.cfg")


def test_shipped_toy_configs_are_equivalent() -> None:
    cfg = read_datagroups(CONFIGS / "toy.cfg")
    yml = read_datagroups(CONFIGS / "toy.yaml")
    assert cfg == yml
    assert [g.name for g in cfg] == ["DY", "QCD", "TT", "TT_had", "W", "Zprime_e"]
    types = {g.name: set(g.types) for g in cfg}
    assert types["DY"] == types["TT"] == types["W"] == {"jet", "e", "mu", "tau"}
    assert types["TT_had"] == {"jet", "e", "mu"}
    assert types["QCD"] == {"jet"}
    assert types["Zprime_e"] == {"e"}


def _toy_tree(root: Path) -> list[Path]:
    files = []
    for ds in TOY_DATASETS:
        (root / ds).mkdir(parents=True)
        for k in range(2):
            f = root / ds / f"part_{k}.root"
            f.write_bytes(b"")
            files.append(f)
        (root / ds / "notes.txt").write_text("not an input")
        (root / ds / ".part_9.tmp-abc.root").write_bytes(b"")  # half-written: hidden, skipped
    return files


def test_toy_groups_match_training_datasets_only(tmp_path: Path) -> None:
    _toy_tree(tmp_path)
    matched = match_files(read_datagroups(CONFIGS / "toy.yaml"), tmp_path)
    datasets = {g: sorted({d for d, _ in files}) for g, files in matched.items()}
    assert datasets == {
        "DY": ["DYJetsToLL_M-50"],
        "QCD": ["QCD_Pt-15to7000"],
        "TT": ["TTToSemiLeptonic"],
        "TT_had": ["TTToHadronic"],
        "W": ["WJetsToLNu"],
        "Zprime_e": ["ZprimeToEE_M-4000"],
    }
    assert list(matched) == sorted(matched)
    for files in matched.values():
        assert len(files) == 2
        assert all(Path(p).suffix == ".root" and not Path(p).name.startswith(".") for _, p in files)


def test_match_files_list_input_and_errors(tmp_path: Path) -> None:
    a = DataGroup("A", "DY.*", r".*\.root", ("tau",))
    b = DataGroup("B", "DYJets.*", r".*\.root", ("jet",))
    files = ["/x/DYJetsToLL/f1.root", "/x/Other/f2.root"]
    with pytest.raises(ConfigError, match=r"f1\.root' is matched by two data groups, 'A' and 'B'"):
        match_files([a, b], files)
    c = DataGroup("C", "QCD.*", r"eventTuple.*", ("jet",))
    with pytest.raises(ConfigError, match=r"'C' matches no input file \(dir='QCD\.\*', file='eventTuple\.\*'\)"):
        match_files([a, c], files)
    # full match, not search: "DY" must not match "XDYJets"
    d = DataGroup("D", "DY.*", r"f\d\.root", ("e",))
    out = match_files([d], ["/x/DYa/f1.root", "/x/XDYb/f2.root", "/x/DYc/f22.root"])
    assert out == {"D": [("DYa", "/x/DYa/f1.root")]}
    with pytest.raises(ConfigError, match="does not exist"):
        match_files([d], tmp_path / "missing")
