"""Service settings: environment variables with the prefix ``MT_`` (pydantic-settings).

Every value is validated when the settings are built, so a typo (``MT_PORT=50OO``) stops
start-up with one line naming the variable instead of failing on the first request.
:func:`load_settings` turns pydantic's error into :class:`SettingsError` with such lines, each
ending with what the setting is. A misspelt name (a missing letter) would otherwise be ignored
in silence: :func:`unknown_variables` names every ``MT_*`` variable that nothing reads, with
the closest setting.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from model.runtime.devices import parse_device
from model.store.locations import bundled_model_dir

ENV_PREFIX = "MT_"
SETTINGS_DOC = "docs/service.md"

# MT_* variables that are not mt-serve settings but are read elsewhere (the deployment files,
# the other tools, the tests), so a server started beside them does not call them unknown.
OTHER_VARIABLES: Mapping[str, str] = {
    "MT_HOME": "model/locations.py: a folder holding models/ and configs/",
    "MT_CONFIG_DIR": "mt-retrain: the folder of its fine-tuning recipes",
    "MT_DATA_DIR": "tests and compose.yaml: the IWSLT'15 data folder",
    "MT_CORPUS_DIR": "training recipes: where [[corpora]] dirs may start ($MT_CORPUS_DIR/x)",
    "MT_PUBLIC_ADDRESS": "compose.yaml: the load balancer's address, for the exposure warning",
    "MT_BIND_ADDRESS": "compose.yaml: the load balancer's address",
    "MT_PUBLISHED_PORT": "compose.yaml: the load balancer's port",
    "MT_IMAGE": "compose.yaml: the translator image",
    "MT_LB_IMAGE": "compose.yaml: the load balancer image",
    "MT_CA_BUNDLE": "compose.yaml: a CA bundle for the image build",
    "MT_MODELS_ROOT": "deploy/entrypoint.sh: the models volume",
    "MT_BASE_MODEL": "deploy/entrypoint.sh: the model that seeds the models volume",
    "MT_BASE_MODEL_VI_EN": "deploy/entrypoint.sh: the bundled vi-en model served by default",
    "MT_RELOAD": "deploy/retrain-and-reload.sh: reload the replicas after a retrain",
    "MT_RELOAD_HOST": "deploy/reload_replicas.py: the replicas' host name",
    "MT_RELOAD_PORT": "deploy/reload_replicas.py: the replicas' port",
    "MT_RELOAD_BODY": "deploy/reload_replicas.py: the reload request's body",
    "MT_HEALTH_PATH": "deploy/healthcheck.py: the path the health check asks",
    "MT_CUDA_TEST_MODEL": "tests/test_cuda.py: the model the CUDA tests use",
    "MT_BROWSER_MODEL_DIR": "tests/test_browser.py: the model the browser tests use",
}


class SettingsError(ValueError):
    """One or more settings are invalid; the message has one line per problem."""


def _listed_paths(value: str) -> tuple[Path, ...]:
    """The paths of a comma-separated list (blank entries ignored)."""
    return tuple(Path(part.strip()).expanduser() for part in value.split(",") if part.strip())


def bundled_model_dirs() -> tuple[Path, ...]:
    """Every model directory (one with a ``config.json``) in the folder of the bundled model,
    the bundled model first, the others by name."""
    bundled = bundled_model_dir()
    if not bundled.parent.is_dir():
        return ()
    others = sorted(
        path
        for path in bundled.parent.iterdir()
        if path != bundled and (path / "config.json").is_file()
    )
    return ((bundled,) if (bundled / "config.json").is_file() else ()) + tuple(others)


class Settings(BaseSettings):
    """All knobs of the HTTP service; each field is read from ``MT_`` + its name in capitals."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="ignore",
        frozen=True,
        validate_default=True,
        protected_namespaces=(),  # allow the field name model_dir
    )

    model_dir: Annotated[Path, Field(description="model directory")] = Field(
        default_factory=bundled_model_dir
    )
    models: Annotated[
        str,
        Field(
            description="comma-separated model directories to serve, each translating its own "
            "language pair (models/en-vi,models/vi-en); the first is the default one. Unset: "
            "MT_MODEL_DIR when set, else every model in the bundled models folder",
        ),
    ] = ""
    device: Annotated[str, Field(description="torch device: auto, cpu, cuda, cuda:1")] = "auto"
    quantize: Annotated[
        Literal["auto", "int8", "off"],
        Field(
            description="int8: int8 Linear layers with a fixed activation range on the CPU "
            "(about 2x faster); auto: the CPU's own path (int8 with the shortlist where the "
            "CPU has AVX2; GET /model says which and why), off on CUDA; off: float32 (bf16 on "
            "CUDA)"
        ),
    ] = "auto"
    shortlist: Annotated[
        Literal["auto", "on", "off"],
        Field(
            description="score only the target words a batch may need (the model directory's "
            "shortlist.safetensors): auto: on the CPU when the model has one; on: required; "
            "off: the whole vocabulary"
        ),
    ] = "auto"
    cuda_graphs: Annotated[
        bool,
        Field(
            description="on CUDA, decoder steps replay CUDA graphs captured per batch-size "
            "bucket (off until a GPU run has shown they agree with eager steps and are faster)"
        ),
    ] = False
    host: Annotated[str, Field(description="address to listen on")] = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535, description="TCP port to listen on, 1-65535")] = 5000
    log_level: Annotated[str, Field(description="critical, error, warning, info, debug")] = "info"
    torch_threads: Annotated[
        int | None,
        Field(
            ge=1,
            description="torch intra-op threads of each search (default: the CPU cores "
            "divided among the model workers; on CUDA torch's choice)",
        ),
    ] = None
    model_workers: Annotated[
        int | None,
        Field(
            ge=1,
            le=64,
            description="searches that run in parallel for each model, each in its own thread "
            "(default on a CPU: 2 with 2 or more cores, divided among the models served, at "
            "least 1 each; 1 on CUDA)",
        ),
    ] = None

    max_batch_sentences: Annotated[
        int, Field(ge=1, description="sentences in one running search at once")
    ] = 64
    max_batch_tokens: Annotated[
        int,
        Field(ge=1, description="padded source subwords in one running search (rows x longest)"),
    ] = 4096
    max_wait_ms: Annotated[
        float,
        Field(ge=0, le=10_000, description="an idle model's wait for company after the first item"),
    ] = 10.0
    max_queue_tokens: Annotated[
        int,
        Field(
            ge=1,
            description="source subwords waiting for the model; beyond it: 503 (a request "
            "larger than this on its own: 400)",
        ),
    ] = 16384
    retry_after_s: Annotated[int, Field(ge=0, description="Retry-After header on 503")] = 1

    char_limit: Annotated[
        int, Field(ge=-1, description="characters per request (all texts); -1: no limit")
    ] = 5000
    batch_limit: Annotated[int, Field(ge=1, description="texts per request (q as a list)")] = 32
    max_alternatives: Annotated[
        int, Field(ge=0, description="largest 'alternatives' a request may ask for")
    ] = 3
    max_body_bytes: Annotated[
        int, Field(ge=1024, description="largest request body; larger ones get 413")
    ] = 1 << 20
    beam: Annotated[
        int | None,
        Field(ge=1, le=64, description="beam size (1: greedy); unset: the model's tuned beam"),
    ] = None
    request_timeout_s: Annotated[
        float, Field(gt=0, description="a /translate request older than this gets 504")
    ] = 30.0
    body_timeout_s: Annotated[
        float, Field(gt=0, description="a request body not received within this gets 408")
    ] = 10.0
    header_timeout_s: Annotated[
        float,
        Field(
            gt=0,
            description="a connection whose request headers are not complete within this "
            "(from its opening or the previous response) is closed (408)",
        ),
    ] = 10.0
    shutdown_timeout_s: Annotated[
        float, Field(ge=0, description="how long shutdown waits for queued sentences")
    ] = 30.0

    api_keys: Annotated[
        str, Field(description="comma-separated API keys; when set, /translate needs one")
    ] = ""
    admin_token: Annotated[
        SecretStr | None, Field(description="bearer token for POST /admin/reload (unset: off)")
    ] = None
    reload_roots: Annotated[
        str,
        Field(
            description="comma-separated folders a reload's model_dir must be inside (empty: "
            "the folder of MT_MODEL_DIR, the bundled models folder and MT_MODELS_ROOT)"
        ),
    ] = ""
    models_root: Annotated[
        Path | None,
        Field(
            description="the model store mt-retrain manages (--models-root); reloads may "
            "load from it"
        ),
    ] = None
    cache_size: Annotated[int, Field(ge=0, description="translation cache entries (0: off)")] = (
        10_000
    )
    cache_bytes: Annotated[
        int,
        Field(
            ge=0,
            description="memory the translation cache may hold, in bytes (an estimate per "
            "entry; 0: off)",
        ),
    ] = 64 << 20

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        return parse_device(value)

    @field_validator("quantize", "shortlist", mode="before")
    @classmethod
    def _lower_modes(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _int8_runs_on_the_cpu(self) -> Settings:
        if self.quantize == "int8" and self.device.startswith("cuda"):
            raise ValueError(
                f"MT_QUANTIZE=int8 runs on the CPU only, not with MT_DEVICE={self.device} "
                "(use auto or off)"
            )
        return self

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in {"critical", "error", "warning", "info", "debug", "trace"}:
            raise ValueError(f"unknown log level {value!r}")
        return value

    @field_validator("admin_token")
    @classmethod
    def _blank_token_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        return value

    @model_validator(mode="after")
    def _body_fits_the_text_limit(self) -> Settings:
        # A request at the character limit must fit in the body: up to 4 UTF-8 bytes a
        # character plus JSON escaping and the other fields.
        if self.char_limit > 0 and self.max_body_bytes < self.char_limit * 4 + 1024:
            raise ValueError(
                f"MT_MAX_BODY_BYTES={self.max_body_bytes} is too small for "
                f"MT_CHAR_LIMIT={self.char_limit} (needs at least {self.char_limit * 4 + 1024})"
            )
        return self

    @field_validator("models")
    @classmethod
    def _distinct_models(cls, value: str) -> str:
        named = _listed_paths(value)
        repeated = sorted({str(path) for path in named if named.count(path) > 1})
        if repeated:
            raise ValueError(f"names {', '.join(repeated)} more than once")
        return value

    @model_validator(mode="after")
    def _model_dir_is_served(self) -> Settings:
        # Both set (the container image sets MT_MODEL_DIR): MT_MODELS names every model, so
        # a MT_MODEL_DIR outside it would be ignored without a word.
        named = _listed_paths(self.models)
        explicit = "model_dir" in self.model_fields_set
        if named and explicit and self.model_dir.expanduser() not in named:
            raise ValueError(
                f"MT_MODEL_DIR={self.model_dir} is not one of MT_MODELS={self.models} "
                "(MT_MODELS names every model served: list it there, or unset MT_MODEL_DIR)"
            )
        return self

    @property
    def served_model_dirs(self) -> tuple[Path, ...]:
        """The model directories to serve, the default one first: ``MT_MODELS``, else
        ``MT_MODEL_DIR`` when it is set, else every model in the bundled models folder
        (:func:`bundled_model_dirs`), else ``MT_MODEL_DIR``'s default (whose absence the
        start-up error then names)."""
        named = _listed_paths(self.models)
        if named:
            return named
        if "model_dir" in self.model_fields_set:
            return (self.model_dir,)
        return bundled_model_dirs() or (self.model_dir,)

    @property
    def api_key_set(self) -> frozenset[str]:
        """The configured API keys (empty: no key needed)."""
        return frozenset(key.strip() for key in self.api_keys.split(",") if key.strip())

    @property
    def max_wait_s(self) -> float:
        return self.max_wait_ms / 1000.0


def setting_names() -> frozenset[str]:
    """The environment variable of every setting: ``MT_PORT``, ``MT_BEAM``, ..."""
    return frozenset(f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields)


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """One line per ``MT_*`` variable in ``environ`` that is neither a setting nor read
    elsewhere (:data:`OTHER_VARIABLES`), with the closest setting when one is close. The
    values are not shown: a misspelt ``MT_API_KEYS`` holds secrets."""
    settings = setting_names()
    known = settings | set(OTHER_VARIABLES)
    lines = []
    for name in sorted(n for n in environ if n.upper().startswith(ENV_PREFIX)):
        if name.upper() in known:
            continue  # pydantic-settings reads the names case-insensitively
        # Compared without the prefix, which every name shares.
        close = difflib.get_close_matches(
            name.upper().removeprefix(ENV_PREFIX),
            sorted(s.removeprefix(ENV_PREFIX) for s in settings),
            n=1,
            cutoff=0.7,
        )
        hint = (
            f"did you mean {ENV_PREFIX}{close[0]}?"
            if close
            else f"the settings are listed in {SETTINGS_DOC}"
        )
        lines.append(f"{name} is not a setting and is ignored ({hint})")
    return lines


def _describe(error: dict[str, Any], overrides: Mapping[str, Any]) -> str:
    """One problem: where the value came from, what is wrong, and what the setting is."""
    location = [str(part) for part in error.get("loc", ()) if part != "__root__"]
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    if not location:
        return message
    field_name = location[0]
    source = (
        f"--{field_name.replace('_', '-')}"
        if field_name in overrides
        else f"{ENV_PREFIX}{field_name.upper()}"
    )
    value = error.get("input")
    shown = f"={value}" if isinstance(value, str | int | float) else ""
    info = Settings.model_fields.get(field_name)
    meaning = f" ({ENV_PREFIX}{field_name.upper()}: {info.description})" if info else ""
    return f"{source}{shown}: {message}{meaning}"


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, ``overrides`` winning; raises :class:`SettingsError`:
    one line for one problem, else a heading and one line per problem."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = [_describe(dict(error), overrides) for error in exc.errors()]
    if len(lines) == 1:
        raise SettingsError(f"invalid setting: {lines[0]}")
    raise SettingsError(
        f"invalid settings (every setting: {SETTINGS_DOC}):\n  " + "\n  ".join(lines)
    )
