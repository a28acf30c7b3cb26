"""Originals in, WebP variants out, with pyvips.

Stages, in the order a byte meets them: sniff (format from magic bytes),
probe (header only, limits checked before any pixel is decoded), render
(one shrink-on-load decode to the largest variant, smaller ones derived from
it), encode (WebP, sRGB, no metadata).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math

import pyvips

from .errors import PermanentError

#: Formats we publish, by magic bytes; everything else is refused before decoding.
SUPPORTED = ("jpeg", "png", "gif", "webp", "tiff", "heic", "avif")
HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}
#: EXIF orientations that swap width and height when applied.
TRANSPOSING_ORIENTATIONS = {5, 6, 7, 8}
#: libwebp effort (0-6, CPU against bytes). libvips' default, 4, spends 0.17 s
#: of CPU on a 1600 px variant; 2 spends 0.08 s for 3 % more bytes at the same
#: quality setting (PSNR within 0.3 dB). Measured in BENCHMARKS.md.
WEBP_EFFORT = 2

# Every job reads a different file, so libvips' operation cache never hits;
# it only keeps finished images' memory alive (7 MB more peak RSS per 12 MP
# photo, BENCHMARKS.md).
pyvips.cache_set_max(0)


@dataclasses.dataclass(frozen=True)
class Probe:
    format: str
    width: int  # as displayed, after EXIF orientation
    height: int
    pages: int
    interpretation: str


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    data: bytes
    width: int
    height: int
    content_type: str = "image/webp"
    extension: str = "webp"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def sniff(path: str) -> str:
    """The format, from the first bytes of the file; PermanentError if it is not an image we take."""
    with open(path, "rb") as f:
        head = f.read(64)
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[4:8] == b"ftyp":
        box_size = int.from_bytes(head[:4], "big")
        brands = {head[i : i + 4] for i in range(8, min(box_size, len(head)), 4)} - {head[12:16]}
        if brands & HEIF_BRANDS:
            return "avif" if brands & {b"avif", b"avis"} else "heic"
    raise PermanentError(f"not an image we publish: {_describe_content(head)}")


def _describe_content(head: bytes) -> str:
    if not head:
        return "the file is empty (0 bytes)"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<svg", b"<?xml")) and b"svg" in head.lower():
        return "it is an SVG drawing"
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "it is an HTML page"
    if text.startswith((b"<?xml", b"<")):
        return "it is XML/markup text"
    if text.startswith((b"{", b"[")):
        return "it is JSON text"
    return f"unrecognised content starting with {head[:8].hex(' ')}"


def probe(path: str, max_pixels: int) -> Probe:
    """Reads the header only and enforces the pixel limit before any decoding."""
    fmt = sniff(path)
    try:
        image = pyvips.Image.new_from_file(path, access="sequential")
        width, height = image.width, image.height
        pages = image.get("n-pages") if image.get_typeof("n-pages") else 1
        page_height = image.get("page-height") if image.get_typeof("page-height") else height
        orientation = image.get("orientation") if image.get_typeof("orientation") else 1
        interpretation = str(image.interpretation)
    except pyvips.Error as e:
        raise PermanentError(f"unreadable {fmt} file: {_first_line(e)}") from None
    frame_pixels = width * page_height
    if frame_pixels > max_pixels:
        raise PermanentError(
            f"{fmt} of {width}x{page_height} pixels is over MAX_SOURCE_PIXELS={max_pixels} "
            "(refused before decoding)"
        )
    if orientation in TRANSPOSING_ORIENTATIONS:
        width, page_height = page_height, width
    return Probe(fmt, width, page_height, max(1, pages), interpretation)


def render(path: str, probed: Probe, variants: tuple[tuple[str, int], ...], quality: int) -> list[Variant]:
    """Every variant, largest first, each fitted inside size x size and never upscaled."""
    by_size = sorted(variants, key=lambda v: v[1], reverse=True)
    fallback_profile = "cmyk" if probed.interpretation == "cmyk" else "srgb"
    out = []
    try:
        base = None
        for name, size in by_size:
            if base is None:
                image = _to_srgb8(_decode(path, probed, size, fallback_profile)).copy_memory()
                base = image
            else:
                image = base.thumbnail_image(size, height=size, size="down")
            out.append(Variant(name, _encode_webp(image, quality), image.width, image.height))
    except pyvips.Error as e:
        raise PermanentError(f"corrupt or truncated {probed.format}: {_first_line(e)}") from None
    return out


def _decode(path: str, probed: Probe, size: int, fallback_profile: str) -> pyvips.Image:
    """Shrink-on-load decode to fit size x size, EXIF orientation applied, converted to sRGB."""
    options = dict(height=size, size="down", input_profile=fallback_profile, output_profile="srgb")
    shrink = _jpeg_shrink_on_load(probed, size) if probed.format == "jpeg" else 1
    if shrink == 1:
        return pyvips.Image.thumbnail(path, size, fail_on="truncated", **options)
    # libvips' thumbnail leaves a factor of 2 to its own resize, so it decodes a
    # 12 or 24 MP JPEG at full size for a 1600 px variant. libjpeg can shrink
    # while it decodes: sharp takes the largest such shrink that still leaves the
    # target size, and so do we (a quarter less CPU and memory; PSNR 47 dB
    # against the full-size decode; BENCHMARKS.md).
    source = pyvips.Image.new_from_file(path, access="sequential", fail_on="truncated", shrink=shrink)
    if probed.interpretation == "srgb" and not source.get_typeof("icc-profile-data"):
        # Untagged sRGB: the fallback profile would be an sRGB -> sRGB transform
        # giving identical pixels for 8 % of the CPU (BENCHMARKS.md).
        return source.thumbnail_image(size, height=size, size="down")
    return source.thumbnail_image(size, **options)


def _jpeg_shrink_on_load(probed: Probe, size: int) -> int:
    """The largest libjpeg shrink (8, 4, 2) whose decoded image still covers the fitted variant."""
    long_edge, short_edge = max(probed.width, probed.height), min(probed.width, probed.height)
    target_long = min(size, long_edge)
    target_short = math.ceil(short_edge * target_long / long_edge)
    for shrink in (8, 4, 2):
        if long_edge // shrink >= target_long and short_edge // shrink >= target_short:
            return shrink
    return 1


def _to_srgb8(image: pyvips.Image) -> pyvips.Image:
    if image.interpretation != "srgb" or image.format != "uchar":
        image = image.colourspace("srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    return image


def _encode_webp(image: pyvips.Image, quality: int) -> bytes:
    # keep="none": no EXIF, XMP, IPTC or ICC in what buyers download.
    return image.webpsave_buffer(Q=quality, keep="none", effort=WEBP_EFFORT)


def _first_line(error: pyvips.Error) -> str:
    # libvips keeps one error buffer per process; its last line is this error's.
    lines = [l for l in (error.detail or error.message or "").splitlines() if l.strip()]
    return lines[-1].strip() if lines else str(error)
