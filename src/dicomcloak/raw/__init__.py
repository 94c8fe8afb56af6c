"""Pure readers of raw DICOM encodings (PS3.5 7.1, 7.5): bytes in, raw pydicom elements out.

Shared by the reader at the edge (``dicomcloak.io``) and the engine, which
opens defined-length sequences itself; no file access, no policy.
"""

from dicomcloak.raw.datasets import new_dataset, new_file_dataset, new_file_meta
from dicomcloak.raw.elements import read_elements
from dicomcloak.raw.items import read_items

__all__ = ["new_dataset", "new_file_dataset", "new_file_meta", "read_elements", "read_items"]
