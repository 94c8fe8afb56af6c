"""Which transfer syntax redacted pixels are written in, and what stays true about lossy compression.

PS3.15 E.3.1 asks for clean pixels, never for worse ones: a redaction is
written back losslessly. An input in a lossless compressed transfer syntax
goes back into the same one when pydicom has an encoder for it (RLE Lossless
with pylibjpeg-rle, JPEG 2000 Lossless with pylibjpeg-openjpeg, JPEG-LS
Lossless with pyjpegls); otherwise, and for every lossy input, the frames are
written native in Explicit VR Little Endian (PS3.5 A.2): a lossy codestream is
never re-encoded lossy. A native input keeps its transfer syntax (Implicit,
Explicit Little or Big Endian, Deflated). Lossy Image Compression (0028,2110)
keeps saying "01" once an image was lossy, with its ratio and method (PS3.3
C.7.6.1.1.5); a lossy input that did not say so gets "01" and the method of
its transfer syntax.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom import uid
from pydicom.dataset import Dataset
from pydicom.uid import UID

__all__ = ["Target", "lossy_method", "source_syntax", "target_for"]

#: Lossless compressed transfer syntaxes written back in themselves, and the encoder options they need.
_REENCODED = {
    uid.RLELossless: "pylibjpeg",
    uid.JPEG2000Lossless: "pylibjpeg",
    uid.JPEGLSLossless: "pyjpegls",
}
#: Transfer syntaxes whose codestream may have lost information, and the PS3.3 C.7.6.1.1.5.1 method term.
_LOSSY_METHOD = {
    uid.JPEGBaseline8Bit: "ISO_10918_1",
    uid.JPEGExtended12Bit: "ISO_10918_1",
    uid.JPEGLSNearLossless: "ISO_14495_1",
    uid.JPEG2000: "ISO_15444_1",
    uid.JPEG2000MC: "ISO_15444_1",
    uid.HTJ2K: "ISO_15444_15",
}


@dataclass(frozen=True)
class Target:
    """Where redacted frames go: a transfer syntax, and the pydicom encoding plugin when compressed."""

    syntax: UID
    plugin: str = ""

    @property
    def compressed(self) -> bool:
        return bool(self.syntax.is_compressed)


def source_syntax(ds: Dataset) -> UID:
    """The transfer syntax ``ds``'s Pixel Data is encoded in (Explicit VR Little Endian when unknown)."""
    meta = ds.__dict__.get("file_meta")
    value = None if meta is None else meta.get("TransferSyntaxUID")
    return UID(str(value)) if value else uid.ExplicitVRLittleEndian


def target_for(ds: Dataset) -> Target:
    """The transfer syntax redacted frames of ``ds`` are written in (see the module docstring)."""
    syntax = source_syntax(ds)
    if not syntax.is_compressed:
        return Target(syntax)
    plugin = _REENCODED.get(syntax)
    if plugin is not None and _encoder_ready(syntax, plugin):
        return Target(syntax, plugin)
    return Target(uid.ExplicitVRLittleEndian)


def lossy_method(syntax: UID) -> str | None:
    """The Lossy Image Compression Method term of a lossy-capable transfer syntax, else None."""
    return _LOSSY_METHOD.get(syntax)


def _encoder_ready(syntax: UID, plugin: str) -> bool:
    from pydicom.pixels.encoders.base import get_encoder

    return plugin in get_encoder(syntax).available_plugins
