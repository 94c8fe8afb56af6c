"""A few open zip archives per process, shared by every member read from them."""

from __future__ import annotations

import atexit
import os
import threading
import zipfile
from collections import OrderedDict
from pathlib import Path

__all__ = ["ZIPS", "ZipCache"]


class ZipCache:
    """A few open archives per process, so reading N members parses one directory.

    Opening a ZipFile parses its whole central directory; doing that once
    per member makes a 10,000-member export quadratic. Entries are keyed by
    process id (a forked worker never shares a parent's file offset) and by
    mtime and size (a replaced archive is reopened). Evicted archives are
    closed; zipfile keeps the file open until members being read are closed.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._open: OrderedDict[tuple[str, int, int, int], zipfile.ZipFile] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path) -> zipfile.ZipFile:
        """The open archive at ``path`` (opened now if it is not cached, or was replaced)."""
        stat = path.stat()
        key = (str(path), os.getpid(), stat.st_mtime_ns, stat.st_size)
        with self._lock:
            archive = self._open.pop(key, None)
            if archive is None:
                archive = zipfile.ZipFile(path)
            self._open[key] = archive
            while len(self._open) > self._size:
                self._open.popitem(last=False)[1].close()
        return archive

    def clear(self) -> None:
        """Close every cached archive."""
        with self._lock:
            while self._open:
                self._open.popitem()[1].close()


ZIPS = ZipCache(size=4)
atexit.register(ZIPS.clear)
