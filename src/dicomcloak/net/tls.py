"""DICOM TLS, listening and calling out (PS3.15 B.9, the BCP 195 TLS Secure Transport Connection Profile).

TLS 1.2 is the floor (RFC 9325, BCP 195); TLS 1.2 suites are limited to
forward-secret AEAD ones (ECDHE or DHE with AES-GCM or ChaCha20-Poly1305):
no RC4, 3DES, CBC, NULL, anonymous or export suites. TLS 1.3 suites are all
AEAD and forward-secret already. Compression and renegotiation are off.
"""

from __future__ import annotations

import contextlib
import ssl

from dicomcloak.errors import ConfigError
from dicomcloak.net.config import ClientTls, ServerTls

__all__ = ["BCP195_CIPHERS", "ClosingSSLSocket", "client_context", "client_tls_args", "server_context"]

#: OpenSSL cipher string for TLS 1.2 (RFC 9325 4.2): forward secrecy and AEAD only.
BCP195_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL:!MD5:!SHA1:!RC4:!3DES"


class ClosingSSLSocket(ssl.SSLSocket):
    """A TLS connection whose ``shutdown`` never raises, so pynetdicom's close always closes.

    pynetdicom closes a connection with ``shutdown(); close()`` in one
    ``try``: when the peer has already gone, ``shutdown`` raises and the
    descriptor stays open until garbage collection. A caller that hangs up
    abruptly, again and again, must not cost the gateway file descriptors.
    Set as ``SSLContext.sslsocket_class`` (client contexts too).
    """

    def shutdown(self, how: int) -> None:
        """Shut down, ignoring a peer that is already gone."""
        with contextlib.suppress(OSError):
            super().shutdown(how)


def server_context(tls: ServerTls) -> ssl.SSLContext:
    """The server-side context of one listener; client certificates verified against ``tls.ca_file``.

    With ``require_client_certificate`` a caller without a certificate that
    chains to ``ca_file`` fails the handshake (PS3.15 B.9: peer authentication
    by certificate); without it a certificate is asked for when ``ca_file``
    is set and checked if sent.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(BCP195_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_RENEGOTIATION
    try:
        context.load_cert_chain(tls.certificate, tls.private_key)
        if tls.ca_file is not None:
            context.load_verify_locations(cafile=tls.ca_file)
    except (OSError, ssl.SSLError) as error:
        raise ConfigError(
            f"the listener's TLS certificate, key or CA file cannot be loaded ({type(error).__name__})",
            reference="tls-files-invalid",
            hint="check tls.certificate, tls.private_key and tls.ca_file (PEM) and that they match",
        ) from None
    if tls.require_client_certificate:
        if tls.ca_file is None:
            raise ConfigError(
                "require_client_certificate needs a ca_file to verify client certificates against",
                reference="tls-ca-missing",
                hint="set tls.ca_file to the CA bundle that issued the callers' certificates",
            )
        context.verify_mode = ssl.CERT_REQUIRED
    elif tls.ca_file is not None:
        context.verify_mode = ssl.CERT_OPTIONAL
    context.sslsocket_class = ClosingSSLSocket
    return context


def client_context(tls: ClientTls) -> ssl.SSLContext:
    """The context for calling a peer (forwarding, the Q/R remote, C-MOVE destinations): TLS 1.2 or later.

    The peer is checked against ``ca_file`` and its host name; the gateway's
    own certificate is offered when configured (the peer may ask for one).
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(tls.ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(BCP195_CIPHERS)
    if tls.certificate is not None:
        key = None if tls.private_key is None else str(tls.private_key)
        context.load_cert_chain(str(tls.certificate), keyfile=key)
    return context


def client_tls_args(tls: ClientTls | None, host: str) -> tuple[ssl.SSLContext, str] | None:
    """pynetdicom's ``tls_args`` for calling ``host`` (None: plain TCP)."""
    return None if tls is None else (client_context(tls), host)
