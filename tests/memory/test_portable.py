"""Export → import between two real PostgreSQL databases, with real embeddings."""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict

import pytest

from couchmate import config
from couchmate.config import Settings
from couchmate.errors import MemoryStoreError
from couchmate.memory.portable import (
    PortableError,
    apply_settings,
    export_account,
    import_account,
    read_account,
)
from couchmate.memory.postgres_store import PostgresStore
from couchmate.memory.store import STORES
from couchmate.types import Memory
from tests.memory import embed_fixtures, pg_fixtures

pytestmark = pytest.mark.server
pg_server, pg_url = pg_fixtures.pg_server, pg_fixtures.pg_url
embed = embed_fixtures.embed
MODEL = "local"  # the default embedder's name


@pytest.fixture
def open_store(request, tmp_path):
    """open_store(kind, name): an empty store of that kind (a fresh database or folder)."""
    opened = []

    def make(kind: str, name: str):
        if kind == "postgres":
            server = request.getfixturevalue("pg_server")
            store = PostgresStore(server.create_database(f"t_{name}"))
        else:
            store = STORES.get("embedded")(tmp_path / name, dim=384)
        opened.append((kind, name, store))
        return store

    yield make
    for kind, name, store in opened:
        store.close()
        if kind == "postgres":
            request.getfixturevalue("pg_server").drop_database(f"t_{name}")


ANA = [
    Memory("ana", "fact", "The user's name is Ana.", t=1, importance=0.9,
           data={"key": "name"}, provenance={"session": "s1", "turn": 2}),
    Memory("ana", "fact", "The user loves dragons and hates escort missions.", t=2),
    Memory("ana", "progress", "Hades: the user finished chapter 3.", topics=["hades"], t=3,
           data={"key": "progress:hades"}),
    Memory("ana", "episode", "We fought the Bone Hydra together, 三次失败", topics=["hades"],
           t=4, retention="expiring", expires_at=9e9),
    Memory("ana", "episode", "Ana laughed at the cat in the lobby", t=5),
]  # fmt: skip


def fill(store, embed):
    store.add(ANA, embed([m.text for m in ANA]))
    bob = [Memory("bob", "fact", "Bob's bank pin is 1234", t=1)]
    store.add(bob, embed([m.text for m in bob]))


def settings_with_secrets() -> Settings:
    s = Settings()
    s.user.id, s.user.name = "ana", "Ana"
    s.persona.name, s.persona.talkativeness, s.persona.spoilers = "grumpy", 1, True
    s.memory.url = "postgresql://ana:hunter2@db.example/couchmate"
    s.memory.retention_days = 30
    s.models.fast.base_url, s.models.fast.model = "https://api.openai.com/v1", "gpt-4o-mini"
    s.models.fast.api_key_env = "OPENAI_API_KEY"
    return s


def searches(store, embed, user, lexical=True):
    out = []
    for q in ("what does the user like", "hydra fight", "chapter progress"):
        dense = store.dense_search(user, embed([q])[0], 3)
        lex = store.lexical_search(user, q, 3) if lexical else []
        texts = {m.id: m.text for m in store.get(user, [i for i, _ in dense + lex])}
        out.append(([texts[i] for i, _ in dense], [texts[i] for i, _ in lex]))
    return out


def comparable(m: Memory) -> dict:
    d = asdict(m)
    d.pop("id")
    d.pop("user_id")
    return d


@pytest.mark.parametrize(
    ("src_kind", "dst_kind", "same_model"),
    [
        ("postgres", "postgres", True),
        ("postgres", "postgres", False),
        ("embedded", "postgres", True),
        ("postgres", "embedded", False),
    ],
    ids=["pg-pg-vectors-from-file", "pg-pg-re-embedded", "laptop-to-server", "server-to-laptop"],
)
def test_round_trip_to_another_device_and_user(
    open_store, embed, tmp_path, src_kind, dst_kind, same_model
):
    # lexical scores differ between the stores' rankers; compare them within one kind only
    lexical = src_kind == dst_kind
    path = tmp_path / "ana.couchmate.zip"
    with open_store(src_kind, "src") as src:
        fill(src, embed)
        summary = export_account(
            src, "ana", path, embed_model=MODEL, dim=384, settings=settings_with_secrets()
        )
        before = searches(src, embed, "ana", lexical)
        originals = sorted(map(comparable, src.list("ana")), key=lambda d: d["t"])
    assert summary.memories == 5 and summary.vectors
    raw = zipfile.ZipFile(path).read("settings.json").decode()
    assert "hunter2" not in raw and "OPENAI_API_KEY" not in raw and "example" not in raw
    assert "Bob" not in zipfile.ZipFile(path).read("memories.jsonl").decode()

    with open_store(dst_kind, "dst") as dst:
        model = MODEL if same_model else "some-other-model"
        calls = []

        def counting_embed(texts):
            calls.append(len(texts))
            return embed(texts)

        first = import_account(
            dst, path, embed=counting_embed, embed_model=model, dim=384, as_user="ana-laptop"
        )
        assert (first.imported, first.skipped, first.reembedded) == (5, 0, not same_model)
        assert calls == ([] if same_model else [5])
        again = import_account(
            dst, path, embed=embed, embed_model=model, dim=384, as_user="ana-laptop"
        )
        assert (again.imported, again.skipped) == (0, 5)
        assert dst.count("ana-laptop") == 5 and dst.users() == ["ana-laptop"]
        copies = sorted(map(comparable, dst.list("ana-laptop")), key=lambda d: d["t"])
        assert copies == originals
        assert searches(dst, embed, "ana-laptop", lexical) == before
        # the same file imported under the original id keeps the original ids
        same = import_account(dst, path, embed=embed, embed_model=MODEL, dim=384)
        assert same.imported == 5 and dst.count("ana") == 5


def test_settings_travel_without_secrets(tmp_path, pg_url, embed):
    path = tmp_path / "export.zip"
    with PostgresStore(pg_url) as src:
        fill(src, embed)
        export_account(
            src, "ana", path, embed_model=MODEL, dim=384, settings=settings_with_secrets()
        )
    cfg = tmp_path / "new-device" / "config.toml"
    cfg.parent.mkdir()
    cfg.write_text('[user]\nid = "sam"\n[voice]\nmute = true\n[persona]\nname = "sunny"\n')
    written = apply_settings(read_account(path).settings, cfg)
    assert "persona.name" in written and "user.name" in written
    assert "user.id" not in written  # the export says "ana": this device's user stays
    loaded = config.load(cfg, environ={}).settings
    assert loaded.persona.name == "grumpy" and loaded.persona.spoilers
    assert loaded.persona.talkativeness == 1 and loaded.memory.retention_days == 30
    assert loaded.user.id == "sam" and loaded.user.name == "Ana"
    assert loaded.voice.mute  # what was there stays
    assert loaded.memory.url == "" and not loaded.models.fast.api_key_env
    assert apply_settings(read_account(path).settings, cfg) == []


def rewrite(path, out, **members):
    with zipfile.ZipFile(path) as z:
        content = {n: z.read(n) for n in z.namelist()}
    content.update(members)
    with zipfile.ZipFile(out, "w") as z:
        for n, data in content.items():
            z.writestr(n, data)
    return out


def test_damaged_files_are_refused_and_nothing_is_imported(tmp_path, pg_url, embed):
    good = tmp_path / "good.zip"
    with PostgresStore(pg_url) as store:
        fill(store, embed)
        export_account(store, "ana", good, embed_model=MODEL, dim=384)
        store.delete("ana", [m.id for m in store.list("ana")])
        data = good.read_bytes()
        manifest = json.loads(zipfile.ZipFile(good).read("manifest.json"))
        lines = zipfile.ZipFile(good).read("memories.jsonl").decode().splitlines()
        truncated = tmp_path / "truncated.zip"
        truncated.write_bytes(data[: len(data) * 2 // 3])
        not_zip = tmp_path / "notes.txt"
        not_zip.write_text("hello")
        tampered = rewrite(
            good, tmp_path / "tampered.zip",
            **{"memories.jsonl": "\n".join(lines).replace("dragons", "snakes") + "\n"},
        )  # fmt: skip
        future = rewrite(
            good,
            tmp_path / "future.zip",
            **{"manifest.json": json.dumps({**manifest, "version": 99})},
        )
        cases = {
            truncated: "damaged or truncated",
            not_zip: "damaged or truncated",
            tampered: "checksum",
            future: "newer",
            tmp_path / "missing.zip": "no such file",
        }
        for path, words in cases.items():
            with pytest.raises(PortableError) as e:
                import_account(store, path, embed=embed, embed_model=MODEL, dim=384)
            assert words in e.value.message, (path.name, e.value.message)
        assert store.count("ana") == 0

        # a record the database refuses half-way through: the whole import rolls back
        bad_line = json.loads(lines[3])
        bad_line["text"] = "nul \u0000 byte"
        acc = read_account(good)
        acc.memories[3].text = bad_line["text"]
        with pytest.raises(MemoryStoreError):
            import_account(store, acc, embed=embed, embed_model=MODEL, dim=384)
        assert store.count("ana") == 0
