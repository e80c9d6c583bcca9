"""Where the player's data goes, told the same way by `play` and `config show`."""

from __future__ import annotations

from typer.testing import CliRunner

from couchmate.cli import app
from couchmate.cli.common import remote_endpoints
from couchmate.cli.play_cmd import _privacy_notice
from couchmate.config import ModelRole, Settings

CLOUD_EMBEDDER = "https://api.openai.com/v1"


def cloud_embedder() -> Settings:
    settings = Settings()
    settings.memory.embedder = "openai"
    settings.memory.embed_base_url = CLOUD_EMBEDDER
    settings.memory.embed_model = "text-embedding-3-small"
    return settings


def test_a_cloud_embedder_is_a_remote_endpoint_but_a_home_one_is_not():
    assert [e.url for e in remote_endpoints(cloud_embedder())] == [CLOUD_EMBEDDER]
    assert remote_endpoints(cloud_embedder(), memory=False) == []
    home = cloud_embedder()
    home.memory.embed_base_url = "http://192.168.1.20:8080/v1"
    assert remote_endpoints(home) == []
    assert remote_endpoints(Settings()) == []


def test_model_roles_count_only_when_on():
    settings = Settings()
    settings.models.fast = ModelRole(base_url="https://api.example.com/v1", model="m")
    settings.models.smart = ModelRole(base_url="https://api.example.com/v1")  # no model: off
    assert [e.name for e in remote_endpoints(settings)] == ["the fast model"]


def test_play_does_not_promise_a_cloud_embedder_stays_home(capsys):
    _privacy_notice(cloud_embedder(), memory=True)
    err = " ".join(capsys.readouterr().err.split())
    assert "everything stays on this machine" not in err
    assert "the memory embedder" in err and CLOUD_EMBEDDER in err
    _privacy_notice(cloud_embedder(), memory=False)
    assert "everything stays on this machine" in capsys.readouterr().err


def test_config_show_names_a_cloud_embedder():
    env = {
        "COLUMNS": "200",
        "COUCHMATE_MEMORY__EMBEDDER": "openai",
        "COUCHMATE_MEMORY__EMBED_BASE_URL": CLOUD_EMBEDDER,
    }
    result = CliRunner().invoke(app, ["config", "show"], env=env)
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert f"privacy: the memory embedder is remote ({CLOUD_EMBEDDER})" in out
