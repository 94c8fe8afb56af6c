"""A route's per-instance settings, assembled from its configuration (docs/gateway.md, "Routes").

What ``dicomcloak deid`` and ``dicomcloak reid`` assemble from their command
lines, the gateway assembles here from a :class:`~dicomcloak.net.config.DeidRoute`
or :class:`~dicomcloak.net.config.ReidRoute`, through the same lower-layer
functions (:mod:`dicomcloak.batch.keyfiles`, :func:`dicomcloak.policy.build_policy`,
:func:`dicomcloak.pixels.settings.resolve_pixel_settings`): a key or a
certificate is read and checked the same way on both paths, once, at start,
so a bad one stops the gateway before its first association (architecture.md
decision 3: every failure fails closed).

The vault is opened with the project key's key ring: the key file of the
gateway (``key_file`` in ``gateway.toml``, else ``DICOMCLOAK_KEY_FILE``), with
wrapping keys from ``DICOMCLOAK_WRAPPING_KEYS`` when set, and it must hold the
project key the gateway pseudonymizes with.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from dicomcloak.errors import ConfigError, KeyError_
from dicomcloak.net.config import DeidRoute, ReidRoute, Route
from dicomcloak.net.stores import make_sqlite_parent

if TYPE_CHECKING:
    from collections.abc import Callable

    from dicomcloak.api import Reidentifier
    from dicomcloak.batch.worker import SealSettings
    from dicomcloak.keys import Keyring, ProjectKey
    from dicomcloak.net.config import GatewayConfig
    from dicomcloak.net.qr import Audit, QueryService
    from dicomcloak.pixels.settings import PixelSettings
    from dicomcloak.policy.model import Policy

__all__ = [
    "build_query_service",
    "build_reidentifier",
    "close_reidentifier",
    "project_keyring",
    "route_pixel_settings",
    "route_policy",
    "route_seal_settings",
]


def route_policy(route: Route) -> Policy:
    """The route's policy: PS3.15 Table E.1-1, its options and site policy file (``deid --option --policy``).

    A re-identifying route sanitizes what comes back under the options and
    policy of the route that de-identified it (``reid --option --policy``), so
    the private elements that route kept are kept on the way back too.
    """
    from dicomcloak.policy import build_policy

    return build_policy(route.options, route.policy)


def route_pixel_settings(route: DeidRoute) -> PixelSettings:
    """The pixel stage of a de-identifying route: its policy's ``[pixels]``, ``pixels`` winning over its mode.

    The OCR back-end is checked now when the stage runs (docs/pixels.md).

    Raises
    ------
    ConfigError
        ``route-pixels-invalid`` for a mode that is not a
        :class:`~dicomcloak.pixels.model.PixelMode`.
    """
    from dicomcloak.pixels.model import PixelMode
    from dicomcloak.pixels.settings import resolve_pixel_settings

    if route.pixels is None:  # as deid without --pixels: the policy's [pixels] mode, else auto
        return resolve_pixel_settings(route.policy)
    try:
        mode = PixelMode(route.pixels)
    except ValueError:
        raise ConfigError(
            f"route {route.name}: pixels is not a pixel mode",
            reference="route-pixels-invalid",
            hint="one of: " + ", ".join(m.value for m in PixelMode),
        ) from None
    return resolve_pixel_settings(route.policy, mode)


def route_seal_settings(
    route: DeidRoute, key: ProjectKey, key_file: Path | None = None
) -> SealSettings | None:
    """How a de-identifying route seals the originals: embedded to ``recipients`` and/or in ``vault``.

    Embedded seals are signed with ``sealer_key`` (``reid`` refuses unsigned
    ones by default); the vault is opened with :func:`project_keyring`.
    None when the route seals nothing.

    Raises
    ------
    ConfigError
        ``sealer-key-required``: recipients without a sealer key.
    KeyError_
        unreadable or malformed certificates or keys; ``key-required``,
        ``key-mismatch`` (see :func:`project_keyring`).
    """
    from dicomcloak.batch.keyfiles import make_seal_settings, read_sealer_key

    def signer() -> bytes:
        if route.sealer_key is None:
            raise ConfigError(
                f"route {route.name}: recipients need a sealer key (embedded seals are signed)",
                reference="sealer-key-required",
                hint="make one with 'dicomcloak keys sealer --out-dir DIR' and set sealer_key "
                "= DIR/sealer.key.pem; the owner trusts DIR/sealer.cert.pem",
            )
        return read_sealer_key(route.sealer_key)

    make_sqlite_parent(route.vault)
    return make_seal_settings(route.recipients, signer, route.vault, lambda: project_keyring(key, key_file))


def project_keyring(key: ProjectKey, key_file: Path | None = None) -> Keyring:
    """The key ring of the project key: ``key_file``, else ``DICOMCLOAK_KEY_FILE`` (wrapping keys from the
    environment when set); it must hold ``key``.

    Raises
    ------
    KeyError_
        ``key-required`` when no key file is named; ``key-mismatch`` when the
        ring's project key is not ``key`` (a vault would then hold records the
        gateway's pseudonyms do not match).
    """
    import hmac

    from dicomcloak.batch.keyfiles import resolve_keyring
    from dicomcloak.keys import KEY_ENV

    found = resolve_keyring(key_file, os.environ)
    if found is None:
        raise KeyError_(
            "a vault needs the project key file",
            reference="key-required",
            hint=f"set key_file in the gateway configuration, or {KEY_ENV}",
        )
    ring = found[0]
    if not hmac.compare_digest(ring.project.secret, key.secret):
        raise KeyError_(
            "the key file's project key is not the gateway's",
            reference="key-mismatch",
            hint="use one key file for the gateway and its vaults",
        )
    return ring


def build_reidentifier(route: ReidRoute, key: ProjectKey, key_file: Path | None = None) -> Reidentifier:
    """The route's :class:`~dicomcloak.api.Reidentifier`, as ``dicomcloak reid`` builds it.

    Vault mode (``vault``): the vault opened with :func:`project_keyring`;
    close it with :func:`close_reidentifier`. Embedded mode (``owner_key``):
    the owner's key with ``owner.cert.pem`` beside it, its passphrase from
    the environment variable ``owner_key_passphrase_env`` when the key is
    protected, the ``trusted_sealers``, and ``accept_unverified``.
    ``key_file``: the gateway's key file (else ``DICOMCLOAK_KEY_FILE``).

    Raises
    ------
    ConfigError
        ``reid-mode``: not exactly one of ``vault`` and ``owner_key``, or
        trusted sealers with a vault.
    KeyError_
        unreadable or malformed keys, ``private-key-passphrase``,
        ``key-required``, ``key-mismatch``.
    """
    from dicomcloak.api import Reidentifier

    both_or_neither = (route.vault is None) == (route.owner_key is None)
    if both_or_neither or (route.vault is not None and route.trusted_sealers):
        raise ConfigError(
            f"route {route.name}: give exactly one of vault or owner_key",
            reference="reid-mode",
            hint="embedded: owner_key (and trusted_sealers); vault: vault, opened with the project key",
        )
    if route.owner_key is not None:
        from dicomcloak.batch.keyfiles import load_owner, read_trusted_sealers

        owner = load_owner(route.owner_key, route.owner_cert, _passphrase(route))
        trusted = read_trusted_sealers(route.trusted_sealers)
        return Reidentifier(owner, accept_unverified=route.accept_unverified, trusted=trusted)
    from dicomcloak.vault import Vault

    assert route.vault is not None  # checked above
    return Reidentifier(vault=Vault.open(route.vault, project_keyring(key, key_file)))


def close_reidentifier(reidentifier: Reidentifier) -> None:
    """Close the vault a :func:`build_reidentifier` opened (embedded mode: nothing to close)."""
    from dicomcloak.vault import Vault

    if isinstance(reidentifier.vault, Vault):
        reidentifier.vault.close()


def _passphrase(route: ReidRoute) -> Callable[[], bytes]:
    """Reads the owner key's passphrase from the route's environment variable, only if the key needs one."""
    name = route.owner_key_passphrase_env

    def read() -> bytes:
        value = os.environ.get(name) if name else None
        if not value:
            raise KeyError_(
                f"route {route.name}: the owner key is protected by a passphrase and none was given",
                reference="private-key-passphrase",
                hint="set owner_key_passphrase_env to the name of an environment variable holding it",
            )
        return value.encode("utf-8")

    return read


def build_query_service(
    config: GatewayConfig, name: str, key: ProjectKey, ae_title: str, audit: Audit
) -> QueryService:
    """The Q/R service of ``config.queries[name]`` (docs/gateway.md, "Query/retrieve through the gateway").

    Its pseudonyms are the deidentify route's (the project key in its domain,
    under its policy), answers go back through that route's vault map, and
    retrieved instances are restored by the reidentify route's re-identifier
    under that route's policy. Retrieved instances wait in
    ``<spool>/<name>/scratch`` (private) until restored.

    Raises
    ------
    ConfigError
        ``query-needs-vault``: the deidentify route seals to no vault, so no
        answer could be translated back.
    """
    from dicomcloak.keys import Pseudonymizer
    from dicomcloak.net.qr import QueryService
    from dicomcloak.vault import Vault

    query = config.queries[name]
    deid, reid = config.routes[query.deidentify], config.routes[query.reidentify]
    assert isinstance(deid, DeidRoute) and isinstance(reid, ReidRoute)  # checked by the loader
    if deid.vault is None:
        raise ConfigError(
            f"query {name}: route {deid.name} seals to no vault",
            reference="query-needs-vault",
            hint=f"add vault = ... to route {deid.name}: its pseudonym map translates answers back",
        )
    scratch = config.spool / name / "scratch"
    scratch.mkdir(parents=True, exist_ok=True, mode=0o700)
    return QueryService(
        query.remote,
        Pseudonymizer(key, deid.domain),
        route_policy(deid),
        Vault.open(deid.vault, project_keyring(key, config.key_file)),
        build_reidentifier(reid, key, config.key_file),
        route_policy(reid),
        query.destinations,
        ae_title,
        audit=audit,
        scratch=scratch,
        timeout=config.limits.dimse_timeout,
    )
