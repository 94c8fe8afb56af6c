"""How the ``dicomcloak`` process starts and ends: library threads limited, teardown skipped.

Both matter to every command and most to a batch, whose serial start and end
no ``--jobs`` can shorten (docs/benchmarks.md).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from collections.abc import Callable

from dicomcloak.cli._common import ExitCode, discard_standard_output

__all__ = ["exit_now", "limit_library_threads"]

#: Thread pools of numerical libraries that our process-level parallelism would oversubscribe.
_LIBRARY_THREADS = ("OPENBLAS_NUM_THREADS",)

#: What CPython exits with when it cannot flush standard output at exit.
_FLUSH_FAILED = 120


def limit_library_threads() -> None:
    """Give NumPy's OpenBLAS one thread unless the user chose otherwise; call before NumPy is imported.

    Parallelism here is one process per core (``--jobs``). OpenBLAS, which
    NumPy's wheels bundle, starts a thread per core as NumPy is imported and
    each spins before it sleeps: about 0.1 s of CPU time per process for
    nothing, since header de-identification never multiplies matrices, and
    N workers x N threads once pixel work does. Dask's worker nanny sets the
    same variable to 1 for the same reason. A value already in the
    environment wins.
    """
    for name in _LIBRARY_THREADS:
        os.environ.setdefault(name, "1")


def exit_now(code: object) -> None:
    """End a finished command at once, without the interpreter's teardown; return if that is unsafe.

    Tearing down the interpreter frees pydicom's dictionaries, NumPy and every
    module one object at a time: about 60 ms once the batch stack is imported
    (396 ms against 340 ms for ``import dicomcloak.batch.run`` alone, medians of
    30), after the command's work is done and durable (outputs, reports and
    events are written atomically and synced, databases closed): memory the
    kernel frees anyway when the process ends. So: the exit functions run
    first (:mod:`atexit`: logging, multiprocessing, coverage), then the
    standard streams are flushed, then the process exits with ``code``.

    Only when no other thread is alive (otherwise the normal exit joins it)
    and ``code`` is an exit status; else this returns and the caller exits
    normally.
    """
    run_exit_functions: Callable[[], None] | None = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_functions is None or threading.active_count() != 1:
        return
    if code is not None and not isinstance(code, int):
        return  # a message to print: the normal exit prints it
    run_exit_functions()
    os._exit(_flushed(code or 0))


def _flushed(status: int) -> int:
    """Flush stdout and stderr; ``status``, or the status their failure calls for.

    The reader of a pipe gone (``| head``): 141, as if killed by SIGPIPE, and
    nothing more is written. Another failure: 120, as CPython exits.
    """
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except BrokenPipeError:
        discard_standard_output()
        return int(ExitCode.OUTPUT_CLOSED)
    except (OSError, ValueError):
        return _FLUSH_FAILED
    return status
