"""kill -9 while writing loses no acknowledged memory, and the store reopens and searches."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from couchmate.memory.embedded_store import EmbeddedStore
from tests.memory.crash_writer import DIM, vector

WRITER = Path(__file__).with_name("crash_writer.py")


def _kill_mid_write(path: Path, after_acks: int) -> dict[int, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(path)], stdout=subprocess.PIPE, text=True, env=env
    )
    acked: dict[int, str] = {}
    deadline = time.monotonic() + 120
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            n, mid = line.split()
            acked[int(n)] = mid
            if len(acked) >= after_acks or time.monotonic() > deadline:
                break
    finally:
        proc.send_signal(signal.SIGKILL)  # no chance to close, flush or finish a snapshot
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return acked


def test_kill_9_loses_no_acknowledged_memory(tmp_path):
    path = tmp_path / "mem"
    acked = _kill_mid_write(path, 300)
    acked.update(_kill_mid_write(path, 150))  # crash again on top of the first crash
    assert len(acked) >= 450

    store = EmbeddedStore(path, dim=DIM)
    got = store.get("crash", list(acked.values()))
    assert {m.id for m in got} == set(acked.values())
    assert store.count("crash") >= len(acked)
    # search works on the reopened store: snapshot (if any) + replayed rows
    for n in list(acked)[:: max(1, len(acked) // 25)]:
        assert store.dense_search("crash", vector(n), 1)[0][0] == acked[n]
    assert store.lexical_search("crash", f"memory {max(acked)}", 1)[0][0] == acked[max(acked)]
    store.close()
    store = EmbeddedStore(path, dim=DIM)
    assert store.open_user("crash") == store.count("crash")
    store.close()
