"""Time to first audio for the offline voice (espeak-ng), per language.

For each short sentence, N runs of:
  * streamed: request → first PCM chunk out of the engine (what the speaker waits for),
  * audible: streamed plus the leading silence espeak puts before the first sound: when
    the listener hears something if playback starts with the first chunk,
  * whole: request → the complete sentence (the baseline: synthesize first, then play),
  * speaker: Speaker.start() → first sample handed to a muted sink (adds queueing).
Medians and p95s in milliseconds; `ratio` is whole / streamed (how much streaming saves).
"""

from __future__ import annotations

import asyncio
import time
from contextlib import aclosing
from typing import Any

import numpy as np
from rich.console import Console

from couchmate.bench.stats import percentiles, print_table, table
from couchmate.voice.base import TTSEngine, VoiceSpec, open_engine
from couchmate.voice.sinks import NullSink
from couchmate.voice.speaker import Speaker

SENTENCES = {
    "en": "Watch out, behind you!",
    "zh": "小心，后面有人！",
    "ja": "きをつけて、うしろ！",
}
_AUDIBLE = 300  # int16 amplitude: well above espeak's silence, well below speech


async def _one(engine: TTSEngine, text: str, voice: VoiceSpec) -> tuple[float, float, float]:
    """(first chunk, first audible sample as heard if playback starts at the first chunk,
    whole sentence), in ms after the request."""
    t0 = time.monotonic()
    first: float | None = None
    silent = 0  # samples before the first audible one
    rate = 1
    heard = False
    async with aclosing(engine.synthesize(text, voice)) as stream:
        async for chunk in stream:
            first = first or chunk.t_ready
            rate = chunk.sample_rate
            if not heard:
                loud = np.flatnonzero(np.abs(chunk.pcm.astype(np.int32)) > _AUDIBLE)
                heard = loud.size > 0
                silent += int(loud[0]) if heard else len(chunk.pcm)
    done = time.monotonic()
    first_ms = ((first or done) - t0) * 1000
    return first_ms, first_ms + silent / rate * 1000, (done - t0) * 1000


async def _speaker_ttfa(engine: TTSEngine, text: str, voice: VoiceSpec, runs: int) -> list[float]:
    out = []
    async with Speaker(engine, NullSink(realtime=False)) as speaker:
        for _ in range(runs):
            t0 = time.monotonic()
            utt = speaker.start(voice)
            utt.add(text)
            utt.close()
            t = await utt.first_audio()
            await utt.wait()
            if t is not None:
                out.append((t - t0) * 1000)
    return out


async def _run(engine_name: str, runs: int, langs: list[str]) -> dict[str, Any]:
    engine = open_engine(engine_name)
    results: dict[str, Any] = {}
    for lang in langs:
        voice = VoiceSpec.for_lang(lang)
        text = SENTENCES[lang]
        await _one(engine, text, voice)  # warm caches (and espeak's Mandarin probe)
        streamed, audible, whole = [], [], []
        for _ in range(runs):
            s, a, w = await _one(engine, text, voice)
            streamed.append(s)
            audible.append(a)
            whole.append(w)
        speaker = await _speaker_ttfa(engine, text, voice, runs)
        ps, pw = percentiles(streamed), percentiles(whole)
        results[lang] = {
            "text": text,
            "voice": voice.name,
            "streamed_ms": ps,
            "audible_ms": percentiles(audible),
            "whole_ms": pw,
            "speaker_ms": percentiles(speaker),
            "ratio_whole_over_streamed_p50": round(pw["p50"] / ps["p50"], 2) if ps["p50"] else None,
        }
    await engine.aclose()
    return results


def run(engine: str = "espeak-ng", runs: int = 20, langs: str = "en,zh,ja") -> dict[str, Any]:
    wanted = [x.strip() for x in langs.split(",") if x.strip() in SENTENCES]
    results = asyncio.run(_run(engine, runs, wanted))
    rows = []
    for lang, r in results.items():
        for kind in ("streamed", "audible", "whole", "speaker"):
            p = r[f"{kind}_ms"]
            rows.append((f"{lang} {kind}", p["p50"], p["p95"], p["max"], p["n"]))
    print_table(
        table(
            f"{engine}: time to first audio (ms); budget: reflex event→audio 300 ms",
            ["lang / measure", "p50", "p95", "max", "n"],
            rows,
        ),
        Console(),
    )
    return {"engine": engine, "runs": runs, "results": results}
