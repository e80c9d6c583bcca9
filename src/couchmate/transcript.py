"""What a session said, written as it is said: transcript.jsonl and subtitles.srt.

One JSON line per utterance that was heard (fully or until cut), with the path and reason
that produced it, the event it answered and its timings in milliseconds after the event:

    {"t": 12.41, "text": "Ouch!", "path": "reflex", "reason": "...", "event": "damage_taken",
     "timings": {"captured": -41.2, "read": -3.1, "evented": 0.0, "decided": 0.02,
                 "first_token": 0.03, "first_audio": 18.7}, "cut": false,
     "audio": "audio/0001-ouch.wav"}

`t` is seconds from the session start to the line's first audio; `audio` is the line's WAV
relative to the session folder (`../…` when the WAVs were written elsewhere), or null.
Subtitles cover each line from its first audio to its end (or its cut).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from couchmate.types import Line


@dataclass(slots=True)
class Utterance:
    """One heard line and when it was heard (monotonic seconds)."""

    line: Line
    start: float
    end: float
    cut: bool = False
    audio: str | None = None


def _srt_time(seconds: float) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def record_of(u: Utterance, t0: float) -> dict[str, Any]:
    line = u.line
    event = line.event
    origin = "evented" if "evented" in line.timing.marks else "decided"
    return {
        "t": round(u.start - t0, 3),
        "end": round(u.end - t0, 3),
        "text": line.text,
        "lang": line.lang,
        "persona": line.persona,
        "path": line.path,
        "reason": line.reason,
        "event": event.kind if event is not None else None,
        "salience": round(event.salience, 3) if event is not None else None,
        "timings": line.timing.as_ms(origin),
        "cut": u.cut,
        "audio": u.audio,
    }


class TranscriptWriter:
    """Appends utterances to transcript.jsonl and rewrites subtitles.srt as it goes,
    so a session killed midway still leaves a readable transcript."""

    def __init__(self, folder: Path | str, t0: float):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.t0 = t0
        self.jsonl = self.folder / "transcript.jsonl"
        self.srt = self.folder / "subtitles.srt"
        self.jsonl.write_text("", encoding="utf-8")
        self.srt.write_text("", encoding="utf-8")
        self.utterances: list[Utterance] = []
        self._lock = threading.Lock()

    def add(self, u: Utterance) -> dict[str, Any]:
        rec = record_of(u, self.t0)
        with self._lock:
            self.utterances.append(u)
            with self.jsonl.open("a", encoding="utf-8") as f:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            with self.srt.open("a", encoding="utf-8") as f:
                n = len(self.utterances)
                end = max(u.end, u.start + 0.3)
                f.write(
                    f"{n}\n{_srt_time(u.start - self.t0)} --> {_srt_time(end - self.t0)}\n"
                    f"{u.line.text}\n\n"
                )
        return rec
