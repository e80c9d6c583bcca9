"""`couchmate config show|path`."""

from __future__ import annotations

import typer
from rich.table import Table

from couchmate import config
from couchmate.cli.common import console, remote_endpoints


def register(app: typer.Typer) -> None:
    sub = typer.Typer(help="Show the effective settings and where they come from.")
    app.add_typer(sub, name="config")

    @sub.command("show")
    def show() -> None:
        """Print every setting, its effective value and where it came from."""
        loaded = config.load()
        table = Table(title=f"settings ({config.config_file()})")
        table.add_column("setting")
        table.add_column("value")
        table.add_column("from", style="dim")
        for key, value, origin in loaded.rows():
            shown = "" if value is None else str(value)
            table.add_row(key, shown, origin)
        console.print(table)
        for e in remote_endpoints(loaded.settings):
            console.print(
                f"[yellow]privacy:[/yellow] {e.name} is remote ({e.url}); {e.sends} go there.",
                highlight=False,
            )

    @sub.command("path")
    def path() -> None:
        """Print where the settings file, the data folder and the cache are."""
        console.print(f"config file: {config.config_file()}")
        console.print(f"data dir:    {config.data_dir()}")
        console.print(f"cache dir:   {config.cache_dir()}  (rebuildable: the int8 model)")
