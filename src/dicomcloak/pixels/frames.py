"""Every frame of an image in any transfer syntax pydicom decodes; redacted frames written back losslessly.

:func:`decode` gives all frames as one array, (frames, rows, columns[,
samples]), colour as RGB (PS3.3 C.7.6.3.1.2: YBR_FULL, YBR_FULL_422,
YBR_RCT and YBR_ICT are converted by the decoders), monochrome and palette
images as stored values. :func:`replace` writes such an array back in the
transfer syntax :mod:`dicomcloak.pixels.syntax` chooses, keeping the Image
Pixel attributes (PS3.3 C.7.6.3) and the File Meta Transfer Syntax UID true to
what is written. :func:`mark_cleaned` says so in the markers (PS3.3 C.7.6.1.1.5,
PS3.15 E.3.1). :func:`sample_indices` and :func:`to_uint8` serve detection.

Decoding never changes the data set: an instance that needs no redaction
keeps its Pixel Data byte for byte. Codecs: pydicom with pylibjpeg
(-openjpeg, -rle), python-gdcm, pyjpegls and Pillow, imported on first use.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import UID, ExplicitVRLittleEndian, JPEG2000Lossless

from dicomcloak.errors import ProcessingError, ReadLimitError
from dicomcloak.pixels.display import to_uint8
from dicomcloak.pixels.syntax import Target, lossy_method, source_syntax, target_for
from dicomcloak.standard.table import method_codes

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["DECODE_LIMIT", "decode", "frame_count", "mark_cleaned", "replace", "sample_indices", "to_uint8"]

#: Most bytes :func:`decode` allocates for one instance's frames (a header may claim any size).
DECODE_LIMIT = 2**31
_PIXEL_DATA = 0x7FE00010
_EXTENDED_OFFSETS = (0x7FE00001, 0x7FE00002)  # Extended Offset Table and its Lengths (PS3.3 C.7.6.3)
_CLEAN_PIXEL_DATA = "113101"  # CID 7050, Clean Pixel Data Option
_CLEAN_METHOD_TEXT = "Clean Pixel Data Option"


def frame_count(ds: Dataset) -> int:
    """Number of Frames (0028,0008), 1 when absent or empty."""
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


def sample_indices(n_frames: int, k: int) -> tuple[int, ...]:
    """``k`` frames to examine of ``n_frames``: the first, the last and evenly spaced between (all if fewer).

    Burned-in text is usually static across a cine loop; the caller redacts
    the union of what it finds on every frame.
    """
    if n_frames <= 0 or k <= 0:
        return ()
    if k >= n_frames:
        return tuple(range(n_frames))
    if k == 1:
        return (0,)
    return tuple(sorted({round(i * (n_frames - 1) / (k - 1)) for i in range(k)}))


def decode(ds: Dataset, *, limit: int = DECODE_LIMIT) -> NDArray[np.generic]:
    """All frames of ``ds`` as a writable array (frames, rows, columns[, samples]) in native byte order.

    Raises
    ------
    ReadLimitError
        ``pixel-too-large``: the decoded frames would exceed ``limit`` bytes.
    ProcessingError
        ``pixel-undecodable``: no Pixel Data, or no installed codec decodes it.
    """
    if _PIXEL_DATA not in ds:
        raise _undecodable("the data set has no Pixel Data (7FE0,0010)")
    _check_size(ds, limit)
    array = _decoded(ds)
    array = array.reshape(_shape(ds, array))
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    return array if array.flags.writeable else array.copy()


def _decoded(ds: Dataset) -> NDArray[np.generic]:
    from pydicom.pixels.decoders.base import get_decoder

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom's notes on header/codestream mismatches
            array, _ = get_decoder(source_syntax(ds)).as_array(ds)  # as_rgb by default: YBR_* -> RGB
    except Exception as exc:  # noqa: BLE001 - codecs raise anything; a typed, value-free error instead
        raise _undecodable(f"the Pixel Data cannot be decoded ({type(exc).__name__})") from None
    return array


def _shape(ds: Dataset, array: NDArray[np.generic]) -> tuple[int, ...]:
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    tail = (int(ds.Rows), int(ds.Columns), *((samples,) if samples > 1 else ()))
    return (array.size // int(np.prod(tail)), *tail)


def _check_size(ds: Dataset, limit: int) -> None:
    try:
        bits = int(ds.BitsAllocated)
        pixels = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1) or 1)
    except (AttributeError, TypeError, ValueError):
        raise _undecodable("the Image Pixel module is incomplete") from None
    size = pixels * frame_count(ds) * max(1, -(-bits // 8))
    if size > limit:
        raise ReadLimitError(
            f"the decoded frames would take {size} bytes, more than the limit of {limit}",
            reference="pixel-too-large",
            hint="raise the pixel decoding limit if such images are expected",
        )


def replace(ds: Dataset, array: NDArray[np.generic]) -> None:
    """Write ``array`` (as :func:`decode` shapes it) as the Pixel Data of ``ds``, losslessly; in place.

    The transfer syntax is :func:`~dicomcloak.pixels.syntax.target_for`'s;
    Photometric Interpretation becomes RGB when decoding converted YBR
    (YBR_RCT stays for JPEG 2000 Lossless re-encoded with its reversible
    colour transform, PS3.5 8.2.4), Planar Configuration 0 (colour by
    pixel), Lossy Image Compression stays true, and ``ds.file_meta``
    follows. Call it only for an instance whose pixels changed: any other
    keeps its Pixel Data untouched.

    Raises
    ------
    ProcessingError
        ``pixel-unencodable``: the array does not fit the image (shape, values).
    """
    source, target = source_syntax(ds), target_for(ds)
    frames = _conformed(ds, array)
    _note_lossy(ds, source)
    for tag in _EXTENDED_OFFSETS:
        ds.pop(BaseTag(tag), None)
    if not (target.compressed and _compressed(ds, frames, target)):
        _set_colour(ds, "RGB")
        native = not source.is_compressed
        _write_native(ds, frames, source if native else ExplicitVRLittleEndian, keep_vr=native)
    ds.__dict__.update(_pixel_array=None, _pixel_id={})  # pydicom's decoded-array cache


def _conformed(ds: Dataset, array: NDArray[np.generic]) -> NDArray[np.generic]:
    """``array`` in the dtype the header describes (stored values must fit it), shape checked."""
    expected = _shape(ds, array)
    if array.shape != expected or expected[0] != frame_count(ds):
        raise _unencodable("the frames do not match the image's geometry")
    bits = int(ds.BitsAllocated)
    dtype = np.dtype(f"{'i' if int(ds.get('PixelRepresentation', 0)) else 'u'}{max(1, bits // 8)}")
    if array.size and not _fits(array, dtype):
        raise _unencodable("the frames hold values the image's Bits Allocated cannot store")
    return np.ascontiguousarray(array, dtype=dtype)


def _fits(array: NDArray[np.generic], dtype: np.dtype[np.generic]) -> bool:
    info = np.iinfo(dtype)  # type: ignore[type-var]
    return bool(array.min() >= info.min and array.max() <= info.max)


def _note_lossy(ds: Dataset, source: UID) -> None:
    """A lossy-capable input that does not say it was lossy says so now (PS3.3 C.7.6.1.1.5)."""
    method = lossy_method(source)
    if method is not None and "LossyImageCompression" not in ds:
        ds.LossyImageCompression = "01"
        if "LossyImageCompressionMethod" not in ds:
            ds.LossyImageCompressionMethod = method


def _set_colour(ds: Dataset, photometric: str) -> None:
    """Colour frames as decoded: ``photometric``, colour-by-pixel (the decoders convert YBR_*)."""
    if int(ds.get("SamplesPerPixel", 1) or 1) > 1:
        if ds.get("PhotometricInterpretation") != photometric:
            ds.PhotometricInterpretation = photometric
        ds.PlanarConfiguration = 0


def _compressed(ds: Dataset, frames: NDArray[np.generic], target: Target) -> bool:
    """Encode ``frames`` into ``ds`` in the target syntax; False if the encoder refuses (bit depth, size)."""
    from pydicom.pixels.utils import compress

    rct = ds.get("PhotometricInterpretation") == "YBR_RCT" and target.syntax == JPEG2000Lossless
    _set_colour(ds, "YBR_RCT" if rct else "RGB")
    options: dict[str, Any] = {"use_mct": rct} if target.syntax == JPEG2000Lossless else {}
    single = frames[0] if frames.shape[0] == 1 else frames
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compress(ds, target.syntax, single, encoding_plugin=target.plugin, generate_instance_uid=False,
                     **options)
    except Exception:  # noqa: BLE001 - an encoder's refusal means native instead
        return False
    return True


def _write_native(ds: Dataset, frames: NDArray[np.generic], syntax: UID, *, keep_vr: bool) -> None:
    """Native Pixel Data (PS3.5 8.1.1) in ``syntax``'s byte order, even length.

    ``keep_vr``: a native input's VR (OB or OW) is kept, so an unchanged
    header encodes as before; otherwise OB for 8 bits or fewer, OW above.
    """
    bits = int(ds.BitsAllocated)
    if bits == 1:
        from pydicom.pixels.utils import pack_bits

        data = pack_bits(frames)
    else:
        order: Literal["<", ">"] = "<" if syntax.is_little_endian else ">"
        data = frames.astype(frames.dtype.newbyteorder(order), copy=False).tobytes()
    data += b"\x00" * (len(data) % 2)
    vr = ds[_PIXEL_DATA].VR if keep_vr else None
    vr = vr if vr in ("OB", "OW") else ("OB" if bits <= 8 else "OW")
    ds[_PIXEL_DATA] = DataElement(_PIXEL_DATA, vr, data)
    ds.file_meta.TransferSyntaxUID = syntax


def mark_cleaned(ds: Dataset) -> None:
    """Burned In Annotation NO, and CID 7050 113101 Clean Pixel Data Option added (PS3.15 E.3.1).

    Only for an instance whose pixels were cleaned and verified: any other
    keeps its truthful Burned In Annotation. The code is added to the
    De-identification Method Code Sequence (0012,0064), made if absent, and
    its meaning to De-identification Method (0012,0063).
    """
    ds.BurnedInAnnotation = "NO"
    code = method_codes()[_CLEAN_PIXEL_DATA]
    present = "DeidentificationMethodCodeSequence" in ds
    items = ds.DeidentificationMethodCodeSequence if present else Sequence()
    if not any(item.get("CodeValue") == code.value for item in items):
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = code.value, code.scheme, code.meaning
        items.append(item)
    ds.DeidentificationMethodCodeSequence = items
    value = ds.get("DeidentificationMethod") or []
    method = [value] if isinstance(value, str) else [str(text) for text in value]
    if _CLEAN_METHOD_TEXT not in method:
        ds.DeidentificationMethod = [*method, _CLEAN_METHOD_TEXT]


def _undecodable(message: str) -> ProcessingError:
    return ProcessingError(
        message,
        reference="pixel-undecodable",
        hint="install the pixel codecs (pylibjpeg, pylibjpeg-openjpeg, pylibjpeg-rle, python-gdcm)",
    )


def _unencodable(message: str) -> ProcessingError:
    return ProcessingError(message, reference="pixel-unencodable", hint="this is a bug in the pixel stage")
