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


#: Markup that, found near the start of a file claiming an image format, tells what it really is.
HIDDEN_CONTENT = ((b"<svg", "an SVG drawing"), (b"<html", "an HTML page"), (b"<!doctype html", "an HTML page"),
                  (b"<script", "a script"), (b"<?xml", "XML text"), (b"<?php", "PHP code"))


def hidden_content(path: str) -> str | None:
    """What a file whose first bytes claim an image seems to hold instead (for the
    message that refuses it), from markup in its first KiB; None if nothing shows."""
    with open(path, "rb") as f:
        head = f.read(1024).lower()
    for marker, what in HIDDEN_CONTENT:
        if marker in head:
            return what
    return None
