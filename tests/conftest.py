"""Suite-wide fixtures: every test runs with its own empty config and data dirs."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory, monkeypatch):
    root = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("COUCHMATE_CONFIG_DIR", str(root / "config"))
    monkeypatch.setenv("COUCHMATE_DATA_DIR", str(root / "data"))
    # One cache for the whole run: the int8 embedding model is built once, not per test.
    monkeypatch.setenv("COUCHMATE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.delenv("COUCHMATE_CONFIG", raising=False)
    monkeypatch.setenv("MEM0_TELEMETRY", "False")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    yield root
