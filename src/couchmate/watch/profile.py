"""Game profiles: data files (TOML or YAML) that say how to read one game's HUD.

A profile names the game, how to recognise it (`[detect]`), where its HUD fields are
(`[fields.NAME]`, regions as fractions of the frame so any resolution of the same layout
works), how to read and parse each field, and the event rules over fields (`[rules.NAME]`).
Built-ins live in couchmate/watch/profiles/; a user adds or overrides one by dropping a file
into `config_dir()/profiles/`. `extends = "doom"` starts from another profile and merges
tables key by key, so a user can change one region or add one rule.

Every mistake in a file becomes a ProfileError naming the file and the line.
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from couchmate.config import config_dir
from couchmate.errors import ProfileError, UserError
from couchmate.watch.parsers import PARSERS
from couchmate.watch.profile_lines import line_of

log = logging.getLogger(__name__)

BUILTIN_DIR = Path(__file__).parent / "profiles"
SUFFIXES = (".toml", ".yaml", ".yml")
GENERIC = "generic"

Region = tuple[float, float, float, float]
RGB = tuple[int, int, int]
ReaderKind = Literal["ocr", "digits", "icons", "ocr_full"]
RuleKind = Literal["drop", "rise", "crosses_below", "crosses_above", "becomes", "change"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_region(r: Region) -> Region:
    x0, y0, x1, y1 = r
    if not (0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0):
        raise ValueError("a region is [x0, y0, x1, y1], fractions of the frame, x0<x1, y0<y1")
    return r


class ColorCheck(_Model):
    """A share of a region's pixels is near a colour (e.g. Pong's orange field)."""

    region: Region
    rgb: RGB
    tolerance: int = Field(40, ge=0, le=441)
    min_fraction: float = Field(0.5, gt=0, le=1)

    _region = field_validator("region")(_check_region)


class AnchorCheck(_Model):
    """OCR of a region finds one of these words (e.g. "HEALTH" under Doom's health)."""

    region: Region
    words: list[str] = Field(min_length=1)

    _region = field_validator("region")(_check_region)


class DetectSpec(_Model):
    # width / height of the frame, inclusive range
    aspect: tuple[float, float] | None = None
    colors: list[ColorCheck] = Field(default_factory=list)
    anchors: list[AnchorCheck] = Field(default_factory=list)
    # the share of checks that must pass; ties go to the profile with more checks
    min_score: float = Field(1.0, gt=0, le=1)


class FieldSpec(_Model):
    region: Region
    parser: str = "integer"
    reader: ReaderKind = "ocr"
    # digits: the template font (a key of couchmate/watch/digits.npz)
    font: str = ""
    # digits/icons: colours that count as foreground; empty: anything unlike the background.
    # ocr: the ink colours; a box OCR cannot parse and with less than `min_ink` of its
    # pixels in these colours is empty (not unreadable).
    fg: list[RGB] = Field(default_factory=list)
    fg_tolerance: int = Field(60, ge=0, le=441)
    min_ink: float = Field(0.01, ge=0, le=1)
    # ocr: widen a narrow box (with its own edge pixels) to this width/height first; the
    # recogniser misreads a lone glyph ("0" as "O") in a box not much wider than it
    pad_aspect: float = Field(0.0, ge=0, le=20)
    # icons: a blob counts when its area, as a share of the region's area, is in this range
    icon_area: tuple[float, float] = (0.01, 0.5)
    # added to a numeric reading (Ms. Pac-Man shows one icon fewer than the lives left)
    offset: int = 0
    min: float | None = None
    max: float | None = None
    # An empty box: "keep" = unreadable this time, keep the last value; "none" = a real
    # state meaning "nothing shown" (Doom's AMMO box for the fist), committed as None.
    empty: Literal["keep", "none"] = "keep"
    # or: an empty box reads as this value
    blank: Any = None
    # frames that must agree before a changed value is committed (1: trust every read)
    confirm: int = Field(2, ge=1, le=10)
    min_confidence: float = Field(0.5, ge=0, le=1)
    # do not re-read this field more often than this (full-frame OCR is slow)
    min_interval_s: float = Field(0.0, ge=0)
    # ocr: read boxes whose glyphs OCR has already taught from a glyph cache (~1 ms instead
    # of an OCR call; couchmate.watch.glyphs); false for text that is not drawn from a font
    glyph_cache: bool = True
    description: str = ""

    _region = field_validator("region")(_check_region)

    @field_validator("parser")
    @classmethod
    def _known_parser(cls, v: str) -> str:
        if v not in PARSERS:
            raise ValueError(f"unknown parser {v!r} (known: {', '.join(PARSERS)})")
        return v

    @model_validator(mode="after")
    def _font_for_digits(self) -> FieldSpec:
        if self.reader == "digits" and not self.font:
            raise ValueError("a digits field needs `font` (a template set in digits.npz)")
        return self


class Salience(_Model):
    """salience = clamp(base + scale × magnitude, 0, 1); magnitude is |change| by default."""

    base: float = Field(0.5, ge=0, le=1)
    scale: float = 0.0


class RuleSpec(_Model):
    event: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    field: str
    kind: RuleKind
    # drop / rise: the smallest change that counts
    min_delta: float = Field(1.0, ge=0)
    # crosses_below / crosses_above
    threshold: float | None = None
    # becomes
    value: Any = None
    # other (or the same) fields whose value must lie in [lo, hi] before AND after the
    # change, e.g. {health = [1, 999]} keeps a respawn (health 0 → 100) from being a pickup
    guard: dict[str, tuple[float, float]] = Field(default_factory=dict)
    # ... and held there for this long before the change: a respawn resets health and
    # ammo together, but a reader may see the boxes change a few frames apart
    guard_for_s: float = Field(0.0, ge=0)
    salience: Salience = Field(default_factory=Salience)
    cooldown_s: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _kind_needs(self) -> RuleSpec:
        if self.kind in ("crosses_below", "crosses_above") and self.threshold is None:
            raise ValueError(f"a {self.kind} rule needs `threshold`")
        if self.kind == "becomes" and self.value is None:
            raise ValueError("a becomes rule needs `value`")
        return self


class Adjust(_Model):
    """Regions move for one frame size: y' = y_anchor + (y - y_anchor) × y_scale (and x).

    Doom at 320x240 draws its status bar unscaled (32 of 240 rows) where larger 4:3 sizes
    stretch it to 16% of the height; one adjustment keeps one set of regions for all."""

    size: tuple[int, int]
    x_anchor: float = 0.0
    x_scale: float = Field(1.0, gt=0)
    y_anchor: float = 1.0
    y_scale: float = Field(1.0, gt=0)


class ProfileSpec(_Model):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    title: str = ""
    description: str = ""
    extends: str | None = None
    detect: DetectSpec | None = None
    fields: dict[str, FieldSpec] = Field(default_factory=dict)
    rules: dict[str, RuleSpec] = Field(default_factory=dict)
    # salience of the events the keyframe gate makes (scene_change, idle, ...)
    salience: dict[str, float] = Field(default_factory=dict)
    adjust: list[Adjust] = Field(default_factory=list)


@dataclass(frozen=True)
class Profile:
    """A validated profile. Cheap to keep; readers and engines hold one each."""

    spec: ProfileSpec
    path: Path | None = None
    builtin: bool = False

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def title(self) -> str:
        return self.spec.title or self.spec.name

    @property
    def fields(self) -> dict[str, FieldSpec]:
        return self.spec.fields

    @property
    def rules(self) -> dict[str, RuleSpec]:
        return self.spec.rules

    @property
    def detect(self) -> DetectSpec | None:
        return self.spec.detect

    def salience(self, kind: str, default: float = 0.3) -> float:
        return self.spec.salience.get(kind, default)

    def pixels(self, region: Region, width: int, height: int) -> tuple[int, int, int, int]:
        """A region of this profile in pixels for a frame of this size (after `adjust`)."""
        for a in self.spec.adjust:
            if a.size == (width, height):
                x0, y0, x1, y1 = region
                region = (
                    a.x_anchor + (x0 - a.x_anchor) * a.x_scale,
                    a.y_anchor + (y0 - a.y_anchor) * a.y_scale,
                    a.x_anchor + (x1 - a.x_anchor) * a.x_scale,
                    a.y_anchor + (y1 - a.y_anchor) * a.y_scale,
                )
                break
        return to_pixels(region, width, height)

    def box(self, field: str, width: int, height: int) -> tuple[int, int, int, int]:
        return self.pixels(self.fields[field].region, width, height)

    def regions(self, width: int, height: int) -> list[tuple[str, int, int, int, int]]:
        """Each field's box in pixels for a frame of this size: (name, x0, y0, x1, y1)."""
        return [(n, *self.box(n, width, height)) for n in self.fields]

    @cached_property
    def event_kinds(self) -> frozenset[str]:
        return frozenset(r.event for r in self.rules.values())


def to_pixels(region: Region, width: int, height: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = (min(1.0, max(0.0, v)) for v in region)
    px0, py0 = int(x0 * width), int(y0 * height)
    px1, py1 = max(px0 + 1, round(x1 * width)), max(py0 + 1, round(y1 * height))
    return px0, py0, min(px1, width), min(py1, height)


# ---------------------------------------------------------------- files → validated profiles


def _read_raw(path: Path) -> tuple[dict[str, Any], str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ProfileError(f"cannot read the profile: {e}", path=str(path)) from e
    try:
        raw = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except tomllib.TOMLDecodeError as e:
        line = getattr(e, "lineno", None) or _toml_error_line(str(e))
        msg = getattr(e, "msg", str(e))
        raise ProfileError(
            f"TOML syntax error: {msg}", path=str(path), line=line, hint="fix the syntax"
        ) from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(e, "problem", None) or str(e)
        raise ProfileError(
            f"YAML syntax error: {problem}", path=str(path), line=line, hint="fix the syntax"
        ) from e
    if not isinstance(raw, dict):
        raise ProfileError("a profile must be a table of keys", path=str(path), line=1)
    return raw, text


def _toml_error_line(message: str) -> int | None:
    import re

    m = re.search(r"line (\d+)", message)
    return int(m.group(1)) if m else None


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Tables merge key by key; anything else in `over` replaces what `base` had."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _validate(raw: dict[str, Any], path: Path, text: str, own: dict[str, Any]) -> ProfileSpec:
    try:
        spec = ProfileSpec.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        loc = tuple(err["loc"])
        where = ".".join(str(p) for p in loc) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"unknown key {loc[-1]!r}"
        elif err["type"] == "missing":
            msg = f"missing required key {loc[-1]!r}"
            loc = loc[:-1]
        raise ProfileError(
            f"{where}: {msg}",
            path=str(path),
            line=line_of(text, path.suffix, loc),
            hint=f"the built-in profiles in {BUILTIN_DIR} show the format",
        ) from e
    for rname, rule in spec.rules.items():
        for ref_key, ref in [("field", rule.field), *(("guard", g) for g in rule.guard)]:
            if ref not in spec.fields:
                raise ProfileError(
                    f"rules.{rname}.{ref_key}: no field named {ref!r} "
                    f"(fields: {', '.join(spec.fields) or 'none'})",
                    path=str(path),
                    line=line_of(text, path.suffix, ("rules", rname, ref_key)),
                )
    return spec


def load_file(path: Path, *, _seen: tuple[str, ...] = ()) -> Profile:
    """Load and validate one profile file (following `extends`)."""
    path = Path(path)
    own, text = _read_raw(path)
    own.setdefault("name", path.stem)
    raw = own
    parent = own.get("extends")
    if parent is not None:
        seen = (*_seen, str(path.resolve()))
        # extending one's own name means "the built-in of that name, changed by this file"
        base_path = _builtin_paths().get(parent) if parent == own["name"] else _find(parent)
        if not isinstance(parent, str) or base_path is None or str(base_path.resolve()) in seen:
            raise ProfileError(
                f"extends {parent!r}: no such profile, or profiles that extend each other",
                path=str(path),
                line=line_of(text, path.suffix, ("extends",)),
                hint=f"known: {', '.join(profile_names())}",
            )
        base = load_file(base_path, _seen=seen)
        base_raw = base.spec.model_dump(mode="python", exclude_none=True)
        base_raw.pop("extends", None)
        raw = _merge(base_raw, own)
    spec = _validate(raw, path, text, own)
    return Profile(spec=spec, path=path, builtin=_is_builtin(path))


def _is_builtin(path: Path) -> bool:
    try:
        return path.resolve().parent == BUILTIN_DIR.resolve()
    except OSError:
        return False


def user_dir() -> Path:
    return config_dir() / "profiles"


def _scan(folder: Path) -> dict[str, Path]:
    """name → file for every profile file in `folder` (name: the `name` key, else the stem)."""
    out: dict[str, Path] = {}
    if not folder.is_dir():
        return out
    for p in sorted(folder.iterdir()):
        if p.suffix not in SUFFIXES or not p.is_file():
            continue
        out[_declared_name(p)] = p
    return out


_names: dict[tuple[str, float], str] = {}


def _declared_name(path: Path) -> str:
    key = (str(path), path.stat().st_mtime)
    if key in _names:
        return _names[key]
    try:
        raw, _ = _read_raw(path)
    except ProfileError:
        return path.stem  # loading it later reports the error with its line
    name = raw.get("name")
    _names[key] = name if isinstance(name, str) and name else path.stem
    return _names[key]


def _builtin_paths() -> dict[str, Path]:
    return _scan(BUILTIN_DIR)


def _all_paths() -> dict[str, Path]:
    """Built-ins, then the user's files: a user profile with a built-in's name replaces it."""
    return {**_builtin_paths(), **_scan(user_dir())}


def _find(name: str) -> Path | None:
    return _all_paths().get(name)


def profile_names() -> list[str]:
    return sorted(_all_paths())


_cache: dict[tuple[str, float], Profile] = {}


def load_profile(name_or_path: str | Path) -> Profile:
    """A profile by name (user profiles first, then built-ins) or by file path."""
    s = str(name_or_path)
    p = Path(s).expanduser()
    if p.suffix in SUFFIXES or p.is_file():
        if not p.is_file():
            raise UserError(f"no profile file at {p}", hint="check the path")
        path = p
    else:
        found = _find(s)
        if found is None:
            raise UserError(
                f"unknown game profile {s!r}",
                hint=f"known: {', '.join(profile_names())}; or drop a .toml into {user_dir()}",
            )
        path = found
    key = (str(path.resolve()), path.stat().st_mtime)
    prof = _cache.get(key)
    if prof is None:
        prof = _cache[key] = load_file(path)
    return prof


def list_profiles() -> list[Profile]:
    """Every loadable profile, by name. A broken user file is logged and left out."""
    out = []
    for name in profile_names():
        try:
            out.append(load_profile(name))
        except UserError as e:
            log.warning("skipping profile %s: %s", name, e)
    return out
