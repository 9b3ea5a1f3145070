"""Every README command works on a fresh clone as written.

The README's ``bash`` blocks are parsed into commands. For each one, what it names must exist:
repository files (or files that an earlier README command creates), the options of the
project's own commands (checked against their ``--help``), Python modules run with ``-m``,
Compose files, services and profiles, Kubernetes manifests, HTTP endpoints and ``MT_*``
settings. The quick commands are then run as written: the ``mt-translate`` examples in a
temporary directory, and every ``curl`` example against a real ``mt-serve``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DATA_PREFIX = "../shared/data/iwslt15"
SHELL_OPERATORS = {"&&", "||", "|", ";", "&", ">", ">>", "<", "2>", "&>"}
# Options whose value is a path the command creates (directory or file).
OUTPUT_OPTIONS = {"--out", "--output", "-o", "--models-root", "--hypotheses", "--report"}
PATH_SUFFIXES = (".txt", ".toml", ".png", ".jsonl", ".json", ".yaml", ".yml", ".md", ".sh")
PATH_SUFFIXES += (".py", ".en", ".vi")


@dataclass
class Command:
    block: int
    words: list[str]
    env: dict[str, str] = field(default_factory=dict)
    redirect_to: str | None = None

    def __str__(self) -> str:
        return " ".join(self.words)


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"```(?:bash|sh|shell)\n(.*?)```", text, re.S)


def parse_commands(text: str) -> list[Command]:
    """Simple commands of every shell block, in order (pipelines and lists split apart)."""
    commands: list[Command] = []
    for index, block in enumerate(shell_blocks(text)):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            lexer = shlex.shlex(line, posix=True, punctuation_chars="|&;<>")
            lexer.whitespace_split = True
            lexer.commenters = "#"
            tokens = list(lexer)
            current: list[str] = []
            redirect_next = False
            pending: Command | None = None
            for token in [*tokens, ";"]:
                if token in SHELL_OPERATORS:
                    if current:
                        pending = _make_command(index, current)
                        commands.append(pending)
                        current = []
                    redirect_next = token in {">", ">>"}
                    continue
                if redirect_next and pending is not None:
                    pending.redirect_to = token
                    redirect_next = False
                    continue
                current.append(token)
    return commands


def _make_command(block: int, tokens: list[str]) -> Command:
    env: dict[str, str] = {}
    while tokens and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", tokens[0]):
        name, value = tokens[0].split("=", 1)
        env[name] = value
        tokens = tokens[1:]
    if tokens[:1] == ["export"]:
        for assignment in tokens[1:]:
            name, _, value = assignment.partition("=")
            env[name] = value
    return Command(block, tokens, env)


COMMANDS = parse_commands(README.read_text(encoding="utf-8"))


def test_ci_runs_the_quick_starts_install_and_test_commands() -> None:
    """.ci/run runs each install and test command of the quick start, as written."""
    quick_start = shell_blocks(README.read_text(encoding="utf-8"))[0]
    commands = [
        part.strip() for line in quick_start.splitlines() for part in line.split("#")[0].split("&&")
    ]
    wanted = [c for c in commands if c.startswith("pip install") or c == "pytest"]
    assert "pytest" in wanted and "pip install -e ." in wanted
    ci = {line.strip() for line in (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()}
    assert [c for c in wanted if c not in ci] == []


# --------------------------------------------------------------------------- options


def _entry_points() -> dict[str, str]:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return dict(pyproject["project"]["scripts"])


def _help_text(main: Callable[[list[str]], object]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    return out.getvalue()


_HELP_CACHE: dict[str, set[str]] = {}


def options_of(target: str) -> set[str]:
    """The long and short options in the --help of ``module:function`` (or a module's main)."""
    if target not in _HELP_CACHE:
        module_name, _, function = target.partition(":")
        module = importlib.import_module(module_name)
        text = _help_text(getattr(module, function or "main"))
        _HELP_CACHE[target] = set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", text))
    return _HELP_CACHE[target]


def _used_options(words: list[str]) -> list[str]:
    return [word.split("=", 1)[0] for word in words if re.match(r"--?[a-zA-Z]", word)]


def program_target(command: Command) -> tuple[str, list[str]] | None:
    """(entry point, its arguments) for the project's own commands, else None."""
    words = command.words
    scripts = _entry_points()
    if words[0] in scripts:
        return scripts[words[0]], words[1:]
    if words[0] in {"python", "python3"} and words[1:2] == ["-m"] and len(words) > 2:
        return words[2], words[3:]
    if words[0] == "torchrun" and "-m" in words:
        at = words.index("-m")
        return words[at + 1], words[at + 2 :]
    return None


def test_the_readme_has_the_commands_this_test_checks() -> None:
    programs = {command.words[0] for command in COMMANDS}
    assert {"mt-serve", "mt-translate", "mt-eval", "mt-train", "mt-retrain", "curl"} <= programs
    assert {"docker", "kubectl", "torchrun", "python"} <= programs
    assert len(COMMANDS) > 30


@pytest.mark.parametrize(
    "command",
    [c for c in COMMANDS if program_target(c) is not None],
    ids=lambda c: str(c)[:70],
)
def test_project_commands_use_existing_options_and_modules(command: Command) -> None:
    target = program_target(command)
    assert target is not None
    entry, arguments = target
    module_name = entry.partition(":")[0]
    assert importlib.util.find_spec(module_name) is not None, f"no module {module_name}"
    known = options_of(entry)
    unknown = [option for option in _used_options(arguments) if option not in known]
    assert not unknown, f"{command}: unknown options {unknown}"


# --------------------------------------------------------------------------- paths


def _looks_like_path(word: str) -> bool:
    if word.startswith(("-", "$", "{", "http://", "https://", "localhost:", "<")):
        return False
    if "://" in word or "=" in word or word.startswith("/"):  # URLs, settings, container paths
        return False
    if re.fullmatch(r"[\w.\-/]+:[\w.\-]+", word):  # an image reference (name:tag)
        return False
    return "/" in word or word.endswith(PATH_SUFFIXES)


def _created_by(command: Command) -> list[str]:
    created = [command.redirect_to] if command.redirect_to else []
    words = command.words
    for at, word in enumerate(words[:-1]):
        if word in OUTPUT_OPTIONS:
            created.append(words[at + 1])
    if words[0] == "mkdir":
        created += [w for w in words[1:] if not w.startswith("-")]
    if words[0] == "cp":
        created.append(words[-1])
    if words[:3] in (["python3", "-m", "venv"], ["python", "-m", "venv"]):
        created += [w for w in words[3:] if not w.startswith("-")]
    return [_normal(path) for path in created]


def _normal(path: str) -> str:
    return path.rstrip("/").removeprefix("./")


def _data_dir() -> Path:
    return Path(os.environ.get("MT_DATA_DIR", REPO.parent / "shared" / "data" / "iwslt15"))


def test_every_path_exists_or_an_earlier_command_creates_it() -> None:
    created: list[str] = []
    checked = 0
    missing: list[str] = []
    data = _data_dir()
    for command in COMMANDS:
        outputs = _created_by(command)
        words = command.words + [v for v in command.env.values() if _looks_like_path(v)]
        if words[0] == "curl":
            words = []  # URL paths: see the endpoint test
        for word in words:
            path = _normal(word)
            if not _looks_like_path(word) or path in outputs:
                continue
            checked += 1
            if path.startswith(DATA_PREFIX):
                # The data lives next to the clone (README: "Training and evaluation read ...").
                if data.is_dir() and not (data / path[len(DATA_PREFIX) :].lstrip("/")).exists():
                    missing.append(f"{command}: {word} (not in {data})")
                continue
            if (REPO / path).exists():
                continue
            if any(path == done or path.startswith(done + "/") for done in created):
                continue
            missing.append(f"{command}: {word}")
        created += outputs
    assert checked > 20
    assert not missing, "\n".join(missing)


def test_training_outputs_that_later_commands_use_are_what_mt_train_writes() -> None:
    """runs/tiny/best, runs/tiny/metrics.jsonl, runs/models/current: names the tools produce."""
    from training.model_store import ModelsRoot
    from training.run_dir import METRICS_FILE, RUN_ENTRIES

    text = README.read_text(encoding="utf-8")
    assert "best" in RUN_ENTRIES and METRICS_FILE in RUN_ENTRIES
    assert f"runs/tiny/{METRICS_FILE}" in text and "runs/tiny/best" in text
    current = ModelsRoot(Path("runs/models")).pointer
    assert f"MT_MODEL_DIR={current.as_posix()}" in text


# --------------------------------------------------------------------------- compose, k8s


def test_compose_and_kubectl_commands_name_existing_files_services_and_profiles() -> None:
    yaml = pytest.importorskip("yaml")
    checked = 0
    for command in COMMANDS:
        words = command.words
        if words[:2] == ["docker", "compose"]:
            files = [words[at + 1] for at, w in enumerate(words) if w == "-f"] or ["compose.yaml"]
            services: set[str] = set()
            profiles: set[str] = set()
            for name in files:
                assert (REPO / name).is_file(), f"{command}: no {name}"
                document = yaml.safe_load((REPO / name).read_text(encoding="utf-8"))
                services |= set(document["services"])
                for spec in document["services"].values():
                    profiles |= set(spec.get("profiles", []))
            for at, word in enumerate(words):
                if word == "--profile":
                    assert words[at + 1] in profiles, f"{command}: no profile {words[at + 1]}"
                if word == "--scale":
                    service = words[at + 1].split("=")[0]
                    assert service in services, f"{command}: no service {service}"
            if "run" in words:
                rest = [w for w in words[words.index("run") + 1 :] if not w.startswith("-")]
                assert rest and rest[0] in services, f"{command}: no service to run"
            checked += 1
        if words[0] == "kubectl":
            for at, word in enumerate(words):
                if word == "-f":
                    assert (REPO / words[at + 1]).exists(), f"{command}: no {words[at + 1]}"
            checked += 1
    assert checked >= 6


# --------------------------------------------------------------------------- settings, HTTP


def test_mt_variables_are_settings_or_documented_elsewhere() -> None:
    from service.settings import OTHER_VARIABLES, setting_names

    text = README.read_text(encoding="utf-8")
    used = set(re.findall(r"\bMT_[A-Z_]+\b", text))
    unknown = used - setting_names() - set(OTHER_VARIABLES)
    assert not unknown, f"README names MT_ variables that nothing reads: {sorted(unknown)}"
    assert "MT_MODEL_DIR" in used and "MT_API_KEYS" in used


def _curl_commands() -> list[str]:
    """The README's curl commands, as written (from the code blocks and the endpoint table)."""
    text = README.read_text(encoding="utf-8")
    found = [
        part.strip() for row in re.findall(r"`(curl [^`]+)`", text) for part in row.split("; ")
    ]
    for command in COMMANDS:
        if command.words[0] == "curl":
            found.append(shlex.join(command.words))
    return found


def _route_paths(routes: list[Any]) -> set[str]:
    """Every path an app serves. Newer FastAPI keeps an included router as one entry that
    holds the router (``original_router``), so those are walked too."""
    paths: set[str] = set()
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            paths |= _route_paths(included.routes)
        else:
            paths.add(getattr(route, "path", ""))
    return paths


def test_curl_examples_name_endpoints_the_service_has() -> None:
    from service.app import create_app
    from service.settings import Settings

    app = create_app(Settings())  # building the app does not load the model
    routes = _route_paths(app.routes)
    commands = _curl_commands()
    assert len(commands) >= 10
    for command in commands:
        paths = re.findall(r"localhost:5000(/[\w/]*)", command)
        assert paths, command
        for path in paths:
            assert path in routes, f"{command}: no endpoint {path}"


# --------------------------------------------------------------------------- run the quick ones


def _console_script(name: str) -> str:
    script = Path(sys.executable).with_name(name)
    if script.is_file():
        return str(script)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[dev]')")
    return found


def _translate_block() -> list[str]:
    text = README.read_text(encoding="utf-8")
    block = next(b for b in shell_blocks(text) if "mt-translate" in b)
    return [line for line in block.splitlines() if not line.startswith(("mt-eval", " "))]


@pytest.mark.slow
def test_mt_translate_examples_run_as_written(tmp_path: Path) -> None:
    """The block's mt-translate lines, verbatim, in an empty directory (the bundled model)."""
    lines = _translate_block()
    assert any(line.startswith("echo ") for line in lines)
    assert any("--input in.txt" in line for line in lines)
    script = "set -euo pipefail\n" + "\n".join(lines) + "\n"
    env = dict(os.environ)
    env["PATH"] = f"{Path(_console_script('mt-translate')).parent}{os.pathsep}{env['PATH']}"
    env.update(OMP_NUM_THREADS="1")
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    outputs = result.stdout.splitlines()
    # one translation of the echoed line, then `cat out.txt`: 2 input lines x 3 alternatives
    assert len(outputs) == 1 + 6, result.stdout
    assert outputs[0].strip() and outputs[0] != "Hello, how are you?"
    rows = [row.split("\t") for row in (tmp_path / "out.txt").read_text().splitlines()]
    assert [row[0] for row in rows] == ["0", "0", "0", "1", "1", "1"]


@pytest.fixture(scope="module")
def readme_server(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, vi_en_dir: Path
) -> Iterator[str]:
    """A real mt-serve (the tiny test models of both directions, the English→Vietnamese one
    first as in the bundled models, an admin token) for the README's curl examples."""
    from tests.test_service_process import clean_env, free_port

    port = free_port()
    env = clean_env(
        MT_MODEL_DIR=str(tiny_model_dir),
        MT_MODELS=f"{tiny_model_dir},{vi_en_dir}",
        MT_ADMIN_TOKEN="readme-token",
    )
    log_path = tmp_path_factory.mktemp("readme-server") / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [_console_script("mt-serve"), "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, log_path.read_text()
            probe = subprocess.run(
                ["curl", "-sf", "--noproxy", "*", f"http://{base}/ready"],
                capture_output=True,
                check=False,
            )
            if probe.returncode == 0:
                break
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.3)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_curl_examples_run_as_written(readme_server: str) -> None:
    """Each curl example, verbatim except for the port, answers 2xx with the shape it shows."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    env = dict(os.environ, MT_ADMIN_TOKEN="readme-token", NO_PROXY="*", no_proxy="*")
    for command in _curl_commands():
        script = command.replace("localhost:5000", readme_server)
        result = subprocess.run(
            ["bash", "-c", f'curl() {{ command curl --fail-with-body "$@"; }}\n{script}'],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        if "/translate" in command:
            assert "translatedText" in json.loads(result.stdout), result.stdout
