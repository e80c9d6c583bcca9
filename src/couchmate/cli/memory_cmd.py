"""`couchmate memory search|list|show|add|forget|topics|consolidate|export|import`.

Every command works on one user (settings' user.id unless --user). `--store` and `--url`
before the command override memory.store and memory.url for this call:

    couchmate memory --store postgres --url postgresql://me@db/couchmate search "boss"

search and list print one row per memory: its id, kind, time (and how many times a
repeated moment happened), topics, then its text on the next line, at most
texts.SHOWN_CHARS of it with a marker saying how long the rest is, so a table stays
readable at 80 columns and a huge memory or query never floods the terminal.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import typer
from rich.table import Table
from rich.text import Text

from couchmate.cli.common import console, err_console
from couchmate.errors import UserError

if TYPE_CHECKING:
    from couchmate.config import Settings
    from couchmate.memory.service import MemoryService
    from couchmate.types import Memory

_opts: dict[str, Any] = {"store": None, "url": None}


def _kinds() -> tuple[str, ...]:
    # Imported here, not at the top: couchmate.types pulls in numpy, which the other
    # commands' start-up does without.
    from couchmate.types import MemoryKind

    return get_args(MemoryKind)


def _settings() -> Settings:
    from couchmate import config

    settings = config.load().settings
    update = {k: v for k, v in _opts.items() if v}
    if update:
        settings = settings.model_copy(update={"memory": settings.memory.model_copy(update=update)})
    return settings


@contextmanager
def _service(user: str | None = None) -> Iterator[tuple[MemoryService, Settings, str]]:
    """The memory service, the settings, and the user the command is about (--user, else
    the settings' user.id)."""
    from couchmate.memory.service import MemoryService

    settings = _settings()
    svc = MemoryService.from_settings(settings.memory)
    try:
        yield svc, settings, user or settings.user.id
    finally:
        svc.close()


def _kind(kind: str | None) -> Any:
    if kind is not None and kind not in _kinds():
        raise UserError(f"unknown memory kind {kind!r}", hint=f"use {', '.join(_kinds())}")
    return kind


def _when(m: Memory) -> str:
    from couchmate.memory.texts import repeats

    n = repeats(m)
    if n > 1:
        return f"×{n}, last {time.strftime('%Y-%m-%d %H:%M', time.localtime(m.t))}"
    return time.strftime("%Y-%m-%d", time.localtime(m.t))


TITLE_CHARS = 60  # of a search's query in its table's title


def _table(title: str, memories: list[Memory], scores: list[float] | None = None) -> Table:
    """One row per memory: a dim line of id, kind, time and topics, then the text."""
    from couchmate.memory.texts import clip, shown

    table = Table(title=clip(title, TITLE_CHARS), show_lines=True)
    if scores is not None:
        table.add_column("score", justify="right", no_wrap=True)
    table.add_column("memory (id  kind  when  topics, then the text)", overflow="fold")
    for i, m in enumerate(memories):
        meta = "  ".join(x for x in (m.id, m.kind, _when(m), ", ".join(m.topics)) if x)
        cell = Text.assemble((meta, "dim"), "\n", shown(m))
        table.add_row(*([f"{scores[i]:.4f}"] if scores is not None else []), cell)
    return table


def register(app: typer.Typer) -> None:
    sub = typer.Typer(help="Look at, add to and move what couchmate remembers.")
    app.add_typer(sub, name="memory")

    @sub.callback()
    def _memory(
        store: str = typer.Option(None, "--store", help="embedded or postgres (memory.store)."),
        url: str = typer.Option(None, "--url", help="PostgreSQL URL (memory.url)."),
    ) -> None:
        _opts.update(store=store, url=url)

    user_opt = typer.Option(None, "--user", "-u", help="Whose memories (default: user.id).")

    @sub.command("search")
    def search(
        query: str = typer.Argument(..., help="What to look for."),
        user: str = user_opt,
        k: int = typer.Option(10, "--k", "-k", min=1, help="How many results."),
        topic: list[str] = typer.Option(None, "--topic", "-t", help="What the scene is about."),
        kind: str = typer.Option(None, "--kind", help="episode, fact or progress."),
    ) -> None:
        """Hybrid search (vectors + words + topics), best first."""
        with _service(user) as (svc, settings, uid):
            kinds = [_kind(kind)] if kind else None
            hits = svc.recall(uid, query, topics=topic or [], kinds=kinds, k=k)
            if not hits:
                console.print(f"nothing found for {uid!r}")
                return
            console.print(
                _table(f"{uid}: {query}", [h.memory for h in hits], [h.score for h in hits])
            )

    @sub.command("list")
    def list_(
        user: str = user_opt,
        kind: str = typer.Option(None, "--kind", help="episode, fact or progress."),
        topic: str = typer.Option(None, "--topic", "-t", help="Only this topic."),
        limit: int = typer.Option(50, "--limit", "-n", min=1),
        offset: int = typer.Option(0, "--offset", min=0),
    ) -> None:
        """The newest memories first."""
        from couchmate.memory.topics import normalize

        with _service(user) as (svc, settings, uid):
            mems = svc.store.list(
                uid,
                kind=_kind(kind),
                topic=normalize(topic) if topic else None,
                limit=limit,
                offset=offset,
            )
            total = svc.store.count(uid)
            console.print(_table(f"{uid}: {len(mems)} of {total} memories", mems))

    @sub.command("show")
    def show(
        memory_id: str = typer.Argument(..., help="A memory id (from list or search)."),
        user: str = user_opt,
    ) -> None:
        """One memory's whole text (all of it where `add --full` kept it) on stdout; its
        id, kind, time and topics on stderr."""
        from couchmate.memory.texts import FULL_TEXT_KEY

        with _service(user) as (svc, settings, uid):
            found = svc.store.get(uid, [memory_id])
            if not found:
                raise UserError(
                    f"{uid} has no memory {memory_id!r}",
                    hint="`couchmate memory list` shows the ids",
                )
            m = found[0]
            full = m.data.get(FULL_TEXT_KEY)
            err_console.print(
                f"{m.id}  {m.kind}  {_when(m)}  {', '.join(m.topics)}", style="dim", markup=False
            )
            print(full if isinstance(full, str) else m.text)

    @sub.command("add")
    def add(
        text: str = typer.Argument(..., help="What to remember ('-' reads it from stdin)."),
        user: str = user_opt,
        kind: str = typer.Option("fact", "--kind", help="fact, episode or progress."),
        topic: list[str] = typer.Option(None, "--topic", "-t", help="Topics to file it under."),
        importance: float = typer.Option(0.7, "--importance", min=0.0, max=1.0),
        full: bool = typer.Option(
            False,
            "--full",
            help="Keep all of a text longer than a memory holds (search uses its start; "
            "`memory show ID` prints it whole).",
        ),
    ) -> None:
        """Remember something by hand."""
        import sys

        from couchmate.memory.texts import MAX_TEXT_CHARS

        if text == "-":
            text = sys.stdin.read()
        with _service(user) as (svc, settings, uid):
            mid = svc.note(
                uid,
                text,
                kind=_kind(kind),
                topics=topic or [],
                importance=importance,
                provenance={"source": "cli"},
                keep_full=full,
            )
            console.print(f"remembered {mid} for {uid}")
            if len(text) > MAX_TEXT_CHARS:
                err_console.print(
                    f"the text has {len(text):,} characters; search and recall use "
                    f"the first {MAX_TEXT_CHARS:,}"
                    + (" (all of it is kept)" if full else " (--full keeps all of it)")
                )

    @sub.command("forget")
    def forget(
        ids: list[str] = typer.Argument(None, help="Memory ids (from list or search)."),
        user: str = user_opt,
        topic: str = typer.Option(None, "--topic", "-t", help="Everything under this topic."),
        all_: bool = typer.Option(False, "--all", help="Everything this user has."),
        yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    ) -> None:
        """Delete memories: by id, by topic, or all of a user's."""
        chosen = sum(bool(x) for x in (ids, topic, all_))
        if chosen != 1:
            raise UserError(
                "say what to forget: memory ids, --topic T or --all (one of them)",
                hint="`couchmate memory list` shows the ids",
            )
        with _service(user) as (svc, settings, uid):
            if ids:
                n = svc.forget(uid, ids)
                console.print(f"forgot {n} of {len(ids)} memories of {uid}")
                return
            what = f"everything under {topic!r}" if topic else "ALL memories"
            if not yes:
                typer.confirm(f"forget {what} of {uid}?", abort=True)
            n = svc.forget_topic(uid, topic) if topic else _forget_all(svc, uid)
            console.print(f"forgot {n} memories of {uid}")

    @sub.command("topics")
    def topics(user: str = user_opt) -> None:
        """What a user's memories are about, and how many each."""
        with _service(user) as (svc, settings, uid):
            table = Table(title=f"{uid}: topics")
            table.add_column("topic")
            table.add_column("memories", justify="right")
            for name, n in svc.topics(uid).items():
                table.add_row(name, str(n))
            console.print(table)

    @sub.command("consolidate")
    def consolidate_(
        user: str = user_opt,
        dry_run: bool = typer.Option(False, "--dry-run", help="Show, do not merge."),
        episodes: bool = typer.Option(False, "--episodes", help="Also merge episodes."),
    ) -> None:
        """Merge near-duplicate facts and progress (the newest survives)."""
        from couchmate.memory.consolidate import consolidate

        kinds = _kinds() if episodes else tuple(k for k in _kinds() if k != "episode")
        with _service(user) as (svc, settings, uid):
            report = consolidate(svc.store, svc.embedder.embed, uid, kinds=kinds, dry_run=dry_run)
            for m in report.merges:
                console.print(f"{'would merge' if dry_run else 'merged'} {m.merged} → {m.kept}")
            console.print(
                f"{report.examined} memories examined, {report.removed} "
                f"{'would be ' if dry_run else ''}merged away"
            )

    @sub.command("export")
    def export(
        path: Path = typer.Argument(..., help="The file to write (a .zip)."),
        user: str = user_opt,
        vectors: bool = typer.Option(True, "--vectors/--no-vectors", help="Include embeddings."),
    ) -> None:
        """Write one user's memories and settings to one portable file."""
        from couchmate.memory.portable import export_account

        with _service(user) as (svc, settings, uid):
            try:
                s = export_account(
                    svc.store,
                    uid,
                    path,
                    embed_model=svc.embedder.name,
                    dim=svc.embedder.dim,
                    settings=settings,
                    include_vectors=vectors,
                )
            except OSError as e:
                raise UserError(f"cannot write {path}: {e.strerror or e}") from e
            console.print(
                f"exported {s.memories} memories of {uid} to {s.path} ({s.bytes} bytes"
                f"{', with vectors' if s.vectors else ''})"
            )

    @sub.command("import")
    def import_(
        path: Path = typer.Argument(..., help="A file written by `couchmate memory export`."),
        as_user: str = typer.Option(None, "--as-user", help="Import under this user id."),
        apply: bool = typer.Option(
            False,
            "--settings",
            help="Also take over the exported persona, memory and user name/language "
            "settings (never user.id: who this device's user is stays as it is).",
        ),
    ) -> None:
        """Add an exported account to this device (importing twice changes nothing).

        Only memories are imported unless --settings says otherwise, and the local user
        never changes: memories imported --as-user ALEX are read with --user ALEX.
        """
        from couchmate import config
        from couchmate.memory.portable import apply_settings, import_account, read_account

        account = read_account(path)  # all validation before anything is written
        with _service() as (svc, settings, local_user):
            s = import_account(
                svc.store,
                account,
                embed=svc.embedder.embed,
                embed_model=svc.embedder.name,
                dim=svc.embedder.dim,
                as_user=as_user,
            )
        console.print(
            f"imported {s.imported} memories as {s.user_id} ({s.skipped} already here"
            f"{', re-embedded' if s.reembedded else ''})"
        )
        if apply:
            written = apply_settings(account.settings, config.config_file())
            err_console.print(f"settings updated: {', '.join(written) if written else 'none'}")
        if s.user_id != local_user:
            err_console.print(
                f"this device's user is still {local_user!r}: "
                f"`couchmate memory list --user {s.user_id}` shows the imported memories"
            )


def _forget_all(svc: MemoryService, user_id: str) -> int:
    total = 0
    while True:
        batch = svc.store.list(user_id, limit=1000)
        if not batch:
            return total
        total += svc.forget(user_id, [m.id for m in batch])
