"""`couchmate play` (the whole companion on any source) and `couchmate demo` (zero config)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections import deque
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from couchmate.cli.common import console, err_console, remote_endpoints
from couchmate.cli.stdin import stdin_lines

DEMO_SECONDS = 60.0


def register(app: typer.Typer) -> None:
    @app.command("play")
    def play(
        source: str = typer.Option(
            "screen", "--source", "-s", help="screen, doom[:SCENARIO], atari:GAME, video:PATH…"
        ),
        profile: str = typer.Option(None, "--profile", "-p", help="Profile name or file."),
        seconds: float = typer.Option(None, "--seconds", help="Stop after this many seconds."),
        out: Path = typer.Option(None, "--out", help="Write the session folder here."),
        audio_out: Path = typer.Option(None, "--audio-out", help="Also write WAVs here."),
        mute: bool = typer.Option(None, "--mute/--speak", help="No sound (timings kept)."),
        talkativeness: int = typer.Option(None, min=0, max=3, help="0 silent … 3 chatty."),
        memory: bool = typer.Option(True, "--memory/--no-memory", help="Long-term memory."),
        monitor: int = typer.Option(None, "--monitor", help="Screen: which monitor."),
        region: str = typer.Option(None, "--region", help="Screen: capture only x,y,w,h."),
    ) -> None:
        """The whole companion: watch, talk, listen. Type a message and press Enter to talk."""
        options = {"monitor": monitor, "region": region}
        asyncio.run(
            _play(
                source,
                options,
                profile=profile,
                seconds=seconds,
                folder=out,
                audio_out=audio_out,
                mute=mute,
                talkativeness=talkativeness,
                use_memory=memory,
                listen=True,
            )
        )

    @app.command("demo")
    def demo(
        seconds: float = typer.Option(DEMO_SECONDS, "--seconds", help="How long to play."),
        out: Path = typer.Option(None, "--out", help="Session folder (default: out/demo-TIME)."),
        mute: bool = typer.Option(
            None, "--mute/--speak", help="No sound (WAVs are still written); default: voice.mute."
        ),
        source: str = typer.Option("doom", "--source", "-s", help="What the companion watches."),
        talkativeness: int = typer.Option(None, min=0, max=3, help="0 silent … 3 chatty."),
    ) -> None:
        """Zero config: the Doom bot plays and the companion comments in its voice.

        Stops by itself after --seconds and leaves transcript.jsonl, subtitles.srt and
        WAVs in a session folder."""
        folder = out or Path("out") / time.strftime("demo-%Y%m%d-%H%M%S")
        asyncio.run(
            _play(
                source,
                {},
                profile=None,
                seconds=seconds,
                folder=folder,
                audio_out=None,
                mute=mute,
                talkativeness=talkativeness,
                use_memory=False,
                listen=False,
            )
        )


async def _play(
    spec: str,
    options: dict[str, Any],
    *,
    profile: str | None,
    seconds: float | None,
    folder: Path | None,
    audio_out: Path | None,
    mute: bool | None,
    talkativeness: int | None,
    use_memory: bool,
    listen: bool,
) -> None:
    from couchmate import config
    from couchmate.models.backends import Backends
    from couchmate.session import Session
    from couchmate.sources.base import open_source_checked

    settings = config.load().settings
    if talkativeness is not None:
        settings.persona.talkativeness = talkativeness
    _privacy_notice(settings, memory=use_memory)
    source = open_source_checked(spec, {"max_pixels": settings.watch.max_pixels}, **options)
    backends = Backends.from_settings(settings)
    # Before the session starts: its warm-up would make a single-slot server look slow.
    await _probe_models(backends)
    memory = await _memory_slot(settings, backends) if use_memory else None
    session = Session(
        settings,
        source,
        profile=profile,
        folder=folder,
        audio_out=audio_out,
        mute=mute,
        backends=backends,
        memory=memory,
    )
    view = _TranscriptView(session, backends)
    unsubscribe = backends.subscribe(view.backend_event)
    listener = None
    try:
        async with session:
            if listen:
                listener = asyncio.get_running_loop().create_task(_listen(session, view))
            with view.live(), _stop_on_interrupt(session):
                report = await session.run(seconds, on_update=view.update, on_line=view.line)
    finally:
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        unsubscribe()
        await backends.aclose()
    _print_report(report)
    if report.error:
        raise typer.Exit(2)  # the exit code `watch` gives a source that dies


@contextlib.contextmanager
def _stop_on_interrupt(session: Any):  # type: ignore[no-untyped-def]
    """The first Ctrl-C ends the session as `--seconds` would (report, transcript and the
    session memory written); a second one interrupts at once."""
    loop = asyncio.get_running_loop()

    def first() -> None:
        err_console.print("[dim]stopping… (Ctrl-C again to quit at once)[/dim]")
        loop.remove_signal_handler(signal.SIGINT)  # back to KeyboardInterrupt
        session.stop()

    try:
        loop.add_signal_handler(signal.SIGINT, first)
    except (NotImplementedError, RuntimeError):  # Windows' loops: Ctrl-C interrupts at once
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)


async def _probe_models(backends: Any) -> None:
    """Say at once whether each configured model answers, has the model, takes images."""
    if not backends.all():
        return
    err_console.print("[dim]checking the models…[/dim]")
    for r in await backends.probe():
        style = "dim" if r.usable and not r.images_off else "yellow"
        err_console.print(f"[{style}]model {escape(r.line)}[/{style}]", highlight=False)
        if r.hint and not r.usable:
            err_console.print(f"[yellow]hint:[/yellow] {escape(r.hint)}", highlight=False)


class _TranscriptView:
    """A live panel: what the companion sees (state, events), how its models are doing and
    what it said."""

    def __init__(self, session: Any, backends: Any = None):
        self.session = session
        self.backends = backends
        self.lines: deque[str] = deque(maxlen=12)
        self.events: deque[str] = deque(maxlen=6)
        self._live: Any = None
        self._drawn = 0.0

    @contextlib.contextmanager
    def live(self):  # type: ignore[no-untyped-def]
        from rich.live import Live

        if not console.is_terminal:
            yield
            return
        with Live(self.render(), console=console, refresh_per_second=4) as live:
            self._live = live
            try:
                yield
            finally:
                live.update(self.render())
                self._live = None

    def update(self, u: Any) -> None:
        for e in u.events:
            self.events.append(f"{e.kind} ({e.salience:.2f})")
        self._redraw()

    def line(self, u: Any) -> None:
        t = u.start - self.session.t0
        kind = u.line.event.kind if u.line.event is not None else "-"
        text = f"{t:6.1f}s [{u.line.path}] ({kind}) {u.line.text}"
        if self._live is None:
            console.print(text, highlight=False, markup=False)
        self.lines.append(escape(text))
        self._redraw(force=True)

    def backend_event(self, event: Any) -> None:
        """A model started failing (one warning, with its hint) or answers again."""
        style = "yellow" if event.warning else "green"
        err_console.print(f"[{style}]model {escape(event.line)}[/{style}]", highlight=False)
        self._redraw(force=True)

    def said(self, who: str, text: str) -> None:
        self.lines.append(escape(f"{time.monotonic() - self.session.t0:6.1f}s {who}: {text}"))
        self._redraw(force=True)

    def _redraw(self, force: bool = False) -> None:
        if self._live is None:
            return
        t = time.monotonic()
        if force or t - self._drawn > 0.25:
            self._drawn = t
            self._live.update(self.render())

    def render(self) -> Any:
        from rich.console import Group
        from rich.panel import Panel

        s = self.session.pipeline.stats()
        st = self.session.pipeline.last_state
        values = ", ".join(f"{k}={f.value}" for k, f in st.fields.items()) if st else "…"
        head = (
            f"[bold]{self.session.source.name}[/bold] profile [cyan]{s.profile or '…'}[/cyan] "
            f"| {s.capture_fps:.0f} fps, {s.keyframes_per_s:.1f} keyframes/s, "
            f"dropped {s.dropped_total}"
        )
        body = "\n".join(self.lines) or "[dim](nothing said yet)[/dim]"
        models = self.backends.status_lines() if self.backends is not None else []
        rows = [head, f"state: {values}", f"events: {' · '.join(self.events)}"]
        rows += [f"[dim]model[/dim] {escape(m)}" for m in models]
        return Panel(
            Group(*rows, "", body),
            title="couchmate",
            subtitle="type a message + Enter to talk · Ctrl-C to stop",
        )


async def _listen(session: Any, view: _TranscriptView) -> None:
    """Answer the player's typed lines as they come; returns when stdin closes."""
    async for text in stdin_lines():
        text = text.strip()
        if text:
            view.said("you", text)
            session.ask(text)


async def _memory_slot(settings: Any, backends: Any) -> Any:
    """The long-term memory from settings (loaded off the event loop: the embedding model
    takes a moment). If it cannot open, the companion goes on without it and says so."""
    from couchmate.errors import CouchmateError
    from couchmate.memory.slot import build_slot

    err_console.print("[dim]opening long-term memory…[/dim]")
    try:
        return await asyncio.to_thread(build_slot, settings, model=backends.smart or backends.fast)
    except CouchmateError as e:
        err_console.print(f"[yellow]memory is off for this session:[/yellow] {e.message}")
        if e.hint:
            err_console.print(f"[yellow]hint:[/yellow] {e.hint}")
        return None


def _privacy_notice(settings: Any, *, memory: bool) -> None:
    remote = remote_endpoints(settings, memory=memory)
    if remote:
        err_console.print(
            "[yellow]privacy:[/yellow] data leaves this machine: "
            + "; ".join(f"{e.sends} → {e.name} ({e.url})" for e in remote),
            highlight=False,
        )
    else:
        err_console.print("[dim]privacy: everything stays on this machine[/dim]")


def _print_report(report: Any) -> None:
    from rich.table import Table

    from couchmate.bench.stats import percentiles

    table = Table(title=f"session: {report.seconds:.0f} s")
    table.add_column("path")
    table.add_column("lines", justify="right")
    table.add_column("event→first audio p50", justify="right")
    table.add_column("p95", justify="right")
    lat = report.latency_ms()
    paths: dict[str, int] = {}
    for u in report.lines():
        paths[u.line.path] = paths.get(u.line.path, 0) + 1
    for path, n in sorted(paths.items()):
        p = percentiles(lat.get(path, []))
        table.add_row(path, str(n), f"{p['p50']:.0f} ms", f"{p['p95']:.0f} ms")
    console.print(table)
    unprompted = len(report.unprompted)
    per = report.seconds / unprompted if unprompted else float("inf")
    seen = ", ".join(f"{k} {n}" for k, n in report.events.most_common())
    said = ", ".join(f"{k} {n}" for k, n in report.reactions().most_common())
    console.print(f"events seen: {seen or 'none'}", highlight=False)
    console.print(f"reactions:   {said or 'none'}", highlight=False)
    console.print(
        f"unprompted lines: {unprompted} (one per {per:.1f} s); "
        f"stale dropped: {report.mind.get('director', {}).get('dropped_stale', 0)}",
        highlight=False,
    )
    if report.error:
        err_console.print(f"[yellow]watching stopped early:[/yellow] {report.error}")
    if report.folder is not None:
        console.print(f"session folder: {report.folder}", highlight=False)
