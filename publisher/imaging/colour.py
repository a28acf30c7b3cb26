"""Stage 3: colour. Every output is 8-bit sRGB, alpha kept.

Pixels are converted through ICC profiles, never merely re-tagged: an
embedded profile (Adobe RGB, ProPhoto, Display P3, a press CMYK profile) is
imported and the pixels exported to sRGB. CMYK without a profile goes through
libvips' built-in CMYK profile rather than a naive 255-C-K formula. Files with
neither a profile nor CMYK are taken as sRGB, which is what browsers assume too.
"""

from __future__ import annotations

import pyvips

#: Profile for CMYK sources that carry none (libvips' built-in press profile).
FALLBACK_CMYK_PROFILE = "cmyk"
#: What every output is converted to (libvips' built-in sRGB profile).
OUTPUT_PROFILE = "srgb"
#: Perceptual, as sharp: a press profile's perceptual tables map its black (ink on
#: paper, a dark grey) to screen black, so blacks stay black; relative colorimetric
#: would publish them as slate grey. Matrix profiles
#: (Adobe RGB, ProPhoto, Display P3) have no perceptual tables: for them both
#: intents give the same pixels (measured: identical output).
INTENT = "perceptual"


def conversion_options(interpretation: str) -> dict:
    """Options for libvips' thumbnail, which imports the embedded profile (or
    the fallback) and exports sRGB while it resizes."""
    options = {"output_profile": OUTPUT_PROFILE, "intent": INTENT}
    if interpretation == "cmyk":
        options["input_profile"] = FALLBACK_CMYK_PROFILE
    return options


def to_srgb8(image: pyvips.Image) -> pyvips.Image:
    """8-bit sRGB with its alpha band, if any (grey becomes three equal bands)."""
    if image.interpretation != "srgb" or image.format != "uchar":
        image = image.colourspace("srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    return image
