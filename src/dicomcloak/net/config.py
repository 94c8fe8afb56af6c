"""The gateway's configuration as typed values (docs/gateway.md, "Configuration").

These are the shapes every part of the gateway agrees on; :mod:`dicomcloak.net.loader`
builds them from ``gateway.toml`` and validates them (errors name the key and the fix).
Relative paths in the file are resolved against the file's directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path

__all__ = [
    "Caller",
    "ClientTls",
    "DeidRoute",
    "Direction",
    "Forwarding",
    "GatewayConfig",
    "IdentityMode",
    "Limits",
    "Listener",
    "Peer",
    "QueryRoute",
    "ReidRoute",
    "Route",
    "ServerTls",
    "UserIdentity",
]


class Direction(StrEnum):
    """Which way a route's instances go."""

    DEIDENTIFY = "deidentify"  # out of the hospital: sanitize, de-identify, pixels, seal
    REIDENTIFY = "reidentify"  # back in: restore the originals with the owner's key or the vault


@dataclass(frozen=True)
class ClientTls:
    """DICOM TLS when the gateway calls out (PS3.15 Annex B; TLS 1.2+ per BCP 195)."""

    ca_file: Path  # the CA bundle the peer's certificate must chain to
    certificate: Path | None = None  # the gateway's client certificate, if the peer asks for one
    private_key: Path | None = None


@dataclass(frozen=True)
class ServerTls:
    """DICOM TLS on a listener (PS3.15 Annex B; TLS 1.2+ per BCP 195)."""

    certificate: Path
    private_key: Path
    ca_file: Path | None = None  # CAs whose client certificates are accepted
    require_client_certificate: bool = False  # refuse callers without a certificate from ca_file


@dataclass(frozen=True)
class Peer:
    """A remote application entity the gateway calls."""

    ae_title: str
    host: str
    port: int
    tls: ClientTls | None = None


@dataclass(frozen=True)
class Caller:
    """One allow-list entry: an AE title (``*`` for any) bound to the network it may call from."""

    ae_title: str
    network: IPv4Network | IPv6Network


class IdentityMode(StrEnum):
    """User Identity negotiation (PS3.7 D.3.3.7) a listener requires."""

    NONE = "none"  # not asked for (the allow list still applies)
    USERNAME_PASSCODE = "username-passcode"  # type 2, checked against the users file (scrypt hashes)
    JWT = "jwt"  # type 5, an HS256 JSON Web Token signed with the secret in ``jwt_secret_env``


@dataclass(frozen=True)
class UserIdentity:
    """How a listener authenticates callers beyond their AE title and address."""

    mode: IdentityMode = IdentityMode.NONE
    users_file: Path | None = None  # ``username:scrypt$...`` lines (``dicomcloak gateway passwd``)
    jwt_secret_env: str | None = None  # name of the environment variable holding the HS256 secret
    jwt_audience: str | None = None


@dataclass(frozen=True)
class Listener:
    """A DIMSE service provider: C-ECHO, C-STORE into ``route``, and Q/R through ``query`` if set."""

    name: str
    ae_title: str
    port: int
    route: str | None = None  # the route a received instance takes (None: no C-STORE)
    host: str = "127.0.0.1"
    allow: tuple[Caller, ...] = ()  # empty: nobody
    tls: ServerTls | None = None
    identity: UserIdentity = field(default_factory=UserIdentity)
    query: str | None = None  # a QueryRoute name: C-FIND, C-MOVE and C-GET through the gateway


@dataclass(frozen=True)
class DeidRoute:
    """Out of the hospital: what ``dicomcloak deid`` does to a file, then C-STORE to ``destination``."""

    name: str
    destination: Peer
    options: tuple[str, ...] = ()  # PS3.15 profile options, as ``deid --option``
    policy: Path | None = None  # a policy file, as ``deid --policy``
    domain: str = "default"  # the pseudonym domain, as ``deid --domain``
    pixels: str | None = None  # a PixelMode value (``deid --pixels``); None: the policy's [pixels], else auto
    recipients: tuple[Path, ...] = ()  # seal the originals to these certificates (embedded)
    sealer_key: Path | None = None  # signs embedded seals
    vault: str | None = None  # seal the originals in this vault (SQLAlchemy URL)
    direction: Direction = Direction.DEIDENTIFY


@dataclass(frozen=True)
class ReidRoute:
    """Back into the hospital: what ``dicomcloak reid`` does to a file, then C-STORE to ``destination``."""

    name: str
    destination: Peer
    vault: str | None = None  # restore from this vault (the project key opens it)
    owner_key: Path | None = None  # restore embedded seals with this private key
    owner_cert: Path | None = None  # its certificate, as ``reid --cert`` (default: owner.cert.pem beside it)
    owner_key_passphrase_env: str | None = None
    options: tuple[str, ...] = ()  # the deidentify route's options, so the private elements it kept are kept
    policy: Path | None = None  # likewise its policy file (``reid --option/--policy``)
    trusted_sealers: tuple[Path, ...] = ()
    accept_unverified: bool = False
    direction: Direction = Direction.REIDENTIFY


Route = DeidRoute | ReidRoute


@dataclass(frozen=True)
class QueryRoute:
    """Query/retrieve through the gateway against an off-site archive that holds de-identified data.

    C-FIND identifiers are translated to pseudonyms with ``deidentify``'s key,
    domain and policy, and answers back with its vault; retrieved instances are
    re-identified by ``reidentify`` and stored to the C-MOVE destination, which
    must be one of ``destinations`` (AE title -> peer).
    """

    name: str
    remote: Peer
    deidentify: str  # a DeidRoute name
    reidentify: str  # a ReidRoute name
    destinations: tuple[Peer, ...] = ()


@dataclass(frozen=True)
class Limits:
    """What one caller, or all of them, may cost the gateway."""

    max_associations: int = 16
    max_pdu: int = 65_536  # bytes; 0 would mean unlimited, refused by the loader
    acse_timeout: float = 30.0
    dimse_timeout: float = 60.0
    network_timeout: float = 60.0  # an idle association is closed after this many seconds
    spool_max_files: int = 10_000  # over this, C-STORE answers 0xA700 (out of resources)
    spool_max_bytes: int = 10 * 2**30
    lockout_failures: int = 5  # failed authentications from one address before it is locked out
    lockout_seconds: float = 300.0
    workers: int = 0  # instances processed at once per route (each with its own context); 0: CPU count


@dataclass(frozen=True)
class Forwarding:
    """How the spool is drained to each route's destination."""

    retry_initial: float = 1.0  # seconds before the first retry; doubled each time
    retry_max: float = 300.0
    per_association: int = 100  # instances sent per association before it is released


@dataclass(frozen=True)
class GatewayConfig:
    """One ``gateway.toml``: what ``dicomcloak serve`` runs."""

    spool: Path
    quarantine: Path
    audit: str  # SQLAlchemy URL of the hash-chained audit log
    listeners: tuple[Listener, ...]
    routes: dict[str, Route]
    queries: dict[str, QueryRoute] = field(default_factory=dict)
    key_file: Path | None = None  # the project key; else $DICOMCLOAK_KEY_FILE
    limits: Limits = field(default_factory=Limits)
    forward: Forwarding = field(default_factory=Forwarding)
    status_file: Path | None = None  # default: <spool>/status.json
