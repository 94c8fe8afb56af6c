"""Write files atomically: an output appears under its final name only when complete.

A crash, a full disk or a killed worker must never leave a half-written
DICOM file that a downstream archive would ingest (architecture.md decision 6).
Every write goes to a hidden temporary file, is flushed to disk, renamed
over the target with :func:`os.replace` (atomic on POSIX within one file
system) and the directory entry itself is synced. A batch passes the
:class:`~dicomcloak.io.staging.Tree` it writes: its temporary files then live
in the tree's ``.dicomcloak-tmp/`` directory, not among its outputs; without
one they are created beside the target. Temporary names start with ``.``,
end with ``.tmp`` (input walkers skip them) and name the host and process
that made them, so a later run removes only the debris of dead processes
(:mod:`dicomcloak.io.staging`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, BinaryIO, TypeVar

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from dicomcloak.errors import DicomcloakError, OutputError, ProcessingError
from dicomcloak.io.encode import encode_file_parts
from dicomcloak.io.staging import Tree, temp_name

__all__ = [
    "copy_atomic",
    "encode_dataset",
    "encode_dataset_bound",
    "encode_dataset_parts",
    "encode_dataset_sealed",
    "forget_made_dirs",
    "write_atomic",
    "write_dataset_atomic",
]

_COPY_CHUNK = 1 << 16  # also the granularity of the sparse copy's holes
_NO_LIMIT = 2**63
_T = TypeVar("_T")


def write_atomic(
    path: Path, payload: bytes | Sequence[bytes], *, sync_directory: bool = True, tree: Tree | None = None
) -> None:
    """Write `payload` (bytes, or parts written one after the other) to `path` atomically.

    Parent directories are created (0700 in a private `tree`); the temporary
    file goes to `tree`'s staging directory, or beside `path` without one.

    The file's data is always fsynced before the rename. With
    ``sync_directory=False`` the caller takes over making the rename itself
    durable (a batch syncs once at the end of the run instead of once per file).

    Raises
    ------
    OutputError
        ``output-unwritable``; the temporary file is removed first.
    """
    with atomic_file(path, sync_directory=sync_directory, tree=tree) as handle:
        if isinstance(payload, bytes):
            handle.write(payload)
        else:
            handle.writelines(payload)


def write_dataset_atomic(path: Path, ds: Dataset) -> None:
    """Encode `ds` as a DICOM Part 10 file and write it to `path` atomically.

    Encoding happens before anything touches the disk, so an encoding
    failure leaves no file at all.

    Raises
    ------
    ProcessingError
        ``encode-failed`` when pydicom cannot encode the data set.
    OutputError
        ``output-unwritable``.
    """
    write_atomic(path, encode_dataset(ds))


def encode_dataset(ds: Dataset) -> bytes:
    """Return `ds` encoded as a DICOM Part 10 file (preamble, File Meta, data set).

    See :func:`encode_dataset_parts`; this joins the parts.
    """
    return b"".join(encode_dataset_parts(ds))


def encode_dataset_parts(ds: Dataset) -> list[bytes]:
    """Return `ds` encoded as a DICOM Part 10 file, as parts to write in order (no joining copy).

    The data set keeps its own transfer syntax; raw elements already in that
    encoding are copied byte for byte by :mod:`dicomcloak.io.encode`, which is
    what makes writing cheaper than decoding. The preamble is always zeros.

    Raises
    ------
    ProcessingError
        ``encode-failed``. The message names tags only: pydicom's messages
        may quote element values.
    """
    return _typed(encode_file_parts, ds)


def encode_dataset_bound(ds: Dataset) -> tuple[list[bytes], bytes]:
    """:func:`encode_dataset_parts`, and the binding digest of the output (:mod:`dicomcloak.io.binding`).

    Raises
    ------
    ProcessingError
        ``encode-failed``, as :func:`encode_dataset_parts`.
    """
    from dicomcloak.io.binding import encode_file_bound  # vault runs only

    return _typed(encode_file_bound, ds)


def encode_dataset_sealed(ds: Dataset, seal: Callable[[bytes], DataElement]) -> tuple[list[bytes], bytes]:
    """:func:`encode_dataset_bound`, with the embedded seal ``seal(binding digest)`` encoded in its place.

    One encoding (:func:`dicomcloak.io.binding.encode_file_sealed`).

    Raises
    ------
    ProcessingError
        ``encode-failed``, as :func:`encode_dataset_parts`; a ``SealError`` from ``seal`` propagates.
    """
    from dicomcloak.io.binding import encode_file_sealed

    return _typed(lambda d: encode_file_sealed(d, seal), ds)


def _typed(encode: Callable[[Dataset], _T], ds: Dataset) -> _T:
    """``encode(ds)``, any failure turned into a value-free ``encode-failed`` (typed errors pass)."""
    try:
        return encode(ds)
    except DicomcloakError:
        raise
    except RecursionError:
        raise _encode_failed("RecursionError") from None
    except Exception as exc:  # noqa: BLE001 - any pydicom failure is this file's problem
        raise _encode_failed(type(exc).__name__) from None


def copy_atomic(
    path: Path, source: IO[bytes], max_bytes: int | None = None, *, tree: Tree | None = None
) -> tuple[int, bool]:
    """Stream `source` to `path` atomically, without holding it in memory; at most `max_bytes` of it.

    Used to quarantine originals that may be too large to read whole. The
    copy is sparse: a chunk of zero bytes is not written but left as a hole
    (the file's size is set at the end), so a sparse input (a 2 GB file that
    costs its maker nothing) costs the quarantine nothing either, and a
    zero-filled one of any length as little. `max_bytes` keeps the head of
    a larger input only. `tree`: as :func:`write_atomic`.

    Returns
    -------
    tuple[int, bool]
        The bytes copied, and whether `source` held more (the copy is its head).

    Raises
    ------
    OutputError
        ``output-unwritable``, also when reading `source` fails with an
        ``OSError``; other errors from `source` propagate unchanged. The
        temporary file is removed either way.
    """
    with atomic_file(path, tree=tree) as handle:
        return _copy_sparse(source, handle, _NO_LIMIT if max_bytes is None else max_bytes)


def _copy_sparse(source: IO[bytes], target: BinaryIO, max_bytes: int) -> tuple[int, bool]:
    """Copy up to `max_bytes` of `source` into `target`, zero chunks as holes; (bytes copied, more left)."""
    copied = 0
    while copied < max_bytes:
        chunk = source.read(min(_COPY_CHUNK, max_bytes - copied))
        if not chunk:
            break
        if chunk.count(0) == len(chunk):
            target.seek(len(chunk), os.SEEK_CUR)
        else:
            target.write(chunk)
        copied += len(chunk)
    target.truncate(copied)  # also the size of a copy that ends in a hole
    return copied, copied >= max_bytes and bool(source.read(1))


@contextmanager
def atomic_file(path: Path, *, sync_directory: bool = True, tree: Tree | None = None) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces `path` only if the block completes (`tree`: as :func:`write_atomic`).

    Raises
    ------
    OutputError
        ``output-unwritable`` for any ``OSError`` raised while creating,
        writing (in the block too: a full disk shows up there), syncing or
        renaming. Other exceptions from the block propagate unchanged. The
        temporary file never survives a failure.
    """
    handle, tmp = _open_temp(path, tree)
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError:
        _remove_quietly(tmp)
        raise _unwritable(path) from None
    except BaseException:
        _remove_quietly(tmp)
        raise
    if sync_directory:
        _fsync_directory(path.parent)


_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
#: Where the temporary files of a target directory go, per (directory, tree): made once per process.
_temp_dirs: dict[tuple[str, Tree | None], str] = {}


def forget_made_dirs() -> None:
    """Forget which directories this process made: a process that outlives a run (a Dask worker, which
    runs the next ``deid --dask`` too) makes them again, should their tree have been deleted meanwhile."""
    _temp_dirs.clear()


def _open_temp(path: Path, tree: Tree | None = None) -> tuple[BinaryIO, Path]:
    """Create the temporary file for `path` (in `tree`'s staging directory, or beside it), mode 0600."""
    fd, tmp = _open_temp_fd(path, tree)
    return os.fdopen(fd, "wb"), tmp


def _open_temp_fd(path: Path, tree: Tree | None = None) -> tuple[int, Path]:
    """Create the temporary file for `path`, mode 0600, on the target's file system; its descriptor.

    The target's directory (and the staging directory) are made once per
    process. If the staging directory has gone meanwhile (another run that
    finished removed it while empty), it is made again, once.
    """
    directory = os.fspath(path.parent)
    try:
        try:
            tmp = os.path.join(_temp_dir(directory, tree), temp_name())
            fd = os.open(tmp, _TEMP_FLAGS, 0o600)
        except FileNotFoundError:
            _temp_dirs.pop((directory, tree), None)
            tmp = os.path.join(_temp_dir(directory, tree), temp_name())
            fd = os.open(tmp, _TEMP_FLAGS, 0o600)
    except OSError:
        _temp_dirs.pop((directory, tree), None)
        raise _unwritable(path) from None
    return fd, Path(tmp)


def _temp_dir(directory: str, tree: Tree | None) -> str:
    """The directory for the temporary files of `directory`'s outputs; both are created if missing.

    The tree's staging directory when it is on the same file system as
    `directory` (a rename cannot cross file systems: a mount point inside
    the tree keeps its temporary files beside its outputs), else `directory`.
    """
    found = _temp_dirs.get((directory, tree))
    if found is None:
        if tree is None:
            os.makedirs(directory, exist_ok=True)
            found = directory
        else:
            tree.make_dirs(Path(directory))
            tree.make_staging()
            same = os.stat(directory).st_dev == os.stat(tree.staging).st_dev
            found = os.fspath(tree.staging) if same else directory
        _temp_dirs[(directory, tree)] = found
    return found


def _fsync_directory(directory: Path) -> None:
    """Persist the rename itself; without this a power cut may undo it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # the rename has happened; only its durability is best effort here
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a directory; the rename stands
    finally:
        os.close(fd)


def _remove_quietly(tmp: Path) -> None:
    with suppress(OSError):
        tmp.unlink(missing_ok=True)


def _unwritable(path: Path) -> OutputError:
    error = OutputError(
        f"cannot write {path}",
        reference="output-unwritable",
        hint="check that the output directory exists, is writable and has free space",
    )
    error.path = path
    return error


def _encode_failed(kind: str) -> ProcessingError:
    return ProcessingError(
        f"pydicom could not encode the data set ({kind})",
        reference="encode-failed",
        hint="the data set holds an element pydicom cannot write; see the policy's VR rules",
    )
