"""What the gateway reports about itself: per-route counters and the status file (docs/gateway.md, "Status").

``dicomcloak gateway status`` and monitoring read ``status.json``, written
atomically every second and at stop. It holds counts, AE titles, reason codes
and times only (architecture.md decision 7). The counts of forwarded, failed
and quarantined instances carry over a restart: they are read back from the
previous file at start.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dicomcloak.errors import DicomcloakError
from dicomcloak.io.writer import write_atomic

__all__ = ["STATUS_SCHEMA", "RouteCounters", "StatusWriter", "previous_counts"]

STATUS_SCHEMA = "dicomcloak/gateway-status/1"
#: The counters that carry over a restart.
CARRIED = ("forwarded", "failed", "quarantined", "confirmed_in_doubt", "resent_in_doubt")


@dataclass
class RouteCounters:
    """One route's counters, updated by the store path and the forwarder (thread-safe)."""

    forwarded: int = 0
    failed: int = 0
    quarantined: int = 0
    duplicates: int = 0
    confirmed_in_doubt: int = 0  # in doubt after a crash, found at the destination by C-FIND: not sent again
    resent_in_doubt: int = 0  # in doubt, the destination could not tell: sent again (it may hold it twice)
    destination_up: bool | None = None  # None: not tried yet
    last_error: str = ""  # a reason code or a DIMSE status, never a value
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, count: int = 1) -> None:
        """Add ``count`` to counter ``name``."""
        with self._lock:
            setattr(self, name, getattr(self, name) + count)

    def destination(self, up: bool, error: str = "") -> None:
        """Record whether the destination answered, and the last error (kept until the next one)."""
        with self._lock:
            self.destination_up = up
            if error:
                self.last_error = error

    def snapshot(self) -> dict[str, Any]:
        """The counters now."""
        with self._lock:
            return {
                "forwarded": self.forwarded, "failed": self.failed, "quarantined": self.quarantined,
                "duplicates": self.duplicates, "confirmed_in_doubt": self.confirmed_in_doubt,
                "resent_in_doubt": self.resent_in_doubt, "destination_up": self.destination_up,
                "last_error": self.last_error,
            }


def previous_counts(path: Path) -> dict[str, dict[str, int]]:
    """The carried counters per route from a previous status file (none, or unreadable: empty)."""
    try:
        document = json.loads(path.read_text("utf-8"))
        routes = document["routes"]
        return {
            str(name): {key: int(values.get(key, 0)) for key in CARRIED}
            for name, values in routes.items()
            if isinstance(values, dict)
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


class StatusWriter:
    """Writes ``make()`` to ``path`` atomically every ``interval`` seconds, and once more at :meth:`stop`."""

    def __init__(self, path: Path, make: Callable[[], dict[str, Any]], interval: float = 1.0) -> None:
        self.path = path
        self._make = make
        self._interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dicomcloak-status", daemon=True)

    def start(self) -> None:
        """Write now, then every interval."""
        self.write()
        self._thread.start()

    def write(self) -> None:
        """Write the status once (0600)."""
        text = json.dumps({"schema": STATUS_SCHEMA, **self._make()}, indent=2, sort_keys=True) + "\n"
        write_atomic(self.path, text.encode("utf-8"), sync_directory=False)  # created 0600

    def stop(self) -> None:
        """Stop the thread and write the final status."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()
        self.write()

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            with suppress(DicomcloakError):  # a full disk must not stop the gateway: tried again next time
                self.write()
