"""Nothing leaves the machine by default: every socket a default run opens is traced with
strace, and none goes past loopback (onnxruntime's telemetry thread looked up Microsoft's
collector from inside `couchmate demo`)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

# One address per traced call that names one: connect(), sendto(), sendmsg().
_ADDRESS = re.compile(
    r'sa_family=(AF_INET6?)[^}]*?(?:inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)")'
)
_LOOPBACK = re.compile(r"^(127\.|::1$|::ffff:127\.)")


def traced(home: Path, *args: str, timeout: float = 240) -> tuple[subprocess.CompletedProcess, str]:
    """`python ARGS` under strace -f with a fresh HOME; returns the run and the trace."""
    if not shutil.which("strace"):
        pytest.fail("strace is not installed (`make system-deps` installs it)")
    log = home / "strace.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORT_")}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), COLUMNS="200")
    cmd = ["strace", "-f", "-qq", "-e", "trace=connect,sendto,sendmsg", "-o", str(log)]
    run = subprocess.run(
        [*cmd, sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    return run, log.read_text()


def outbound(trace: str) -> list[str]:
    out = []
    for m in _ADDRESS.finditer(trace):
        addr = m.group(2) or m.group(3)
        if not _LOOPBACK.match(addr):
            out.append(f"{m.group(1)} {addr}")
    return out


def test_the_address_parser_sees_what_strace_prints():
    dns = 'connect(16, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.0.0.53")}'
    six = 'sendto(3, "x", 1, 0, {sa_family=AF_INET6, sin6_port=htons(443), '
    six += 'sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "2001:db8::1", &sin6_addr)}, 28) = 1'
    home = 'connect(5, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("127.0.0.1")}'
    assert outbound("\n".join([dns, six, home])) == ["AF_INET 10.0.0.53", "AF_INET6 2001:db8::1"]


def test_the_trace_catches_a_connection_from_a_thread(tmp_path):
    """The control: a thread's UDP packet to a remote address is seen (as the DNS query of
    onnxruntime's uploader was), so an empty list below means none was made."""
    code = (
        "import socket, threading\n"
        "def go():\n"
        "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "    s.sendto(b'x', ('192.0.2.7', 53))\n"
        "t = threading.Thread(target=go); t.start(); t.join()\n"
    )
    run, trace = traced(tmp_path, "-c", code)
    assert run.returncode == 0, run.stderr
    assert outbound(trace) == ["AF_INET 192.0.2.7"]


def test_a_default_demo_and_memory_search_open_no_outbound_connection(tmp_path):
    demo_args = ("demo", "--seconds", "8", "--mute", "--out", str(tmp_path / "d"))
    demo, trace = traced(tmp_path, "-m", "couchmate", *demo_args)
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert outbound(trace) == [], "a default demo reached past loopback"
    search, trace = traced(tmp_path, "-m", "couchmate", "memory", "search", "the boss?")
    assert search.returncode == 0, search.stderr[-2000:]
    assert outbound(trace) == [], "memory search (the embedding model) reached past loopback"
    telemetry = list((tmp_path / ".cache").glob("Microsoft/**/*"))
    assert telemetry == [], f"telemetry queued: {telemetry[:3]}"
