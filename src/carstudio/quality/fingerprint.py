"""A perceptual fingerprint (difference hash) of an image, to find two rows with one picture.

dHash: shrink to (n+1) x n grey cells and note, for each pair of horizontal neighbours,
whether brightness falls. Re-encoding, resizing and small colour shifts keep almost every
bit; a different picture flips a large share of them.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from carstudio.quality.thresholds import HASH_SIZE

GRID = 4


def fingerprint(image: Image.Image, size: int = HASH_SIZE) -> str:
    """The image's difference hash (size*size bits) and its 4x4 colour grid, as hex joined by
    ":". The hash alone is colour-blind: a red and a blue car drawn alike share it."""
    grey = image.convert("L").resize((size + 1, size), Image.Resampling.BOX)
    cells = np.asarray(grey, dtype=np.int16)
    hashed = (cells[:, 1:] < cells[:, :-1]).flatten()
    grid = image.convert("RGB").resize((GRID, GRID), Image.Resampling.BOX)
    return f"{bytes(np.packbits(hashed)).hex()}:{grid.tobytes().hex()}"


def distance(first: str, second: str) -> int:
    """How many hash bits two fingerprints differ in."""
    return (hash_of(first) ^ hash_of(second)).bit_count()


def hash_of(fp: str) -> int:
    """A fingerprint's difference hash as a number: two hashes differ in the bits set in
    their exclusive or."""
    return int(fp.partition(":")[0], 16)


def colour_gap(first: str, second: str) -> float:
    """The largest difference between two fingerprints' colour grids, cell by cell and channel
    by channel, in levels of 255."""
    one = np.frombuffer(bytes.fromhex(first.partition(":")[2]), dtype=np.uint8)
    two = np.frombuffer(bytes.fromhex(second.partition(":")[2]), dtype=np.uint8)
    if len(one) != len(two) or not len(one):
        return 255.0
    return float(np.abs(one.astype(np.int16) - two.astype(np.int16)).max())


def bits(fp: str) -> int:
    return len(fp.partition(":")[0]) * 4
