"""Delivered files: the output presets a marketplace accepts, and the labels every file carries.

Each delivered image states in its own metadata that it is AI-made (IPTC's DigitalSourceType
`trainedAlgorithmicMedia`), with the model, the prompt and the car's VIN and stock number when
the row has them: an XMP packet, in a JPEG's APP1 segment, a WebP's XMP chunk or a PNG's iTXt
chunk under the keyword `XML:com.adobe.xmp`.
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import uuid
import zlib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO
from xml.sax.saxutils import escape, quoteattr

import numpy as np
from PIL import Image, ImageCms

from carstudio.errors import InvalidInput
from carstudio.spec import Background

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
"""IPTC's term for media made by a model trained on sampled content, from a prompt."""

XMP_KEYWORD = "XML:com.adobe.xmp"
_JPEG_XMP = b"http://ns.adobe.com/xap/1.0/\x00"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CARSTUDIO_NS = "urn:carstudio:ns:vehicle:1.0/"
"""Our own XMP namespace, for the car's identity (no standard schema names a VIN)."""
MAX_PROMPT = 4000


class OutputPreset(StrEnum):
    ORIGINAL = "original"
    """The image as the model made it, labelled."""
    LISTING_JPEG = "listing-jpeg"
    """sRGB JPEG, quality 90, long edge 1600 px: what listing sites take everywhere."""
    MARKETPLACE_4X3 = "marketplace-4x3"
    """JPEG 1200x900, letterboxed on the row's background when the image is not 4:3."""
    WEBP = "webp"
    """WebP, quality 90, the image's own size: a third of the PNG's bytes for web pages."""


PRESET_LABELS = {
    OutputPreset.ORIGINAL: "Original (as made)",
    OutputPreset.LISTING_JPEG: "Listing JPEG (1600 px)",
    OutputPreset.MARKETPLACE_4X3: "Marketplace 4:3 (1200×900 JPEG)",
    OutputPreset.WEBP: "WebP",
}
"""How each preset is named to people, in forms and the CLI's help."""

LISTING_LONG_EDGE = 1600
MARKETPLACE_SIZE = (1200, 900)
QUALITY = 90
WHITE = (255, 255, 255)


def parse_preset(value: str | None, default: OutputPreset = OutputPreset.ORIGINAL) -> OutputPreset:
    """A preset by name; ValueError naming the choices for anything else."""
    if value is None or not value.strip():
        return default
    try:
        return OutputPreset(value.strip().lower())
    except ValueError:
        choices = ", ".join(p.value for p in OutputPreset)
        raise ValueError(f"output must be one of {choices} (got {value[:30]!r})") from None


def requested_preset(value: str | None, default: str) -> OutputPreset:
    """The preset a request asked for (None or empty: `default`, the setting's), or a 400
    naming the presets there are."""
    try:
        return parse_preset(value, OutputPreset(default))
    except ValueError as exc:
        message = str(exc).capitalize() + "."
        raise InvalidInput(message, [{"field": "output", "message": message}]) from None


def content_size(preset: OutputPreset, width: int, height: int) -> tuple[int, int]:
    """The size the image's own pixels take in the delivered file (without letterbox bars)."""
    if preset is OutputPreset.LISTING_JPEG:
        scale = LISTING_LONG_EDGE / max(width, height)
    elif preset is OutputPreset.MARKETPLACE_4X3:
        scale = min(MARKETPLACE_SIZE[0] / width, MARKETPLACE_SIZE[1] / height)
    else:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def upscale_factor(preset: OutputPreset, width: int, height: int) -> float:
    """How much the preset enlarges the image (1.0 or less: not at all)."""
    new_width, _ = content_size(preset, width, height)
    return new_width / width


def suffix_for(preset: OutputPreset, source: Path) -> str:
    if preset is OutputPreset.ORIGINAL:
        return source.suffix.lstrip(".").lower() or "png"
    return "webp" if preset is OutputPreset.WEBP else "jpg"


@dataclass(frozen=True)
class Labels:
    """What a delivered file says about itself."""

    model: str
    prompt: str
    vin: str = ""
    stock_number: str = ""

    def xmp(self) -> bytes:
        """The XMP packet (UTF-8) that carries the labels."""
        prompt = self.prompt[:MAX_PROMPT]
        attributes = {
            "Iptc4xmpExt:DigitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
            "Iptc4xmpExt:AISystemUsed": self.model,
            "Iptc4xmpExt:AIPromptInformation": prompt,
            "xmp:CreatorTool": f"Car Studio ({self.model})",
        }
        if self.vin:
            attributes["carstudio:VIN"] = self.vin
        if self.stock_number:
            attributes["carstudio:StockNumber"] = self.stock_number
        written = "".join(f"\n    {name}={quoteattr(value)}" for name, value in attributes.items())
        packet = (
            '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
            ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
            '  <rdf:Description rdf:about=""\n'
            '    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"\n'
            '    xmlns:dc="http://purl.org/dc/elements/1.1/"\n'
            '    xmlns:xmp="http://ns.adobe.com/xap/1.0/"\n'
            f'    xmlns:carstudio="{CARSTUDIO_NS}"{written}>\n'
            "   <dc:description><rdf:Alt>"
            f'<rdf:li xml:lang="x-default">{escape(prompt)}</rdf:li>'
            "</rdf:Alt></dc:description>\n"
            "  </rdf:Description>\n"
            " </rdf:RDF>\n"
            "</x:xmpmeta>\n"
            '<?xpacket end="w"?>'
        )
        return packet.encode("utf-8")


def deliver(
    source: Path,
    dest: Path,
    *,
    preset: OutputPreset,
    labels: Labels,
    background: Background,
) -> Path:
    """Write `source` in `preset` as `dest` plus the preset's suffix, labelled; return its path.

    The file appears atomically; `source` may be the same path as the result (it is replaced).
    """
    final = dest.with_name(f"{dest.name}.{suffix_for(preset, source)}")
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.part")
    xmp = labels.xmp()
    try:
        if preset is OutputPreset.ORIGINAL:
            with source.open("rb") as src, tmp.open("wb") as out:
                _write_labelled_original(src, out, xmp)
        else:
            with Image.open(source) as image:
                image.load()
                rendered = _render(image, preset, background)
            if preset is OutputPreset.WEBP:
                rendered.save(tmp, format="WEBP", quality=QUALITY, xmp=xmp)
            else:
                rendered.save(tmp, format="JPEG", quality=QUALITY, xmp=xmp)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return final


def _render(image: Image.Image, preset: OutputPreset, background: Background) -> Image.Image:
    rgb = _to_srgb(image)
    if preset is OutputPreset.WEBP:
        return rgb
    size = content_size(preset, *rgb.size)
    if size != rgb.size:
        rgb = rgb.resize(size, Image.Resampling.LANCZOS)
    if preset is OutputPreset.MARKETPLACE_4X3 and size != MARKETPLACE_SIZE:
        fill = WHITE if background is Background.WHITE else _edge_colour(rgb)
        canvas = Image.new("RGB", MARKETPLACE_SIZE, fill)
        canvas.paste(
            rgb, ((MARKETPLACE_SIZE[0] - size[0]) // 2, (MARKETPLACE_SIZE[1] - size[1]) // 2)
        )
        return canvas
    return rgb


def _to_srgb(image: Image.Image) -> Image.Image:
    """The image's pixels in sRGB without alpha (transparent parts on white)."""
    icc = image.info.get("icc_profile")
    if image.mode in ("RGBA", "LA", "P"):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, WHITE)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        image = flat
    rgb = image.convert("RGB")
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(rgb, source, ImageCms.createProfile("sRGB"))
        except ImageCms.PyCMSError:
            return rgb  # an unreadable profile: the pixels are taken as sRGB
        if converted is not None:
            return converted
    return rgb


def _edge_colour(image: Image.Image) -> tuple[int, int, int]:
    """The median colour of the image's outermost pixels: bars that continue the showroom."""
    pixels = np.asarray(image)
    edge = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    red, green, blue = (int(v) for v in np.median(edge, axis=0))
    return red, green, blue


# -- labelling an original without re-encoding it ---------------------------------------------
# The file is copied a piece at a time, its image data untouched: a batch labels several large
# images at once, and holding each whole (and a copy) would cost tens of megabytes.

COPY_PIECE = 1 << 20


def _write_labelled_original(src: BinaryIO, out: BinaryIO, xmp: bytes) -> None:
    head = src.read(len(_PNG_SIGNATURE))
    if head == _PNG_SIGNATURE:
        _png_with_xmp(src, out, xmp)
    elif head.startswith(b"\xff\xd8"):
        src.seek(2)
        _jpeg_with_xmp(src, out, xmp)
    else:
        # WebP or anything else Pillow reads: re-encoded losslessly with the packet.
        src.seek(0)
        with Image.open(src) as image:
            image.save(out, format="WEBP", lossless=True, xmp=xmp)


def _copy(src: BinaryIO, out: BinaryIO, size: int) -> None:
    """Copy `size` bytes (fewer if the file ends first)."""
    while size > 0 and (piece := src.read(min(size, COPY_PIECE))):
        out.write(piece)
        size -= len(piece)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    """A PNG chunk: length, type, data and the CRC-32 of type and data (PNG spec, 5.3)."""
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


def _png_with_xmp(src: BinaryIO, out: BinaryIO, xmp: bytes) -> None:
    """The PNG (past its signature) with its XMP iTXt chunk (uncompressed, no language) right
    after IHDR; an XMP chunk it had is left out, as a file carries one packet."""
    keyword = XMP_KEYWORD.encode("latin-1") + b"\x00"
    out.write(_PNG_SIGNATURE)
    while len(header := src.read(8)) == 8:
        (length,) = struct.unpack(">I", header[:4])
        kind = header[4:]
        if kind == b"iTXt" and length <= 1 << 20:
            body = src.read(length + 4)
            if not body.startswith(keyword):
                out.write(header + body)
        else:
            out.write(header)
            _copy(src, out, length + 4)
        if kind == b"IHDR":
            out.write(png_chunk(b"iTXt", keyword + b"\x00\x00\x00\x00" + xmp))
        if kind == b"IEND":
            break


def _jpeg_with_xmp(src: BinaryIO, out: BinaryIO, xmp: bytes) -> None:
    """The JPEG (past its start-of-image marker) with an XMP APP1 segment after its JFIF/Exif
    header segments; an XMP segment it had is left out. Entropy-coded data is copied
    untouched."""
    segment = b"\xff\xe1" + struct.pack(">H", 2 + len(_JPEG_XMP) + len(xmp)) + _JPEG_XMP + xmp
    out.write(b"\xff\xd8")
    marker = src.read(2)
    while len(marker) == 2 and marker[0] == 0xFF and 0xE0 <= marker[1] <= 0xEF:
        size = src.read(2)
        if len(size) < 2:
            break
        (length,) = struct.unpack(">H", size)
        body = src.read(length - 2)
        if not (marker[1] == 0xE1 and body.startswith(_JPEG_XMP)):
            out.write(marker + size + body)
        marker = src.read(2)
    # Start of scan, a non-application segment, or the end: the header is over.
    out.write(segment)
    out.write(marker)
    shutil.copyfileobj(src, out, COPY_PIECE)
