"""Query/retrieve through the gateway: C-FIND translated, C-MOVE and C-GET re-identified (issue 15).

The hospital side asks with its original identifiers; the remote archive
holds only de-identified instances and sees only pseudonyms
(:mod:`dicomcloak.net.query`). Retrieved instances come back from the remote
by C-GET (:mod:`dicomcloak.net.remote`) and each is re-identified by the very
step ``dicomcloak reid`` runs (:func:`dicomcloak.batch.reidentify.restore_data`)
before it is sent on: to the C-MOVE destination, which must be one the route
names, or back on the requesting association for a C-GET. An instance that
cannot be re-identified is a failed sub-operation: never sent pseudonymous or
partly restored (architecture.md decision 3: fail closed).

The service methods yield what pynetdicom's handlers yield (PS3.4 C.4.1-C.4.3;
pynetdicom counts the sub-operations and sends the pending responses), and
:func:`query_handlers` binds them to a listener. Statuses are in
docs/gateway.md, "Query/retrieve through the gateway".
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from functools import partial
from io import BytesIO
from pathlib import Path
from typing import Any, Protocol

from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, build_context, evt
from pynetdicom.presentation import PresentationContext

from dicomcloak.api import Reidentifier
from dicomcloak.batch.reidentify import restore_data
from dicomcloak.errors import DicomcloakError
from dicomcloak.keys.pseudonyms import Pseudonymizer
from dicomcloak.net.config import Peer
from dicomcloak.net.query import (
    AnswerTranslator,
    MapLookup,
    QueryPlan,
    QueryRefusedError,
    plan_query,
    refuse,
    retrieve_ae_title,
)
from dicomcloak.net.quiet import quiet_pynetdicom
from dicomcloak.net.remote import (
    FIND_MODELS,
    GET_FOR_MOVE,
    GET_MODELS,
    MOVE_MODELS,
    Fetched,
    RemoteArchiveError,
    remote_find,
    remote_get,
)
from dicomcloak.net.tls import client_tls_args
from dicomcloak.policy.model import Policy

__all__ = [
    "QUERY_NOT_TRANSLATABLE_STATUS",
    "REMOTE_UNAVAILABLE_STATUS",
    "TRANSLATION_FAILED_STATUS",
    "Audit",
    "QueryService",
    "query_contexts",
    "query_handlers",
]

# PS3.4 Table C.4-1, C.4-2, C.4-3: Cxxx is "Failed: Unable to process"; the ErrorComment says why.
QUERY_NOT_TRANSLATABLE_STATUS = 0xC100  # the identifier cannot be translated safely: nothing was sent
REMOTE_UNAVAILABLE_STATUS = 0xC110  # the remote archive cannot be reached or broke off
TRANSLATION_FAILED_STATUS = 0xC120  # the vault, or anything unexpected, failed (fail closed)
_MOVE_DESTINATION_UNKNOWN = 0xA801  # pynetdicom answers it when the handler yields (None, None)
_PENDING, _CANCEL, _SUCCESS = 0xFF00, 0xFE00, 0x0000
_VERIFICATION = "1.2.840.10008.1.1"  # pynetdicom associates with the destination before any failure status
#: pynetdicom counts a pending yield that is not a Dataset as one failed sub-operation (service_class.py).
_FAILED_SUBOPERATION = "failed"

Pending = tuple[int | Dataset, Dataset | None]


class Audit(Protocol):
    """The gateway's audit hook (:meth:`dicomcloak.net.sink.StoreSink.audit`): codes and counts, no PHI."""

    def __call__(self, action: str, **facts: object) -> None:
        """Append one event."""


def _no_audit(action: str, **facts: object) -> None:
    del action, facts


def _never() -> bool:
    return False


def _status(code: int, reference: str, offending: int | None = None) -> Dataset:
    """A failure status with its reason code as Error Comment (PS3.7 C.4.1.1.4; never a value)."""
    status = Dataset()
    status.Status = code
    status.ErrorComment = reference[:64]  # LO
    if offending is not None:
        status.OffendingElement = [offending]
    return status


def _refusal(error: QueryRefusedError) -> Dataset:
    return _status(QUERY_NOT_TRANSLATABLE_STATUS, f"{error.reference}: {error.keyword}", error.tag or None)


class QueryService:
    """C-FIND, C-MOVE and C-GET of one query route; collaborators are given, never built here.

    Parameters
    ----------
    remote:
        The archive that holds the de-identified instances.
    pseudonymizer, policy:
        The deidentify route's key, domain and policy (what wrote the remote's data).
    vault:
        The vault the deidentify route sealed to: its pseudonym map translates answers back.
    reidentifier, reid_policy:
        The reidentify route's :class:`~dicomcloak.api.Reidentifier` and policy, as ``reid`` builds them.
    destinations:
        The C-MOVE destinations the route allows.
    ae_title:
        The gateway's AE title: it calls the remote with it, and answers name it as Retrieve AE Title.
    audit:
        ``audit(action, **facts)``: levels, counts, statuses, reason codes; never values.
    scratch:
        Where retrieved instances wait, pseudonymous, until re-identified (default: the system's).
    timeout:
        ACSE, DIMSE and network timeout of the gateway's calls to the remote (seconds).
    on_forward:
        Called with each identifier just before it is sent to the remote (operation, identifier):
        a seam for tests and diagnostics; the identifier holds pseudonyms only.
    """

    def __init__(
        self,
        remote: Peer,
        pseudonymizer: Pseudonymizer,
        policy: Policy,
        vault: MapLookup,
        reidentifier: Reidentifier,
        reid_policy: Policy,
        destinations: tuple[Peer, ...],
        ae_title: str,
        *,
        audit: Audit = _no_audit,
        scratch: Path | None = None,
        timeout: float = 60.0,
        on_forward: Callable[[str, Dataset], None] | None = None,
    ) -> None:
        quiet_pynetdicom()
        self.remote = remote
        self.pseudonymizer = pseudonymizer
        self.policy = policy
        self.vault = vault
        self.reidentifier = reidentifier
        self.reid_policy = reid_policy
        self.destinations = {peer.ae_title.strip(): peer for peer in destinations}
        self.ae_title = ae_title
        self.audit = audit
        self.scratch = scratch
        self.timeout = timeout
        self._on_forward = on_forward

    # -- C-FIND ----------------------------------------------------------------------------------

    def find(
        self, identifier: Dataset, model: str, is_cancelled: Callable[[], bool] = _never
    ) -> Iterator[Pending]:
        """Translate, ask the remote, translate each answer back (PS3.4 C.4.1.3), pass the final status."""
        plan = self._plan(identifier, "find")
        if isinstance(plan, Dataset):
            yield plan, None
            return
        translator = AnswerTranslator(plan, self.vault)
        answers, final = 0, _SUCCESS
        try:
            with closing(self._find(plan, model)) as responses:
                for status, answer in responses:
                    if is_cancelled():
                        final = _CANCEL
                        break
                    if answer is None:
                        final = status
                        break
                    out = translator.translate(answer)
                    if plan.matches(out):
                        retrieve_ae_title(out, self.ae_title)
                        answers += 1
                        yield status, out
        except Exception as error:  # noqa: BLE001 - pydicom's messages may hold values: only codes go out
            yield self._failed("find", plan, _typed(error)), None
            return
        self.audit("qr-find", level=_level(identifier), answers=answers, status=f"0x{final:04X}")
        yield final, None

    def _find(self, plan: QueryPlan, model: str) -> Generator[tuple[int, Dataset | None], None, None]:
        self._forward("find", plan.remote)
        return remote_find(self.remote, self.ae_title, plan.remote, model, self.timeout)

    # -- C-MOVE and C-GET ------------------------------------------------------------------------

    def move(
        self, identifier: Dataset, move_destination_ae: str, model: str,
        is_cancelled: Callable[[], bool] = _never,
    ) -> Iterator[Any]:
        """EVT_C_MOVE's yields (PS3.4 C.4.2.3): the destination, the count, then each restored instance.

        An unknown destination is answered 0xA801 before anything is translated
        or retrieved. A refused identifier or an unreachable remote is answered
        with its Cxxx status after the destination (pynetdicom's order).
        """
        peer = self.destinations.get(move_destination_ae.strip())
        if peer is None:
            self.audit("qr-refused", operation="move", reference="move-destination-unknown",
                       status=f"0x{_MOVE_DESTINATION_UNKNOWN:04X}")
            yield None, None
            return
        contexts: list[PresentationContext] = []
        destination = (peer.host, peer.port, {"ae_title": peer.ae_title, "contexts": contexts,
                                              "tls_args": client_tls_args(peer.tls, peer.host)})
        get_model = GET_FOR_MOVE.get(model, GET_MODELS[1])
        for step in self._retrieve(identifier, get_model, "move", is_cancelled, destination=peer.ae_title):
            if isinstance(step, Fetched):
                contexts.extend(step.contexts() or [build_context(_VERIFICATION)])  # none: a failure follows
                yield destination
            else:
                yield step

    def get(
        self, identifier: Dataset, model: str, is_cancelled: Callable[[], bool] = _never
    ) -> Iterator[Any]:
        """EVT_C_GET's yields (PS3.4 C.4.3.3): the count, then each restored instance, sent to the caller."""
        for step in self._retrieve(identifier, model, "get", is_cancelled):
            if not isinstance(step, Fetched):
                yield step

    def _retrieve(
        self, identifier: Dataset, get_model: str, operation: str, is_cancelled: Callable[[], bool],
        **facts: object,
    ) -> Iterator[Any]:
        """The Fetched (or an empty one on failure), the count, then (status, instance) per sub-operation."""
        plan = self._plan(identifier, operation)
        if isinstance(plan, Dataset):
            yield from (Fetched(), 1, (plan, None))
            return
        with tempfile.TemporaryDirectory(dir=self.scratch, prefix="dicomcloak-qr-") as folder:
            try:
                self._forward(operation, plan.remote)
                fetched = remote_get(
                    self.remote, self.ae_title, plan.remote, get_model, Path(folder), self.timeout
                )
            except Exception as error:  # noqa: BLE001 - as in find
                yield from (Fetched(), 1, (self._failed(operation, plan, _typed(error)), None))
                return
            yield fetched
            yield len(fetched.files) + fetched.failed
            yield from self._restored(fetched, is_cancelled, operation=operation, level=_level(identifier),
                                      **facts)

    def _restored(
        self, fetched: Fetched, is_cancelled: Callable[[], bool], *, operation: str, **facts: object
    ) -> Iterator[Pending | tuple[int, str]]:
        """Each fetched instance re-identified as ``reid`` does it, or counted as a failed sub-operation."""
        restored, reasons, cancelled = 0, dict[str, int](), False
        for path, _, _ in fetched.files:
            if is_cancelled():  # PS3.4 C.4.2.3.2: C-CANCEL stops the sub-operations
                cancelled = True
                yield _CANCEL, None
                break
            instance = self._restore(path.read_bytes(), reasons)
            restored += instance is not None
            yield (_PENDING, instance) if instance is not None else (_PENDING, _FAILED_SUBOPERATION)
        else:
            yield from ((_PENDING, _FAILED_SUBOPERATION) for _ in range(fetched.failed))
        failed = len(fetched.files) - restored + fetched.failed if not cancelled else sum(reasons.values())
        if fetched.failed:
            reasons["remote-failed"] = fetched.failed
        self.audit(f"qr-{operation}", **facts, retrieved=len(fetched.files), restored=restored, failed=failed,
                   reasons=reasons, **({"cancelled": True} if cancelled else {}))

    def _restore(self, data: bytes, reasons: dict[str, int]) -> Dataset | None:
        """One instance through ``restore_data``: whole, or None (a failed sub-operation) with its reason."""
        try:
            parts, _ = restore_data(data, self.reidentifier, self.reid_policy)
            return dcmread(BytesIO(b"".join(parts)))
        except DicomcloakError as error:
            reason = error.reference
        except Exception as error:  # noqa: BLE001 - one instance must not stop the others
            reason = f"internal-error:{type(error).__name__}"
        reasons[reason] = reasons.get(reason, 0) + 1
        return None

    # -- shared ----------------------------------------------------------------------------------

    def _plan(self, identifier: Dataset, operation: str) -> QueryPlan | Dataset:
        """The translated query, or the refusal status (audited with its reason code and keyword).

        A retrieve cannot take a shifted date: the remote's range is a day wider
        than asked (:func:`~dicomcloak.net.query.plan_query`), and instances,
        unlike answers, are not filtered afterwards. Retrieves use unique keys
        (PS3.4 C.4.2.2.1) anyway.
        """
        try:
            plan = plan_query(identifier, _level(identifier), self.pseudonymizer, self.policy)
            if operation != "find" and plan.ranges:
                raise refuse(plan.ranges[0].tag, "a retrieve takes unique keys, not a shifted date")
            return plan
        except QueryRefusedError as error:
            self.audit("qr-refused", operation=operation, reference=error.reference, keyword=error.keyword,
                       status=f"0x{QUERY_NOT_TRANSLATABLE_STATUS:04X}")
            return _refusal(error)

    def _forward(self, operation: str, identifier: Dataset) -> None:
        if self._on_forward is not None:
            self._on_forward(operation, identifier)

    def _failed(self, operation: str, plan: QueryPlan, error: DicomcloakError) -> Dataset:
        remote = isinstance(error, RemoteArchiveError)
        code = REMOTE_UNAVAILABLE_STATUS if remote else TRANSLATION_FAILED_STATUS
        self.audit("qr-failed", operation=operation, reference=error.reference, status=f"0x{code:04X}",
                   level=_level(plan.remote))
        return _status(code, error.reference)


def _typed(error: Exception) -> DicomcloakError:
    """A typed error as it is, anything else as ``internal-error`` with its type only (never its message)."""
    if isinstance(error, DicomcloakError):
        return error
    return DicomcloakError(f"unexpected {type(error).__name__}", reference="internal-error")


def _level(identifier: Dataset) -> str:
    return str(identifier.get("QueryRetrieveLevel", "") or "").strip().upper()


# -- pynetdicom binding ------------------------------------------------------------------------------


def query_contexts() -> list[PresentationContext]:
    """The contexts a listener with a query route supports: the Q/R models, and storage for C-GET.

    C-GET sends instances back on the caller's association, so the caller
    proposes storage contexts with SCP/SCU role selection (PS3.7 D.3.3.4):
    the listener accepts the SCP role for the caller (``scp_role``). It
    accepts the SCU role too (``scu_role``), so that the same listener's
    C-STORE route still takes a caller that proposes it. Add each with
    ``ae.add_supported_context(cx.abstract_syntax, cx.transfer_syntax,
    scu_role=cx.scu_role, scp_role=cx.scp_role)``.
    """
    models = [build_context(model) for model in (*FIND_MODELS, *MOVE_MODELS, *GET_MODELS)]
    storage = []
    for context in AllStoragePresentationContexts:
        assert context.abstract_syntax is not None  # pynetdicom's own list
        cx = build_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        cx.scu_role, cx.scp_role = True, True
        storage.append(cx)
    return models + storage


def query_handlers(service: QueryService) -> list[tuple[evt.EventType, Callable[..., Any]]]:
    """``(event, handler)`` pairs for EVT_C_FIND, EVT_C_MOVE and EVT_C_GET, delegating to ``service``."""
    return [
        (evt.EVT_C_FIND, partial(_on_find, service)),
        (evt.EVT_C_MOVE, partial(_on_move, service)),
        (evt.EVT_C_GET, partial(_on_get, service)),
    ]


def _on_find(service: QueryService, event: evt.Event) -> Iterator[Pending]:
    yield from service.find(event.identifier, _model(event), lambda: bool(event.is_cancelled))


def _on_move(service: QueryService, event: evt.Event) -> Iterator[Any]:
    destination = str(event.move_destination)
    yield from service.move(event.identifier, destination, _model(event), lambda: bool(event.is_cancelled))


def _on_get(service: QueryService, event: evt.Event) -> Iterator[Any]:
    yield from service.get(event.identifier, _model(event), lambda: bool(event.is_cancelled))


def _model(event: evt.Event) -> str:
    return str(event.request.AffectedSOPClassUID)
