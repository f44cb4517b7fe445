"""Training batches streamed from parquet: a ``keras.utils.PyDataset`` with bounded memory.

The shuffle & merge output is already a uniform random mixture, so the loader only needs a
cheap, deterministic shuffle: each epoch visits the parquet row groups ("blocks") in an order
drawn from Philox(seed, epoch) and permutes the rows inside each block with
Philox(seed, epoch, block). Batch ``i`` of epoch ``e`` is therefore a fixed set of rows,
whatever the number of workers, the backend or a resume in between (the trainer sets the
epoch with :class:`EpochSetter` and fits with ``shuffle=False``: Keras' own batch shuffling
would draw from global random state).

Memory is bounded by the block cache: at most ``cache_blocks`` row groups (only the needed
columns) are held, each cut into batches that never straddle two blocks (the last batch of a
block may be smaller, like the reference's leftovers). Keras' worker threads (or processes) run
``__getitem__`` ahead of the training step; the features and grids are built there, a
*piece* of consecutive batches at a time (about 32 MB of model inputs: ~15 batches of the
light model, one DeepTau batch) and cached like the blocks. Inputs are built row by row, so a
batch sliced from its piece equals one built alone (tested), but one call per piece instead of
per batch spends less of the step's time in the interpreter (light inputs: 145 k → 240 k taus/s).

Train/validation split by files (A.14: on the *sorted* file list, the last ``ceil(n·v)``
files validate); a single file is split by rows instead.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from taucoffea.errors import ConfigError, InputError
from taucoffea.ml import import_keras
from taucoffea.ml.adversarial import adversarial_batch_weights
from taucoffea.ml.blocks import ColumnBlock
from taucoffea.ml.inputs import InputBuilder

keras = import_keras()

__all__ = ["AdversarialDataset", "Block", "EpochSetter", "TauDataset", "find_parquet", "list_blocks", "split_blocks"]

N_CLASSES = 4
#: Model inputs built in one call (bytes): big enough to amortise the per-call Python work,
#: small enough that a few cached pieces stay far below a block of columns.
_PIECE_BYTES = 32 * 2**20


@dataclass(frozen=True)
class Block:
    """Rows ``start … stop-1`` of row group ``row_group`` of a parquet file."""

    path: str
    row_group: int
    start: int
    stop: int

    @property
    def n(self) -> int:
        return self.stop - self.start


def find_parquet(spec: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[str]:
    """Sorted parquet files from a file, a folder (recursively) or a list of those."""
    items = [spec] if isinstance(spec, (str, os.PathLike)) else list(spec)
    files: list[str] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            files += [str(f.resolve()) for f in sorted(p.rglob("*.parquet")) if not any(q.startswith(".") for q in f.relative_to(p).parts)]
        elif p.is_file():
            files.append(str(p.resolve()))
        else:
            raise InputError(f"training input '{p}' does not exist")
    if not files:
        raise InputError(f"no parquet files found in {[str(i) for i in items]}")
    return sorted(dict.fromkeys(files))


def list_blocks(files: Sequence[str]) -> list[Block]:
    """One block per parquet row group (metadata only, cheap)."""
    import pyarrow.parquet as pq

    blocks = []
    for path in files:
        try:
            meta = pq.ParquetFile(path).metadata
        except Exception as err:
            raise InputError(f"cannot read parquet file '{path}': {type(err).__name__}: {err}") from None
        for rg in range(meta.num_row_groups):
            n = meta.row_group(rg).num_rows
            if n:
                blocks.append(Block(path, rg, 0, n))
    if not blocks:
        raise InputError(f"the parquet files {list(files)[:3]} hold no rows")
    return blocks


def split_blocks(files: Sequence[str], validation_split: float) -> tuple[list[Block], list[Block]]:
    """(train, validation) blocks: by files (last ``ceil(n·v)`` of the sorted list), or by rows for one file."""
    if not 0.0 <= validation_split < 1.0:
        raise ConfigError(f"validation_split must be in [0, 1), got {validation_split}")
    files = sorted(files)
    if validation_split == 0:
        return list_blocks(files), []
    if len(files) >= 2:
        n_val = min(max(1, math.ceil(len(files) * validation_split)), len(files) - 1)
        return list_blocks(files[: len(files) - n_val]), list_blocks(files[len(files) - n_val :])
    blocks = list_blocks(files)
    total = sum(b.n for b in blocks)
    cut = int(round(total * (1.0 - validation_split)))
    train, val, seen = [], [], 0
    for b in blocks:
        lo, hi = seen, seen + b.n
        if hi <= cut:
            train.append(b)
        elif lo >= cut:
            val.append(b)
        else:
            train.append(Block(b.path, b.row_group, 0, cut - lo))
            val.append(Block(b.path, b.row_group, cut - lo, b.n))
        seen = hi
    if not train or not val:
        raise InputError(f"'{files[0]}' has too few rows ({total}) for validation_split {validation_split}")
    return train, val


def _philox(*key: Any) -> np.random.Generator:
    digest = hashlib.blake2b("\x00".join(str(k) for k in key).encode(), digest_size=16).digest()
    return np.random.Generator(np.random.Philox(key=int.from_bytes(digest, "little")))


class TauDataset(keras.utils.PyDataset):
    """Batches ``(x, {"main_output": y}, {"main_output": w})`` from parquet blocks.

    ``y`` is the one-hot of ``label_column`` (tauType 0..3; other values give a zero row and
    weight 0). ``w`` comes from ``weights(tau_type, pt, |eta|)`` (the correctionlib training
    weights) or is 1.
    """

    def __init__(
        self,
        blocks: Sequence[Block],
        builder: InputBuilder,
        batch_size: int,
        *,
        weights: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None,
        seed: int = 0,
        shuffle: bool = True,
        epoch: int = 0,
        max_batches: int | None = None,
        cache_blocks: int | None = None,
        extra_columns: Sequence[str] = (),
        workers: int = 1,
        use_multiprocessing: bool = False,
        max_queue_size: int = 10,
    ) -> None:
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size)
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if not blocks:
            raise InputError("no input rows for this dataset")
        self.blocks = list(blocks)
        self.builder = builder
        self.batch_size = int(batch_size)
        self.weights = weights
        self.seed, self.shuffle, self.epoch = int(seed), bool(shuffle), int(epoch)
        self.max_batches = max_batches
        self.cache_blocks = int(cache_blocks or max(2, workers + 2))
        self.columns = sorted({*builder.columns(), "tauType", "tau_pt", "tau_eta", *extra_columns})
        self._per_block = [max(1, math.ceil(b.n / self.batch_size)) for b in self.blocks]
        per_tau = 4 * sum(math.prod(shape) for shape in builder.input_shapes().values())
        #: rows built in one call: a whole number of batches, so no batch straddles two pieces
        self.piece_rows = self.batch_size * max(1, _PIECE_BYTES // max(per_tau, 1) // self.batch_size)
        self._init_state()

    # ------------------------------------------------------------------ state (not pickled)
    def _init_state(self) -> None:
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[Any, ...], ColumnBlock] = OrderedDict()
        self._built: OrderedDict[tuple[Any, ...], dict[str, np.ndarray]] = OrderedDict()
        self._loading: dict[tuple[Any, ...], threading.Event] = {}
        self._plans: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for key in ("_lock", "_cache", "_built", "_loading", "_plans"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_state()

    # ------------------------------------------------------------------ PyDataset API
    @property
    def num_batches(self) -> int:
        total = sum(self._per_block)
        return min(total, int(self.max_batches)) if self.max_batches else total

    def __len__(self) -> int:
        return self.num_batches

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batch order ``__getitem__`` serves.

        Called by :class:`EpochSetter` at the start of every epoch (Keras calls the dataset's
        own ``on_epoch_end`` also outside epochs, so counting those calls is not reliable).
        """
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
        y, w = self.labels(self.rows(index))
        return self.inputs(index), {"main_output": y}, {"main_output": w}

    # ------------------------------------------------------------------ pieces
    def plan(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """(block index, first row within the block) of every batch of ``epoch``."""
        with self._lock:
            if epoch in self._plans:
                return self._plans[epoch]
        order = np.arange(len(self.blocks))
        if self.shuffle:
            order = _philox("taucoffea.ml.dataset", self.seed, epoch, "blocks").permutation(len(self.blocks))
        block_of = np.concatenate([np.full(self._per_block[b], b) for b in order])
        start = np.concatenate([np.arange(self._per_block[b]) * self.batch_size for b in order])
        with self._lock:
            self._plans[epoch] = (block_of, start)
            for old in [e for e in self._plans if e < epoch - 1]:
                del self._plans[old]
        return block_of, start

    def _locate(self, index: int, epoch: int | None) -> tuple[int, int, int]:
        """(epoch of the block's row order, block, first row) of batch ``index``."""
        if not 0 <= index < self.num_batches:
            raise IndexError(f"batch {index} out of range [0, {self.num_batches})")
        epoch = self.epoch if epoch is None else epoch
        block_of, start = self.plan(epoch)
        return (epoch if self.shuffle else 0), int(block_of[index]), int(start[index])

    def rows(self, index: int, epoch: int | None = None) -> ColumnBlock:
        """The rows of batch ``index`` (of the current epoch unless given)."""
        e, b, first = self._locate(index, epoch)
        return self._block(e, b).slice(first, first + self.batch_size)

    def inputs(self, index: int, epoch: int | None = None) -> dict[str, np.ndarray]:
        """The model inputs of batch ``index``: a slice of its piece's inputs (module docstring)."""
        e, b, first = self._locate(index, epoch)
        p0 = first - first % self.piece_rows

        def build() -> dict[str, np.ndarray]:
            return self.builder.build(self._block(e, b).slice(p0, p0 + self.piece_rows))

        built = self._cached(self._built, ("inputs", e, b, p0), build)
        lo = first - p0
        return {k: v[lo : lo + self.batch_size] for k, v in built.items()}

    def labels(self, rows: ColumnBlock) -> tuple[np.ndarray, np.ndarray]:
        """One-hot targets and sample weights of some rows."""
        tau_type = np.asarray(rows.column("tauType")).astype(np.int64)
        ok = (tau_type >= 0) & (tau_type < N_CLASSES)
        y = np.zeros((rows.n, N_CLASSES), dtype=np.float32)
        y[np.flatnonzero(ok), tau_type[ok]] = 1.0
        if self.weights is None:
            w = np.ones(rows.n)
        else:
            pt = np.asarray(rows.column("tau_pt"), dtype=np.float64)
            abs_eta = np.abs(np.asarray(rows.column("tau_eta"), dtype=np.float64))
            w = np.zeros(rows.n)
            if ok.any():
                w[ok] = self.weights(tau_type[ok], pt[ok], abs_eta[ok])
        w[~ok] = 0.0
        return y, w.astype(np.float32)

    def _block(self, epoch: int, b: int) -> ColumnBlock:
        return self._cached(self._cache, ("rows", epoch, b), lambda: self._load(epoch, b))

    def _cached(self, cache: OrderedDict[tuple[Any, ...], Any], key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
        """``cache[key]``, made once even when several loader threads ask for it together;
        the least recently used entries beyond ``cache_blocks`` are dropped."""
        while True:
            with self._lock:
                if key in cache:
                    cache.move_to_end(key)
                    return cache[key]
                event = self._loading.get(key)
                if event is None:
                    event = self._loading[key] = threading.Event()
                    owner = True
                else:
                    owner = False
            if not owner:
                event.wait()
                continue
            try:
                value = make()
                with self._lock:
                    cache[key] = value
                    while len(cache) > self.cache_blocks:
                        cache.popitem(last=False)
                return value
            finally:
                with self._lock:
                    self._loading.pop(key, None)
                event.set()

    def _load(self, epoch: int, b: int) -> ColumnBlock:
        import pyarrow.parquet as pq

        blk = self.blocks[b]
        try:
            pf = pq.ParquetFile(blk.path)
            present = set(pf.schema_arrow.names)
            missing = [c for c in self.columns if c not in present]
            if missing:
                raise InputError(f"column(s) {missing} missing in '{blk.path}'")
            table = pf.read_row_group(blk.row_group, columns=self.columns)
        except InputError:
            raise
        except Exception as err:
            raise InputError(f"cannot read row group {blk.row_group} of '{blk.path}': {type(err).__name__}: {err}") from None
        block = ColumnBlock.from_arrow(table, self.columns, source=f"'{blk.path}'")
        if blk.start or blk.stop != block.n:
            block = block.slice(blk.start, blk.stop)
        if self.shuffle:
            perm = _philox("taucoffea.ml.dataset", self.seed, epoch, "rows", blk.path, blk.row_group, blk.start).permutation(block.n)
            block = block.take(perm)
        return block


class AdversarialDataset(keras.utils.PyDataset):
    """Main batches with ``n_adv`` control-region rows appended (reference §7.5, any ratio).

    Targets: ``main_output`` one-hot (zeros on adversarial rows) and ``adv_output`` = the
    data/MC label (``adv_label``: 1 data, 0 MC; zeros on main rows). Sample weights from
    :func:`~taucoffea.ml.adversarial.adversarial_batch_weights`. The adversarial stream restarts
    when exhausted, as the reference's iterator.
    """

    def __init__(self, main: TauDataset, adv: TauDataset, *, workers: int = 1, use_multiprocessing: bool = False,
                 max_queue_size: int = 10) -> None:
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size)
        self.main, self.adv = main, adv

    @property
    def num_batches(self) -> int:
        return self.main.num_batches

    def __len__(self) -> int:
        return self.num_batches

    def set_epoch(self, epoch: int) -> None:
        self.main.set_epoch(epoch)
        self.adv.set_epoch(epoch)

    @property
    def epoch(self) -> int:
        return self.main.epoch

    def parts(self, index: int) -> tuple[ColumnBlock, ColumnBlock]:
        """The main rows and the adversarial rows of batch ``index``."""
        n_adv_batches = self.adv.num_batches
        total = (self.main.epoch if self.main.shuffle else 0) * self.main.num_batches + index
        adv_epoch, adv_index = divmod(total, n_adv_batches)
        return self.main.rows(index), self.adv.rows(adv_index, epoch=adv_epoch)

    def __getitem__(self, index: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
        main_rows, adv_rows = self.parts(index)
        y_main, w_main = self.main.labels(main_rows)
        label = np.asarray(adv_rows.column("adv_label"), dtype=np.float32)
        w_adv = np.asarray(adv_rows.column("adv_weight"), dtype=np.float32)
        rows = ColumnBlock.concatenate([_common(main_rows, adv_rows), _common(adv_rows, main_rows)])
        x = self.main.builder.build(rows)
        n_tau, n_adv = main_rows.n, adv_rows.n
        y = np.concatenate([y_main, np.zeros((n_adv, N_CLASSES), np.float32)])
        y_adv = np.concatenate([np.zeros(n_tau, np.float32), label])[:, None]
        w_cls, w_adv_full = adversarial_batch_weights(w_main, w_adv)
        return x, {"main_output": y, "adv_output": y_adv}, {"main_output": w_cls, "adv_output": w_adv_full}


class EpochSetter(keras.callbacks.Callback):
    """Tells a dataset which epoch starts, before Keras starts fetching its batches."""

    def __init__(self, dataset: TauDataset | AdversarialDataset) -> None:
        super().__init__()
        self.dataset = dataset

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.dataset.set_epoch(epoch)


def _common(a: ColumnBlock, b: ColumnBlock) -> ColumnBlock:
    """``a`` restricted to the columns both blocks have (for concatenation)."""
    flat = {k: v for k, v in a.flat.items() if k in b.flat}
    lists = {}
    for prefix, coll in a.lists.items():
        if prefix in b.lists:
            fields = {k: v for k, v in coll.fields.items() if k in b.lists[prefix].fields}
            lists[prefix] = type(coll)(coll.offsets, fields)
    return ColumnBlock(a.n, flat, lists, a.source)
