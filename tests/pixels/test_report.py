"""The pixel report: real images in, standalone HTML out, with no OCR text and no header value in it."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_color_lut

from dicomcloak.errors import OutputError, UsageError
from dicomcloak.pixels.model import PixelMode, PixelResult, PixelStatus, Rect, Region, TextBox, Verdict
from dicomcloak.pixels.report import BANNER, ReportItem, Section, context, environment, render, write_report
from dicomcloak.pixels.report.views import frame_list

#: Planted in a region's OCR text: the report must never show it.
OCR_NAME = "SMITHERS WAYLON"


def _load(name: str) -> tuple[NDArray[np.uint8], str]:
    """A display image (uint8) of pydicom's bundled file ``name``, and its Patient's Name (a header value)."""
    ds = dcmread(str(get_testdata_file(name)))
    pixels = ds.pixel_array
    if ds.PhotometricInterpretation == "PALETTE COLOR":
        pixels = apply_color_lut(pixels, ds) >> 8
    if pixels.dtype != np.uint8:
        low, high = float(pixels.min()), float(pixels.max())
        pixels = (pixels.astype(np.float64) - low) * (255 / max(high - low, 1))
    return np.ascontiguousarray(pixels, dtype=np.uint8), str(ds.PatientName)


def _region(rect: Rect, verdict: Verdict, *, text: str | None = OCR_NAME, source: str = "ocr",
            frames: tuple[int, ...] = (0,), redacted: bool = True) -> Region:
    return Region(TextBox(rect, text, 0.93, source), verdict, frames, redacted)


def _items() -> tuple[list[ReportItem], list[str]]:
    """An ultrasound cleaned (PHI, other text), a palette image quarantined (template), a CT without text."""
    us, us_name = _load("US1_UNCR.dcm")
    palette, palette_name = _load("OBXXXX1A.dcm")
    ct, ct_name = _load("CT_small.dcm")
    after = us.copy()
    after[10:40, 20:300] = 0  # the PHI box, blanked
    person = Verdict(True, "person-name", "header:PatientName")
    name = _region(Rect(10, 20, 40, 300), person, frames=tuple(range(30)))
    gain = _region(Rect(400, 500, 430, 620), Verdict(False, "text", "none"), text="GAIN 50", redacted=False)
    device = _region(Rect(0, 0, 60, 800), Verdict(True, "text", "template:test-device"), text=None,
                     source="template:test-device")
    remains = _region(Rect(500, 100, 540, 400), Verdict(True, "date", "pattern:date"), text="08/29/1951")
    items = [
        ReportItem("instance-0001", us, after, (name, gain), PixelResult(
            PixelStatus.CLEANED, PixelMode.PHI, (name, gain), 30, (0, 7, 14, 22, 29), risk=("modality:US",))),
        ReportItem("instance-0002", palette, None, (device, remains), PixelResult(
            PixelStatus.QUARANTINED, PixelMode.ALL_TEXT, (device, remains), 1, (0,), "pixel-phi-remains")),
        ReportItem("instance-0003", ct, ct.copy(), (), PixelResult(PixelStatus.NO_TEXT, PixelMode.ALL_TEXT)),
    ]
    return items, [us_name, palette_name, ct_name]


COUNTED = [PixelResult(PixelStatus.NOT_EXAMINED, PixelMode.AUTO)] * 2


class _Page(HTMLParser):
    """The parts of a report page the tests look at: images, boxes, banner, text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.images: list[dict[str, str | None]] = []
        self.rects: list[dict[str, str | None]] = []
        self.banner = ""
        self._in_banner = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "img":
            self.images.append(found)
        elif tag == "rect":
            self.rects.append(found)
        self._in_banner = found.get("id") == "phi-banner"

    def handle_endtag(self, tag: str) -> None:
        self._in_banner = False

    def handle_data(self, data: str) -> None:
        if self._in_banner:
            self.banner += data


@pytest.fixture(scope="module")
def report() -> tuple[str, list[str]]:
    items, header_names = _items()
    facts = {"command": "scan", "pixels": "auto"}
    return render(items, title="dicomcloak scan: pixels", run_facts=facts, counted=COUNTED), header_names


def _png(uri: str | None) -> Image.Image:
    assert uri is not None and uri.startswith("data:image/png;base64,")
    import base64

    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


def test_every_item_has_inline_png_thumbnails_that_fit(report: tuple[str, list[str]]) -> None:
    page = _Page(report[0])
    assert [image["alt"] for image in page.images] == ["before", "after", "before", "before", "after"]
    sizes = [_png(image["src"]).size for image in page.images]
    assert sizes == [(384, 288), (384, 288), (384, 288), (128, 128), (128, 128)]  # never enlarged
    assert [(int(i["width"] or 0), int(i["height"] or 0)) for i in page.images] == sizes


def test_after_thumbnail_shows_the_blanked_box(report: tuple[str, list[str]]) -> None:
    before, after = (np.asarray(_png(image["src"])) for image in _Page(report[0]).images[:2])
    assert after[8:22, 14:178].max() == 0 < before[8:22, 14:178].max()  # rows 10-40, cols 20-300 at 0.6


def test_boxes_are_scaled_and_coloured_by_verdict(report: tuple[str, list[str]]) -> None:
    rects = _Page(report[0]).rects
    assert [r["class"] for r in rects] == [
        "box phi redacted", "box text kept", "box template redacted", "box phi redacted"]
    assert [(r["x"], r["y"], r["width"], r["height"]) for r in rects[:2]] == [
        ("12.0", "6.0", "168.0", "18.0"), ("300.0", "240.0", "72.0", "18.0")]
    assert "#1 phi: person-name (header:PatientName), redacted" in report[0]  # the tooltip


def test_banner_says_the_report_shows_phi(report: tuple[str, list[str]]) -> None:
    assert _Page(report[0]).banner == BANNER
    assert BANNER.startswith("This report shows images before de-identification: it contains PHI.")


def test_no_ocr_text_and_no_header_value_in_the_report(report: tuple[str, list[str]]) -> None:
    html, header_names = report
    secrets = [OCR_NAME, "SMITHERS", "Waylon", "GAIN 50", "08/29/1951", *header_names, "CompressedSamples"]
    for secret in secrets:
        assert secret.lower() not in html.lower(), secret
    assert "US1_UNCR" not in html and ".dcm" not in html  # no file names either


def test_summary_counts_every_instance_with_quarantine_reasons(report: tuple[str, list[str]]) -> None:
    rows = dict(re.findall(r'<tr><th scope="row">([^<]+)</th><td class="n">(\d+)</td></tr>', report[0]))
    assert rows == {
        "instances": "5", "images examined": "3", "cleaned (Burned In Annotation NO)": "1",
        "examined, no text to redact": "1", "quarantined": "1", "pixels not examined": "2",
    }
    assert "<tr><td><code>pixel-phi-remains</code></td><td class=\"n\">1</td></tr>" in report[0]
    assert "<tr><td>redacted</td><td class=\"n\">3</td></tr>" in report[0]


def test_frames_and_an_unwritten_after_are_shown(report: tuple[str, list[str]]) -> None:
    html = report[0]
    assert "30 frames" in html and "frames examined 0, 7, 14, 22, 29" in html and "<td>0-29</td>" in html
    assert "no image written" in html and "pixel-phi-remains" in html


def test_frame_list_gives_ranges() -> None:
    assert frame_list([]) == ""
    assert frame_list([3, 0, 1, 2, 7, 9, 10]) == "0-3, 7, 9-10"


def test_everything_given_is_escaped_except_trusted_sections() -> None:
    items, _ = _items()
    html = render(
        [ReportItem("<b>x</b>", items[2].before, None, (), items[2].result)], title="<i>t</i>",
        run_facts={"<u>k</u>": "<s>v</s>"},
        sections=[Section("<em>s</em>", "<p id='mine'>ok</p>"), ("two", "")],
    )
    for raw in ["<b>x</b>", "<i>t</i>", "<u>k</u>", "<s>v</s>", "<em>s</em>"]:
        assert raw not in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "&lt;em&gt;s&lt;/em&gt;" in html
    assert "<p id='mine'>ok</p>" in html and html.index("id=\"section-1\"") < html.index("id=\"section-2\"")
    assert html.index("id=\"summary\"") < html.index("id=\"section-1\"") < html.index("id=\"images\"")


def test_a_report_can_extend_the_template() -> None:
    """The batch run report (issue 16) overrides blocks and keeps the banner, style and summary."""
    from jinja2 import ChoiceLoader, DictLoader, Environment

    child = '{% extends "report.html.j2" %}{% block sections %}'
    child += '<p id="run">{{ files }} files</p>{% endblock %}'
    ours = environment().loader
    assert ours is not None
    loader = ChoiceLoader([DictLoader({"run.html.j2": child}), ours])
    env = Environment(loader=loader, autoescape=True)
    html = env.get_template("run.html.j2").render(context([], title="run"), files=12)
    assert '<p id="run">12 files</p>' in html and BANNER in html and 'id="summary"' in html


@pytest.mark.parametrize(
    ("before", "after", "problem"),
    [
        (np.zeros((4, 4)), None, "not a uint8 image"),
        (np.zeros((4, 4, 4), np.uint8), None, "neither rows x cols"),
        (np.zeros((0, 4), np.uint8), None, "neither rows x cols"),
        (np.zeros((4, 4), np.uint8), np.zeros((4, 5), np.uint8), "another shape"),
    ],
)
def test_item_images_are_checked(
    before: NDArray[np.uint8], after: NDArray[np.uint8] | None, problem: str
) -> None:
    with pytest.raises(UsageError, match=problem) as caught:
        ReportItem("x", before, after, (), PixelResult(PixelStatus.NO_TEXT, PixelMode.ALL_TEXT))
    assert caught.value.reference == "report-item-invalid"


def test_write_report_is_owner_only_and_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "run" / "pixels.html"
    path.parent.mkdir()
    path.write_text("old")
    path.chmod(0o644)
    write_report(path, "<p>é</p>")
    assert path.read_text("utf-8") == "<p>é</p>"
    assert path.stat().st_mode & 0o777 == 0o600
    assert os.listdir(path.parent) == ["pixels.html"]  # no temporary file left


def test_write_report_fails_with_a_typed_error_and_leaves_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError) as caught:
        write_report(blocker / "pixels.html", "<p></p>")
    assert caught.value.reference == "output-unwritable"
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_importing_the_report_loads_neither_jinja2_nor_pillow() -> None:
    code = "import sys, dicomcloak.pixels.report; print(sorted({'jinja2', 'PIL'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# In a real browser: headless Chromium (Debian package chromium), skipped with a reason when missing.

from dicomcloak.testing import browser  # noqa: E402 - the browser tests' own import, kept beside them


@pytest.fixture(scope="module")
def shown(report: tuple[str, list[str]], tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """The report written with the image probe, and its DOM after Chromium loaded it."""
    if browser.find_browser() is None:
        pytest.skip(browser.MISSING)
    page = tmp_path_factory.mktemp("report") / "pixels.html"
    write_report(page, browser.with_image_probe(report[0]))
    return browser.dump_dom(page), page


def test_chromium_loads_every_thumbnail(shown: tuple[str, Path]) -> None:
    dom, _ = shown
    assert browser.loaded_images(dom) == (5, 5)  # complete, naturalWidth > 0: allowed by the page's CSP
    page = _Page(dom)
    assert sum(1 for image in page.images if (image["src"] or "").startswith("data:image/png;base64,")) == 5
    assert [r["class"] for r in page.rects] == [
        "box phi redacted", "box text kept", "box template redacted", "box phi redacted"]
    assert page.banner == BANNER
    assert OCR_NAME.lower() not in dom.lower()


def test_chromium_screenshot_is_not_blank(shown: tuple[str, Path], tmp_path: Path) -> None:
    shot = browser.screenshot(shown[1], tmp_path / "shot.png", size=(1280, 1800))
    assert shot.stat().st_size > 50_000
    with Image.open(shot) as image:
        rgb = image.convert("RGB")
    assert rgb.getcolors(maxcolors=1_000) is None  # more than 1,000 colours: thumbnails, not a blank page
    red, green, blue = np.asarray(rgb)[5, 5].tolist()
    assert red > 150 and green < 80 and blue < 80  # the PHI banner across the top


def test_the_report_runs_no_script_of_its_own(report: tuple[str, list[str]], tmp_path: Path) -> None:
    """Its Content-Security-Policy blocks any script not allowed by hash (the probe above is allowed)."""
    if browser.find_browser() is None:
        pytest.skip(browser.MISSING)
    script = (
        "var p=document.createElement('output');p.id='dicomcloak-image-probe';document.body.appendChild(p);"
    )
    page = tmp_path / "pixels.html"
    write_report(page, report[0].replace("</body>", f"<script>{script}</script></body>"))
    assert browser.loaded_images(browser.dump_dom(page)) is None
