"""Keys at rest: ``keys cert`` protects owner.key.pem with a passphrase; keys open to others are warned of.

Issue 13, item 5. The passphrase comes from ``DICOMCLOAK_OWNER_KEY_PASSPHRASE``
or from a prompt on a real terminal (a pseudo-terminal here, as a person at a
shell would have), never from the command line; ``--no-passphrase`` writes the
key unprotected with a warning; without any of them and no terminal, ``keys
cert`` refuses. ``reid --private-key`` opens a protected key the same two ways.
A project key or private key that its group or others can read is used, with
one warning line on stderr that names the file, never its content.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from dicomcloak.keys.cms import owner_key_encrypted

RunCli = Callable[..., subprocess.CompletedProcess[str]]
CLI = Path(sys.executable).with_name("dicomcloak")
ENV = "DICOMCLOAK_OWNER_KEY_PASSPHRASE"
PASSPHRASE = "copper kettle winter lantern"


PROMPTS = (b"passphrase for ", b"Repeat for confirmation")


def _on_terminal(args: list[str | Path], answers: list[str], cwd: Path) -> tuple[int, str]:
    """Run the CLI on a pseudo-terminal, typing each answer at its hidden prompt; (exit code, output).

    An answer is typed once its prompt is shown and the terminal has stopped
    echoing: typed earlier, the prompt's own flush of pending input would
    discard it, as it would a person's type-ahead.
    """
    controller, terminal = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in (ENV, "DICOMCLOAK_KEY_FILE")}
    process = subprocess.Popen(
        [str(CLI), *map(str, args)], stdin=terminal, stdout=terminal, stderr=terminal,
        cwd=cwd, env=env, start_new_session=True,
    )
    os.close(terminal)
    shown = bytearray()
    try:
        for number, answer in enumerate(answers, 1):
            _read(controller, shown, lambda n=number: _prompts(shown) >= n and not _echoing(controller))
            os.write(controller, answer.encode() + b"\n")
        process.wait(timeout=120)
        _read(controller, shown, None)
    finally:
        os.close(controller)
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, shown.decode("utf-8", "replace")


def _prompts(shown: bytearray) -> int:
    return sum(shown.count(prompt) for prompt in PROMPTS)


def _echoing(fd: int) -> bool:
    return bool(termios.tcgetattr(fd)[3] & termios.ECHO)


def _read(fd: int, shown: bytearray, until: Callable[[], bool] | None) -> None:
    """Add what the terminal shows to ``shown`` until ``until()`` holds (None: until it is closed)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (until is not None and until()):
        if select.select([fd], [], [], 0.01)[0]:
            chunk = _drain(fd)
            if not chunk:
                return
            shown += chunk
    assert until is None or until(), f"no prompt came: {bytes(shown)!r}"


def _drain(fd: int) -> bytes:
    seen = b""
    while select.select([fd], [], [], 0)[0]:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    return seen


def _opens_with(key: Path, passphrase: bytes | None) -> bool:
    try:
        serialization.load_pem_private_key(key.read_bytes(), password=passphrase)
    except (TypeError, ValueError):
        return False
    return True


def test_keys_cert_refuses_without_a_passphrase_source(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("keys", "cert", "--out-dir", tmp_path / "owner")
    assert result.returncode == 2
    assert result.stderr.startswith("error[passphrase-required]: ")
    assert ENV in result.stderr and "--no-passphrase" in result.stderr
    assert not (tmp_path / "owner").exists()


def test_keys_cert_protects_the_key_with_the_environments_passphrase(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("keys", "cert", "--out-dir", tmp_path / "owner", env={ENV: PASSPHRASE})
    assert result.returncode == 0, result.stderr
    key = tmp_path / "owner" / "owner.key.pem"
    assert owner_key_encrypted(key.read_bytes())
    assert key.stat().st_mode & 0o777 == 0o600
    assert _opens_with(key, PASSPHRASE.encode()) and not _opens_with(key, None)
    assert "protected by a passphrase" in result.stdout
    assert PASSPHRASE not in result.stdout + result.stderr


def test_keys_cert_asks_twice_on_a_terminal(tmp_path: Path) -> None:
    answers = [PASSPHRASE, PASSPHRASE]
    code, transcript = _on_terminal(["keys", "cert", "--out-dir", "owner"], answers, tmp_path)
    assert code == 0, transcript
    assert transcript.count("passphrase for owner/owner.key.pem") >= 1 and "Repeat" in transcript
    assert PASSPHRASE not in transcript  # nothing typed is echoed
    assert _opens_with(tmp_path / "owner" / "owner.key.pem", PASSPHRASE.encode())


def test_keys_cert_on_a_terminal_refuses_two_different_answers(tmp_path: Path) -> None:
    answers = [PASSPHRASE, "something else entirely", PASSPHRASE, PASSPHRASE]
    code, transcript = _on_terminal(["keys", "cert", "--out-dir", "owner"], answers, tmp_path)
    assert code == 0, transcript
    assert "do not match" in transcript
    assert _opens_with(tmp_path / "owner" / "owner.key.pem", PASSPHRASE.encode())


def test_no_passphrase_writes_an_unprotected_key_with_a_warning(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli(
        "keys", "cert", "--out-dir", tmp_path / "owner", "--no-passphrase", env={ENV: PASSPHRASE}
    )
    assert result.returncode == 0, result.stderr
    key = tmp_path / "owner" / "owner.key.pem"
    assert _opens_with(key, None) and not owner_key_encrypted(key.read_bytes())
    (warning,) = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert "not protected by a passphrase" in warning


def test_an_empty_passphrase_is_refused(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("keys", "cert", "--out-dir", tmp_path / "owner", env={ENV: ""})
    assert result.returncode == 2 and result.stderr.startswith("error[passphrase-empty]: ")
    assert not (tmp_path / "owner").exists()


def _sealing(owner: Path) -> list[str | Path]:
    """deid's embedded sealing: to the owner's certificate, signed by the sealer key beside it."""
    return ["--recipient", owner / "owner.cert.pem", "--sealer-key", owner / "sealer.key.pem"]


def _trusting(owner: Path) -> list[str | Path]:
    """reid's trust in the sealer beside the owner's key."""
    return ["--trusted-sealer", owner / "sealer.cert.pem"]


@pytest.fixture
def sealed(run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path) -> Path:
    """A de-identified tree sealed to a passphrase-protected owner key made by ``keys cert``."""
    assert run_cli("keys", "cert", "--out-dir", tmp_path / "owner", env={ENV: PASSPHRASE}).returncode == 0
    assert run_cli("keys", "sealer", "--out-dir", tmp_path / "owner").returncode == 0
    result = run_cli("deid", dicom_tree, "--out", tmp_path / "sealed", "--key", key_file, "-j", "1",
                     *_sealing(tmp_path / "owner"))
    assert result.returncode == 0, result.stderr
    return tmp_path / "sealed"


def test_reid_opens_a_protected_key_with_the_environments_passphrase(
    run_cli: RunCli, sealed: Path, tmp_path: Path
) -> None:
    key = tmp_path / "owner" / "owner.key.pem"
    result = run_cli("reid", sealed, "--out", tmp_path / "back", "--private-key", key, "--json",
                     *_trusting(tmp_path / "owner"), env={ENV: PASSPHRASE})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["written"] == 6


@pytest.mark.parametrize("env", [{}, {ENV: "not the passphrase"}])
def test_reid_without_the_right_passphrase_stops_before_anything(
    run_cli: RunCli, sealed: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    key = tmp_path / "owner" / "owner.key.pem"
    result = run_cli("reid", sealed, "--out", tmp_path / "back", "--private-key", key,
                     *_trusting(tmp_path / "owner"), env=env)
    assert result.returncode == 3
    assert result.stderr.startswith("error[private-key-passphrase]: ")
    assert "not the passphrase" not in result.stderr
    assert not (tmp_path / "back").exists()


def test_reid_asks_for_the_passphrase_on_a_terminal(sealed: Path, tmp_path: Path) -> None:
    args: list[str | Path] = ["reid", sealed, "--out", "back", "--private-key", "owner/owner.key.pem",
                              *_trusting(Path("owner"))]
    code, transcript = _on_terminal(args, [PASSPHRASE], tmp_path)
    assert code == 0, transcript
    assert PASSPHRASE not in transcript
    assert len(list((tmp_path / "back").rglob("*.dcm"))) == 6


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning: ")]


def test_a_key_file_others_can_read_is_warned_of_once(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    key_file.chmod(0o644)
    vault = f"sqlite:///{tmp_path / 'vault.db'}"
    args = ("deid", dicom_tree, "--out", tmp_path / "out", "--key", key_file, "-j", "1", "--vault", vault)
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    (warning,) = _warnings(result.stderr)  # one line, though the file is read for the key and the key ring
    assert str(key_file) in warning and "0644" in warning and "chmod 600" in warning
    secret = json.loads(key_file.read_text())["secret"]
    assert secret not in result.stderr + result.stdout
    key_file.chmod(0o600)
    again = run_cli(*args)
    assert again.returncode == 0 and _warnings(again.stderr) == []


def test_a_private_key_others_can_read_is_warned_of(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    assert run_cli("keys", "cert", "--out-dir", tmp_path / "owner", "--no-passphrase").returncode == 0
    assert run_cli("keys", "sealer", "--out-dir", tmp_path / "owner").returncode == 0
    key = tmp_path / "owner" / "owner.key.pem"
    result = run_cli("deid", dicom_tree, "--out", tmp_path / "sealed", "--key", key_file, "-j", "1",
                     *_sealing(tmp_path / "owner"))
    assert result.returncode == 0, result.stderr
    assert _warnings(result.stderr) == []
    key.chmod(0o640)
    back = run_cli("reid", tmp_path / "sealed", "--out", tmp_path / "back", "--private-key", key,
                   *_trusting(tmp_path / "owner"))
    assert back.returncode == 0, back.stderr
    (warning,) = _warnings(back.stderr)
    assert "private key" in warning and str(key) in warning and "0640" in warning
    assert "PRIVATE KEY" not in back.stderr


def test_a_sealer_key_others_can_read_is_warned_of(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    assert run_cli("keys", "cert", "--out-dir", tmp_path / "owner", "--no-passphrase").returncode == 0
    assert run_cli("keys", "sealer", "--out-dir", tmp_path / "owner").returncode == 0
    sealer = tmp_path / "owner" / "sealer.key.pem"
    sealer.chmod(0o644)
    result = run_cli("deid", dicom_tree, "--out", tmp_path / "sealed", "--key", key_file, "-j", "1",
                     *_sealing(tmp_path / "owner"))
    assert result.returncode == 0, result.stderr
    (warning,) = _warnings(result.stderr)
    assert "sealer key" in warning and str(sealer) in warning and "0644" in warning
    assert "PRIVATE KEY" not in result.stderr
