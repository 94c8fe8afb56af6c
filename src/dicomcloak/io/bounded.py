"""Read a whole input without ever asking for more memory than it holds; or only a window of it.

A buffered ``read(n)`` in CPython allocates ``n`` bytes before it reads one
(``_bufferedreader_read_generic``), so reading "up to the limit" in one call
reserves the whole limit (4 GiB by default) for every file. Where the address
space is capped (``ulimit -v`` on shared clusters, strict overcommit on
hospital servers, a container's memory limit) that allocation fails outright
and no file can be read at all. Reading the size the source declares, plus
one byte to notice a longer file, costs one allocation of the file's size.

A :class:`Window` reads an input a few pages at a time, so its element
headers can be walked (:mod:`dicomcloak.raw.extent`) before it is read whole.
"""

from __future__ import annotations

from typing import IO

from dicomcloak.errors import ReadLimitError

__all__ = ["Window", "read_capped"]

_CHUNK = 1 << 20
_SPAN = 1 << 16


def read_capped(handle: IO[bytes], size: int, max_bytes: int) -> bytes:
    """Every byte of ``handle``, or the first ``max_bytes`` + 1 of them when there are more.

    ``size`` is what the source says it holds (``fstat``, a zip header). A
    source longer than that (a file still being written, a zip header that
    lies) is read on in chunks, up to one byte past ``max_bytes``, so the
    caller sees the excess and refuses the input.

    Raises
    ------
    ReadLimitError
        ``memory-exhausted`` when the bytes do not fit in the memory left.
    OSError
        As the handle raises it.
    """
    try:
        data = handle.read(min(size, max_bytes) + 1)
        if len(data) <= size:
            return data
        return _read_on(handle, data, max_bytes)
    except MemoryError:
        raise ReadLimitError(
            "the file does not fit in the memory left", reference="memory-exhausted", hint=_HINT_MEMORY
        ) from None


_HINT_MEMORY = "run with fewer --jobs or more memory, or lower max_file_bytes to refuse such files"


def _read_on(handle: IO[bytes], first: bytes, max_bytes: int) -> bytes:
    """``first`` and what follows it, stopping one byte past ``max_bytes``."""
    parts, total = [first], len(first)
    while total <= max_bytes:
        chunk = handle.read(min(_CHUNK, max_bytes + 1 - total))
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
    return b"".join(parts)


class Window:
    """The bytes of a seekable binary handle as ``bytes`` slices, read ``span`` bytes at a time.

    What :func:`dicomcloak.raw.extent.check_extent` walks: a slice inside the
    current window costs no read; a slice elsewhere reads one window there.
    Memory is one window, whatever the input's size: a 2 GB sparse file is
    judged from the few pages its headers sit on, and no page of it is mapped
    into the process. A zip member's stream seeks forward by inflating; the
    walk rarely seeks back.
    """

    def __init__(self, handle: IO[bytes], size: int, span: int = _SPAN) -> None:
        self._handle, self._size, self._span = handle, size, span
        self._start, self._bytes = 0, b""

    def __len__(self) -> int:
        """The input's size, as the caller declared it (``fstat``, the zip header)."""
        return self._size

    def __getitem__(self, index: slice, /) -> bytes:
        """``bytes`` of ``[index.start, index.stop)``, cut at the input's end (no step)."""
        start = max(index.start or 0, 0)
        stop = self._size if index.stop is None else min(index.stop, self._size)
        if stop <= start:
            return b""
        offset = start - self._start
        if offset < 0 or stop - self._start > len(self._bytes):
            if stop - start > self._span:
                return self._read(start, stop - start)
            self._start, self._bytes, offset = start, self._read(start, self._span), 0
        return self._bytes[offset : offset + stop - start]

    def find(self, sub: bytes, start: int, end: int, /) -> int:
        """Where ``sub`` first occurs in ``[start, end)``, or -1; read a chunk at a time."""
        end = min(end, self._size)
        while end - start >= len(sub):
            want = min(_CHUNK, end - start)
            chunk = self._read(start, want)
            found = chunk.find(sub)
            if found >= 0:
                return start + found
            if len(chunk) < want:
                break
            start += want - len(sub) + 1  # the next chunk overlaps: ``sub`` may straddle the two
        return -1

    def _read(self, start: int, size: int) -> bytes:
        self._handle.seek(start)
        return self._handle.read(size)
