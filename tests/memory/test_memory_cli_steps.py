"""Users' own steps with `couchmate memory …`, as real processes on the real embedder and
store, each in the test's own config and data dirs (tests/conftest.py)."""

from __future__ import annotations

import re
import subprocess

import pytest

from couchmate import config
from couchmate.memory.service import MemoryService
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


BOSSES = {
    "Malenia": "I finally beat Malenia, Blade of Miquella, on the third try after her dance",
    "Radahn": "We lost against Starscourge Radahn twice during the festival, the meteor got us",
    "Godrick": "Godrick the Grafted went down fast once I summoned the jellyfish spirit helper",
}


def paste_a_megabyte_in_play() -> str:
    """What `play` does with a typed (pasted) line: the session's memory slot records it."""
    import asyncio

    from couchmate.memory.slot import StoreMemorySlot
    from couchmate.mind.memory_slot import Happening

    slot = StoreMemorySlot(MemoryService.from_settings(config.load().settings.memory))
    pasted = "my build notes " + "strength faith bleed " * 50_000  # ~1 MB, one line
    asyncio.run(slot.record("local", Happening("user_turn", pasted)))
    slot.service.close()
    return pasted


def test_search_and_list_read_well_at_80_columns_after_a_megabyte(tmp_path):
    for text in BOSSES.values():
        ok("memory", "add", text, "-t", "Elden Ring")
    paste_a_megabyte_in_play()
    narrow = {"COLUMNS": "80"}
    for args in (("memory", "search", "which boss did I beat?"), ("memory", "list")):
        out = ok(*args, env=narrow).stdout
        assert len(out) < 12_000, len(out)  # was 2.5 MB: every search printed the paste
        assert max(map(len, out.splitlines())) <= 80
        for word in BOSSES:
            assert word in out, (word, out)  # whole, not folded 5 characters a line
        assert "chars]" in out  # the paste is shown cut, and says so
    huge_query = "which boss " + "really " * 15_000
    out = ok("memory", "search", huge_query, env=narrow).stdout
    assert len(out) < 12_000 and "really " * 20 not in out


def test_add_full_keeps_a_long_text_and_show_prints_it(tmp_path):
    long = "Patch notes I want to keep: " + "the greatsword now staggers faster. " * 4000
    cut = ok("memory", "add", "-", stdin=long)
    assert "--full keeps all of it" in cut.stderr
    kept = ok("memory", "add", "-", "--full", "--kind", "episode", stdin=long)
    assert "all of it is kept" in kept.stderr
    (mid,) = re.findall(r"remembered ([0-9a-f]{32})", kept.stdout)
    assert ok("memory", "show", mid).stdout.strip() == long.strip()
    listed = ok("memory", "list", env={"COLUMNS": "80"}).stdout
    assert len(listed) < 6_000 and "memory show ID" in listed
    missing = run_couchmate("memory", "show", "f" * 32)
    assert missing.returncode == 2 and "hint:" in missing.stderr
