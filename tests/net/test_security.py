"""Who gets in: allow list, User Identity, lockout and TLS, tried with real requestors (pynetdicom, dcmtk)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import ssl
import subprocess
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import ip_network
from pathlib import Path

import pytest
from pydicom import Dataset

from dicomcloak.net.config import Caller, IdentityMode, Limits, ServerTls, UserIdentity
from dicomcloak.net.identity import JWT, USERNAME_PASSCODE, ScryptParams, hash_passcode, verify_jwt
from dicomcloak.net.security import Lockout
from dicomcloak.net.tls import ClosingSSLSocket, server_context
from dicomcloak.testing.dimse import DirectorySink, associate, identity_item, rejection, request_only

SECRET = "test-secret-not-a-real-one"
PASSCODE = "correct horse battery staple"
DCMTK = "/usr/bin:/usr/local/bin"
FAST = ScryptParams(n=2**10)  # the users file carries its own cost; tests keep it low
REJECTED, ACCEPTED = 0x03, 0x02
FAST_LIMITS = Limits(acse_timeout=5, dimse_timeout=5, network_timeout=5, lockout_failures=10**6)


def token(secret: str = SECRET, *, alg: str = "HS256", **claims: object) -> bytes:
    """An HS256 JSON Web Token (RFC 7519), as a caller's identity provider would issue it."""
    claims.setdefault("exp", int(time.time()) + 300)

    def part(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    signed = f"{part({'alg': alg, 'typ': 'JWT'})}.{part(claims)}"
    signature = hmac.digest(secret.encode(), signed.encode(), "sha256")
    return f"{signed}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}".encode()


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    path = tmp_path / "users"
    path.write_text(f"alice:{hash_passcode(PASSCODE, FAST)}\nbob:{hash_passcode('other', FAST)}\n")
    return path


@pytest.fixture
def jwt_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("GATEWAY_JWT_SECRET", SECRET)
    return "GATEWAY_JWT_SECRET"


# --- the pieces, on their own ------------------------------------------------------------------------


def test_lockout_window() -> None:
    now = [0.0]
    lockout = Lockout(failures=3, seconds=10, clock=lambda: now[0])
    assert [lockout.fail("10.0.0.1") for _ in range(2)] == [False, False]
    assert not lockout.locked("10.0.0.1")
    now[0] = 11.0  # the first two failures left the window
    assert not lockout.fail("10.0.0.1")
    assert not lockout.fail("10.0.0.1")
    assert lockout.fail("10.0.0.1")  # the third within 10 s: the lockout begins (reported once)
    assert not lockout.fail("10.0.0.1")
    assert lockout.locked("10.0.0.1") and not lockout.locked("10.0.0.2")
    now[0] = 21.5
    assert not lockout.locked("10.0.0.1")


def test_lockout_remembers_a_bounded_number_of_addresses() -> None:
    lockout = Lockout(failures=2, seconds=60, capacity=100)
    for index in range(1000):
        lockout.fail(f"10.0.{index // 256}.{index % 256}")
    assert len(lockout._recent) <= 100


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        # Made when the test runs, not at collection: a whole suite can outlast a token's minute.
        (lambda: token(), ""),
        (lambda: token(sub="alice"), ""),
        (lambda: token("another-secret"), "identity-jwt-signature"),
        (lambda: token(alg="none"), "identity-jwt-algorithm"),
        (lambda: token(exp=int(time.time()) - 1), "identity-jwt-expired"),
        (lambda: token(exp=None), "identity-jwt-expired"),
        (lambda: token(nbf=int(time.time()) + 60), "identity-jwt-not-yet-valid"),
        (lambda: token(aud="elsewhere"), "identity-jwt-audience"),
        (lambda: b"not.a-token", "identity-jwt-malformed"),
    ],
    ids=["ok", "subject", "signature", "alg-none", "expired", "no-exp", "not-yet", "audience", "malformed"],
)
def test_jwt_checks(make: Callable[[], bytes], reason: str) -> None:
    made = make()
    audience = None if b"." not in made or reason != "identity-jwt-audience" else "gateway"
    result = verify_jwt(made, SECRET.encode(), audience)
    assert (result.ok, result.reason) == (reason == "", reason)


def test_jwt_audience_list() -> None:
    assert verify_jwt(token(aud=["x", "gateway"]), SECRET.encode(), "gateway").ok
    assert not verify_jwt(token(), SECRET.encode(), "gateway").ok  # asked for, not named


def test_passcode_hash_format() -> None:
    stored = hash_passcode(PASSCODE, FAST)
    scheme, n, r, p, salt, digest = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", "1024", "8", "1")
    expected = hashlib.scrypt(PASSCODE.encode(), salt=base64.b64decode(salt), n=1024, r=8, p=1, dklen=32)
    assert base64.b64decode(digest) == expected
    assert hash_passcode(PASSCODE, FAST) != stored  # a fresh salt each time


# --- a thousand refused attempts against live listeners ------------------------------------------------


@dataclass
class Doors:
    plain: int
    passcode: int
    jwt: int


@pytest.fixture
def doors(start, make_listener, users_file: Path, jwt_env: str) -> Doors:
    ports = start(
        make_listener(name="plain"),
        make_listener(
            name="passcode", identity=UserIdentity(IdentityMode.USERNAME_PASSCODE, users_file=users_file)
        ),
        make_listener(
            name="jwt",
            identity=UserIdentity(IdentityMode.JWT, jwt_secret_env=jwt_env, jwt_audience="gateway"),
        ),
        limits=FAST_LIMITS,
    ).ports
    return Doors(ports["plain"], ports["passcode"], ports["jwt"])


def _attacks(doors: Doors) -> list[tuple[str, Callable[[], tuple[int, tuple[int, int, int] | None]]]]:
    """Each kind of wrong caller, with the reason code the audit must give."""
    alice = identity_item(USERNAME_PASSCODE, b"alice", PASSCODE.encode())
    return [
        ("calling-ae-not-allowed", lambda: request_only(doors.plain, calling="INTRUDER")),
        ("address-not-allowed", lambda: request_only(doors.plain, address="127.0.0.2")),
        ("called-ae-unknown", lambda: request_only(doors.plain, called="SOMEONE")),
        ("identity-missing", lambda: request_only(doors.passcode)),
        (
            "identity-passcode-wrong",
            lambda: request_only(
                doors.passcode, identity=identity_item(USERNAME_PASSCODE, b"alice", b"guess")
            ),
        ),
        (
            "identity-passcode-wrong",
            lambda: request_only(
                doors.passcode, identity=identity_item(USERNAME_PASSCODE, b"mallory", b"guess")
            ),
        ),
        ("identity-type-wrong", lambda: request_only(doors.passcode, identity=identity_item(1, b"alice"))),
        ("address-not-allowed", lambda: request_only(doors.passcode, address="127.0.0.3", identity=alice)),
        ("identity-missing", lambda: request_only(doors.jwt)),
        (
            "identity-jwt-signature",
            lambda: request_only(doors.jwt, identity=identity_item(JWT, token("guess", aud="gateway"))),
        ),
        (
            "identity-jwt-expired",
            lambda: request_only(doors.jwt, identity=identity_item(JWT, token(aud="gateway", exp=1))),
        ),
        (
            "identity-jwt-algorithm",
            lambda: request_only(doors.jwt, identity=identity_item(JWT, token(aud="gateway", alg="none"))),
        ),
        ("identity-jwt-audience", lambda: request_only(doors.jwt, identity=identity_item(JWT, token()))),
    ]


@pytest.mark.slow
def test_wrong_callers_never_reach_c_store(doors: Doors, sink: DirectorySink, ct: Dataset) -> None:
    """1,000 wrong callers (issue 15) are refused with an A-ASSOCIATE-RJ, each audited with its reason;
    none stores."""
    attempts = 1000
    attacks = _attacks(doors)
    expected: dict[str, int] = {}
    for index in range(attempts):
        reason, attempt = attacks[index % len(attacks)]
        pdu, _ = attempt()
        assert pdu == REJECTED, reason
        expected[reason] = expected.get(reason, 0) + 1
    audited: dict[str, int] = {}
    for facts in sink.actions("association-rejected"):
        audited[str(facts["reason"])] = audited.get(str(facts["reason"]), 0) + 1
    assert audited == expected
    assert sink.stored == 0 and not sink.actions("c-store") and not sink.actions("association-accepted")
    # the same wrong callers as full pynetdicom requestors cannot store either
    for kwargs in ({"calling": "INTRUDER"}, {"address": "127.0.0.2"}):
        assoc = associate(doors.plain, **kwargs)  # type: ignore[arg-type]
        assert rejection(assoc) == (0x01, 0x01, 0x03)
        with pytest.raises(RuntimeError):
            assoc.send_c_store(ct)
    assert sink.stored == 0


def test_right_callers_get_in(doors: Doors, sink: DirectorySink, ct: Dataset) -> None:
    alice = identity_item(USERNAME_PASSCODE, b"alice", PASSCODE.encode())
    for port, identity in (
        (doors.plain, None),
        (doors.passcode, alice),
        (doors.jwt, identity_item(JWT, token(aud="gateway", sub="modality-7"))),
    ):
        assoc = associate(port, identity=identity)
        assert assoc.is_established
        assert assoc.send_c_store(ct).Status == 0x0000
        assoc.release()
    assert sink.stored == 3
    assert sorted(str(f["user"]) for f in sink.actions("association-authenticated")) == [
        "alice",
        "modality-7",
    ]


def test_lockout_refuses_even_the_right_passcode(
    start, make_listener, users_file: Path, sink: DirectorySink
) -> None:
    limits = Limits(lockout_failures=3, lockout_seconds=1.0, network_timeout=5)
    port = start(
        make_listener(identity=UserIdentity(IdentityMode.USERNAME_PASSCODE, users_file=users_file)),
        limits=limits,
    ).ports["in"]
    wrong = identity_item(USERNAME_PASSCODE, b"alice", b"guess")
    right = identity_item(USERNAME_PASSCODE, b"alice", PASSCODE.encode())
    assert request_only(port, identity=right)[0] == ACCEPTED
    for _ in range(3):
        assert request_only(port, identity=wrong)[0] == REJECTED
    for _ in range(5):
        assert request_only(port, identity=right) == (REJECTED, (0x02, 0x01, 0x01))  # transient
    assert len(sink.actions("address-locked-out")) == 1  # audited once
    assert request_only(port, address="127.0.0.2", identity=right)[0] == REJECTED  # not allowed anyway
    time.sleep(1.1)
    assert request_only(port, identity=right)[0] == ACCEPTED


def test_a_flood_of_wrong_ae_titles_locks_the_address_out(start, make_listener, sink: DirectorySink) -> None:
    """Callers the allow list refuses count to the lockout too: the flood stops being audited one by one."""
    # 3 s of lockout: the 21 requests below must fit in it on a loaded CI machine (1 s did not, once).
    limits = Limits(lockout_failures=3, lockout_seconds=3.0, network_timeout=5)
    port = start(make_listener(), limits=limits).ports["in"]
    for _ in range(3):
        assert request_only(port, calling="INTRUDER")[0] == REJECTED
    for _ in range(20):
        assert request_only(port, calling="INTRUDER") == (REJECTED, (0x02, 0x01, 0x01))  # locked: transient
    assert request_only(port) == (REJECTED, (0x02, 0x01, 0x01))  # the right AE title from there too
    assert len(sink.actions("association-rejected")) == 3 and len(sink.actions("address-locked-out")) == 1
    time.sleep(3.1)
    assert request_only(port)[0] == ACCEPTED


@pytest.mark.skipif(shutil.which("storescu", path=DCMTK) is None, reason="dcmtk is not installed")
def test_dcmtk_storescu_with_username_and_password(
    start, make_listener, users_file: Path, sink: DirectorySink, ct_file: Path
) -> None:
    port = str(
        start(
            make_listener(identity=UserIdentity(IdentityMode.USERNAME_PASSCODE, users_file=users_file)),
            limits=FAST_LIMITS,
        ).ports["in"]
    )
    storescu = str(shutil.which("storescu", path=DCMTK))
    base = [storescu, "-aet", "SENDER", "-aec", "DICOMCLOAK"]
    good = subprocess.run(
        [*base, "-usr", "alice", "-pwd", PASSCODE, "127.0.0.1", port, str(ct_file)],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert good.returncode == 0, good.stderr
    for extra in (["-usr", "alice", "-pwd", "guess"], []):
        bad = subprocess.run(
            [*base, *extra, "127.0.0.1", port, str(ct_file)], capture_output=True, timeout=30, check=False
        )
        assert bad.returncode != 0
    assert sink.stored == 1


# --- TLS ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca: Path
    server: tuple[Path, Path]  # certificate, key
    client: tuple[Path, Path]
    stranger: tuple[Path, Path]  # a client certificate from another CA


def _write_cert(
    directory: Path, name: str, subject: str, issuer: tuple[object, object] | None, ca: bool = False
) -> tuple[Path, Path, object, object]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name_ = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_cert, issuer_key = issuer if issuer else (None, key)
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name_)
        .issuer_name(issuer_cert.subject if issuer_cert else name_)  # type: ignore[attr-defined]
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        import ipaddress

        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    cert = builder.sign(issuer_key, hashes.SHA256())  # type: ignore[arg-type]
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path, cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca_path, _, ca_cert, ca_key = _write_cert(directory, "ca", "Test CA", None, ca=True)
    _, _, other_cert, other_key = _write_cert(directory, "other-ca", "Other CA", None, ca=True)
    server = _write_cert(directory, "server", "localhost", (ca_cert, ca_key))
    client = _write_cert(directory, "client", "SENDER", (ca_cert, ca_key))
    stranger = _write_cert(directory, "stranger", "SENDER", (other_cert, other_key))
    return Pki(ca_path, server[:2], client[:2], stranger[:2])


def _client_context(pki: Pki, cert: tuple[Path, Path] | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=pki.ca)
    context.sslsocket_class = ClosingSSLSocket  # pynetdicom's requestor leaks a socket it fails to shut down
    if cert is not None:
        context.load_cert_chain(*cert)
    return context


@pytest.fixture
def tls_port(start, make_listener, pki: Pki) -> int:
    tls = ServerTls(pki.server[0], pki.server[1], ca_file=pki.ca, require_client_certificate=True)
    return start(make_listener(tls=tls), limits=FAST_LIMITS).ports["in"]


def test_tls_trusted_client_certificate(tls_port: int, pki: Pki, sink: DirectorySink, ct: Dataset) -> None:
    assoc = associate(tls_port, tls=_client_context(pki, pki.client))
    assert assoc.is_established
    assert assoc.send_c_store(ct).Status == 0x0000
    assoc.release()
    assert sink.stored == 1


@pytest.mark.parametrize("who", ["stranger", "no-certificate", "tls-1.1", "plain-tcp"])
def test_tls_refusals(tls_port: int, pki: Pki, sink: DirectorySink, who: str) -> None:
    if who == "plain-tcp":
        with pytest.raises(
            ConnectionError
        ):  # an A-ASSOCIATE-RQ where a ClientHello belongs: the listener hangs up
            request_only(tls_port)
    else:
        context = _client_context(
            pki, pki.stranger if who == "stranger" else None if who == "no-certificate" else pki.client
        )
        if who == "tls-1.1":
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
            with warnings.catch_warnings():  # the point: an old protocol, deprecated on purpose
                warnings.simplefilter("ignore", DeprecationWarning)
                context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_1
        assert not associate(tls_port, tls=context).is_established
    deadline = time.monotonic() + 5
    while not sink.actions("tls-refused") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sink.stored == 0 and not sink.actions("association-accepted")
    assert len(sink.actions("tls-refused")) == 1
    if who == "tls-1.1":
        assert (
            sink.actions("tls-refused")[0]["reason"] == "UNSUPPORTED_PROTOCOL"
        )  # offered, and refused by us


def test_tls_context_follows_bcp195(pki: Pki) -> None:
    context = server_context(
        ServerTls(pki.server[0], pki.server[1], ca_file=pki.ca, require_client_certificate=True)
    )
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_REQUIRED
    names = [cipher["name"] for cipher in context.get_ciphers()]
    assert names and not [n for n in names if any(bad in n for bad in ("RC4", "DES", "NULL", "MD5"))]
    assert all(
        "ECDHE" in n or "DHE" in n or n.startswith("TLS_") for n in names
    )  # forward secret (or TLS 1.3)


@pytest.mark.skipif(shutil.which("storescu", path=DCMTK) is None, reason="dcmtk is not installed")
def test_dcmtk_storescu_over_tls(tls_port: int, pki: Pki, sink: DirectorySink, ct_file: Path) -> None:
    storescu = str(shutil.which("storescu", path=DCMTK))
    help_text = subprocess.run([storescu, "--help"], capture_output=True, text=True, check=False).stdout
    if "+tls" not in help_text:
        pytest.skip("this dcmtk has no TLS")
    run = subprocess.run(
        [
            storescu,
            "+tls",
            str(pki.client[1]),
            str(pki.client[0]),
            "+cf",
            str(pki.ca),
            "-aet",
            "SENDER",
            "-aec",
            "DICOMCLOAK",
            "127.0.0.1",
            str(tls_port),
            str(ct_file),
        ],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert sink.stored == 1


def test_any_ae_title_from_an_allowed_network(start, make_listener, sink: DirectorySink) -> None:
    port = start(make_listener(allow=(Caller("*", ip_network("127.0.0.0/31")),))).ports["in"]
    assert request_only(port, calling="ANYONE")[0] == ACCEPTED
    assert request_only(port, calling="ANYONE", address="127.0.0.1")[0] == ACCEPTED
    assert request_only(port, calling="ANYONE", address="127.0.0.2") == (REJECTED, (0x01, 0x01, 0x03))
    assert request_only(port, called="OTHER") == (REJECTED, (0x01, 0x01, 0x07))  # `*` is for callers only


# pynetdicom's state machine raises in its DUL thread when our A-ASSOCIATE-RJ meets the A-ABORT it sent on the
# early P-DATA (a protocol error by the peer, PS3.8 9.2 Sta3 + Evt10 -> AA-8): noisy, harmless, not ours.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_store_pipelined_behind_a_refused_request_is_never_processed(
    doors: Doors, sink: DirectorySink, ct: Dataset
) -> None:
    """A requestor that sends its C-STORE without waiting for the answer gets nothing stored."""
    import socket as sockets
    import struct

    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset
    from pynetdicom.dimse_primitives import C_STORE

    from dicomcloak.testing.dimse import _request_pdu

    request = C_STORE()
    request.MessageID, request.AffectedSOPClassUID = 1, ct.SOPClassUID
    request.AffectedSOPInstanceUID, request.Priority = ct.SOPInstanceUID, 2
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, True
    write_dataset(buffer, ct)
    pdvs = b""
    for header, fragment in ((0x03, _command_bytes(request)), (0x02, buffer.getvalue()[:16000])):
        pdvs += struct.pack(">IBB", len(fragment) + 2, 3, header) + fragment  # PS3.8 9.3.5.1, context 3
    p_data = struct.pack(">BBI", 0x04, 0, len(pdvs)) + pdvs
    with sockets.create_connection(("127.0.0.1", doors.passcode), timeout=5) as connection:
        connection.sendall(_request_pdu("SENDER", "DICOMCLOAK", None) + p_data)
        answer = connection.recv(10)
    assert answer[0] in {REJECTED, 0x07}  # A-ASSOCIATE-RJ, or A-ABORT if the early P-DATA was read first
    time.sleep(0.2)
    assert sink.stored == 0 and not sink.actions("c-store")


def _command_bytes(request: object) -> bytes:
    """The encoded command set of a DIMSE request (PS3.7 9.3), as pynetdicom would send it."""
    from pynetdicom.dimse_messages import C_STORE_RQ
    from pynetdicom.dsutils import encode

    message = C_STORE_RQ()
    message.primitive_to_message(request)  # type: ignore[arg-type]
    encoded = encode(message.command_set, True, True)
    assert encoded is not None
    return encoded


@pytest.mark.parametrize(
    ("change", "reference"),
    [
        ({"identity": UserIdentity(IdentityMode.USERNAME_PASSCODE)}, "users-file-missing"),
        (
            {"identity": UserIdentity(IdentityMode.USERNAME_PASSCODE, users_file=Path("/nonexistent/users"))},
            "users-file-unreadable",
        ),
        (
            {"identity": UserIdentity(IdentityMode.JWT, jwt_secret_env="DICOMCLOAK_TEST_UNSET_SECRET")},
            "jwt-secret-missing",
        ),
        ({"tls": ServerTls(Path("/nonexistent.crt"), Path("/nonexistent.key"))}, "tls-files-invalid"),
    ],
)
def test_check_finds_what_serve_would_fail_on(
    make_listener, tmp_path: Path, change: dict[str, object], reference: str
) -> None:
    from dicomcloak.errors import ConfigError
    from dicomcloak.net.config import GatewayConfig
    from dicomcloak.net.serve import check

    config = GatewayConfig(
        spool=tmp_path,
        quarantine=tmp_path,
        audit="sqlite://",
        listeners=(make_listener(**change),),
        routes={},
    )
    with pytest.raises(ConfigError) as caught:
        check(config)
    assert caught.value.reference == reference


def test_client_certificates_need_a_ca(pki: Pki) -> None:
    from dicomcloak.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        server_context(ServerTls(pki.server[0], pki.server[1], require_client_certificate=True))
    assert caught.value.reference == "tls-ca-missing"


def test_users_file_with_a_bad_line_is_a_config_error(tmp_path: Path) -> None:
    from dicomcloak.errors import ConfigError
    from dicomcloak.net.identity import UsersFile

    path = tmp_path / "users"
    path.write_text("no colon here\n")
    with pytest.raises(ConfigError) as caught:
        UsersFile(path)
    assert caught.value.reference == "users-file-invalid"
