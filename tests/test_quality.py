"""The image checks judge each image against its row: shape, background, colour, blank and
duplicate, measured on the pixels. Images here are small; 1024x1024 belongs to bench/qc_speed."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from carstudio.delivery import OutputPreset
from carstudio.errors import ConfigurationError
from carstudio.prompts import load_prompt_book
from carstudio.providers.models import IMAGEN_SIZES, known_sizes
from carstudio.providers.preview import render_placeholder
from carstudio.quality import thresholds as t
from carstudio.quality.checks import (
    CHECK_NAMES,
    Inspection,
    Neighbour,
    check_duplicate,
    check_shape,
    inspect_image,
)
from carstudio.quality.colour import delta_e_2000, rgb_to_lab, srgb_to_lab
from carstudio.quality.paints import PaintTable, paint_table
from carstudio.quality.review import MadeImage, another_car, duplicates_across
from carstudio.spec import AspectRatio, CarSpec
from tests.fakes.replicate import IMAGE_FAULTS, _render

PROMPTS = load_prompt_book()


def _inspect(
    path: Path, spec: CarSpec, *, neighbours: tuple[Neighbour, ...] = (), model: str = "preview"
) -> Inspection:
    return inspect_image(
        path,
        spec=spec,
        known_sizes=known_sizes(model),
        model_label=model,
        neighbours=neighbours,
    )


def _verdicts(inspection: Inspection) -> dict[str, str]:
    return {check.name: check.verdict for check in inspection.checks}


def _fake_picture(tmp_path: Path, spec: CarSpec, picture: str | None, name: str = "x") -> Path:
    """What the fake Replicate serves for this car's prompt, scripted wrong or not."""
    path = tmp_path / f"{name}.png"
    prompt = PROMPTS.build(spec)
    path.write_bytes(_render(spec.aspect_ratio.value, "png", 0, prompt, picture))
    return path


# -- the paint table ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("colour", "phrase"),
    [
        ("Celestial Silver", "celestial silver"),
        ("agate black", "agate black"),
        ("Kings Red Metallic", "kings red"),
        ("pearl white", "pearl white"),
        ("Weiß", "weiss"),
        ("gris foncé", "gris fonce"),
        ("Rosso Corsa", "rosso corsa"),
        ("zwart metallic", "zwart"),
        ("biały perłowy", "bialy perlowy"),
        ("Azul Marino", "azul marino"),
        ("Midnight Blue", "blue"),
    ],
)
def test_colour_phrases_in_six_languages_find_their_paint(colour: str, phrase: str) -> None:
    paint = paint_table().find(colour)
    assert paint is not None and paint.phrase == phrase


def test_an_unknown_colour_phrase_finds_no_paint() -> None:
    assert paint_table().find("Zanzibar Sunset") is None


def test_an_operator_file_extends_and_overrides_the_table(tmp_path: Path) -> None:
    extra = tmp_path / "paints.toml"
    extra.write_text('"zanzibar sunset" = "#e07a2e"\n[overrides]\nred = "#ff0000"\n', "utf-8")
    table = PaintTable.load(extra)
    assert (paint := table.find("Zanzibar Sunset")) is not None and paint.hex == "#e07a2e"
    assert (red := table.find("red")) is not None and red.rgb == (255, 0, 0)
    assert len(table) > len(paint_table()) - 1


def test_a_paint_file_with_a_bad_colour_is_refused_in_words(tmp_path: Path) -> None:
    extra = tmp_path / "paints.toml"
    extra.write_text('red = "crimson"\n', "utf-8")
    with pytest.raises(ConfigurationError, match="sRGB hex"):
        PaintTable.load(extra)


def test_pixels_convert_to_cielab_as_coloraide_does() -> None:
    from coloraide import Color

    colours = [(0, 0, 0), (255, 255, 255), (179, 18, 29), (31, 79, 160), (195, 198, 200)]
    ours = srgb_to_lab(np.array(colours, dtype=np.uint8))
    for rgb, lab in zip(colours, ours, strict=True):
        theirs = Color("srgb", [c / 255 for c in rgb]).convert("lab-d65").coords()
        assert lab.tolist() == pytest.approx(theirs, abs=0.05)
    # Sharma, Wu and Dalal's CIEDE2000 test data, pair 1; and red against blue.
    assert delta_e_2000((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485)) == pytest.approx(
        2.0425, abs=1e-4
    )
    assert delta_e_2000(rgb_to_lab((179, 18, 29)), rgb_to_lab((31, 79, 160))) > 40


# -- good images pass ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("colour", "background", "aspect"),
    [
        ("Kings Red", "white", "1:1"),
        ("pearl white", "white", "4:3"),
        ("agate black", "hub", "16:9"),
        ("Celestial Silver", "white", "9:16"),
        ("gris foncé", "hub", "3:4"),
        ("azul", "white", "1:1"),
    ],
)
def test_preview_images_pass_every_check(
    tmp_path: Path, colour: str, background: str, aspect: str
) -> None:
    spec = CarSpec(make="Toyota", model="Corolla", color=colour, background=background,
                   aspect_ratio=aspect)  # fmt: skip
    path = tmp_path / "preview.png"
    render_placeholder(spec).save(path)
    inspection = _inspect(path, spec)
    assert inspection.verdict == "pass", inspection.sentence
    assert [c.name for c in inspection.checks] == list(CHECK_NAMES)


def test_an_unknown_colour_gives_no_verdict_on_colour_rather_than_a_fail(tmp_path: Path) -> None:
    spec = CarSpec(make="Audi", model="A4", color="Zanzibar Sunset")
    inspection = _inspect(_fake_picture(tmp_path, spec, None), spec, model="google/imagen-3")
    colour = next(c for c in inspection.checks if c.name == "colour")
    assert colour.verdict == "skipped" and "not in the paint table" in colour.sentence
    assert inspection.verdict == "pass"


# -- each wrong picture is caught by its check ----------------------------------------------------

_CAUGHT_BY = {
    "wrong_colour": "colour",
    "grey_background": "background",
    "wrong_aspect": "shape",
    "blank": "blank",
}


@pytest.mark.parametrize("picture", sorted(_CAUGHT_BY))
@pytest.mark.parametrize("colour", ["red", "pearl white", "agate black"])
def test_each_scripted_wrong_picture_fails_its_check(
    tmp_path: Path, picture: str, colour: str
) -> None:
    spec = CarSpec(make="Audi", model="A4", color=colour, aspect_ratio="4:3")
    inspection = _inspect(_fake_picture(tmp_path, spec, picture), spec, model="google/imagen-3")
    assert _verdicts(inspection)[_CAUGHT_BY[picture]] == "fail", inspection.sentence


def test_a_plain_white_studio_fails_a_showroom_row(tmp_path: Path) -> None:
    asked = CarSpec(make="Audi", model="A4", color="red", background="hub")
    white = CarSpec(make="Audi", model="A4", color="red", background="white")
    inspection = _inspect(_fake_picture(tmp_path, white, None), asked, model="google/imagen-3")
    assert _verdicts(inspection)["background"] == "fail"
    assert "not the showroom" in inspection.sentence


def test_the_same_picture_for_another_car_is_a_duplicate(tmp_path: Path) -> None:
    first = CarSpec(make="Audi", model="A4", color="red")
    second = CarSpec(make="Audi", model="A6", color="red")
    render_placeholder(first).save(tmp_path / "a.png")
    original = _inspect(tmp_path / "a.png", first)
    # The same picture, resized and re-encoded as JPEG, arrives for the second car.
    with Image.open(tmp_path / "a.png") as image:
        image.convert("RGB").resize((384, 384)).save(tmp_path / "b.jpg", quality=80)
    neighbours = (Neighbour("row 2", original.fingerprint or ""),)
    repeated = _inspect(tmp_path / "b.jpg", second, neighbours=neighbours)
    assert _verdicts(repeated)["duplicate"] == "fail"
    assert "row 2" in repeated.sentence
    render_placeholder(second).save(tmp_path / "c.png")
    own = _inspect(tmp_path / "c.png", second, neighbours=neighbours)
    assert _verdicts(own)["duplicate"] == "pass", own.sentence


def test_one_shape_in_another_colour_is_not_a_duplicate(tmp_path: Path) -> None:
    red = CarSpec(make="Audi", model="A4", color="red")
    black = red.model_copy(update={"color": "agate black"})
    first = render_placeholder(red)
    # Same drawing, only the paint differs: the colour-blind hash alone would call it one.
    second = render_placeholder(black)
    first.save(tmp_path / "red.png")
    second.save(tmp_path / "black.png")
    seen = _inspect(tmp_path / "red.png", red)
    inspection = _inspect(
        tmp_path / "black.png", black, neighbours=(Neighbour("row 2", seen.fingerprint or ""),)
    )
    assert _verdicts(inspection)["duplicate"] == "pass"


_HASH_HEX = t.HASH_SIZE * t.HASH_SIZE // 4


@st.composite
def _batch_of_prints(draw: st.DrawFn) -> list[MadeImage]:
    """Images of a batch whose fingerprints are a few pictures, each repeated with a few of
    its hash bits flipped and its colours shifted a little, for one of a few cars."""
    bases = draw(st.lists(st.integers(0, 2 ** (_HASH_HEX * 4) - 1), min_size=1, max_size=4))
    images = []
    for n in range(draw(st.integers(2, 12))):
        base = draw(st.sampled_from(bases))
        flipped = sum(
            1 << draw(st.integers(0, _HASH_HEX * 4 - 1)) for _ in range(draw(st.integers(0, 16)))
        )
        shade = draw(st.integers(0, 40))
        colours = bytes([100 + shade] * 48).hex()
        car = {"make": "Audi", "model": draw(st.sampled_from(["A4", "A6"])), "color": "red"}
        checks = {
            "fingerprint": f"{base ^ flipped:0{_HASH_HEX}x}:{colours}",
            "checks": [{"name": "duplicate", "verdict": "pass", "score": None, "sentence": ""}],
        }
        images.append(MadeImage(f"row {n + 2}", car, checks))
    return images


@given(_batch_of_prints())
@settings(max_examples=60, deadline=None)
def test_the_batch_pass_judges_as_a_look_at_every_earlier_image_would(
    images: list[MadeImage],
) -> None:
    """The pass across a batch passes over, by their hash alone, earlier images too far
    apart to be a repeat; its verdicts are those of judging against every earlier image."""
    expected = {}
    for index, image in enumerate(images):
        earlier = [
            Neighbour(other.label, other.checks["fingerprint"])
            for other in images[:index]
            if another_car(other.spec, image.spec)
        ]
        judged = check_duplicate(image.checks["fingerprint"], earlier)
        if judged.verdict in ("fail", "warn"):
            expected[index] = judged.as_json()
    changed = duplicates_across(images)
    assert {index: checks["checks"][0] for index, checks in changed.items()} == expected


def test_a_file_that_is_not_an_image_fails_as_broken(tmp_path: Path) -> None:
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    inspection = _inspect(path, CarSpec(make="Audi", color="red"))
    assert _verdicts(inspection)["blank"] == "fail" and inspection.failed
    assert inspection.fingerprint is None


# -- shape ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "aspect", "verdict"),
    [
        ((1280, 896), "4:3", "pass"),  # Imagen's 4:3, 7 % off the nominal ratio
        ((1408, 768), "16:9", "pass"),
        ((640, 448), "4:3", "pass"),  # the same shape at half the size
        ((1200, 890), "4:3", "pass"),  # within 2 % of 4:3
        ((1024, 1024), "4:3", "fail"),
        ((768, 1408), "16:9", "fail"),
    ],
)
def test_shape_accepts_the_models_own_sizes_and_the_nominal_ratio(
    size: tuple[int, int], aspect: str, verdict: str
) -> None:
    check = check_shape(*size, AspectRatio(aspect), IMAGEN_SIZES, "Imagen 3", OutputPreset.ORIGINAL)
    assert check.verdict == verdict, check.sentence


def test_a_preset_that_must_enlarge_the_image_a_lot_warns() -> None:
    check = check_shape(512, 512, AspectRatio.SQUARE, IMAGEN_SIZES, "the preview",
                        OutputPreset.LISTING_JPEG)  # fmt: skip
    assert check.verdict == "warn" and "1600×1600" in check.sentence
    fine = check_shape(1024, 1024, AspectRatio.SQUARE, IMAGEN_SIZES, "Imagen 3",
                       OutputPreset.LISTING_JPEG)  # fmt: skip
    assert fine.verdict == "pass"


def test_an_inspection_survives_its_json_form(tmp_path: Path) -> None:
    spec = CarSpec(make="Audi", model="A4", color="red")
    inspection = _inspect(_fake_picture(tmp_path, spec, "blank"), spec)
    again = Inspection.from_json(inspection.as_json())
    assert again == inspection and again.failed


def test_every_scripted_picture_of_the_fake_is_judged_here() -> None:
    assert set(_CAUGHT_BY) | {"duplicate"} == IMAGE_FAULTS


def test_a_jpeg_is_judged_as_a_png_is(tmp_path: Path) -> None:
    spec = CarSpec(make="Audi", model="A4", color="Kings Red", background="hub")
    buffer = io.BytesIO()
    render_placeholder(spec).save(buffer, format="JPEG", quality=85)
    path = tmp_path / "car.jpg"
    path.write_bytes(buffer.getvalue())
    assert _inspect(path, spec).verdict == "pass"
