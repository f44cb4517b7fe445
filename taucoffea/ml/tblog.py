"""TensorBoard scalar logs without TensorFlow or the tensorboard package.

Keras' own TensorBoard callback needs TensorFlow *and* tensorboard (tensorflow-cpu ≥ 2.21 no
longer installs the latter) and does not work on the JAX/PyTorch backends. Scalars are all the
reference logs (loss, metrics), and their on-disk format is small: TFRecord framing (length,
masked CRC-32C, payload, masked CRC-32C) around hand-encoded ``Event`` protobufs. The files are
read by TensorBoard (``tensorboard --logdir RUN/tensorboard``) and by ``tf.data``.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from pathlib import Path
from typing import Any

__all__ = ["ScalarWriter", "TensorBoardScalars", "crc32c"]


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as TFRecord uses."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _field(number: int, wire: int, payload: bytes) -> bytes:
    return _varint((number << 3) | wire) + payload


def _bytes_field(number: int, data: bytes) -> bytes:
    return _field(number, 2, _varint(len(data)) + data)


def _event(step: int, *, file_version: str | None = None, summary: bytes | None = None) -> bytes:
    msg = _field(1, 1, struct.pack("<d", time.time())) + _field(2, 0, _varint(int(step)))
    if file_version is not None:
        msg += _bytes_field(3, file_version.encode())
    if summary is not None:
        msg += _bytes_field(5, summary)
    return msg


def _scalar_summary(tag: str, value: float) -> bytes:
    entry = _bytes_field(1, tag.encode()) + _field(2, 5, struct.pack("<f", float(value)))
    return _bytes_field(1, entry)


class ScalarWriter:
    """Append scalar events to one ``events.out.tfevents.*`` file in ``log_dir``."""

    _counter = 0

    def __init__(self, log_dir: str | os.PathLike[str]) -> None:
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        ScalarWriter._counter += 1
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}.{ScalarWriter._counter}"
        self.path = self.log_dir / name
        self._fh = open(self.path, "ab")
        self._write(_event(0, file_version="brain.Event:2"))

    def _write(self, record: bytes) -> None:
        header = struct.pack("<Q", len(record))
        self._fh.write(header + struct.pack("<I", _masked(header)) + record + struct.pack("<I", _masked(record)))

    def scalar(self, tag: str, value: float, step: int) -> None:
        self._write(_event(step, summary=_scalar_summary(tag, value)))

    def flush(self) -> None:
        self._fh.flush()

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()


def _numeric(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class TensorBoardScalars:
    """Keras callback mixin target: epoch (and optionally every-N-batch) scalars.

    Layout as Keras' callback: ``train/`` gets ``epoch_<metric>`` and ``batch_<metric>``,
    ``validation/`` gets ``epoch_<metric>`` for the ``val_*`` logs.
    """

    def __init__(self, log_dir: str | os.PathLike[str], update_freq: int | str = "epoch") -> None:
        self.log_dir = Path(log_dir)
        self.update_freq = update_freq
        self._train: ScalarWriter | None = None
        self._val: ScalarWriter | None = None
        self._step = 0

    def _writers(self) -> tuple[ScalarWriter, ScalarWriter]:
        if self._train is None:
            self._train = ScalarWriter(self.log_dir / "train")
            self._val = ScalarWriter(self.log_dir / "validation")
        return self._train, self._val  # type: ignore[return-value]

    def batch(self, step: int, logs: dict[str, Any] | None) -> None:
        if self.update_freq == "epoch" or not logs or step % int(self.update_freq):
            return
        train, _ = self._writers()
        for key, value in logs.items():
            v = _numeric(value)
            if v is not None:
                train.scalar(f"batch_{key}", v, step)

    def epoch(self, epoch: int, logs: dict[str, Any] | None) -> None:
        train, val = self._writers()
        for key, value in (logs or {}).items():
            v = _numeric(value)
            if v is None:
                continue
            if key.startswith("val_"):
                val.scalar(f"epoch_{key[4:]}", v, epoch)
            else:
                train.scalar(f"epoch_{key}", v, epoch)
        train.flush()
        val.flush()

    def close(self) -> None:
        for w in (self._train, self._val):
            if w is not None:
                w.close()
