"""A route's settings from its configuration: policy, sealing, pixels, the re-identifier (net/routes.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomcloak.errors import ConfigError, KeyError_
from dicomcloak.keys import ProjectKey, load_key_file, write_key_file
from dicomcloak.keys.cms import make_owner
from dicomcloak.keys.sealing import make_sealer
from dicomcloak.net.config import DeidRoute, Peer, ReidRoute
from dicomcloak.net.routes import (
    build_reidentifier,
    close_reidentifier,
    project_keyring,
    route_pixel_settings,
    route_policy,
    route_seal_settings,
)
from dicomcloak.pixels.model import PixelMode
from dicomcloak.standard.table import Option
from dicomcloak.vault import Vault

PEER = Peer("ARCHIVE", "127.0.0.1", 11113)


@pytest.fixture(scope="module")
def owner_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """owner.key.pem (protected by a passphrase) and owner.cert.pem, sealer.key.pem and sealer.cert.pem."""
    directory = tmp_path_factory.mktemp("owner")
    key_pem, cert_pem = make_owner(passphrase=b"correct horse battery staple")
    (directory / "owner.key.pem").write_bytes(key_pem)
    (directory / "owner.cert.pem").write_bytes(cert_pem)
    sealer_key, sealer_cert = make_sealer()
    (directory / "sealer.key.pem").write_bytes(sealer_key)
    (directory / "sealer.cert.pem").write_bytes(sealer_cert)
    return directory


def test_policy_takes_the_route_options_and_file(tmp_path: Path) -> None:
    policy_file = tmp_path / "site.toml"
    policy_file.write_text('[policy]\noptions = ["retain-device-identity"]\n')
    route = DeidRoute("out", PEER, options=("retain-uids",), policy=policy_file)
    assert route_policy(route).options == {Option.RETAIN_UIDS, Option.RETAIN_DEVICE_IDENTITY}
    assert route_policy(ReidRoute("back", PEER, vault="sqlite://")).options == frozenset()


def test_pixels_mode_wins_over_the_policy_and_bad_modes_are_config_errors(tmp_path: Path) -> None:
    policy_file = tmp_path / "site.toml"
    policy_file.write_text('[pixels]\nmode = "quarantine"\n')
    quarantine = PixelMode.QUARANTINE
    assert route_pixel_settings(DeidRoute("out", PEER, policy=policy_file)).mode is quarantine
    off = DeidRoute("out", PEER, policy=policy_file, pixels="off")
    assert route_pixel_settings(off).mode is PixelMode.OFF
    assert route_pixel_settings(DeidRoute("out", PEER)).mode is PixelMode.AUTO  # deid's default
    with pytest.raises(ConfigError) as raised:
        route_pixel_settings(DeidRoute("out", PEER, pixels="sometimes"))
    assert raised.value.reference == "route-pixels-invalid"


def test_seal_settings_read_certificates_sealer_key_and_the_key_ring(
    tmp_path: Path, key_file: Path, owner_files: Path
) -> None:
    key = load_key_file(key_file)
    assert route_seal_settings(DeidRoute("out", PEER), key, key_file) is None
    route = DeidRoute(
        "out", PEER, recipients=(owner_files / "owner.cert.pem",), sealer_key=owner_files / "sealer.key.pem",
        vault=f"sqlite:///{tmp_path / 'vault.db'}",
    )
    seal = route_seal_settings(route, key, key_file)
    assert seal is not None
    assert seal.recipients == ((owner_files / "owner.cert.pem").read_bytes(),)
    assert seal.sealer_key == (owner_files / "sealer.key.pem").read_bytes()
    assert seal.keyring is not None and seal.keyring.project == key
    unsigned = DeidRoute("out", PEER, recipients=(owner_files / "owner.cert.pem",))
    with pytest.raises(ConfigError) as raised:
        route_seal_settings(unsigned, key, key_file)
    assert raised.value.reference == "sealer-key-required"
    bad = DeidRoute("out", PEER, recipients=(owner_files / "sealer.key.pem",), sealer_key=route.sealer_key)
    with pytest.raises(KeyError_):
        route_seal_settings(bad, key, key_file)


def test_keyring_must_hold_the_gateways_key(
    tmp_path: Path, key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DICOMCLOAK_KEY_FILE", raising=False)
    monkeypatch.delenv("DICOMCLOAK_WRAPPING_KEYS", raising=False)
    key = load_key_file(key_file)
    assert project_keyring(key, key_file).project == key
    with pytest.raises(KeyError_) as raised:
        project_keyring(key)
    assert raised.value.reference == "key-required"
    monkeypatch.setenv("DICOMCLOAK_KEY_FILE", str(key_file))
    assert project_keyring(key).project == key  # the environment's key file
    other = tmp_path / "other.key"
    write_key_file(other, ProjectKey.generate())
    with pytest.raises(KeyError_) as raised:
        project_keyring(key, other)
    assert raised.value.reference == "key-mismatch"


def test_reidentifier_embedded_with_passphrase_from_the_environment(
    owner_files: Path, key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = load_key_file(key_file)
    route = ReidRoute(
        "back", PEER, owner_key=owner_files / "owner.key.pem", owner_key_passphrase_env="OWNER_PASS",
        trusted_sealers=(owner_files / "sealer.cert.pem",), accept_unverified=True,
    )
    monkeypatch.delenv("OWNER_PASS", raising=False)
    with pytest.raises(KeyError_) as raised:
        build_reidentifier(route, key)
    assert raised.value.reference == "private-key-passphrase"
    monkeypatch.setenv("OWNER_PASS", "wrong passphrase")
    with pytest.raises(KeyError_):
        build_reidentifier(route, key)
    monkeypatch.setenv("OWNER_PASS", "correct horse battery staple")
    reidentifier = build_reidentifier(route, key)
    assert reidentifier.owner is not None and reidentifier.vault is None
    assert reidentifier.accept_unverified and reidentifier.trusted is not None
    close_reidentifier(reidentifier)


def test_reidentifier_vault_mode_and_mode_errors(tmp_path: Path, key_file: Path, owner_files: Path) -> None:
    key = load_key_file(key_file)
    url = f"sqlite:///{tmp_path / 'vault.db'}"
    reidentifier = build_reidentifier(ReidRoute("back", PEER, vault=url), key, key_file)
    assert isinstance(reidentifier.vault, Vault) and reidentifier.owner is None
    close_reidentifier(reidentifier)
    for route in (
        ReidRoute("back", PEER),
        ReidRoute("back", PEER, vault=url, owner_key=owner_files / "owner.key.pem"),
        ReidRoute("back", PEER, vault=url, trusted_sealers=(owner_files / "sealer.cert.pem",)),
    ):
        with pytest.raises(ConfigError) as raised:
            build_reidentifier(route, key, key_file)
        assert raised.value.reference == "reid-mode"
