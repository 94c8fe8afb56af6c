"""Classification on the ground truth of the burned-in text benchmark (make_synth.py, seeds 7 and 11).

The generator draws PHI (names, IDs, dates, institutions, physicians, cities)
and annotation text (probe, gain, depth, kVp...) onto real pixel data and
writes each text segment with its box and whether it is PHI. Every PHI
segment must be flagged (recall >= 0.99) when the segments are classified
as an OCR back-end would report them (one box per segment, classify_line);
the share of annotation segments flagged is printed (aim <= 10%), labels
(``DOB:``, ``Name:``) apart: they are PHI by design (see docs/pixels.md, "Classification").
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydicom import dcmread

from dicomcloak.pixels.classify import HeaderValues, classify, classify_line
from dicomcloak.pixels.model import Rect, TextBox

_REPO = Path(__file__).resolve().parents[2]
#: ``../shared/eval/pixels`` beside the clone (a git worktree's is one level further up).
_GENERATORS = [base / "shared/eval/pixels/make_synth.py" for base in (_REPO.parent, _REPO.parents[1])]
GENERATOR = next((path for path in _GENERATORS if path.is_file()), None)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(GENERATOR is None, reason="no ../shared/eval/pixels/make_synth.py"),
]


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[dict[str, object], HeaderValues]]:
    """The 64 ground-truth files of seeds 7 and 11, each with the header values of its DICOM file."""
    found = []
    for seed in (7, 11):
        out = tmp_path_factory.mktemp(f"synth{seed}")
        subprocess.run([sys.executable, str(GENERATOR), str(out), "--n", "32", "--seed", str(seed)],
                       check=True, capture_output=True)
        for truth in sorted(out.glob("*.json")):
            header = HeaderValues.capture(dcmread(truth.with_suffix(".dcm")))
            found.append((json.loads(truth.read_text()), header))
    return found


def boxes_of(truth: dict[str, object]) -> list[tuple[TextBox, bool, str]]:
    segments = truth["segments"]
    assert isinstance(segments, list)
    return [(TextBox(Rect(s["box"][1], s["box"][0], s["box"][3], s["box"][2]), s["text"], 1.0), s["phi"],
             s["kind"]) for s in segments]


def test_phi_recall_and_annotations_flagged(images: list[tuple[dict[str, object], HeaderValues]]) -> None:
    counts = {"phi": [0, 0], "label": [0, 0], "nonphi": [0, 0]}
    for truth, header in images:
        segments = boxes_of(truth)
        verdicts = classify_line([b for b, _, _ in segments], header)
        for (_, phi, kind), verdict in zip(segments, verdicts, strict=True):
            count = counts["phi" if phi else kind]
            count[0] += 1
            count[1] += verdict.phi
    recall = counts["phi"][1] / counts["phi"][0]
    annotations = counts["nonphi"][1] / counts["nonphi"][0]
    print(f"\nPHI segments {counts['phi'][0]}, recall {recall:.3f}; annotation segments "
          f"{counts['nonphi'][0]}, flagged {annotations:.1%}; labels flagged {counts['label'][1]}"
          f"/{counts['label'][0]}")
    assert counts["phi"][0] >= 500
    assert recall >= 0.99
    assert annotations <= 0.10


def test_classify_costs_under_a_millisecond_per_region(
    images: list[tuple[dict[str, object], HeaderValues]],
) -> None:
    classify("JOHN SMITH", images[0][1])  # the census lists load once per process
    times = []
    for truth, header in images:
        for text_box, _, _ in boxes_of(truth):
            start = time.perf_counter()
            classify(text_box.text or "", header)
            times.append(time.perf_counter() - start)
    median, mean = statistics.median(times), statistics.fmean(times)
    print(f"\nclassify: {len(times)} regions, median {median * 1e3:.3f} ms, mean {mean * 1e3:.3f} ms")
    assert median < 1e-3
