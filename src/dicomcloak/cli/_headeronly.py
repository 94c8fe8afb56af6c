"""Header-only runs import pydicom without the pixel libraries it would load for nothing.

pydicom 3.0 imports every pixel plugin as it is imported (``pydicom.config``
imports the legacy ``pixel_data_handlers``, ``pydicom.dataset`` imports
``pydicom.pixels``), and with them NumPy, Pillow, GDCM, pylibjpeg and
pyjpegls when they are installed: about 140 ms of a 0.45 s start, measured
with ``python -X importtime`` (docs/benchmarks.md, "Speed (issue 16)"). A run
that never decodes a pixel (``deid --pixels off``: Pixel Data is copied byte
for byte, docs/architecture.md) needs none of them.

pydicom treats each of them as optional (``try: import numpy``, plugins that
report themselves unavailable), so while pydicom is imported they are made
unimportable, and importable again at once: pydicom then believes they are
absent for the whole process (its pixel features are off), while any later
import of them by other code still works. Pool workers started by ``fork``
inherit the imported pydicom; a ``spawn``/``forkserver`` worker imports it
anew, with its pixel libraries, as before.
"""

from __future__ import annotations

import sys

__all__ = ["PIXEL_LIBRARIES", "import_pydicom_header_only"]

#: What pydicom's pixel plugins import when installed (pydicom/pixels/{decoders,encoders}/*,
#: pixel_data_handlers/*), and the progress bar of its test-data downloader (pydicom/data/download.py),
#: which ``pydicom.pixels.processing`` imports: nothing is downloaded at run time.
PIXEL_LIBRARIES = (
    "numpy", "PIL", "gdcm", "pylibjpeg", "openjpeg", "libjpeg", "rle", "jpeg_ls", "pyjpegls", "tqdm",
)


def import_pydicom_header_only() -> bool:
    """Import pydicom with its pixel libraries unimportable; False when pydicom was imported already.

    Call it before anything imports pydicom, and only in a process that
    decodes no pixels: pydicom's ``pixel_array``, ``decompress`` and
    ``compress`` are unavailable in it.
    """
    if "pydicom" in sys.modules:
        return False  # too late to gain anything
    blocked = [name for name in PIXEL_LIBRARIES if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # documented: the import raises ImportError
    try:
        import pydicom  # noqa: F401 - imports dataset, dataelem, config, filereader, filewriter, pixels
    finally:
        for name in blocked:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
    return True
