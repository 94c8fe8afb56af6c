"""The per-file step of ``reid``, and what a worker process needs to run it: keys, context, chunks.

``reid --jobs N`` runs this step in the project's process pool
(:mod:`dicomcloak.batch.pool`), as ``deid`` does (architecture.md decision 8):
each worker builds its :class:`~dicomcloak.api.Reidentifier` once, in the
pool's initializer, from :class:`EmbeddedKeys` or :class:`VaultKeys` (the key
material crosses to the worker there, never on argv, in the environment or in
a file), reads and writes its files itself, and returns small results.
Outputs do not depend on the job count: restoring is a function of the file
and the keys, and each output's path mirrors its input's.

Every restore is audited where it was before: a worker opens its own
connection to the vault, and each record it opens, each pseudonym it looks
up, appends its event to the vault's hash-chained log (docs/vault.md; the log
serializes concurrent appends). Embedded seals open with the owner's private
key in memory; the run's own event is the parent's (``cli/reid.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from dicomcloak.api import Reidentified, Reidentifier
from dicomcloak.batch.selection import Selection
from dicomcloak.batch.worker import ChangeKey, FileResult, Status
from dicomcloak.errors import DicomcloakError, InputError, KeyError_, ProcessingError
from dicomcloak.io.grouped import GroupedWriter
from dicomcloak.io.inputs import InputItem
from dicomcloak.io.layout import mirror_relpath
from dicomcloak.io.quarantine import quarantine
from dicomcloak.io.reader import ReadLimits, read_dataset, read_input
from dicomcloak.io.staging import Tree
from dicomcloak.io.writer import encode_dataset_parts
from dicomcloak.policy.model import Policy
from dicomcloak.sanitize import sanitize_dataset

if TYPE_CHECKING:
    from dicomcloak.keys import Keyring
    from dicomcloak.keys.cms import OwnerKey
    from dicomcloak.vault import Vault

__all__ = [
    "SEALER",
    "TRUST",
    "EmbeddedKeys",
    "FileTask",
    "ReidFile",
    "RestoreContext",
    "RestoreSettings",
    "VaultKeys",
    "restore_chunk",
    "restore_data",
]

#: One task: an input item and its index in the walk's order.
FileTask = tuple[int, InputItem]


@dataclass(frozen=True)
class EmbeddedKeys:
    """The owner's private key and certificate, and the trusted sealers: embedded mode, picklable.

    ``private_key`` is the key as unencrypted PKCS#8 DER (it was decrypted once,
    in the parent, with its passphrase); it never leaves memory: it reaches
    the workers through the pool's initializer (a fork's copy of the parent's
    memory, or the pool's pipe). ``trusted`` are the sealers' PEM certificates.
    """

    private_key: bytes = field(repr=False)
    certificate: bytes
    trusted: tuple[bytes, ...] = ()
    accept_unverified: bool = False

    @classmethod
    def of(cls, owner: OwnerKey, trusted: Sequence[bytes], *, accept_unverified: bool) -> EmbeddedKeys:
        """The picklable form of a loaded owner key and the trusted sealers' certificates."""
        from cryptography.hazmat.primitives import serialization

        der = owner.key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        certificate = owner.certificate.public_bytes(serialization.Encoding.DER)
        return cls(der, certificate, tuple(trusted), accept_unverified)

    def open(self) -> tuple[Reidentifier, Vault | None]:
        """A re-identifier for these keys (no vault to close)."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        from dicomcloak.keys.cms import OwnerKey, load_certificate
        from dicomcloak.keys.sealing import load_trusted_sealers

        key = serialization.load_der_private_key(self.private_key, None)
        if not isinstance(key, rsa.RSAPrivateKey):  # load_owner_key accepted only RSA keys in the parent
            raise KeyError_("the owner's private key is not an RSA key", reference="private-key-invalid")
        owner = OwnerKey(key, load_certificate(self.certificate, "the owner certificate"))
        trusted = load_trusted_sealers((pem, "--trusted-sealer") for pem in self.trusted)
        return Reidentifier(owner, accept_unverified=self.accept_unverified, trusted=trusted), None


@dataclass(frozen=True)
class VaultKeys:
    """The vault's URL and the project's key ring: vault mode, picklable (each worker opens the vault)."""

    url: str = field(repr=False)  # it may hold a password
    keyring: Keyring
    wait: float | None = None

    def open(self) -> tuple[Reidentifier, Vault | None]:
        """A re-identifier on a connection of its own to the vault, and that vault (closed by the caller)."""
        from dicomcloak.vault import Vault

        vault = Vault.open(self.url, self.keyring) if self.wait is None else Vault.open(
            self.url, self.keyring, wait=self.wait
        )
        return Reidentifier(vault=vault), vault


@dataclass(frozen=True)
class RestoreSettings:
    """What each worker needs for the run, fixed; picklable (sent once per worker)."""

    out_dir: Path
    quarantine_dir: Path
    policy: Policy
    several_roots: bool = False
    selection: Selection = field(default_factory=Selection)

    @property
    def limits(self) -> ReadLimits:
        """The reading limits in force (the policy's ``[sanitize.limits]``)."""
        return self.policy.sanitize.limits


class ReidFile(NamedTuple):
    """What became of one input: its result (None: not selected) and its counts per mode and trust."""

    entry: int  # the input's index in the walk's order
    result: FileResult | None
    modes: tuple[str, ...] = ()


@dataclass
class RestoreContext:
    """A process's long-lived state for a run: the settings, its re-identifier, its writer, its vault."""

    settings: RestoreSettings
    reidentifier: Reidentifier
    writer: GroupedWriter
    vault: Vault | None = None

    @classmethod
    def build(
        cls, keys: EmbeddedKeys | VaultKeys, settings: RestoreSettings, *, background: bool = False
    ) -> RestoreContext:
        """Open the keys (a vault connection of this process's own) and a writer into the output."""
        reidentifier, vault = keys.open()
        writer = GroupedWriter(background=background, tree=Tree(settings.out_dir))
        return cls(settings, reidentifier, writer, vault)

    def close(self) -> None:
        """Commit the last group of outputs, then close the vault (whatever happened to the group)."""
        try:
            self.writer.close()
        finally:
            if self.vault is not None:
                self.vault.close()
                self.vault = None


def restore_chunk(tasks: Sequence[FileTask], ctx: RestoreContext) -> list[ReidFile]:
    """Restore each input of a chunk; a seal failure stops the chunk (fail closed), as it stops the run."""
    return [restore_file(index, item, ctx) for index, item in tasks]


def restore_file(index: int, item: InputItem, ctx: RestoreContext) -> ReidFile:
    """Read one input; restore and write it, or count it not selected, or quarantine it.

    Raises
    ------
    SealError
        Its originals cannot be opened: nothing is written for it, and the run stops.
    OutputError, OSError
        The output or the quarantine cannot be written.
    """
    settings = ctx.settings
    try:
        data = read_input(item, settings.limits)
        if not settings.selection.selects_data(data, settings.limits):
            return ReidFile(index, None)
        payload, result = restore_data(data, ctx.reidentifier, settings.policy)
    except InputError as error:
        return ReidFile(index, _quarantined(index, item, error, settings))
    except (DicomcloakError, OSError):
        raise  # SealError among them: fail closed, stop the run
    except Exception as error:  # noqa: BLE001 - one hostile input must not stop the run
        wrapped = ProcessingError(f"unexpected {type(error).__name__}", reference="internal-error")
        return ReidFile(index, _quarantined(index, item, wrapped, settings))
    ctx.writer.submit(settings.out_dir / mirror_relpath(item, settings.several_roots), payload)
    changes = _changes(result)
    written = FileResult(
        index, Status.WRITTEN, "", sum(c for _, c in changes), "", len(data), sum(map(len, payload)), changes
    )
    return ReidFile(index, written, _modes(result))


#: Summary counts of files restored from originals not known to be theirs (a vault record or an embedded
#: seal made before they were bound), or from embedded seals no trusted sealer signed (--accept-unverified).
TRUST = ("unbound", "unverified")
#: Files per signing sealer (the first 16 hex digits of its fingerprint): who sealed what was restored.
SEALER = "sealer:"


def _modes(result: Reidentified) -> tuple[str, ...]:
    """The counters one restored file adds to: its mode, what was not proven, its sealer."""
    flags = (result.bound, result.verified)
    names = [result.mode, *(name for name, flag in zip(TRUST, flags, strict=True) if not flag)]
    if result.sealer:
        names.append(SEALER + result.sealer.hex()[:16])
    return tuple(names)


def restore_data(data: bytes, reidentifier: Reidentifier, policy: Policy) -> tuple[list[bytes], Reidentified]:
    """Re-identify one encoded instance: sanitize, restore, encode; the per-instance step of ``reid``.

    Shared by ``reid`` and the gateway's re-identifying routes (docs/gateway.md).
    Raises :class:`~dicomcloak.errors.InputError` for an input to quarantine and
    :class:`~dicomcloak.errors.SealError` when its originals cannot be opened (fail closed).
    """
    limits = policy.sanitize.limits
    as_read = read_dataset(data, limits)
    sanitized = sanitize_dataset(as_read, policy.sanitize, policy)
    # A vault record is bound to the output it was made for: the file as read, before sanitizing.
    result = reidentifier.reidentify(sanitized.dataset, as_read=as_read)
    return encode_dataset_parts(result.dataset), result


def _quarantined(index: int, item: InputItem, error: InputError, settings: RestoreSettings) -> FileResult:
    quarantine(item, error, settings.quarantine_dir, max_bytes=settings.limits.max_quarantine_bytes)
    return FileResult(index, Status.QUARANTINED, error.reference)


def _changes(result: Reidentified) -> tuple[tuple[ChangeKey, int], ...]:
    """What was done, as report rows: restored tags (R), removed markers (X), mapped values (M)."""
    source = f"reid:{result.mode}"
    rows: list[tuple[ChangeKey, int]] = [(((tag,), "R", source), 1) for tag in result.restored]
    rows += [(((tag,), "X", "reid:deidentification-marker"), 1) for tag in result.removed]
    if result.mapped:
        rows.append((((), "M", source), result.mapped))
    return tuple(rows)


# -- the pool's worker functions (module level: they also cross a spawn boundary) ---------------------

_CONTEXT: RestoreContext | None = None  # one per worker process, set by the pool initializer


def init_worker(initarg: tuple[EmbeddedKeys | VaultKeys, RestoreSettings]) -> None:
    """Build this worker's context once: its re-identifier from the keys, its vault connection, its writer."""
    global _CONTEXT
    keys, settings = initarg
    _CONTEXT = RestoreContext.build(keys, settings, background=True)


def run_chunk(tasks: list[FileTask]) -> list[ReidFile]:
    """Restore one chunk in this worker."""
    if _CONTEXT is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("worker used before its initializer ran")
    return restore_chunk(tasks, _CONTEXT)


def close_worker() -> None:
    """Commit this worker's last group of outputs and close its vault; an error goes back to the parent."""
    global _CONTEXT
    if _CONTEXT is not None:
        context, _CONTEXT = _CONTEXT, None
        context.close()
