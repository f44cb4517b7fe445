"""Training configuration: YAML files, key.sub=value overrides, errors, scan files."""

from __future__ import annotations

from pathlib import Path

import pytest

from taucoffea.errors import ConfigError
from taucoffea.ml.config import DEFAULTS, apply_overrides, load_config, parse_overrides, read_scan_file, resolve_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "training"


def test_override_values_are_typed_by_yaml() -> None:
    parsed = dict(parse_overrides(["training.epochs=3", "training.learning_rate=3e-4", "model.light.set_units=[32, 16]",
                                   "adversarial.enabled=true", "data.scaling=none", "data.max_batches=null"]))
    assert parsed[("training", "epochs")] == 3
    assert parsed[("training", "learning_rate")] == pytest.approx(3e-4)
    assert parsed[("model", "light", "set_units")] == [32, 16]
    assert parsed[("adversarial", "enabled")] is True
    assert parsed[("data", "max_batches")] is None
    cfg = resolve_config(overrides=["training.epochs=3", "model.light.set_units=[32, 16]"])
    assert cfg["training"]["epochs"] == 3 and cfg["model"]["light"]["set_units"] == [32, 16]
    assert cfg["model"]["light"]["tau_units"] == DEFAULTS["model"]["light"]["tau_units"]  # siblings kept


def test_unknown_keys_name_the_key_and_the_allowed_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown config key 'training\.lr'.*learning_rate"):
        resolve_config(overrides=["training.lr=0.1"])
    with pytest.raises(ConfigError, match=r"unknown config key 'trainig'.*training"):
        resolve_config({"trainig": {"epochs": 1}})
    with pytest.raises(ConfigError, match=r"'training\.epochs' must be an integer"):
        resolve_config(overrides=["training.epochs=three"])
    with pytest.raises(ConfigError, match=r"'adversarial\.enabled' must be true or false"):
        resolve_config(overrides=["adversarial.enabled=1"])
    with pytest.raises(ConfigError, match="key.sub=value"):
        parse_overrides(["training.epochs"])
    with pytest.raises(ConfigError, match=r"model\.name.*light"):
        resolve_config(overrides=["model.name=resnet"])


def test_free_subtrees_merge_and_are_checked_by_consumers() -> None:
    cfg = resolve_config(overrides=["data.features.disabled.TauFlat=[tau_phi, tau_mass]",
                                    "model.deeptau.dense_net.dropout_rate=0.1"])
    assert cfg["data"]["features"]["disabled"]["TauFlat"] == ["tau_phi", "tau_mass"]
    assert "PfCand_chHad" in cfg["data"]["features"]["disabled"]  # other types kept
    assert cfg["model"]["deeptau"] == {"dense_net": {"dropout_rate": 0.1}}
    from taucoffea.ml.features import FeatureSpec

    with pytest.raises(ConfigError, match="tau_mas"):
        FeatureSpec(resolve_config(overrides=["data.features.disabled.TauFlat=[tau_mas]"])["data"]["features"]["disabled"])


def test_shipped_configs_load(tmp_path) -> None:
    light = load_config(CONFIGS / "light.yaml")
    expected = resolve_config(overrides=["data.input=work/shuffle_merge"])
    assert light == expected  # light.yaml lists exactly the defaults
    deeptau = load_config(CONFIGS / "deeptau.yaml", ["training.epochs=2"])
    assert deeptau["model"]["name"] == "deeptau" and deeptau["training"]["epochs"] == 2
    adv = load_config(CONFIGS / "adversarial.yaml")
    assert adv["adversarial"]["enabled"] and adv["adversarial"]["k2"] == 10.0 and adv["adversarial"]["learning_rate"] == 0.01
    lines = read_scan_file(CONFIGS / "scan_example.txt")
    assert len(lines) == 4 and lines[2] == ["training.learning_rate=1e-3", "model.light.dropout_rate=0.2"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("training: {epochs: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_model_defaults_agree_with_models_module() -> None:
    pytest.importorskip("keras")
    from taucoffea.ml.models import LIGHT_DEFAULTS

    assert DEFAULTS["model"]["light"] == LIGHT_DEFAULTS


def test_apply_overrides_does_not_modify_input() -> None:
    cfg = resolve_config()
    out = apply_overrides(cfg, ["training.seed=7"])
    assert out["training"]["seed"] == 7 and cfg["training"]["seed"] == 42


def test_scan_file_errors(tmp_path) -> None:
    f = tmp_path / "scan.txt"
    f.write_text("# only comments\n\n")
    with pytest.raises(ConfigError, match="no override lines"):
        read_scan_file(f)
    f.write_text("training.epochs=1\ntraining.epochs\n")
    with pytest.raises(ConfigError, match="key.sub=value"):
        read_scan_file(f)
