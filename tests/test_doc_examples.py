"""The translations the documentation shows are what the bundled models answer today.

Three forms are checked, in README.md, docs/service.md and the model cards:

* an arrow example: an input in backticks, ``→``, its translation in backticks (an input that
  starts with ``<`` is sent as ``format: "html"``; ``\\n`` in either is a line break);
* a ``curl`` example followed by the JSON it answers, as a ``#`` comment on its line or the
  next (a comment with ``...`` in it is an illustration and is not checked);
* the rows of docs/service.md's "Everyday text" table, and an ``echo "..." | mt-translate``
  line with the translation in its comment.

They run through the service in-process (or ``mt-translate`` itself), with the bundled models
on the CPU (an arrow example of the Vietnamese→English card is sent from ``vi`` to ``en``) and
the defaults a user gets (int8, each model's shortlist and beam). int8 arithmetic can differ a
little between CPU types: an example that fails on another CPU class alone sits on a
knife-edge between two translations, and is better replaced by a sturdier one.
"""

from __future__ import annotations

import io
import json
import re
import shlex
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli.translate import main as translate_main
from service.settings import Settings, bundled_model_dirs
from tests.test_service_api import serve

REPO = Path(__file__).resolve().parents[1]
CARDS = [REPO / "models" / name / "README.md" for name in ("en-vi", "vi-en")]
DOCS = [REPO / "README.md", REPO / "docs" / "service.md", *(c for c in CARDS if c.is_file())]
ARROW_PAIRS = {"models/vi-en/README.md": ("vi", "en")}  # the others translate en into vi
ARROW = re.compile(r"`([^`\n]+)`\s*→\s*`([^`]+)`")
TABLE_HEADER = "| input | the bundled model's answer |"

pytestmark = [pytest.mark.slow, pytest.mark.anyio]


@dataclass(frozen=True)
class Example:
    """One request and the answer a document shows for it."""

    where: str
    path: str
    body: dict[str, Any]
    expected: Any  # the whole JSON answer, or the translatedText alone (``whole=False``)
    status: int = 200
    whole: bool = True
    alternative: str | None = None  # one of the alternatives the answer must have
    form: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.where}: {json.dumps(self.body, ensure_ascii=False)[:60]}"


def where(doc: Path) -> str:
    return doc.relative_to(REPO).as_posix()


def _unescape(text: str) -> str:
    return text.replace("\\n", "\n")


def arrow_examples() -> list[Example]:
    examples = []
    for doc in DOCS:
        source_language, target_language = ARROW_PAIRS.get(where(doc), ("en", "vi"))
        for source, target in ARROW.findall(doc.read_text(encoding="utf-8")):
            q = _unescape(source)
            fmt = "html" if q.startswith("<") else "text"
            body = {"q": q, "source": source_language, "target": target_language, "format": fmt}
            examples.append(Example(where(doc), "/translate", body, _unescape(target), whole=False))
    return examples


def _cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip().strip("|").split("|")]


def table_examples() -> list[Example]:
    """The "Everyday text" rows: input (``html``, ``source: "auto"``, ``target: "zz"``,
    ``N alternatives`` after it), and the answer (``400 `error```, or the translation and,
    with alternatives, one of them)."""
    lines = (REPO / "docs" / "service.md").read_text(encoding="utf-8").splitlines()
    start = lines.index(TABLE_HEADER) + 2
    examples = []
    for row in lines[start:]:
        if not row.startswith("|"):
            break
        given, answer = _cells(row)[:2]
        q = _unescape(re.findall(r"`([^`]+)`", given)[0])
        body: dict[str, Any] = {"q": q, "source": "en", "target": "vi", "format": "text"}
        if ", html" in given:
            body["format"] = "html"
        for name, value in re.findall(r'`(source|target): "(\w+)"`', given):
            body[name] = value
        wanted = re.search(r"(\d+) alternatives", given)
        if wanted:
            body["alternatives"] = int(wanted.group(1))
        quoted = [_unescape(text) for text in re.findall(r"`([^`]+)`", answer)]
        if answer.startswith("400 "):
            examples.append(Example("table", "/translate", body, {"error": quoted[0]}, status=400))
            continue
        alternative = quoted[1] if wanted else None
        examples.append(
            Example("table", "/translate", body, quoted[0], whole=False, alternative=alternative)
        )
    return examples


def _curl_request(command: str) -> tuple[str, dict[str, Any], bool] | None:
    """(path, body, as a form) of a curl command, or None for one this test does not send."""
    words = shlex.split(command)
    url = next((w for w in words if w.startswith("localhost:5000/")), None)
    if url is None or "-F" in words:
        return None
    data = [words[i + 1] for i, word in enumerate(words) if word == "-d"]
    if not data:
        return None
    if any("application/json" in word for word in words):
        return url.removeprefix("localhost:5000"), json.loads(data[0]), False
    form = dict(item.split("=", 1) for item in data)
    return url.removeprefix("localhost:5000"), form, True


def curl_examples() -> list[Example]:
    examples = []
    for doc in DOCS:
        blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", doc.read_text(encoding="utf-8"), re.S)
        for block in blocks:
            lines = re.sub(r"\\\n\s*", " ", block).splitlines()
            for index, line in enumerate(lines):
                command, _, comment = line.partition("#")
                if not command.strip().startswith("curl"):
                    continue
                if not comment.strip() and index + 1 < len(lines):
                    comment = lines[index + 1].strip().removeprefix("#")
                comment = comment.strip()
                if not comment.startswith(("{", "[")) or "..." in comment:
                    continue
                request = _curl_request(command)
                if request is not None:
                    path, body, form = request
                    examples.append(Example(where(doc), path, body, json.loads(comment), form=form))
    return examples


EXAMPLES = arrow_examples() + table_examples() + curl_examples()


def test_the_documents_have_the_examples_this_test_checks() -> None:
    where = {example.where for example in EXAMPLES}
    assert {"README.md", "docs/service.md", "models/en-vi/README.md", "table"} <= where
    assert len(EXAMPLES) >= 25
    assert any(e.body.get("format") == "html" for e in EXAMPLES)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """The service as a user starts it on a CPU: every bundled model, int8, each model's
    shortlist and beam."""
    settings = Settings(
        models=",".join(str(directory) for directory in bundled_model_dirs()),
        device="cpu",
        quantize="auto",
        shortlist="auto",
        beam=None,
        cache_size=0,
    )
    async with serve(settings) as client:
        yield client


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
async def test_a_documented_answer_is_what_the_bundled_model_gives(
    client: httpx.AsyncClient, example: Example
) -> None:
    if example.form:
        response = await client.post(example.path, data=example.body)
    else:
        response = await client.post(example.path, json=example.body)
    assert response.status_code == example.status, response.text
    answer = response.json()
    if example.whole:
        assert answer == example.expected
        return
    assert answer["translatedText"] == example.expected
    if example.alternative is not None:
        assert example.alternative in answer["alternatives"]


def cli_examples() -> list[tuple[str, str, list[str]]]:
    """``echo "TEXT" | mt-translate OPTIONS  # TRANSLATION`` lines of the README."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.findall(r'^echo "([^"]+)" \| mt-translate([^#\n]*)#\s*(.+)$', text, re.M)
    return [
        (source, translation.strip(), options.split()) for source, options, translation in found
    ]


def test_the_readme_shows_a_command_line_translation() -> None:
    assert cli_examples()


@pytest.mark.parametrize(("source", "translation", "options"), cli_examples())
def test_a_documented_command_line_translation_is_what_mt_translate_gives(
    source: str,
    translation: str,
    options: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(source + "\n"))
    assert translate_main([*options, "--device", "cpu"]) == 0
    assert capsys.readouterr().out.splitlines() == [translation]
