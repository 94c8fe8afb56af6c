"""``report.html`` of a real ``deid`` run, opened in headless Chromium (issue 16; docs/reports.md).

One run of the real console script over a hospital-like export: the
synthetic corpus (:mod:`dicomcloak.testing.corpus`, PHI planted everywhere,
with its answer key), and beside it, in files named after the patient, a copy
of one instance (a duplicate), another object under its SOP Instance UID (a
UID conflict), a file that is not DICOM (quarantined), a dangling link
(skipped) and a synthetic ultrasound with burned-in text that the pixel stage
examines with the real OCR. The page is read back from Chromium's DOM, never from the HTML
source alone, and its numbers are compared with the run's ``report.json``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread

from dicomcloak.testing import browser
from dicomcloak.testing.corpus import build_corpus
from dicomcloak.testing.pixel_synth import make_images


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "DICOMCLOAK_KEY_FILE"}
    command = [str(Path(sys.executable).with_name("dicomcloak")), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=environ, check=False, timeout=600)


def _export(root: Path) -> tuple[Path, list[str]]:
    """The inputs, and what must never reach the page: PHI (header values, burned-in text, original UIDs)
    and the names of the input files, several of which are named after the patient."""
    build_corpus(root, 6, seed=3)
    files = json.loads((root / "answer_key.json").read_text("utf-8"))["files"]
    needles = [entry["value"] for info in files.values() for entry in info["phi"]]
    needles += [uid for info in files.values() for uid in info["uids"].values()]
    first = sorted(files)[0]
    family = next(e["value"] for e in files[first]["phi"] if e["kind"] == "name_part")
    inputs = root / "files"
    (root / "answer_key.json").unlink()
    folder = inputs / f"{family.lower()}_extra"  # after the corpus's P00001/ in the walk's sorted order
    folder.mkdir()
    shutil.copyfile(inputs / first, folder / f"{family}_copy.dcm")  # a duplicate
    ds = dcmread(inputs / first)
    ds.SeriesDescription = "another object under the same UID"
    ds.save_as(folder / f"{family}_conflict.dcm")  # a UID conflict
    (folder / f"{family}_notes.dcm").write_bytes(b"not a DICOM file at all\n" * 8)  # not-dicom
    os.symlink(folder / "nowhere.dcm", folder / f"{family}_link.dcm")  # skipped: dangling-symlink
    synth = make_images(root / "synth-staging", n=1, seed=7)[0]
    shutil.copyfile(synth, folder / f"{family}_burned_in.dcm")
    truth = json.loads(synth.with_suffix(".json").read_text("utf-8"))
    shutil.rmtree(root / "synth-staging")
    needles += [str(value) for value in truth["header"].values()]
    needles += [segment["text"] for segment in truth["segments"] if segment.get("phi")]
    needles += [path.stem for path in folder.iterdir()] + [folder.name, family, "P00001", "I0001"]
    return inputs, [needle for needle in needles if len(needle) >= 4]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The deid run: its summary, report.json, page, DOM, and the PHI of its inputs."""
    if browser.find_browser() is None:
        pytest.skip(browser.MISSING)
    base = tmp_path_factory.mktemp("htmlreport")
    inputs, needles = _export(base / "in")
    key = base / "project.key"
    assert _cli("keys", "init", "--out", key).returncode == 0
    done = _cli("deid", inputs, "--out", base / "out", "--key", key, "--jobs", "1", "--json")
    assert done.returncode == 1, done.stderr  # 1: some inputs were quarantined
    summary = json.loads(done.stdout)
    page = Path(summary["html_report"])
    probe = base / "probe.html"  # the page with the image-counting script (tests only)
    probe.write_text(browser.with_image_probe(page.read_text("utf-8")), "utf-8")
    return {
        "summary": summary, "report": json.loads(Path(summary["report"]).read_text("utf-8")), "page": page,
        "dom": browser.dump_dom(page), "probe": browser.dump_dom(probe), "needles": needles,
        "out": base / "out",
    }


class _Page(HTMLParser):
    """Tables (by class: rows of cell texts), charts (by id: bars and their values) and text of a DOM."""

    def __init__(self, dom: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.charts: dict[str, list[str]] = {}
        self.text: list[str] = []
        self._table = self._chart = ""
        self._cell: list[str] | None = None
        self._title = False
        self.feed(dom)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table":
            self._table = (found.get("class") or "").split(" ")[0]
            self.tables.setdefault(self._table, [])
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "svg" and "chart" in (found.get("class") or ""):
            self._chart = found.get("id") or ""
            self.charts[self._chart] = []
        elif tag == "rect" and self._chart and "bar" in (found.get("class") or "").split():
            self.charts[self._chart].append("")
            self._title = True

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = ""
        elif tag == "svg":
            self._chart = ""
        elif tag == "rect":
            self._title = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._title and self._chart and data.strip():  # the bar's <title>: "label: value"
            self.charts[self._chart][-1] = data.strip()


def _body(table: list[list[str]]) -> list[list[str]]:
    return [row for row in table[1:] if row]


def test_the_page_is_beside_report_json_owner_only_and_the_output_stays_dicom(run: dict[str, Any]) -> None:
    page: Path = run["page"]
    assert page.parent == Path(run["summary"]["report"]).parent
    assert stat.S_IMODE(page.stat().st_mode) == 0o600
    assert run["summary"]["pixel_report"] == str(page)  # the pixel cards are on the same page
    assert not (page.parent / "pixels.html").exists()
    assert {path.suffix for path in run["out"].rglob("*") if path.is_file()} == {".dcm"}


def test_chromium_renders_every_section_and_every_thumbnail(run: dict[str, Any]) -> None:
    dom = run["dom"]
    for section in ("outcomes", "modalities", "actions", "deviations", "not-written", "uid-conflicts",
                    "pixels", "timings", "made-with", "run-facts"):
        assert f'id="{section}"' in dom, section
    loaded, total = browser.loaded_images(run["probe"]) or (0, -1)
    assert loaded == total >= 1  # the burned-in image's card: before (and after, when it was written)


def test_each_chart_has_one_bar_per_row_of_its_table(run: dict[str, Any]) -> None:
    page, report = _Page(run["dom"]), run["report"]
    actions = {change["action"] for change in report["changes"]}
    assert len(page.charts["chart-outcomes"]) == len(_body(page.tables["outcomes"])) == 4
    assert len(page.charts["chart-modalities"]) == len(report["modalities"]) >= 3  # CT, US, unknown, ...
    assert len(page.charts["chart-actions"]) == len(actions) == len(_body(page.tables["actions"]))
    outcome_bars = dict(bar.rsplit(": ", 1) for bar in page.charts["chart-outcomes"])
    assert outcome_bars["written"] == str(run["summary"]["written"])


def test_the_tables_hold_the_counts_of_report_json(run: dict[str, Any]) -> None:
    page, report, summary = _Page(run["dom"]), run["report"], run["summary"]
    outcomes = {label: int(count) for label, count in _body(page.tables["outcomes"])}
    assert outcomes == {key: summary[key] for key in ("written", "duplicates", "quarantined", "skipped")}
    assert (summary["duplicates"], summary["skipped"], summary["uid_conflicts"]) == (1, 1, 1)
    columns = ("written", "duplicate", "quarantined", "unwritten")
    modalities = [[row["modality"], *(str(row[k]) for k in columns)] for row in report["modalities"]]
    assert _body(page.tables["modalities"]) == modalities
    expected = Counter((entry["status"], entry["reason"]) for entry in report["not_written"])
    shown = {(row[0], row[1]): int(row[2]) for row in _body(page.tables["reasons"])}
    assert shown == expected
    codes = {code for _, code in shown}
    assert {"duplicate-instance", "uid-conflict", "not-dicom", "dangling-symlink"} <= codes
    for row in _body(page.tables["reasons"]):  # every code of this run has its own words, not the fallback
        assert row[5] and "reason.json, which holds the hint" not in row[5], row
    conflicts = [[str(c["index"]), str(c["conflicts_with"]), c["resolution"]]
                 for c in report["uid_conflicts"]]
    assert _body(page.tables["conflicts"]) == conflicts
    per_action: Counter[str] = Counter()
    for change in report["changes"]:
        per_action[change["action"]] += change["count"]
    assert {row[0]: int(row[3]) for row in _body(page.tables["actions"])} == per_action


def test_the_pixel_section_counts_every_instance_by_status(run: dict[str, Any]) -> None:
    page, summary = _Page(run["dom"]), run["summary"]
    rows = {row[0]: int(row[1]) for row in page.tables["summary"] if len(row) == 2}
    assert rows["instances"] == sum(summary["pixels"].values())
    examined = sum(n for status, n in summary["pixels"].items() if status != "not-examined")
    assert rows["images examined"] == examined


def test_policy_options_and_key_id_but_never_the_key(run: dict[str, Any], tmp_path: Path) -> None:
    page, summary = _Page(run["dom"]), run["summary"]
    facts = {row[0]: row[1] for row in page.tables["made-with"]}
    assert facts["policy_sha256"] == summary["policy_sha256"]
    assert facts["key_id"] == summary["key_id"]
    assert facts["pixels_mode"] == "auto"
    key = Path(summary["output"]).parent / "project.key"
    for token in re.findall(r"[A-Za-z0-9+/=_-]{16,}", key.read_text("utf-8", "replace")):
        if token != summary["key_id"]:
            assert token not in run["dom"], "a part of the key file is on the page"


def test_the_page_prints(run: dict[str, Any], tmp_path: Path) -> None:
    pages = browser.print_pdf(run["page"], tmp_path / "report.pdf")
    assert 2 <= pages <= 20  # every section, the image card included, on a few sheets
    assert (tmp_path / "report.pdf").read_bytes().startswith(b"%PDF-")


def test_the_page_requests_nothing_from_the_network(run: dict[str, Any], tmp_path: Path) -> None:
    assert browser.page_requests(run["page"]) == []
    control = tmp_path / "control.html"  # the same check sees a page that does load something
    control.write_text('<img src="http://127.0.0.1:9/x.png">', "utf-8")
    assert browser.page_requests(control) == ["http://127.0.0.1:9/x.png"]
    targets = re.findall(r"""\b(?:src|href)\s*=\s*["']([^"']*)""", run["page"].read_text("utf-8"))
    assert targets and all(target.startswith("data:image/png;base64,") for target in targets)


def test_no_input_name_and_no_phi_in_the_text_of_the_page(run: dict[str, Any]) -> None:
    html = run["page"].read_text("utf-8")
    words = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", html)  # thumbnails: images, PHI by design
    text = " ".join(_Page(run["dom"]).text)
    assert len(run["needles"]) > 50
    for needle in run["needles"]:
        assert needle not in words and needle not in text, needle
    assert "contains PHI" in text  # the cards show the image as it was: the page says so at its top


def test_a_sanitize_run_page_has_no_images_and_says_it_holds_no_phi(tmp_path: Path) -> None:
    if browser.find_browser() is None:
        pytest.skip(browser.MISSING)
    inputs = build_corpus(tmp_path / "in", 3, seed=5) / "files"
    (inputs / "junk.dcm").write_bytes(b"junk")
    done = _cli("sanitize", inputs, "--out", tmp_path / "out", "--json")
    assert done.returncode == 1, done.stderr
    summary = json.loads(done.stdout)
    page = Path(summary["html_report"])
    assert stat.S_IMODE(page.stat().st_mode) == 0o600
    dom = browser.dump_dom(page)
    parsed = _Page(dom)
    assert "<img" not in dom and "contains PHI" not in dom and 'id="no-phi-note"' in dom
    assert {label: int(n) for label, n in _body(parsed.tables["outcomes"])}["written"] == 3
    assert "deviations" not in parsed.tables  # sanitize does not de-identify: no deviations section
    assert "junk" not in " ".join(parsed.text) and "P00001" not in " ".join(parsed.text)
