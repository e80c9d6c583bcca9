"""`play` with models that are down or cannot take what it sends: it says so at start, shows
each model's state in its panel, and talks on with reflex lines."""

from __future__ import annotations

import pytest

from couchmate.models.local_server import LlamaServer, free_port, smollm2_gguf
from tests.cli.terminal import Terminal
from tests.helpers import run_couchmate

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

PLAY = ("play", "--source", "doom", "--mute", "--no-memory")


def fast_model(base_url: str, model: str) -> dict[str, str]:
    return {"COUCHMATE_MODELS__FAST__BASE_URL": base_url, "COUCHMATE_MODELS__FAST__MODEL": model}


def test_a_model_that_is_down_is_said_at_start_and_shown_in_the_panel():
    """A closed port fell back to reflex lines with nothing said."""
    env = fast_model(f"http://127.0.0.1:{free_port()}/v1", "qwen2.5vl:3b")
    t = Terminal(*PLAY, "--seconds", "4", env=env)
    try:
        t.expect(r"model fast \(qwen2\.5vl:3b at http://127\.0\.0\.1:\d+/v1\): down", 120)
        t.expect(r"│ model fast qwen2\.5vl:3b: down \(connection refused\)", 120)  # the panel
        t.expect(r"session: \d+ s", 120)
        assert t.wait(timeout=20) == 0, t.text[-2000:]
        assert "[reflex] (greeting)" in t.text  # it talked on without the model
    finally:
        t.close()


@pytest.mark.server
def test_images_are_turned_off_for_a_text_only_model_with_a_notice():
    """SmolLM2 on llama.cpp (no mmproj) failed every request that carried keyframes."""
    with LlamaServer(smollm2_gguf(), n_ctx=2048, alias="smollm2") as srv:
        r = run_couchmate(
            *PLAY, "--seconds", "6", env=fast_model(srv.base_url, "smollm2"), timeout=300
        )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "model fast (smollm2" in r.stderr and "images off for this session" in r.stderr
    assert "started failing" not in r.stderr and "stopped answering" not in r.stderr
