"""Delivered files: each output preset makes the file a marketplace accepts, and every file
says in its own metadata that it is AI-made, read back by an independent reader (exiftool)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from carstudio.delivery import (
    TRAINED_ALGORITHMIC_MEDIA,
    XMP_KEYWORD,
    Labels,
    OutputPreset,
    deliver,
    parse_preset,
)
from carstudio.spec import Background

EXIFTOOL = shutil.which("exiftool")
needs_exiftool = pytest.mark.skipif(
    EXIFTOOL is None,
    reason="exiftool is missing; make test installs it (apt-get install libimage-exiftool-perl)",
)
LABELS = Labels(
    model="google/imagen-3",
    prompt='Professional photograph of a Kings Red 2024 Volkswagen Golf, "no text" & <no logos>',
    vin="WVWZZZ1KZAW000001",
    stock_number="A-1042",
)


def _source(tmp_path: Path, size: tuple[int, int] = (160, 112), fmt: str = "PNG") -> Path:
    """A small car-like image: a red block on white, Imagen's 4:3 shape at an eighth."""
    image = Image.new("RGB", size, (252, 252, 252))
    image.paste((179, 18, 29), (size[0] // 4, size[1] // 3, size[0] * 3 // 4, size[1] * 3 // 4))
    path = tmp_path / ("made.png" if fmt == "PNG" else "made.jpg")
    image.save(path, format=fmt)
    return path


def _exiftool(paths: list[Path]) -> list[dict[str, Any]]:
    """What exiftool reads from each file: one run for them all, as it starts slowly."""
    assert EXIFTOOL is not None
    out = subprocess.run(
        [EXIFTOOL, "-j", "-G1", "-a", "-XMP:all", *map(str, paths)],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    found: list[dict[str, Any]] = json.loads(out)
    return found


@pytest.mark.parametrize(
    ("preset", "suffix", "size", "kind"),
    [
        (OutputPreset.ORIGINAL, "png", (160, 112), "PNG"),
        (OutputPreset.LISTING_JPEG, "jpg", (1600, 1120), "JPEG"),
        (OutputPreset.MARKETPLACE_4X3, "jpg", (1200, 900), "JPEG"),
        (OutputPreset.WEBP, "webp", (160, 112), "WEBP"),
    ],
)
def test_each_preset_makes_its_file_with_the_right_suffix(
    tmp_path: Path, preset: OutputPreset, suffix: str, size: tuple[int, int], kind: str
) -> None:
    out = deliver(
        _source(tmp_path), tmp_path / "car", preset=preset, labels=LABELS,
        background=Background.WHITE,
    )  # fmt: skip
    assert out.name == f"car.{suffix}"
    with Image.open(out) as image:
        assert image.format == kind and image.size == size and image.mode == "RGB"
        assert image.info.get("xmp")  # Pillow finds the packet in every kind of file
    assert not list(tmp_path.glob(".*.part"))


def test_marketplace_letterboxes_a_square_image_on_white_for_a_white_row(tmp_path: Path) -> None:
    out = deliver(
        _source(tmp_path, (120, 120)), tmp_path / "car", preset=OutputPreset.MARKETPLACE_4X3,
        labels=LABELS, background=Background.WHITE,
    )  # fmt: skip
    with Image.open(out) as image:
        rgb = image.convert("RGB")
        assert rgb.size == (1200, 900)
        left_bar = rgb.getpixel((20, 450))
        assert isinstance(left_bar, tuple) and min(left_bar) >= 250


def test_marketplace_letterboxes_a_showroom_image_on_its_own_edge_colour(tmp_path: Path) -> None:
    source = tmp_path / "hub.png"
    Image.new("RGB", (160, 90), (58, 62, 70)).save(source)
    out = deliver(
        source, tmp_path / "car", preset=OutputPreset.MARKETPLACE_4X3, labels=LABELS,
        background=Background.HUB,
    )  # fmt: skip
    with Image.open(out) as image:
        top_bar = image.convert("RGB").getpixel((600, 10))
        assert isinstance(top_bar, tuple)
        assert all(abs(a - b) <= 4 for a, b in zip(top_bar, (58, 62, 70), strict=True))


def test_an_original_png_keeps_its_pixels_and_gains_one_xmp_itxt_chunk(tmp_path: Path) -> None:
    source = _source(tmp_path)
    out = deliver(source, tmp_path / "car", preset=OutputPreset.ORIGINAL, labels=LABELS,
                  background=Background.WHITE)  # fmt: skip
    again = deliver(out, tmp_path / "car", preset=OutputPreset.ORIGINAL, labels=LABELS,
                    background=Background.WHITE)  # fmt: skip
    data = again.read_bytes()
    assert data.count(b"iTXt" + XMP_KEYWORD.encode()) == 1  # labelled twice, one packet
    with Image.open(source) as before, Image.open(again) as after:
        assert before.tobytes() == after.tobytes()
        after.load()  # every chunk's CRC is checked on the way
        xmp = after.info["xmp"]
        assert b"trainedAlgorithmicMedia" in (xmp if isinstance(xmp, bytes) else xmp.encode())


def test_an_original_jpeg_is_labelled_without_being_re_encoded(tmp_path: Path) -> None:
    source = _source(tmp_path, fmt="JPEG")
    out = deliver(source, tmp_path / "car", preset=OutputPreset.ORIGINAL, labels=LABELS,
                  background=Background.WHITE)  # fmt: skip
    assert out.suffix == ".jpg"
    scan = source.read_bytes().index(b"\xff\xda")
    assert out.read_bytes().endswith(source.read_bytes()[scan:])
    with Image.open(io.BytesIO(out.read_bytes())) as image:
        assert b"Kings Red" in image.info["xmp"]
    again = deliver(out, tmp_path / "car", preset=OutputPreset.ORIGINAL, labels=LABELS,
                    background=Background.WHITE)  # fmt: skip
    assert again.read_bytes().count(b"http://ns.adobe.com/xap/1.0/\x00") == 1, "one packet"
    assert again.read_bytes().endswith(source.read_bytes()[scan:])


def test_labelling_a_large_original_holds_only_a_piece_of_it_at_a_time(tmp_path: Path) -> None:
    """Rows are labelled side by side; each holding its whole image (and a copy) would add
    tens of megabytes to the server for large images."""
    noise = Image.frombytes("RGB", (1600, 1600), os.urandom(1600 * 1600 * 3))
    source = tmp_path / "large.png"
    noise.save(source, format="PNG", compress_level=0)
    assert source.stat().st_size > 7_000_000
    tracemalloc.start()
    try:
        out = deliver(source, tmp_path / "car", preset=OutputPreset.ORIGINAL, labels=LABELS,
                      background=Background.WHITE)  # fmt: skip
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3_000_000, f"{peak:,} bytes held at once"
    with Image.open(out) as labelled:
        assert labelled.tobytes() == noise.tobytes()


@needs_exiftool
def test_exiftool_reads_the_labels_of_every_delivered_file(tmp_path: Path) -> None:
    delivered = []
    for fmt in ("PNG", "JPEG"):
        folder = tmp_path / fmt
        folder.mkdir()
        for preset in OutputPreset:
            delivered.append(
                deliver(
                    _source(folder, fmt=fmt),
                    folder / preset.value,
                    preset=preset,
                    labels=LABELS,
                    background=Background.WHITE,
                )  # fmt: skip
            )
    assert {p.suffix for p in delivered} == {".png", ".jpg", ".webp"}
    for path, tags in zip(delivered, _exiftool(delivered), strict=True):
        assert tags["XMP-iptcExt:DigitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA, path
        assert tags["XMP-xmp:CreatorTool"] == "Car Studio (google/imagen-3)"
        assert tags["XMP-dc:Description"] == LABELS.prompt
        # IPTC 2025.1's AI properties and our own namespace (exiftool names unknown tags).
        assert tags["XMP-iptcExt:AISystemUsed"] == "google/imagen-3"
        assert tags["XMP-iptcExt:AIPromptInformation"] == LABELS.prompt
        assert tags["XMP-carstudio:Vin"] == LABELS.vin
        assert tags["XMP-carstudio:StockNumber"] == LABELS.stock_number


def test_a_row_without_identity_carries_no_empty_identity_fields() -> None:
    packet = Labels(model="preview", prompt="a car").xmp().decode()
    assert "carstudio:VIN" not in packet and "StockNumber" not in packet
    assert TRAINED_ALGORITHMIC_MEDIA in packet


def test_presets_are_named_in_words_when_unknown() -> None:
    assert parse_preset(" Listing-JPEG ") is OutputPreset.LISTING_JPEG
    assert parse_preset(None, OutputPreset.WEBP) is OutputPreset.WEBP
    with pytest.raises(ValueError, match="original, listing-jpeg, marketplace-4x3, webp"):
        parse_preset("tiff")
