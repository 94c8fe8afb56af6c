"""The ``[pixels]`` section of the site policy: defaults, values, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomcloak.errors import ConfigError
from dicomcloak.pixels.model import PixelMode, Rect
from dicomcloak.pixels.settings import PixelSettings, load_pixel_settings, parse_pixels


def test_defaults() -> None:
    settings = load_pixel_settings(None)
    assert settings == PixelSettings()
    assert (settings.mode, settings.padding, settings.frames) == (PixelMode.AUTO, 0.5, 8)
    assert settings.verify


def test_speed_settings() -> None:
    assert (PixelSettings().threads, PixelSettings().verify_whole_frame) == (0, False)
    settings = parse_pixels({"threads": 1, "verify_whole_frame": True})
    assert (settings.threads, settings.verify_whole_frame) == (1, True)


def test_a_policy_file(tmp_path: Path) -> None:
    policy = tmp_path / "site.toml"
    policy.write_text(
        '[policy]\noptions = []\n\n[pixels]\nmode = "phi"\nbackend = "tesseract"\npadding = 0.75\nfill = 0\n'
        'frames = 4\nverify = false\n\n[pixels.modality]\nDX = "all-text"\n\n'
        '[[pixels.templates]]\nname = "acme"\nmanufacturer = "^ACME"\nmodel = "X"\n'
        "rows = 100\ncolumns = 200\n"
        "regions = [[0, 0, 20, 200]]\n",
        encoding="utf-8",
    )
    settings = load_pixel_settings(policy)
    assert settings.mode is PixelMode.PHI and settings.backend == "tesseract"
    assert (settings.padding, settings.fill, settings.frames, settings.verify) == (0.75, 0, 4, False)
    assert settings.modality == {"DX": PixelMode.ALL_TEXT}
    assert settings.templates[0].regions == (Rect(0, 0, 20, 200),)


@pytest.mark.parametrize(
    ("section", "reference", "named"),
    [
        ({"mdoe": "phi"}, "policy-unknown-key", "'mdoe'"),
        ({"mode": "blur"}, "policy-bad-value", "mode"),
        ({"padding": -1}, "policy-bad-value", "padding"),
        ({"frames": True}, "policy-bad-value", "frames"),
        ({"verify": "yes"}, "policy-bad-value", "verify"),
        ({"verify_whole_frame": 1}, "policy-bad-value", "verify_whole_frame"),
        ({"threads": -1}, "policy-bad-value", "threads"),
        ({"backend": "easyocr"}, "policy-bad-value", "backend"),
        ({"modality": {"US": "maybe"}}, "policy-bad-value", "modality 'US'"),
        ({"templates": [{"rows": 10, "columns": 10, "regions": [[0, 0, 20, 5]]}]},
         "pixels-bad-template", "#1"),
        ({"templates": [{"rows": 10, "columns": 10, "regions": [[0, 0, 5, 5]], "model": "("}]},
         "pixels-bad-template", "#1"),
    ],
)
def test_errors_name_the_key(section: dict[str, object], reference: str, named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_pixels(section)
    assert caught.value.reference == reference
    assert named in caught.value.message and caught.value.hint
