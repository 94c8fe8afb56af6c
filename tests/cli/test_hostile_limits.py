"""Hostile files that cost their maker nothing: decided at once, in bounded memory, quarantined cheaply.

Issue 13, item 3: a 2 GB sparse file with a lying LO length and a zero tail
took 13 minutes of CPU; zero tails of 8, 32 and 128 MB were accepted and
written; a 2 GB sparse file whose Pixel Data length is 0x90000000 took 20 s
and 2.16 GB of memory to refuse, and its quarantine copy 2.1 GB of disk.
Every file here is built sparse (``truncate``): no gigabytes are written.
Each runs through the real ``dicomcloak deid`` in a child process whose
children's peak RSS (``getrusage``) and wall time are measured.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dicomcloak.testing.hostile import base_bytes, base_dataset, encode

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sparse files, getrusage: Linux")

GIB, MIB = 1 << 30, 1 << 20
#: Far above what deid needs (about 60-100 MB here), far below what reading the files whole would take.
RSS_BOUND_KB = 300 * 1024
SECONDS = 5.0
WALL_SECONDS = 30.0


def _sparse(path: Path, head: bytes, size: int) -> Path:
    with path.open("wb") as handle:
        handle.write(head)
        handle.truncate(size)
    return path


def _without_pixels() -> bytes:
    ds = base_dataset()
    del ds.PixelData
    return encode(ds)


def _lying_lo() -> bytes:
    """A Performed Procedure Step Description (0040,0254) LO whose length says 65,520 bytes: 10 are text."""
    return _without_pixels() + struct.pack("<HH2sH", 0x0040, 0x0254, b"LO", 0xFFF0) + b"NOT A NAME"


def _pixel_header(length: int) -> bytes:
    return _without_pixels() + struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OW", 0, length)


def _repeated_group_length(count: int) -> bytes:
    """(0000,0000) UL with a value, over and over after the data set: one tag, ``count`` elements."""
    return base_bytes() + struct.pack("<HH2sHL", 0, 0, b"UL", 4, 4) * count


def _distinct_flood(count: int) -> bytes:
    """``count`` distinct private LO elements (creators and their blocks): a flood the count of tags sees."""
    parts = []
    for n in range(count):
        group, block, element = 0x0009 + 2 * (n // (240 * 257)), 0x10 + (n // 257) % 240, n % 257
        tag = (block, b"ACME") if element == 256 else ((block << 8) | element, b"AB")
        parts.append(struct.pack("<HH2sH", group, tag[0], b"LO", len(tag[1])) + tag[1])
    return _without_pixels() + b"".join(parts)


CASES = {
    # name: (head bytes, file size, reason)
    "lying-lo-zero-tail-2g": (_lying_lo(), 2 * GIB, "trailing-bytes"),
    "zero-tail-8m": (base_bytes(), len(base_bytes()) + 8 * MIB, "trailing-bytes"),
    "zero-tail-32m": (base_bytes(), len(base_bytes()) + 32 * MIB, "trailing-bytes"),
    "zero-tail-128m": (base_bytes(), len(base_bytes()) + 128 * MIB, "trailing-bytes"),
    "zero-elements-repeated": (base_bytes(), len(base_bytes()) + 4096, "trailing-bytes"),
    "group-length-repeated-small": (_repeated_group_length(1000), 0, "element-repeated"),
    "group-length-repeated-large": (_repeated_group_length(200_000), 0, "element-repeated"),
    "distinct-element-flood": (_distinct_flood(100_001), 0, "too-many-elements"),
    "pixel-data-0x90000000-2g": (_pixel_header(0x90000000), 2 * GIB, "element-too-large"),
    "pixel-data-beyond-the-file-1g": (_pixel_header(0x7FFFFFF0), 1 * GIB, "length-beyond-file"),
}

_MEASURED = """
    import json, resource, subprocess, sys, time
    start = time.monotonic()
    done = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=120, check=False)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({
        "returncode": done.returncode, "stdout": done.stdout, "stderr": done.stderr,
        "seconds": time.monotonic() - start, "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "rss_kb": usage.ru_maxrss,
    }))
"""


def _measured(*args: str | Path) -> dict[str, object]:
    """Run the CLI in a fresh child: its wall time, CPU time and peak RSS (of it and anything it started)."""
    script = Path(sys.executable).with_name("dicomcloak")
    module = [sys.executable, "-c", "from dicomcloak.cli.app import main; main()"]
    cli = [str(script)] if script.exists() else module
    environ = {k: v for k, v in os.environ.items() if k != "DICOMCLOAK_KEY_FILE"}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_MEASURED), *cli, *map(str, args)],
        capture_output=True, text=True, timeout=300, check=True, env=environ,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("name", list(CASES))
def test_a_hostile_file_is_decided_at_once_in_bounded_memory_and_quarantined_cheaply(
    tmp_path: Path, name: str
) -> None:
    head, size, reason = CASES[name]
    source = tmp_path / "in" / f"{name}.dcm"
    source.parent.mkdir()
    if size:
        _sparse(source, head, size)
    else:
        source.write_bytes(head)
    out, run = tmp_path / "out", tmp_path / "run"
    done = _measured(
        "deid", source, "--out", out, "--run-dir", run, "--ephemeral-key", "--jobs", "1", "--json"
    )
    assert done["returncode"] == 1, done["stderr"]  # finished, the input quarantined
    summary = json.loads(str(done["stdout"]))
    assert (summary["written"], summary["quarantined"], summary["reasons"]) == (0, 1, {reason: 1})
    figures = {key: done[key] for key in ("seconds", "cpu_seconds", "rss_kb")}
    print(f"hostile: {name} {json.dumps(figures)}")
    # The decision, Python's start-up and the command's imports included, takes under 5 s of CPU; the wall
    # clock is bounded more loosely, since CI machines are shared (a hang or a 2 GB read would blow both).
    assert float(str(done["cpu_seconds"])) < SECONDS, done
    assert float(str(done["seconds"])) < WALL_SECONDS, done
    assert int(str(done["rss_kb"])) < RSS_BOUND_KB, done
    assert not out.exists() or not any(out.rglob("*.dcm"))
    # The quarantine keeps the head, sparse: a few blocks, whatever the file's size.
    copy = run / "quarantine" / f"{name}.dcm" / f"{name}.dcm"
    record = json.loads(copy.with_name(copy.name + ".reason.json").read_text())
    original = source.stat().st_size
    assert (record["reason"], record["original_bytes"]) == (reason, original)
    assert record["copied_bytes"] == min(original, 64 * MIB) == copy.stat().st_size
    assert record["truncated"] is (original > 64 * MIB)
    assert copy.read_bytes()[: len(head)] == head
    assert copy.stat().st_blocks * 512 <= max(len(head), 1) + 256 * 1024
