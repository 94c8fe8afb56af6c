"""The presentation contexts a listener accepts (PS3.4 Annex A and B; PS3.5 Section 10 and Annex A).

A listener accepts only transfer syntaxes the gateway can process: the
uncompressed ones (which pydicom reads itself) and the compressed ones a
pixel decoder here can decode (pydicom's plugins: pylibjpeg, gdcm,
pyjpegls, Pillow). Accepting a syntax that cannot be decoded would only move
the failure into a quarantine after the sender was told "success"; refusing
the context lets the sender convert the instance or choose another syntax.
"""

from __future__ import annotations

from functools import cache

from pydicom import uid
from pydicom.uid import UID
from pynetdicom import (
    AllStoragePresentationContexts,
    QueryRetrievePresentationContexts,
    VerificationPresentationContexts,
    build_context,
)
from pynetdicom.presentation import PresentationContext

from dicomcloak.net.config import Listener

__all__ = ["listener_contexts", "readable_syntaxes"]

_NATIVE = (
    uid.ExplicitVRLittleEndian,
    uid.ImplicitVRLittleEndian,
    uid.DeflatedExplicitVRLittleEndian,
    uid.ExplicitVRBigEndian,
)
_COMPRESSED = (
    uid.JPEGBaseline8Bit,
    uid.JPEGExtended12Bit,
    uid.JPEGLossless,
    uid.JPEGLosslessSV1,
    uid.JPEGLSLossless,
    uid.JPEGLSNearLossless,
    uid.JPEG2000Lossless,
    uid.JPEG2000,
    uid.HTJ2KLossless,
    uid.HTJ2KLosslessRPCL,
    uid.HTJ2K,
    uid.RLELossless,
)


@cache
def readable_syntaxes() -> tuple[UID, ...]:
    """Uncompressed syntaxes, then every compressed one a decoder installed here can decode."""
    from pydicom.pixels.decoders.base import get_decoder

    # pydicom 3 registers a decoder for each of them; is_available says whether its plugin is installed here.
    return _NATIVE + tuple(syntax for syntax in _COMPRESSED if get_decoder(syntax).is_available)


def listener_contexts(listener: Listener) -> list[PresentationContext]:
    """Verification always; Storage when the listener has a route or serves Q/R; Q/R when it has a query.

    With a query route the Storage contexts also accept the SCP role
    (PS3.7 D.3.3.4): C-GET sends its instances back over the same association.
    """
    contexts = [build_context(_abstract(cx)) for cx in VerificationPresentationContexts]
    if listener.route is not None or listener.query is not None:
        contexts += _storage(roles=listener.query is not None)
    if listener.query is not None:
        contexts += [build_context(_abstract(cx)) for cx in QueryRetrievePresentationContexts]
    return contexts


def _storage(*, roles: bool) -> list[PresentationContext]:
    syntaxes: list[str | UID] = list(readable_syntaxes())
    contexts = []
    for cx in AllStoragePresentationContexts:
        context = build_context(_abstract(cx), syntaxes)
        if roles:
            context.scu_role = context.scp_role = True
        contexts.append(context)
    return contexts


def _abstract(context: PresentationContext) -> UID:
    assert context.abstract_syntax is not None  # pynetdicom's predefined contexts all have one
    return context.abstract_syntax
