"""Mixing plan of the adversarial dataset (reference spec §7.3, ``DatasetMix``).

Every batch holds ``n_c`` taus of each contribution ``c``. Contribution ``c``'s rows are used
in their input order: the train/val output takes rows ``[0, n_c·B_tv)`` (batch ``b`` gets rows
``[b·n_c, (b+1)·n_c)``), the evaluation output the next ``n_c·B_ev`` rows — as the original,
whose read position carries over from the first file to the second, so the two outputs never
share a row.

Deliberate difference: inside each batch the rows are shuffled (the original appends the
contributions one after the other, data first). The permutation of batch ``b`` of an output
is drawn from the counter-based generator keyed by (seed, output) and advanced to the batch,
so a row's final position is a pure function of (seed, contribution, row index): chunking and
executors cannot change it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from taucoffea.algorithms.rng import entry_words
from taucoffea.errors import ConfigError, InputError

__all__ = ["DEFAULT_BATCH_RATIO", "OUTPUTS", "MixPlan", "batch_inverse_permutations", "plan_mix", "row_destinations"]

#: The two outputs, in the order they consume rows.
OUTPUTS: tuple[str, ...] = ("trainval", "eval")
#: Train/val to evaluation batches of the original (1125 and 750).
DEFAULT_BATCH_RATIO: tuple[int, int] = (1125, 750)
_STAGE = "adversarial-mix"


@dataclass(frozen=True)
class MixPlan:
    """Which rows go where: contributions in batch order, taus per batch, batches per output."""

    names: tuple[str, ...]
    per_batch: tuple[int, ...]
    available: tuple[int, ...]
    n_batches: tuple[int, int]  #: (train/val, evaluation)
    reason: str = ""  #: how the numbers of batches were chosen

    @property
    def batch_size(self) -> int:
        return sum(self.per_batch)

    def offset(self, name: str) -> int:
        """First slot of ``name`` inside a batch (before shuffling)."""
        k = self.names.index(name)
        return sum(self.per_batch[:k])

    def needed(self, name: str) -> int:
        return self.per_batch[self.names.index(name)] * sum(self.n_batches)

    def describe(self) -> str:
        lines = [
            f"mix: {self.n_batches[0]} train/val + {self.n_batches[1]} evaluation batches of {self.batch_size} taus"
            + (f" ({self.reason})" if self.reason else ""),
            f"{'contribution':<16} {'per batch':>9} {'available':>10} {'used':>8} {'max batches':>12}",
        ]
        for n, k, a in zip(self.names, self.per_batch, self.available, strict=True):
            lines.append(f"{n:<16} {k:>9} {a:>10} {self.needed(n):>8} {a // k if k else 0:>12}")
        return "\n".join(lines)


def _check_batches(value: int | None, what: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"{what} must be an integer >= 1, got {value!r}")


def plan_mix(
    available: Mapping[str, int],
    per_batch: Mapping[str, int],
    *,
    n_trainval: int | None = None,
    n_eval: int | None = None,
    ratio: tuple[int, int] = DEFAULT_BATCH_RATIO,
) -> MixPlan:
    """Batches per output: as given, or as many as the scarcest contribution allows.

    With neither number given, all possible batches are used and split like the original's
    1125 : 750; with one given, the other takes the rest. Raises :class:`InputError` naming the
    contribution that runs out.
    """
    _check_batches(n_trainval, "number of train/val batches")
    _check_batches(n_eval, "number of evaluation batches")
    names = tuple(n for n, k in per_batch.items() if k > 0)
    if not names:
        raise ConfigError("the composition has no contribution with taus per batch")
    missing = [n for n in names if n not in available]
    if missing:
        raise InputError(f"no input for contribution(s) {missing}")
    limits = {n: available[n] // per_batch[n] for n in names}
    scarcest = min(names, key=lambda n: (limits[n], names.index(n)))
    most = limits[scarcest]
    reason = "as requested"
    if n_trainval is None or n_eval is None:
        reason = f"'{scarcest}' allows {most} batches in all"
        if n_trainval is not None:
            n_eval = most - n_trainval
            reason += f"; evaluation gets the {n_eval} left"
        elif n_eval is not None:
            n_trainval = most - n_eval
            reason += f"; train/val gets the {n_trainval} left"
        else:
            n_trainval = (most * ratio[0]) // (ratio[0] + ratio[1])
            n_eval = most - n_trainval
            reason += f", split {ratio[0]}:{ratio[1]} like the original"
        if n_trainval < 1 or n_eval < 1:
            raise InputError(
                f"contribution '{scarcest}' runs out: it has {available[scarcest]} taus for "
                f"{per_batch[scarcest]} per batch, i.e. {most} batch(es); at least one train/val and one "
                f"evaluation batch are needed (would get {n_trainval} train/val, {n_eval} evaluation)"
            )
    total = n_trainval + n_eval
    short = sorted((n for n in names if per_batch[n] * total > available[n]), key=lambda n: (limits[n], names.index(n)))
    if short:
        first = short[0]
        others = "".join(f"; '{n}' too (at most {limits[n]} batches)" for n in short[1:])
        raise InputError(
            f"contribution '{first}' runs out: {total} batches ({n_trainval} train/val + {n_eval} eval) × "
            f"{per_batch[first]} per batch need {per_batch[first] * total} taus, only {available[first]} available "
            f"(at most {limits[first]} batches){others}"
        )
    return MixPlan(names, tuple(per_batch[n] for n in names), tuple(available[n] for n in names), (n_trainval, n_eval), reason)


def batch_inverse_permutations(seed: int, output: str, first: int, count: int, batch_size: int) -> np.ndarray:
    """``(count, batch_size)``: for batches ``first …``, the shuffled position of each slot."""
    words = entry_words(seed, _STAGE, output, "batches", first * batch_size, (first + count) * batch_size)[:, 0]
    order = np.argsort(words.reshape(count, batch_size), axis=1, kind="stable")
    inverse = np.empty_like(order)
    np.put_along_axis(inverse, order, np.arange(batch_size)[None, :].repeat(count, axis=0), axis=1)
    return inverse


def row_destinations(plan: MixPlan, name: str, rows: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """For row indices of contribution ``name``: (output index or −1 if unused, position in it)."""
    if name not in plan.names:
        raise ConfigError(f"contribution '{name}' is not in the mixing plan {list(plan.names)}")
    k = plan.per_batch[plan.names.index(name)]
    r = np.asarray(rows, dtype=np.int64)
    out = np.full(r.size, -1, dtype=np.int8)
    pos = np.full(r.size, -1, dtype=np.int64)
    start = 0
    S = plan.batch_size
    for o, (label, nb) in enumerate(zip(OUTPUTS, plan.n_batches, strict=True)):
        local = r - start
        sel = (local >= 0) & (local < nb * k)
        if np.any(sel):
            batch = local[sel] // k
            slot = plan.offset(name) + local[sel] % k
            first, last = int(batch.min()), int(batch.max())
            inv = batch_inverse_permutations(seed, label, first, last - first + 1, S)
            out[sel] = o
            pos[sel] = batch * S + inv[batch - first, slot]
        start += nb * k
    return out, pos
