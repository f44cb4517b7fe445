"""Adversarial training (§7.5): gradient reversal, two optimizers, batch weights."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from taucoffea.ml.adversarial import (  # noqa: E402
    GradientScale,
    RoutedOptimizer,
    adversarial_batch_weights,
    variable_group,
)
from taucoffea.ml.models import _heads, _Setup  # noqa: E402

K1, K2, LR, LR_ADV = 1.7, 10.0, 0.05, 0.01
N_TAU, N_ADV = 6, 4  # deliberately unequal (the reference's padding needed n_tau == n_adv_tau)


def _tiny_model() -> keras.Model:
    """input(3) → shared Dense(5) → class head Dense(4)+softmax / adv head Dense(1)+sigmoid, real head code."""
    keras.utils.set_random_seed(3)
    inp = keras.Input((3,), name="input_tau")
    feats = keras.layers.Dense(5, name="shared_dense")(inp)
    return _heads(feats, {"input_tau": inp}, [], _Setup("relu", 0.0), {"k1": K1, "k2": K2, "units": []}, "tiny")


def _batch() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.Generator(np.random.Philox(21))
    x = rng.normal(0, 1, (N_TAU + N_ADV, 3)).astype(np.float32)
    y = np.zeros((N_TAU + N_ADV, 4), np.float32)
    y[np.arange(N_TAU), rng.integers(0, 4, N_TAU)] = 1
    y_adv = np.concatenate([np.zeros(N_TAU), rng.integers(0, 2, N_ADV)]).astype(np.float32)[:, None]
    w_cls, w_adv = adversarial_batch_weights(rng.uniform(0.5, 2, N_TAU), rng.uniform(0.5, 2, N_ADV))
    return x, y, y_adv, w_cls, w_adv


def _numpy_gradients(weights: dict[str, np.ndarray], x, y, y_adv, w_cls, w_adv):
    """∂L_class/∂θ and ∂L_adv/∂θ by hand (Keras: Σ loss·w / N over the whole batch)."""
    n = len(x)
    h = x @ weights["shared_dense/kernel"] + weights["shared_dense/bias"]
    z = h @ weights["final_dense_last/kernel"] + weights["final_dense_last/bias"]
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    a = h @ weights["adv_dense_last/kernel"] + weights["adv_dense_last/bias"]
    q = 1 / (1 + np.exp(-a))
    gz = (p - y) * w_cls[:, None] / n  # rows with y = 0 and w = 0 contribute nothing
    ga = (q - y_adv) * w_adv[:, None] / n
    g_class = {"final_dense_last/kernel": h.T @ gz, "final_dense_last/bias": gz.sum(0)}
    g_adv = {"adv_dense_last/kernel": h.T @ ga, "adv_dense_last/bias": ga.sum(0)}
    dh_c, dh_a = gz @ weights["final_dense_last/kernel"].T, ga @ weights["adv_dense_last/kernel"].T
    g_class.update({"shared_dense/kernel": x.T @ dh_c, "shared_dense/bias": dh_c.sum(0)})
    g_adv.update({"shared_dense/kernel": x.T @ dh_a, "shared_dense/bias": dh_a.sum(0)})
    return g_class, g_adv


def test_shared_layers_get_k1_gclass_minus_k2_gadv() -> None:
    model = _tiny_model()
    model.compile(optimizer=RoutedOptimizer(keras.optimizers.SGD(LR), keras.optimizers.SGD(LR_ADV)),
                  loss={"main_output": "categorical_crossentropy", "adv_output": "binary_crossentropy"})
    x, y, y_adv, w_cls, w_adv = _batch()
    before = {v.path: np.array(keras.ops.convert_to_numpy(v), dtype=np.float64) for v in model.trainable_variables}
    g_class, g_adv = _numpy_gradients(before, x.astype(np.float64), y, y_adv, w_cls, w_adv)
    model.train_on_batch({"input_tau": x}, {"main_output": y, "adv_output": y_adv},
                         sample_weight={"main_output": w_cls, "adv_output": w_adv})
    after = {v.path: np.array(keras.ops.convert_to_numpy(v), dtype=np.float64) for v in model.trainable_variables}
    for path in ("shared_dense/kernel", "shared_dense/bias"):
        np.testing.assert_allclose(after[path] - before[path], -LR * (K1 * g_class[path] - K2 * g_adv[path]), atol=2e-6)
    for path in ("final_dense_last/kernel", "final_dense_last/bias"):  # class head: plain ∇L_class (no k1)
        np.testing.assert_allclose(after[path] - before[path], -LR * g_class[path], atol=2e-6)
    for path in ("adv_dense_last/kernel", "adv_dense_last/bias"):  # adv head: own optimizer and learning rate
        np.testing.assert_allclose(after[path] - before[path], -LR_ADV * g_adv[path], atol=2e-6)
    assert np.abs(K2 * g_adv["shared_dense/kernel"]).max() > 1e-3  # the reversal term is not negligible here


def test_losses_are_normalised_per_part() -> None:
    model = _tiny_model()
    model.compile(optimizer="sgd", loss={"main_output": "categorical_crossentropy", "adv_output": "binary_crossentropy"})
    x, y, y_adv, w_cls, w_adv = _batch()
    out = model.evaluate({"input_tau": x}, {"main_output": y, "adv_output": y_adv},
                         sample_weight={"main_output": w_cls, "adv_output": w_adv}, return_dict=True, verbose=0)
    pred = model.predict({"input_tau": x}, verbose=0)
    w_main = w_cls[:N_TAU] * N_TAU / (N_TAU + N_ADV)
    w_a = w_adv[N_TAU:] * N_ADV / (N_TAU + N_ADV)
    ce = -(y[:N_TAU] * np.log(pred["main_output"][:N_TAU])).sum(1)
    q = pred["adv_output"][N_TAU:, 0]
    t = y_adv[N_TAU:, 0]
    bce = -(t * np.log(q) + (1 - t) * np.log(1 - q))
    assert out["main_output_loss"] == pytest.approx((ce * w_main).sum() / N_TAU, rel=1e-4)  # Σ loss·w / n_tau
    assert out["adv_output_loss"] == pytest.approx((bce * w_a).sum() / N_ADV, rel=1e-4)  # Σ BCE·w_adv / n_adv


def test_gradient_scale_is_identity_forward() -> None:
    layer = GradientScale(-10.0)
    x = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), x)
    assert GradientScale.from_config(layer.get_config()).initial_factor == -10.0


def test_routing_and_state_round_trip(tmp_path) -> None:
    assert variable_group("adv_dense_0/kernel") == "adv"
    assert variable_group("final_dense_2_norm/gamma") == "class"
    assert variable_group("inner_egamma_conv_0/kernel") == "shared"
    model = _tiny_model()
    model.compile(optimizer=RoutedOptimizer(keras.optimizers.Nadam(1e-3), keras.optimizers.Nadam(1e-2)),
                  loss={"main_output": "categorical_crossentropy", "adv_output": "binary_crossentropy"})
    x, y, y_adv, w_cls, w_adv = _batch()
    for _ in range(2):
        model.train_on_batch({"input_tau": x}, {"main_output": y, "adv_output": y_adv},
                             sample_weight={"main_output": w_cls, "adv_output": w_adv})
    opt = model.optimizer
    assert int(keras.ops.convert_to_numpy(opt.main_optimizer.iterations)) == 2
    assert int(keras.ops.convert_to_numpy(opt.adv_optimizer.iterations)) == 2
    stats = keras.ops.convert_to_numpy(opt.grad_stats)
    assert stats[3] == 2 and np.all(stats[:3] > 0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.optimizer, RoutedOptimizer)
    assert float(keras.ops.convert_to_numpy(loaded.optimizer.adv_optimizer.learning_rate)) == pytest.approx(1e-2)
    for a, b in zip(opt.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


def test_adversarial_dataset_any_ratio(tmp_path) -> None:
    from taucoffea.ml.dataset import AdversarialDataset, TauDataset, list_blocks
    from taucoffea.ml.inputs import InputBuilder
    from taucoffea.ml.toydata import write_control_region, write_training_files

    main_files = write_training_files(tmp_path / "sm", n_files=1, n_per_file=600, seed=5)
    cr = write_control_region(tmp_path / "cr", n=300, seed=6)
    builder = InputBuilder("light")
    main = TauDataset(list_blocks([str(p) for p in main_files]), builder, 250, seed=1)
    adv = TauDataset(list_blocks([str(cr)]), builder, 70, seed=1, extra_columns=("adv_label", "adv_weight"))
    ds = AdversarialDataset(main, adv)
    x, y, w = ds[0]
    n = 250 + 70
    assert x["input_tau"].shape == (n, 43) and y["main_output"].shape == (n, 4) and y["adv_output"].shape == (n, 1)
    assert y["main_output"][250:].sum() == 0 and y["adv_output"][:250].sum() == 0
    assert w["main_output"][250:].sum() == 0 and w["adv_output"][:250].sum() == 0
    _, adv_rows = ds.parts(0)
    np.testing.assert_array_equal(y["adv_output"][250:, 0], np.asarray(adv_rows.column("adv_label")))
    assert set(np.unique(y["adv_output"][250:])) <= {0.0, 1.0}
    # the adversarial stream (5 batches of 70 in 300 rows) restarts when exhausted
    first = [ds.parts(i)[1].column("tau_pt").tolist() for i in range(len(ds))]
    assert len(ds) == 3 and first[0] != first[1]
    ds.set_epoch(1)
    assert ds.parts(2)[1].column("tau_pt").tolist() != first[2]  # epoch 1 continues the adversarial stream
