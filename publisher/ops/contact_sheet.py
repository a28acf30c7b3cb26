"""A contact sheet for a person to look at: each published file's original
beside every variant in every format, with sizes, bytes, the encoder quality and
the SSIMULACRA2 score it reached, the placeholder and the dominant colour.

    python -m publisher.ops.contact_sheet --out DIR [--limit 100]

Reads the published files from the database, the variants from the bucket and
the originals from RAID (with the worker's configuration), and writes
DIR/index.html with every image beside it, so the page works offline and
from any static server. Originals a browser cannot show (HEIC, TIFF) are shown
as a PNG preview, marked as such.

From Python: write_contact_sheet(out_dir, settings=None, limit=100) -> Path of index.html.
"""

from __future__ import annotations

import argparse
import html
import os
import shutil
from pathlib import Path

from publisher.clients.db import Database
from publisher.clients.origin import OriginClient
from publisher.clients.storage import Storage
from publisher.errors import PermanentError
from publisher.jobs.store import overview as reads
from publisher.settings.job import Settings, load_settings

#: Formats a browser shows as they are; other originals get a PNG preview.
BROWSER_FORMATS = {"jpeg": "jpg", "png": "png", "gif": "gif", "webp": "webp", "avif": "avif"}
#: The page writes the count of images that loaded into this element, once all have settled.
LOADED_ID = "images-loaded"

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Contact sheet: {count} published files</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 1em; background: #eee; }}
section {{ background: #fff; margin: 0 0 1em; padding: .6em; border-radius: 6px; }}
h2 {{ font-size: 15px; margin: 0 0 .4em; }} .meta {{ color: #555; }}
.row {{ display: flex; gap: 12px; align-items: flex-end; flex-wrap: wrap; }}
figure {{ margin: 0; }} figcaption {{ font-size: 12px; color: #333; }}
img {{ max-width: 400px; max-height: 300px; display: block;
      background: repeating-conic-gradient(#ccc 0 25%, #fff 0 50%) 0 0 / 16px 16px; }}
.swatch {{ display: inline-block; width: 1em; height: 1em; vertical-align: middle; border: 1px solid #999; }}
img.placeholder {{ width: 64px; height: auto; image-rendering: auto; filter: blur(2px); }}
</style></head>
<body>
<h1>{count} published files</h1>
<p>Images loaded: <output id="{loaded_id}">pending</output></p>
{sections}
<script>
// Counts the images that loaded once every one has settled (loaded or failed).
function settled(img) {{
  return img.complete ? Promise.resolve() : new Promise(r => {{ img.onload = img.onerror = r; }});
}}
const images = Array.from(document.images);
Promise.all(images.map(settled)).then(() => {{
  const ok = images.filter(img => img.complete && img.naturalWidth > 0).length;
  document.getElementById("{loaded_id}").textContent = ok + "/" + images.length;
}});
</script>
</body></html>
"""


def write_contact_sheet(out_dir: str | os.PathLike, settings: Settings | None = None, limit: int = 100) -> Path:
    """Writes out_dir/index.html and the images it shows; returns the page's path.
    settings: the worker's configuration (default: read from the environment)."""
    settings = settings or load_settings()
    out = Path(out_dir)
    (out / "img").mkdir(parents=True, exist_ok=True)
    db = Database(settings.database_url, "media-publisher-contact-sheet", maxconn=1)
    try:
        with db.transaction() as cur:
            rows = reads.published_files(cur, limit)
    finally:
        db.close()
    storage = Storage(settings)
    origin = OriginClient.from_settings(settings)
    sections = [_section(row, out, storage, origin) for row in rows]
    page = out / "index.html"
    page.write_text(PAGE.format(count=len(rows), loaded_id=LOADED_ID, sections="\n".join(sections)))
    return page


def _section(row: dict, out: Path, storage: Storage, origin: OriginClient) -> str:
    file_id = row["id"]
    figures = [_original_figure(row, out, origin)]
    for name, variant in sorted(row["variants"].items(), key=lambda item: -item[1]["width"]):
        for fmt, entry in sorted(variant["formats"].items(), key=lambda item: item[0] != "webp"):
            local = out / "img" / f"{file_id}-{name}.{fmt}"
            local.write_bytes(storage.get_bytes(entry["key"]))
            frames = variant.get("frames", 1)
            caption = (f"{name} {fmt} {variant['width']}x{variant['height']}"
                       f"{f', {frames} frames' if frames > 1 else ''}, {_kb(entry['bytes'])}{_chosen(entry)}")
            figures.append(_figure(f"img/{local.name}", caption))
    if row.get("placeholder"):
        figures.append(f'<figure><img class="placeholder" src="{html.escape(row["placeholder"])}" alt="">'
                       f'<figcaption>placeholder, {len(row["placeholder"])} B inline</figcaption></figure>')
    colour = html.escape(row.get("dominant_color") or "")
    swatch = f'<span class="swatch" style="background:{colour}"></span> {colour}' if colour else ""
    return (f'<section><h2>{html.escape(row["raid_key"])}</h2>'
            f'<p class="meta">{row["width"]}x{row["height"]} as displayed; '
            f'recipe {html.escape(row.get("recipe") or "-")};'
            f' dominant colour {swatch}</p><div class="row">{"".join(figures)}</div></section>')


def _original_figure(row: dict, out: Path, origin: OriginClient) -> str:
    from publisher import imaging

    scratch = out / "img" / f"{row['id']}-original"
    try:
        size = origin.download(row["raid_key"], str(scratch))
        fmt = imaging.sniff(str(scratch))
    except (PermanentError, OSError) as e:
        scratch.unlink(missing_ok=True)
        return f"<figure><figcaption>original unavailable: {html.escape(str(e))}</figcaption></figure>"
    except Exception as e:  # a transient origin error: the sheet is still worth writing
        scratch.unlink(missing_ok=True)
        shown = html.escape(f"{type(e).__name__}: {e}")
        return f"<figure><figcaption>original unavailable: {shown}</figcaption></figure>"
    if fmt in BROWSER_FORMATS:
        local = scratch.with_name(f"{scratch.name}.{BROWSER_FORMATS[fmt]}")
        shutil.move(scratch, local)
        note = ""
    else:
        local = scratch.with_name(f"{scratch.name}-preview.png")
        _png_preview(str(scratch), fmt, str(local))
        scratch.unlink()
        note = " (PNG preview)"
    caption = f"original {fmt}{note} {row['width']}x{row['height']}, {_kb(size)}"
    return _figure(f"img/{local.name}", caption)


def _png_preview(path: str, fmt: str, dest: str) -> None:
    """A browser-viewable copy of an original a browser cannot show."""
    import pyvips

    from publisher.imaging import input as imaging_input

    if fmt in imaging_input.PILLOW_HEIF_FORMATS:
        image = imaging_input.decode_heif(path, fmt)
    else:
        image = pyvips.Image.new_from_file(path)
    image.thumbnail_image(1600, height=1600, size="down").pngsave(dest)


def _figure(src: str, caption: str) -> str:
    return f'<figure><img src="{html.escape(src)}" alt=""><figcaption>{html.escape(caption)}</figcaption></figure>'


def _chosen(entry: dict) -> str:
    """The quality and, when it was searched, the score reached against the target."""
    if entry.get("quality") is None:
        return ""
    if entry.get("score") is None:
        return f", q{entry['quality']}"
    bound = {"highest": ", the highest quality", "lowest": ", the lowest quality"}.get(str(entry.get("bound")), "")
    return f", q{entry['quality']}, score {entry['score']:.1f} (target {entry['target']:g}{bound})"


def _kb(n: int) -> str:
    return f"{n / 1000:.1f} kB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m publisher.ops.contact_sheet", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="directory to write index.html and the images into")
    parser.add_argument("--limit", type=int, default=100, help="most recently published files to show (default 100)")
    args = parser.parse_args(argv)
    from publisher import logs
    from publisher.app.runtime import settings_or_exit

    settings = settings_or_exit()
    logs.configure_for(settings)
    page = write_contact_sheet(args.out, settings, args.limit)
    print(page)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
