"""`couchmate watch` (a live view of what the companion sees) and `couchmate replay DIR`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from couchmate.cli.common import console, err_console

if TYPE_CHECKING:
    from rich.console import RenderableType

    from couchmate.config import WatchSettings
    from couchmate.watch.pipeline import WatchPipeline, WatchStats, WatchUpdate


def register(app: typer.Typer) -> None:
    @app.command("watch")
    def watch(
        source: str = typer.Option(
            "doom",
            "--source",
            "-s",
            help="doom[:SCENARIO], atari:GAME, video:PATH, dir:PATH or screen.",
        ),
        profile: str = typer.Option(
            None, "--profile", "-p", help="A profile name or file (default: auto-detect)."
        ),
        record: Path = typer.Option(None, "--record", help="Write a session folder here."),
        seconds: float = typer.Option(
            None, "--seconds", help="Stop after this many seconds of frames."
        ),
        realtime: bool = typer.Option(
            None, "--realtime/--fast", help="Pace engines and videos in real time, or run flat out."
        ),
        monitor: int = typer.Option(None, "--monitor", help="Screen: which monitor (1 = first)."),
        region: str = typer.Option(
            None, "--region", help="Screen: capture only x,y,w,h (pixels of the monitor)."
        ),
    ) -> None:
        """Watch a source and show what couchmate reads: fps, keyframes, state, events."""
        from couchmate import config
        from couchmate.sources.base import source_options

        settings = config.load().settings.watch
        options = source_options(
            source,
            {"max_pixels": settings.max_pixels},
            realtime=realtime,
            monitor=monitor,
            region=region,
        )
        asyncio.run(_watch(source, options, profile, record, seconds, settings))

    @app.command("replay")
    def replay(
        folder: Path = typer.Argument(..., help="A folder written by `watch --record`."),
        fast: bool = typer.Option(False, "--fast", help="As fast as the reader goes."),
    ) -> None:
        """Play a recorded session back through the same pipeline and compare the events."""
        asyncio.run(_replay(folder, fast))


async def _watch(
    spec: str,
    options: dict[str, Any],
    profile: str | None,
    record: Path | None,
    seconds: float | None,
    settings: WatchSettings,
) -> None:
    from couchmate.sources.base import open_source
    from couchmate.watch.pipeline import WatchPipeline
    from couchmate.watch.record import SessionRecorder

    source = open_source(spec, **options)  # before the folder: a bad source records nothing
    recorder = None
    if record is not None:
        try:
            recorder = SessionRecorder(
                record,
                source=spec,
                profile=profile or "",
                max_image_mb=settings.record_images_mb,
            )
        except BaseException:
            source.close()
            raise
    pipeline = WatchPipeline(source, profile or settings.profile, settings)
    try:
        await _run_view(pipeline, source.name, seconds, recorder)
    finally:
        if recorder is not None:
            await recorder.close(pipeline.stats())
            c = recorder.counts
            if recorder.discarded:
                err_console.print(f"[yellow]nothing recorded to {recorder.folder}[/yellow]")
            else:
                err_console.print(
                    f"[dim]recorded {c['states']} states, {c['events']} events and "
                    f"{c['keyframes']} keyframes to {recorder.folder}[/dim]"
                )


async def _replay(folder: Path, fast: bool) -> None:
    from couchmate import config
    from couchmate.watch.pipeline import WatchPipeline
    from couchmate.watch.record import Recording, ReplaySource

    recording = Recording(folder)
    recorded = [(e.kind, e.frame_index) for e in recording.event_records()]
    source = ReplaySource(recording, fast=fast)
    settings = config.load().settings.watch
    pipeline = WatchPipeline(
        source, recording.meta.profile or "auto", settings, keep_all=True, lossless=fast
    )
    replayed: list[tuple[str, int]] = []

    def collect(u: WatchUpdate) -> None:
        replayed.extend((e.kind, e.frame_index) for e in u.events)

    await _run_view(pipeline, source.name, None, None, collect)
    same = sum(1 for e in replayed if e in set(recorded))
    console.print(
        f"replayed {len(replayed)} events, recorded {len(recorded)}, {same} the same "
        f"(kind and frame); skipped {sum(recording.skipped.values())} damaged lines, "
        f"{source.skipped_images} unreadable keyframes"
    )


async def _run_view(
    pipeline: WatchPipeline,
    title: str,
    seconds: float | None,
    recorder: Any,
    also: Callable[[WatchUpdate], None] | None = None,
) -> None:
    from rich.live import Live

    live_ok = console.is_terminal
    last_draw = 0.0

    def on_update(u: WatchUpdate) -> None:
        nonlocal last_draw
        if recorder is not None:
            recorder.write(u)
        if also is not None:
            also(u)
        if live_ok:
            t = time.monotonic()
            if t - last_draw >= 0.25:
                last_draw = t
                live.update(_view(pipeline, title))
        else:
            for ev in u.events:
                console.print(f"event {ev.kind} {_short(ev.data)}", highlight=False)

    if live_ok:
        with Live(_view(pipeline, title), console=console, refresh_per_second=4) as live:
            try:
                await pipeline.run(on_update, seconds=seconds)
            finally:
                live.update(_view(pipeline, title))
    else:
        live = None
        try:
            await pipeline.run(on_update, seconds=seconds)
        finally:
            _summary(pipeline, title)


def _short(data: dict[str, Any], limit: int = 60) -> str:
    text = ", ".join(f"{k}={v}" for k, v in data.items())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _stats_line(s: WatchStats) -> str:
    lat = s.latency_ms.get("capture_to_state", {})
    dropped = ", ".join(f"{k} {v}" for k, v in s.dropped.items())
    return (
        f"capture {s.capture_fps:.1f} fps | keyframes {s.keyframes_per_s:.1f}/s "
        f"({s.keyframes}/{s.captured}) | states {s.states} | events {s.events} | "
        f"dropped {s.dropped_total} ({dropped}) | reader errors {s.reader_errors} | "
        f"capture→state p50 {lat.get('p50', 0):.0f} ms p95 {lat.get('p95', 0):.0f} ms"
    )


def _view(pipeline: WatchPipeline, title: str) -> RenderableType:
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table

    s = pipeline.stats()
    head = f"[bold]{title}[/bold]  profile [cyan]{s.profile or '…'}[/cyan]"
    if s.frame_age_s > 2.0 and s.captured:
        head += f"  [yellow]no frame for {s.frame_age_s:.0f} s[/yellow]"
    state = Table(title="state", expand=False)
    state.add_column("field")
    state.add_column("value", justify="right")
    state.add_column("confidence", justify="right")
    st = pipeline.last_state
    if st is not None:
        for name, f in st.fields.items():
            state.add_row(name, str(f.value), f"{f.confidence:.2f}")
    events = Table(title="last events", expand=False)
    events.add_column("frame", justify="right")
    events.add_column("kind")
    events.add_column("salience", justify="right")
    events.add_column("data")
    for ev in pipeline.last_events[-8:]:
        events.add_row(str(ev.frame_index), ev.kind, f"{ev.salience:.2f}", _short(ev.data))
    return Panel(Group(head, _stats_line(s), state, events), title="couchmate watch", expand=False)


def _summary(pipeline: WatchPipeline, title: str) -> None:
    s = pipeline.stats()
    console.print(f"{title} (profile {s.profile or 'none'})", highlight=False)
    console.print(_stats_line(s), highlight=False)
    st = pipeline.last_state
    if st is not None:
        values = ", ".join(f"{k}={f.value} ({f.confidence:.2f})" for k, f in st.fields.items())
        console.print(f"state: {values or '(no fields read)'}", highlight=False)
    else:
        console.print("state: (nothing read yet)")
