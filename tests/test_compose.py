"""compose.yaml's defaults are safe and cheap: the CPU-only image unless compose.gpu.yaml is
used, the load balancer on loopback unless MT_BIND_ADDRESS says otherwise, and the translators
told where they are published (for the no-API-keys warning). Read as Compose would with an
empty environment (`${VAR:-default}` / `${VAR-default}`), without needing Docker."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML comes with kubernetes-validate (see .ci/run)")

REPO = Path(__file__).resolve().parents[1]
VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?-)(?P<default>[^}]*))?\}")


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's variable substitution for the forms these files use."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, op, default = match["name"], match["op"], match["default"] or ""
        if op == ":-":
            return env.get(name) or default
        if op == "-":
            return env.get(name, default)
        return env.get(name, "")

    return VARIABLE.sub(substitute, value)


def load(*names: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The merged services of the given compose files (later files override, maps merged)."""
    merged: dict[str, Any] = {}
    for name in names:
        document = yaml.safe_load((REPO / name).read_text(encoding="utf-8"))
        for service, spec in document["services"].items():
            target = merged.setdefault(service, {})
            for key, value in spec.items():
                if isinstance(value, dict) and isinstance(target.get(key), dict):
                    target[key] = _deep_merge(target[key], value)
                else:
                    target[key] = value
    return interpolate(merged, env or {})


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _deep_merge(result[key], value)
        else:
            result[key] = value
    return result


def test_plain_compose_builds_and_runs_the_cpu_image() -> None:
    services = load("compose.yaml")
    args = services["translator"]["build"]["args"]
    assert args["TORCH_INDEX_URL"].endswith("/whl/cpu")
    assert services["translator"]["image"] == services["trainer"]["image"] == "envi-mt:cpu"
    assert "deploy" not in services["translator"]  # no GPU reservation


def test_gpu_override_builds_the_cuda_image_and_reserves_gpus() -> None:
    services = load("compose.yaml", "compose.gpu.yaml")
    assert services["translator"]["build"]["args"]["TORCH_INDEX_URL"] == ""  # PyPI: CUDA torch
    assert services["translator"]["build"]["context"] == "."  # merged, not replaced
    assert services["translator"]["image"] == services["trainer"]["image"] == "envi-mt:gpu"
    for name in ("translator", "trainer"):
        devices = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["driver"] == "nvidia"
        assert services[name]["environment"]["MT_DEVICE"] == "cuda"


def test_an_explicit_empty_torch_index_means_pypi() -> None:
    services = load("compose.yaml", env={"TORCH_INDEX_URL": ""})
    assert services["translator"]["build"]["args"]["TORCH_INDEX_URL"] == ""


def test_load_balancer_binds_loopback_unless_configured() -> None:
    default = load("compose.yaml")
    assert default["lb"]["ports"] == ["127.0.0.1:5000:8080"]
    assert default["translator"]["environment"]["MT_PUBLIC_ADDRESS"] == "127.0.0.1"
    exposed = load("compose.yaml", env={"MT_BIND_ADDRESS": "0.0.0.0", "MT_PUBLISHED_PORT": "80"})
    assert exposed["lb"]["ports"] == ["0.0.0.0:80:8080"]
    # the translators learn it, and warn at start-up when MT_API_KEYS is empty
    assert exposed["translator"]["environment"]["MT_PUBLIC_ADDRESS"] == "0.0.0.0"
    # each replica's own debugging port is on loopback only
    assert default["translator"]["ports"] == ["127.0.0.1::5000"]
