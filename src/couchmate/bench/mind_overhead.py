"""What our own code costs per moment: director + router + reflex, prompt building (with and
without keyframe images), and the sentence splitter — p50/p95 in microseconds.

Baselines run side by side in the same process: a bare `random.choice` + `str.format` for a
reflex line (the least any line bank could do) and a naive f-string prompt of the same raw
inputs (no sanitising, no bounds), so the ratio says what our rules and safety cost.
Images come from a real ViZDoom frame when the engine is installed (noise otherwise).
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from couchmate.bench.stats import percentiles, print_table, table
from couchmate.mind.director import Director
from couchmate.mind.mind import Mind
from couchmate.mind.moments import moment_from_event
from couchmate.mind.persona import load_persona
from couchmate.mind.prompt import Identity, PromptBuilder
from couchmate.mind.reflex import Reflex, slot_values
from couchmate.mind.router import BackendView, route
from couchmate.mind.splitter import SentenceSplitter
from couchmate.models.prompt import Turn, prepare
from couchmate.types import Event, FieldReading, GameState

KINDS = ("damage_taken", "kill", "pickup", "low_health", "death", "score_up")


def _us(fn: Callable[[int], Any], n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter_ns()
        fn(i)
        out.append((time.perf_counter_ns() - t0) / 1000.0)
    return out


def _doom_frames(n: int) -> tuple[list[np.ndarray], str]:
    try:
        import vizdoom as vzd
    except ImportError:
        rng = np.random.default_rng(0)
        return [rng.integers(0, 255, (480, 640, 3), np.uint8) for _ in range(n)], "noise"
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # ViZDoom writes _vizdoom.ini into the working directory
        try:
            game = vzd.DoomGame()
            game.load_config(os.path.join(vzd.scenarios_path, "basic.cfg"))
            game.set_window_visible(False)
            game.set_screen_format(vzd.ScreenFormat.RGB24)
            game.set_screen_resolution(vzd.ScreenResolution.RES_640X480)
            game.init()
            game.new_episode()
            frames = []
            for i in range(n):
                game.make_action([i % 2, (i + 1) % 2, 1])
                frames.append(game.get_state().screen_buffer.copy())
            game.close()
        finally:
            os.chdir(cwd)
    return frames, "vizdoom basic 640x480"


async def _model_path(persona: Any, n: int) -> dict[str, dict[str, float]]:
    """Question → first speakable piece through the Mind vs the bare client on the same
    real HTTP server (scripted, answering at once), alternating: the difference is ours
    (routing, prompt, splitter, queue)."""
    from couchmate.config import ModelRole
    from couchmate.models.backend import ChatBackend
    from couchmate.models.scripted_server import Answer, ScriptedServer

    # A different answer each time: the guard keeps the companion from saying a line twice,
    # so one scripted answer repeated would be dropped and asked for again, timing retries.
    rng = random.Random(7)
    words = [
        "strafe",
        "left",
        "right",
        "shoot",
        "dodge",
        "duck",
        "jump",
        "reload",
        "wait",
        "circle",
        "back",
        "around",
        "imp",
        "demon",
        "door",
        "hall",
        "stairs",
        "armor",
        "shells",
        "rockets",
        "cells",
        "medkit",
        "corner",
        "pillar",
        "crate",
        "ledge",
        "rush",
        "slowly",
        "quickly",
        "now",
        "later",
        "carefully",
        "loudly",
        "quietly",
        "first",
        "then",
        "again",
    ]
    answers = [Answer(" ".join(rng.sample(words, 7)).capitalize() + ".") for _ in range(2 * n + 10)]
    async with ScriptedServer(script=answers) as srv:
        fast = ChatBackend("fast", ModelRole(base_url=srv.base_url, model="s", max_tokens=40))
        mind = Mind(persona, backends={"fast": fast})
        via_mind, bare = [], []
        for i in range(n + 5):
            t0 = time.perf_counter_ns()
            gen = mind.on_player_message("what now?")
            await anext(gen)
            t1 = time.perf_counter_ns()
            async for _ in gen:
                pass
            while (ln := mind.next_line()) is not None:
                mind.line_done(ln)
            # The same prompt the Mind sent (its history included): only our code differs.
            prompt = mind.prompts.build(
                "Answer the player in character, briefly.",
                user_text="what now?",
                history=mind.conversation.window()[:-1],
            )
            t2 = time.perf_counter_ns()
            async with fast.stream(prompt, budget_s=5.0) as reply:
                s = SentenceSplitter()
                async for delta in reply:
                    if s.feed(delta):
                        break
            t3 = time.perf_counter_ns()
            if i >= 5:  # warm-up
                via_mind.append((t1 - t0) / 1000.0)
                bare.append((t3 - t2) / 1000.0)
        await fast.aclose()
    return {
        "question→first piece via Mind (HTTP)": percentiles(via_mind),
        "baseline: bare client→first piece (HTTP)": percentiles(bare),
    }


def run(n: int = 2000, n_images: int = 100, seed: int = 0) -> dict[str, Any]:
    persona = load_persona("sunny")
    rng = random.Random(seed)
    t = 1000.0
    state = GameState(
        "doom",
        t,
        {k: FieldReading(v, 0.95, t) for k, v in {"health": 45, "armor": 20, "ammo": 31}.items()},
    )
    events = [Event(rng.choice(KINDS), t + i * 0.7, rng.uniform(0.2, 1.0)) for i in range(n)]
    backends = {"fast": BackendView("fast", True, 0.35), "smart": BackendView("smart", True, 2.1)}
    results: dict[str, dict[str, float]] = {}

    # Router alone, director alone, reflex alone, and all of it through Mind.on_update.
    moments = [moment_from_event(e, state) for e in events]
    results["router.route"] = percentiles(_us(lambda i: route(moments[i], backends), n))
    clock = [t]
    d = Director(talkativeness=2, clock=lambda: clock[0])

    def direct(i: int) -> None:
        clock[0] = events[i].t
        d.observe(events[i])
        d.consider(moments[i])

    results["director.observe+consider"] = percentiles(_us(direct, n))
    reflex = Reflex(persona, seed=seed)
    results["reflex.line_for"] = percentiles(
        _us(lambda i: reflex.line_for(events[i].kind, state, "en", player="Alex"), n)
    )
    bank = [t.text for t in persona.bank("low_health", "en")]
    values = slot_values(state)
    results["baseline: choice+format"] = percentiles(
        _us(lambda i: rng.choice(bank).format_map(values), n)
    )

    mclock = [t]
    mind = Mind(persona, clock=lambda: mclock[0], talkativeness=3, seed=seed)

    def update(i: int) -> None:
        mclock[0] = events[i].t
        mind.on_update(state, [events[i]])
        line = mind.next_line()
        if line is not None:
            mind.line_done(line)

    results["mind.on_update (reflex, 1 event)"] = percentiles(_us(update, n))

    # Prompt building: a full context, without and with keyframe images.
    builder = PromptBuilder(persona, lang="en", user=Identity("u", "Alex"))
    history = [
        Turn("user" if i % 2 else "assistant", f"turn {i} about the blue key room")
        for i in range(12)
    ]
    recent = events[:16]
    memory = "Alex likes the super shotgun. Alex got stuck on E1M3 last week. " * 4
    screen = ["E1M2: NUCLEAR PLANT", "You need a blue key to open this door", "PRESS USE"]

    def build(i: int, images: list[np.ndarray] | None = None) -> Any:
        return builder.build(
            "The player just died.",
            user_text="why did I die?",
            state=state,
            events=recent,
            history=history,
            memory=memory,
            screen_text=screen,
            images=images or [],
            now=t + 12,
        )

    def naive(i: int) -> str:
        return (
            f"{persona.style}\n{state.values()}\n{[e.kind for e in recent]}\n"
            f"{[t.text for t in history]}\n{memory}\n{screen}\nThe player just died."
        )

    results["prompt (no images)"] = percentiles(_us(build, n))
    results["baseline: naive f-string prompt"] = percentiles(_us(naive, n))

    frames, frames_from = _doom_frames(8)

    async def with_images() -> list[float]:
        out = []
        for i in range(n_images):
            t0 = time.perf_counter_ns()
            prompt = build(i, frames)
            await prepare(prompt, max_images=4)
            out.append((time.perf_counter_ns() - t0) / 1000.0)
        return out

    async def text_only() -> list[float]:
        out = []
        for i in range(n_images):
            t0 = time.perf_counter_ns()
            await prepare(build(i), max_images=4)
            out.append((time.perf_counter_ns() - t0) / 1000.0)
        return out

    results["prompt+prepare (no images)"] = percentiles(asyncio.run(text_only()))
    results["prompt+prepare (4 of 8 keyframes)"] = percentiles(asyncio.run(with_images()))

    reply = "Oh no, that imp got you from behind. Next time, check the corners first! " * 2

    def split(i: int) -> None:
        s = SentenceSplitter()
        for ch in reply:
            s.feed(ch)
        s.flush()

    per_reply = _us(split, max(50, n // 10))
    results["splitter (per char)"] = percentiles([u / len(reply) for u in per_reply], digits=3)

    results.update(asyncio.run(_model_path(persona, max(20, n_images))))

    rows = [[k, v["p50"], v["p95"], v["max"], v["n"]] for k, v in results.items()]
    print_table(
        table("mind: our own cost per moment (µs)", ["step", "p50", "p95", "max", "n"], rows)
    )
    ratio = {
        "reflex_vs_baseline_p50": round(
            results["reflex.line_for"]["p50"]
            / max(1e-9, results["baseline: choice+format"]["p50"]),
            2,
        ),
        "prompt_vs_naive_p50": round(
            results["prompt (no images)"]["p50"]
            / max(1e-9, results["baseline: naive f-string prompt"]["p50"]),
            2,
        ),
    }
    via = results["question→first piece via Mind (HTTP)"]
    bare = results["baseline: bare client→first piece (HTTP)"]
    ratio["model_path_overhead_ms_p50"] = round((via["p50"] - bare["p50"]) / 1000.0, 3)
    ratio["model_path_overhead_ms_p95"] = round((via["p95"] - bare["p95"]) / 1000.0, 3)
    return {"unit": "us", "results": results, "ratios": ratio, "images_from": frames_from}
