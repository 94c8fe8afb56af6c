#!/usr/bin/env python3
"""The gateway's per-instance cost: seconds per :meth:`Gateway.store`, without and with a vault.

Each ``store()`` processes one small CT (pydicom's ``CT_small.dcm`` with planted
PHI and fresh UIDs) through a de-identifying route and returns only when the
output is durable (synced and renamed into the spool, directories synced,
with a vault: its record committed). The destination is down, so the forwarder
does not compete for the cores. Reports the median and the 90th percentile.

    python bench/bench_gateway_store.py [--n 200]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from io import BytesIO
from pathlib import Path

from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from dicomcloak.keys import ProjectKey, write_key_file
from dicomcloak.net.config import DeidRoute, Forwarding, GatewayConfig, Limits, Peer
from dicomcloak.net.gateway import Gateway
from dicomcloak.net.sink import SUCCESS
from dicomcloak.testing.archives import free_port


def instances(n: int) -> list[bytes]:
    """``n`` small CTs with planted PHI and their own UIDs, as a sender sends them."""
    template = dcmread(str(get_testdata_file("CT_small.dcm")))
    out = []
    for index in range(n):
        template.PatientName = "Smithers^Waylon"
        template.SOPInstanceUID = template.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        template.InstanceNumber = index + 1
        buffer = BytesIO()
        template.save_as(buffer, enforce_file_format=True)
        out.append(buffer.getvalue())
    return out


def measure(work: Path, vault: bool, data: list[bytes]) -> list[float]:
    key = ProjectKey.generate()
    key_file = work / "project.key"
    write_key_file(key_file, key)
    route = DeidRoute(
        "out", Peer("ARCHIVE", "127.0.0.1", free_port()),
        vault=f"sqlite:///{work / 'vault.db'}" if vault else None,
    )
    config = GatewayConfig(
        spool=work / "spool", quarantine=work / "quarantine", audit=f"sqlite:///{work / 'audit.db'}",
        listeners=(), routes={"out": route}, key_file=key_file,
        limits=Limits(workers=1, spool_max_files=10**6), forward=Forwarding(retry_initial=60, retry_max=60),
    )
    seconds = []
    with Gateway(config, key) as gateway:
        gateway.store("out", instances(1)[0], "BENCH")  # warm: first-use imports and caches
        for encoded in data:
            started = time.perf_counter()
            answer = gateway.store("out", encoded, "BENCH")
            seconds.append(time.perf_counter() - started)
            assert answer.status == SUCCESS
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    data = instances(args.n)
    for vault in (False, True):
        with tempfile.TemporaryDirectory() as work:
            seconds = sorted(measure(Path(work), vault, data))
        median, p90 = statistics.median(seconds), seconds[int(len(seconds) * 0.9)]
        label = "with vault" if vault else "no vault  "
        line = f"{label}: median {median * 1000:.1f} ms, p90 {p90 * 1000:.1f} ms per store()"
        print(f"{line} ({args.n} instances)", flush=True)


if __name__ == "__main__":
    main()
