"""The docs cannot drift from the tree: every file, folder and `make` target that
README.md and docs/*.md name exists, and the README's table of job states is the
one the schema allows."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: Made by the build or at run time, not kept in the tree.
GENERATED = {"publisher/sql/", ".run/", "build/", ".venv/"}
#: A bare file name the docs name ("test_procfile.py", "002_job_states.sql").
FILE_NAME = re.compile(r"[\w.-]+\.(py|sql|md|yml|yaml|toml|lock|txt|service|timer|html|cfg|ini|env)")
PATH = re.compile(r"[\w.-]+(/[\w.*-]+)*/?")
LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`([^`]+)`")
MAKE = re.compile(r"(?:^|[\s;&(])make\s+([a-z][\w-]*)")


def _code(text: str) -> list[str]:
    """The inline code spans and the lines of fenced blocks."""
    fenced = re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.M | re.S)
    outside = re.sub(r"^```[^\n]*\n.*?^```", "", text, flags=re.M | re.S)
    return CODE_SPAN.findall(outside) + [line for block in fenced for line in block.splitlines()]


def _tracked_top() -> set[str]:
    return {p.name for p in ROOT.iterdir()} - {".venv", ".run", ".git", ".pytest_cache"}


def _exists(name: str, doc: Path) -> bool:
    if name.rstrip("/").count("/") == 0 and "/" not in name.rstrip("/") and FILE_NAME.fullmatch(name):
        # A bare file name: somewhere in the tree (its section says where).
        return any(p for p in ROOT.rglob(name) if ".venv" not in p.parts and ".git" not in p.parts)
    if "*" in name:
        return any(ROOT.glob(name.rstrip("/")))
    return (ROOT / name).exists() or (doc.parent / name).exists()


def _named_paths(doc: Path) -> set[str]:
    top = _tracked_top()
    named = set()
    for span in _code(doc.read_text()):
        for word in span.split():
            word = word.strip("'\"(),;:")
            if not PATH.fullmatch(word) or word.startswith("/") or any(word.startswith(g) for g in GENERATED):
                continue
            first = word.split("/", 1)[0]
            if ("/" in word and first in top) or ("/" not in word and FILE_NAME.fullmatch(word)):
                named.add(word)
    return named


def _linked_paths(doc: Path) -> set[str]:
    links = set()
    for target in LINK.findall(doc.read_text()):
        target = target.split("#", 1)[0]
        if target and not re.match(r"[a-z]+:", target):
            links.add(target)
    return links


def _make_targets() -> set[str]:
    return set(re.findall(r"^([\w-]+)\s*:(?!=)", (ROOT / "Makefile").read_text(), flags=re.M))


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_every_file_and_folder_a_doc_names_exists(doc):
    missing = sorted(name for name in _named_paths(doc) if not _exists(name, doc))
    assert missing == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_every_link_of_a_doc_to_a_file_of_the_tree_resolves(doc):
    missing = sorted(link for link in _linked_paths(doc) if not (doc.parent / link).exists())
    assert missing == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_every_make_target_a_doc_names_is_in_the_makefile(doc):
    named = {target for line in _code(doc.read_text()) for target in MAKE.findall(line)}
    assert sorted(named - _make_targets()) == []


def _allowed_statuses() -> set[str]:
    tables = (ROOT / "sql" / "001_tables.sql").read_text()
    checks = re.findall(r"CHECK \(status IN \(([^)]*)\)\)", tables)
    assert checks, "the CHECK constraint on publish_jobs.status"
    return set(re.findall(r"'(\w+)'", checks[-1]))


def test_the_readme_table_of_job_states_is_the_set_the_schema_allows():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Job states", 1)[1].split("\n## ", 1)[0]
    table = set(re.findall(r"^\| `(\w+)` \|", section, flags=re.M))
    assert table == _allowed_statuses()
    assert "cancelled" in table


def test_the_state_machine_header_of_002_names_every_allowed_status():
    sql = (ROOT / "sql" / "002_job_states.sql").read_text()
    header = "\n".join(line for line in sql.split("BEGIN;", 1)[0].splitlines() if line.startswith("--"))
    assert sorted(s for s in _allowed_statuses() if not re.search(rf"\b{s}\b", header)) == []
