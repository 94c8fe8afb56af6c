"""Write outputs on a small thread pool, so fsyncs overlap de-identification and each other.

Each output is still written atomically (temp, fsync, rename: io.writer);
only *when* it happens moves to a thread. fsync and file writes release the
GIL, so the next file is de-identified meanwhile, and concurrent fsyncs let the
file system group them into fewer journal commits. The batch drains the writer
at the end of every chunk of work: a write error stops the run (OutputError,
exit 3) before the chunk's results are reported, so a run that ends well has
every output on disk.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from dicomcloak.io.writer import write_atomic

__all__ = ["BackgroundWriter"]


class BackgroundWriter:
    """A bounded queue of atomic writes done by ``threads`` threads.

    Parameters
    ----------
    threads:
        Writer threads: two let one fsync wait while the next file is written;
        0 writes in the caller's thread (for worker processes that already
        keep every core busy, where threads only add GIL hand-offs).
        On the 2-core reference machine 1, 2 and 4 threads measured within the
        run-to-run noise of its disk (docs/benchmarks.md).
    max_pending, max_bytes:
        Writes (and encoded bytes) in flight before :meth:`submit` waits for
        the oldest; they bound the memory held by files waiting to be written.
    """

    def __init__(self, threads: int = 2, max_pending: int = 16, max_bytes: int = 256 << 20) -> None:
        self._threads = threads
        self._max_pending = max_pending
        self._max_bytes = max_bytes
        self._executor: ThreadPoolExecutor | None = None
        self._pending: deque[tuple[Future[None], int]] = deque()
        self._bytes = 0

    def submit(self, path: Path, payload: Sequence[bytes]) -> None:
        """Queue ``payload`` to be written to ``path`` (atomically; the directory is synced later)."""
        if self._threads == 0:
            write_atomic(path, payload, sync_directory=False)
            return
        size = sum(len(part) for part in payload)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._threads, thread_name_prefix="dicomcloak-writer")
        while self._pending and (
            len(self._pending) >= self._max_pending or self._bytes + size > self._max_bytes
        ):
            self._raise_if_failed(self._wait_oldest())
        future = self._executor.submit(write_atomic, path, payload, sync_directory=False)
        self._pending.append((future, size))
        self._bytes += size

    def drain(self) -> None:
        """Wait for every queued write; re-raise the first failure (an OutputError)."""
        first: BaseException | None = None
        while self._pending:
            error = self._wait_oldest()
            if error is not None and first is None:
                first = error
        self._raise_if_failed(first)

    def close(self) -> None:
        """Drain, then stop the threads (before a fork: a forked child must not inherit them)."""
        try:
            self.drain()
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None

    def _wait_oldest(self) -> BaseException | None:
        future, size = self._pending.popleft()
        self._bytes -= size
        return future.exception()  # blocks until the write is done

    @staticmethod
    def _raise_if_failed(error: BaseException | None) -> None:
        if error is not None:
            raise error
