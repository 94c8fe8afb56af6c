"""Who a caller says it is: User Identity items (PS3.7 D.3.3.7) checked against a users file or a JWT secret.

Two kinds of proof are accepted, one per listener (``identity.mode``):

* username and passcode (User-Identity-Type 2), checked against a users file
  of ``username:scrypt$N$r$p$salt_b64$hash_b64`` lines (RFC 7914 scrypt,
  compared in constant time; ``dicomcloak gateway passwd`` writes them);
* a JSON Web Token (User-Identity-Type 5, RFC 7519) signed with HS256 (RFC
  7518 3.2) under the secret in an environment variable, its ``exp``
  required and ``nbf`` and ``aud`` checked.

Nothing here logs or raises with what the caller sent: a failure is a reason
code (``identity-*``), because a mistyped passcode in the username field is
a secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dicomcloak.errors import ConfigError
from dicomcloak.net.config import IdentityMode, UserIdentity

__all__ = [
    "JWT",
    "USERNAME_PASSCODE",
    "Authenticator",
    "IdentityResult",
    "ScryptParams",
    "UsersFile",
    "authenticator_for",
    "hash_passcode",
    "verify_jwt",
]

USERNAME_PASSCODE = 2  # PS3.7 D.3.3.7.1, User-Identity-Type 2: username and passcode
JWT = 5  # PS3.7 D.3.3.7.1, User-Identity-Type 5: JSON Web Token (added by CP-1650)

_MAX_FIELD = 8192  # bytes; longer fields are refused before any work is done on them


@dataclass(frozen=True)
class ScryptParams:
    """RFC 7914 cost parameters; the defaults cost about 50 ms and 16 MiB per check."""

    n: int = 2**14
    r: int = 8
    p: int = 1


@dataclass(frozen=True)
class IdentityResult:
    """The verdict on one User Identity item: who (on success) or a reason code (on failure)."""

    ok: bool
    reason: str = ""
    user: str = ""


def hash_passcode(passcode: str, params: ScryptParams = ScryptParams()) -> str:
    """The users-file form of ``passcode``: ``scrypt$N$r$p$salt_b64$hash_b64`` with a fresh 16-byte salt."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(passcode.encode("utf-8"), salt, params.n, params.r, params.p)
    encoded = [base64.b64encode(part).decode("ascii") for part in (salt, digest)]
    return f"scrypt${params.n}${params.r}${params.p}${encoded[0]}${encoded[1]}"


def _scrypt(secret: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, maxmem=256 * 2**20, dklen=32)


def _check_hash(stored: str, passcode: bytes) -> bool:
    """Whether ``passcode`` matches a ``scrypt$...`` entry; a malformed entry matches nothing."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest, validate=True)
        actual = _scrypt(passcode, base64.b64decode(salt, validate=True), int(n), int(r), int(p))
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(actual, expected)


class UsersFile:
    """The users file of a listener, re-read when it changes (so ``gateway passwd`` needs no restart)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._stamp: tuple[int, int] | None = None
        self._users: dict[str, str] = {}
        self._load()

    def _load(self) -> None:
        try:
            stat = self._path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp == self._stamp:
                return
            lines = self._path.read_text(encoding="utf-8").splitlines()
        except OSError as error:
            raise ConfigError(
                f"the users file cannot be read ({type(error).__name__})",
                reference="users-file-unreadable",
                hint="create it with `dicomcloak gateway passwd USERS_FILE USERNAME`",
            ) from None
        self._users = dict(_parse_line(line) for line in lines if line.strip() and not line.startswith("#"))
        self._stamp = stamp

    def verify(self, username: bytes, passcode: bytes) -> IdentityResult:
        """Check one username and passcode; an unknown user costs the same scrypt as a known one."""
        try:
            self._load()
        except ConfigError:
            return IdentityResult(False, "identity-users-file-unreadable")
        name = username.decode("utf-8", "replace").strip()
        stored = self._users.get(name)
        # An unknown user is checked against another user's entry: the same cost, and a refusal either way.
        decoy = next(iter(self._users.values()), "")
        matched = _check_hash(stored or decoy, passcode)
        if stored is None or not matched:
            return IdentityResult(False, "identity-passcode-wrong")
        return IdentityResult(True, user=name)


def _parse_line(line: str) -> tuple[str, str]:
    name, sep, stored = line.strip().partition(":")
    if not sep or not name:
        raise ConfigError(
            "a line of the users file is not `username:scrypt$...`",
            reference="users-file-invalid",
            hint="rewrite the entry with `dicomcloak gateway passwd USERS_FILE USERNAME`",
        )
    return name, stored


def _b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def verify_jwt(token: bytes, secret: bytes, audience: str | None, now: float | None = None) -> IdentityResult:
    """Check an HS256 JSON Web Token (RFC 7519): signature, ``exp`` (required), ``nbf``, ``aud``.

    Only HS256 is accepted: a token naming ``none`` or another algorithm is
    refused, whatever its signature (RFC 8725 3.1).
    """
    try:
        header_b64, payload_b64, signature_b64 = token.decode("ascii").split(".")
        header = json.loads(_b64url(header_b64))
        signature = _b64url(signature_b64)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        return IdentityResult(False, "identity-jwt-malformed")
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        return IdentityResult(False, "identity-jwt-algorithm")
    signed = f"{header_b64}.{payload_b64}".encode("ascii")
    if not hmac.compare_digest(hmac.digest(secret, signed, "sha256"), signature):
        return IdentityResult(False, "identity-jwt-signature")
    try:
        claims = json.loads(_b64url(payload_b64))
    except (ValueError, UnicodeDecodeError, binascii.Error):
        return IdentityResult(False, "identity-jwt-malformed")
    return _check_claims(claims, audience, time.time() if now is None else now)


def _check_claims(claims: object, audience: str | None, now: float) -> IdentityResult:
    """RFC 7519 4.1: ``exp`` must be in the future, ``nbf`` in the past, ``aud`` name us when we ask."""
    if not isinstance(claims, dict):
        return IdentityResult(False, "identity-jwt-malformed")
    expires, not_before = claims.get("exp"), claims.get("nbf", 0)
    if not isinstance(expires, int | float) or isinstance(expires, bool) or expires <= now:
        return IdentityResult(False, "identity-jwt-expired")
    if not isinstance(not_before, int | float) or not_before > now:
        return IdentityResult(False, "identity-jwt-not-yet-valid")
    if audience is not None:
        aud = claims.get("aud")
        names = aud if isinstance(aud, list) else [aud]
        if audience not in names:
            return IdentityResult(False, "identity-jwt-audience")
    subject = claims.get("sub")
    return IdentityResult(True, user=subject if isinstance(subject, str) else "")


Authenticator = Callable[[int, bytes, bytes], IdentityResult]


def authenticator_for(identity: UserIdentity) -> Authenticator | None:
    """The check a listener's ``identity`` asks for (None for ``mode = none``), its secrets loaded now.

    Loading at start-up makes a missing users file or secret a configuration
    error before the first association, not a refusal of every caller.
    """
    if identity.mode is IdentityMode.USERNAME_PASSCODE:
        return _passcode_authenticator(identity)
    if identity.mode is IdentityMode.JWT:
        return _jwt_authenticator(identity)
    return None


def _passcode_authenticator(identity: UserIdentity) -> Authenticator:
    if identity.users_file is None:
        raise ConfigError(
            "identity mode username-passcode needs a users_file",
            reference="users-file-missing",
            hint="set identity.users_file and fill it with `dicomcloak gateway passwd`",
        )
    users = UsersFile(identity.users_file)

    def check(kind: int, primary: bytes, secondary: bytes) -> IdentityResult:
        if kind != USERNAME_PASSCODE:
            return IdentityResult(False, "identity-type-wrong")
        if len(primary) > _MAX_FIELD or len(secondary) > _MAX_FIELD:
            return IdentityResult(False, "identity-too-long")
        return users.verify(primary, secondary)

    return check


def _jwt_authenticator(identity: UserIdentity) -> Authenticator:
    secret = os.environ.get(identity.jwt_secret_env or "", "")
    if not secret:
        raise ConfigError(
            "identity mode jwt needs its secret in the environment",
            reference="jwt-secret-missing",
            hint="set identity.jwt_secret_env to the name of a variable holding the HS256 secret",
        )
    key = secret.encode("utf-8")

    def check(kind: int, primary: bytes, secondary: bytes) -> IdentityResult:
        del secondary  # PS3.7 D.3.3.7.1: a JWT has no secondary field
        if kind != JWT:
            return IdentityResult(False, "identity-type-wrong")
        if len(primary) > _MAX_FIELD:
            return IdentityResult(False, "identity-too-long")
        return verify_jwt(primary, key, identity.jwt_audience)

    return check
