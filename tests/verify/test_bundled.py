"""Acceptance (issue 12, item 2) on every bundled file the suite has: pydicom's test files, pydicom-data's
and a synthetic corpus.

* ``verify`` exits 0 on dicomcloak's own output (the installed ``dicomcloak deid``) under each option
  with the key, and under the Basic Profile without it: the whole set under the Basic Profile and under
  retain-long-modified-dates + retain-safe-private + retain-device-identity, pydicom's files and the
  synthetic corpus under every other option.
* ``verify`` flags every output of dicognito (a peer) in which original identifying values survive.
  Which outputs those are is established without ``verify``: by the answer key of the synthetic corpus
  (``dicomcloak.testing.leakcheck``'s search), and for the real files by a plain scan written here.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from dicomcloak.keys import ProjectKey, write_key_file
from dicomcloak.policy import build_policy
from dicomcloak.standard.table import Action, Option
from dicomcloak.testing.corpus import build_corpus
from dicomcloak.testing.leakcheck import phi_strings, walk
from dicomcloak.verify import verify_trees

pytestmark = [pytest.mark.acceptance]

PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
_DATA_STORE = importlib.util.find_spec("data_store")
PYDICOM_DATA = (
    Path(next(iter(_DATA_STORE.submodule_search_locations or []))) / "data" if _DATA_STORE else None
)
SYNTHETIC = 30
COMBINED = ("retain-long-modified-dates", "retain-safe-private", "retain-device-identity")


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("dicomcloak")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "dicomcloak.cli.app"]
    env = {k: v for k, v in os.environ.items() if k != "DICOMCLOAK_KEY_FILE"}
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=600, check=False)


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("bundled")
    full, small = base / "full", base / "small"
    corpus = build_corpus(base / "corpus", SYNTHETIC, seed=12)
    for root in (full, small):
        shutil.copytree(PYDICOM_FILES, root / "pydicom")
        shutil.copytree(corpus / "files", root / "synthetic")
    if PYDICOM_DATA is not None:
        shutil.copytree(PYDICOM_DATA, full / "pydicom-data")
    key = base / "project.key"
    write_key_file(key, ProjectKey.generate())
    return {"base": base, "full": full, "small": small, "corpus": corpus, "key": key}


def _deid_and_verify(bundled: dict[str, Any], tree: str, options: tuple[str, ...], name: str) -> Path:
    src, out = bundled[tree], bundled["base"] / name
    opts = [arg for option in options for arg in ("--option", option)]
    done = _cli("deid", src, "--out", out, "--key", bundled["key"], "--jobs", "1", *opts)
    assert done.returncode in (0, 1), done.stderr  # some bundled files are quarantined, with reasons
    checked = _cli("verify", src, out, "--key", bundled["key"], "--jobs", "2", *opts)
    assert checked.returncode == 0, checked.stdout[-4000:] + checked.stderr
    return out


def test_whole_set_passes_under_the_basic_profile_with_and_without_key(bundled: dict[str, Any]) -> None:
    if PYDICOM_DATA is None:
        pytest.skip("pydicom-data (a test extra) is not installed")
    out = _deid_and_verify(bundled, "full", (), "out-basic")
    report = verify_trees(bundled["full"], out, build_policy([]), jobs=2)
    assert report.ok, report.render_text()
    assert report.outputs > 150 and report.matched_by_content == report.outputs


def test_whole_set_passes_under_modified_dates_safe_private_and_device_identity(
    bundled: dict[str, Any],
) -> None:
    if PYDICOM_DATA is None:
        pytest.skip("pydicom-data (a test extra) is not installed")
    _deid_and_verify(bundled, "full", COMBINED, "out-combined")


@pytest.mark.parametrize("option", [option.value for option in Option])
def test_each_option_passes(bundled: dict[str, Any], option: str) -> None:
    _deid_and_verify(bundled, "small", (option,), f"out-{option}")


# --- recall: dicognito's output -------------------------------------------------------------------------


def _dicognito(src: Path, out: Path) -> int:
    anonymizer_module = pytest.importorskip("dicognito.anonymizer")
    anonymizer = anonymizer_module.Anonymizer(seed="dicomcloak-verify")
    written = 0
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ds = pydicom.dcmread(path)
                anonymizer.anonymize(ds)
                target = out / path.relative_to(src)
                target.parent.mkdir(parents=True, exist_ok=True)
                ds.save_as(target)
            except Exception:  # a file dicognito cannot handle has no output
                continue
        written += 1
    return written


def _synthetic_truth(corpus: Path, out: Path) -> set[str]:
    """Outputs holding a planted PHI string (the answer key), searched as leakcheck searches."""
    import json

    files = json.loads((corpus / "answer_key.json").read_text())["files"]
    leaking = set()
    for rel, entry in files.items():
        ds = pydicom.dcmread(out / "synthetic" / rel)
        entries: list[tuple[str, str, bool]] = []
        walk(ds.file_meta, "meta/", entries)
        walk(ds, "", entries)
        blob = "\n".join(text for _, text, is_ui in entries if not is_ui).lower()
        if any(s.lower() in blob for e in entry["phi"] for s in phi_strings(e)):
            leaking.add(f"synthetic/{rel}")
    return leaking


def _elements(
    ds: Dataset, prefix: tuple[int, ...] = ()
) -> Iterator[tuple[tuple[int, ...], DataElement, Any]]:
    creators: dict[int, str] = {}
    for elem in ds:
        tag = int(elem.tag)
        group, element = tag >> 16, tag & 0xFFFF
        if group % 2 and 0x10 <= element <= 0xFF:
            creators[element] = str(elem.value)
            continue
        if elem.VR == "SQ":
            for index, item in enumerate(elem.value or []):
                yield from _elements(item, (*prefix, tag, index))
            continue
        yield (*prefix, tag), elem, creators.get(element >> 8) if group % 2 else None


def _text(elem: DataElement) -> str | None:
    value = elem.value
    if value is None or isinstance(value, bytes | bytearray):
        return None
    return "\\".join(map(str, value)) if isinstance(value, MultiValue | list) else str(value).strip()


def _real_truth(src: Path, out: Path, parts: tuple[str, ...]) -> set[str]:
    """Outputs in which a value the Basic Profile changes survives unchanged, in its own element.

    Deliberately plain: an original element whose rule is not K (nor a C that keeps its value),
    a character value of at least 4 letters and digits, the same value at the same place in the
    output. UIDs are left out (dicognito replaces them all).
    """
    policy = build_policy([])
    leaking = set()
    for path in sorted(p for part in parts for p in (out / part).rglob("*") if p.is_file()):
        rel = path.relative_to(out)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            original, output = pydicom.dcmread(src / rel), pydicom.dcmread(path)
            kept = {place: _text(elem) for place, elem, _ in _elements(output)}
            for place, elem, creator in _elements(original):
                action = policy.rule(place[-1], elem.VR, creator).action
                keeps = action is Action.K or (action is Action.C and elem.VR not in ("DA", "DT", "TM"))
                if elem.VR == "UI" or keeps:
                    continue
                text = _text(elem)
                if text and sum(ch.isalnum() for ch in text) >= 4 and kept.get(place) == text:
                    leaking.add(rel.as_posix())
                    break
    return leaking


def test_every_dicognito_output_that_keeps_an_original_value_is_flagged(bundled: dict[str, Any]) -> None:
    src, out = bundled["full"], bundled["base"] / "dicognito"
    assert _dicognito(src, out) > 150
    report = verify_trees(src, out, build_policy([]), jobs=2)
    flagged = {finding.output for finding in report.findings}
    synthetic = _synthetic_truth(bundled["corpus"], out)
    real = _real_truth(src, out, ("pydicom", "pydicom-data"))
    assert len(synthetic) == SYNTHETIC  # dicognito keeps free text, private tags, ...
    assert len(real) > 40
    assert synthetic - flagged == set()
    assert real - flagged == set()
