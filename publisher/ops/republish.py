"""Re-publishes the files made with another imaging recipe, at a limited rate.

    python -m publisher.ops.republish --rate 5 [--max-active 20] [--dry-run]

Run it after a deploy that changed VARIANTS, VARIANT_FORMATS, a quality or a
decoder version, in the workers' environment (it computes the recipe the way
the workers do). It inserts ordinary publish_jobs rows, marked with the recipe
they are for, at most --rate per second and never more than --max-active at
once (so new uploads are not queued behind a wall of re-publishes), and exits
when no published file has another recipe. Nothing goes offline meanwhile:
a file stays 'published' with its current variants until the new ones replace
them (sql/004_imaging.sql), and the objects they replace stay in the bucket for
a grace period before maintenance removes them (publisher_objects). Each file gets
one re-publish job per recipe: one that fails keeps its variants and its
job's last_error says why (reset the job to run it again).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from publisher import logs
from publisher.app.runtime import settings_or_exit
from publisher.clients.db import Database
from publisher.imaging import Recipe, recipe_version
from publisher.jobs.store import actions

logger = logging.getLogger("publisher.republish")

#: Seconds between rounds; each round may create up to rate x this many jobs.
ROUND_SECONDS = 1.0


class RecipeMismatch(Exception):
    """The workers publish with another recipe than the one this command computed."""


def republish(db: Database, recipe: str, rate: float, max_active: int, *, dry_run: bool = False,
              sleep=time.sleep, log=logger.info) -> int:
    """Creates jobs until no published file has another recipe; returns how many it created."""
    created = 0
    budget = 0.0
    while True:
        with db.transaction() as cur:
            stale = actions.count_stale(cur, recipe)
            active = actions.count_active_republish(cur)
        if dry_run:
            log(f"{stale} published files have another recipe than {recipe}")
            return 0
        if stale == 0 and active == 0:
            with db.transaction() as cur:
                mismatched = actions.republish_mismatches(cur, recipe)
            if mismatched:
                raise RecipeMismatch(
                    f"{len(mismatched)} files were re-published but the workers made recipe "
                    f"{mismatched[0]['recipe']}, not {recipe}: run this command with the workers' configuration")
            log(f"done: every published file has recipe {recipe} or failed to get it ({created} jobs created)")
            return created
        budget = min(budget + rate * ROUND_SECONDS, max(rate * ROUND_SECONDS, 1.0))
        room = min(int(budget), max_active - active, stale)
        if room > 0:
            with db.transaction() as cur:
                made = actions.request_republish(cur, recipe, room)
            created += made
            budget -= made
            log(f"queued {made} (total {created}); {stale - made} waiting, {active + made} running")
        sleep(ROUND_SECONDS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m publisher.ops.republish", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=5.0, help="jobs created per second at most (default 5)")
    parser.add_argument("--max-active", type=int, default=20,
                        help="re-publish jobs pending or running at once, at most (default 20)")
    parser.add_argument("--dry-run", action="store_true", help="only count the files that would be re-published")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.max_active < 1:
        parser.error("--rate must be above 0 and --max-active at least 1")
    settings = settings_or_exit()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stdout)
    logs.configure_for(settings)
    recipe = recipe_version(Recipe.from_settings(settings))
    db = Database(settings.database_url, "media-publisher-republish", maxconn=2)
    try:
        republish(db, recipe, args.rate, args.max_active, dry_run=args.dry_run)
    except RecipeMismatch as e:
        logger.error("%s", e)
        return 1
    except KeyboardInterrupt:
        logger.info("interrupted; jobs already queued will complete")
    except Exception:
        # Logged, so redacted: a traceback printed by Python could quote a secret.
        logger.exception("re-publish stopped")
        return 1
    finally:
        db.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
