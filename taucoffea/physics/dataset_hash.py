"""``dataset_id`` / ``dataset_group_id``: libstdc++'s 64-bit ``std::hash<std::string>``.

ShuffleMergeSpectral stores ``std::hash`` of the dataset directory name and of the data-group
name in every output row. Reproducing the exact value keeps our outputs joinable with files
and ``dataset_hash.json`` tables written by the original tools (reference spec §3.7).
"""

from __future__ import annotations

__all__ = ["STD_HASH_SEED", "std_hash"]

#: The seed libstdc++ passes to ``_Hash_bytes`` for ``std::hash<std::string>``.
STD_HASH_SEED = 0xC70F6907
_MUL = 0xC6A4A7935BD1E995
_MASK = (1 << 64) - 1


def _shift_mix(v: int) -> int:
    return v ^ (v >> 47)


def std_hash(s: str) -> int:
    """64-bit ``std::hash<std::string>`` of the UTF-8 bytes of ``s`` (an unsigned int).

    libstdc++'s ``_Hash_bytes`` is a MurmurHash64A variant; the tail bytes are folded in as
    one little-endian integer rather than MurmurHash's byte-by-byte switch. Python integers
    masked to 64 bits are plenty fast for dataset names.
    """
    data = s.encode("utf-8")
    n = len(data)
    h = (STD_HASH_SEED ^ (n * _MUL)) & _MASK
    n_words = n // 8
    for i in range(n_words):
        w = int.from_bytes(data[8 * i : 8 * i + 8], "little")
        h ^= (_shift_mix((w * _MUL) & _MASK) * _MUL) & _MASK
        h = (h * _MUL) & _MASK
    tail = data[8 * n_words :]
    if tail:
        h ^= int.from_bytes(tail, "little")
        h = (h * _MUL) & _MASK
    return _shift_mix((_shift_mix(h) * _MUL) & _MASK)
