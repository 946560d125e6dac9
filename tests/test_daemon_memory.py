"""Large blocks the daemon frees go back to the system (pipeline.daemon._memory)."""

from __future__ import annotations

import ctypes

import pytest

from pipeline.daemon._memory import return_large_blocks

_FIELDS = ["arena", "ordblks", "smblks", "hblks", "hblkhd"]
_FIELDS += ["usmblks", "fsmblks", "uordblks", "fordblks", "keepcost"]


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in _FIELDS]


def _mallinfo() -> _Mallinfo2:
    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except AttributeError:
        pytest.skip("not glibc 2.33 or later")
    mallinfo2.restype = _Mallinfo2
    info: _Mallinfo2 = mallinfo2()
    return info


def _mapped() -> int:
    """Bytes held in blocks mapped on their own (unmapped as soon as freed)."""
    return int(_mallinfo().hblkhd)


def test_a_large_block_freed_and_asked_for_again_is_mapped_again() -> None:
    if not return_large_blocks():
        pytest.skip("no mallopt in this C library")
    # Larger than all the heap's free space, as a snapshot is at its first
    # encoding: it is never served from a free chunk, only from a mapping or
    # by growing the heap.
    block = 4 * 1024 * 1024 + 2 * int(_mallinfo().fordblks)
    before = _mapped()
    # Left alone, glibc would raise its threshold when this first block is freed...
    first = bytearray(block)
    del first
    # ...and grow the heap for the next, where it would stay resident once freed.
    second = bytearray(block)
    assert _mapped() >= before + block
    del second
    assert _mapped() < before + block  # unmapped: back to the system
