"""``run_reid`` with worker processes, in-process: keys through the initializer (fork and forkserver alike),
a worker's seal failure raised typed in the parent, the key never in a repr."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dicomcloak import Deidentifier, Policy, ProjectKey
from dicomcloak.batch.reidentify import ReidSettings, run_reid
from dicomcloak.batch.restoring import EmbeddedKeys
from dicomcloak.errors import SealError
from dicomcloak.io.inputs import iter_inputs
from dicomcloak.io.reader import read_dataset
from dicomcloak.io.writer import encode_dataset
from dicomcloak.testing.sealing import SealingKeys, make_sealing_keys

PATIENT_ID = "MRN-4471-XQ"  # planted by make_instance


@pytest.fixture(scope="module")
def sealing() -> SealingKeys:
    return make_sealing_keys()


@pytest.fixture
def sealed(tmp_path: Path, instance_factory: Callable[..., Path], sealing: SealingKeys) -> Path:
    """Eight files de-identified and sealed (embedded, signed) with the library's own objects."""
    deidentifier = Deidentifier(Policy(), ProjectKey.generate(ephemeral=True))
    sealer = sealing.sealer()
    for index in range(8):
        source = read_dataset(instance_factory(tmp_path / "src" / f"{index}.dcm", index).read_bytes())
        outcome = deidentifier.deidentify(source)
        sealer.seal(source, outcome)
        (tmp_path / "sealed" / f"{index}.dcm").parent.mkdir(exist_ok=True)
        (tmp_path / "sealed" / f"{index}.dcm").write_bytes(encode_dataset(outcome.dataset))
    return tmp_path / "sealed"


@pytest.fixture
def a_thread() -> Iterator[None]:
    """A live thread: the pool then starts its workers with forkserver, not fork (batch/run.py)."""
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    yield
    stop.set()
    thread.join()


def _run(sealed: Path, keys: EmbeddedKeys, out: Path, jobs: int) -> dict[str, bytes]:
    settings = ReidSettings(out, Path(f"{out}.run"), Path(f"{out}.run") / "quarantine", jobs=jobs)
    summary = run_reid(iter_inputs([sealed]), keys, settings)
    assert (summary.written, summary.run["jobs"], summary.run["modes"]) == (8, jobs, {"embedded": 8})
    return {p.name: p.read_bytes() for p in out.rglob("*.dcm")}


def test_workers_started_by_forkserver_get_the_keys_through_the_initializer(
    sealed: Path, sealing: SealingKeys, tmp_path: Path, a_thread: None
) -> None:
    keys = EmbeddedKeys.of(sealing.owner, [sealing.sealer_pem], accept_unverified=False)
    assert "private_key" not in repr(keys) and keys.private_key.hex()[:32] not in repr(keys)
    pooled = _run(sealed, keys, tmp_path / "two", 2)  # pickled to forkserver's workers
    alone = _run(sealed, keys, tmp_path / "one", 1)
    assert pooled == alone and len(alone) == 8
    assert PATIENT_ID.encode() in alone["0.dcm"]


def test_a_seal_failure_in_a_worker_stops_the_run_typed(sealed: Path, tmp_path: Path) -> None:
    stranger = make_sealing_keys()  # another owner: the seals are not addressed to it
    keys = EmbeddedKeys.of(stranger.owner, [stranger.sealer_pem], accept_unverified=False)
    out = tmp_path / "back"
    settings = ReidSettings(out, tmp_path / "back.run", tmp_path / "back.run" / "q", jobs=2)
    with pytest.raises(SealError) as raised:
        run_reid(iter_inputs([sealed]), keys, settings)
    assert raised.value.reference == "seal-wrong-key"
    assert not list(out.rglob("*.dcm"))  # fail closed: nothing written
