"""physics layer of taucoffea: truth labels, decay modes, working points, dataset ids.

Pure numpy/awkward, no I/O; every other layer may import from here.
"""

from taucoffea.physics.dataset_hash import STD_HASH_SEED, std_hash
from taucoffea.physics.decay_modes import (
    ADVERSARIAL_DECAY_MODES,
    DM_NAMES,
    EVAL_DECAY_MODES,
    HPS_DECAY_MODES,
    is_hps_decay_mode,
    n_charged_prongs,
    n_neutral_prongs,
)
from taucoffea.physics.tautypes import (
    TAU_TYPE_NAMES,
    TAUTUPLE_DEFAULT_FLOAT,
    TAUTUPLE_DEFAULT_INT,
    GenLeptonKind,
    GenLeptonMatch,
    SampleType,
    TauType,
    compute_tau_type,
    delta_phi,
    delta_r,
    gen_lepton_match,
    tau_type,
    tau_type_from_name,
)
from taucoffea.physics.working_points import (
    REFERENCE_THRESHOLDS,
    WP_BITS,
    WP_NAMES_VS,
    DiscriminatorWP,
    nanoaod_id_to_tautuple_bitmask,
    passes_wp,
    wp_bitmask,
)

__all__ = [
    "ADVERSARIAL_DECAY_MODES",
    "DM_NAMES",
    "EVAL_DECAY_MODES",
    "HPS_DECAY_MODES",
    "REFERENCE_THRESHOLDS",
    "STD_HASH_SEED",
    "TAU_TYPE_NAMES",
    "TAUTUPLE_DEFAULT_FLOAT",
    "TAUTUPLE_DEFAULT_INT",
    "WP_BITS",
    "WP_NAMES_VS",
    "DiscriminatorWP",
    "GenLeptonKind",
    "GenLeptonMatch",
    "SampleType",
    "TauType",
    "compute_tau_type",
    "delta_phi",
    "delta_r",
    "gen_lepton_match",
    "is_hps_decay_mode",
    "n_charged_prongs",
    "n_neutral_prongs",
    "nanoaod_id_to_tautuple_bitmask",
    "passes_wp",
    "std_hash",
    "tau_type",
    "tau_type_from_name",
    "wp_bitmask",
]
