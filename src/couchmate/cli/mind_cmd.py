"""`couchmate persona list|check|say`: the companion's personas and their reflex lines."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from couchmate.cli.common import console


def register(app: typer.Typer) -> None:
    sub = typer.Typer(help="Personas: list them, check a pack file, hear their lines.")
    app.add_typer(sub, name="persona")

    @sub.command("list")
    def list_() -> None:
        """Every persona (yours in the config folder first), its languages and voices."""
        from couchmate.mind.persona import PersonaBook

        book = PersonaBook()
        table = Table(title=f"personas (yours: {book.user_dir})")
        for col in ("name", "display", "languages", "voices", "file"):
            table.add_column(col)
        for name in book.names():
            p = book.get(name)
            voices = ", ".join(f"{lg}:{p.voice(lg).espeak_name}" for lg in p.languages)
            table.add_row(name, p.display_name, " ".join(p.languages), voices, p.source)
        console.print(table)

    @sub.command("check")
    def check(path: Path = typer.Argument(..., help="A persona pack (.yaml) to validate.")) -> None:
        """Validate a pack file; errors name the file and line."""
        from couchmate.errors import UserError
        from couchmate.mind.persona import LINE_KINDS, PersonaBook

        if not path.is_file():
            raise UserError(f"no such file: {path}", hint="give the path of a .yaml pack")
        p = PersonaBook().load_file(path)
        n = sum(len(p.bank(k, lg)) for lg in p.languages for k in LINE_KINDS)
        console.print(f"[green]ok[/green] {p.name} ({p.display_name}): {n} lines in {p.languages}")

    @sub.command("say")
    def say(
        name: str = typer.Argument("sunny", help="Persona name."),
        kind: str = typer.Argument("death", help="Line kind, e.g. death, kill, low_health."),
        lang: str = typer.Option("en", help="Language: en, zh, ja."),
        n: int = typer.Option(5, "--n", "-n", help="How many lines."),
        health: int = typer.Option(None, help="Fill {health} with this."),
        seed: int = typer.Option(0, help="Seed for the choice."),
    ) -> None:
        """Print reflex lines the persona would say (no line twice in a row)."""
        from couchmate.errors import UserError
        from couchmate.mind.persona import LINE_KINDS, load_persona
        from couchmate.mind.reflex import Reflex

        if kind not in LINE_KINDS:
            raise UserError(f"unknown line kind {kind!r}", hint=f"kinds: {', '.join(LINE_KINDS)}")
        persona = load_persona(name)
        if lang not in persona.languages:
            raise UserError(
                f"{persona.name} has no lines in {lang!r}",
                hint=f"its languages: {', '.join(persona.languages)}",
            )
        reflex = Reflex(persona, seed=seed)
        values = {} if health is None else {"health": str(health)}
        for _ in range(max(1, n)):
            console.print(reflex.pick(kind, lang, values), highlight=False)
