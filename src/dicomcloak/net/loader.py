"""Load ``gateway.toml`` into a :class:`~dicomcloak.net.config.GatewayConfig`, validated (docs/gateway.md).

Everything is checked before anything starts: types, ranges, names that refer
to each other, files that must exist. Nothing is opened or connected here
(no database, no socket, no key), so ``dicomcloak serve --check`` can call
:func:`load_config` cheaply. Errors are :class:`~dicomcloak.errors.ConfigError`
with the references ``gateway-file-invalid``, ``gateway-unknown-key`` and
``gateway-bad-value``; each names the key's dotted path (``route[0].destination.port``)
and the fix, never the value.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable
from dataclasses import fields
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

from dicomcloak.errors import ConfigError
from dicomcloak.net._reader import (
    Section,
    ae_title,
    array,
    bad,
    boolean,
    choice,
    env_name,
    host,
    integer,
    known,
    name,
    network,
    number,
    port,
    text,
)
from dicomcloak.net._routes import check_queries, query, route
from dicomcloak.net.config import (
    Caller,
    Forwarding,
    GatewayConfig,
    IdentityMode,
    Limits,
    Listener,
    QueryRoute,
    Route,
    ServerTls,
    UserIdentity,
)

__all__ = ["load_config", "parse_config"]

T = TypeVar("T")

_TABLES = ("gateway", "limits", "forward", "listener", "route", "query")
_RESERVED = {"http": "[http] is reserved for the HTTP service, not yet supported: remove it"}
_GATEWAY_KEYS = ("spool", "quarantine", "audit", "key_file", "status_file")
_LISTENER_KEYS = ("name", "ae_title", "host", "port", "route", "query", "allow", "tls", "identity")
_PDU_MAX = 2**32 - 1  # PS3.8 Table 9-16: Maximum Length Received is a 32-bit field
_IDENTITY_NEEDS = {
    IdentityMode.NONE: (),
    IdentityMode.USERNAME_PASSCODE: ("users_file",),
    IdentityMode.JWT: ("jwt_secret_env",),
}
_IDENTITY_USES = {
    IdentityMode.NONE: frozenset[str](),
    IdentityMode.USERNAME_PASSCODE: frozenset({"users_file"}),
    IdentityMode.JWT: frozenset({"jwt_secret_env", "jwt_audience"}),
}
_MINIMUM: dict[str, float] = {"max_pdu": 4096, "workers": 0}  # else integers >= 1, seconds > 0


def load_config(path: Path) -> GatewayConfig:
    """Read and validate the gateway's TOML file; relative paths resolve against its directory.

    Raises
    ------
    ConfigError
        ``gateway-file-invalid`` (unreadable, not UTF-8, not TOML),
        ``gateway-unknown-key``, ``gateway-bad-value`` (docs/gateway.md, "Errors").
    """
    try:
        document = tomllib.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"cannot read the gateway configuration {path}: {exc.strerror}",
            reference="gateway-file-invalid",
            hint="check the path and its permissions",
        ) from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        problem = "is not UTF-8" if isinstance(exc, UnicodeDecodeError) else f"is not valid TOML: {exc}"
        raise ConfigError(
            f"the gateway configuration {path} {problem}",
            reference="gateway-file-invalid",
            hint="see docs/gateway.md, 'Configuration', and examples/gateway.toml",
        ) from None
    return parse_config(document, path.resolve().parent)


def parse_config(document: dict[str, Any], base: Path) -> GatewayConfig:
    """Build the configuration from a parsed TOML ``document``; relative paths resolve against ``base``."""
    top = Section(document, "", base)
    top.check_keys(_TABLES, _RESERVED)
    gateway = top.sub("gateway")
    if gateway is None:
        raise bad("gateway", "the [gateway] table is required", "add [gateway] with spool, quarantine, audit")
    routes = _by_name(_tables(top, "route", route), "route")
    queries = _by_name(_tables(top, "query", query), "query")
    listeners = _tables(top, "listener", _listener)
    if not listeners:
        raise bad("listener", "at least one [[listener]] is required", "add a [[listener]] table")
    _check_listeners(listeners, routes, queries)
    check_queries(queries, routes)
    return _gateway(gateway, tuple(listeners), routes, queries, top)


def _gateway(
    sec: Section,
    listeners: tuple[Listener, ...],
    routes: dict[str, Route],
    queries: dict[str, QueryRoute],
    top: Section,
) -> GatewayConfig:
    sec.check_keys(_GATEWAY_KEYS)
    spool = sec.need("spool", sec.directory)
    quarantine = sec.need("quarantine", sec.directory)
    if quarantine == spool:
        raise bad("gateway.quarantine", "is the spool directory", "give the quarantine its own directory")
    limits, forward = top.sub("limits"), top.sub("forward")
    config = GatewayConfig(
        spool=spool,
        quarantine=quarantine,
        audit=sec.need("audit", sec.store),
        listeners=listeners,
        routes=routes,
        queries=queries,
        key_file=sec.get("key_file", sec.existing_file, None),
        limits=_numbers(limits, Limits) if limits else Limits(),
        forward=_numbers(forward, Forwarding) if forward else Forwarding(),
        status_file=sec.get("status_file", sec.location, spool / "status.json"),
    )
    if config.forward.retry_max < config.forward.retry_initial:
        raise bad("forward.retry_max", "is less than forward.retry_initial", "raise retry_max or lower it")
    return config


_Numbers = TypeVar("_Numbers", Limits, Forwarding)


def _numbers(sec: Section, kind: type[_Numbers]) -> _Numbers:
    """[limits] or [forward]: every key optional, integers >= 1 and seconds > 0 unless said otherwise."""
    sec.check_keys([field.name for field in fields(kind)])
    values: dict[str, Any] = {}
    for field in fields(kind):
        if field.name not in sec.data:
            continue
        value, where = sec.data[field.name], sec.path(field.name)
        if type(field.default) is int:
            high = _PDU_MAX if field.name == "max_pdu" else None
            values[field.name] = integer(value, where, int(_MINIMUM.get(field.name, 1)), high)
        else:
            values[field.name] = number(value, where, 0.0)
    return kind(**values)


def _tables(top: Section, key: str, parse: Callable[[Section], T]) -> list[T]:
    """The array of tables ``[[key]]``, each parsed with its index in its path."""
    if key not in top.data:
        return []
    value = top.data[key]
    if not isinstance(value, list):
        raise bad(key, f"must be an array of tables: write [[{key}]], not [{key}]", f"write [[{key}]]")
    return [parse(Section.of(item, f"{key}[{index}]", top.base)) for index, item in enumerate(value)]


class _Named(Protocol):
    @property
    def name(self) -> str: ...


N = TypeVar("N", bound=_Named)


def _by_name(items: Iterable[N], key: str) -> dict[str, N]:
    """Routes or queries by name; two with one name are refused (listeners and queries refer to them)."""
    found: dict[str, N] = {}
    for index, item in enumerate(items):
        if item.name in found:
            raise bad(
                f"{key}[{index}].name", f"duplicates another [[{key}]]'s name", "give each its own name"
            )
        found[item.name] = item
    return found


# Listeners (PS3.15 Annex B for TLS, PS3.7 D.3.3.7 for User Identity)


def _listener(sec: Section) -> Listener:
    sec.check_keys(_LISTENER_KEYS)
    title = sec.need("ae_title", ae_title)
    tls, identity = sec.sub("tls"), sec.sub("identity")
    everybody_refused: tuple[Caller, ...] = ()
    return Listener(
        name=sec.get("name", name, title),
        ae_title=title,
        port=sec.need("port", port),
        route=sec.get("route", text, None),
        host=sec.get("host", host, "127.0.0.1"),
        allow=sec.get("allow", partial(_allow, sec), everybody_refused),
        tls=_server_tls(tls) if tls else None,
        identity=_identity(identity) if identity else UserIdentity(),
        query=sec.get("query", text, None),
    )


def _server_tls(sec: Section) -> ServerTls:
    sec.check_keys(("certificate", "private_key", "ca_file", "require_client_certificate"))
    tls = ServerTls(
        certificate=sec.need("certificate", sec.existing_file),
        private_key=sec.need("private_key", sec.existing_file),
        ca_file=sec.get("ca_file", sec.existing_file, None),
        require_client_certificate=sec.get("require_client_certificate", boolean, False),
    )
    if tls.require_client_certificate and tls.ca_file is None:
        raise bad(
            sec.path("require_client_certificate"),
            "needs ca_file: the CAs whose client certificates are accepted",
            "add ca_file = ... to " + sec.where,
        )
    return tls


def _allow(sec: Section, value: object, where: str) -> tuple[Caller, ...]:
    """The allow list: each caller an AE title (``*``: any) bound to an address or a network."""
    callers = []
    for index, item in enumerate(array(value, where)):
        entry = Section.of(item, f"{where}[{index}]", sec.base)
        entry.check_keys(("ae_title", "address"))
        title = entry.need("ae_title", partial(ae_title, wildcard=True))
        callers.append(Caller(title, entry.need("address", network)))
    return tuple(callers)


def _identity(sec: Section) -> UserIdentity:
    """User Identity negotiation (PS3.7 D.3.3.7): what each mode needs, and nothing it would ignore."""
    sec.check_keys(
        _IDENTITY_USES[IdentityMode.JWT] | _IDENTITY_USES[IdentityMode.USERNAME_PASSCODE] | {"mode"}
    )
    identity = UserIdentity(
        mode=sec.get("mode", partial(choice, kind=IdentityMode), IdentityMode.NONE),
        users_file=sec.get("users_file", sec.existing_file, None),
        jwt_secret_env=sec.get("jwt_secret_env", env_name, None),
        jwt_audience=sec.get("jwt_audience", text, None),
    )
    mode = identity.mode
    for key in _IDENTITY_NEEDS[mode]:
        if key not in sec.data:
            raise bad(sec.path(key), f'is required with mode = "{mode}"', f"add {key} = ... to {sec.where}")
    for key in sec.data.keys() - _IDENTITY_USES[mode] - {"mode"}:
        wanted = next(other for other, uses in _IDENTITY_USES.items() if key in uses)
        raise bad(
            sec.path(key),
            f'has no effect with mode = "{mode}"',
            f'set mode = "{wanted}" to use it, or remove it',
        )
    return identity


def _check_listeners(
    listeners: list[Listener], routes: dict[str, Route], queries: dict[str, QueryRoute]
) -> None:
    """Each listener's names exist; no two share a name, an AE title or a port."""
    for key, label in (("ae_title", "AE title"), ("port", "port"), ("name", "name")):
        seen: set[object] = set()
        for index, listener in enumerate(listeners):
            value = getattr(listener, key)
            if value in seen:
                raise bad(
                    f"listener[{index}].{key}",
                    f"another [[listener]] has the same {label}",
                    f"give each listener its own {label}",
                )
            seen.add(value)
    for index, listener in enumerate(listeners):
        if listener.route is not None and listener.route not in routes:
            raise bad(f"listener[{index}].route", "names no [[route]]", known("route", routes))
        if listener.query is not None and listener.query not in queries:
            raise bad(f"listener[{index}].query", "names no [[query]]", known("query", queries))
