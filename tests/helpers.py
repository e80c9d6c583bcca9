"""Helpers the test packages share."""

from __future__ import annotations

import os
import subprocess
import sys


def run_couchmate(
    *args: str,
    timeout: float = 120,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`couchmate ARGS` as a user runs it: a real process with this interpreter. COLUMNS is
    wide so rich does not wrap the lines the tests look for."""
    return subprocess.run(
        [sys.executable, "-m", "couchmate", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )
