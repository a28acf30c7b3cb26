"""The local stand-in PostgreSQL applies another tree's schema files (a benchmark's
baseline release) in name order, as a deploy of that tree would."""

import psycopg2


def test_the_stand_in_applies_another_trees_sql_files_in_name_order(pg_server, tmp_path):
    (tmp_path / "002_rows.sql").write_text("INSERT INTO applied_in_order (step) VALUES ('second');\n")
    (tmp_path / "001_table.sql").write_text("CREATE TABLE applied_in_order (step text);\n"
                                            "INSERT INTO applied_in_order (step) VALUES ('first');\n")
    url = pg_server.create_database()
    try:
        pg_server.apply_sql(url, tmp_path)
        conn = psycopg2.connect(url)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT step FROM applied_in_order ORDER BY ctid")
                assert [r[0] for r in cur.fetchall()] == ["first", "second"]
        finally:
            conn.close()
    finally:
        pg_server.drop_database(url)
