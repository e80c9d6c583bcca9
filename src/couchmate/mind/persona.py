"""Persona packs: who the companion is, how it sounds, and its reflex lines. Data, not code.

A pack is a YAML file (see personas/sunny.yaml):

    name: sunny                      # lowercase id; a user file must be named <name>.yaml
    display_name: Sunny
    extends: ""                      # optional: start from another persona, override parts
    style: "You are Sunny, ..."      # a paragraph for the system prompt
    languages: [en, zh, ja]
    voice:   {en: {espeak: en-us, variant: f3, wpm: 175, pitch: 62}, ...}
    lines:   {en: {death: ["Oh no!", ...], low_health: ["{health}% left!", ...], ...}, ...}

A line that presupposes something ("That last fight was wild.") says so, and is only said
when it holds (see AFTER):

    lull: ["How are you liking it so far?", {text: "That last fight was wild.", after: [fight]}]

Every language needs a voice and a bank for every kind in LINE_KINDS; every bank needs one
line without slots or `after`, so a line can always be said. Slots are `{name}` from SLOTS;
`{{`/`}}` are literal braces. Built-in packs are registered in PERSONAS ("couchmate.personas" entry
points for plugins: a Path, a path string or a Persona); packs in config_dir()/personas/
override or extend them by name. A broken pack is a PersonaError naming file and line.
"""

from __future__ import annotations

import logging
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from couchmate.config import config_dir
from couchmate.errors import PersonaError
from couchmate.registry import Registry
from couchmate.types import EVENT_KINDS

log = logging.getLogger(__name__)

BUILTIN_DIR = Path(__file__).with_name("personas")

#: Banks every language must have: one per event kind, plus lines the mind says on its own.
EXTRA_KINDS = ("greeting", "lull", "thinking", "fallback_answer", "noted", "remembered")
LINE_KINDS: tuple[str, ...] = (
    *(k for k in EVENT_KINDS if k != "player_message"),
    *EXTRA_KINDS,
)
#: Slots a line may use; each is filled from the game state or the settings.
SLOTS = frozenset(
    {"health", "armor", "ammo", "score", "lives", "frags", "game", "player", "memory"}
)

#: What a line may presuppose (`after:` in a pack); the director says which hold right now.
AFTER: dict[str, str] = {
    "play": "the player has been playing: some action was seen this session",
    "fight": "a fight was seen a short while ago (a kill, damage taken, a death)",
}

_LANG_ALIASES = {"cmn": "zh", "jp": "ja", "jpn": "ja", "zho": "zh", "chi": "zh", "eng": "en"}
_MAX_EXTENDS = 4


def normalize_lang(code: str) -> str:
    """'zh-CN', 'zh_Hans', 'cmn' → 'zh'; 'en-US' → 'en'; '' stays ''."""
    head = code.strip().lower().replace("_", "-").split("-", 1)[0]
    return _LANG_ALIASES.get(head, head)


# --- the file format (pydantic, extra="forbid") ------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VoiceSpec(_Strict):
    """How a language sounds: an espeak-ng voice (and variant), speed and pitch."""

    espeak: str = Field(min_length=1)
    variant: str = ""
    wpm: int = Field(170, ge=80, le=450)
    pitch: int = Field(50, ge=0, le=99)


class TaggedLine(_Strict):
    """A bank line that presupposes something: said only when every `after` tag holds."""

    text: str
    after: list[str] = Field(default_factory=list)


class PersonaPack(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")
    display_name: str = ""
    extends: str = ""
    style: str = Field(min_length=1)
    languages: list[str] = Field(min_length=1)
    voice: dict[str, VoiceSpec]
    lines: dict[str, dict[str, list[str | TaggedLine]]]


# --- the runtime form (plain frozen dataclasses) -----------------------------------------


@dataclass(frozen=True, slots=True)
class LineTemplate:
    """One bank line, parsed once: which slots it needs and how to fill them."""

    text: str
    slots: frozenset[str]
    plain: bool  # no braces at all: the text is the line
    #: what the line presupposes (AFTER tags); empty: it fits any time
    after: frozenset[str] = frozenset()

    def render(self, values: Mapping[str, str]) -> str:
        return self.text if self.plain else self.text.format_map(values)


@dataclass(frozen=True, slots=True)
class Voice:
    espeak: str
    variant: str
    wpm: int
    pitch: int

    @property
    def espeak_name(self) -> str:
        """The `-v` argument for espeak-ng: voice, plus +variant when there is one."""
        return f"{self.espeak}+{self.variant}" if self.variant else self.espeak


@dataclass(frozen=True, slots=True)
class Persona:
    name: str
    display_name: str
    style: str
    languages: tuple[str, ...]
    voices: Mapping[str, Voice]
    banks: Mapping[str, Mapping[str, tuple[LineTemplate, ...]]]
    source: str = ""

    def lang(self, wanted: str) -> str:
        """The persona's language closest to `wanted` (its first language otherwise)."""
        code = normalize_lang(wanted)
        return code if code in self.banks else self.languages[0]

    def bank(self, kind: str, lang: str) -> tuple[LineTemplate, ...]:
        return self.banks[self.lang(lang)].get(kind, ())

    def voice(self, lang: str) -> Voice:
        return self.voices[self.lang(lang)]


# --- loading -------------------------------------------------------------------------------


def _line_map(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = k.value
            out[(*path, key, "<key>")] = k.start_mark.line + 1
            _line_map(v, (*path, key), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_map(item, (*path, i), out)


@dataclass(slots=True)
class _Raw:
    """A parsed file: its data and the line of every node, for error messages."""

    path: str
    data: dict[str, Any]
    lines: dict[tuple[Any, ...], int]

    def line_of(self, loc: tuple[Any, ...]) -> int | None:
        for n in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:n]))
            if line is not None:
                return line
        return None

    def error(self, loc: tuple[Any, ...], message: str, hint: str | None = None) -> PersonaError:
        line = self.line_of(loc)
        where = f"{self.path}:{line}" if line else self.path
        return PersonaError(f"{where}: {message}", hint=hint or _HINT)


_HINT = "see couchmate/mind/personas/sunny.yaml for a complete, valid pack"


def _read_raw(path: Path) -> _Raw:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise PersonaError(f"{path}: cannot read persona pack: {e}", hint=_HINT) from e
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise PersonaError(
            f"{where}: YAML error: {e.problem or e}",
            hint="quote lines that start with { or contain ': ' (\"{health}% left!\")",
        ) from e
    except yaml.YAMLError as e:
        raise PersonaError(f"{path}: YAML error: {e}", hint=_HINT) from e
    if not isinstance(data, dict):
        raise PersonaError(f"{path}: a persona pack is a YAML mapping", hint=_HINT)
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        _line_map(node, (), lines)
    return _Raw(str(path), data, lines)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` replaces `base` field by field; voices per language; lines per language+kind."""
    out = {k: v for k, v in base.items() if k != "extends"}
    for key, value in over.items():
        if key == "voice" and isinstance(value, dict) and isinstance(out.get("voice"), dict):
            out["voice"] = {**out["voice"], **value}
        elif key == "lines" and isinstance(value, dict) and isinstance(out.get("lines"), dict):
            merged = {lang: dict(kinds) for lang, kinds in out["lines"].items()}
            for lang, kinds in value.items():
                if isinstance(kinds, dict) and isinstance(merged.get(lang), dict):
                    merged[lang] = {**merged[lang], **kinds}
                else:
                    merged[lang] = kinds
            out["lines"] = merged
        else:
            out[key] = value
    if "languages" not in over and isinstance(over.get("lines"), dict):
        langs = list(out.get("languages") or [])
        out["languages"] = langs + [lg for lg in over["lines"] if lg not in langs]
    return out


_FORMATTER = string.Formatter()
# libyaml's safe loader when present: a pack loads several times faster.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _compile_line(raw: _Raw, loc: tuple[Any, ...], item: str | TaggedLine) -> LineTemplate:
    text, after = (item, []) if isinstance(item, str) else (item.text, item.after)
    for tag in after:
        if tag not in AFTER:
            raise raw.error(
                (*loc, "after"),
                f"unknown after tag {tag!r} for {text!r}",
                hint=f"after tags: {', '.join(AFTER)}",
            )
    if not text.strip():
        raise raw.error(loc, "empty line")
    slots: set[str] = set()
    try:
        parsed = list(_FORMATTER.parse(text))
    except ValueError as e:
        raise raw.error(
            loc, f"bad braces in {text!r}: {e}", hint="slots look like {health}; {{ is a brace"
        ) from e
    for _lit, name, spec, conv in parsed:
        if name is None:
            continue
        if name not in SLOTS or spec or conv:
            raise raw.error(
                loc,
                f"unknown slot {{{name}}} in {text!r}",
                hint=f"slots: {', '.join(sorted(SLOTS))} (no format specs)",
            )
        slots.add(name)
    plain = "{" not in text and "}" not in text
    return LineTemplate(text, frozenset(slots), plain, frozenset(after))


def _build(raw: _Raw, data: dict[str, Any]) -> Persona:
    try:
        pack = PersonaPack.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        loc = tuple(first["loc"])
        field = ".".join(str(p) for p in loc)
        raise raw.error(loc, f"{field}: {first['msg']}") from e
    languages = tuple(dict.fromkeys(normalize_lang(x) for x in pack.languages))
    voices: dict[str, Voice] = {}
    banks: dict[str, dict[str, tuple[LineTemplate, ...]]] = {}
    for lang_key in pack.lines:
        if normalize_lang(lang_key) not in languages:
            raise raw.error(
                ("lines", lang_key, "<key>"),
                f"lines for {lang_key!r}, which is not in languages {list(languages)}",
            )
    for lang in languages:
        vkey = next((k for k in pack.voice if normalize_lang(k) == lang), None)
        if vkey is None:
            raise raw.error(("voice",), f"no voice for language {lang!r}")
        v = pack.voice[vkey]
        voices[lang] = Voice(v.espeak, v.variant, v.wpm, v.pitch)
        lkey = next((k for k in pack.lines if normalize_lang(k) == lang), None)
        if lkey is None:
            raise raw.error(("lines",), f"no lines for language {lang!r}")
        kinds = pack.lines[lkey]
        for kind in kinds:
            if kind not in LINE_KINDS:
                raise raw.error(
                    ("lines", lkey, kind, "<key>"),
                    f"unknown line kind {kind!r}",
                    hint=f"kinds: {', '.join(LINE_KINDS)}",
                )
        bank: dict[str, tuple[LineTemplate, ...]] = {}
        for kind in LINE_KINDS:
            texts = kinds.get(kind)
            if not texts:
                raise raw.error(("lines", lkey), f"language {lang!r} has no {kind!r} lines")
            templates = tuple(
                _compile_line(raw, ("lines", lkey, kind, i), t) for i, t in enumerate(texts)
            )
            if all(t.slots or t.after for t in templates):
                raise raw.error(
                    ("lines", lkey, kind),
                    f"every {lang}/{kind} line needs a slot or an after tag; add a plain one",
                    hint="a line without slots or tags is what is said when nothing is known",
                )
            bank[kind] = templates
        banks[lang] = bank
    return Persona(
        name=pack.name,
        display_name=pack.display_name or pack.name.capitalize(),
        style=pack.style.strip(),
        languages=languages,
        voices=voices,
        banks=banks,
        source=raw.path,
    )


#: name → a pack file (Path or path string) or a ready Persona. Plugins: "couchmate.personas".
PERSONAS: Registry[Any] = Registry("persona", "couchmate.personas")
for _p in sorted(BUILTIN_DIR.glob("*.yaml")):
    PERSONAS.register(_p.stem, _p)


class PersonaBook:
    """Finds personas by name: the user's packs first, then built-ins and plugins.

    Loaded personas are cached; `reload()` forgets them (after the user edits a pack).
    """

    def __init__(self, user_dir: Path | None = None, registry: Registry[Any] = PERSONAS):
        self.user_dir = Path(user_dir) if user_dir is not None else config_dir() / "personas"
        self.registry = registry
        self._cache: dict[str, Persona] = {}

    def names(self) -> list[str]:
        user = {p.stem for p in self._user_files()}
        return sorted(user | set(self.registry.names()))

    def get(self, name: str) -> Persona:
        cached = self._cache.get(name)
        if cached is None:
            cached = self._cache[name] = self._load(name)
        return cached

    def load_file(self, path: Path) -> Persona:
        """Load one pack file (its `extends` is looked up in this book)."""
        raw = _read_raw(Path(path))
        return _build(raw, self._resolved(raw, str(raw.data.get("name", "")), False, 0))

    def reload(self) -> None:
        self._cache.clear()

    def _user_files(self) -> list[Path]:
        if not self.user_dir.is_dir():
            return []
        return sorted(p for p in self.user_dir.iterdir() if p.suffix in (".yaml", ".yml"))

    def _user_file(self, name: str) -> Path | None:
        for suffix in (".yaml", ".yml"):
            p = self.user_dir / f"{name}{suffix}"
            if p.is_file():
                return p
        return None

    def _find(self, name: str, *, skip_user: bool) -> tuple[_Raw | Persona, bool]:
        """The pack called `name` and whether it is the user's."""
        user = None if skip_user else self._user_file(name)
        if user is not None:
            raw = _read_raw(user)
            declared = raw.data.get("name")
            if declared != name:
                raise raw.error(
                    ("name",),
                    f"file {user.name} declares name {declared!r}",
                    hint=f"a user pack is found by its file name: call it {declared}.yaml",
                )
            return raw, True
        target = self.registry.get(name)  # UserError listing the known personas
        if isinstance(target, Persona):
            return target, False
        return _read_raw(Path(target)), False

    def _load(self, name: str) -> Persona:
        found, is_user = self._find(name, skip_user=False)
        if isinstance(found, Persona):
            return found
        return _build(found, self._resolved(found, name, is_user, 0))

    def _resolved(self, raw: _Raw, name: str, is_user: bool, depth: int) -> dict[str, Any]:
        """The pack's data with everything it extends merged underneath."""
        base = raw.data.get("extends") or ""
        if not base:
            return raw.data
        if not isinstance(base, str):
            raise raw.error(("extends",), "extends must be a persona name")
        if depth >= _MAX_EXTENDS:
            raise raw.error(("extends",), f"extends {base!r} goes too deep (a cycle?)")
        # A user pack may extend the built-in of its own name ("my sunny").
        skip_user = is_user and base == name
        found, base_is_user = self._find(base, skip_user=skip_user)
        if isinstance(found, Persona):
            raise raw.error(("extends",), f"{base!r} is defined in code; it cannot be extended")
        return _merge(self._resolved(found, base, base_is_user, depth + 1), raw.data)


_default_book: PersonaBook | None = None


def load_persona(name: str, book: PersonaBook | None = None) -> Persona:
    """The persona called `name` (user packs in config_dir()/personas/ win)."""
    global _default_book
    if book is None:
        if _default_book is None or _default_book.user_dir != config_dir() / "personas":
            _default_book = PersonaBook()
        book = _default_book
    return book.get(name)
