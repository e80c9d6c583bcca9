"""`couchmate` in a real pseudo-terminal, as a person runs it: stdin is a tty, Ctrl-C is the
terminal's own interrupt character (the line discipline turns it into SIGINT)."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import sys
import time

_ANSI = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][A-Za-z0-9]|\r")


class Terminal:
    """`couchmate ARGS` on the child side of a pty; the test is the person at the keyboard."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, columns: int = 160):
        full_env = {**os.environ, "COLUMNS": str(columns), "LINES": "50", **(env or {})}
        full_env.pop("NO_COLOR", None)
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: a session leader with the pty as its terminal
            try:
                os.execve(sys.executable, [sys.executable, "-m", "couchmate", *args], full_env)
            finally:
                os._exit(127)
        self.raw = b""
        self.returncode: int | None = None

    @property
    def text(self) -> str:
        return _ANSI.sub(b"", self.raw).decode("utf-8", "replace")

    def _pump(self, timeout: float) -> bool:
        """Read what the program wrote; False once the terminal is closed."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # EIO: the child side is closed
            return False
        self.raw += chunk
        return bool(chunk)

    def expect(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.text)
            if m:
                return m
            if not self._pump(0.1):
                break
        m = re.search(pattern, self.text)
        if m:
            return m
        raise AssertionError(
            f"{pattern!r} not seen in {timeout} s; the screen:\n{self.text[-3000:]}"
        )

    def type(self, data: bytes) -> None:
        os.write(self.fd, data)

    def wait(self, timeout: float) -> int | None:
        """The exit code, or None if the program is still running after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                while self._pump(0.05):
                    pass
                self.returncode = os.waitstatus_to_exitcode(status)
                return self.returncode
            if time.monotonic() > deadline:
                return None
            self._pump(0.05)

    def close(self) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        os.close(self.fd)
