"""HPS tau decay modes (``tau_decayMode``) and the prong counts derived from them."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "ADVERSARIAL_DECAY_MODES",
    "DM_1PRONG",
    "DM_1PRONG_1PI0",
    "DM_1PRONG_2PI0",
    "DM_2PRONG",
    "DM_2PRONG_1PI0",
    "DM_3PRONG",
    "DM_3PRONG_1PI0",
    "DM_NAMES",
    "EVAL_DECAY_MODES",
    "HPS_DECAY_MODES",
    "is_hps_decay_mode",
    "n_charged_prongs",
    "n_neutral_prongs",
]

# HPS encodes a decay mode as 5 * (charged prongs - 1) + neutral pions.
DM_1PRONG = 0
DM_1PRONG_1PI0 = 1
DM_1PRONG_2PI0 = 2
DM_2PRONG = 5
DM_2PRONG_1PI0 = 6
DM_3PRONG = 10
DM_3PRONG_1PI0 = 11

#: Every decay mode the HPS algorithm reconstructs (with ``decayModeFindingNewDMs``).
HPS_DECAY_MODES: tuple[int, ...] = (0, 1, 2, 5, 6, 10, 11)

#: Short labels for plots and tables.
DM_NAMES: dict[int, str] = {
    DM_1PRONG: "1p",
    DM_1PRONG_1PI0: "1p+1pi0",
    DM_1PRONG_2PI0: "1p+2pi0",
    DM_2PRONG: "2p",
    DM_2PRONG_1PI0: "2p+1pi0",
    DM_3PRONG: "3p",
    DM_3PRONG_1PI0: "3p+1pi0",
}

#: Evaluation drops the two-prong modes (``apply_dm_cuts`` in the evaluation selection).
EVAL_DECAY_MODES: tuple[int, ...] = (0, 1, 2, 10, 11)
#: The adversarial (μτ control region) skim keeps these.
ADVERSARIAL_DECAY_MODES: tuple[int, ...] = (0, 1, 10, 11)


def is_hps_decay_mode(dm: Any) -> Any:
    """True where ``dm`` is one of :data:`HPS_DECAY_MODES` (elementwise)."""
    return np.isin(np.asarray(dm), HPS_DECAY_MODES)


def n_charged_prongs(dm: Any) -> Any:
    """Number of charged prongs, ``dm // 5 + 1`` (elementwise).

    This is the feature-scaling alias ``tau_decayMode//5 + 1``. The C++ DataLoader fills its
    ``tau_n_charged_prongs`` input with ``DM/5`` instead, i.e. one less (reference spec
    Appendix A item 10); whichever convention a model was trained with must be kept.
    """
    return np.floor_divide(dm, 5) + 1


def n_neutral_prongs(dm: Any) -> Any:
    """Number of neutral pions, ``dm % 5`` (elementwise)."""
    return np.mod(dm, 5)
