"""`couchmate memory …` on the embedded store and a real PostgreSQL, in process (typer's
runner) and, for the error lines, as a real subprocess."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from couchmate import config
from couchmate.cli import app
from tests.helpers import run_couchmate
from tests.memory import pg_fixtures

pg_server, pg_url = pg_fixtures.pg_server, pg_fixtures.pg_url
ENV = {"COLUMNS": "240"}


def cm(*args: str, input: str | None = None, ok: bool = True):
    result = CliRunner().invoke(app, ["memory", *args], input=input, env=ENV)
    if ok:
        assert result.exit_code == 0, (args, result.output, result.exception)
    return result


def ids_in(output: str) -> list[str]:
    return re.findall(r"\b[0-9a-f]{32}\b", output)


def test_add_list_search_topics_forget_on_the_embedded_store():
    dragon = ids_in(cm("add", "I love the dragon boss in Elden Ring", "-t", "Elden Ring").output)
    cm("add", "The user's name is Ana")
    cm("add", "We got lost in the swamp", "--kind", "episode", "-t", "Elden Ring")
    cm("add", "Bob's secret", "--user", "bob")
    listed = cm("list").output
    assert "3 of 3 memories" in listed and "Bob" not in listed
    assert "elden ring" in cm("list", "--kind", "episode").output
    found = cm("search", "which dragon boss", "--k", "2").output
    assert ids_in(found)[0] == dragon[0]
    topics = cm("topics").output
    assert re.search(r"elden ring\s*│\s*2", topics)
    assert "forgot 1 of 1" in cm("forget", dragon[0]).output
    aborted = cm("forget", "--all", input="n\n", ok=False)
    assert aborted.exit_code == 1
    assert "2 of 2 memories" in cm("list").output
    assert "forgot 1 memories" in cm("forget", "--topic", "Elden Ring", "--yes").output
    assert "forgot 1 memories" in cm("forget", "--all", input="y\n").output
    assert "0 of 0" in cm("list").output and "1 of 1" in cm("list", "--user", "bob").output


@pytest.mark.server
def test_export_from_postgres_import_on_a_laptop_as_another_user(pg_url, tmp_path):
    pg = ["--store", "postgres", "--url", pg_url]
    cm(*pg, "add", "I finished chapter 3 of Hades", "--kind", "progress", "-t", "Hades")
    cm(*pg, "add", "The user is fine with spoilers.")
    path = tmp_path / "account.zip"
    assert "exported 2 memories of local" in cm(*pg, "export", str(path)).output
    first = cm("import", str(path), "--as-user", "ana-laptop")
    assert "imported 2 memories as ana-laptop (0 already here)" in first.output
    again = cm("import", str(path), "--as-user", "ana-laptop").output
    assert "imported 0 memories as ana-laptop (2 already here)" in again
    assert config.load().settings.user.id == "local"  # importing never changes the user
    assert "2 of 2 memories" in cm("list", "--user", "ana-laptop").output
    assert "chapter 3" in cm("search", "how far am I in hades", "--user", "ana-laptop").output


def test_mistakes_end_in_one_clear_line_and_a_hint(tmp_path):
    bad = tmp_path / "not-an-export.zip"
    bad.write_text("hello")
    for args, words in [
        (["import", str(tmp_path / "missing.zip")], "no such file"),
        (["import", str(bad)], "damaged or truncated"),
        (["--store", "postgres", "--url", "postgresql://me:pw@127.0.0.1:9/db", "list"], "9/db"),
        (["forget"], "say what to forget"),
        (["list", "--kind", "note"], "use episode, fact, progress"),
    ]:
        r = run_couchmate("memory", *args, env=ENV)
        assert r.returncode == 2, (args, r.stderr)
        assert words in r.stderr and "hint:" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr and ":pw@" not in r.stderr
