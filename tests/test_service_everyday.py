"""Everyday text through the HTTP API: capitals, lists, inline HTML, repeats,
language detection, file translation and the /docs page.

The tiny model is untrained, so the tests compare the service with itself (capitals against
sentence case, one line against its list item) and check structure, never particular words.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch

from model.nn.seq2seq import Seq2Seq
from model.store.checkpoint import save_model
from model.text.tokenizer import Tokenizers
from tests.conftest import tiny_config
from tests.test_service_api import serve, settings_for, translate_body

pytestmark = pytest.mark.anyio

TAG = re.compile(r"<[^>]+>")


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def client(tiny_model_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(settings_for(tiny_model_dir, char_limit=400, beam=2)) as client:
        yield client


async def translated(client: httpx.AsyncClient, q: Any, **extra: Any) -> Any:
    response = await client.post("/translate", json=translate_body(q, **extra))
    assert response.status_code == 200, response.text
    return response.json()["translatedText"]


# ------------------------------------------------------------------------------- capitals


async def test_capitals_are_translated_like_sentence_case_and_restored(
    client: httpx.AsyncClient,
) -> None:
    shouted, plain = await translated(
        client, ["WE SEE THE BIG CITY TODAY.", "We see the big city today."]
    )
    assert plain.strip() and shouted == plain.upper()
    # Title Case: translated like sentence case, first letter a capital.
    title, sentence = await translated(
        client, ["We See The Big City Today", "We see the big city today"]
    )
    assert title == sentence[:1].upper() + sentence[1:]


# ---------------------------------------------------------------------------------- lists


async def test_bullets_and_indentation_survive_line_for_line(client: httpx.AsyncClient) -> None:
    text = (
        "Our list:\n- the cat\n- a big dog\n  * the small house\n1. we see the city\n\n\ta) today"
    )
    out = await translated(client, text)
    lines, source_lines = out.split("\n"), text.split("\n")
    assert len(lines) == len(source_lines)
    for line, source in zip(lines[1:], source_lines[1:], strict=True):
        prefix = re.match(r"\s*(?:[-*]|\d\.|a\))?\s*", source)
        assert prefix is not None and line.startswith(prefix.group()), (line, source)
        assert (line == "") == (source == "")
    # Each item is translated as the sentence it is, with nothing dropped.
    item = await translated(client, "a big dog")
    assert lines[2] == f"- {item}"


# ------------------------------------------------------------------------------ inline HTML


async def test_a_sentence_across_inline_tags_is_one_sentence(client: httpx.AsyncClient) -> None:
    document = (
        '<p class="intro">I love <b>the big</b> city. We <a href="/x?a=1&amp;b=2">see</a> '
        "a <em>small</em> cat.</p><!-- keep --><ul><li>the <i>dog</i></li></ul>"
        "<script>var s = 'the dog';</script>"
    )
    response = await client.post(
        "/translate", json=translate_body(document, format="html", attention=True)
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    out = answer["translatedText"]
    # Three sentences: two in the paragraph (not one per text node), one in the list item.
    assert len(answer["attention"]) == 3
    assert Counter(TAG.findall(out)) == Counter(TAG.findall(document))
    assert out.startswith('<p class="intro">') and "<!-- keep --><ul><li>" in out
    assert out.endswith("</li></ul><script>var s = 'the dog';</script>")
    assert TAG.sub("", out).count("<") == 0  # translations are escaped
    # Tags keep their order and nesting.
    order = [tag for tag in TAG.findall(out) if not tag.startswith("<!")]
    assert order.index("<b>") < order.index("</b>") < order.index("</p>")


@pytest.mark.parametrize(
    "document",
    [
        "<b><i>misnested</b> tags</i>",
        "<p>unclosed <b>bold <i>and italic",
        "stray </b> closing tag",
        "<p>the cat <b",
        "<p>the dog <!-- never closed",
        "<a href=x>a <a href=y>nested</a> link</a>",
    ],
)
async def test_malformed_html_is_answered_and_keeps_its_tags(
    client: httpx.AsyncClient, document: str
) -> None:
    out = await translated(client, document, format="html")
    assert Counter(TAG.findall(out)) == Counter(TAG.findall(document))


# -------------------------------------------------------------------------------- repeats


async def looping_model_answer(
    directory: Path, tokenizers: Tokenizers, decoding: dict[str, int], text: str
) -> tuple[dict[str, Any], list[str]]:
    """Serve a model that says one word over and over, saved with ``decoding`` in its
    metadata, and return ``GET /model``'s decoding and the target pieces for ``text``."""
    torch.manual_seed(0)
    model = Seq2Seq(tiny_config(tokenizers))
    with torch.no_grad():
        model.decoder.output.bias[tokenizers.target.encode("nhà")[-1]] = 6.0
    metadata = {"version": "loop", "decoding": decoding}
    save_model(directory, model, tokenizers, metadata=metadata)
    async with serve(settings_for(directory, beam=2)) as client:
        info = (await client.get("/model")).json()
        body = translate_body(text, attention=True)
        answer = (await client.post("/translate", json=body)).json()
    return info["decoding"], answer["attention"][0]["target_tokens"]


async def test_the_repeat_block_of_the_model_directory_is_applied(
    tmp_path: Path, tiny_tokenizers: Tokenizers
) -> None:
    text = "we see the big city today and the small cat"
    found = {}
    for block in (0, 1):
        decoding = {"beam": 2, "block_ngram_repeat": block}
        shown, found[block] = await looping_model_answer(
            tmp_path / f"block-{block}", tiny_tokenizers, decoding, text
        )
        assert shown["block_ngram_repeat"] == block
    assert len(set(found[0])) < len(found[0])  # without the block it repeats
    assert len(set(found[1])) == len(found[1])  # with n=1 no piece comes twice


def has_third_copy(pieces: list[str]) -> bool:
    return any(pieces[i] == pieces[i + 1] == pieces[i + 2] for i in range(len(pieces) - 2))


async def test_the_loop_guard_is_on_unless_the_model_directory_turns_it_off(
    tmp_path: Path, tiny_tokenizers: Tokenizers
) -> None:
    text = "we see the big city"
    guarded = await looping_model_answer(tmp_path / "on", tiny_tokenizers, {"beam": 2}, text)
    off = {"beam": 2, "block_loops": 0}
    unguarded = await looping_model_answer(tmp_path / "off", tiny_tokenizers, off, text)
    assert guarded[0]["block_loops"] == 4 and unguarded[0]["block_loops"] == 0
    assert has_third_copy(unguarded[1]) and not has_third_copy(guarded[1])


# ---------------------------------------------------------------------- language detection


async def test_detect_answers_like_libretranslate(client: httpx.AsyncClient) -> None:
    vietnamese = await client.post("/detect", json={"q": "Tôi yêu thành phố này."})
    assert vietnamese.status_code == 200, vietnamese.text
    (best,) = vietnamese.json()
    assert best["language"] == "vi" and 50 < best["confidence"] <= 100
    english = (await client.post("/detect", data={"q": "Where is the train station?"})).json()
    assert english[0]["language"] == "en"
    for body, message in (
        ({}, "missing q parameter"),
        ({"q": ["a", "b"]}, "q: must be a string"),
        ({"q": "   "}, "missing q parameter"),
        ({"q": "a" * 401}, "exceeds the text limit (400 characters)"),
    ):
        response = await client.post("/detect", json=body)
        assert response.status_code == 400 and message in response.json()["error"], body


async def test_source_auto_detects_and_refuses_what_is_not_english(
    client: httpx.AsyncClient,
) -> None:
    body = translate_body("We see the big city today.", source="auto")
    answer = (await client.post("/translate", json=body)).json()
    assert answer["detectedLanguage"]["language"] == "en"
    assert answer["translatedText"] == await translated(client, "We see the big city today.")
    listed = (
        await client.post("/translate", json=translate_body(["the cat.", "a dog."], source="auto"))
    ).json()
    assert [d["language"] for d in listed["detectedLanguage"]] == ["en", "en"]
    for q, where in (("Hôm nay trời đẹp quá.", "q looks"), (["the cat.", "Cảm ơn bạn"], "q[1]")):
        response = await client.post("/translate", json=translate_body(q, source="auto"))
        assert response.status_code == 400
        error = response.json()["error"]
        assert where in error and "Vietnamese (vi" in error and "only English" in error


async def test_source_and_target_are_required(client: httpx.AsyncClient) -> None:
    for missing in ("source", "target"):
        body = {key: value for key, value in translate_body().items() if key != missing}
        response = await client.post("/translate", json=body)
        assert response.status_code == 400
        assert response.json() == {"error": f"Invalid request: missing {missing} parameter"}


# ------------------------------------------------------------------------ file translation


async def upload(
    client: httpx.AsyncClient, name: str, content: bytes, **fields: str
) -> httpx.Response:
    data = {"source": "en", "target": "vi", **fields}
    return await client.post("/translate_file", data=data, files={"file": (name, content)})


async def test_translate_file_txt_and_html(client: httpx.AsyncClient) -> None:
    text = "We see the big city.\n- the cat\n- a dog\n"
    response = await upload(client, "notes.txt", text.encode())
    assert response.status_code == 200, response.text
    url = response.json()["translatedFileUrl"]
    assert url.startswith("http://mt.test/download_file/") and url.endswith("/notes.txt")
    download = await client.get(url)
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/plain")
    assert 'filename="notes.txt"' in download.headers["content-disposition"]
    assert download.text == await translated(client, text)

    page = "<html><body><p>I love <b>the</b> city.</p></body></html>"
    response = await upload(client, "page.html", page.encode())
    html_out = (await client.get(response.json()["translatedFileUrl"])).text
    assert html_out == await translated(client, page, format="html")
    assert (await client.get("/frontend/settings")).json()["supportedFilesFormat"] == [
        ".htm",
        ".html",
        ".txt",
    ]


async def test_translate_file_errors_are_clear(client: httpx.AsyncClient) -> None:
    cases = [
        (await upload(client, "a.pdf", b"%PDF-1.4"), "pdf is not supported"),
        (await upload(client, "a.txt", b"\xff\xfe\x00x"), "not UTF-8 text"),
        (await upload(client, "a.txt", b"  \n"), "the file is empty"),
        (await upload(client, "a.txt", b"the cat. " * 60), "exceeds the text limit (400"),
        (await upload(client, "a.txt", b"the cat", target="fr"), "fr is not supported"),
        (await upload(client, "a.txt", "Cảm ơn bạn".encode(), source="auto"), "Vietnamese"),
        (await client.post("/translate_file", data={"source": "en"}), "multipart"),
        (
            await client.post(
                "/translate_file", data={"source": "en"}, files={"other": ("x", b"")}
            ),
            "missing file parameter",
        ),
    ]
    for response, message in cases:
        assert response.status_code == 400 and message in response.json()["error"], message
    assert (await client.get("/download_file/nope/a.txt")).status_code == 404


# --------------------------------------------------------------------------------- /docs


async def test_the_docs_page_is_local_and_has_request_schemas(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    scripts = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert "/docs-assets/swagger-ui-bundle.js" in scripts
    assert all(url.startswith("/") for url in scripts), scripts  # nothing from a CDN
    for asset in ("/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css"):
        assert (await client.get(asset)).status_code == 200
    spec = (await client.get("/openapi.json")).json()
    translate = spec["paths"]["/translate"]["post"]["requestBody"]["content"]
    schema = translate["application/json"]["schema"]
    assert {"q", "source", "target"} <= set(schema["required"])
    assert schema["example"]["q"]
    assert (
        "q"
        in spec["paths"]["/detect"]["post"]["requestBody"]["content"]["application/json"]["schema"][
            "properties"
        ]
    )
    assert (
        "file"
        in spec["paths"]["/translate_file"]["post"]["requestBody"]["content"][
            "multipart/form-data"
        ]["schema"]["properties"]
    )
