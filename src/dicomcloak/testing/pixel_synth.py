"""Synthetic burned-in PHI images with ground truth, from pydicom's bundled test images.

Adapted from dicomcloak's shared evaluation harness (``shared/eval/pixels/make_synth.py``,
same author and licence as this project), typed; for a given seed the images,
headers and ground truth are those of the original. Each image renders PHI-like
text (names, IDs, dates, institutions, physicians, cities) and non-PHI
annotation text (probe, gain, laterality, kVp...) in the corners where scanners
put it, 10-16 px fonts, white or gray, some on noise, and writes ``NNN.dcm`` (a
Secondary Capture with the matching header PHI, Burned In Annotation YES),
``NNN.png`` and ``NNN.json`` (every text segment with its box, PHI flag and
kind). Needs Pillow and, for realistic fonts, Debian ``fonts-dejavu-core``.

Run it as ``python -m dicomcloak.testing.pixel_synth OUT [--n 32] [--seed 7]``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont
from pydicom.data import get_testdata_file
from pydicom.dataset import FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

__all__ = ["BASES", "blank_image", "main", "make_images"]

# Base images shipped inside the pydicom wheel that decode without extra plugins.
BASES = [
    ("examples_jpeg2k.dcm", "US"), ("examples_palette.dcm", "US"), ("examples_rgb_color.dcm", "US"),
    ("693_J2KI.dcm", "CR"), ("examples_overlay.dcm", "MR"), ("image_dfl.dcm", "SC"),
    ("SC_rgb_jpeg_dcmd.dcm", "SC"), ("JPEG2000.dcm", "NM"),
]
# Text already burned into the bundled US images (found with RapidOCR, checked by eye): painted over first,
# so that unlabelled text does not count as a false positive. Boxes are x0, y0, x1, y1 after upscaling.
_JPEG2K = [[18, 23, 171, 41], [306, 23, 332, 41], [497, 23, 619, 42], [18, 40, 91, 57], [279, 40, 361, 57],
           [547, 38, 620, 58], [17, 55, 72, 74], [528, 55, 621, 72], [17, 72, 81, 89], [567, 72, 621, 90],
           [17, 89, 61, 105], [557, 87, 623, 106], [6, 133, 42, 154], [597, 135, 632, 154], [4, 217, 41, 233],
           [599, 217, 630, 233], [246, 359, 303, 378], [317, 359, 361, 378], [398, 456, 621, 473]]
_PALETTE = [[9, 7, 76, 24], [92, 8, 121, 24], [573, 8, 637, 24], [668, 8, 774, 26], [95, 34, 264, 51],
            [327, 34, 511, 52], [574, 34, 649, 51], [667, 35, 782, 51], [2, 65, 76, 83], [2, 84, 50, 102],
            [125, 84, 216, 105], [239, 85, 306, 104], [1, 103, 53, 122], [2, 123, 55, 140], [1, 160, 31, 180],
            [8, 181, 65, 201], [10, 202, 68, 218], [9, 220, 56, 238], [9, 239, 78, 259]]
_RGB = [[17, 23, 172, 41], [497, 23, 619, 42], [18, 40, 91, 57], [279, 38, 361, 59], [546, 38, 620, 58],
        [17, 55, 72, 74], [527, 53, 622, 75], [17, 71, 81, 89], [567, 72, 621, 89], [17, 87, 61, 106],
        [557, 87, 622, 106], [6, 133, 42, 154], [597, 136, 632, 153], [4, 217, 41, 233], [597, 217, 630, 233],
        [246, 358, 306, 378], [314, 359, 361, 378], [398, 456, 620, 473]]
SCRUB = {"examples_jpeg2k.dcm": _JPEG2K, "examples_palette.dcm": _PALETTE, "examples_rgb_color.dcm": _RGB}

FIRST = ["JOHN", "MARY", "ROBERT", "PATRICIA", "MICHAEL", "LINDA", "DAVID", "SUSAN", "JAMES", "KAREN",
         "THOMAS", "NANCY", "DANIEL", "LISA", "MARK", "BETTY", "CARLOS", "MARIA", "WEI", "AISHA", "DMITRI",
         "FATIMA", "KENJI", "PRIYA"]
LAST = ["SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS", "RODRIGUEZ",
        "MARTINEZ", "HERNANDEZ", "LOPEZ", "WILSON", "ANDERSON", "THOMAS", "TAYLOR", "MOORE", "JACKSON",
        "NGUYEN", "KOWALSKI", "OKAFOR", "TANAKA", "PATEL", "O'BRIEN"]
INSTITUTIONS = ["ST. MARY'S HOSPITAL", "MERCY GENERAL", "LAKESIDE MEDICAL CENTER", "RIVERSIDE IMAGING",
                "UNIV. OF OHIO MED CTR", "NORTHWEST RADIOLOGY"]
CITIES = ["BOSTON, MA", "SPRINGFIELD, IL", "AUSTIN, TX", "PORTLAND, OR", "DENVER, CO"]
NONPHI_US = ["5.0 MHz", "GAIN 52", "DR 60", "FR 28Hz", "ABD", "LIVER", "RT KIDNEY", "C5-1", "MI 1.2",
             "TIS 0.4", "DEPTH 16cm", "2D", "PW", "HR 72 bpm"]
NONPHI_CR = ["L", "R", "AP", "PA", "PORTABLE", "UPRIGHT", "CHEST", "kVp 110", "mAs 2.5", "WW 400 WL 40",
             "1:1", "SID 180cm"]
FONT_FILES = ["DejaVuSans.ttf", "DejaVuSansMono.ttf", "DejaVuSans-Bold.ttf"]

Segment = tuple[str, bool, str]
Line = tuple[str, list[Segment]]
_Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def _font(size: int, rng: random.Random) -> _Font:
    name = rng.choice(FONT_FILES)
    try:
        return ImageFont.truetype(name, size)
    except OSError:
        return ImageFont.load_default(size=size)


def _to8bit(arr: NDArray[Any]) -> NDArray[np.uint8]:
    a = arr.astype(np.float32)
    if not (a.ndim == 3 and a.shape[-1] == 3):
        lo, hi = np.percentile(a, 1), np.percentile(a, 99.5)
        a = np.clip((a - lo) / max(float(hi - lo), 1.0) * 255, 0, 255)
    if a.max() > 255:
        a = a / a.max() * 255
    return a.astype(np.uint8)


def _decoded(name: str) -> NDArray[Any]:
    from pydicom.pixels.processing import apply_color_lut, convert_color_space

    ds = pydicom.dcmread(str(get_testdata_file(name)))
    arr = ds.pixel_array
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        arr = arr[0]
    pi = ds.PhotometricInterpretation
    if pi == "PALETTE COLOR":
        arr = apply_color_lut(arr, ds)
        arr = arr if arr.dtype == np.uint8 else (arr / 257).astype(np.uint8)
    elif pi.startswith("YBR") and pi != "YBR_RCT":  # pydicom converts RCT itself
        arr = convert_color_space(arr, pi, "RGB")
    return _to8bit(arr)


def _scrub(arr: NDArray[np.uint8], name: str) -> None:
    for x0, y0, x1, y1 in SCRUB.get(name, []):
        x0, y0 = max(0, x0 - 3), max(0, y0 - 3)
        right = min(x1 + 3, arr.shape[1] - 1)
        ring = np.concatenate([arr[y0 : y1 + 3, x0].reshape(-1, *arr.shape[2:]),
                               arr[y0 : y1 + 3, right].reshape(-1, *arr.shape[2:])])
        arr[y0 : y1 + 3, x0 : x1 + 3] = np.median(ring, axis=0).astype(arr.dtype)


def load_base(name: str) -> Image.Image:
    """A bundled image as 8-bit gray or RGB, small ones upscaled 2x, known text painted over."""
    img = Image.fromarray(_decoded(name))
    if img.mode not in ("L", "RGB"):
        img = img.convert("L")
    w, h = img.size
    if max(w, h) <= 512 and name != "image_dfl.dcm":
        img = img.resize((w * 2, h * 2), Image.Resampling.BILINEAR)
    arr = np.array(img)
    _scrub(arr, name)
    return Image.fromarray(arr)


def _date(rng: random.Random, y0: int, y1: int) -> datetime.date:
    return datetime.date(y0, 1, 1) + datetime.timedelta(days=rng.randrange((y1 - y0) * 365))


def _fmt(d: datetime.date, rng: random.Random) -> str:
    f = rng.choice(["%m/%d/%Y", "%d-%b-%Y", "%Y-%m-%d", "%Y%m%d", "%d.%m.%Y", "%b %d %Y"])
    return d.strftime(f).upper() if "%b" in f and rng.random() < 0.5 else d.strftime(f)


def make_identity(rng: random.Random) -> dict[str, Any]:
    """One fake patient: name parts, IDs, dates, institution, physicians, city."""
    first, last = rng.choice(FIRST), rng.choice(LAST)
    mid = rng.choice(["", "A", "J", "M"])
    return {
        "first": first, "last": last, "middle": mid,
        "PatientName": f"{last}^{first}" + (f"^{mid}" if mid else ""),
        "PatientID": str(rng.randrange(10**6, 10**9)),
        "AccessionNumber": rng.choice(["A", "ACC", "RAD", ""]) + str(rng.randrange(10**5, 10**8)),
        "PatientBirthDate": _date(rng, 1935, 2015),
        "StudyDate": _date(rng, 2015, 2025),
        "InstitutionName": rng.choice(INSTITUTIONS),
        "ReferringPhysicianName": f"{rng.choice(LAST)}^{rng.choice(FIRST)}",
        "OperatorsName": f"{rng.choice(LAST)}^{rng.choice(FIRST)}",
        "city": rng.choice(CITIES),
    }


def _name(idt: dict[str, Any], rng: random.Random) -> str:
    f, last, m = idt["first"].title(), idt["last"].title(), idt["middle"]
    return rng.choice([f"{last.upper()}, {f.upper()}", f"{last.upper()}^{f.upper()}" + (f"^{m}" if m else ""),
                       f"{f} {last}", f"{last}, {f} {m}".strip(), f"{f.upper()} {last.upper()}"])


def build_lines(idt: dict[str, Any], modality: str, rng: random.Random) -> list[Line]:
    """The text lines of one image per corner; a segment is (text, is PHI, kind)."""
    name, dob = _name(idt, rng), _fmt(idt["PatientBirthDate"], rng)
    study = _fmt(idt["StudyDate"], rng)
    tm = f"{rng.randrange(7, 19):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}"
    ref, op = idt["ReferringPhysicianName"].split("^"), idt["OperatorsName"].split("^")
    label = rng.random() < 0.6
    tl: list[list[Segment]] = [
        [("Name:", False, "label"), (name, True, "NAME_HDR")] if label else [(name, True, "NAME_HDR")],
        [("ID:", False, "label"), (idt["PatientID"], True, "ID_HDR")],
        [("DOB:", False, "label"), (dob, True, "DATE_HDR")],
    ]
    tr: list[list[Segment]] = [[(idt["InstitutionName"], True, "INST_HDR")],
                               [(study, True, "DATE_HDR"), (tm, True, "TIME")]]
    if rng.random() < 0.5:
        tr.append([("Acc#", False, "label"), (idt["AccessionNumber"], True, "ACC_HDR")])
    bl: list[list[Segment]] = []
    br: list[list[Segment]] = []
    if rng.random() < 0.5:  # PHI not in the header: needs a name list
        bl.append([("Sono:", False, "label"), (f"{op[1].title()} {op[0].title()}", True, "NAME_OTHER")])
    if rng.random() < 0.4:
        bl.append([(idt["city"], True, "LOC_OTHER")])
    if rng.random() < 0.4:
        bl.append([("Ref:", False, "label"), (f"Dr. {ref[0].title()}", True, "NAME_OTHER")])
    pool = NONPHI_US if modality == "US" else NONPHI_CR
    for t in rng.sample(pool, k=min(len(pool), rng.randrange(2, 5))):
        (br if rng.random() < 0.6 else bl).append([(t, False, "nonphi")])
    corners = (("tl", tl), ("tr", tr), ("bl", bl), ("br", br))
    return [(corner, line) for corner, lines in corners for line in lines]


def _origin(corner: str, k: int, lw: float, geo: dict[str, Any]) -> tuple[float, float]:
    keys = ("w", "h", "margin", "ix", "iy", "line_h", "n")
    w, h, margin, ix, iy, line_h, count = (geo[key] for key in keys)
    x = margin + ix if corner in ("tl", "bl") else w - margin - lw - ix
    y = margin + k * line_h + iy if corner in ("tl", "tr") else h - margin - (count[corner] - k) * line_h - iy
    if corner == "tr" and w < 600:  # narrow image: the right-hand block goes under the left one
        y += count["tl"] * line_h
    return max(0, min(x, w - lw - 1)), max(0, min(y, h - line_h))


def _contrasting(img: Image.Image, box: tuple[int, int, int, int], fill: Any, gray: int) -> Any:
    """Burned-in annotations are drawn to be read: dark text where the background is light."""
    x, y, x1, y1 = box
    if float(np.asarray(img.convert("L"))[y:y1, x:x1].mean()) < 110:
        return fill
    dark = 40 if gray > 200 else 0
    return dark if img.mode == "L" else (dark, dark, dark)


def render(img: Image.Image, lines: list[Line], rng: random.Random,
           noisy: bool) -> tuple[Image.Image, dict[str, Any], list[dict[str, Any]]]:
    """Draw ``lines`` on ``img``; return the image, render settings and the ground-truth segments."""
    w, h = img.size
    draw = ImageDraw.Draw(img)
    if rng.random() < 0.5:
        draw.fontmode = "1"  # no anti-aliasing, like bitmap overlay fonts
    size = rng.randrange(10, 17)
    font = _font(size, rng)
    gray = rng.choice([255, 255, 230, 200, 180])
    fill = gray if img.mode == "L" else (gray, gray, rng.choice([gray, 120]) if rng.random() < 0.2 else gray)
    margin = rng.randrange(3, 12)
    ix = rng.randrange(w // 8, w // 4) if noisy else 0  # noisy: text lands on anatomy, not on the border
    iy = rng.randrange(h // 8, h // 4) if noisy else 0
    line_h = int(size * 1.35)
    counters = {"tl": 0, "tr": 0, "bl": 0, "br": 0}
    geo = {"w": w, "h": h, "margin": margin, "ix": ix, "iy": iy, "line_h": line_h,
           "n": {c: sum(1 for cc, _ in lines if cc == c) for c in counters}}
    segs = []
    for corner, line in lines:
        k = counters[corner]
        counters[corner] += 1
        lw = draw.textlength(" ".join(s[0] for s in line), font=font)
        x, y = _origin(corner, k, lw, geo)
        here = _contrasting(img, (int(x), int(y), int(x + lw + 1), int(y + line_h)), fill, gray)
        for text, phi, kind in line:
            bbox = draw.textbbox((x, y), text, font=font)
            draw.text((x, y), text, font=font, fill=here)
            segs.append({"text": text, "phi": phi, "kind": kind, "box": [int(v) for v in bbox]})
            x += draw.textlength(text + " ", font=font)
    arr: NDArray[Any] = np.asarray(img).astype(np.float32)
    if noisy:  # speckle-like noise over the whole image
        arr = arr + np.random.default_rng(rng.randrange(1 << 30)).normal(0, 18, arr.shape)
    out = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    return out, {"font_px": size, "gray": gray, "noisy": noisy}, segs


def write_dicom(path: Path, img: Image.Image, idt: dict[str, Any], modality: str) -> None:
    """A Secondary Capture of ``img`` with the identity's PHI in its header, Burned In Annotation YES."""
    arr = np.asarray(img)
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.7")  # Secondary Capture
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = modality
    ds.PatientName, ds.PatientID = idt["PatientName"], idt["PatientID"]
    ds.PatientBirthDate = idt["PatientBirthDate"].strftime("%Y%m%d")
    ds.AccessionNumber, ds.InstitutionName = idt["AccessionNumber"], idt["InstitutionName"]
    ds.StudyDate = idt["StudyDate"].strftime("%Y%m%d")
    ds.ReferringPhysicianName = idt["ReferringPhysicianName"]
    ds.BurnedInAnnotation = "YES"
    ds.Rows, ds.Columns = arr.shape[0], arr.shape[1]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    if arr.ndim == 3:
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    else:
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.PixelData = arr.tobytes()
    ds.save_as(path, enforce_file_format=True)


def make_images(out: Path, n: int = 32, seed: int = 7) -> list[Path]:
    """Write ``n`` images (``NNN.dcm``, ``.png``, ``.json``) into ``out``; return the DICOM paths."""
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    bases = {name: load_base(name) for name, _ in BASES}
    paths = []
    for i in range(n):
        name, modality = BASES[i % len(BASES)]
        img = bases[name].copy()
        if img.mode == "RGB" and modality != "US" and rng.random() < 0.5:
            img = img.convert("L")
        idt = make_identity(rng)
        lines = build_lines(idt, modality, rng)
        img, meta, segs = render(img, lines, rng, noisy=i % 3 == 2)
        stem = out / f"{i:03d}"
        img.save(stem.with_suffix(".png"))
        write_dicom(stem.with_suffix(".dcm"), img, idt, modality)
        hdr = {k: (v.strftime("%Y%m%d") if isinstance(v, datetime.date) else v) for k, v in idt.items()}
        truth = {"base": name, "modality": modality, "size": list(img.size), **meta, "header": hdr,
                 "segments": segs}
        stem.with_suffix(".json").write_text(json.dumps(truth, indent=1), encoding="utf-8")
        paths.append(stem.with_suffix(".dcm"))
    return paths


def blank_image(path: Path, index: int = 0, seed: int = 7) -> Path:
    """A Secondary Capture of base ``index`` with header PHI but no text drawn (Burned In Annotation YES)."""
    name, modality = BASES[index % len(BASES)]
    write_dicom(path, load_base(name), make_identity(random.Random(seed)), modality)
    return path


def main(argv: list[str] | None = None) -> None:
    """Command line: ``OUT [--n N] [--seed S]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("out", type=Path)
    parser.add_argument("--n", type=int, default=24)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    make_images(args.out, args.n, args.seed)
    print(f"wrote {args.n} images to {args.out}")


if __name__ == "__main__":
    main()
