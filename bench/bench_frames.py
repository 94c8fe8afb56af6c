#!/usr/bin/env python3
"""Pixel codec cost per transfer syntax: decode every frame, then write redacted frames back.

For each test file of :data:`dicomcloak.testing.pixelcases.CODEC_CASES` (and
pydicom-data's 120-frame JPEG baseline ultrasound), one process, best of
``--repeat``: ``decode`` (all frames) and ``replace`` (a box drawn on every
frame, encoded back in the transfer syntax :mod:`dicomcloak.pixels.syntax`
chooses), in milliseconds per frame, and the size of the written Pixel Data
relative to the input's. Prints a Markdown table.

    python bench/bench_frames.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

from pydicom.uid import UID

from dicomcloak.io.reader import read_dataset
from dicomcloak.pixels import frames
from dicomcloak.testing.pixelcases import BOX, CODEC_CASES, FILL, path_of

EXTRA = ("color3d_jpeg_baseline.dcm",)


def _measure(name: str, repeat: int) -> tuple[str, str, int, float, float, float]:
    data = path_of(name).read_bytes()
    decode_s, replace_s = [], []
    for _ in range(repeat):
        ds = read_dataset(data)
        syntax = UID(str(ds.file_meta.TransferSyntaxUID))
        size = len(ds.PixelData)
        start = time.perf_counter()
        array = frames.decode(ds)
        decoded = time.perf_counter()
        array[:, BOX.top : BOX.bottom, BOX.left : BOX.right, ...] = FILL
        written = time.perf_counter()
        frames.replace(ds, array)
        done = time.perf_counter()
        decode_s.append(decoded - start)
        replace_s.append(done - written)
    count = array.shape[0]
    ratio = len(ds.PixelData) / size
    out = UID(str(ds.file_meta.TransferSyntaxUID))
    return name, f"{syntax.name} -> {out.name}", count, min(decode_s) / count, min(replace_s) / count, ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print("| file | transfer syntax in -> out | frames | decode ms/frame | replace ms/frame | size out/in |")
    print("|---|---|---:|---:|---:|---:|")
    for name in [case.name for case in CODEC_CASES] + list(EXTRA):
        name, syntax, count, decode, replace, ratio = _measure(name, args.repeat)
        print(f"| {name} | {syntax} | {count} | {decode * 1000:.2f} | {replace * 1000:.2f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
