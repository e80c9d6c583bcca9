"""Small things a new user tripped on: each one as they met it, through the real CLI."""

from __future__ import annotations

import io
from importlib.metadata import version

from rich.console import Console

from couchmate.bench.stats import print_table, table
from tests.helpers import run_couchmate


def test_version_is_printed():
    r = run_couchmate("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"couchmate {version('couchmate')}"


def test_help_shows_no_bool_metavar_beside_flags():
    for args in (("--help",), ("play", "--help"), ("memory", "search", "--help")):
        r = run_couchmate(*args, env={"COLUMNS": "120"})
        assert r.returncode == 0, r.stderr
        assert "--help" in r.stdout and "<bool>" not in r.stdout, args
    assert "--mute" in run_couchmate("play", "--help").stdout


def test_persona_say_in_a_language_it_does_not_speak_is_refused():
    """`persona say --lang fr` printed English lines as if that were French."""
    r = run_couchmate("persona", "say", "sunny", "death", "--lang", "fr")
    assert r.returncode == 2
    assert "no lines in 'fr'" in r.stderr and "en" in r.stderr and "ja" in r.stderr
    assert run_couchmate("persona", "say", "sunny", "death", "--lang", "ja").returncode == 0


def test_a_config_path_that_does_not_exist_is_an_error(tmp_path):
    """A mistyped COUCHMATE_CONFIG was ignored: every setting silently its default."""
    missing = tmp_path / "couchmate.toml"
    r = run_couchmate("config", "show", env={"COUCHMATE_CONFIG": str(missing)})
    assert r.returncode == 2 and str(missing) in r.stderr and "unset COUCHMATE_CONFIG" in r.stderr
    missing.write_text('[persona]\nname = "deadpan"\n')
    shown = run_couchmate("config", "show", env={"COUCHMATE_CONFIG": str(missing)})
    assert shown.returncode == 0 and "deadpan" in shown.stdout


def test_bench_tables_wrap_at_80_columns_instead_of_cutting_figures():
    """At 80 columns the memory table printed "couc…", "temp…" and "sea…" in place of names."""
    columns = ["system", "R@1", "R@5", "R@10", "R@20", "multi-hop", "temporal", "open-domain"]
    columns += ["single-hop", "search p50 / p95 ms"]
    row = ["couchmate", 0.328, 0.672, 0.755, 0.81, 0.427, 0.832, 0.383, 0.877, "3.20 / 3.74"]
    terminal = Console(width=80, record=True, color_system=None, force_terminal=True)
    print_table(table("memory", columns, [row]), terminal)
    out = terminal.export_text()
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    body = [line.split("│") for line in out.splitlines() if line.startswith("│")]
    assert "".join(cells[1].strip() for cells in body) == "couchmate"  # wrapped, whole
    for cell in ("0.328", "0.877", "3.74"):
        assert cell in out, cell
    # Into a file or a pipe (80 columns by default there) the table keeps its own width.
    piped = Console(width=80, file=io.StringIO(), color_system=None)
    print_table(table("memory", columns, [row]), piped)
    rows = [line for line in piped.file.getvalue().splitlines() if line.startswith("│")]
    assert len(rows) == 1 and "couchmate" in rows[0] and "3.20 / 3.74" in rows[0]
