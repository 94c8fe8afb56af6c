"""The façades: Deidentifier (instance in, Outcome out), Sealer and Reidentifier (architecture.md, 3)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from pydicom.dataset import Dataset

from dicomcloak.engine.deidentify import deidentify
from dicomcloak.engine.outcome import Outcome
from dicomcloak.keys import ProjectKey, Pseudonymizer
from dicomcloak.policy.model import Policy
from dicomcloak.sanitize import Sanitized, sanitize_dataset

if TYPE_CHECKING:
    from cryptography import x509
    from pydicom.dataelem import DataElement

    from dicomcloak.engine.reidentify import Restored
    from dicomcloak.engine.sealcontent import Signer
    from dicomcloak.keys.cms import Envelope, OwnerKey
    from dicomcloak.keys.sealing import TrustedSealers

__all__ = ["Deidentifier", "Reidentified", "Reidentifier", "Sealed", "Sealer", "VaultReader"]


class Deidentifier:
    """Sanitize, then de-identify, datasets under one policy, one key and one pseudonym domain.

    Parameters
    ----------
    policy:
        What to do with each attribute (:class:`dicomcloak.policy.Policy`);
        ``policy.sanitize`` holds the sanitize stage's limits and choices.
    key:
        The project key; pseudonyms and UIDs are keyed by it.
    domain:
        The pseudonym domain (one per recipient).
    sanitize:
        Run the sanitize (CDR) stage first (architecture.md decision 5). Turn it off
        only for datasets that were already sanitized.

    Examples
    --------
    >>> deid = Deidentifier(Policy(), ProjectKey.generate(ephemeral=True))
    >>> outcome = deid.deidentify(dataset)        # doctest: +SKIP
    >>> outcome.dataset.PatientIdentityRemoved    # doctest: +SKIP
    'YES'
    """

    def __init__(
        self, policy: Policy, key: ProjectKey, domain: str = "default", *, sanitize: bool = True
    ) -> None:
        self.policy = policy
        self.pseudonymizer = Pseudonymizer(key, domain)
        self.sanitize_first = sanitize

    def sanitize(self, dataset: Dataset, *, then_deidentify: bool = True) -> Sanitized:
        """Run the sanitize stage alone; ``dataset`` is not changed.

        With ``then_deidentify`` (the default) elements this policy removes are
        left for :meth:`deidentify_sanitized` to remove, see ``docs/security.md``.

        Raises
        ------
        UnsafeContentError, ReadLimitError, MalformedError
            The instance is quarantined; the reference is the reason code.
        """
        return sanitize_dataset(dataset, self.policy.sanitize, self.policy, moot=then_deidentify)

    def deidentify(self, dataset: Dataset) -> Outcome:
        """Return the sanitized, de-identified copy of ``dataset``; ``dataset`` is not changed.

        The Outcome's changes include the sanitize stage's (source ``sanitize:<reason>``).
        """
        if not self.sanitize_first:
            return deidentify(dataset, self.policy, self.pseudonymizer)
        return self.deidentify_sanitized(self.sanitize(dataset))

    def deidentify_sanitized(self, sanitized: Sanitized) -> Outcome:
        """De-identify the result of :meth:`sanitize`; the Outcome carries both stages' changes.

        Paths of both stages address the input dataset: the sanitizer never
        removes or reorders sequence items.
        """
        outcome = deidentify(sanitized.dataset, self.policy, self.pseudonymizer)
        if not sanitized.changes:
            return outcome
        changes = tuple(sorted((*sanitized.changes, *outcome.changes), key=lambda change: change.path))
        return Outcome(outcome.dataset, changes, outcome.patient_pseudonym, outcome.mapped)


@dataclass(frozen=True)
class Sealed:
    """What sealing one instance produced.

    Attributes
    ----------
    payload:
        The encoded Modified Attributes Sequence (0400,0550): the vault record's plaintext.
    uid_pairs:
        (pseudonym, original) for every replaced UID and keyed pseudonym, for the vault's map.
    captured:
        How many top-level attributes were sealed.
    embedded:
        Whether an Encrypted Attributes Sequence is (or, after :meth:`Sealer.capture`, is to be)
        added to the de-identified data set.
    """

    payload: bytes
    uid_pairs: tuple[tuple[str, str], ...]
    captured: int
    embedded: bool


class Sealer:
    """Seal the originals of what de-identification changed (PS3.15 E.1.1), embedded and/or for a vault.

    An embedded seal is bound to the de-identified instance it sits in (its
    SOP Instance UID and binding digest, :mod:`dicomcloak.io.binding`) and
    signed by ``signer``, inside the encrypted content
    (:mod:`dicomcloak.engine.sealcontent`).

    Parameters
    ----------
    recipients:
        Certificates to seal to, in the file (embedded mode); none: no
        Encrypted Attributes Sequence is added.
    vault:
        Whether the vault's pseudonym map is wanted (computing it costs a little).
    signer:
        The sealer key (:class:`dicomcloak.keys.sealing.SealerKey`) that signs
        embedded seals; without one they are unsigned, and re-identification
        refuses them unless it accepts unverified seals.
    """

    def __init__(
        self,
        recipients: Sequence[x509.Certificate] = (),
        *,
        vault: bool = False,
        signer: Signer | None = None,
    ) -> None:
        self.recipients = tuple(recipients)
        self.vault = vault
        self.signer = signer
        self._envelope: Envelope | None = None
        if self.recipients:
            from dicomcloak.keys.cms import Envelope

            self._envelope = Envelope(self.recipients)  # recipients checked once, not per file

    def seal(
        self, source: Dataset, outcome: Outcome, *, extra_tags: Iterable[int] = (), pixels: bool = False
    ) -> Sealed:
        """Capture the originals of ``outcome``'s changes from ``source``; embed them when asked.

        ``outcome.dataset`` gains the Encrypted Attributes Sequence in embedded
        mode (it is the engine's fresh copy, not yet encoded), bound to the
        data set as it is now: encode it with :mod:`dicomcloak.io.writer`, and
        change nothing else first. The binding digest costs one encoding of
        the header; a batch encodes once instead (:meth:`capture`, then
        :meth:`seal_element` from :func:`dicomcloak.io.writer.encode_dataset_sealed`).
        ``extra_tags`` adds top-level attributes changed after de-identification.
        ``pixels``: the pixel stage cleaned ``outcome.dataset``'s pixels; what
        it changed is sealed too (:mod:`dicomcloak.engine.pixelnote`): the
        original Pixel Data whole in embedded mode, only the changed
        rectangles of a native image for a vault alone.
        """
        sealed = self.capture(source, outcome, extra_tags=extra_tags, pixels=pixels)
        if self._envelope is not None:
            from dicomcloak.engine.embedded import embed
            from dicomcloak.io.binding import binding_digest

            binding = binding_digest(outcome.dataset)
            embed(outcome.dataset, sealed.payload, self._envelope, binding=binding, signer=self.signer)
        return sealed

    def capture(
        self, source: Dataset, outcome: Outcome, *, extra_tags: Iterable[int] = (), pixels: bool = False
    ) -> Sealed:
        """Capture the originals of ``outcome``'s changes from ``source``; nothing is embedded yet."""
        payload, captured = self._capture(source, outcome, extra_tags, pixels)
        pairs = outcome.replaced if self.vault else ()  # recorded by the engine as it made them
        return Sealed(payload, pairs, captured, self._envelope is not None)

    def _capture(
        self, source: Dataset, outcome: Outcome, extra_tags: Iterable[int], pixels: bool
    ) -> tuple[bytes, int]:
        if not pixels:
            from dicomcloak.engine.originals import capture_encoded

            return capture_encoded(source, outcome.changes, extra_tags)
        from dicomcloak.engine.pixelnote import capture_cleaned

        whole = self._envelope is not None  # an embedded seal carries the original Pixel Data whole
        return capture_cleaned(source, outcome.changes, outcome.dataset, extra_tags, whole=whole)

    def seal_element(self, sealed: Sealed, instance: str, binding: bytes) -> DataElement:
        """The Encrypted Attributes Sequence of ``sealed``, bound to ``instance`` and its ``binding`` digest.

        Raises
        ------
        SealError
            ``seal-no-recipient`` when this sealer has no recipient.
        """
        from dicomcloak.engine.embedded import seal_element

        if self._envelope is None:
            from dicomcloak.errors import SealError

            raise SealError("no recipient certificate to seal to", reference="seal-no-recipient")
        envelope, signer = self._envelope, self.signer
        return seal_element(sealed.payload, envelope, instance=instance, binding=binding, signer=signer)


class VaultReader(Protocol):
    """What re-identification needs from a vault (``dicomcloak.vault.Vault`` provides it)."""

    def open_record(self, study: str, instance: str, binding: bytes | None = None) -> tuple[bytes, bool]:
        """The verified payload sealed for (pseudonymous study, instance) and the output ``binding`` digests.

        Also whether the record was bound to that output (False: sealed before
        records were bound). ``SealError`` ``vault-record-mismatch`` when the
        instance's records were all made for other objects.
        """

    def lookup(self, pseudonym: str) -> str | None:
        """The original of a pseudonym UID or ID, or None."""


@dataclass(frozen=True)
class Reidentified:
    """A re-identified data set; ``mode`` is ``embedded``, ``vault`` or ``uid-map``; counts, never values.

    ``verified``: the originals are authenticated: an embedded seal signed by
    a trusted sealer (``sealer``, its fingerprint), or a vault record (AES-GCM
    under the owner's key). ``bound``: the originals are known to be this
    object's: a vault record bound to this output (its binding digest), or an
    embedded seal bound to this instance (its SOP Instance UID and binding
    digest); False for records and seals made before they were bound, which
    restore only as before (a vault record) or when unverified seals are
    accepted (an embedded seal).
    """

    dataset: Dataset
    mode: str
    restored: tuple[int, ...]
    removed: tuple[int, ...]
    mapped: int
    verified: bool
    bound: bool = True
    sealer: bytes = b""


_OUR_METHOD = "dicomcloak"


class Reidentifier:
    """Re-identify de-identified data sets: from their Encrypted Attributes Sequence or from the vault.

    Parameters
    ----------
    owner:
        The recipient's private key and certificate (embedded mode).
    vault:
        An open vault (vault mode), also used for objects made later on
        de-identified data, through its pseudonym map.
    trusted:
        The sealers whose signed embedded seals are restored
        (:func:`dicomcloak.keys.sealing.load_trusted_sealers`).
    accept_unverified:
        Also restore embedded seals no trusted sealer signed: unsigned, signed
        by another key, made before seals were signed, or made by other
        PS3.15 tools (e.g. ``gdcmanon``); off by default: fail closed. A seal
        made for another instance is refused even so.
    """

    def __init__(
        self,
        owner: OwnerKey | None = None,
        vault: VaultReader | None = None,
        *,
        accept_unverified: bool = False,
        trusted: TrustedSealers | None = None,
    ) -> None:
        from dicomcloak.errors import UsageError

        if (owner is None) == (vault is None):
            raise UsageError("re-identify with either a private key or a vault", reference="reid-mode")
        self.owner = owner
        self.vault = vault
        self.accept_unverified = accept_unverified
        self.trusted = trusted

    def reidentify(self, dataset: Dataset, *, as_read: Dataset | None = None) -> Reidentified:
        """Return the re-identified copy of ``dataset`` (not modified); fail closed with a SealError.

        A vault record or an embedded seal restores only onto the output it was
        made for: its binding digest (:mod:`dicomcloak.io.binding`) is taken
        from ``as_read``, the file as read before any sanitizing (default:
        ``dataset``); another object is refused with ``vault-record-mismatch``
        or ``seal-mismatch``.
        """
        from dicomcloak.engine.originals import decode_modified
        from dicomcloak.engine.reidentify import remap, restore
        from dicomcloak.io.binding import binding_digest

        if self.owner is not None:
            return self._embedded(dataset, dataset if as_read is None else as_read)
        assert self.vault is not None  # guaranteed by __init__
        if _deidentified_by_us(dataset):
            study, instance = str(dataset.get("StudyInstanceUID", "")), str(dataset.get("SOPInstanceUID", ""))
            binding = binding_digest(dataset if as_read is None else as_read)
            payload, bound = self.vault.open_record(study, instance, binding)
            return _done(restore(dataset, decode_modified(payload)), "vault", True, bound)
        out, mapped = remap(dataset, self.vault.lookup)
        if not mapped:
            from dicomcloak.errors import SealError

            raise SealError(
                "no UID or identifier of this object is known to the vault",
                reference="vault-nothing-mapped",
                hint="the object does not reference data de-identified with this vault",
            )
        return Reidentified(out, "uid-map", (), (), mapped, True)

    def _embedded(self, dataset: Dataset, as_read: Dataset) -> Reidentified:
        from dicomcloak.engine.embedded import open_embedded
        from dicomcloak.engine.reidentify import restore
        from dicomcloak.io.binding import binding_digest

        assert self.owner is not None  # the caller's mode
        opened = open_embedded(
            as_read, self.owner, binding=lambda: binding_digest(as_read), trusted=self.trusted,
            accept_unverified=self.accept_unverified,
        )
        restored = restore(dataset, opened.item)
        return Reidentified(
            restored.dataset, "embedded", restored.restored, restored.removed, 0, opened.verified,
            opened.bound, opened.sealer,
        )


def _deidentified_by_us(dataset: Dataset) -> bool:
    method = dataset.get("DeidentificationMethod", "")
    first = method[0] if not isinstance(method, str) and method else method
    return str(first).startswith(_OUR_METHOD)


def _done(restored: Restored, mode: str, verified: bool, bound: bool = True) -> Reidentified:
    return Reidentified(restored.dataset, mode, restored.restored, restored.removed, 0, verified, bound)
