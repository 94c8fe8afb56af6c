"""``deid --dask`` on a real local Dask cluster: a scheduler and two worker processes started here.

The outputs are byte-identical to a local ``--jobs 2`` run of the same job
(architecture.md decision 2: keyed determinism), every output has its record
in a PostgreSQL vault, the reports count alike; embedded seals made on the
cluster restore; the scheduler and the cluster's logs never see a patient's
name, the workers never get a secret; what a cluster cannot share is refused;
a worker killed mid-run stops the run with ``worker-died`` and leaves only
complete, sealed outputs; a vault stopped mid-run stops it with a report that
counts exactly what is on disk.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from dicomcloak.keys import ProjectKey, write_key_file

if TYPE_CHECKING:
    from dicomcloak.testing.postgres import PostgresServer

#: Multi-frame and compressed instances bundled with pydicom (distinct SOP Instance UIDs).
BUNDLED = ("emri_small_RLE.dcm", "MR_small_RLE.dcm", "JPEG2000.dcm", "SC_rgb_jpeg_gdcm.dcm")
GENERATED = 94  # + 4 bundled + 1 duplicate + 1 not DICOM = 100 inputs
_START_TIMEOUT = 90.0
SURNAME = "Smithers"  # the patient's, in every input's path and header: never in what the scheduler sees

RunCli = Callable[..., subprocess.CompletedProcess[str]]


def _cts(root: Path, n: int, seed: str) -> Path:
    """``n`` CT instances with fresh UIDs, 4 per study, in folders named after the patient."""
    source = dcmread(str(get_testdata_file("CT_small.dcm")))
    source.PatientName = f"{SURNAME}^Waylon"
    for index in range(n):
        source.StudyInstanceUID = generate_uid(entropy_srcs=[seed, "study", str(index // 4)])
        source.SOPInstanceUID = generate_uid(entropy_srcs=[seed, "sop", str(index)])
        source.file_meta.MediaStorageSOPInstanceUID = source.SOPInstanceUID
        path = root / f"{SURNAME}_Waylon" / f"series{index // 8}" / f"img{index:03d}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        source.save_as(path, enforce_file_format=True)
    return root


@dataclass(frozen=True)
class LocalCluster:
    """A running scheduler and its two workers: the address, and the scheduler's log file."""

    address: str
    scheduler_log: Path


def _dask(tool: str) -> list[str]:
    script = Path(sys.executable).with_name("dask")
    return [str(script), tool] if script.exists() else [sys.executable, "-m", f"distributed.cli.dask_{tool}"]


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """``dask scheduler`` on a free port and two ``dask worker`` processes (one thread each)."""
    from distributed import Client

    root = tmp_path_factory.mktemp("dask")
    scheduler_file, log = root / "scheduler.json", root / "scheduler.log"
    environ = {k: v for k, v in os.environ.items() if k != "DICOMCLOAK_KEY_FILE"}
    environ["DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED"] = "False"  # no sampling thread on 2 shared cores
    started: list[subprocess.Popen[bytes]] = []
    try:
        with log.open("wb") as sink:
            started.append(subprocess.Popen(
                [*_dask("scheduler"), "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                 "--scheduler-file", str(scheduler_file)],
                stdout=sink, stderr=subprocess.STDOUT, env=environ, cwd=root,
            ))
        _wait_for(scheduler_file.exists)
        for n in range(2):
            with (root / f"worker{n}.log").open("wb") as sink:
                started.append(subprocess.Popen(
                    [*_dask("worker"), "--scheduler-file", str(scheduler_file), "--nworkers", "1",
                     "--nthreads", "1", "--no-dashboard", "--local-directory", str(root / f"w{n}")],
                    stdout=sink, stderr=subprocess.STDOUT, env=environ, cwd=root,
                ))
        address = json.loads(scheduler_file.read_text())["address"]
        with Client(address, timeout="30s", set_as_default=False) as client:
            client.wait_for_workers(2, timeout=_START_TIMEOUT)
        yield LocalCluster(address, log)
    finally:
        for process in reversed(started):  # all at once: each takes a few seconds to stop gracefully
            if process.poll() is None:
                process.terminate()
        for process in started:
            _stop(process)


def _wait_for(condition: Any, timeout: float = _START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """100 inputs: generated CTs (named after the patient), bundled multi-frame/compressed ones, a
    duplicate and a file that is not DICOM."""
    root = _cts(tmp_path_factory.mktemp("corpus") / "in", GENERATED, "cluster")
    bundled = root / f"{SURNAME}_Waylon" / "bundled"
    bundled.mkdir()
    for name in BUNDLED:
        shutil.copyfile(str(get_testdata_file(name)), bundled / name)
    shutil.copyfile(bundled / BUNDLED[0], bundled / "copy-of-first.dcm")
    (bundled / "notes.dcm").write_bytes(b"not DICOM at all\n" * 10)
    return root


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cluster-key") / "project.key"
    write_key_file(path, ProjectKey.generate())
    return path


def _tree(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def _summary(out: Path) -> dict[str, Any]:
    report = json.loads((out.with_name(out.name + ".run") / "latest" / "report.json").read_text())
    summary: dict[str, Any] = report["summary"]
    return summary


def _every_output_sealed(url: str, out: Path, key: Path) -> int:
    """Each file in the output tree has its vault record (the vault opens it); how many there are."""
    from dicomcloak.cli.vault import load_keyring_from
    from dicomcloak.vault import Vault

    outputs = sorted(out.rglob("*.dcm"))
    with Vault.open(url, load_keyring_from(key)) as vault:
        for path in outputs:
            ds = dcmread(path, stop_before_pixels=True)
            vault.open_record(ds.StudyInstanceUID, ds.SOPInstanceUID)
    return len(outputs)


_COUNTS = ("files", "written", "duplicates", "quarantined", "skipped", "reasons", "changed_attributes",
           "uid_conflicts", "bytes_in", "bytes_out")


def test_a_cluster_run_equals_a_local_run_byte_for_byte(
    cluster: LocalCluster, corpus: Path, key: Path, tmp_path: Path, run_cli: RunCli,
    postgres_server_session: PostgresServer,
) -> None:
    vaults = postgres_server_session.create_database(), postgres_server_session.create_database()
    common = ("--key", key, "--pixels", "off", "--json")
    on_cluster = run_cli("deid", corpus, "--out", tmp_path / "dask", "--vault", vaults[0], "--dask",
                         cluster.address, *common)
    local = run_cli("deid", corpus, "--out", tmp_path / "local", "--vault", vaults[1], "--jobs", "2", *common)
    assert on_cluster.returncode == local.returncode == 1, (on_cluster.stderr, local.stderr)  # 1 quarantined
    assert "Traceback" not in on_cluster.stderr and "warning" not in on_cluster.stderr.lower()
    cluster_tree, local_tree = _tree(tmp_path / "dask"), _tree(tmp_path / "local")
    assert len(cluster_tree) == GENERATED + len(BUNDLED)
    assert cluster_tree.keys() == local_tree.keys()
    assert [p for p in cluster_tree if cluster_tree[p] != local_tree[p]] == []
    summaries = _summary(tmp_path / "dask"), _summary(tmp_path / "local")
    assert {k: summaries[0][k] for k in _COUNTS} == {k: summaries[1][k] for k in _COUNTS}
    assert summaries[0]["duplicates"] == 1
    assert summaries[0]["dask_scheduler"].startswith("tcp://") and "dask_scheduler" not in summaries[1]
    assert summaries[0]["reasons"] == {"duplicate-instance": 1, "not-dicom": 1}
    assert _every_output_sealed(vaults[0], tmp_path / "dask", key) == len(cluster_tree)
    # Nothing but outputs in the output tree; the run's shared directory (claims, markers) is gone.
    assert not list((tmp_path / "dask").rglob(".*"))
    assert not list((tmp_path / "dask.run").glob(".dicomcloak-claims*"))
    _no_input_path_seen_by_the_cluster(cluster)


def test_embedded_seals_made_on_the_cluster_restore(
    cluster: LocalCluster, key: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    """With --recipient each worker reads the sealer key itself (fingerprint checked); the owner restores."""
    tree = _cts(tmp_path / "in", 12, "sealed")
    assert run_cli("keys", "cert", "--out-dir", tmp_path / "owner", "--no-passphrase").returncode == 0
    assert run_cli("keys", "sealer", "--out-dir", tmp_path / "sealer").returncode == 0
    done = run_cli("deid", tree, "--out", tmp_path / "out", "--key", key, "--pixels", "off",
                   "--recipient", tmp_path / "owner" / "owner.cert.pem",
                   "--sealer-key", tmp_path / "sealer" / "sealer.key.pem", "--dask", cluster.address)
    assert done.returncode == 0, done.stderr
    restored = run_cli("reid", tmp_path / "out", "--out", tmp_path / "restored",
                       "--private-key", tmp_path / "owner" / "owner.key.pem",
                       "--trusted-sealer", tmp_path / "sealer" / "sealer.cert.pem")
    assert restored.returncode == 0, restored.stderr
    files = sorted((tmp_path / "restored").rglob("*.dcm"))
    assert len(files) == 12
    assert {str(dcmread(p, stop_before_pixels=True).PatientName) for p in files} == {f"{SURNAME}^Waylon"}


def _scheduler_task_names(cluster: LocalCluster) -> list[str]:
    from distributed import Client

    def prefixes(dask_scheduler: Any) -> list[str]:
        return sorted(dask_scheduler.task_prefixes)

    with Client(cluster.address, timeout="30s", set_as_default=False) as client:
        names: list[str] = client.run_on_scheduler(prefixes)
    return names


def _no_input_path_seen_by_the_cluster(cluster: LocalCluster) -> None:
    """Task keys are opaque; the scheduler's task names and the cluster's logs never name the patient."""
    prefixes = _scheduler_task_names(cluster)
    assert "dicomcloak" in prefixes
    assert not [p for p in prefixes if SURNAME in p or "/" in p], prefixes
    for log in cluster.scheduler_log.parent.glob("*.log"):
        assert SURNAME not in log.read_text(errors="replace"), log.name


@pytest.mark.parametrize(
    ("address", "warned"),
    [("tcp://10.1.2.3:8786", True), ("scheduler.example:8786", True), ("tls://10.1.2.3:8786", False),
     ("tcp://127.0.0.1:8786", False), ("tcp://localhost:8786", False)],
)
def test_a_plaintext_address_off_this_host_is_told(address: str, warned: bool) -> None:
    from dicomcloak.batch.cluster import plaintext

    assert plaintext(address) is warned


def test_a_chunk_is_shown_by_its_size_only() -> None:
    """Dask logs a failed task's arguments: a chunk shows no input path."""
    from dicomcloak.batch.cluster_worker import Chunk
    from dicomcloak.io.inputs import InputItem

    relpath = f"{SURNAME}_Waylon/img.dcm"
    item = InputItem(Path("/in"), "in", relpath, None, Path("/in") / relpath)
    assert repr(Chunk([(0, item), (1, item)])) == "Chunk(2 inputs)"


def test_the_workers_get_no_secret(key: Path, tmp_path: Path) -> None:
    """The recipe shipped through the scheduler holds the key file's path and id, never the key."""
    from dicomcloak.batch.cluster import _recipe, key_files
    from dicomcloak.batch.worker import SealSettings, WorkerSettings
    from dicomcloak.cli._common import load_policy
    from dicomcloak.keys import load_keyring

    ring = load_keyring(key)
    seal = SealSettings(vault_url="postgresql+pg8000://u@/db", keyring=ring)
    worker = WorkerSettings(load_policy(None, None, strict_table=False), ring.project, "default",
                            tmp_path / "out", tmp_path / "q", seal=seal)
    recipe = _recipe(worker, key_files(worker, key), tmp_path)
    shipped = pickle.dumps(recipe)
    secrets = [ring.project.secret, *(k.secret for k in ring.wrapping if k.secret)]
    assert secrets and not [s for s in secrets if s in shipped]
    assert ring.project.key_id.encode() in shipped
    assert pickle.loads(shipped).keys.key == key.resolve()


def test_a_worker_with_another_key_at_the_path_refuses(key: Path, tmp_path: Path) -> None:
    from dicomcloak.batch.cluster import _recipe, key_files
    from dicomcloak.batch.cluster_worker import Chunk, run_chunk
    from dicomcloak.batch.worker import WorkerSettings
    from dicomcloak.cli._common import load_policy
    from dicomcloak.errors import KeyError_
    from dicomcloak.keys import load_key_file

    other = tmp_path / "other.key"
    write_key_file(other, ProjectKey.generate())
    worker = WorkerSettings(load_policy(None, None, strict_table=False), load_key_file(key), "default",
                            tmp_path / "out", tmp_path / "q")
    recipe = _recipe(worker, key_files(worker, other), tmp_path)  # the id of `key`, the path of `other`
    with pytest.raises(KeyError_) as raised:
        run_chunk(recipe, Chunk([]))
    assert raised.value.reference == "dask-key-mismatch"


def test_an_os_error_in_a_chunk_names_no_path(key: Path, tmp_path: Path) -> None:
    """Dask logs a failed task's error and sends it to the client: no OSError's file name in it."""
    from dicomcloak.batch.cluster import _recipe, key_files
    from dicomcloak.batch.cluster_worker import Chunk, close_run, run_chunk
    from dicomcloak.batch.worker import WorkerSettings
    from dicomcloak.cli._common import load_policy
    from dicomcloak.errors import OutputError
    from dicomcloak.io.inputs import InputItem, iter_inputs
    from dicomcloak.keys import load_key_file

    tree = _cts(tmp_path / "in", 2, "os-error")
    worker = WorkerSettings(load_policy(None, None, strict_table=False), load_key_file(key), "default",
                            tmp_path / "out", tmp_path / "q")
    shared = tmp_path / "shared"
    (shared / "workers").mkdir(parents=True)  # and no claims/: claiming an instance fails
    recipe = _recipe(worker, key_files(worker, key), shared)
    try:
        with pytest.raises(OutputError) as raised:
            run_chunk(recipe, Chunk([(n, item) for n, item in enumerate(iter_inputs([tree]))
                                     if isinstance(item, InputItem)]))
    finally:
        import asyncio

        asyncio.run(close_run(recipe.run))
    assert str(tmp_path) not in str(raised.value) and raised.value.__suppress_context__


@pytest.mark.parametrize(
    ("extra", "reference"),
    [
        (("--vault", "sqlite:///{tmp}/vault.db"), "dask-needs-shared-vault"),
        (("--vault", "postgresql+pg8000://u@/db", "--audit", "sqlite:///{tmp}/audit.db"),
         "dask-needs-shared-vault"),
        (("--ephemeral-key",), "dask-needs-key-file"),
    ],
)
def test_what_a_cluster_cannot_share_is_refused_before_any_work(
    extra: tuple[str, ...], reference: str, dicom_tree: Path, key_file: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    """Refused before the scheduler is asked (the address here answers nothing)."""
    keys = () if "--ephemeral-key" in extra else ("--key", key_file)
    arguments = [a.format(tmp=tmp_path) for a in extra]
    done = run_cli("deid", dicom_tree, "--out", tmp_path / "out", *keys, *arguments, "--dask",
                   "tcp://127.0.0.1:9")
    assert done.returncode == 2, done.stderr
    assert f"error[{reference}]" in done.stderr
    assert not (tmp_path / "out").exists()


def test_an_unreachable_scheduler_is_a_usage_error(dicom_tree: Path, key_file: Path, tmp_path: Path,
                                                   run_cli: RunCli) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = run_cli("deid", dicom_tree, "--out", tmp_path / "out", "--key", key_file, "--dask",
                   f"tcp://127.0.0.1:{port}", env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"})
    assert done.returncode == 2, done.stderr
    assert "error[dask-unreachable]" in done.stderr


def test_a_vault_stopped_mid_run_stops_it_with_counts_equal_to_disk(
    cluster: LocalCluster, key: Path, tmp_path: Path
) -> None:
    """As with the local pool (tests/batch/test_vault_failures.py): exit 4, a report that counts exactly
    the outputs on disk, every one of them sealed; what the workers could not place counted unwritten."""
    from dicomcloak.testing.postgres import find_binaries, postgres_server, start_again, stop_now

    if find_binaries() is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are not installed")
    n = 300
    tree, out = _cts(tmp_path / "in", n, "vault-stopped"), tmp_path / "out"
    with postgres_server() as server:
        url = server.create_database()
        run = _deid_on(cluster, tree, out, key, "--vault", url)
        try:
            _wait_for(lambda: any(out.rglob("*.dcm")) or run.poll() is not None)  # a group is sealed
            stop_now(server)
            _, stderr = run.communicate(timeout=300)
        finally:
            _ended(run)
        assert run.returncode == 4 and "error[vault-unreachable]" in stderr, stderr
        summary = _summary(out)
        outputs = sorted(out.rglob("*.dcm"))
        stopped = summary["stopped"]
        assert stopped["reference"] == "vault-unreachable"
        assert summary["written"] == len(outputs) > 0
        assert summary["files"] == n == summary["written"] + stopped["unwritten"] + stopped["not_processed"]
        assert not [p for p in out.rglob("*") if p.is_file() and p.suffix != ".dcm"]  # no temporary file
        start_again(server)  # committed transactions survive an immediate stop
        assert _every_output_sealed(url, out, key) == len(outputs)


def _deid_on(cluster: LocalCluster, tree: Path, out: Path, key: Path, *extra: str) -> subprocess.Popen[str]:
    script = Path(sys.executable).with_name("dicomcloak")
    environ = {k: v for k, v in os.environ.items() if k != "DICOMCLOAK_KEY_FILE"}
    return subprocess.Popen(
        [str(script), "deid", str(tree), "--out", str(out), "--key", str(key), *extra, "--pixels", "off",
         "--dask", cluster.address],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ,
    )


def _ended(run: subprocess.Popen[str]) -> None:
    if run.poll() is None:
        run.kill()
        run.wait()


def test_a_worker_killed_mid_run_stops_the_run_with_only_complete_sealed_outputs(
    cluster: LocalCluster, key: Path, tmp_path: Path, postgres_server_session: PostgresServer
) -> None:
    """The last test of the module: its cluster has lost a worker (its nanny starts another meanwhile)."""
    from distributed import Client

    tree = _cts(tmp_path / "in", 150, "killed")
    url = postgres_server_session.create_database()
    out = tmp_path / "out"
    run = _deid_on(cluster, tree, out, key, "--vault", url)
    try:
        staging = out / ".dicomcloak-tmp"
        markers = out.with_name("out.run").glob(".dicomcloak-claims.*/workers/*")
        _wait_for(lambda: (staging.is_dir() and any(staging.iterdir())) or run.poll() is not None)
        working = next(markers).read_text()  # the address of a worker with the run's contexts
        with Client(cluster.address, timeout="30s", set_as_default=False) as client:
            os.kill(client.run(os.getpid)[working], signal.SIGKILL)  # its last group is not committed yet
            _, stderr = run.communicate(timeout=300)
    finally:
        _ended(run)
    assert run.returncode == 3, stderr
    assert "error[worker-died]" in stderr and "Traceback" not in stderr
    outputs = sorted(out.rglob("*.dcm"))
    assert [p for p in outputs if ".dicomcloak-tmp" in p.parts] == []
    for path in outputs:
        dcmread(path)  # complete
    assert _every_output_sealed(url, out, key) == len(outputs)
    assert not list(out.with_name("out.run").glob("runs/*/report.json"))  # its counts would be unknown
    # The same command again writes the rest (and the same bytes again): every input once, all sealed.
    again = _deid_on(cluster, tree, out, key, "--vault", url)
    _, stderr = again.communicate(timeout=300)
    assert again.returncode == 0, stderr
    assert _every_output_sealed(url, out, key) == 150 == _summary(out)["written"]


def test_a_job_resumed_on_the_cluster_judges_new_inputs_against_earlier_outputs(
    cluster: LocalCluster, key: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    """``--job`` with ``--dask`` (docs/jobs.md): the earlier run's claims are made again in the run's shared
    claim directory, so an input added later is a duplicate or a UID conflict, never written over."""
    tree = _cts(tmp_path / "in", 4, "job")
    args = ("deid", tree, "--out", tmp_path / "out", "--key", key, "--pixels", "off", "--job", "grow",
            "--dask", cluster.address, "--json")
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    before = _tree(tmp_path / "out")
    source = next(tree.rglob("img000.dcm"))
    (tree / "later").mkdir()
    shutil.copyfile(source, tree / "later" / "copy.dcm")
    variant = dcmread(source)
    variant.PatientName = "Other^Patient"  # same UIDs, other content: a UID conflict
    variant.save_as(tree / "later" / "variant.dcm", enforce_file_format=True)
    again = run_cli(*args)
    assert again.returncode == 1, again.stderr  # the conflict is quarantined
    summary = json.loads(again.stdout)
    counts = summary["files"], summary["written"], summary["duplicates"], summary["quarantined"]
    assert counts == (6, 4, 1, 1)
    assert summary["job"]["done_before"] == 4 and summary["job"]["resumed"]
    assert _tree(tmp_path / "out") == before
    finished = run_cli(*args)
    assert finished.returncode == 0 and json.loads(finished.stdout)["job"]["nothing_to_do"]
