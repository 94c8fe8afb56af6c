"""The gateway as a Q/R SCU of the remote archive: C-FIND, and C-GET into a private scratch folder.

Only translated identifiers reach these functions (:mod:`dicomcloak.net.query`);
what they send is exactly what they are given. C-GET (PS3.4 C.4.3) brings the
de-identified instances back on the gateway's own association, so the remote
needs no route back to the gateway (no C-MOVE destination to configure).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, StoragePresentationContexts, build_context, build_role, evt
from pynetdicom.association import Association
from pynetdicom.presentation import PresentationContext
from pynetdicom.status import code_to_category

from dicomcloak.errors import DicomcloakError
from dicomcloak.net.config import Peer
from dicomcloak.net.tcp import no_delay
from dicomcloak.net.tls import client_tls_args

__all__ = [
    "FIND_MODELS",
    "GET_FOR_MOVE",
    "GET_MODELS",
    "MOVE_MODELS",
    "Fetched",
    "RemoteArchiveError",
    "remote_find",
    "remote_get",
]

# Patient Root and Study Root Query/Retrieve Information Models (PS3.4 C.6.1, C.6.2; UIDs in PS3.6 Table A-1).
FIND_MODELS = ("1.2.840.10008.5.1.4.1.2.1.1", "1.2.840.10008.5.1.4.1.2.2.1")
MOVE_MODELS = ("1.2.840.10008.5.1.4.1.2.1.2", "1.2.840.10008.5.1.4.1.2.2.2")
GET_MODELS = ("1.2.840.10008.5.1.4.1.2.1.3", "1.2.840.10008.5.1.4.1.2.2.3")
#: The C-GET model the remote is asked with for a C-MOVE of each model.
GET_FOR_MOVE = dict(zip(MOVE_MODELS, GET_MODELS, strict=True))
_PENDING = (0xFF00, 0xFF01)
_MAX_CONTEXTS = 128  # presentation contexts per association (PS3.8 9.3.2.2: IDs 1..255, odd)
#: Transfer syntaxes an original may come back in (PS3.5 Annex A): uncompressed, then the usual compressions.
_RESTORED_SYNTAXES = (
    "1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.1.99",
)


#: Transfer syntaxes a de-identified instance may be held in at the remote (the de-identification keeps the
#: input's, PS3.5 Annex A): each offered in a context of its own for a C-GET (:func:`_get_contexts`).
_HELD_SYNTAXES = (
    *_RESTORED_SYNTAXES, "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.2",
)


class RemoteArchiveError(DicomcloakError):
    """The remote archive could not be reached, or broke off the operation."""

    default_reference = "remote-unavailable"


@dataclass
class Fetched:
    """What a C-GET brought into the scratch folder: one file per instance, in arrival order."""

    files: list[tuple[Path, str, str]] = field(default_factory=list)  # (path, SOP class, transfer syntax)
    failed: int = 0  # sub-operations the remote reported failed

    def contexts(self) -> list[PresentationContext]:
        """Presentation contexts for sending these instances on, restored: one per SOP class and syntax.

        The syntaxes received come first; a restored instance whose pixels were
        cleaned gets its original transfer syntax back (engine/pixelnote.py), so
        the common ones follow, as far as the 128 contexts allow.
        """
        classes = dict.fromkeys(sop_class for _, sop_class, _ in self.files)
        received = [(sop_class, syntax) for _, sop_class, syntax in self.files]
        others = [(sop_class, syntax) for sop_class in classes for syntax in _RESTORED_SYNTAXES]
        pairs = list(dict.fromkeys([*received, *others]))[:_MAX_CONTEXTS]
        return [build_context(sop_class, [syntax]) for sop_class, syntax in pairs]


@contextmanager
def _association(
    remote: Peer, ae_title: str, contexts: list[PresentationContext], timeout: float, **kwargs: Any
) -> Iterator[Association]:
    ae = AE(ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    ae.requested_contexts = contexts
    assoc = ae.associate(
        remote.host, remote.port, ae_title=remote.ae_title, tls_args=client_tls_args(remote.tls, remote.host),
        **kwargs,
    )
    raw = getattr(getattr(assoc.dul, "socket", None), "socket", None)
    if raw is not None:
        no_delay(raw)
    if not assoc.is_established:
        _close_socket(assoc)
        raise RemoteArchiveError(
            f"cannot associate with the remote archive {remote.ae_title}",
            hint="check the query route's remote (AE title, host, port, TLS) and that it accepts the gateway",
        )
    try:
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()


def _checked(send: Callable[[Dataset, str], Iterator[Any]], identifier: Dataset, model: str) -> Iterator[Any]:
    """The responses of ``send``; a model the remote did not accept is a typed error, not a crash."""
    try:
        responses = send(identifier, model)
        first = next(responses, None)
    except ValueError:  # pynetdicom: no accepted presentation context for the model
        raise RemoteArchiveError(
            "the remote archive does not support this query/retrieve model",
            reference="remote-model-unsupported",
        ) from None
    if first is not None:
        yield first
        yield from responses


def _close_socket(assoc: Association) -> None:
    """pynetdicom leaves the socket of a refused or failed association open (as its C-MOVE SCP notes)."""
    socket = assoc.dul.socket
    if socket is not None:
        socket.close()


def remote_find(
    remote: Peer, ae_title: str, identifier: Dataset, model: str, timeout: float
) -> Generator[tuple[int, Dataset | None], None, None]:
    """C-FIND ``identifier`` at the remote: (status, answer) of each pending response, then the final one."""
    with _association(remote, ae_title, [build_context(model)], timeout) as assoc:
        try:
            for status, answer in _checked(assoc.send_c_find, identifier, model):
                if "Status" not in status:
                    raise RemoteArchiveError("the remote archive broke off the C-FIND")
                yield int(status.Status), answer if int(status.Status) in _PENDING else None
        except GeneratorExit:  # the caller stopped reading (a C-CANCEL, a failure): do not wait for the rest
            assoc.abort()
            raise


def remote_get(
    remote: Peer, ae_title: str, identifier: Dataset, model: str, folder: Path, timeout: float
) -> Fetched:
    """C-GET ``identifier`` from the remote; each instance it sends is written, as received, to ``folder``.

    The bytes are kept as encoded on the association: re-identification binds a
    vault record to the data set as the de-identification wrote it
    (:mod:`dicomcloak.io.binding`), so it must not be decoded and re-encoded first.
    """
    fetched = Fetched()
    storage, roles = _get_contexts(remote, ae_title, identifier, model, timeout)
    contexts = [build_context(model), *storage]
    handlers = [(evt.EVT_C_STORE, _receiver(folder, fetched))]
    with _association(remote, ae_title, contexts, timeout, ext_neg=roles, evt_handlers=handlers) as assoc:
        final = Dataset()
        for status, _ in _checked(assoc.send_c_get, identifier, model):
            if "Status" not in status:
                raise RemoteArchiveError("the remote archive broke off the C-GET")
            final = status
    fetched.failed = int(final.get("NumberOfFailedSuboperations", 0) or 0)
    if code_to_category(int(final.Status)) == "Failure" and not fetched.files and not fetched.failed:
        raise RemoteArchiveError(
            f"the remote archive refused the C-GET (status 0x{int(final.Status):04X})",
            reference="remote-retrieve-failed",
        )
    return fetched


def _get_contexts(
    remote: Peer, ae_title: str, identifier: Dataset, model: str, timeout: float
) -> tuple[list[PresentationContext], list[Any]]:
    """Storage contexts (SCP role, PS3.7 D.3.3.4) for a C-GET, each with one transfer syntax.

    The remote sends each instance in a context whose syntax is the one it
    holds it in, when offered; otherwise it transcodes, and a transcoded
    instance no longer matches the vault record bound to its encoding
    (:mod:`dicomcloak.io.binding`): it would fail to restore. So the SOP
    classes of what will come are asked first (C-FIND at IMAGE level), and
    every (class, syntax) pair of :data:`_HELD_SYNTAXES` is offered. A remote
    that does not say (no C-FIND answer with SOP Class UID), or too many
    classes for 127 contexts: every storage class, uncompressed syntaxes only.
    """
    classes = _held_classes(remote, ae_title, identifier, model, timeout)
    if classes and len(classes) * len(_HELD_SYNTAXES) < _MAX_CONTEXTS:
        contexts = [build_context(sop_class, [syntax]) for sop_class in classes for syntax in _HELD_SYNTAXES]
    else:
        classes = [str(cx.abstract_syntax) for cx in StoragePresentationContexts[: _MAX_CONTEXTS - 1]]
        contexts = [build_context(sop_class) for sop_class in classes]
    return contexts, [build_role(sop_class, scp_role=True) for sop_class in classes]


def _held_classes(remote: Peer, ae_title: str, identifier: Dataset, model: str, timeout: float) -> list[str]:
    """The SOP classes of the instances ``identifier`` matches at the remote; empty when it cannot say."""
    query = copy.deepcopy(identifier)  # its elements are the C-GET's own: never changed in place
    query.QueryRetrieveLevel = "IMAGE"
    query.SOPClassUID = ""
    if "SOPInstanceUID" not in query:
        query.SOPInstanceUID = ""
    find = FIND_MODELS[GET_MODELS.index(model)] if model in GET_MODELS else FIND_MODELS[1]
    try:
        answers = [answer for _, answer in remote_find(remote, ae_title, query, find, timeout) if answer]
    except (DicomcloakError, OSError, RuntimeError, ValueError):
        return []
    classes = {str(answer.get("SOPClassUID", "") or "") for answer in answers}
    return [] if not classes or "" in classes else sorted(classes)


def _receiver(folder: Path, fetched: Fetched) -> Callable[[evt.Event], int]:
    def on_store(event: evt.Event) -> int:
        """Keep one instance the remote sent (PS3.4 C.4.3.3: C-STORE sub-operations on this association)."""
        context = event.context
        path = folder / f"{len(fetched.files):06d}.dcm"
        path.write_bytes(event.encoded_dataset(include_meta=True))
        fetched.files.append((path, str(context.abstract_syntax), str(context.transfer_syntax)))
        return 0x0000

    return on_store
