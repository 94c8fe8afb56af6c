"""Reading whole inputs (io.bounded): only the input's own size is allocated, never the limit.

A buffered ``read(n)`` allocates ``n`` bytes first; reading "up to the 4 GiB
limit" failed every read where the address space is capped (``ulimit -v``,
strict overcommit). The child-process tests cap the address space for real.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import textwrap
from io import BytesIO
from pathlib import Path

import pytest

from dicomcloak.io.bounded import read_capped


@pytest.mark.parametrize(
    ("actual", "declared", "limit", "expected"),
    [
        (100, 100, 1000, 100),  # the declared size: all of it
        (100, 40, 1000, 100),  # longer than declared (growing file, lying zip header): read on
        (3_000_000, 10, 5_000_000, 3_000_000),  # read on over several chunks
        (100, 1000, 1000, 100),  # shorter than declared: what there is
        (5000, 10, 1000, 1001),  # longer than the limit: stops one byte past it
        (5000, 5000, 1000, 1001),  # declared over the limit: idem
    ],
)
def test_read_capped_returns_everything_or_one_byte_past_the_limit(
    actual: int, declared: int, limit: int, expected: int
) -> None:
    data = bytes(range(256)) * (actual // 256) + bytes(actual % 256)
    assert read_capped(BytesIO(data), declared, limit) == data[:expected]


def _capped_child(code: str, *paths: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` after capping the child's address space at what it uses plus 256 MiB."""
    prologue = """
        import resource, sys
        from pathlib import Path
        import dicomcloak.io.reader, dicomcloak.io.inputs  # the imports count in what is in use
        in_use = int(Path("/proc/self/status").read_text().split("VmSize:")[1].split()[0]) * 1024
        cap = in_use + (256 << 20)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        paths = [Path(p) for p in sys.argv[1:]]
        """
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(prologue) + textwrap.dedent(code), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="address-space limits as Linux sets them")
def test_reading_works_when_the_address_space_is_far_below_the_4_gib_limit(
    tmp_path: Path, mr_bytes: bytes
) -> None:
    path = tmp_path / "mr.dcm"
    path.write_bytes(mr_bytes)
    done = _capped_child(
        """
        from dicomcloak.io.reader import read_path
        from dicomcloak.io.inputs import iter_inputs
        from dicomcloak.raw.limits import ReadLimits
        assert ReadLimits().max_file_bytes >= 4 << 30  # the default limit is far above the cap
        print(read_path(paths[0]).Rows)
        item = next(iter(iter_inputs(paths)))
        print(len(item.read_bytes(ReadLimits().max_file_bytes)))
        """,
        path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["64", str(len(mr_bytes))]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="address-space limits as Linux sets them")
def test_a_file_that_does_not_fit_in_memory_is_a_typed_input_error(tmp_path: Path, mr_bytes: bytes) -> None:
    big = tmp_path / "big.dcm"
    with big.open("wb") as handle:  # sparse: 512 MiB declared, no disk used; a well-formed file (the walk
        # of its element headers passes), whose last element, a private OB, holds the zero rest
        rest = (512 << 20) - len(mr_bytes) - 12
        handle.write(mr_bytes + struct.pack("<HH2sHL", 0x7FE1, 0x0010, b"OB", 0, rest))
        handle.truncate(512 << 20)
    done = _capped_child(
        """
        from dicomcloak.errors import ReadLimitError
        from dicomcloak.io.reader import read_path
        from dicomcloak.io.inputs import iter_inputs
        for read in (lambda: read_path(paths[0]), lambda: next(iter(iter_inputs(paths))).read_bytes(4 << 30)):
            try:
                read()
            except ReadLimitError as error:
                print(error.reference)
        """,
        big,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["memory-exhausted", "memory-exhausted"]
