"""Delivered files: the output presets a marketplace accepts, and the labels every file carries.

Each delivered image states in its own metadata that it is AI-made (IPTC's DigitalSourceType
`trainedAlgorithmicMedia`), with the model, the prompt and the car's VIN and stock number when
the row has them: an XMP packet, in a JPEG's APP1 segment, a WebP's XMP chunk or a PNG's iTXt
chunk under the keyword `XML:com.adobe.xmp`.
"""

from __future__ import annotations

import io
import os
import struct
import uuid
import zlib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
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
            tmp.write_bytes(_labelled_original(source.read_bytes(), xmp))
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


def _labelled_original(data: bytes, xmp: bytes) -> bytes:
    if data.startswith(_PNG_SIGNATURE):
        return _png_with_xmp(data, xmp)
    if data.startswith(b"\xff\xd8"):
        return _jpeg_with_xmp(data, xmp)
    # WebP or anything else Pillow reads: re-encoded losslessly with the packet.
    with Image.open(io.BytesIO(data)) as image:
        out = io.BytesIO()
        image.save(out, format="WEBP", lossless=True, xmp=xmp)
        return out.getvalue()


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, whole chunk bytes) of every chunk after the signature."""
    chunks = []
    offset = len(_PNG_SIGNATURE)
    while offset + 8 <= len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        end = offset + 12 + length
        chunks.append((kind, data[offset:end]))
        offset = end
        if kind == b"IEND":
            break
    return chunks


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    """A PNG chunk: length, type, data and the CRC-32 of type and data (PNG spec, 5.3)."""
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


def _png_with_xmp(data: bytes, xmp: bytes) -> bytes:
    """The PNG with its XMP iTXt chunk (uncompressed, no language) right after IHDR; an XMP
    chunk it had is replaced, as a file carries one packet."""
    itxt = png_chunk(b"iTXt", XMP_KEYWORD.encode("latin-1") + b"\x00\x00\x00\x00\x00" + xmp)
    parts = [_PNG_SIGNATURE]
    for kind, chunk in _png_chunks(data):
        if kind == b"iTXt" and chunk[8:].startswith(XMP_KEYWORD.encode("latin-1") + b"\x00"):
            continue
        parts.append(chunk)
        if kind == b"IHDR":
            parts.append(itxt)
    return b"".join(parts)


def _jpeg_with_xmp(data: bytes, xmp: bytes) -> bytes:
    """The JPEG with an XMP APP1 segment after its JFIF/Exif header segments; an XMP segment
    it had is replaced. Entropy-coded data is copied untouched."""
    segment = b"\xff\xe1" + struct.pack(">H", 2 + len(_JPEG_XMP) + len(xmp)) + _JPEG_XMP + xmp
    head = [data[:2]]
    offset = 2
    while offset + 4 <= len(data) and data[offset] == 0xFF:
        marker = data[offset + 1]
        if marker == 0xDA or not 0xE0 <= marker <= 0xEF:
            break  # start of scan or a non-application segment: the header is over
        (length,) = struct.unpack(">H", data[offset + 2 : offset + 4])
        body = data[offset : offset + 2 + length]
        offset += 2 + length
        if marker == 0xE1 and body[4:].startswith(_JPEG_XMP):
            continue
        head.append(body)
    head.append(segment)
    return b"".join(head) + data[offset:]
