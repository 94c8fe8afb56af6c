"""Reading one table of ``gateway.toml``: typed values, and errors that name the key's dotted path.

:mod:`dicomcloak.net.loader` builds the configuration from these; every check
here raises :class:`~dicomcloak.errors.ConfigError` with a ``gateway-*``
reference (docs/gateway.md, "Errors"). Messages name the key and the fix,
never the value: a value may be a secret pasted in the wrong place, or a
database URL with a password in it.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any, TypeVar

from dicomcloak.errors import ConfigError

__all__ = [
    "BAD_VALUE",
    "UNKNOWN_KEY",
    "Section",
    "ae_title",
    "array",
    "bad",
    "boolean",
    "choice",
    "env_name",
    "host",
    "integer",
    "known",
    "name",
    "network",
    "number",
    "port",
    "text",
]

UNKNOWN_KEY = "gateway-unknown-key"
BAD_VALUE = "gateway-bad-value"

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # a route's name may name spool directories
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_STORE_SCHEMES = ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+pg8000")  # as audit/db.py


def bad(where: str, problem: str, hint: str) -> ConfigError:
    """A ``gateway-bad-value`` error for the key at ``where``."""
    return ConfigError(f"{where}: {problem}", reference=BAD_VALUE, hint=hint)


def nearest(word: str, choices: Collection[str]) -> str | None:
    """The closest of ``choices`` to ``word`` (difflib's ratio), for "did you mean" hints."""
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def text(value: object, where: str) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise bad(where, "must be a non-empty string", 'write it in quotes, e.g. key = "value"')
    return value


def name(value: object, where: str) -> str:
    """A name other keys refer to: letters, digits, ``.``, ``_``, ``-`` (it may name a spool directory)."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise bad(
            where,
            "must be a name of 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
            'e.g. name = "to-archive"',
        )
    return value


def boolean(value: object, where: str) -> bool:
    """``true`` or ``false``."""
    if not isinstance(value, bool):
        raise bad(where, "must be true or false", "write true or false, without quotes")
    return value


def integer(value: object, where: str, low: int, high: int | None = None) -> int:
    """An integer in ``low..high`` (TOML booleans are not integers here)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high and value > high):
        limit = f"from {low} to {high}" if high else f"of at least {low}"
        raise bad(where, f"must be an integer {limit}", "write a whole number, without quotes")
    return value


def number(value: object, where: str, low: float, *, above: bool = True) -> float:
    """A finite number greater than ``low`` (or at least ``low`` when ``above`` is False)."""
    found = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
    if not math.isfinite(found) or (found <= low if above else found < low):
        limit = f"greater than {low:g}" if above else f"at least {low:g}"
        raise bad(where, f"must be a number {limit}", "write a number of seconds, e.g. 30 or 0.5")
    return found


def port(value: object, where: str) -> int:
    """A TCP port, 1..65535."""
    return integer(value, where, 1, 65_535)


def array(value: object, where: str) -> list[Any]:
    """A TOML array."""
    if not isinstance(value, list):
        raise bad(where, "must be an array", "write it as [ ... ]")
    return value


def choice(value: object, where: str, kind: type[E]) -> E:
    """One of the values of the enumeration ``kind``; the nearest one is suggested."""
    allowed = [member.value for member in kind]
    if isinstance(value, str) and value in allowed:
        return kind(value)
    guess = nearest(value, allowed) if isinstance(value, str) else None
    hint = f'did you mean "{guess}"? ' if guess else ""
    raise bad(where, "is not an accepted value", f"{hint}use one of: {', '.join(allowed)}")


def ae_title(value: object, where: str, *, wildcard: bool = False) -> str:
    """An AE title (PS3.5 Table 6.2-1, AE VR): 1 to 16 characters of the default repertoire.

    No backslash and no control characters; leading and trailing spaces are
    not significant and are removed. ``wildcard``: ``*`` (any caller) is accepted.
    """
    if wildcard and value == "*":
        return "*"
    title = value.strip(" ") if isinstance(value, str) else ""
    printable = all(" " <= char <= "~" for char in title)
    if not title or len(title) > 16 or "\\" in title or not printable:
        extra = ' or "*" for any caller' if wildcard else ""
        raise bad(
            where,
            "is not a valid AE title (PS3.5 AE VR: 1 to 16 ASCII characters, no backslash, "
            "no control characters)",
            f'e.g. ae_title = "ARCHIVE"{extra}',
        )
    return title


def network(value: object, where: str) -> IPv4Network | IPv6Network:
    """An IP address (one host) or a CIDR network whose host bits are zero."""
    if not isinstance(value, str):
        raise bad(where, "must be an IP address or a CIDR network in quotes", 'e.g. "10.0.0.0/8"')
    try:
        return ip_network(value.strip(), strict=True)
    except ValueError:
        pass
    try:
        loose = ip_network(value.strip(), strict=False)
    except ValueError:
        raise bad(
            where, "is not an IP address or a CIDR network", 'e.g. "127.0.0.1" or "10.0.0.0/8"'
        ) from None
    raise bad(where, "has host bits set past its prefix length", f'did you mean "{loose}"?')


def env_name(value: object, where: str) -> str:
    """The NAME of an environment variable (never the secret itself, which is not echoed)."""
    if not isinstance(value, str) or not _ENV_NAME.fullmatch(value):
        raise bad(
            where,
            "is not an environment variable name",
            "give the name of the variable that holds the secret (e.g. GATEWAY_JWT_SECRET), "
            "never the secret itself",
        )
    return value


def host(value: object, where: str) -> str:
    """A host name or an IP address (no spaces)."""
    found = text(value, where).strip()
    if any(char.isspace() for char in found):
        raise bad(where, "is not a host name or an IP address", 'e.g. host = "127.0.0.1"')
    return found


def known(table: str, names: Iterable[str]) -> str:
    """The hint for a name that refers to no ``[[table]]``: the names there are."""
    listed = ", ".join(sorted(names))
    return f"use the name of a [[{table}]]: {listed}" if listed else f"add a [[{table}]] with that name"


def _file_path(value: object, where: str, base: Path) -> Path:
    raw = text(value, where)
    return (base / Path(raw).expanduser()).resolve()


@dataclass(frozen=True)
class Section:
    """One TOML table being read, with its dotted path (``route[0].destination``) and the file's directory."""

    data: Mapping[str, Any]
    where: str
    base: Path

    @classmethod
    def of(cls, value: object, where: str, base: Path) -> Section:
        """The table at ``where``; anything else is a bad value."""
        if not isinstance(value, dict):
            raise bad(where, "must be a table", f"write it as [{where}] or {{ key = value, ... }}")
        return cls(value, where, base)

    def path(self, key: str) -> str:
        """The dotted path of ``key`` in this table."""
        return f"{self.where}.{key}" if self.where else key

    def check_keys(self, allowed: Collection[str], elsewhere: Mapping[str, str] | None = None) -> None:
        """Refuse a key that is not in ``allowed``, naming its path and the nearest valid key.

        ``elsewhere`` maps keys valid in another kind of this table to why they are not here.
        """
        for key in self.data:
            if key in allowed:
                continue
            reason = (elsewhere or {}).get(key)
            guess = nearest(key, allowed)
            hint = reason or (f"did you mean {self.path(guess)}?" if guess else "remove it")
            valid = ", ".join(sorted(allowed))
            raise ConfigError(
                f"{self.path(key)}: unknown key", reference=UNKNOWN_KEY, hint=f"{hint} (valid keys: {valid})"
            )

    def need(self, key: str, parse: Callable[[object, str], T]) -> T:
        """The required ``key``, parsed."""
        if key not in self.data:
            raise bad(self.path(key), "is required", f"add {key} = ... to {self.header()}")
        return parse(self.data[key], self.path(key))

    def get(self, key: str, parse: Callable[[object, str], T], default: T) -> T:
        """The optional ``key``, parsed, else ``default``."""
        return parse(self.data[key], self.path(key)) if key in self.data else default

    def sub(self, key: str) -> Section | None:
        """The sub-table ``key``, if present."""
        return Section.of(self.data[key], self.path(key), self.base) if key in self.data else None

    def header(self) -> str:
        """How the table is written in the file, for hints: ``[gateway]``, ``route[0]``."""
        return f"[{self.where}]" if "[" not in self.where else self.where

    # Paths: relative to the configuration file's directory (docs/gateway.md, "Paths and database URLs").

    def location(self, value: object, where: str) -> Path:
        """A file or directory path, resolved against the file's directory; it may not exist yet."""
        return _file_path(value, where, self.base)

    def directory(self, value: object, where: str) -> Path:
        """A directory the gateway creates if missing; an existing non-directory is refused."""
        path = self.location(value, where)
        if path.exists() and not path.is_dir():
            raise bad(where, f"{path} exists and is not a directory", "name a directory (created if missing)")
        return path

    def existing_file(self, value: object, where: str) -> Path:
        """A file that must exist now (certificates, keys, policy and users files)."""
        path = self.location(value, where)
        if not path.is_file():
            raise bad(
                where,
                f"file not found: {path}",
                "relative paths are read from the configuration file's directory; check the name",
            )
        return path

    def files(self, value: object, where: str) -> tuple[Path, ...]:
        """An array of existing files."""
        items = array(value, where)
        return tuple(self.existing_file(item, f"{where}[{index}]") for index, item in enumerate(items))

    def store(self, value: object, where: str) -> str:
        """A SQLAlchemy URL, or a plain path that becomes ``sqlite:///<absolute path>``.

        A SQLite URL's relative path is resolved against the file's directory
        too; a PostgreSQL URL is kept as is. The value is never echoed: a URL
        may hold a password.
        """
        raw = text(value, where).strip()
        hint = "give a file path, sqlite:///PATH or postgresql+pg8000://USER@HOST/DB"
        if "://" not in raw:
            return f"sqlite:///{self.location(raw, where)}"
        scheme, rest = raw.split("://", 1)
        if scheme not in _STORE_SCHEMES:
            raise bad(where, "is neither a path nor a supported database URL", hint)
        if not scheme.startswith("sqlite"):
            return raw
        database, mark, query = rest.partition("?")
        if not database.startswith("/") or database[1:] in ("", ":memory:"):
            raise bad(where, "must name a SQLite file (sqlite:///PATH), not a host or memory", hint)
        return f"{scheme}:///{self.location(database[1:], where)}{mark}{query}"
