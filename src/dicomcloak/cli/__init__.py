"""The ``dicomcloak`` command line (Typer); entry point :func:`dicomcloak.cli.app.main`.

Imported before pydicom and NumPy (the package's names are lazy): OpenBLAS, which NumPy loads, would
otherwise start a thread per core that spins at start-up. The command line never multiplies matrices,
and ``--jobs`` already uses every core with processes, so one BLAS thread is right; a value set in the
environment wins.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
