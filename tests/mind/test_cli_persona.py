"""`couchmate persona ...` through the real CLI entry point."""

from __future__ import annotations

from tests.helpers import run_couchmate


def test_persona_commands(tmp_path):
    r = run_couchmate(
        "persona", "say", "sunny", "low_health", "--lang", "zh", "--health", "9", "-n", "6"
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split()
    assert len(lines) == 6 and all("{" not in x for x in lines)
    assert all(a != b for a, b in zip(lines, lines[1:], strict=False))
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\nstyle: s\nlanguages: [en]\nvoice: {en: {espeak: en-us}}\nlines:\n"
        '  en:\n    deth: ["x"]\n'
    )
    r = run_couchmate("persona", "check", str(bad))
    err = " ".join(r.stderr.split())  # rich wraps long lines
    assert r.returncode == 2 and f"{bad}:7: unknown line kind 'deth'" in err
    r = run_couchmate("persona", "list")
    assert r.returncode == 0 and "deadpan" in r.stdout and "Sunny" in r.stdout
