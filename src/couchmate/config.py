"""Settings: defaults, then the user's TOML file, then COUCHMATE_* environment variables.

The file lives in the user's config dir (`couchmate config path`) or wherever
COUCHMATE_CONFIG points. An environment variable names a setting by its dotted path with
`__` between levels: COUCHMATE_PERSONA__TALKATIVENESS=3, COUCHMATE_MODELS__FAST__MODEL=...
`couchmate config show` prints each effective value and where it came from.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from couchmate.errors import ConfigError
from couchmate.models.presets import PRESETS, is_local_url

APP = "couchmate"
ENV_PREFIX = "COUCHMATE_"


def config_dir() -> Path:
    return Path(os.environ.get("COUCHMATE_CONFIG_DIR") or platformdirs.user_config_dir(APP))


def data_dir() -> Path:
    return Path(os.environ.get("COUCHMATE_DATA_DIR") or platformdirs.user_data_dir(APP))


def cache_dir() -> Path:
    """Rebuildable files (the int8 embedding model); safe to delete."""
    return Path(os.environ.get("COUCHMATE_CACHE_DIR") or platformdirs.user_cache_dir(APP))


def config_file() -> Path:
    return Path(os.environ.get("COUCHMATE_CONFIG") or config_dir() / "config.toml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class UserSettings(_Section):
    id: str = "local"
    name: str = ""
    language: str = "en"


class WatchSettings(_Section):
    profile: str = "auto"
    # Frames above this many pixels are downscaled before anything else touches them.
    max_pixels: int = Field(3840 * 2160, ge=64 * 64)
    clip_seconds: float = Field(8.0, gt=0)
    # Read a frame at least this often even when nothing seems to change.
    keyframe_max_interval_s: float = Field(1.0, gt=0)
    queue_size: int = Field(2, ge=1)
    # A session folder keeps at most this many MB of keyframe images (play writes JPEG,
    # `watch --record` PNG); past it, states and events are still written. 0: no images.
    record_images_mb: float = Field(200.0, ge=0)
    # Keyframes waiting for the reader; the newest wins. One keeps the state fresh: a
    # keyframe never waits behind more than the read in progress.
    reader_queue_size: int = Field(1, ge=1)


class ModelRole(_Section):
    """One model role (fast or smart). Empty base_url and no preset: the role is off."""

    preset: str = ""
    base_url: str = ""
    model: str = ""
    api_key_env: str = ""
    max_images: int = Field(4, ge=0)
    timeout_s: float = Field(10.0, gt=0)
    max_tokens: int = Field(120, gt=0)

    def resolved(self) -> ModelRole:
        """This role with its preset's defaults filled in."""
        if not self.preset:
            return self
        if self.preset not in PRESETS:
            raise ConfigError(
                f"unknown model preset {self.preset!r}", hint=f"known: {', '.join(PRESETS)}"
            )
        p = PRESETS[self.preset]
        return self.model_copy(
            update={
                "base_url": self.base_url or p.base_url,
                "api_key_env": self.api_key_env or p.api_key_env,
                "model": self.model or p.example_model,
            }
        )

    @property
    def enabled(self) -> bool:
        r = self.resolved()
        return bool(r.base_url and r.model)

    @property
    def remote(self) -> bool:
        r = self.resolved()
        return bool(r.base_url) and not is_local_url(r.base_url)


class ModelSettings(_Section):
    fast: ModelRole = Field(default_factory=ModelRole)
    smart: ModelRole = Field(default_factory=ModelRole)


class PersonaSettings(_Section):
    name: str = "sunny"
    language: str = ""  # empty: the user's language
    talkativeness: int = Field(2, ge=0, le=3)
    do_not_disturb: bool = False
    spoilers: bool = False


class VoiceSettings(_Section):
    engine: str = "espeak-ng"
    piper_model: str = ""
    mute: bool = False


class MemorySettings(_Section):
    store: str = "embedded"
    path: str = ""  # embedded store folder; empty: the user's data dir
    url: str = ""  # postgresql://... for the postgres store
    embedder: str = "local"  # local (int8), local-exact, openai, or a plugin's name
    embed_base_url: str = ""
    embed_model: str = ""
    embed_api_key_env: str = ""
    # 0 keeps memories forever; otherwise episodes expire after this many days.
    retention_days: float = Field(0, ge=0)
    token_budget: int = Field(600, gt=0)
    # Fact extraction: "rules" (offline), "model" (the smart role, else fast; rules when the
    # reply is unusable) or "auto" (a configured model if there is one, else rules).
    extractor: Literal["auto", "rules", "model"] = "auto"


class MindSettings(_Section):
    # How long a player's question waits for the model's first words (seconds) before a
    # reflex answer; a short acknowledgement plays first when the answer will not be quick.
    # The default suits a small model on a laptop CPU; a GPU server answers well inside it.
    answer_patience_s: float = Field(8.0, gt=0, le=60)


class Settings(_Section):
    user: UserSettings = Field(default_factory=UserSettings)
    watch: WatchSettings = Field(default_factory=WatchSettings)
    models: ModelSettings = Field(default_factory=ModelSettings)
    persona: PersonaSettings = Field(default_factory=PersonaSettings)
    voice: VoiceSettings = Field(default_factory=VoiceSettings)
    memory: MemorySettings = Field(default_factory=MemorySettings)
    mind: MindSettings = Field(default_factory=MindSettings)


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _set_path(d: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for p in parts[:-1]:
        d = d.setdefault(p, {})
    d[parts[-1]] = value


def _env_overrides(environ: dict[str, str]) -> dict[str, str]:
    known = set(_flatten(Settings().model_dump()))
    out: dict[str, str] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name in _NOT_SETTINGS:
            continue
        dotted = name[len(ENV_PREFIX) :].lower().replace("__", ".")
        if dotted not in known:
            raise ConfigError(
                f"unknown setting in environment variable {name}",
                hint="use COUCHMATE_<SECTION>__<KEY>, e.g. COUCHMATE_PERSONA__TALKATIVENESS=3",
            )
        out[dotted] = value
    return out


_NOT_SETTINGS = {
    "COUCHMATE_CONFIG",
    "COUCHMATE_CONFIG_DIR",
    "COUCHMATE_DATA_DIR",
    "COUCHMATE_CACHE_DIR",
}


class LoadedSettings:
    """Settings plus where each value came from: default, the file, or an env var."""

    def __init__(self, settings: Settings, origins: dict[str, str]):
        self.settings = settings
        self.origins = origins

    def rows(self) -> list[tuple[str, Any, str]]:
        flat = _flatten(self.settings.model_dump())
        return [(k, v, self.origins.get(k, "default")) for k, v in flat.items()]


def load(path: Path | None = None, environ: dict[str, str] | None = None) -> LoadedSettings:
    environ = dict(os.environ) if environ is None else environ
    named = environ.get("COUCHMATE_CONFIG")
    if path is None and named and not Path(named).is_file():
        raise ConfigError(
            f"COUCHMATE_CONFIG names {named}, which is not a file",
            hint="fix the path, create the file, or unset COUCHMATE_CONFIG to use "
            f"{config_dir() / 'config.toml'}",
        )
    path = path or (Path(named) if named else config_file())
    raw: dict[str, Any] = {}
    origins: dict[str, str] = {}
    if path.exists():
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: {e}", hint="fix the TOML syntax or delete the file") from e
        for k in _flatten(raw):
            origins[k] = str(path)
    for dotted, value in _env_overrides(environ).items():
        _set_path(raw, dotted, value)
        origins[dotted] = ENV_PREFIX + dotted.upper().replace(".", "__")
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        src = origins.get(where, str(path))
        raise ConfigError(
            f"invalid setting {where} (from {src}): {first['msg']}",
            hint="`couchmate config show` lists every setting and its default",
        ) from e
    return LoadedSettings(settings, origins)
