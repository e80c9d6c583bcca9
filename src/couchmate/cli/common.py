"""What every command shares: the console, error rendering, JSON output."""

from __future__ import annotations

import json
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class RemoteEndpoint:
    """A place the player's data goes that is not this machine (nor the home network)."""

    name: str  # "the fast model", "the memory embedder"
    url: str
    sends: str  # what goes there


def remote_endpoints(settings: Any, *, memory: bool = True) -> list[RemoteEndpoint]:
    """Every remote endpoint the settings send data to: the model roles that are on and
    (with `memory`) an OpenAI-style embedder, which sees every memory stored and searched.
    One list for every command that tells the player where their data goes."""
    from couchmate.models.presets import is_local_url

    out = [
        RemoteEndpoint(f"the {name} model", role.resolved().base_url, "screen images and chat")
        for name in ("fast", "smart")
        if (role := getattr(settings.models, name)).enabled and role.remote
    ]
    m = settings.memory
    if (
        memory
        and m.embedder == "openai"
        and m.embed_base_url
        and not is_local_url(m.embed_base_url)
    ):
        out.append(
            RemoteEndpoint("the memory embedder", m.embed_base_url, "memories and questions")
        )
    return out
