"""TauMLTools losses (reference §6.6) against independent numpy implementations."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from taucoffea.errors import ConfigError  # noqa: E402
from taucoffea.ml.losses import LOSS_NAMES, TauLoss, TauLossMetric, normalise_sfs, tau_loss_values  # noqa: E402

EPS = 1e-7


def _np_losses(y: np.ndarray, p: np.ndarray, sfs: tuple[float, ...]) -> dict[str, np.ndarray]:
    """The §6.6 table, written out directly (e=0, mu=1, tau=2, jet=3), in float32 like the model."""
    y, p = y.astype(np.float32), p.astype(np.float32)
    s = 4 * np.asarray(sfs, float) / np.sum(sfs)
    clip = lambda v: np.clip(v, np.float32(EPS), np.float32(1 - EPS))  # noqa: E731

    def L(g, f):
        q = clip(p[:, g] / (p[:, g] + p[:, f] + EPS))
        return -(y[:, g] * np.log(q) + y[:, f] * np.log(1 - q))

    def H(i):
        return -y[:, i] * np.log(clip(p[:, i]))

    decay = (np.tanh(70 * (p[:, 2] - 0.1)) + 1) / 2

    def F(i, gamma, dec):
        pi = clip(p[:, i])
        return -dec * y[:, i] * (1 - pi) ** gamma * np.log(pi)

    pt = clip(p[:, 2])
    fcmb = 1.17153 * -(1 - y[:, 2]) * pt**0.5 * np.log(1 - pt)
    out = {
        "Le": L(2, 0), "Lmu": L(2, 1), "Ljet": L(2, 3), "He": H(0), "Hmu": H(1), "Htau": H(2), "Hjet": H(3),
        "Hbin": -(1 - y[:, 2]) * np.log(clip(1 - p[:, 2])),
        "Fe": 1.63636 * F(0, 2, decay), "Fmu": 1.63636 * F(1, 2, decay), "Fjet": 1.63636 * F(3, 2, decay), "Fcmb": fcmb,
        "Hcat_e": decay * H(0), "Hcat_mu": decay * H(1), "Hcat_jet": decay * H(3),
        "Hcat_eInv": (1 - decay) * H(0), "Hcat_muInv": (1 - decay) * H(1), "Hcat_jetInv": (1 - decay) * H(3),
    }
    out["tau_crossentropy"] = s[0] * out["Le"] + s[1] * out["Lmu"] + s[3] * out["Ljet"]
    out["tau_crossentropy_v2"] = (s[2] * out["Htau"] + (s[0] + s[1] + s[3]) * out["Fcmb"]
                                  + 5 * (s[0] * out["Fe"] + s[1] * out["Fmu"] + s[3] * out["Fjet"]))
    return out


def _batch(n: int = 400, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.Generator(np.random.Philox(seed))
    logits = rng.normal(0, 2.5, (n, 4))
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    p[:5] = [[1, 0, 0, 0], [0, 0, 1, 0], [0.25] * 4, [0, 0, 0.1, 0.9], [0.5, 0, 0.5, 0]]  # edges: clipping, decay at 0.1
    y = np.eye(4)[rng.integers(0, 4, n)]
    return y.astype(np.float32), p.astype(np.float32)


def test_sf_normalisation() -> None:
    assert normalise_sfs([1, 2.5, 5, 1.5]) == pytest.approx((0.4, 1.0, 2.0, 0.6))
    assert sum(normalise_sfs([3, 1, 1, 1])) == pytest.approx(4.0)
    with pytest.raises(ConfigError):
        normalise_sfs([1, 2, 3])


@pytest.mark.parametrize("sfs", [(1.0, 2.5, 5.0, 1.5), (1.0, 1.0, 1.0, 1.0)])
def test_all_losses_match_numpy(sfs) -> None:
    y, p = _batch()
    want = _np_losses(y, p, sfs)
    assert set(want) == set(LOSS_NAMES)
    for name in LOSS_NAMES:
        got = keras.ops.convert_to_numpy(tau_loss_values(name, y, p, sfs))
        np.testing.assert_allclose(got, want[name], rtol=1e-5, atol=1e-5, err_msg=name)  # float32 cancellation in 1 + tanh


def test_keras_loss_reduction_is_weighted_sum_over_batch() -> None:
    y, p = _batch(200, seed=9)
    w = np.random.Generator(np.random.Philox(1)).uniform(0, 3, 200).astype(np.float32)
    loss = TauLoss()
    got = float(keras.ops.convert_to_numpy(loss(y, p, sample_weight=w)))
    want = float((_np_losses(y.astype(float), p.astype(float), (1, 2.5, 5, 1.5))["tau_crossentropy_v2"] * w).sum() / 200)
    assert got == pytest.approx(want, rel=1e-5)  # Σ loss·w / n_tau, not / Σw
    cfg = TauLoss.from_config(loss.get_config())
    assert cfg.kind == "tau_crossentropy_v2" and cfg.sfs == (1.0, 2.5, 5.0, 1.5)
    metric = TauLossMetric("Hjet")
    metric.update_state(y, p, sample_weight=w)
    hjet = _np_losses(y.astype(float), p.astype(float), (1, 2.5, 5, 1.5))["Hjet"]
    assert float(metric.result()) == pytest.approx((hjet * w).sum() / w.sum(), rel=1e-5)
    with pytest.raises(ConfigError, match="unknown loss"):
        TauLoss("tau_crossentropy_v3")
