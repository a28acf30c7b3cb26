"""Each rule of the job core is written once; where SQL and Python both need it,
they agree. The state machine is sql/; Python's names for it are
publisher/jobs/store/states.py and publisher/stages.py."""

import re
from pathlib import Path

from publisher.jobs.host_identity import HOST_ID
from publisher.jobs.locality import HOST_QUEUE_PREFIX
from publisher.jobs.store.states import (
    ACTIVE_STATUSES,
    ENDED_STATUSES,
    IN_FLIGHT_STATUSES,
    WAITING_STATUSES,
    Lane,
    Status,
)
from publisher.stages import PRIORITY, STAGES, Stage

ROOT = Path(__file__).resolve().parents[2]
SQL = {p.name: p.read_text() for p in sorted((ROOT / "sql").glob("*.sql"))}
STATES_MODULE = ROOT / "publisher" / "jobs" / "store" / "states.py"


def _quoted(text: str) -> list[str]:
    return re.findall(r"'([^']*)'", text)


def _check(column: str) -> list[str]:
    (found,) = re.findall(rf"CHECK \({column} IN \(([^)]*)\)\)", SQL["001_tables.sql"])
    return _quoted(found)


def _product_sources():
    for package in ("publisher", "actors", "listener"):
        for path in sorted((ROOT / package).rglob("*")):
            if path.suffix in (".py", ".html", ".js") and path != STATES_MODULE:
                yield path


def test_the_status_enum_names_every_status_the_table_allows_in_order():
    assert [s.value for s in Status] == _check("status")


def test_the_stage_enum_names_the_stages_the_table_and_the_state_machine_know_in_order():
    (in_002,) = re.findall(r"stages constant text\[\] := ARRAY\[([^\]]*)\]", SQL["002_job_states.sql"])
    assert [s.value for s in Stage] == _check("stage") == _quoted(in_002) == list(STAGES) == list(PRIORITY)


def test_the_lane_enum_names_the_lanes_the_table_allows_and_sql_moves_jobs_to_named_ones():
    checks = re.findall(r"CHECK \(lane IN \(([^)]*)\)\)", SQL["001_tables.sql"])  # publish_jobs, paused lanes
    assert len(checks) == 2 and {tuple(int(v) for v in c.split(",")) for c in checks} == {tuple(Lane)}
    # an ended job run again (the update trigger) and one file's republish go to the retry lane;
    # backfill and republish insert into the backlog's; the claim, and the listener's question whether
    # jobs wait, know every lane
    assert re.findall(r"NEW\.lane := (\d)", SQL["002_job_states.sql"]) == [str(Lane.RETRY.value)]
    assert re.findall(r"VALUES \(p_file, (\d)\)", SQL["006_operations.sql"]) == [str(Lane.RETRY.value)]
    assert re.findall(r"FOR (?:claimed|waiting)_lane IN (\d)\.\.(\d) LOOP", SQL["002_job_states.sql"]) == [
        (str(min(Lane).value), str(max(Lane).value))] * 2
    (names,) = re.findall(r"SELECT \(ARRAY\[([^\]]*)\]\)\[p_lane \+ 1\]", SQL["006_operations.sql"])
    assert _quoted(names) == [lane.name.lower() for lane in Lane]  # publisher_lane_name
    backlog = [str(Lane.BACKLOG.value)]
    assert re.findall(r"SELECT c\.file_id, (\d) FROM candidates", SQL["006_operations.sql"]) == backlog
    assert re.findall(r"SELECT s\.file_id, p_recipe, (\d)", SQL["004_imaging.sql"]) == backlog


def test_every_status_list_in_sql_is_one_python_names():
    named = {frozenset(ACTIVE_STATUSES), frozenset(IN_FLIGHT_STATUSES), frozenset(WAITING_STATUSES),
             frozenset(ENDED_STATUSES), frozenset(Status)}
    lists = [(name, _quoted(found)) for name, text in SQL.items()
             for found in re.findall(r"\bstatus\s+(?:NOT\s+)?IN\s*\(([^)]*)\)", text)]
    assert lists, "the pattern finds the lists"
    assert [(name, found) for name, found in lists if frozenset(found) not in named] == []


def test_the_active_statuses_are_the_ones_the_one_active_job_per_file_index_counts():
    (predicate,) = re.findall(
        r"publish_jobs_one_active_per_file\s+ON publish_jobs \(file_id\) WHERE status IN \(([^)]*)\)",
        SQL["001_tables.sql"])
    assert set(_quoted(predicate)) == set(ACTIVE_STATUSES)


def test_no_python_or_template_spells_out_the_active_statuses():
    spelled = re.compile(r"""['"]pending['"],\s*['"]queued['"],\s*['"]processing['"]""")
    assert [str(p.relative_to(ROOT)) for p in _product_sources() if spelled.search(p.read_text())] == []


def test_the_host_queue_prefix_is_written_once_in_python_and_sql_uses_the_same():
    in_python = [str(p.relative_to(ROOT)) for p in _product_sources() if "publish-host-" in p.read_text()]
    assert in_python == ["publisher/jobs/locality.py"]
    in_sql = {m for text in SQL.values() for m in re.findall(r"'(publish-host-)%'", text)}
    assert in_sql <= {HOST_QUEUE_PREFIX}


def test_no_hard_coded_interval_decides_whether_a_worker_host_is_alive():
    """Whether a host is alive is one interval (locality.host_alive), given to SQL as a parameter."""
    hard_coded = re.compile(r"seen_at\s*[<>]=?\s*now\(\)\s*-\s*interval\s*'")
    sources = [p for p in _product_sources() if p.suffix == ".py"]
    assert [str(p.relative_to(ROOT)) for p in sources if hard_coded.search(p.read_text())] == []
    assert [name for name, text in SQL.items() if hard_coded.search(text)] == []
    assert not any("SILENT_AFTER_SECONDS" in p.read_text() for p in sources)


def test_the_max_retries_sql_falls_back_to_is_the_settings_default():
    # The listener hands MAX_RETRIES to publisher_settings; until one has, SQL uses its own fallback.
    from publisher.settings.schema import default_of

    (in_008,) = re.findall(r"WHERE name = 'max_retries'\), (\d+)\)", SQL["008_settings.sql"])
    assert int(in_008) == default_of("MAX_RETRIES")
    assert [name for name, text in SQL.items() if re.search(r"max_retries\s+int\s+NOT NULL DEFAULT", text)] == []


def test_the_retention_ages_pg_cron_purges_with_are_the_listeners_constants():
    # pg_cron runs the purges without the listener (sql/007_pg_cron.sql): SQL falls back to these ages.
    from publisher.settings import fixed

    def fallback(name: str) -> str:
        (found,) = re.findall(rf"current_setting\('publisher\.{name}', true\), ''\)::interval, interval '([^']+)'",
                              SQL["006_operations.sql"])
        return found

    assert fallback("completed_job_retention") == f"{fixed.COMPLETED_JOB_RETENTION_DAYS:g} days"
    assert fallback("deleted_file_retention") == f"{fixed.DELETED_FILE_RETENTION_DAYS:g} days"
    assert fallback("broker_retention") == f"{fixed.BROKER_RETENTION_HOURS:g} hours"


def test_sql_takes_for_a_host_id_exactly_what_python_makes_one_of():
    # The draining hosts' table and the operator's drain and resume refuse any other text.
    assert re.findall(r"CHECK \(host_id ~ '\^([^']*)\$'\)", SQL["001_tables.sql"]) == [HOST_ID.pattern]
    assert re.findall(r"p_host ~ '\^([^']*)\$'", SQL["006_operations.sql"]) == [HOST_ID.pattern]
