"""What the reader checks once a data set is read: character set, nesting, SOP Instance UID, File Meta.

Split from :mod:`dicomcloak.io.reader` (the module-size rule); the same
value-free, typed errors (``charset-unknown``, ``sequence-too-deep``,
``too-many-elements``, ``missing-sop-instance-uid``).
"""

from __future__ import annotations

import warnings

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pydicom.valuerep import VR

from dicomcloak.errors import MalformedError, ReadLimitError
from dicomcloak.io._read_encoding import _declared_encoding, _Encoding, _syntax_for
from dicomcloak.raw.elements import charset_unknown, too_many_elements
from dicomcloak.raw.limits import ReadLimits

_SOP_INSTANCE_UID = 0x00080018
_SOP_CLASS_UID = 0x00080016
_CHARSET = 0x00080005
_NATIVE_TS = frozenset({ImplicitVRLittleEndian, ExplicitVRLittleEndian})


def _charset(ds: Dataset) -> str | list[str]:
    """The data set's character set, decoding (0008,0005) only (as pydicom's reader does).

    An unknown term is ``charset-unknown`` (pydicom would warn, quoting it, and guess).
    """
    if _CHARSET not in ds._dict:  # noqa: SLF001 - no conversion
        return ds._character_set  # noqa: SLF001 - pydicom exposes no public accessor
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            return ds._character_set  # noqa: SLF001
        except (UserWarning, LookupError):
            raise charset_unknown() from None


def _check_depth(ds: Dataset, limits: ReadLimits, depth: int, count: list[int]) -> None:
    """Refuse sequences nested deeper than the limit, and too many elements in them.

    Only sequences pydicom already parsed (undefined length) are visited;
    defined-length ones stay raw bytes until the sanitizer opens them, with
    the same limits. ``values()`` neither sorts nor converts, unlike ``elements()``.
    """
    for elem in ds.values():
        if isinstance(elem, DataElement) and elem.VR == VR.SQ:
            if depth >= limits.max_sequence_depth:
                raise _too_deep()
            for item in elem.value:
                count[0] += len(item._dict)  # noqa: SLF001 - a count, no conversion
                if count[0] > limits.max_elements:
                    raise too_many_elements()
                _check_depth(item, limits, depth + 1, count)


def _require_sop_instance_uid(ds: Dataset) -> None:
    """An instance without SOP Instance UID cannot be pseudonymised or tracked."""
    if not _raw_uid(ds, _SOP_INSTANCE_UID):
        raise MalformedError(
            "the data set has no SOP Instance UID (0008,0018)",
            reference="missing-sop-instance-uid",
            hint="only composite instances can be de-identified; DICOMDIR files are not",
        )


def _raw_uid(ds: Dataset, tag: int) -> str:
    """Return a UID element's text without converting the element in place."""
    if tag not in ds:
        return ""
    value = ds.get_item(tag).value
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").rstrip("\x00 ")
    return str(value or "").rstrip("\x00 ")


def _complete_meta(meta: FileMetaDataset, ds: Dataset, ts: UID | None, enc: _Encoding) -> None:
    """Give the File Meta the transfer syntax and SOP references a writer needs."""
    if ts is None or (ts in _NATIVE_TS and _declared_encoding(ts) != enc):
        meta.TransferSyntaxUID = _syntax_for(enc)
    if "MediaStorageSOPClassUID" not in meta and (sop_class := _raw_uid(ds, _SOP_CLASS_UID)):
        meta.MediaStorageSOPClassUID = UID(sop_class)
    if "MediaStorageSOPInstanceUID" not in meta:
        meta.MediaStorageSOPInstanceUID = UID(_raw_uid(ds, _SOP_INSTANCE_UID))


def _too_deep() -> ReadLimitError:
    return ReadLimitError(
        "sequences are nested deeper than the limit",
        reference="sequence-too-deep",
        hint="raise max_sequence_depth if such files are expected",
    )
