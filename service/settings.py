"""Service settings: environment variables with the prefix ``MT_`` (pydantic-settings).

Every value is validated when the settings are built, so a typo (``MT_PORT=50OO``) stops
start-up with one line naming the variable instead of failing on the first request.
:func:`load_settings` turns pydantic's error into :class:`SettingsError` with such lines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from model.runtime.devices import parse_device
from model.store.locations import bundled_model_dir

ENV_PREFIX = "MT_"


class SettingsError(ValueError):
    """One or more settings are invalid; the message has one line per problem."""


class Settings(BaseSettings):
    """All knobs of the HTTP service; each field ``name`` is read from ``MT_NAME``."""

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
    device: Annotated[str, Field(description="torch device: auto, cpu, cuda, cuda:1")] = "auto"
    quantize: Annotated[
        Literal["auto", "int8", "off"],
        Field(
            description="int8: dynamic int8 Linear/LSTM on the CPU (about 2x faster); "
            "auto: int8 on the CPU, off on CUDA; off: float32 (bf16 on CUDA)"
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
    host: Annotated[str, Field(description="address to listen on")] = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535, description="TCP port (LibreTranslate's)")] = 5000
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
            description="searches that run in parallel, each in its own thread (default: 2 "
            "on a CPU with 2 or more cores, 1 on CUDA)",
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
    shutdown_timeout_s: Annotated[
        float, Field(ge=0, description="how long shutdown waits for queued sentences")
    ] = 30.0

    api_keys: Annotated[
        str, Field(description="comma-separated API keys; when set, /translate needs one")
    ] = ""
    admin_token: Annotated[
        SecretStr | None, Field(description="bearer token for POST /admin/reload (unset: off)")
    ] = None
    cache_size: Annotated[int, Field(ge=0, description="translation cache entries (0: off)")] = (
        10_000
    )

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

    @property
    def api_key_set(self) -> frozenset[str]:
        """The configured API keys (empty: no key needed)."""
        return frozenset(key.strip() for key in self.api_keys.split(",") if key.strip())

    @property
    def max_wait_s(self) -> float:
        return self.max_wait_ms / 1000.0


def _describe(error: dict[str, Any]) -> str:
    location = [str(part) for part in error.get("loc", ()) if part != "__root__"]
    name = f"{ENV_PREFIX}{location[0].upper()}" if location else "settings"
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    value = error.get("input")
    shown = f" (got {value!r})" if location and isinstance(value, str | int | float) else ""
    return f"{name}: {message}{shown}"


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, ``overrides`` winning; raises :class:`SettingsError`."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = [_describe(dict(error)) for error in exc.errors()]
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None
