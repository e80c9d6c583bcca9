"""Backends from settings: presets, disabled roles, API keys read from the named variable."""

from __future__ import annotations

import asyncio

import pytest

from couchmate.config import ModelRole, ModelSettings, Settings
from couchmate.errors import ConfigError
from couchmate.models.backend import ChatBackend
from couchmate.models.backends import Backends
from couchmate.models.client import NO_KEY
from couchmate.models.presets import PRESETS


def test_local_preset_and_a_disabled_role():
    settings = Settings(models=ModelSettings(fast=ModelRole(preset="llamacpp", max_images=2)))
    backends = Backends.from_settings(settings)
    assert backends.smart is None and not backends.available("smart")
    fast = backends.get("fast")
    assert fast is not None and backends.available("fast")
    assert fast.base_url == "http://localhost:8080/v1" and fast.role.max_images == 2
    assert fast.client.api_key == NO_KEY  # a local server gets a dummy key
    assert fast.client.max_retries == 0  # retry policy lives in RetryPolicy only
    assert set(backends.snapshot()) == {"fast"}
    asyncio.run(backends.aclose())


def test_cloud_preset_reads_the_key_from_the_named_variable(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "secret-123")
    role = ModelRole(preset="gemini", model="gemini-2.5-flash-lite")
    backend = ChatBackend("smart", role)
    assert backend.client.api_key == "secret-123"
    assert backend.role.remote and backend.model == "gemini-2.5-flash-lite"
    assert str(backend.client.base_url).startswith("https://generativelanguage.googleapis.com")
    asyncio.run(backend.aclose())


def test_missing_key_is_a_config_error_at_start_up(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    settings = ModelSettings(smart=ModelRole(preset="openai"))
    with pytest.raises(ConfigError) as info:
        Backends.from_settings(settings)
    assert "OPENAI_API_KEY" in info.value.message and "export OPENAI_API_KEY" in info.value.hint


def test_role_without_server_is_refused_clearly():
    with pytest.raises(ConfigError) as info:
        ChatBackend("fast", ModelRole(model="x"))
    assert "models.fast" in info.value.message and "preset" in info.value.hint


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds_a_backend(name, monkeypatch):
    preset = PRESETS[name]
    if preset.api_key_env:
        monkeypatch.setenv(preset.api_key_env, "k")
    backend = ChatBackend("fast", ModelRole(preset=name))
    assert backend.base_url == preset.base_url and backend.model == preset.example_model
    # Nothing leaves the machine unless the user picked a cloud preset (which needs a key).
    assert backend.role.remote == bool(preset.api_key_env)
    asyncio.run(backend.aclose())
