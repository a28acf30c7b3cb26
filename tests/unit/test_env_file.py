""".env files as devstack and the deployment tests read them."""

from devstack.run import read_env_file


def test_an_env_file_is_read_without_comments_exports_or_quotes(tmp_path):
    path = tmp_path / ".env"
    path.write_text("# comment\n\nDATABASE_URL=postgresql://x/y\nexport LOG_LEVEL='debug'\nB2_BUCKET=\"b\"\n")
    assert read_env_file(path) == {"DATABASE_URL": "postgresql://x/y", "LOG_LEVEL": "debug", "B2_BUCKET": "b"}
