"""The portable account: one file that moves a user's companion to another device.

The file is a zip with
  manifest.json    format, version, user, counts, embedding model, SHA-256 of every member
  memories.jsonl   one memory per line, every field
  vectors.npy      float32 embeddings in the same order (optional: without them, or when the
                   importing device embeds with another model, memories are re-embedded)
  settings.json    the user's `user`, `persona` and portable `memory` settings (applied on
                   import only when asked, and never `user.id`: see apply_settings)

API keys never go in: settings hold only the *name* of a key's environment variable, and
even that (with every URL and path, which belong to a device) is left out.

Import validates everything — zip integrity, manifest, checksums, every record, vector
shape — before it writes anything, then adds all memories in one store call (one
transaction on PostgreSQL). Ids are kept for the same user and derived deterministically for
another (`--as-user`), and memories already present are skipped: importing twice changes
nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
import time
import tomllib
import uuid
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from couchmate.config import MemorySettings, PersonaSettings, Settings, UserSettings
from couchmate.errors import MemoryStoreError, UserError
from couchmate.memory.store import MemoryStore
from couchmate.memory.texts import bounded
from couchmate.memory.topics import normalize_all
from couchmate.types import Memory

FORMAT = "couchmate-account"
VERSION = 1
Embed = Callable[[Sequence[str]], np.ndarray]
_NS = uuid.UUID("6f1d2b1e-8a53-4f0e-9a43-63a0c0a7e5d1")
# Memory settings that describe the person, not the device (no URLs, paths or key names).
PORTABLE_MEMORY_SETTINGS = ("retention_days", "token_budget")


class PortableError(UserError):
    """An export file that cannot be imported (corrupt, truncated, wrong format)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EmbeddingInfo(_Strict):
    model: str
    dim: int = Field(gt=0)
    included: bool


class Manifest(_Strict):
    format: Literal["couchmate-account"]
    version: int
    created: float
    user_id: str = Field(min_length=1)
    memories: int = Field(ge=0)
    embedding: EmbeddingInfo
    files: dict[str, str]  # member name -> sha256 hex


class MemoryRecord(_Strict):
    id: str = Field(min_length=1)
    user_id: str = Field(min_length=1)
    kind: Literal["episode", "fact", "progress"]
    text: str
    topics: list[str]
    t: float
    importance: float
    provenance: dict[str, Any]
    retention: Literal["permanent", "expiring"]
    expires_at: float | None
    data: dict[str, Any]


class PortableSettings(_Strict):
    user: UserSettings | None = None
    persona: PersonaSettings | None = None
    memory: dict[str, Any] = Field(default_factory=dict)


@dataclass(slots=True)
class Account:
    """A validated export, read into memory."""

    manifest: Manifest
    memories: list[Memory]
    vectors: np.ndarray | None
    settings: PortableSettings


@dataclass(slots=True)
class ExportSummary:
    path: str
    user_id: str
    memories: int
    vectors: bool
    bytes: int


@dataclass(slots=True)
class ImportSummary:
    user_id: str
    imported: int
    skipped: int
    reembedded: bool


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _all_memories(store: MemoryStore, user_id: str, page: int = 1000) -> list[Memory]:
    out: list[Memory] = []
    while True:
        batch = store.list(user_id, limit=page, offset=len(out))
        out.extend(batch)
        if len(batch) < page:
            return out


def portable_settings(settings: Settings) -> PortableSettings:
    mem = settings.memory.model_dump()
    return PortableSettings(
        user=settings.user,
        persona=settings.persona,
        memory={k: mem[k] for k in PORTABLE_MEMORY_SETTINGS},
    )


def export_account(
    store: MemoryStore,
    user_id: str,
    path: Path,
    *,
    embed_model: str,
    dim: int,
    settings: Settings | None = None,
    include_vectors: bool = True,
) -> ExportSummary:
    """Write one user's memories (and settings) to `path`, atomically."""
    memories = _all_memories(store, user_id)
    if not memories and store.count(user_id) == 0 and settings is None:
        raise UserError(
            f"user {user_id!r} has no memories to export",
            hint="`couchmate memory list --user ...` shows whose memories are stored",
        )
    vectors = None
    get_vectors = getattr(store, "vectors", None)  # optional capability of a store
    if include_vectors and memories and callable(get_vectors):
        vectors = np.asarray(get_vectors(user_id, [m.id for m in memories]), dtype=np.float32)
    members: dict[str, bytes] = {
        "memories.jsonl": "".join(
            json.dumps(asdict(m), ensure_ascii=False, default=str) + "\n" for m in memories
        ).encode("utf-8"),
        "settings.json": (
            portable_settings(settings) if settings is not None else PortableSettings()
        )
        .model_dump_json(indent=2)
        .encode("utf-8"),
    }
    if vectors is not None:
        buf = io.BytesIO()
        np.save(buf, vectors, allow_pickle=False)
        members["vectors.npy"] = buf.getvalue()
    manifest = Manifest(
        format=FORMAT,
        version=VERSION,
        created=time.time(),
        user_id=user_id,
        memories=len(memories),
        embedding=EmbeddingInfo(model=embed_model, dim=dim, included=vectors is not None),
        files={name: _sha(data) for name, data in members.items()},
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".couchmate-export-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("manifest.json", manifest.model_dump_json(indent=2))
            for name, data in members.items():
                z.writestr(name, data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return ExportSummary(
        str(path), user_id, len(memories), vectors is not None, path.stat().st_size
    )


def read_account(path: Path) -> Account:
    """Read and validate an export completely; raises PortableError naming what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise PortableError(f"{path}: no such file", hint="give the path of an exported .zip")
    where = str(path)
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            if "manifest.json" not in names:
                raise PortableError(f"{where}: not a couchmate export (no manifest.json)")
            raw = {name: z.read(name) for name in names}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as e:
        raise PortableError(
            f"{where}: the file is damaged or truncated ({e})",
            hint="export it again from the other device and copy the whole file",
        ) from e
    try:
        manifest = Manifest.model_validate_json(raw["manifest.json"])
    except ValidationError as e:
        raise PortableError(f"{where}: invalid manifest: {e.errors()[0]['msg']}") from e
    if manifest.version > VERSION:
        raise PortableError(
            f"{where}: export format version {manifest.version} is newer than this couchmate "
            f"reads ({VERSION})",
            hint="upgrade couchmate on this device",
        )
    for name, digest in manifest.files.items():
        if name not in raw:
            raise PortableError(f"{where}: {name} is missing from the archive")
        if _sha(raw[name]) != digest:
            raise PortableError(f"{where}: {name} does not match its checksum (file damaged)")
    memories: list[Memory] = []
    lines = raw.get("memories.jsonl", b"").decode("utf-8", "replace").splitlines()
    for n, line in enumerate(lines, 1):
        try:
            rec = MemoryRecord.model_validate_json(line)
        except ValidationError as e:
            raise PortableError(f"{where}: memories.jsonl line {n}: {e.errors()[0]['msg']}") from e
        if rec.user_id != manifest.user_id:
            raise PortableError(f"{where}: memories.jsonl line {n} belongs to another user")
        memories.append(Memory(**rec.model_dump()))
    if len(memories) != manifest.memories:
        raise PortableError(
            f"{where}: {len(memories)} memories, the manifest says {manifest.memories}"
        )
    vectors = None
    if manifest.embedding.included:
        try:
            vectors = np.load(io.BytesIO(raw["vectors.npy"]), allow_pickle=False)
        except (KeyError, ValueError, OSError) as e:
            raise PortableError(f"{where}: vectors.npy is unreadable ({e})") from e
        if vectors.shape != (len(memories), manifest.embedding.dim):
            raise PortableError(
                f"{where}: vectors have shape {vectors.shape}, expected "
                f"({len(memories)}, {manifest.embedding.dim})"
            )
    try:
        settings = PortableSettings.model_validate_json(raw.get("settings.json", b"{}"))
    except ValidationError as e:
        raise PortableError(f"{where}: invalid settings.json: {e.errors()[0]['msg']}") from e
    return Account(manifest, memories, vectors, settings)


def imported_id(source_user: str, target_user: str, memory_id: str) -> str:
    """The id a memory gets in the target account: unchanged for the same user, otherwise
    derived from both, so a second import finds the first one's copies."""
    if source_user == target_user:
        return memory_id
    return uuid.uuid5(_NS, f"{target_user}\x1f{memory_id}").hex


def import_account(
    store: MemoryStore,
    account: Account | Path,
    *,
    embed: Embed,
    embed_model: str,
    dim: int,
    as_user: str | None = None,
) -> ImportSummary:
    """Add an export's memories to `store` under `as_user` (default: the exporting user)."""
    acc = account if isinstance(account, Account) else read_account(Path(account))
    source = acc.manifest.user_id
    target = as_user or source
    todo: list[Memory] = []
    rows: list[int] = []
    candidates = [imported_id(source, target, m.id) for m in acc.memories]
    present = {m.id for m in store.get(target, candidates)} if candidates else set()
    for i, (m, new_id) in enumerate(zip(acc.memories, candidates, strict=True)):
        if new_id in present:
            continue
        todo.append(
            bounded(  # an export from an older couchmate may hold a huge text: kept in data
                Memory(
                    **{
                        **asdict(m),
                        "user_id": target,
                        "id": new_id,
                        "topics": normalize_all(m.topics),
                        "provenance": dict(m.provenance),
                        "data": dict(m.data),
                    }
                ),
                keep_full=True,
            )
        )
        rows.append(i)
    same_model = acc.manifest.embedding.model == embed_model and acc.manifest.embedding.dim == dim
    reembed = acc.vectors is None or not same_model
    if todo:
        if reembed:
            vectors = np.asarray(embed([m.text for m in todo]), dtype=np.float32)
        else:
            assert acc.vectors is not None
            vectors = acc.vectors[rows]
        if vectors.shape != (len(todo), dim):
            raise MemoryStoreError(
                f"the embedder returned shape {vectors.shape}, expected ({len(todo)}, {dim})"
            )
        store.add(todo, vectors)
    return ImportSummary(target, len(todo), len(acc.memories) - len(todo), reembed and bool(todo))


# --- settings ---------------------------------------------------------------------------------


def apply_settings(portable: PortableSettings, config_path: Path) -> list[str]:
    """Merge the export's settings into the settings file; returns the dotted keys written.

    Never `user.id`: who the local user is belongs to this device, not to a file brought in
    (an import under `--as-user` files memories under that id and nothing more).
    """
    current: dict[str, Any] = {}
    if config_path.exists():
        try:
            current = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise UserError(
                f"{config_path}: cannot merge imported settings into it ({e})",
                hint="fix the file's TOML syntax, or import with --no-settings",
            ) from e
    new: dict[str, dict[str, Any]] = {}
    if portable.user is not None:
        new["user"] = portable.user.model_dump(exclude={"id"})
    if portable.persona is not None:
        new["persona"] = portable.persona.model_dump()
    allowed = set(MemorySettings.model_fields) & set(PORTABLE_MEMORY_SETTINGS)
    mem = {k: v for k, v in portable.memory.items() if k in allowed}
    if mem:
        new["memory"] = mem
    defaults = Settings().model_dump()
    written: list[str] = []
    for section, values in new.items():
        target = current.get(section, {})
        for k, v in values.items():
            if target.get(k, defaults[section][k]) != v:
                target[k] = v
                written.append(f"{section}.{k}")
        if target:
            current[section] = target
    Settings.model_validate(current)  # never write a file the loader would refuse
    if written:
        config_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = config_path.with_suffix(".toml.tmp")
        tmp.write_text(to_toml(current), encoding="utf-8")
        os.replace(tmp, config_path)
    return written


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _toml_key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k, ensure_ascii=False)


def to_toml(data: dict[str, Any], prefix: str = "") -> str:
    """A small TOML writer for settings: scalar values, lists, nested tables."""
    scalars = [(k, v) for k, v in data.items() if not isinstance(v, dict)]
    tables = [(k, v) for k, v in data.items() if isinstance(v, dict)]
    out = "".join(f"{_toml_key(k)} = {_toml_value(v)}\n" for k, v in scalars)
    for k, v in tables:
        name = f"{prefix}.{_toml_key(k)}" if prefix else _toml_key(k)
        if any(not isinstance(x, dict) for x in v.values()) or not v:
            out += f"\n[{name}]\n"
        out += to_toml(v, name)
    return out
