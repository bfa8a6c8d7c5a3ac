"""Buffers that a read is about to fill, allocated without being zeroed first.

`bytearray(n)` writes n zero bytes before the socket or the file overwrites them: for the
megabyte-sized request frames and chunk reads of the record path that is a pass over
memory as long as the copy itself. CPython's PyByteArray_Resize grows an empty bytearray
without touching the new bytes.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import cast


def _bytearray_resize() -> Callable[[bytearray, int], int] | None:
    try:
        resize = ctypes.pythonapi.PyByteArray_Resize
    except (AttributeError, OSError):  # not CPython: zeroed buffers it is
        return None
    resize.argtypes = (ctypes.py_object, ctypes.c_ssize_t)
    resize.restype = ctypes.c_int
    return cast(Callable[[bytearray, int], int], resize)


_resize = _bytearray_resize()

SMALLEST_UNFILLED = 16 * 1024
"""Below this, zeroing costs less than the foreign call that avoids it."""


def unfilled_bytearray(size: int) -> bytearray:
    """A bytearray of `size` bytes holding whatever the allocator left there.

    Only for a buffer that is filled before anyone reads it, or cut to what was filled:
    its bytes may be those of memory freed earlier.
    """
    if _resize is None or size < SMALLEST_UNFILLED:
        return bytearray(size)
    buffer = bytearray()
    _resize(buffer, size)  # raises MemoryError itself when the allocation fails
    return buffer


def most_of_a_bytearray(view: memoryview) -> bool:
    """A writable view covering at least half of the bytearray it belongs to: worth keeping
    (and caching) as it is, where a smaller one would pin a much larger buffer."""
    owner = view.obj
    return not view.readonly and isinstance(owner, bytearray) and 2 * view.nbytes >= len(owner)


def aligned_unfilled(size: int, alignment: int) -> memoryview:
    """A writable view of `size` unfilled bytes starting at an address that is a multiple
    of `alignment` (a power of two), as direct I/O needs; same caveat as unfilled_bytearray."""
    buffer = unfilled_bytearray(size + alignment)
    address = ctypes.addressof(ctypes.c_char.from_buffer(buffer))
    skip = -address % alignment
    return memoryview(buffer)[skip : skip + size]
