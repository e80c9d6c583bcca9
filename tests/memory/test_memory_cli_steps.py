"""Users' own steps with `couchmate memory …`, as real processes on the real embedder and
store, each in the test's own config and data dirs (tests/conftest.py)."""

from __future__ import annotations

import re
import subprocess

import pytest

from couchmate import config
from tests.helpers import run_couchmate

pytestmark = pytest.mark.slow  # every couchmate process loads the embedding model


def ok(*args: str, **kw) -> subprocess.CompletedProcess[str]:
    r = run_couchmate(*args, **kw)
    assert r.returncode == 0, (args, r.stdout[-2000:], r.stderr[-2000:])
    return r


def test_import_as_another_user_never_changes_the_local_user(tmp_path):
    """The README's `memory export me.zip && memory import me.zip --as-user alex`."""
    cfg = config.config_file()
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text('[user]\nid = "sam"\nname = "Sam"\n')
    before = cfg.read_text()
    ok("memory", "add", "I beat Malenia on the third try", "-t", "Elden Ring")
    zipped = str(tmp_path / "me.zip")
    ok("memory", "export", zipped)
    imported = ok("memory", "import", zipped, "--as-user", "alex")
    assert "imported 1 memories as alex" in imported.stdout
    assert "memory list --user alex" in imported.stderr  # where to find them
    assert cfg.read_text() == before  # settings are not imported unless asked
    assert re.search(r"user\.id\s*│\s*sam\s", ok("config", "show").stdout)
    assert "Malenia" in ok("memory", "list", "--user", "alex").stdout
    assert "1 of 1 memories" in ok("memory", "list").stdout  # sam's own, still his

    # Asked for: the exported persona comes back, the user stays sam.
    cfg.write_text(before + '[persona]\nname = "deadpan"\n')
    again = ok("memory", "import", zipped, "--as-user", "alex", "--settings")
    assert "imported 0 memories as alex (1 already here)" in again.stdout
    assert "persona.name" in again.stderr and "user.id" not in again.stderr
    loaded = config.load(cfg, environ={}).settings
    assert (loaded.user.id, loaded.persona.name) == ("sam", "sunny")
