"""A window of a regular file read as a file of its own: a tar member, read where it lies in its archive."""

from __future__ import annotations

import io
import os
from typing import IO

__all__ = ["open_slice"]


class _Slice(io.RawIOBase):
    """Bytes ``[offset, offset + size)`` of an open file, as a seekable stream that ends at ``size``.

    A tar member's data is stored contiguously after its header (POSIX.1-2001
    ``pax``, ustar), so once the walk knows where it starts, a worker reads it
    with ``pread`` and never parses the archive again.
    """

    def __init__(self, handle: IO[bytes], offset: int, size: int) -> None:
        super().__init__()
        self._handle, self._offset, self._size, self._at = handle, offset, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        want = min(len(buffer), self._size - self._at)
        if want <= 0:
            return 0
        data = os.pread(self._handle.fileno(), want, self._offset + self._at)
        buffer[: len(data)] = data
        self._at += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._at, os.SEEK_END: self._size}[whence]
        self._at = max(0, base + offset)
        return self._at

    def tell(self) -> int:
        return self._at

    def close(self) -> None:
        if not self.closed:
            self._handle.close()
        super().close()


def open_slice(handle: IO[bytes], offset: int, size: int) -> IO[bytes]:
    """A buffered stream of ``size`` bytes of ``handle`` from ``offset``; closing it closes ``handle``."""
    return io.BufferedReader(_Slice(handle, offset, size))
