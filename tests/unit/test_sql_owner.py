"""One owner of the job store: publisher/jobs/store/ is the only Python code that
runs SQL against the job tables or calls the state functions (sql/)."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("publisher", "actors", "listener")
STORE = ROOT / "publisher" / "jobs" / "store"
JOB_TABLES = ("publish_jobs", "auction_files", "publish_job_events", "publisher_workers", "publish_event_outbox",
              "publisher_objects", "publisher_settings")
SQL_VERB = re.compile(r"\b(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM|WITH \w+ AS|LISTEN)\b")
TOUCHES_THE_STORE = re.compile(r"\b(" + "|".join(JOB_TABLES) + r")\b|\bpublisher_\w+\s*\(|\bLISTEN\b")


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def _sql_outside_the_store() -> list[str]:
    found = []
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            if STORE in path.parents:
                continue
            tree = ast.parse(path.read_text(), str(path))
            skip = _docstrings(tree)
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
                    text = node.value
                    if SQL_VERB.search(text) and TOUCHES_THE_STORE.search(text):
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {' '.join(text.split())[:80]}")
    return found


def test_no_python_outside_the_job_store_runs_sql_against_the_job_tables():
    assert _sql_outside_the_store() == []


def test_the_job_store_holds_the_statements():
    # The check above finds something to find: the store itself is full of them.
    assert STORE.is_dir()
    assert any(TOUCHES_THE_STORE.search(p.read_text()) for p in STORE.glob("*.py"))
