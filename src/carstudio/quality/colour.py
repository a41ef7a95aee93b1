"""Colour arithmetic for the checks: sRGB pixels to CIELAB (D65) in bulk, CIEDE2000 for a pair.

Whole images are converted with numpy (a few milliseconds for the reduced copy the checks
use); the single comparison of a car's colour with its reference goes to coloraide, a colour
library that implements CIEDE2000 to its published test data.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

# sRGB (linear) to CIE XYZ, D65 white, as IEC 61966-2-1 gives it.
_RGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
_D65 = np.array([0.95047, 1.0, 1.08883])
_EPSILON = 216 / 24389
_KAPPA = 24389 / 27

Lab = tuple[float, float, float]


def srgb_to_lab(pixels: NDArray[np.uint8]) -> NDArray[np.float64]:
    # Single precision halves the work; its error (below 0.01 L*) is far under any threshold.
    """CIELAB (D65) of sRGB pixels; any shape ending in 3 channels."""
    rgb = pixels.astype(np.float32) / np.float32(255.0)
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = linear @ (_RGB_TO_XYZ.T / _D65).astype(np.float32)
    f = np.where(xyz > _EPSILON, np.cbrt(xyz), (_KAPPA * xyz + 16) / 116)
    lightness = 116 * f[..., 1] - 16
    a = 500 * (f[..., 0] - f[..., 1])
    b = 200 * (f[..., 1] - f[..., 2])
    return np.stack([lightness, a, b], axis=-1).astype(np.float64)


def rgb_to_lab(rgb: tuple[int, int, int]) -> Lab:
    lab = srgb_to_lab(np.array([rgb], dtype=np.uint8))[0]
    return float(lab[0]), float(lab[1]), float(lab[2])


def chroma(lab: Lab) -> float:
    return math.hypot(lab[1], lab[2])


def load_library() -> None:
    """Import coloraide now: it takes a fifth of a second of the interpreter (it builds tables
    as it loads), which the first image's check would otherwise take from the rows handing
    slots over beside it. Engines that check images call this as they start."""
    import coloraide  # noqa: F401


def delta_e_2000(first: Lab, second: Lab) -> float:
    """CIEDE2000 between two CIELAB (D65) colours."""
    from coloraide import Color  # imported here: processes that check no image never load it

    return float(
        Color("lab-d65", list(first)).delta_e(Color("lab-d65", list(second)), method="2000")
    )


def describe(lab: Lab) -> str:
    """A plain name for a measured colour ("dark grey", "red"), for the checks' sentences."""
    lightness, c = lab[0], chroma(lab)
    if c < 12:
        if lightness < 22:
            return "black"
        if lightness < 45:
            return "dark grey"
        if lightness < 70:
            return "grey"
        if lightness < 88:
            return "silver"
        return "white"
    hue = math.degrees(math.atan2(lab[2], lab[1])) % 360
    for limit, name in (
        (20, "pink"),
        (50, "red"),
        (75, "orange"),
        (100, "yellow"),
        (160, "green"),
        (220, "teal"),
        (290, "blue"),
        (340, "purple"),
        (360, "pink"),
    ):
        if hue < limit:
            tone = "dark " if lightness < 30 else ""
            if name == "orange" and lightness < 50:
                return "brown"
            return tone + name
    return "coloured"  # pragma: no cover - the table above covers 0..360
