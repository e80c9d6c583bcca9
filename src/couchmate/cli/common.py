"""What every command shares: the console, error rendering, JSON output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def write_json(path: Path | None, data: Any) -> None:
    """Write a benchmark's or command's JSON result, creating folders as needed."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    err_console.print(f"[dim]wrote {path}[/dim]")
