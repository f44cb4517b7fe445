"""Model architectures (§6.5): DeepTau widths and names from the formula strings, the light model."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from taucoffea.errors import ConfigError, SelectionError  # noqa: E402
from taucoffea.ml.inputs import InputBuilder  # noqa: E402
from taucoffea.ml.models import build_model, layer_sizes, n_units  # noqa: E402


def _units(model, prefix: str) -> list[int]:
    out = []
    for layer in model.layers:
        if layer.name.startswith(prefix) and isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D)):
            out.append(layer.units if isinstance(layer, keras.layers.Dense) else layer.filters)
    return out


def test_width_formulas_and_size_sequence() -> None:
    assert n_units("2*n*(1+drop)", 43, 0.2) == 104  # ceil(103.2)
    assert n_units("n*(1+drop)", 43, 0.2) == 52
    assert n_units(64, 10, 0.0) == 64
    assert layer_sizes(104, 52, 1.4) == [104, 74, 52]
    assert layer_sizes(200, 200, 1.0, min_n_layers=4) == [200, 200, 200, 200]
    assert layer_sizes(227, 64, 1.6) == [227, 141, 88, 64]
    assert layer_sizes(227, 64, 1.6, max_n_layers=3) == [227, 141, 64]  # the last layer is forced
    with pytest.raises(SelectionError):
        n_units("__import__('os')", 1, 0.0)
    with pytest.raises(ConfigError):
        n_units("n - 100", 43, 0.0)


def test_deeptau_architecture_matches_reference() -> None:
    model = build_model("deeptau", InputBuilder("deeptau").input_shapes())
    assert _units(model, "tau_dense") == [104, 74, 52]
    assert _units(model, "inner_egamma_conv") == [207, 129, 104]
    assert _units(model, "outer_muon_conv") == [154, 96, 77]
    assert _units(model, "inner_hadrons_conv") == [92, 57, 46]
    assert _units(model, "outer_all_conv") == [227, 141, 88, 64]
    kernels = lambda loc: [l.kernel_size for l in model.layers  # noqa: E731
                           if isinstance(l, keras.layers.Conv2D) and l.name.startswith(f"{loc}_all_3x3")]
    assert len(kernels("inner")) == 5 and len(kernels("outer")) == 10  # 11→1 and 21→1 in steps of 2
    assert model.get_layer("features_concat").output.shape[-1] == 52 + 64 + 64
    assert _units(model, "final_dense") == [200, 200, 200, 200, 4]
    assert model.get_layer("main_output").activation.__name__ == "softmax"
    assert 1.0e6 < model.count_params() < 1.3e6  # DeepTau 2017v2p7 had 1,054,267
    assert isinstance(model.get_layer("tau_dense_0_activation"), keras.layers.PReLU)
    assert model.get_layer("inner_all_3x3_0_activation").shared_axes == [1, 2]


def test_deeptau_options() -> None:
    shapes = InputBuilder("deeptau").input_shapes()
    model = build_model("deeptau", shapes, {"conv_2d_net": {"pooling": 0}, "dense_net": {"activation": "selu"},
                                            "first_layer_reg": "L1, 0.01"})
    assert any(isinstance(l, keras.layers.MaxPooling2D) for l in model.layers)
    assert isinstance(model.get_layer("final_dense_0_dropout"), keras.layers.AlphaDropout)
    assert model.get_layer("tau_dense_0").kernel_regularizer is not None
    with pytest.raises(ConfigError, match="unknown key"):
        build_model("deeptau", shapes, {"dense_nett": {}})
    with pytest.raises(ConfigError, match="activation 'swish'"):
        build_model("deeptau", shapes, {"tau_net": {"activation": "swish"}})


def test_light_model_masks_padding_and_adversarial_names() -> None:
    builder = InputBuilder("light")
    model = build_model("light", builder.input_shapes(), adversarial={"k1": 1.0, "k2": 10.0})
    assert set(model.output_names) == {"main_output", "adv_output"}
    adv_layers = [l.name for l in model.layers if l.trainable_weights and l.name.startswith("adv")]
    assert adv_layers and all("final" not in n for n in adv_layers)
    rng = np.random.Generator(np.random.Philox(2))
    x = {k: rng.normal(0, 1, (3, *s)).astype(np.float32) for k, s in builder.input_shapes().items()}
    for g in ("egamma", "muon", "hadrons"):
        x[f"input_{g}_mask"][:] = 0.0
        x[f"input_{g}_mask"][:, :2] = 1.0
    y1 = model.predict(x, verbose=0)["main_output"]
    for g in ("egamma", "muon", "hadrons"):  # padded (masked) slots must not matter
        x[f"input_{g}"][:, 2:] = rng.normal(0, 5, x[f"input_{g}"][:, 2:].shape)
    y2 = model.predict(x, verbose=0)["main_output"]
    np.testing.assert_allclose(y1, y2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y1.sum(1), 1.0, rtol=1e-5)


@pytest.mark.slow  # tracing the ~1.2M-parameter graph takes ~30-45 s on 2 cores
def test_deeptau_trains_one_step_from_streamed_batches(tmp_path) -> None:
    from taucoffea.ml.dataset import TauDataset, list_blocks
    from taucoffea.ml.losses import TauLoss
    from taucoffea.ml.toydata import write_training_files

    files = write_training_files(tmp_path, n_files=1, n_per_file=64, seed=2)
    builder = InputBuilder("deeptau")
    ds = TauDataset(list_blocks([str(f) for f in files]), builder, 32)
    model = build_model("deeptau", builder.input_shapes())
    model.compile(optimizer="nadam", loss={"main_output": TauLoss()})
    hist = model.fit(ds, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(hist.history["loss"][0])


@pytest.mark.slow
def test_torch_backend_runs_the_same_model(tmp_path) -> None:
    try:
        import importlib.util

        if importlib.util.find_spec("torch") is None:
            pytest.skip("torch is not installed (pip install torch==2.13.0 for the CPU wheel) - backend test skipped")
    except ImportError:
        pytest.skip("torch is not importable")
    script = textwrap.dedent("""
        import numpy as np
        from taucoffea.ml import import_keras
        keras = import_keras()
        assert keras.backend.backend() == "torch"
        from taucoffea.ml.inputs import InputBuilder
        from taucoffea.ml.models import build_model
        from taucoffea.ml.losses import TauLoss
        from taucoffea.ml.adversarial import RoutedOptimizer
        b = InputBuilder("light")
        m = build_model("light", b.input_shapes(), adversarial={"k1": 1.0, "k2": 10.0})
        m.compile(optimizer=RoutedOptimizer(keras.optimizers.Nadam(1e-3), keras.optimizers.Nadam(1e-2)),
                  loss={"main_output": TauLoss(), "adv_output": "binary_crossentropy"})
        rng = np.random.default_rng(1)
        x = {k: rng.normal(0, 1, (8, *s)).astype("float32") for k, s in b.input_shapes().items()}
        y = {"main_output": np.eye(4, dtype="float32")[rng.integers(0, 4, 8)], "adv_output": rng.integers(0, 2, (8, 1)).astype("float32")}
        m.train_on_batch(x, y)
        print("ok", float(m.predict(x, verbose=0)["main_output"].sum()))
    """)
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "ok 8.0" in out.stdout or "ok 7.99" in out.stdout
