"""Stage 0: what a file is, from its first bytes, before any decoder sees it."""

from __future__ import annotations

from ..errors import PermanentError

#: Formats we publish, by magic bytes; everything else is refused before decoding.
SUPPORTED = ("jpeg", "png", "gif", "webp", "tiff", "heic", "avif")
#: ISO-BMFF brands of HEIF files (HEVC-coded HEIC and AV1-coded AVIF).
HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}


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
    raise PermanentError(f"not an image we publish: {_describe_content(head)}", "not_an_image")


#: Magic bytes of files that are sent where images are expected, to name them in the refusal.
OTHER_KINDS = ((b"%PDF-", "a PDF document"), (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
               (b"\x08\xf2\xa6\xb6", "a libvips image file"), (b"\xb6\xa6\xf2\x08", "a libvips image file"),
               (b"BM", "a BMP image (a format we do not publish)"), (b"8BPS", "a Photoshop document"),
               (b"\x1f\x8b", "a gzip archive"), (b"\x00\x00\x01\x00", "an icon file"))


def _describe_content(head: bytes) -> str:
    if not head:
        return "the file is empty (0 bytes)"
    for magic, what in OTHER_KINDS:
        if head.startswith(magic):
            return f"it is {what}"
    if head[4:8] == b"ftyp":
        brand = head[8:12].decode("latin-1")
        return f"it is an ISO-BMFF file of brand {brand!r} (a video or another format), not HEIC or AVIF"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<svg", b"<?xml")) and b"svg" in head.lower():
        return "it is an SVG drawing"
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "it is an HTML page"
    if text.startswith((b"<?xml", b"<")):
        return "it is XML/markup text"
    if text.startswith((b"{", b"[")):
        return "it is JSON text"
    if all(32 <= b < 127 or b in b"\t\r\n" for b in head):
        return f"it is plain text starting {head[:24].decode()!r}"
    return f"unrecognised content starting with {head[:8].hex(' ')}"


#: Markup or magic bytes that, found near the start of a file claiming an image
#: format (searched lower-cased), tell what it really is.
HIDDEN_CONTENT = ((b"<svg", "an SVG drawing"), (b"\x89png\r\n\x1a\n", "a PNG image"), (b"<html", "an HTML page"),
                  (b"<!doctype html", "an HTML page"), (b"<script", "a script"), (b"<?xml", "XML text"),
                  (b"<?php", "PHP code"))


def hidden_content(path: str) -> str | None:
    """What a file whose first bytes claim an image seems to hold instead (for the
    message that refuses it), from markup in its first KiB; None if nothing shows."""
    with open(path, "rb") as f:
        head = f.read(1024).lower()
    for marker, what in HIDDEN_CONTENT:
        if marker in head:
            return what
    return None
