"""Who may open an association with a listener: the gate every A-ASSOCIATE-RQ passes before any DIMSE message.

The checks, in order, each refusing with an A-ASSOCIATE-RJ (PS3.8 9.3.4,
Table 9-21) and a reason code for the audit:

1. the source address is not locked out (too many failed authentications);
2. the called AE title is the listener's (permanent, "called-AE-title-not-recognized");
3. the calling AE title (or ``*``) is allowed from the source network (permanent,
   "calling-AE-title-not-recognized");
4. the association count is under ``limits.max_associations`` and the
   listener's route accepts instances (transient, "local-limit-exceeded");
5. when the listener asks for User Identity (PS3.7 D.3.3.7) the request
   carries an item of the right type that verifies (permanent, "no-reason-given").
   A request *without* the item is refused here: pynetdicom would accept it.

The gate knows nothing of pynetdicom: :mod:`dicomcloak.net.listener` gives it
an :class:`AssociationRequest` and sends the :class:`Refusal` it returns.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import ip_address

from dicomcloak.net.config import IdentityMode, Limits, Listener
from dicomcloak.net.identity import Authenticator, IdentityResult

__all__ = ["AssociationRequest", "Decision", "Gate", "Identity", "Lockout", "Refusal"]

# PS3.8 Table 9-21: Result, Source, Reason/Diag.
_PERMANENT, _TRANSIENT = 0x01, 0x02
_SERVICE_USER, _PROVIDER_PRESENTATION = 0x01, 0x03
_NO_REASON, _CALLING_AE, _CALLED_AE, _LOCAL_LIMIT = 0x01, 0x03, 0x07, 0x02
_TRACKED = 2**16  # source addresses the lockout remembers at most


@dataclass(frozen=True)
class Refusal:
    """An A-ASSOCIATE-RJ's result, source and diagnostic, and our reason code for it."""

    result: int
    source: int
    diagnostic: int
    reason: str


@dataclass(frozen=True)
class Decision:
    """The gate's answer: a refusal (None: accept), the authenticated user, and whether a lockout began."""

    refusal: Refusal | None
    user: str = ""
    lockout_started: bool = False


@dataclass(frozen=True)
class Identity:
    """The User Identity sub-item of a request (PS3.7 D.3.3.7.1): type and fields, as sent."""

    kind: int
    primary: bytes
    secondary: bytes = b""


@dataclass(frozen=True)
class AssociationRequest:
    """What the gate needs of one A-ASSOCIATE-RQ."""

    calling_ae: str
    called_ae: str
    address: str
    identity: Identity | None
    active: int  # associations open on the listener, this one included


class Lockout:
    """Failed authentications per source address, and which addresses are locked out now.

    ``failures`` failures within ``seconds`` lock the address for ``seconds``
    from the last one; a lockout is reported once (:meth:`fail` returns True
    when it begins). At most ``capacity`` addresses are tracked: the oldest
    records go first, so a flood from many addresses cannot exhaust memory.
    """

    def __init__(
        self,
        failures: int,
        seconds: float,
        clock: Callable[[], float] = time.monotonic,
        capacity: int = _TRACKED,
    ) -> None:
        self._failures, self._seconds, self._clock, self._capacity = failures, seconds, clock, capacity
        self._recent: dict[str, deque[float]] = {}
        self._locked: dict[str, float] = {}
        self._lock = threading.Lock()

    def locked(self, address: str) -> bool:
        """Whether ``address`` is locked out now."""
        with self._lock:
            until = self._locked.get(address)
            if until is None:
                return False
            if self._clock() < until:
                return True
            del self._locked[address]
            self._recent.pop(address, None)
            return False

    def fail(self, address: str) -> bool:
        """Record one failed authentication; True when this failure starts a lockout."""
        if self._failures <= 0:
            return False
        with self._lock:
            now = self._clock()
            recent = self._recent.pop(address, None) or deque()
            recent.append(now)
            while recent and recent[0] <= now - self._seconds:
                recent.popleft()
            self._recent[address] = recent  # re-inserted: the dict stays ordered oldest first
            self._trim()
            if len(recent) < self._failures or address in self._locked:
                return False
            self._locked[address] = now + self._seconds
            return True

    def _trim(self) -> None:
        while len(self._recent) > self._capacity:
            del self._recent[next(iter(self._recent))]
        while len(self._locked) > self._capacity:
            del self._locked[next(iter(self._locked))]


class Gate:
    """The admission decision for one listener (see the module docstring)."""

    def __init__(
        self,
        listener: Listener,
        limits: Limits,
        authenticate: Authenticator | None,
        accepting: Callable[[], bool],
        lockout: Lockout,
    ) -> None:
        self._listener = listener
        self._limits = limits
        self._authenticate = authenticate
        self._accepting = accepting
        self.lockout = lockout

    def admit(self, request: AssociationRequest) -> Decision:
        """Accept (no refusal; the user if authenticated) or refuse.

        Failed identities and callers the allow list refuses count to the
        address's lockout: a flood of wrong AE titles from one address is
        refused unaudited (logged) once it is locked out, like password guesses.
        Transient refusals (capacity, a full spool) never count.
        """
        refusal = self._not_locked(request)
        if refusal is not None:
            return Decision(refusal)
        for check in (self._called, self._allowed):
            refusal = check(request)
            if refusal is not None:
                return Decision(refusal, lockout_started=self.lockout.fail(_address_key(request.address)))
        refusal = self._capacity(request)
        if refusal is not None:
            return Decision(refusal)
        refusal, user = self._identified(request)
        if refusal is None:
            return Decision(None, user)
        return Decision(refusal, lockout_started=self.lockout.fail(_address_key(request.address)))

    def _not_locked(self, request: AssociationRequest) -> Refusal | None:
        if self.lockout.locked(_address_key(request.address)):
            return Refusal(_TRANSIENT, _SERVICE_USER, _NO_REASON, "locked-out")
        return None

    def _called(self, request: AssociationRequest) -> Refusal | None:
        if request.called_ae.strip() != self._listener.ae_title.strip():
            return Refusal(_PERMANENT, _SERVICE_USER, _CALLED_AE, "called-ae-unknown")
        return None

    def _allowed(self, request: AssociationRequest) -> Refusal | None:
        """PS3.15 B.9 asks for more than AE titles: each title is bound to the network it may call from."""
        try:
            source = ip_address(_address_key(request.address))
        except ValueError:
            return Refusal(_PERMANENT, _SERVICE_USER, _CALLING_AE, "address-invalid")
        calling = request.calling_ae.strip()
        titles = [c.ae_title for c in self._listener.allow if source in c.network]
        if not titles:
            return Refusal(_PERMANENT, _SERVICE_USER, _CALLING_AE, "address-not-allowed")
        if "*" not in titles and calling not in titles:
            return Refusal(_PERMANENT, _SERVICE_USER, _CALLING_AE, "calling-ae-not-allowed")
        return None

    def _capacity(self, request: AssociationRequest) -> Refusal | None:
        """Transient refusals (PS3.8 9.3.4): the caller should try again later."""
        if request.active > self._limits.max_associations:
            return Refusal(_TRANSIENT, _PROVIDER_PRESENTATION, _LOCAL_LIMIT, "too-many-associations")
        if self._listener.route is not None and not self._accepting():
            return Refusal(_TRANSIENT, _PROVIDER_PRESENTATION, _LOCAL_LIMIT, "spool-full")
        return None

    def _identified(self, request: AssociationRequest) -> tuple[Refusal | None, str]:
        """PS3.7 D.3.3.7: a listener that asks for identity refuses a request without it."""
        if self._listener.identity.mode is IdentityMode.NONE:
            return None, ""
        item = request.identity
        if self._authenticate is None:  # asked for but not set up: fail closed
            result = IdentityResult(False, "identity-unconfigured")
        elif item is None:
            result = IdentityResult(False, "identity-missing")
        else:
            result = self._authenticate(item.kind, item.primary, item.secondary)
        if result.ok:
            return None, result.user
        return Refusal(_PERMANENT, _SERVICE_USER, _NO_REASON, result.reason), ""


def _address_key(address: str) -> str:
    """The source address without an IPv6 zone or an IPv4-mapped prefix, so one host is one key."""
    host = address.split("%", 1)[0]
    try:
        parsed = ip_address(host)
    except ValueError:
        return host
    mapped = getattr(parsed, "ipv4_mapped", None)
    return str(mapped or parsed)
