"""LoCoMo as a memory benchmark: each conversation is one user's memory.

Every turn becomes an episode memory (its text with the speaker's name, a shared photo's
caption as "[shares a photo: …]", the session's date as its time, provenance session /
turn / dia_id). Every question of categories 1–4 is asked with the question as the query;
recall@k is the share of its evidence turns among the k memories returned, averaged over
questions. Evidence ids that do not exist in the conversation are dropped (the data has a
few malformed ones); a question left with none is skipped. Summaries and observations in
the file are never read: they would leak the answers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from couchmate.errors import UserError

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
_SESSION = re.compile(r"^session_(\d+)$")


@dataclass(slots=True)
class Turn:
    dia_id: str
    session: int
    index: int  # position within its session
    speaker: str
    text: str
    caption: str
    date: str
    t: float

    @property
    def memory_text(self) -> str:
        s = f"{self.speaker}: {self.text}"
        if self.caption:
            s += f" [shares a photo: {self.caption}]"
        return s


@dataclass(slots=True)
class Question:
    qid: str
    text: str
    category: int
    evidence: list[int]  # indexes into Conversation.turns


@dataclass(slots=True)
class Conversation:
    sample_id: str
    speakers: tuple[str, str]
    turns: list[Turn] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)
    skipped_questions: int = 0


def parse_date(s: str) -> float:
    """'1:56 pm on 8 May, 2023' → epoch seconds (UTC); 0 when the date is missing/odd."""
    for fmt in ("%I:%M %p on %d %B, %Y", "%I:%M %p on %d %b, %Y"):
        try:
            return datetime.strptime(s.strip(), fmt).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    return 0.0


def load(path: Path, *, conversations: int | None = None) -> list[Conversation]:
    """Read a LoCoMo JSON file (a list of conversations with `conversation` and `qa`)."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(
            f"no LoCoMo file at {path}", hint="pass --locomo ../shared/data/locomo/locomo-dev.json"
        ) from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read LoCoMo file {path}: {e}", hint="is it the JSON file?") from e
    if not isinstance(raw, list) or not raw or not isinstance(raw[0], dict):
        raise UserError(
            f"{path} is not a LoCoMo file (expected a list of conversations)",
            hint="use locomo10.json or its dev split",
        )
    out = []
    for i, item in enumerate(raw[:conversations] if conversations else raw):
        try:
            out.append(_conversation(item, i))
        except (KeyError, TypeError, AttributeError) as e:
            raise UserError(
                f"{path}: conversation {i} is malformed ({type(e).__name__}: {e})",
                hint="each item needs `conversation` (speaker_a, session_N…) and `qa`",
            ) from e
    return out


def _conversation(item: dict, position: int) -> Conversation:
    conv = item["conversation"]
    c = Conversation(
        sample_id=str(item.get("sample_id") or f"conv-{position}"),
        speakers=(conv.get("speaker_a", ""), conv.get("speaker_b", "")),
    )
    sessions = sorted(int(m.group(1)) for k in conv if (m := _SESSION.match(k)))
    for n in sessions:
        date = conv.get(f"session_{n}_date_time", "")
        t0 = parse_date(date)
        for j, turn in enumerate(conv[f"session_{n}"]):
            c.turns.append(
                Turn(
                    dia_id=turn["dia_id"],
                    session=n,
                    index=j,
                    speaker=turn["speaker"],
                    text=turn["text"],
                    caption=turn.get("blip_caption") or "",
                    date=date,
                    t=t0 + j,  # turns of a session keep their order in time
                )
            )
    position_of = {t.dia_id: i for i, t in enumerate(c.turns)}
    for qi, qa in enumerate(item["qa"]):
        cat = int(qa.get("category", 0))
        if cat not in CATEGORIES:
            continue
        evidence = [position_of[e] for e in qa.get("evidence", []) if e in position_of]
        if not evidence:
            c.skipped_questions += 1
            continue
        c.questions.append(
            Question(
                qid=f"locomo_{position}_qa{qi}",  # the errata file's ids
                text=str(qa["question"]),
                category=cat,
                evidence=list(dict.fromkeys(evidence)),
            )
        )
    return c
