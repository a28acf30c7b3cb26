"""Draining a worker host (issue 26): an operator drains a host before its maintenance. It finishes
the jobs it has begun and takes no new ones: from its next beat it offers no threads (so the listener
claims nothing for it) and hears that it drains (so it declines the first steps already claimed).
Resuming it undoes that. The host id is an operator's text: checked before it is used."""

import psycopg2
import psycopg2.errors
import pytest

from tests.support.job_sql import HOST, claim, cursor, new_job, one, rows, worker_beat

NOT_A_HOST_ID = "not a host id (1 to 200 letters, digits, dots, dashes or underscores); nothing changed"


def drain(cur, host=HOST) -> list[dict]:
    return rows(cur, "SELECT * FROM publisher_admin_drain_host(%s)", host)


def resume(cur, host=HOST) -> list[dict]:
    return rows(cur, "SELECT * FROM publisher_admin_resume_host(%s)", host)


def offered_threads(cur, host=HOST) -> int:
    return one(cur, "SELECT sum(threads)::int FROM publisher_workers WHERE host_id = %s", host)


def claimed_ids(cur) -> list[int]:
    return [r["job_id"] for r in claim(cur)]


def test_a_draining_host_offers_no_threads_and_gets_no_job_until_it_is_resumed(cur):
    assert worker_beat(cur, threads=2) is False
    assert drain(cur) == [{"changed": True, "message": f"host {HOST} draining: it finishes the jobs it has begun "
                                                       "and takes no new ones"}]
    assert drain(cur) == [{"changed": False, "message": f"host {HOST} was draining already; nothing changed"}]
    assert worker_beat(cur, threads=2) is True  # the host hears it at its next beat
    assert offered_threads(cur) == 0
    waiting = new_job(cur)
    assert claimed_ids(cur) == []

    assert resume(cur) == [{"changed": True, "message": f"host {HOST} resumed: it takes new jobs from its next beat"}]
    assert resume(cur) == [{"changed": False, "message": f"host {HOST} was not draining; nothing changed"}]
    assert worker_beat(cur, threads=2) is False
    assert offered_threads(cur) == 2
    assert claimed_ids(cur) == [waiting]


def test_the_other_hosts_go_on_while_one_drains(cur):
    worker_beat(cur, "host-a", threads=1)
    worker_beat(cur, "host-b", threads=1)
    assert drain(cur, "host-a")[0]["changed"]
    assert worker_beat(cur, "host-a", threads=1) is True
    assert worker_beat(cur, "host-b", threads=1) is False
    jobs = [new_job(cur) for _ in range(3)]
    assert claimed_ids(cur) == jobs[:2]  # room for host-b's one thread (two jobs a thread), none for host-a's


def test_the_beat_that_offers_threads_again_wakes_the_listener(schema_db):
    conn, _ = schema_db
    cur = cursor(conn)
    worker_beat(cur, threads=2)
    drain(cur)
    worker_beat(cur, threads=2)
    cur.execute("LISTEN publish_jobs")
    conn.poll()
    conn.notifies.clear()
    resume(cur)
    worker_beat(cur, threads=2)
    conn.poll()
    assert len(conn.notifies) == 1  # the claim need not wait for its next sweep
    worker_beat(cur, threads=2)
    conn.poll()
    assert len(conn.notifies) == 1  # an ordinary beat wakes no one


def test_a_host_that_never_beat_is_not_drained(cur):
    assert drain(cur, "host-typo") == [{"changed": False,
                                        "message": "no worker host host-typo has beaten; nothing changed"}]
    assert rows(cur, "SELECT * FROM publisher_draining_hosts") == []


@pytest.mark.parametrize("text", ["", None, "x" * 201, "a/../b", "host a", "<script>", "host-a\n", "hôst"])
def test_text_that_is_no_host_id_is_refused_and_not_quoted_back(cur, text):
    worker_beat(cur)
    assert drain(cur, text) == [{"changed": False, "message": NOT_A_HOST_ID}]
    assert resume(cur, text) == [{"changed": False, "message": NOT_A_HOST_ID}]
    assert rows(cur, "SELECT * FROM publisher_draining_hosts") == []


def test_the_longest_host_id_is_drained(cur):
    longest = "h" * 200  # publisher/jobs/host_identity.py MAX_HOST_ID
    worker_beat(cur, longest)
    assert drain(cur, longest)[0]["changed"]


def test_a_drained_host_stays_draining_after_its_workers_are_gone_and_says_who_drained_it(cur):
    worker_beat(cur)
    drain(cur)
    cur.execute("DELETE FROM publisher_workers")  # stopped for its maintenance, its rows forgotten since
    row = one(cur, "SELECT host_id, drained_by, now() - since < interval '1 minute' AS recent "
                   "FROM publisher_draining_hosts")
    assert row == {"host_id": HOST, "drained_by": one(cur, "SELECT session_user::text"), "recent": True}
    assert drain(cur)[0]["message"] == f"host {HOST} was draining already; nothing changed"
    assert worker_beat(cur) is True  # back from maintenance, still draining
    assert resume(cur)[0]["changed"]


def test_the_oncall_role_drains_and_resumes_a_host_and_the_readonly_and_worker_roles_may_not(schema_db):
    conn, url = schema_db
    worker_beat(cursor(conn))
    caller = psycopg2.connect(url, application_name="media-publisher-admin")
    try:
        for role in ("publisher_readonly", "publisher_worker", "publisher_listener"):
            for action in ("publisher_admin_drain_host", "publisher_admin_resume_host"):
                with caller.cursor() as c, pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    c.execute(f"SET ROLE {role}")
                    c.execute(f"SELECT * FROM {action}(%s)", (HOST,))
                caller.rollback()
        with caller.cursor() as c:
            c.execute("SET ROLE publisher_oncall")
            c.execute("SELECT changed FROM publisher_admin_drain_host(%s)", (HOST,))
            assert c.fetchone() == (True,)
            c.execute("SELECT drained_by FROM publisher_draining_hosts")  # on-call reads what it drained
            assert c.fetchone()[0].endswith(" via media-publisher-admin")
            c.execute("SELECT changed FROM publisher_admin_resume_host(%s)", (HOST,))
            assert c.fetchone() == (True,)
        caller.commit()
    finally:
        caller.close()


def test_a_database_whose_beat_returned_nothing_gets_the_beat_that_says_whether_the_host_drains(pg_server,
                                                                                                  schema_db):
    conn, url = schema_db
    cur = cursor(conn)
    cur.execute("DROP FUNCTION publisher_worker_beat(text, text, text, int)")
    cur.execute("""CREATE FUNCTION publisher_worker_beat(p_worker text, p_host text, p_queue text, p_threads int)
                   RETURNS void LANGUAGE sql AS $$ SELECT $$""")
    pg_server.apply_sql(url)
    assert one(cur, "SELECT pg_get_function_result('publisher_worker_beat(text, text, text, int)'::regprocedure)") \
        == "boolean"
    assert one(cur, "SELECT has_function_privilege('publisher_worker', "
                    "'publisher_worker_beat(text, text, text, int)', 'EXECUTE')") is True
    assert worker_beat(cur) is False
