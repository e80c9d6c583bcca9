from pathlib import Path

import pytest

from couchmate import config
from couchmate.errors import ConfigError


def test_file_then_env_override_and_origins(tmp_path: Path):
    f = tmp_path / "c.toml"
    f.write_text('[persona]\ntalkativeness = 1\nname = "kai"\n[models.fast]\npreset = "ollama"\n')
    loaded = config.load(f, environ={"COUCHMATE_PERSONA__TALKATIVENESS": "3"})
    s = loaded.settings
    assert s.persona.talkativeness == 3
    assert s.persona.name == "kai"
    origins = {k: o for k, _, o in loaded.rows()}
    assert origins["persona.talkativeness"] == "COUCHMATE_PERSONA__TALKATIVENESS"
    assert origins["persona.name"] == str(f)
    assert origins["user.id"] == "default"
    fast = s.models.fast.resolved()
    assert fast.base_url == "http://localhost:11434/v1"
    assert not s.models.fast.remote


def test_remote_model_is_flagged(tmp_path: Path):
    loaded = config.load(
        tmp_path / "missing.toml", environ={"COUCHMATE_MODELS__SMART__PRESET": "openai"}
    )
    assert loaded.settings.models.smart.remote
    assert loaded.settings.models.smart.resolved().api_key_env == "OPENAI_API_KEY"


@pytest.mark.parametrize(
    ("text", "env", "needle"),
    [
        ("[persona\nname=1", {}, "c.toml"),
        ("[persona]\nbogus = 1\n", {}, "persona.bogus"),
        ("", {"COUCHMATE_NOPE__X": "1"}, "COUCHMATE_NOPE__X"),
        ("", {"COUCHMATE_PERSONA__TALKATIVENESS": "loud"}, "persona.talkativeness"),
    ],
)
def test_bad_settings_name_the_culprit(tmp_path: Path, text, env, needle):
    f = tmp_path / "c.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as e:
        config.load(f, environ=env)
    assert needle in str(e.value)
    assert e.value.hint
