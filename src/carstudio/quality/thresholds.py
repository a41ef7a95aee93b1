"""Every threshold the image checks judge by, in one place, each with the reason for its value.

Colours are compared in CIELAB (D65): L* runs from 0 (black) to 100 (white), chroma C* is the
distance from grey. Scores are chosen so that a person can read them: shares are 0..1,
colour differences are CIEDE2000 units (about 1 is the smallest difference an eye sees side
by side; 10 is "clearly another shade"; 30 and more is "another colour").
"""

from __future__ import annotations

# -- shape ------------------------------------------------------------------------------------

NOMINAL_RATIO_TOLERANCE = 0.02
"""An image within 2 % of the ratio it was asked for has the right shape. Models round their
sizes to multiples of 64 or so; 2 % absorbs that, and is still far below the 25 % between
4:3 and 1:1 or the 44 % between 16:9 and 4:3."""

KNOWN_RATIO_TOLERANCE = 0.01
"""An image within 1 % of the ratio of a size the model is known to draw for that aspect
ratio has the right shape, whatever its pixel count: Imagen draws 4:3 as 1280x896, 7 % off
the nominal ratio, and a scaled copy of it (a 2K variant, a thumbnail) keeps that ratio."""

UPSCALE_WARN = 1.6
"""An output preset that has to enlarge the image by more than this makes it visibly soft,
so the shape check warns. Imagen's 1024x1024 enlarged to a 1600 px listing is 1.56x: fine."""

# -- background -------------------------------------------------------------------------------

BORDER_BAND = 0.06
"""The outer band examined on each side, as a share of the image's width or height: wide
enough to be more than the frame's edge, narrow enough to miss a car framed as asked
("whole car in frame" leaves a margin)."""

WHITE_MIN_LIGHTNESS = 88.0
"""A pixel is near-white from L* 88: a seamless white studio backdrop photographs at 92-100;
light grey paper (RGB 210) is L* 84 and is the grey background a dealer does not want."""

WHITE_MAX_CHROMA = 8.0
"""...and nearly colourless: warm or cool casts of a white backdrop stay under C* 5; a cream
or pale-blue wall is above 10."""

WHITE_PASS_SHARE = 0.90
"""A white background passes when 90 % of the border band is near-white: a soft shadow under
the car and the tyres touching the bottom band take up to about a tenth of it."""

WHITE_FAIL_SHARE = 0.70
"""...and fails below 70 %: between the two a person should look (a long shadow, a car
nearly touching an edge)."""

HUB_FAIL_SHARE = 0.90
"""A showroom ("hub") image whose border is 90 % near-white is a plain white studio: the
showroom was not drawn."""

HUB_WARN_SHARE = 0.60
"""...and from 60 % it is a very bright showroom, or a studio with a little floor: look."""

# -- colour -----------------------------------------------------------------------------------

CENTRAL_REGION = (0.15, 0.30, 0.85, 0.90)
"""Where the car is in a front three-quarter hero shot (left, top, right, bottom as shares of
the frame): the middle, lower part, away from the sky or ceiling and the frame's edges."""

HUB_CENTRAL_REGION = (0.22, 0.40, 0.78, 0.82)
"""A showroom has walls and floor around the car: a tighter region keeps them out."""

BACKDROP_CELL_SHARE = 0.08
"""A colour making up 8 % of the border is part of the background: a showroom's floor and
walls each take more; a car touching the frame's edge leaves only a sliver there."""

COLOUR_CELL_L = 15
COLOUR_CELL_AB = 16
"""Pixels are grouped in cells of 15 L* by 16 a* by 16 b*: wide enough that a painted body in
even light falls in one or two, narrow enough that body, tyres and glass fall apart."""

COLOUR_WIDEN = 15.0
"""The car's colour is the median of the fullest cell's pixels and every pixel within 15
(CIE76) of them: a shaded or metallic body counts as one colour."""

FOREGROUND_DELTA = 8.0
"""A pixel belongs to the car when it differs from every background colour by more than 8
(CIE76 in L*a*b*): well past the noise and gradient of a studio backdrop."""

BLENDS_DELTA = 15.0
"""A paint within 15 (CIE76) of the backdrop's colour blends into it (white on white, silver
on light grey): its body cannot be separated from the backdrop pixel by pixel."""

MIN_FOREGROUND_SHARE = 0.08
"""When less than 8 % of the central region differs from the background, the car is the
background's colour (a white car on white): its colour is then read from the whole region."""

ACHROMATIC_CHROMA = 12.0
"""A reference colour with C* below 12 is black, white, grey or silver: such paints are
judged by lightness and chroma, since their hue angle is noise."""

ACHROMATIC_PASS_CHROMA = 14.0
"""A car meant to be black, white, grey or silver passes with C* up to 14 (reflections of a
warm or blue showroom tint a silver car), warns up to 22, and fails beyond: it is coloured."""

ACHROMATIC_WARN_CHROMA = 22.0

ACHROMATIC_PASS_LIGHTNESS = 20.0
"""...and with L* within 20 of the reference (shading spreads a silver body over 30 units of
L*; its median stays within 20), warns within 32, and fails beyond: black asked, white made."""

ACHROMATIC_WARN_LIGHTNESS = 32.0

CHROMATIC_PASS_DELTA = 20.0
"""A coloured paint passes within CIEDE2000 20 of its reference: lighting and metallic flake
move the body's median that far (kings red photographed in a studio is 10-18 from its
swatch), while red against orange is about 25 and red against blue about 40."""

CHROMATIC_WARN_DELTA = 30.0
"""...warns up to 30 (a neighbouring hue, or a much darker shade), and fails beyond."""

# -- blank or broken --------------------------------------------------------------------------

BLANK_LEVEL_SPREAD = 6
"""Pixels within 6 grey levels (of 255) of the image's median are "the same level"."""

BLANK_FAIL_SHARE = 0.985
"""An image 98.5 % of whose pixels are one level is blank: a car on white fills at least a
fifth of the frame, and even a white car has dark tyres and glass."""

BLANK_WARN_SHARE = 0.95
"""From 95 % the car is tiny or barely drawn: look."""

# -- duplicates -------------------------------------------------------------------------------

HASH_SIZE = 24
"""The difference hash compares 25x24 neighbouring cells: 576 bits. The common 8x8 hash is too
coarse for catalogue images, which all share one composition (a car, centred, on white): it
calls two different white sedans the same. At 24 cells a re-encoded or resized copy still
keeps all but a bit or two, while two cars that differ only in their name plate differ in
3 % of the bits and more."""

DUPLICATE_FAIL_BITS = 8
"""Two images whose hashes differ in at most 8 of 576 bits (1.4 %) are the same picture."""

DUPLICATE_WARN_BITS = 12
"""...and at most 12 bits (2 %) is suspiciously close: look."""

DUPLICATE_COLOUR_GAP = 24.0
"""...and only between images whose 4x4 colour grids differ by at most 24 levels (of 255) in
every cell: the same picture, re-encoded, keeps its colours within a few levels, while a red
and a black car of one shape, which the colour-blind hash cannot tell apart, differ by 100
and more where the body is."""
