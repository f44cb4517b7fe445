"""How hard the toy is: Bayes-optimal vs DeepTau-like vs best single feature, per vs-type.

Small, dependency-free ROC helpers (exact AUC by ranks, mis-id at a fixed genuine-τ
efficiency) so the numbers quoted in docs/toy.md can be reproduced with
``python -m taucoffea.toy.hardness``; the evaluation layer has its own full ROC machinery.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

from taucoffea.toy.datasets import CLASS_NAMES, TAU

__all__ = ["auc", "hardness_report", "misid_at_efficiency", "single_feature_columns"]

_SKIP_PREFIXES = ("truth_", "toy_", "gen", "tau_byDeepTau", "tagObj_", "has_")
_SKIP = {"run", "lumi", "evt", "sampleType", "tauType", "dataset_id", "dataset_group_id",
         "entry_index", "total_entries", "tau_index", "genEventWeight", "tau_phi", "pv_x",
         "pv_y", "pv_z"}


def auc(sig: np.ndarray, bkg: np.ndarray) -> float:
    """P(score_sig > score_bkg) + ½ P(tie), by midranks (exact Mann-Whitney)."""
    sig = np.asarray(sig, dtype=np.float64)
    bkg = np.asarray(bkg, dtype=np.float64)
    ranks = stats.rankdata(np.concatenate([sig, bkg]))
    r_sig = ranks[: sig.size].sum()
    return float((r_sig - sig.size * (sig.size + 1) / 2.0) / (sig.size * bkg.size))


def misid_at_efficiency(sig: np.ndarray, bkg: np.ndarray, eff: float = 0.7) -> float:
    """Background efficiency of the cut ``score > q`` that keeps ``eff`` of the signal."""
    thr = np.quantile(np.asarray(sig, dtype=np.float64), 1.0 - eff)
    return float(np.mean(np.asarray(bkg, dtype=np.float64) > thr))


def single_feature_columns(columns: Mapping[str, np.ndarray]) -> list[str]:
    """Flat numeric per-tau feature columns (no truth, gen, bookkeeping or reference scores)."""
    out = []
    for k, v in columns.items():
        if k in _SKIP or k.startswith(_SKIP_PREFIXES):
            continue
        arr = np.asarray(v)
        if arr.ndim == 1 and arr.dtype.kind in "fiu":
            out.append(k)
    return out


def hardness_report(columns: Mapping[str, np.ndarray], eff: float = 0.7,
                    vs_types: Sequence[str] = ("e", "mu", "jet")) -> dict[str, dict[str, object]]:
    """Per vs-type: AUC and mis-id at ``eff`` genuine-τ efficiency of the Bayes discriminant
    (truth log-likelihood ratio), the DeepTau-like raw score and the best single flat feature
    (either cut direction). Only gen-valid MC rows of the two classes are used."""
    cls = np.asarray(columns["toy_true_class"])
    valid = (np.asarray(columns["toy_gen_valid"]) == 1) & (np.asarray(columns["sampleType"]) == 1)
    feats = single_feature_columns(columns)
    report: dict[str, dict[str, object]] = {}
    for vs in vs_types:
        c = CLASS_NAMES.index(vs)
        s, b = valid & (cls == TAU), valid & (cls == c)
        if s.sum() < 10 or b.sum() < 10:
            continue
        llr = (np.asarray(columns["truth_loglik_tau"], dtype=np.float64)
               - np.asarray(columns[f"truth_loglik_{vs}"], dtype=np.float64))
        ref = np.asarray(columns[f"tau_byDeepTau2017v2p1VS{vs}raw"], dtype=np.float64)
        best_name, best_auc, best_misid = "", 0.0, 1.0
        for f in feats:
            x = np.asarray(columns[f], dtype=np.float64)
            a = auc(x[s], x[b])
            sign = 1.0 if a >= 0.5 else -1.0
            a = max(a, 1.0 - a)
            if a > best_auc:
                best_name, best_auc = f, a
                best_misid = misid_at_efficiency(sign * x[s], sign * x[b], eff)
        report[vs] = {
            "n_tau": int(s.sum()), f"n_{vs}": int(b.sum()),
            "bayes_auc": auc(llr[s], llr[b]),
            "bayes_misid": misid_at_efficiency(llr[s], llr[b], eff),
            "deeptau_auc": auc(ref[s], ref[b]),
            "deeptau_misid": misid_at_efficiency(ref[s], ref[b], eff),
            "best_feature": best_name, "best_feature_auc": best_auc,
            "best_feature_misid": best_misid,
        }
    return report


def _main(argv: Sequence[str] | None = None) -> int:
    from taucoffea.toy.generator import generate_file_columns

    p = argparse.ArgumentParser(description="hardness of the toy (Bayes vs DeepTau-like)")
    p.add_argument("--datasets", default="DYJetsToLL_M-50,WJetsToLNu,TTToSemiLeptonic")
    p.add_argument("--n", type=int, default=50_000, help="taus per dataset")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--eff", type=float, default=0.7)
    args = p.parse_args(argv)
    parts = [generate_file_columns(d, args.n, args.seed, 0)[0] for d in args.datasets.split(",")]
    cols = {k: np.concatenate([c[k] for c in parts]) for k in parts[0]}
    print(json.dumps(hardness_report(cols, args.eff), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
