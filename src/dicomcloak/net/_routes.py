"""The ``[[route]]`` and ``[[query]]`` tables of ``gateway.toml``, and the peers they call (docs/gateway.md).

A deidentify route takes what ``dicomcloak deid`` takes (options, policy,
domain, pixels, recipients, vault), a reidentify route what ``dicomcloak
reid`` takes (a vault, or an owner key for embedded seals); a query route
pairs one of each with the remote archive. Part of :mod:`dicomcloak.net.loader`.
"""

from __future__ import annotations

from functools import partial

from dicomcloak.net._reader import (
    Section,
    ae_title,
    array,
    bad,
    boolean,
    choice,
    env_name,
    host,
    known,
    name,
    port,
    text,
)
from dicomcloak.net.config import (
    ClientTls,
    DeidRoute,
    Direction,
    Peer,
    QueryRoute,
    ReidRoute,
    Route,
)
from dicomcloak.pixels.model import PixelMode
from dicomcloak.standard.table import Option

__all__ = ["check_queries", "query", "route"]

_DEID_KEYS = (
    "name",
    "direction",
    "destination",
    "options",
    "policy",
    "domain",
    "pixels",
    "recipients",
    "sealer_key",
    "vault",
)
_REID_KEYS = (
    "name",
    "direction",
    "destination",
    "vault",
    "owner_key",
    "owner_cert",
    "owner_key_passphrase_env",
    "trusted_sealers",
    "accept_unverified",
    "options",
    "policy",
)
_QUERY_KEYS = ("name", "remote", "deidentify", "reidentify", "destinations")

# Peers and TLS (PS3.15 Annex B)


def _peer(sec: Section) -> Peer:
    sec.check_keys(("ae_title", "host", "port", "tls"))
    tls = sec.sub("tls")
    return Peer(
        ae_title=sec.need("ae_title", ae_title),
        host=sec.need("host", host),
        port=sec.need("port", port),
        tls=_client_tls(tls) if tls else None,
    )


def _client_tls(sec: Section) -> ClientTls:
    sec.check_keys(("ca_file", "certificate", "private_key"))
    tls = ClientTls(
        ca_file=sec.need("ca_file", sec.existing_file),
        certificate=sec.get("certificate", sec.existing_file, None),
        private_key=sec.get("private_key", sec.existing_file, None),
    )
    if (tls.certificate is None) != (tls.private_key is None):
        raise bad(sec.where, "needs both certificate and private_key, or neither", "add the missing one")
    return tls


# Routes


def route(sec: Section) -> Route:
    """One ``[[route]]``: its ``direction`` decides which keys it may have."""
    direction = sec.need("direction", partial(choice, kind=Direction))
    if direction is Direction.DEIDENTIFY:
        sec.check_keys(_DEID_KEYS, dict.fromkeys(_REID_KEYS, "only a reidentify route has it"))
        return _deid_route(sec)
    sec.check_keys(_REID_KEYS, dict.fromkeys(_DEID_KEYS, "only a deidentify route has it"))
    return _reid_route(sec)


def _destination(sec: Section, key: str = "destination") -> Peer:
    found = sec.sub(key)
    if found is None:
        raise bad(
            sec.path(key), "is required", f'add {key} = {{ ae_title = "...", host = "...", port = ... }}'
        )
    return _peer(found)


def _deid_route(sec: Section) -> DeidRoute:
    found = DeidRoute(
        name=sec.need("name", name),
        destination=_destination(sec),
        options=sec.get("options", _options, ()),
        policy=sec.get("policy", sec.existing_file, None),
        domain=sec.get("domain", text, "default"),
        pixels=_pixel_mode(sec),
        recipients=sec.get("recipients", sec.files, ()),
        sealer_key=sec.get("sealer_key", sec.existing_file, None),
        vault=sec.get("vault", sec.store, None),
    )
    if found.sealer_key is not None and not found.recipients:
        raise bad(
            sec.path("sealer_key"),
            "signs embedded seals, and there are no recipients",
            "add recipients = [...] or remove sealer_key",
        )
    return found


def _pixel_mode(sec: Section) -> str | None:
    """``pixels``, or None: the policy's ``[pixels]`` mode, else ``auto`` (``deid`` without ``--pixels``)."""
    mode = sec.get("pixels", partial(choice, kind=PixelMode), None)
    return None if mode is None else mode.value


def _options(value: object, where: str) -> tuple[str, ...]:
    """PS3.15 Table E.1-1 options, by the names ``deid --option`` accepts (:class:`Option`)."""
    chosen = tuple(
        choice(item, f"{where}[{index}]", Option).value for index, item in enumerate(array(value, where))
    )
    both = {Option.RETAIN_LONG_FULL_DATES.value, Option.RETAIN_LONG_MODIFIED_DATES.value}
    if both <= set(chosen):
        raise bad(
            where,
            "has both Retain Longitudinal Temporal Information options (PS3.15 E.3.6)",
            "keep retain-long-full-dates or retain-long-modified-dates, not both",
        )
    return chosen


def _reid_route(sec: Section) -> ReidRoute:
    found = ReidRoute(
        name=sec.need("name", name),
        destination=_destination(sec),
        vault=sec.get("vault", sec.store, None),
        owner_key=sec.get("owner_key", sec.existing_file, None),
        owner_cert=sec.get("owner_cert", sec.existing_file, None),
        owner_key_passphrase_env=sec.get("owner_key_passphrase_env", env_name, None),
        options=sec.get("options", _options, ()),
        policy=sec.get("policy", sec.existing_file, None),
        trusted_sealers=sec.get("trusted_sealers", sec.files, ()),
        accept_unverified=sec.get("accept_unverified", boolean, False),
    )
    if (found.vault is None) == (found.owner_key is None):
        raise bad(
            sec.where,
            "needs exactly one of vault (vault mode) or owner_key (embedded seals)",
            "as 'dicomcloak reid': --vault URL, or --private-key KEY.pem",
        )
    embedded_only = ("owner_key_passphrase_env", "owner_cert", "trusted_sealers", "accept_unverified")
    for key in embedded_only:
        if found.vault is not None and key in sec.data:
            raise bad(
                sec.path(key),
                "applies to embedded seals (owner_key), not to a vault",
                f"remove {key} or use owner_key instead of vault",
            )
    return found


# Query/retrieve through the gateway


def query(sec: Section) -> QueryRoute:
    """One ``[[query]]``: the remote archive, the routes that translate, the C-MOVE destinations."""
    sec.check_keys(_QUERY_KEYS)
    nobody: tuple[Peer, ...] = ()
    destinations = sec.get("destinations", partial(_peers, sec), nobody)
    return QueryRoute(
        name=sec.need("name", name),
        remote=_destination(sec, "remote"),
        deidentify=sec.need("deidentify", text),
        reidentify=sec.need("reidentify", text),
        destinations=destinations,
    )


def _peers(sec: Section, value: object, where: str) -> tuple[Peer, ...]:
    peers = tuple(
        _peer(Section.of(item, f"{where}[{index}]", sec.base))
        for index, item in enumerate(array(value, where))
    )
    titles = [peer.ae_title for peer in peers]
    for index, title in enumerate(titles):
        if title in titles[:index]:
            raise bad(
                f"{where}[{index}].ae_title",
                "duplicates another destination's AE title",
                "a C-MOVE destination is found by its AE title: give each its own",
            )
    return peers


def check_queries(queries: dict[str, QueryRoute], routes: dict[str, Route]) -> None:
    """A query's ``deidentify`` names a deidentify route, its ``reidentify`` a reidentify route."""
    for index, item in enumerate(queries.values()):
        for key, wanted in (("deidentify", DeidRoute), ("reidentify", ReidRoute)):
            target = routes.get(getattr(item, key))
            if target is None:
                raise bad(f"query[{index}].{key}", "names no [[route]]", known("route", routes))
            if not isinstance(target, wanted):
                raise bad(
                    f"query[{index}].{key}",
                    f"names a route whose direction is not {key}",
                    f'name a [[route]] with direction = "{key}"',
                )
