"""Headless Chromium for tests: the DOM of a page after its scripts ran, and a screenshot.

Reports are for people, so their tests open them the way a person does: in a
real browser (Debian's ``chromium``, else ``chromium-browser`` or
``google-chrome`` from PATH). Chromium runs headless, without the sandbox
(tests may run as root), GPU, extensions or background networking, with a
throw-away profile per call so that parallel test workers never share one.
:func:`find_browser` returns ``None`` when none is installed; tests then skip
with :data:`MISSING`.

A page's images are checked with :func:`with_image_probe`: it adds a tiny
script (allowed by its hash in the page's Content-Security-Policy) that
writes how many ``img`` elements loaded into the DOM, which :func:`dump_dom`
returns and :func:`loaded_images` reads. What a page asks of the network is
read from Chromium's own network log (:func:`page_requests`): every request
the page started, blocked or not, answered or not.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

__all__ = [
    "MISSING", "dump_dom", "find_browser", "loaded_images", "page_requests", "print_pdf", "screenshot",
    "with_image_probe",
]

_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: Why browser tests skip when no browser is found.
MISSING = "headless Chromium not installed (Debian package chromium; scripts/test.sh installs it as root)"
_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-extensions",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
    "--no-default-browser-check", "--hide-scrollbars", "--mute-audio",
)
_PROBE_ID = "dicomcloak-image-probe"
_PROBE = (
    "addEventListener('load',function(){var a=document.images,n=0;"
    "for(var i=0;i<a.length;i++){if(a[i].complete&&a[i].naturalWidth>0)n++;}"
    f"var p=document.createElement('output');p.id='{_PROBE_ID}';"
    "p.setAttribute('data-loaded',n);p.setAttribute('data-total',a.length);"
    "document.body.appendChild(p);});"
)
_CSP = re.compile(r'(<meta http-equiv="Content-Security-Policy" content=")([^"]*)(")', re.IGNORECASE)


def find_browser() -> str | None:
    """The path of a Chromium-family browser on PATH, or ``None``."""
    for name in _NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def dump_dom(page: Path, *, budget_ms: int = 5000, timeout: float = 120) -> str:
    """The serialised DOM of ``page`` after load and ``budget_ms`` of virtual time (scripts have run)."""
    done = _run(["--dump-dom", f"--virtual-time-budget={budget_ms}", page.resolve().as_uri()], timeout)
    return done.stdout


def screenshot(page: Path, out: Path, *, size: tuple[int, int] = (1280, 1800), timeout: float = 120) -> Path:
    """Render ``page`` in a ``size`` window and write a PNG screenshot to ``out``."""
    window = f"--window-size={size[0]},{size[1]}"
    args = [f"--screenshot={out.resolve()}", window, "--virtual-time-budget=5000", page.resolve().as_uri()]
    _run(args, timeout)
    return out


def page_requests(page: Path, *, budget_ms: int = 3000, timeout: float = 120) -> list[str]:
    """The URLs of every network request ``page`` started while it loaded (Chromium's net log).

    The browser's own background requests (updates, time, dictionaries), which
    the flags above mostly switch off, are told apart by their network
    isolation key: the page's are keyed by its ``file://`` origin.
    """
    with tempfile.TemporaryDirectory(prefix="dicomcloak-netlog-") as scratch:
        log = Path(scratch) / "net.json"
        budget = f"--virtual-time-budget={budget_ms}"
        _run([f"--log-net-log={log}", "--dump-dom", budget, page.resolve().as_uri()], timeout)
        return _page_urls(json.loads(log.read_text("utf-8")))


def _page_urls(netlog: dict[str, Any]) -> list[str]:
    start = netlog["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = []
    for event in netlog.get("events", []):
        params = event.get("params") or {}
        if event.get("type") == start and str(params.get("network_isolation_key", "")).startswith("file://"):
            urls.append(str(params.get("url", "")))
    return urls


def print_pdf(page: Path, out: Path, *, timeout: float = 120) -> int:
    """Print ``page`` to the PDF ``out`` as a person would (no header or footer); its page count."""
    _run(["--no-pdf-header-footer", f"--print-to-pdf={out.resolve()}", page.resolve().as_uri()], timeout)
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", out.read_bytes()))


def with_image_probe(html: str) -> str:
    """``html`` with the image-counting script before ``</body>``, allowed by hash in its CSP if any."""
    digest = base64.b64encode(hashlib.sha256(_PROBE.encode()).digest()).decode()
    html = _CSP.sub(lambda m: f"{m[1]}{m[2]}; script-src 'sha256-{digest}'{m[3]}", html, count=1)
    head, sep, tail = html.rpartition("</body>")
    return f"{head}<script>{_PROBE}</script>{sep}{tail}" if sep else html + f"<script>{_PROBE}</script>"


def loaded_images(dom: str) -> tuple[int, int] | None:
    """``(loaded, total)`` images counted by the probe in a dumped DOM, or ``None`` if it did not run."""
    finder = _ProbeFinder()
    finder.feed(dom)
    return finder.counts


class _ProbeFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.counts: tuple[int, int] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "output" and found.get("id") == _PROBE_ID:
            self.counts = (int(found.get("data-loaded") or 0), int(found.get("data-total") or 0))


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    browser = find_browser()
    if browser is None:
        raise FileNotFoundError(MISSING)
    with tempfile.TemporaryDirectory(prefix="dicomcloak-chromium-") as profile:
        command = [browser, *_FLAGS, f"--user-data-dir={profile}", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=True)
