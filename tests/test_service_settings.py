"""Service settings from ``MT_*`` variables, their one-line-per-problem errors, and the
warning for ``MT_*`` variables that are no setting."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from model.store.locations import bundled_model_dir
from service.server import log_config
from service.settings import (
    OTHER_VARIABLES,
    Settings,
    SettingsError,
    load_settings,
    setting_names,
    unknown_variables,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def no_mt_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("MT_"):
            monkeypatch.delenv(key)


def test_defaults_match_libretranslate_and_the_bundled_model() -> None:
    settings = load_settings()
    assert settings.port == 5000
    assert settings.model_dir == bundled_model_dir()
    assert settings.model_dir.parts[-2:] == ("models", "en-vi")
    assert settings.api_key_set == frozenset()
    assert settings.admin_token is None


def test_environment_variables_are_read_with_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MT_MODEL_DIR", "/srv/models/x")
    monkeypatch.setenv("MT_PORT", "8080")
    monkeypatch.setenv("MT_MAX_WAIT_MS", "2.5")
    monkeypatch.setenv("MT_API_KEYS", " alpha, beta ,,")
    monkeypatch.setenv("MT_ADMIN_TOKEN", "s3cret")
    monkeypatch.setenv("MT_DEVICE", "CUDA:1")
    settings = load_settings()
    assert settings.model_dir == Path("/srv/models/x")
    assert settings.port == 8080
    assert settings.max_wait_s == pytest.approx(0.0025)
    assert settings.api_key_set == frozenset({"alpha", "beta"})
    assert settings.admin_token is not None
    assert settings.admin_token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
    assert settings.device == "cuda:1"


def test_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MT_PORT", "8080")
    assert load_settings(port="9090").port == 9090


def test_a_blank_admin_token_disables_the_admin_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MT_ADMIN_TOKEN", "  ")
    assert load_settings().admin_token is None


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MT_PORT", "fifty", "MT_PORT"),
        ("MT_PORT", "70000", "MT_PORT"),
        ("MT_MAX_BATCH_SENTENCES", "0", "MT_MAX_BATCH_SENTENCES"),
        ("MT_DEVICE", "tpu", "unknown device"),
        ("MT_LOG_LEVEL", "loud", "unknown log level"),
        ("MT_REQUEST_TIMEOUT_S", "-1", "MT_REQUEST_TIMEOUT_S"),
        ("MT_CHAR_LIMIT", "1000000", "MT_MAX_BODY_BYTES"),
        ("MT_MODEL_WORKERS", "0", "MT_MODEL_WORKERS"),
        ("MT_TORCH_THREADS", "none", "MT_TORCH_THREADS"),
    ],
)
def test_invalid_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert message in str(error.value)
    assert "pydantic" not in str(error.value)


def test_every_problem_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MT_PORT", "x")
    monkeypatch.setenv("MT_BEAM", "0")
    with pytest.raises(SettingsError) as error:
        load_settings()
    lines = str(error.value).splitlines()
    assert lines[0].startswith("invalid settings") and "docs/service.md" in lines[0]
    assert any(line.strip().startswith("MT_PORT=x:") for line in lines)
    assert any(line.strip().startswith("MT_BEAM=0:") for line in lines)


def test_one_problem_is_one_line_that_says_what_the_setting_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MT_PORT", "fifty")
    with pytest.raises(SettingsError) as error:
        load_settings()
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("invalid setting: MT_PORT=fifty: ")
    assert "TCP port to listen on" in message


def test_a_bad_flag_is_named_as_the_flag() -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(port="99999")
    assert str(error.value).startswith("invalid setting: --port=99999: ")


def test_a_misspelt_setting_is_named_with_the_closest_one() -> None:
    lines = unknown_variables({"MT_BEEM": "3", "MT_BEAM": "4", "PATH": "/bin"})
    assert lines == ["MT_BEEM is not a setting and is ignored (did you mean MT_BEAM?)"]
    assert "MT_API_KEYS?" in unknown_variables({"MT_API_KEY": "secret"})[0]
    assert "MT_MODEL_DIR?" in unknown_variables({"MT_MODELDIR": "x"})[0]


def test_the_warning_never_shows_a_value_and_points_at_the_docs_when_nothing_is_close() -> None:
    (line,) = unknown_variables({"MT_API_TOKEN": "s3cret-value"})
    assert "s3cret" not in line
    (far,) = unknown_variables({"MT_FROBNICATE": "1"})
    assert far.startswith("MT_FROBNICATE is not a setting and is ignored (")
    assert far.endswith("(the settings are listed in docs/service.md)")


def test_settings_and_variables_read_elsewhere_are_not_unknown() -> None:
    environ = {name: "1" for name in [*setting_names(), *OTHER_VARIABLES, "mt_beam"]}
    assert unknown_variables(environ) == []


def _mt_names(path: Path) -> set[str]:
    return set(re.findall(r"\bMT_[A-Z][A-Z0-9_]*\b", path.read_text(encoding="utf-8")))


def test_every_mt_variable_the_project_reads_is_known_to_the_warning() -> None:
    """A variable that the code, the deployment files or the tests read is a setting or listed
    in OTHER_VARIABLES, and everything listed there is read somewhere: the warning stays true."""
    suffixes = {".py", ".sh", ".yaml", ".yml", ".toml"}
    files = [
        path
        for path in REPO.rglob("*")
        if path.is_file()
        and (path.suffix in suffixes or path.name.endswith("Dockerfile"))
        and not {".git", "runs", ".venv"} & set(path.relative_to(REPO).parts)
    ]
    project = set().union(*(_mt_names(p) for p in files if p.parts[len(REPO.parts)] != "tests"))
    assert project - setting_names() - set(OTHER_VARIABLES) == set()
    everywhere = set().union(*(_mt_names(p) for p in files))
    assert set(OTHER_VARIABLES) - everywhere == set()


def test_settings_are_immutable() -> None:
    settings = Settings()
    with pytest.raises(ValueError):
        settings.port = 1


def test_log_config_covers_uvicorn_and_our_loggers() -> None:
    config = log_config("debug")
    assert {"uvicorn", "uvicorn.access", "service", "model"} <= set(config["loggers"])
    assert config["loggers"]["service"]["level"] == "DEBUG"


def test_the_beam_is_the_models_tuned_one_unless_mt_beam_is_set(tiny_model_dir: Path) -> None:
    from model.search.options import SearchOptions
    from service.routes.translate import decode_options
    from service.schemas import TranslateRequest

    request = TranslateRequest(q="Hello.", source="en", target="vi")
    unset = Settings(model_dir=tiny_model_dir)
    assert unset.beam is None
    tuned = SearchOptions(beam=3, length_penalty=1.2, block_loops=4)
    assert decode_options(unset, request, tuned) == replace(tuned, beam=3)
    assert decode_options(Settings(model_dir=tiny_model_dir, beam=2), request, tuned).beam == 2
    wide = TranslateRequest(q="Hello.", source="en", target="vi", alternatives=4)
    assert decode_options(unset, wide, tuned).beam == 5  # holds the 5 best
