"""Stage 1: reading the original. The header is checked against the limits
before a pixel is decoded; then the source is opened for the resize stage,
either as a file libvips shrinks while it loads, or (HEIC) as a decoded image.

HEIC: pyvips-binary's libvips has no HEVC decoder, so HEIC is decoded by
pillow-heif (its wheels ship libheif with libde265). libheif applies the
HEIF transforms (irot/imir) itself, so a HEIC is upright as decoded: its EXIF
orientation tag describes the stored pixels and is ignored, as the HEIF
specification asks. Everything else is decoded by libvips.
"""

from __future__ import annotations

import dataclasses
import os
import struct
import zlib

import pyvips

from ..errors import PermanentError
from . import engine  # noqa: F401 (libvips set up before its first use)
from .detect import hidden_content, sniff
from .failures import lack_of_resources, machine_failure
from .options import InputOptions

#: EXIF orientations that swap width and height when applied.
TRANSPOSING_ORIENTATIONS = {5, 6, 7, 8}
#: A PNG text chunk (zTXt, iTXt) inflating past this is a decompression bomb.
MAX_PNG_TEXT_BYTES = 1024 * 1024
#: Bytes of one sample of each libvips band format.
SAMPLE_BYTES = {"uchar": 1, "char": 1, "ushort": 2, "short": 2, "uint": 4, "int": 4, "float": 4, "double": 8}
#: Formats decoded by pillow-heif rather than libvips.
PILLOW_HEIF_FORMATS = ("heic",)


@dataclasses.dataclass(frozen=True)
class Probe:
    format: str
    width: int  # as displayed, after orientation
    height: int  # of one frame
    pages: int  # frames of an animation; 1 for a still image
    interpretation: str
    #: Bytes of one decoded pixel (bands x bytes per sample).
    bytes_per_pixel: int = 3
    #: Progressive JPEG or interlaced PNG: decoded whole, not streamed.
    interlaced: bool = False


@dataclasses.dataclass(frozen=True)
class Source:
    """What the resize stage starts from: a file libvips loads with shrink-on-load
    (`filename`, loader options included), or an image decoded already (`image`)."""

    #: fail_on=truncated: a cut-off JPEG would otherwise "decode" with a grey bottom.
    #: Given to thumbnail itself: its own default would override one in the filename's [options].
    load_options = {"fail_on": "truncated"}

    probe: Probe
    frames: int
    filename: str | None = None
    image: pyvips.Image | None = None


def probe(path: str, max_pixels: int) -> Probe:
    """Reads the header only and enforces the pixel limit before any decoding."""
    fmt = sniff(path)
    if fmt == "png":
        _check_png_text_chunks(path)
    if fmt in PILLOW_HEIF_FORMATS:
        result = _probe_heif(path, fmt)
    else:
        result = _probe_vips(path, fmt)
    if result.width * result.height > max_pixels:
        raise PermanentError(
            f"{fmt} of {result.width}x{result.height} pixels is over MAX_SOURCE_PIXELS={max_pixels} "
            "(refused before decoding)",
            "too_many_pixels",
        )
    return result


def _probe_vips(path: str, fmt: str) -> Probe:
    try:
        image = pyvips.Image.new_from_file(path, access="sequential")
        _check_loader(path, fmt, image)
        width = image.width
        pages = image.get("n-pages") if image.get_typeof("n-pages") else 1
        height = image.get("page-height") if image.get_typeof("page-height") else image.height
        orientation = image.get("orientation") if image.get_typeof("orientation") else 1
        interpretation = str(image.interpretation)
        bytes_per_pixel = image.bands * SAMPLE_BYTES.get(image.format, 4)
        interlaced = bool(image.get("interlaced")) if image.get_typeof("interlaced") else False
    except pyvips.Error as e:
        if "not a known file format" in vips_error(e, path):
            # No decoder we allow takes it, although its first bytes claim one.
            hidden = hidden_content(path)
            raise PermanentError(f"not a real {fmt} file: its first bytes claim {fmt}, but "
                                 f"{f'it holds {hidden}' if hidden else f'no {fmt} decoder recognises it'} "
                                 "(refused: only the decoders of the formats we publish run)") from None
        if machine_failure(vips_error(e, path)):
            raise lack_of_resources(fmt, vips_error(e, path)) from None
        raise PermanentError(f"unreadable {fmt} file: {vips_error(e, path)}", "corrupt_image") from None
    if orientation in TRANSPOSING_ORIENTATIONS:
        width, height = height, width
    # A multi-page TIFF is a document, not an animation: only GIF and WebP animate.
    animated = fmt in ("gif", "webp")
    return Probe(fmt, width, height, max(1, pages) if animated else 1, interpretation, bytes_per_pixel, interlaced)


def _check_loader(path: str, fmt: str, image: pyvips.Image) -> None:
    """The decoder libvips chose must be the one of the format the first bytes claim:
    a file that is valid as two formats is decoded as the one we sniffed, or not at all."""
    loader = image.get("vips-loader") if image.get_typeof("vips-loader") else "an unknown loader"
    chosen = loader if loader.startswith(engine.LOADERS[fmt]) else None
    if chosen and fmt == "avif" and image.get_typeof("heif-compression"):
        compression = image.get("heif-compression")
        chosen = loader if compression == "av1" else None
        loader = f"{loader} ({compression}-coded, not AV1)"
    if chosen is None:
        hidden = hidden_content(path)
        raise PermanentError(f"not a real {fmt} file: its first bytes claim {fmt}, but libvips would decode it "
                             f"with {loader}{f'; it holds {hidden}' if hidden else ''} (refused)")


def _probe_heif(path: str, fmt: str) -> Probe:
    import pillow_heif

    try:
        heif = pillow_heif.open_heif(path, convert_hdr_to_8bit=False)  # reads the header only
        width, height = heif.size
        bands = 4 if heif.has_alpha else 3
        sample = 2 if heif.info.get("bit_depth", 8) > 8 else 1
    except Exception as e:  # pillow-heif raises ValueError/RuntimeError with libheif's message
        raise _heif_failure(fmt, "unreadable", e) from None
    return Probe(fmt, width, height, 1, "srgb", bands * sample)


def frames_to_decode(probed: Probe, options: InputOptions) -> int:
    """All frames of an animation within the limits, else only the first."""
    if probed.pages <= 1 or probed.pages > options.max_animation_frames:
        return 1
    if probed.width * probed.height * probed.pages > options.max_pixels:
        return 1
    return probed.pages


def open_source(path: str, probed: Probe, options: InputOptions) -> Source:
    frames = frames_to_decode(probed, options)
    if probed.format in PILLOW_HEIF_FORMATS:
        return Source(probed, 1, image=decode_heif(path, probed.format))
    return Source(probed, frames, filename=f"{path}[n={frames}]" if probed.pages > 1 else path)


def decode_heif(path: str, fmt: str) -> pyvips.Image:
    """The primary image, upright, 8 or 16 bits a sample, with its ICC profile attached."""
    import pillow_heif

    try:
        heif = pillow_heif.open_heif(path, convert_hdr_to_8bit=False)
        data, stride = heif.data, heif.stride
    except Exception as e:
        raise _heif_failure(fmt, "corrupt", e) from None
    width, height = heif.size
    bands = 4 if heif.mode.startswith("RGBA") else 3
    sixteen = heif.mode.endswith(";16")
    sample = 2 if sixteen else 1
    # Rows may be padded: load the padded width, then crop.
    image = pyvips.Image.new_from_memory(
        data, stride // (bands * sample), height, bands, "ushort" if sixteen else "uchar"
    )
    if stride != width * bands * sample:
        image = image.crop(0, 0, width, height)
    if sixteen:
        # libheif left-aligns 10/12-bit samples in 16 bits, which is what rgb16 means.
        image = image.copy(interpretation="rgb16")
    else:
        image = image.copy(interpretation="srgb")
    icc = heif.info.get("icc_profile")
    if icc:
        image.set_type(pyvips.GValue.blob_type, "icc-profile-data", bytes(icc))
    return image.copy_memory()


def _heif_failure(fmt: str, what: str, error: Exception) -> Exception:
    if isinstance(error, MemoryError) or machine_failure(str(error)):
        return lack_of_resources(fmt, str(error) or type(error).__name__)
    return PermanentError(f"{what} {fmt} file: {error}", "corrupt_image")


def _check_png_text_chunks(path: str) -> None:
    """Refuses a PNG whose compressed text chunks inflate to a bomb. libvips skips
    them (and would publish the tiny image inside), other tools reading the
    original would not: such a file is hostile and is refused clearly."""
    with open(path, "rb") as f:
        f.seek(8)
        while True:
            header = f.read(8)
            if len(header) < 8:
                return
            length, kind = struct.unpack(">I4s", header)
            if kind in (b"zTXt", b"iTXt"):
                _check_text_chunk(kind, f.read(length))
                f.seek(4, os.SEEK_CUR)
            elif kind == b"IEND":
                return
            else:
                f.seek(length + 4, os.SEEK_CUR)


def _check_text_chunk(kind: bytes, body: bytes) -> None:
    keyword, _, rest = body.partition(b"\x00")
    if kind == b"zTXt":
        compressed = rest[1:]  # compression method byte
    else:  # iTXt: flag, method, language\0, translated keyword\0, text
        if not rest or rest[0] == 0:
            return
        compressed = rest[2:].split(b"\x00", 2)[-1]
    inflater = zlib.decompressobj()
    try:
        inflater.decompress(compressed, MAX_PNG_TEXT_BYTES + 1)
    except zlib.error:
        return  # a damaged text chunk is harmless: no decoder inflates it further
    if len(inflater.unconsumed_tail) > 0:
        raise PermanentError(
            f"png text chunk {kind.decode()} {keyword[:40].decode('latin-1')!r} inflates past "
            f"{MAX_PNG_TEXT_BYTES} bytes: a decompression bomb (refused before decoding)"
        )


#: The marker each format ends with, looked for in its last 4 KiB (some writers
#: append padding or data after it); a decode error in a file without it is
#: reported as truncation, which libvips' shared error buffer (other threads can
#: take its lines) does not always say. GIF's one-byte trailer is too common a
#: byte to tell anything.
END_MARKERS = {"jpeg": (b"\xff\xd9", "end-of-image marker"), "png": (b"IEND", "IEND chunk")}
END_WINDOW = 4096


def truncation(path: str, fmt: str) -> str | None:
    """`the file ends before its ...` if the file has lost its end, else None."""
    if fmt not in END_MARKERS:
        return None
    marker, name = END_MARKERS[fmt]
    with open(path, "rb") as f:
        f.seek(max(0, os.path.getsize(path) - END_WINDOW))
        tail = f.read()
    return None if marker in tail else f"the file ends before its {name}"


def vips_error(error: pyvips.Error, path: str | None = None) -> str:
    """libvips' error text about this file, in one line. libvips keeps one error
    buffer per process, which can hold other threads' lines: lines naming
    another file are dropped, and the file's own path is not repeated."""
    lines = []
    for line in (error.detail or error.message or "").splitlines():
        line = line.strip()
        if path and path in line:
            line = line.replace(path, "").lstrip(": ")
        elif "/" in line:
            continue  # about another file
        if line and line not in lines:
            lines.append(line)
    return "; ".join(lines[-3:]) or str(error)
