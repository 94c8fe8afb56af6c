"""Fixtures for the gateway's network tests: a directory sink, listeners on free ports, a PHI-bearing CT."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest
from pydicom import Dataset, dcmread
from pydicom.data import get_testdata_file

from dicomcloak.net.config import Caller, GatewayConfig, Limits, Listener
from dicomcloak.net.listener import Listeners, start_listeners
from dicomcloak.testing.dimse import DirectorySink

#: Planted in every instance sent: must never appear in a log line or an audit fact.
PATIENT_NAME = "Smithers^Waylon"
PATIENT_ID = "MRN-4471-XQ"

StartListeners = Callable[..., Listeners]


@pytest.fixture
def sink(tmp_path: Path) -> DirectorySink:
    """Where listeners put what they receive (``tmp_path/received``)."""
    return DirectorySink(tmp_path / "received")


@pytest.fixture
def start(tmp_path: Path, sink: DirectorySink) -> Iterator[StartListeners]:
    """Start listeners (each on a free port); all are stopped when the test ends."""
    handles: list[Listeners] = []

    def run(*listeners: Listener, limits: Limits | None = None, **extra: Any) -> Listeners:
        config = GatewayConfig(
            spool=tmp_path / "spool",
            quarantine=tmp_path / "quarantine",
            audit="sqlite://",
            listeners=listeners,
            routes={},
            limits=limits or Limits(acse_timeout=5, dimse_timeout=5, network_timeout=5),
        )
        handle = start_listeners(config, sink, **extra)
        handles.append(handle)
        return handle

    yield run
    for handle in handles:
        handle.stop(timeout=2)


def listener(**fields: Any) -> Listener:
    """A listener on a free port that lets ``SENDER`` in from 127.0.0.1, storing into route ``out``."""
    defaults: dict[str, Any] = {
        "name": "in",
        "ae_title": "DICOMCLOAK",
        "port": 0,
        "route": "out",
        "allow": (Caller("SENDER", ip_network("127.0.0.1/32")),),
    }
    return Listener(**{**defaults, **fields})


@pytest.fixture
def make_listener() -> Callable[..., Listener]:
    """:func:`listener`, for tests."""
    return listener


@pytest.fixture
def ct() -> Dataset:
    """A CT with planted PHI."""
    ds = dcmread(str(get_testdata_file("CT_small.dcm")))
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    return ds


@pytest.fixture
def ct_file(tmp_path: Path, ct: Dataset) -> Path:
    """The same CT as a Part 10 file (for dcmtk's storescu)."""
    path = tmp_path / "send" / "ct.dcm"
    path.parent.mkdir(parents=True)
    ct.save_as(path, enforce_file_format=True)
    return path

