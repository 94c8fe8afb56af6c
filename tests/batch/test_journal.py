"""Resumable jobs (issue 16): ``deid --job`` killed with SIGKILL at random moments, resumed, until done.

The crash tests run the real console script on a corpus of tiny files and kill
it (the parent alone, whose workers then die with it, or its whole process
group) after a random delay drawn from a seeded RNG (the seed is printed and
can be set with ``DICOMCLOAK_CRASH_SEED``). At the end: one output per
instance, no temporary file left, every output complete and readable, the
same bytes as an uninterrupted run into another directory (vault) or the same
data set with a seal that opens (embedded), every output with its vault
record (exactly one), and the journal and the last report counting every
input once.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom import dcmread

from dicomcloak.api import Reidentifier
from dicomcloak.batch.jobstatus import job_status
from dicomcloak.batch.journal import JobSettings, Journal
from dicomcloak.errors import UsageError

EAS = 0x04000500  # Encrypted Attributes Sequence: the embedded seal (PS3.15 E.1.1)
PATIENT = "Smithers^Waylon"


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("dicomcloak")
    return [str(script)] if script.exists() else [sys.executable, "-m", "dicomcloak"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, tiny_corpus_factory: Callable[..., Path]) -> Path:
    return tiny_corpus_factory(tmp_path_factory.mktemp("crash") / "in", 1000, duplicates=10)


def _seed() -> int:
    seed = int(os.environ.get("DICOMCLOAK_CRASH_SEED", "0")) or random.SystemRandom().randrange(1, 2**31)
    print(f"crash test seed: {seed} (DICOMCLOAK_CRASH_SEED={seed} repeats it)")
    return seed


def crash_and_resume(command: list[str], kills: int, seed: int, status: Callable[[], dict[str, int]],
                     target: int = 100) -> list[int]:
    """Start ``command``, SIGKILL it at a random moment, ``kills`` times; then run it to its end.

    Returns the job's done count after each kill. A quarter of the kills come
    after a random delay from the start (often in start-up: the walk, the
    journal's opening, the first commit); the others once the run reported a
    random number of results (up to ``target``, from its progress lines) and
    a random fraction of a second more, so they strike in the middle of the
    work: results arriving, groups being written, sealed, renamed, the journal
    committing. The parent alone is killed (its workers die with it,
    PR_SET_PDEATHSIG) or its whole process group, as the RNG says.
    """
    rng = random.Random(seed)
    done_after: list[int] = []
    for _ in range(kills):
        process = subprocess.Popen([*command, "--progress-interval", "0.1"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True, start_new_session=True)
        watchdog = threading.Timer(120, process.kill)
        watchdog.start()
        try:
            stderr = _kill_at_random(process, rng, target)
        finally:
            watchdog.cancel()
        assert process.returncode in (0, -signal.SIGKILL), stderr
        _wait_for_group(process.pid)
        done_after.append(status()["done"])
    final = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    assert final.returncode == 0, final.stderr
    return done_after


def _kill_at_random(process: subprocess.Popen[str], rng: random.Random, target: int) -> str:
    """Kill ``process`` at a random moment (see :func:`crash_and_resume`); its stderr."""
    assert process.stderr is not None
    lines: list[str] = []
    if rng.random() < 0.25:
        time.sleep(rng.uniform(0.1, 2.0))
    else:
        wanted = rng.randrange(target)
        for line in process.stderr:
            lines.append(line)
            if line.startswith('{"progress"') and json.loads(line)["progress"]["done"] >= wanted:
                break
        time.sleep(rng.uniform(0.0, 0.2))
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL) if rng.random() < 0.5 else os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    lines.append(process.stderr.read())
    process.stderr.close()
    return "".join(lines)


def _wait_for_group(pgid: int) -> None:
    """Wait until every process of the killed run's group is gone (its workers die with the parent)."""
    for _ in range(200):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.01)


def _outputs(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*") if p.is_file())


def _check_tree(out: Path, instances: int) -> None:
    """One output per instance, no temporary file anywhere, every output complete and readable."""
    files = _outputs(out)
    assert not [p for p in out.rglob("*") if p.name.startswith(".dicomcloak")], "debris left in the output"
    assert all(p.suffix == ".dcm" for p in files)
    assert len(files) == instances
    for path in files:
        ds = dcmread(path)
        assert len(ds.PixelData) == 128
        assert PATIENT not in str(ds.get("PatientName", ""))


def _check_journal_and_report(run_dir: Path, name: str, inputs: int, instances: int) -> dict[str, object]:
    """Every input done exactly once in the journal; the last report counts the whole job."""
    found = job_status(run_dir, name)
    assert (found.total, found.done, found.pending) == (inputs, inputs, 0)
    assert found.outcomes == {"written": instances, "duplicate": inputs - instances}
    assert found.finished
    with sqlite3.connect(run_dir / "jobs" / name / "journal.sqlite") as db:
        assert db.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM inputs").fetchone() == (inputs, inputs)
    pointer = json.loads((run_dir / "latest.json").read_text())
    report = json.loads((run_dir / pointer["report"]).read_text())
    summary = report["summary"]
    assert summary["files"] == inputs
    assert summary["written"] == instances
    assert summary["files"] == summary["written"] + summary["duplicates"] + summary["quarantined"]
    assert summary["job"]["name"] == name
    assert summary["job"]["done_before"] + summary["job"]["done_now"] == inputs
    assert len(summary["job"]["runs"]) == len(found.runs)
    return summary


def _status(run_dir: Path, name: str) -> Callable[[], dict[str, int]]:
    def read() -> dict[str, int]:
        path = run_dir / "jobs" / name / "journal.sqlite"
        if not path.exists():
            return {"done": 0}
        status = job_status(run_dir, name)
        return {"done": status.done, "pending": status.pending}

    return read


def _vault_rows(vault: Path) -> set[tuple[str, str, str]]:
    with sqlite3.connect(vault) as db:
        rows = db.execute("SELECT study, instance, binding FROM dicomcloak_bound_records").fetchall()
    unique = set(rows)
    assert len(unique) == len(rows)
    return unique


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stderr


def _bound(outputs: list[Path]) -> set[tuple[str, str, str]]:
    """(study, instance, binding digest) of each output: what its vault record must be keyed by."""
    from dicomcloak.io.binding import binding_digest
    from dicomcloak.io.reader import read_dataset

    bound = set()
    for path in outputs:
        ds = read_dataset(path.read_bytes())
        bound.add((str(ds.StudyInstanceUID), str(ds.SOPInstanceUID), binding_digest(ds).hex()))
    return bound


def _progressed(done_after: list[int]) -> int:
    """How many kills struck after the killed run had recorded some work (the middle of the work)."""
    return sum(1 for before, after in zip([0, *done_after], done_after, strict=False) if after > before)


def _crash(corpus: Path, tmp_path: Path, key_file: Path, kills: int, *, dups: int, embedded: bool,
           target: int) -> None:
    """Kill and resume a job ``kills`` times, then check it against an uninterrupted run of the same job.

    Always with a SQLite vault: every output has exactly one vault record, bound to it. ``embedded``:
    with ``--recipient`` too, each output's seal must open and restore the original; seals are made
    with fresh random keys, so outputs equal the reference's but for the seal. Without: byte for byte.
    """
    inputs = sum(1 for p in corpus.rglob("*.dcm"))
    instances = inputs - dups
    sealing: list[str] = []
    if embedded:
        sealing = _owner_files(tmp_path)
    base = [*_cli(), "deid", str(corpus), "--key", str(key_file), "-j", "2", "--json", "--job", "crash",
            *sealing]
    out, vault = tmp_path / "out", tmp_path / "vault.db"
    command = [*base, "--out", str(out), "--vault", f"sqlite:///{vault}"]
    done_after = crash_and_resume(command, kills, _seed(), _status(tmp_path / "out.run", "crash"), target)
    print(f"done after each kill: {done_after}")
    assert _progressed(done_after) >= 3, done_after
    _check_tree(out, instances)
    summary = _check_journal_and_report(tmp_path / "out.run", "crash", inputs, instances)
    assert summary["job"]["resumed"]
    outputs = _outputs(out)
    assert _bound(outputs) == _vault_rows(vault)
    reference = tmp_path / "reference"
    _run([*base, "--out", str(reference), "--vault", f"sqlite:///{tmp_path / 'reference-vault.db'}"])
    expected = _outputs(reference)
    assert [p.relative_to(reference) for p in expected] == [p.relative_to(out) for p in outputs]
    if not embedded:
        assert all(a.read_bytes() == b.read_bytes() for a, b in zip(expected, outputs, strict=True))
        return
    assert _bound(expected) == _bound(outputs)  # every byte but the seal's (io.binding)
    reidentifier = _reidentifier(tmp_path)
    for made, path in zip(expected, outputs, strict=True):
        ds, other = dcmread(path), dcmread(made)
        assert EAS in ds
        assert ds.PixelData == other.PixelData
        assert str(reidentifier.reidentify(ds).dataset.PatientName) == PATIENT


def _owner_files(tmp_path: Path) -> list[str]:
    """An owner certificate and a sealer key in ``tmp_path``; the deid options that seal with them."""
    from dicomcloak.keys.cms import make_owner
    from dicomcloak.keys.sealing import make_sealer

    key_pem, cert_pem = make_owner()
    sealer_key, sealer_cert = make_sealer()
    for name, pem in (("owner.key.pem", key_pem), ("owner.cert.pem", cert_pem),
                      ("sealer.key.pem", sealer_key), ("sealer.cert.pem", sealer_cert)):
        (tmp_path / name).write_bytes(pem)
        os.chmod(tmp_path / name, 0o600)
    return ["--recipient", str(tmp_path / "owner.cert.pem"), "--sealer-key", str(tmp_path / "sealer.key.pem")]


def _reidentifier(tmp_path: Path) -> Reidentifier:
    from dicomcloak.keys.cms import load_certificate, load_owner_key
    from dicomcloak.keys.sealing import load_trusted_sealers

    cert = load_certificate((tmp_path / "owner.cert.pem").read_bytes(), "owner.cert.pem")
    owner = load_owner_key((tmp_path / "owner.key.pem").read_bytes(), cert, "owner.key.pem")
    trusted = load_trusted_sealers([((tmp_path / "sealer.cert.pem").read_bytes(), "sealer.cert.pem")])
    return Reidentifier(owner, trusted=trusted)


def test_a_sealing_job_killed_twenty_times_ends_as_one_uninterrupted_run(
    corpus: Path, tmp_path: Path, key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default crash test: embedded seals and a vault at once, 20 kills.

    The journal records work every 0.05 s instead of every second: this small job takes about two seconds,
    and the kills must fall after some work was recorded, in the middle of the job.
    """
    monkeypatch.setenv("DICOMCLOAK_JOURNAL_FLUSH_SECONDS", "0.05")
    _crash(corpus, tmp_path, key_file, 20, dups=10, embedded=True, target=200)


@pytest.fixture(scope="module")
def big_corpus(tmp_path_factory: pytest.TempPathFactory, tiny_corpus_factory: Callable[..., Path]) -> Path:
    """Enough work for a hundred kills (each does some, the next run goes on from there)."""
    return tiny_corpus_factory(tmp_path_factory.mktemp("crash-big") / "in", 5000, duplicates=50)


#: The 100-kill variants take 5-10 minutes each: run with DICOMCLOAK_LONG_CRASH=1 (docs/jobs.md).
long_crash = pytest.mark.skipif(os.environ.get("DICOMCLOAK_LONG_CRASH") != "1",
                                reason="the 100-kill crash tests run with DICOMCLOAK_LONG_CRASH=1")


@pytest.mark.slow
@long_crash
def test_a_job_killed_a_hundred_times_writes_the_same_bytes_as_one_uninterrupted_run(
    big_corpus: Path, tmp_path: Path, key_file: Path
) -> None:
    _crash(big_corpus, tmp_path, key_file, 100, dups=50, embedded=False, target=250)


@pytest.mark.slow
@long_crash
def test_a_sealing_job_killed_a_hundred_times_ends_as_one_uninterrupted_run(
    big_corpus: Path, tmp_path: Path, key_file: Path
) -> None:
    _crash(big_corpus, tmp_path, key_file, 100, dups=50, embedded=True, target=200)


# -- the journal itself ----------------------------------------------------------------------------------


def _job(name: str = "j", inputs: tuple[str, ...] = ("/data/a",), **settings: object) -> JobSettings:
    return JobSettings(name, inputs, settings=dict(settings))


def test_a_journal_refuses_other_inputs_or_facts_and_force_starts_over(tmp_path: Path) -> None:
    facts = {"command": "deid", "key_id": "k1"}
    Journal.open(tmp_path, _job(), facts).close()
    for job, made in ((_job(inputs=("/data/b",)), facts), (_job(), {**facts, "key_id": "k2"}),
                      (_job(conflicts="keep-both"), facts)):
        with pytest.raises(UsageError) as refused:
            Journal.open(tmp_path, job, made)
        assert refused.value.reference == "job-mismatch"
        assert "--force" in refused.value.hint
        assert "k2" not in refused.value.message  # names what differs, not values
    forced = Journal.open(tmp_path, JobSettings("j", ("/data/b",), force=True), facts)
    try:
        assert forced.counts() == {}
    finally:
        forced.close()


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "..", "x" * 65, "name with space"])
def test_a_job_name_is_validated(tmp_path: Path, name: str) -> None:
    with pytest.raises(UsageError) as refused:
        Journal.open(tmp_path, _job(name), {})
    assert refused.value.reference == "job-name-invalid"


def test_the_journal_is_private(tmp_path: Path) -> None:
    Journal.open(tmp_path / "run", _job(), {}).close()
    journal = tmp_path / "run" / "jobs" / "j" / "journal.sqlite"
    assert journal.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "run" / "jobs").stat().st_mode & 0o777 == 0o700


def test_a_second_run_of_a_job_in_progress_is_refused(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from dicomcloak.batch.journal import JobSettings, Journal; "
         f"j = Journal.open(Path({str(tmp_path)!r}), JobSettings('j', ('/data/a',)), {{}}); "
         "print('ready', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(UsageError) as refused:
            Journal.open(tmp_path, _job(), {})
        assert refused.value.reference == "job-busy"
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    Journal.open(tmp_path, _job(), {}).close()  # released by the kernel when its holder died


def test_the_vault_accepts_the_same_record_twice_as_one(tmp_path: Path, key_file: Path) -> None:
    """An input processed again after a kill re-seals the same record: replaced, never added twice."""
    from dicomcloak.batch.keyfiles import resolve_keyring
    from dicomcloak.vault import Vault, VaultRecord

    found = resolve_keyring(key_file, {})
    assert found is not None
    url = f"sqlite:///{tmp_path / 'v.db'}"
    pairs = (("1.2.3.4", "9.9.9"),)
    record = VaultRecord("PAT", "1.2.3", "1.2.3.4", b"sealed originals", pairs, b"\x01" * 32)
    with Vault.open(url, found[0]) as vault:
        vault.seal_records([record])
        vault.seal_records([record])
    assert len(_vault_rows(tmp_path / "v.db")) == 1
