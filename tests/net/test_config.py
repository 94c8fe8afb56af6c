"""gateway.toml: the examples load, every mistake is refused with its reference, its key path and a fix.

The loader is pure file reading (docs/gateway.md, "Configuration"); these tests
write real files into a temporary directory and load them with ``load_config``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import fields
from ipaddress import ip_network
from pathlib import Path

import pytest

from dicomcloak.errors import ConfigError
from dicomcloak.net.config import (
    DeidRoute,
    Direction,
    Forwarding,
    IdentityMode,
    Limits,
    ReidRoute,
    UserIdentity,
)
from dicomcloak.net.loader import load_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

BASE = """\
[gateway]
spool = "var/spool"
quarantine = "var/quarantine"
audit = "var/audit.db"

[[listener]]
ae_title = "DICOMCLOAK"
port = 11112
route = "to-archive"
allow = [ { ae_title = "*", address = "127.0.0.1" } ]

[[route]]
name = "to-archive"
direction = "deidentify"
destination = { ae_title = "ARCHIVE", host = "127.0.0.1", port = 11113 }
"""

REID = """
[[route]]
name = "from-archive"
direction = "reidentify"
destination = { ae_title = "HOSPITAL", host = "127.0.0.1", port = 11114 }
vault = "var/vault.db"
"""

QUERY = """
[[query]]
name = "archive-qr"
remote = { ae_title = "ORTHANC", host = "127.0.0.1", port = 4242 }
deidentify = "to-archive"
reidentify = "from-archive"
"""

SECOND_LISTENER = """
[[listener]]
name = "second"
ae_title = "SECOND"
port = 11115
"""

TLS = """
[listener.tls]
certificate = "present.pem"
private_key = "present.pem"
"""

SECRET = "hunter2-Sekr3t"

ALLOW = 'allow = [ { ae_title = "*", address = "127.0.0.1" } ]'
EMBEDDED = REID.replace('vault = "var/vault.db"', 'owner_key = "present.pem"')  # embedded seals

# fmt: off
# (id, text to replace in BASE or None to append, the new text, reference, the key path named)
BAD_FILES = [
    # gateway-unknown-key
    ("typo-destination", "destination = {", "destinaton = {", "unknown-key", "route[0].destinaton"),
    ("unknown-table", None, "[gatway]\n", "unknown-key", "gatway"),
    ("http-reserved", None, "[http]\nport = 8080\n", "unknown-key", "http"),
    ("gateway-key", 'spool = "var/spool"', 'spool = "var/spool"\nspoool = "x"', "unknown-key",
     "gateway.spoool"),
    ("listener-key", "port = 11112", "port = 11112\nae_tile = 'X'", "unknown-key", "listener[0].ae_tile"),
    ("allow-key", 'address = "127.0.0.1"', 'adress = "127.0.0.1"', "unknown-key",
     "listener[0].allow[0].adress"),
    ("peer-key", "port = 11113 }", "portt = 11113 }", "unknown-key", "route[0].destination.portt"),
    ("limits-key", None, "[limits]\nmax_assocations = 4\n", "unknown-key", "limits.max_assocations"),
    ("forward-key", None, "[forward]\nretry_inital = 2\n", "unknown-key", "forward.retry_inital"),
    ("tls-key", "port = 11112", "port = 11112\ntls = { certfile = 'a' }", "unknown-key",
     "listener[0].tls.certfile"),
    ("identity-key", "port = 11112", "port = 11112\nidentity = { moed = 'jwt' }", "unknown-key",
     "listener[0].identity.moed"),
    ("reid-key-in-deid", None, 'owner_key = "present.pem"\n', "unknown-key", "route[0].owner_key"),
    ("deid-key-in-reid", None, REID + "pixels = \"off\"\n", "unknown-key", "route[1].pixels"),
    ("query-key", None, REID + QUERY + "remot = 1\n", "unknown-key", "query[0].remot"),
    # gateway-bad-value: types and ranges
    ("port-zero", "port = 11112", "port = 0", "bad-value", "listener[0].port"),
    ("port-high", "port = 11112", "port = 70000", "bad-value", "listener[0].port"),
    ("port-string", "port = 11112", 'port = "11112"', "bad-value", "listener[0].port"),
    ("port-bool", "port = 11113 }", "port = true }", "bad-value", "route[0].destination.port"),
    ("ae-too-long", '"DICOMCLOAK"', '"DICOMCLOAK-GATEWAY"', "bad-value", "listener[0].ae_title"),
    ("ae-backslash", '"DICOMCLOAK"', '"DICOM\\\\CLOAK"', "bad-value", "listener[0].ae_title"),
    ("ae-control", '"DICOMCLOAK"', '"DICOM\\u0007CLOAK"', "bad-value", "listener[0].ae_title"),
    ("ae-blank", '"ARCHIVE"', '"   "', "bad-value", "route[0].destination.ae_title"),
    ("allow-ae-empty", 'ae_title = "*"', 'ae_title = ""', "bad-value", "listener[0].allow[0].ae_title"),
    ("address-invalid", '"127.0.0.1" }', '"300.1.1.1" }', "bad-value", "listener[0].allow[0].address"),
    ("address-host-bits", '"127.0.0.1" }', '"10.0.0.1/8" }', "bad-value", "listener[0].allow[0].address"),
    ("allow-not-array", ALLOW, 'allow = "127.0.0.1"', "bad-value", "listener[0].allow"),
    ("listener-name", "port = 11112", 'port = 11112\nname = "in coming!"', "bad-value", "listener[0].name"),
    ("domain-empty", None, 'domain = ""\n', "bad-value", "route[0].domain"),
    ("limits-pdu-zero", None, "[limits]\nmax_pdu = 0\n", "bad-value", "limits.max_pdu"),
    ("limits-timeout", None, "[limits]\ndimse_timeout = -1\n", "bad-value", "limits.dimse_timeout"),
    ("limits-nan", None, "[limits]\nacse_timeout = nan\n", "bad-value", "limits.acse_timeout"),
    ("limits-workers", None, "[limits]\nworkers = -1\n", "bad-value", "limits.workers"),
    ("forward-order", None, "[forward]\nretry_initial = 10\nretry_max = 5\n", "bad-value",
     "forward.retry_max"),
    ("limits-array", None, "[[limits]]\nworkers = 1\n", "bad-value", "limits"),
    # structure and references
    ("listener-not-array", "[[listener]]", "[listener]", "bad-value", "listener"),
    ("no-gateway", BASE[: BASE.index("[[listener]]")], "", "bad-value", "gateway"),
    ("no-listener", BASE[BASE.index("[[listener]]") : BASE.index("[[route]]")], "", "bad-value", "listener"),
    ("gateway-not-table", BASE[: BASE.index("[[listener]]")], 'gateway = "here"\n', "bad-value", "gateway"),
    ("no-spool", 'spool = "var/spool"', "", "bad-value", "gateway.spool"),
    ("no-audit", 'audit = "var/audit.db"', "", "bad-value", "gateway.audit"),
    ("same-dirs", '"var/quarantine"', '"var/spool"', "bad-value", "gateway.quarantine"),
    ("spool-is-file", '"var/spool"', '"afile"', "bad-value", "gateway.spool"),
    ("key-file-missing", 'audit = "var/audit.db"', 'audit = "a.db"\nkey_file = "nokey"', "bad-value",
     "gateway.key_file"),
    ("route-unknown", 'route = "to-archive"', 'route = "to-arcive"', "bad-value", "listener[0].route"),
    ("query-unknown", 'route = "to-archive"', 'query = "qr"', "bad-value", "listener[0].query"),
    ("dup-port", None, SECOND_LISTENER.replace("11115", "11112"), "bad-value", "listener[1].port"),
    ("dup-ae", None, SECOND_LISTENER.replace("SECOND", "DICOMCLOAK"), "bad-value", "listener[1].ae_title"),
    ("dup-name", None, SECOND_LISTENER.replace('"second"', '"DICOMCLOAK"'), "bad-value", "listener[1].name"),
    ("dup-route", None, REID.replace("from-archive", "to-archive"), "bad-value", "route[1].name"),
    ("direction-typo", '"deidentify"', '"deidentfy"', "bad-value", "route[0].direction"),
    ("direction-missing", 'direction = "deidentify"', "", "bad-value", "route[0].direction"),
    ("destination-missing", 'destination = { ae_title = "ARCHIVE", host = "127.0.0.1", port = 11113 }', "",
     "bad-value", "route[0].destination"),
    ("option-unknown", None, 'options = ["retain-uid"]\n', "bad-value", "route[0].options[0]"),
    ("options-conflict", None, 'options = ["retain-long-full-dates", "retain-long-modified-dates"]\n',
     "bad-value", "route[0].options"),
    ("pixels-mode", None, 'pixels = "on"\n', "bad-value", "route[0].pixels"),
    ("policy-missing", None, 'policy = "site-policy.toml"\n', "bad-value", "route[0].policy"),
    ("recipient-missing", None, 'recipients = ["owner.cert.pem"]\n', "bad-value", "route[0].recipients[0]"),
    ("sealer-alone", None, 'sealer_key = "present.pem"\n', "bad-value", "route[0].sealer_key"),
    ("vault-scheme", None, 'vault = "mysql://db/vault"\n', "bad-value", "route[0].vault"),
    ("vault-memory", None, 'vault = "sqlite://"\n', "bad-value", "route[0].vault"),
    ("reid-no-mode", None, REID.replace('vault = "var/vault.db"', ""), "bad-value", "route[1]"),
    ("reid-vault-sealers", None, REID + 'trusted_sealers = ["present.pem"]\n', "bad-value",
     "route[1].trusted_sealers"),
    ("reid-bool", None, EMBEDDED + "accept_unverified = 1\n", "bad-value", "route[1].accept_unverified"),
    ("query-no-route", None, REID + QUERY.replace('"from-archive"', '"from-arcive"'), "bad-value",
     "query[0].reidentify"),
    ("query-wrong-direction", None, REID + QUERY.replace('"from-archive"', '"to-archive"'), "bad-value",
     "query[0].reidentify"),
    ("query-dup-destination", None,
     REID + QUERY + "destinations = [{ ae_title = 'H', host = 'h', port = 1 }, { ae_title = 'H', host = 'i', "
     "port = 2 }]\n", "bad-value", "query[0].destinations[1].ae_title"),
    ("client-tls-half", "port = 11113 }", "port = 11113, tls = { ca_file = 'present.pem', certificate = "
     "'present.pem' } }", "bad-value", "route[0].destination.tls"),
    # TLS and User Identity on a listener
    ("tls-missing-file", ALLOW,
     TLS.replace('certificate = "present.pem"', 'certificate = "gateway.crt"'), "bad-value",
     "listener[0].tls.certificate"),
    ("tls-no-key", ALLOW,
     TLS.replace('private_key = "present.pem"', ""), "bad-value", "listener[0].tls.private_key"),
    ("tls-client-no-ca", ALLOW,
     TLS + "require_client_certificate = true\n", "bad-value", "listener[0].tls.require_client_certificate"),
    ("identity-no-users", "port = 11112", "port = 11112\nidentity = { mode = 'username-passcode' }",
     "bad-value", "listener[0].identity.users_file"),
    ("identity-no-secret", "port = 11112", "port = 11112\nidentity = { mode = 'jwt' }", "bad-value",
     "listener[0].identity.jwt_secret_env"),
    ("identity-ignored", "port = 11112", "port = 11112\nidentity = { users_file = 'users.txt' }", "bad-value",
     "listener[0].identity.users_file"),
    ("identity-mode", "port = 11112", "port = 11112\nidentity = { mode = 'password' }", "bad-value",
     "listener[0].identity.mode"),
    ("users-missing", "port = 11112", "port = 11112\nidentity = { mode = 'username-passcode', users_file = "
     "'nobody.txt' }", "bad-value", "listener[0].identity.users_file"),
]

# fmt: on


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A directory with the files some configurations name (placeholders: only their existence is checked)."""
    (tmp_path / "present.pem").write_text("placeholder\n")
    (tmp_path / "users.txt").write_text("")
    (tmp_path / "afile").write_text("")
    return tmp_path


def write(folder: Path, text: str, name: str = "gateway.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def edited(old: str | None, new: str) -> str:
    if old is None:
        return BASE + new
    assert old in BASE, old
    return BASE.replace(old, new, 1)


def test_base_loads(folder: Path) -> None:
    """The file every bad case starts from is itself valid (so each case fails for its own reason)."""
    config = load_config(write(folder, BASE + REID + QUERY + SECOND_LISTENER))
    assert set(config.routes) == {"to-archive", "from-archive"}
    assert set(config.queries) == {"archive-qr"}


@pytest.mark.parametrize(
    ("old", "new", "reference", "where"),
    [case[1:] for case in BAD_FILES],
    ids=[case[0] for case in BAD_FILES],
)
def test_bad_file_is_refused(folder: Path, old: str | None, new: str, reference: str, where: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(folder, edited(old, new)))
    error = caught.value
    assert error.reference == f"gateway-{reference}"
    assert error.message.startswith(f"{where}: "), error.message
    assert error.hint  # every message says how to fix it


@pytest.mark.parametrize(
    ("old", "new", "suggestion"),
    [
        ("destination = {", "destinaton = {", "did you mean route[0].destination?"),
        ('spool = "var/spool"', 'spol = "var/spool"', "did you mean gateway.spool?"),
        (None, "[gatway]\n", "did you mean gateway?"),
        (None, "[http]\n", "not yet supported"),
        (None, 'owner_key = "present.pem"\n', "only a reidentify route has it"),
        (None, 'options = ["retain-uid"]\n', 'did you mean "retain-uids"?'),
        ('"deidentify"', '"deidentfy"', 'did you mean "deidentify"?'),
        ('"127.0.0.1" }', '"10.0.0.1/8" }', 'did you mean "10.0.0.0/8"?'),
        ('route = "to-archive"', 'route = "to-arcive"', "use the name of a [[route]]: to-archive"),
    ],
)
def test_hint_suggests_the_fix(folder: Path, old: str | None, new: str, suggestion: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(folder, edited(old, new)))
    assert suggestion in caught.value.hint


@pytest.mark.parametrize(
    "content",
    [b"[gateway\nspool = 1\n", b"[gateway]\nspool = 'a'\nspool = 'b'\n", b"[gateway]\nspool = '\xff\xfe'\n"],
    ids=["not-toml", "duplicate-key", "not-utf8"],
)
def test_invalid_file(folder: Path, content: bytes) -> None:
    path = folder / "gateway.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.reference == "gateway-file-invalid"
    assert str(path) in caught.value.message


@pytest.mark.parametrize("name", ["missing.toml", "."])
def test_unreadable_file(folder: Path, name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(folder / name)
    assert caught.value.reference == "gateway-file-invalid"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (None, f'vault = "mysql://gateway:{SECRET}@db.example.org/vault"\n'),
        ('audit = "var/audit.db"', f'audit = "postgres://gateway:{SECRET}@db/audit"'),
        ("port = 11112", f"port = 11112\nidentity = {{ mode = 'jwt', jwt_secret_env = '{SECRET}' }}"),
        (None, EMBEDDED + f'owner_key_passphrase_env = "{SECRET}"\n'),
        (None, f'domain = ["{SECRET}"]\n'),
        ("port = 11112", f'port = "{SECRET}"'),
    ],
    ids=["vault-url", "audit-url", "jwt-secret", "passphrase", "domain-type", "port-type"],
)
def test_secrets_are_not_echoed(folder: Path, old: str | None, new: str) -> None:
    """A secret pasted where a name or URL belongs never appears in the error (docs/gateway.md, "Errors")."""
    with pytest.raises(ConfigError) as caught:
        load_config(write(folder, edited(old, new)))
    assert caught.value.reference == "gateway-bad-value"
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value.to_dict())


def test_minimal_example_loads() -> None:
    """examples/gateway.toml is the issue's: DICOMCLOAK:11112 from 127.0.0.1, Basic profile to ARCHIVE."""
    config = load_config(EXAMPLES / "gateway.toml")
    (listener,) = config.listeners
    assert (listener.ae_title, listener.port, listener.host) == ("DICOMCLOAK", 11112, "127.0.0.1")
    assert [(c.ae_title, c.network) for c in listener.allow] == [("*", ip_network("127.0.0.1/32"))]
    route = config.routes[listener.route or ""]
    assert isinstance(route, DeidRoute)
    assert (route.destination.ae_title, route.destination.host, route.destination.port) == (
        "ARCHIVE",
        "127.0.0.1",
        11113,
    )
    assert route.options == () and route.policy is None and route.pixels == "auto"
    assert config.key_file is None  # the key comes from DICOMCLOAK_KEY_FILE
    var = EXAMPLES / "var"
    assert (config.spool, config.quarantine) == (var / "spool", var / "quarantine")
    assert config.audit == f"sqlite:///{var / 'audit.db'}"


def test_full_example_loads() -> None:
    config = load_config(EXAMPLES / "gateway-full.toml")
    deid, reid = config.routes["to-archive"], config.routes["from-archive"]
    assert isinstance(deid, DeidRoute) and isinstance(reid, ReidRoute)
    assert deid.vault == reid.vault == f"sqlite:///{EXAMPLES / 'var' / 'vault.db'}"
    query = config.queries["archive-qr"]
    assert (query.deidentify, query.reidentify) == ("to-archive", "from-archive")
    assert [peer.ae_title for peer in query.destinations] == ["HOSPITAL"]
    assert [listener.name for listener in config.listeners] == ["hospital", "returns"]


def test_full_example_shows_every_limit_with_its_default() -> None:
    """[limits] and [forward] in the full example list every field at its default: the docs stay true."""
    text = (EXAMPLES / "gateway-full.toml").read_text()
    for kind in (Limits, Forwarding):
        for field in fields(kind):
            assert re.search(rf"^{field.name} = ", text, re.MULTILINE), field.name
    config = load_config(EXAMPLES / "gateway-full.toml")
    assert (config.limits, config.forward) == (Limits(), Forwarding())


def test_full_example_tls_and_identity_load_when_uncommented(folder: Path) -> None:
    """The commented TLS and User Identity lines are valid once their files exist."""
    wanted = re.compile(
        r"^# (\[listener\.(tls|identity)\]|mode = \"username"
        r"|(certificate|private_key|ca_file|require_client_certificate|users_file) = )"
    )
    lines = [
        line[2:] if wanted.match(line) else line
        for line in (EXAMPLES / "gateway-full.toml").read_text().splitlines()
    ]
    (folder / "tls").mkdir()
    for name in ("tls/gateway.crt", "tls/gateway.key", "tls/hospital-ca.crt", "users.txt"):
        (folder / name).write_text("placeholder\n")
    config = load_config(write(folder, "\n".join(lines) + "\n"))
    listener = config.listeners[0]
    assert listener.tls is not None and listener.tls.require_client_certificate
    assert listener.tls.ca_file == folder.resolve() / "tls" / "hospital-ca.crt"
    assert listener.identity == UserIdentity(IdentityMode.USERNAME_PASSCODE, folder.resolve() / "users.txt")


def test_relative_paths_resolve_against_the_file(
    folder: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not against the working directory: the gateway may be started from anywhere."""
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    sub = folder / "conf"
    sub.mkdir()
    (sub / "policy.toml").write_text("")
    text = edited('audit = "var/audit.db"', 'audit = "sqlite:///logs/audit.db?timeout=5"') + (
        'policy = "policy.toml"\nvault = "../vault.db"\n' + REID.replace('"var/vault.db"', '"/srv/vault.db"')
    )
    config = load_config(write(sub, text))
    base = sub.resolve()
    assert config.spool == base / "var" / "spool"
    assert config.status_file == base / "var" / "spool" / "status.json"
    assert config.audit == f"sqlite:///{base / 'logs' / 'audit.db'}?timeout=5"
    deid, reid = config.routes["to-archive"], config.routes["from-archive"]
    assert isinstance(deid, DeidRoute) and deid.policy == base / "policy.toml"
    assert deid.vault == f"sqlite:///{folder.resolve() / 'vault.db'}"
    assert isinstance(reid, ReidRoute) and reid.vault == "sqlite:////srv/vault.db"


def test_defaults_and_kept_values(folder: Path) -> None:
    """Listener name from its AE title; a PostgreSQL URL kept as is; AE titles trimmed (PS3.5 AE VR)."""
    url = "postgresql+pg8000://gateway@db.example.org/audit"
    text = (
        edited('audit = "var/audit.db"', f'audit = "{url}"')
        .replace('"ARCHIVE"', '" ARCHIVE  "')
        .replace(
            ALLOW,
            'allow = [{ ae_title = "MOD1", address = "::1" }, { ae_title = "*", address = "fd00::/8" }]',
        )
    )
    config = load_config(write(folder, text + 'pixels = "auto"\noptions = ["retain-uids"]\n'))
    listener = config.listeners[0]
    assert (listener.name, listener.host, listener.identity, listener.tls) == (
        "DICOMCLOAK",
        "127.0.0.1",
        UserIdentity(),
        None,
    )
    assert config.audit == url
    assert [(c.ae_title, c.network) for c in listener.allow] == [
        ("MOD1", ip_network("::1/128")),
        ("*", ip_network("fd00::/8")),
    ]
    route = config.routes["to-archive"]
    assert isinstance(route, DeidRoute)
    assert route.direction is Direction.DEIDENTIFY
    assert (route.destination.ae_title, route.pixels, route.options) == ("ARCHIVE", "auto", ("retain-uids",))


def test_loading_is_cheap() -> None:
    """``serve --check`` calls load_config: no DICOM, network, database or array library is imported."""
    code = (
        "import sys, pathlib; from dicomcloak.net.loader import load_config; "
        f"load_config(pathlib.Path({str(EXAMPLES / 'gateway-full.toml')!r})); "
        "print(sorted({'pydicom', 'pynetdicom', 'sqlalchemy', 'numpy'} & set(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


def test_reidentify_route_takes_the_deidentify_options_and_certificate(tmp_path: Path) -> None:
    """A reidentify route keeps what its deidentify route kept (reid --option/--policy) and names --cert."""
    for name in ("owner.key.pem", "owner.cert.pem", "site.toml"):
        (tmp_path / name).write_text("x")
    owner = 'owner_key = "owner.key.pem"\nowner_cert = "owner.cert.pem"'
    embedded = REID.replace('vault = "var/vault.db"', owner)
    extra = 'options = ["retain-safe-private"]\npolicy = "site.toml"\n'
    found = load_config(write(tmp_path, BASE + embedded + extra)).routes["from-archive"]
    assert isinstance(found, ReidRoute)
    assert found.options == ("retain-safe-private",)
    assert found.policy == tmp_path / "site.toml"
    assert found.owner_cert == tmp_path / "owner.cert.pem"
