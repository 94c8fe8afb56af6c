"""Read a whole input without ever asking for more memory than it holds.

A buffered ``read(n)`` in CPython allocates ``n`` bytes before it reads one
(``_bufferedreader_read_generic``), so reading "up to the limit" in one call
reserves the whole limit (4 GiB by default) for every file. Where the address
space is capped (``ulimit -v`` on shared clusters, strict overcommit on
hospital servers, a container's memory limit) that allocation fails outright
and no file can be read at all. Reading the size the source declares, plus
one byte to notice a longer file, costs one allocation of the file's size.
"""

from __future__ import annotations

from typing import IO

from dicomcloak.errors import ReadLimitError

__all__ = ["read_capped"]

_CHUNK = 1 << 20


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
