"""The web page in a real browser: headless Chromium (via selenium) against a real `mt-serve`.

The server runs as a subprocess on a free loopback port with the session's tiny untrained model
(`tiny_model_dir`), so translations are gibberish: the tests check that what the server answers
is what the page shows (translation, alternatives, one attention grid per segment with the right
shape, the server's own error message), not particular words.

Needs Debian's `chromium` and `chromium-driver` (scripts/install-browser.sh) and selenium (the
`dev` extra); without them the tests skip and say why. The tests write only to temporary
directories (the full-page screenshot included): the README's docs/screenshot.png is made with
the shipped model by `python scripts/screenshot.py`, never by a test. Set MT_BROWSER_MODEL_DIR
to run the tests against another model directory.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from model.text.tokenizer import Tokenizers
from tests.conftest import save_vi_en
from tests.test_service_process import clean_env, free_port, mt_serve_command

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
CHAR_LIMIT = 200
# Words from the tiny model's made-up training vocabulary (see conftest.py); two sentences.
SENTENCES = "I love the big city. We see a small cat and the dog today."
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--no-proxy-server",
    "--window-size=1100,900",
]
WAIT_S = 20.0


def _first_file(*candidates: str | None) -> str | None:
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="module")
def chromium_paths() -> tuple[str, str]:
    """(chromium, chromedriver), or a skip saying what is missing."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("selenium is not installed (pip install -e '.[dev]')")
    chromium = _first_file(
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
        "/usr/bin/chromium",
        "/usr/lib/chromium/chromium",
    )
    driver = _first_file(shutil.which("chromedriver"), "/usr/bin/chromedriver")
    if chromium is None or driver is None:
        missing = " and ".join(
            name for name, path in (("chromium", chromium), ("chromedriver", driver)) if not path
        )
        pytest.skip(f"{missing} not installed (run scripts/install-browser.sh)")
    return chromium, driver


def _http(url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """GET (or POST JSON) and return (status, decoded JSON body), errors included."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw)
        except ValueError:
            return error.code, raw.decode(errors="replace")


@contextmanager
def running_server(tmp_path_factory: pytest.TempPathFactory, **settings: str) -> Iterator[str]:
    """A real `mt-serve` process with ``settings`` (MT_* variables) on a free loopback port;
    yields its base URL."""
    port = free_port()
    env = clean_env(
        **settings,
        MT_HOST="127.0.0.1",
        MT_PORT=str(port),
        MT_CHAR_LIMIT=str(CHAR_LIMIT),
        MT_TORCH_THREADS="1",
    )
    log_path = tmp_path_factory.mktemp("mt-serve") / "server.log"
    base = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            mt_serve_command(), cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"mt-serve exited with {process.returncode}:\n{log_path.read_text()[-3000:]}"
                )
            try:
                status, _ = _http(f"{base}/ready")
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mt-serve not ready after 60 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def server(
    chromium_paths: tuple[str, str],
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """A real `mt-serve` process with one model (English→Vietnamese); yields its base URL."""
    override = os.environ.get("MT_BROWSER_MODEL_DIR")
    model_dir = Path(override) if override else request.getfixturevalue("tiny_model_dir")
    with running_server(tmp_path_factory, MT_MODEL_DIR=str(model_dir)) as base:
        yield base


@pytest.fixture(scope="module")
def two_way_server(
    chromium_paths: tuple[str, str],
    tiny_model_dir: Path,
    tiny_tokenizers: Tokenizers,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """A real `mt-serve` process with two tiny models, English→Vietnamese and back."""
    vi_en = save_vi_en(tiny_tokenizers, tmp_path_factory.mktemp("models") / "vi-en")
    with running_server(tmp_path_factory, MT_MODELS=f"{tiny_model_dir},{vi_en}") as base:
        yield base


@pytest.fixture(scope="module")
def browser(
    chromium_paths: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = chromium_paths
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    log_path = tmp_path_factory.mktemp("chromedriver") / "chromedriver.log"
    service = Service(executable_path=driver_path, log_output=str(log_path))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


# --------------------------------------------------------------------------- helpers


def _wait(driver: Any, condition: Any, message: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S, poll_frequency=0.1).until(condition, message)


def _open_page(driver: Any, base: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{base}/")
    # The counter shows the server's limit once GET /frontend/settings has been read.
    _wait(
        driver,
        lambda d: f"/ {CHAR_LIMIT}" in d.find_element(By.ID, "char-counter").text,
        "the character counter never showed the server's charLimit",
    )


def _wait_for_outcome(driver: Any) -> None:
    """Until the page shows a translation or an error."""
    from selenium.webdriver.common.by import By

    def done(d: Any) -> bool:
        if d.find_element(By.ID, "error").text.strip():
            return True
        result = d.find_element(By.ID, "result")
        busy = d.find_element(By.ID, "result-panel").get_attribute("aria-busy") == "true"
        return not busy and "placeholder" not in (result.get_attribute("class") or "")

    _wait(driver, done, "neither a translation nor an error appeared")


def _heatmap_shapes(driver: Any) -> list[tuple[int, int, int]]:
    """(rows, columns, cells) for each heatmap table on the page."""
    return [
        tuple(shape)
        for shape in driver.execute_script(
            """return [...document.querySelectorAll('#heatmaps table.heatmap')].map(t => [
                t.tBodies[0].rows.length,
                t.tHead.rows[0].querySelectorAll('th[scope=col]').length,
                t.querySelectorAll('tbody td[data-r]').length]);"""
        )
    ]


def _save_full_page_screenshot(driver: Any, path: Path, width: int = 1100) -> None:
    """The whole page, by growing the viewport to it (sticky headers render reliably then)."""
    height = 900
    try:
        for _ in range(4):  # grids are capped at 70vh, so the page grows with the viewport
            driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            )
            needed = int(driver.execute_script("return document.documentElement.scrollHeight;"))
            if needed <= height:
                break
            height = needed
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))


# --------------------------------------------------------------------------- tests


def test_translate_shows_translation_alternatives_and_one_heatmap_per_segment(
    browser: Any, server: str, tmp_path: Path
) -> None:
    from selenium.webdriver import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _open_page(browser, server)
    # No API keys configured: the key field stays hidden (`hidden` beats `.row{display:flex}`).
    assert not browser.find_element(By.ID, "api-key-row").is_displayed()
    assert not browser.find_element(By.ID, "api-key").is_displayed()
    source = browser.find_element(By.ID, "source")
    assert browser.find_element(By.CSS_SELECTOR, "label[for=source]").text.strip()
    source.send_keys(SENTENCES)
    assert browser.find_element(By.ID, "char-counter").text.startswith(f"{len(SENTENCES)} /")
    browser.find_element(By.ID, "translate-btn").click()
    _wait_for_outcome(browser)
    assert browser.find_element(By.ID, "error").text == ""

    # The same request straight to the API: the page must show exactly that.
    status, expected = _http(
        f"{server}/translate",
        {"q": SENTENCES, "source": "en", "target": "vi", "alternatives": 3, "attention": True},
    )
    assert status == 200, expected
    assert isinstance(expected["translatedText"], str) and expected["translatedText"].strip()
    assert browser.find_element(By.ID, "result").text == expected["translatedText"]

    alternatives = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#alternatives li")]
    assert alternatives == expected.get("alternatives", [])

    segments = expected["attention"]
    assert len(segments) >= 1
    shapes = _heatmap_shapes(browser)
    assert shapes == [
        (
            len(s["target_tokens"]),
            len(s["source_tokens"]),
            len(s["target_tokens"]) * len(s["source_tokens"]),
        )
        for s in segments
    ]
    assert all(rows > 0 and cols > 0 for rows, cols, _ in shapes)

    # Hovering a cell shows its weight (the server's number, to 3 decimals).
    cell = browser.find_element(
        By.CSS_SELECTOR, '#heatmaps table.heatmap td[data-r="0"][data-c="0"]'
    )
    ActionChains(browser).move_to_element(cell).perform()
    readout = browser.find_element(By.CSS_SELECTOR, "#heatmaps figure .readout")
    weight = f"{segments[0]['weights'][0][0]:.3f}"
    _wait(browser, lambda d: readout.text.endswith(weight), f"hover readout never showed {weight}")
    assert segments[0]["source_tokens"][0] in readout.text

    # Keyboard: the grid is one Tab stop and the arrow keys move between cells.
    cell.click()
    cell.send_keys(Keys.ARROW_RIGHT if shapes[0][1] > 1 else Keys.ARROW_DOWN)
    focused = browser.switch_to.active_element
    assert focused.tag_name == "td"
    assert (focused.get_attribute("data-r"), focused.get_attribute("data-c")) != ("0", "0") or (
        shapes[0][:2] == (1, 1)
    )

    # The copy button is enabled once there is something to copy.
    assert browser.find_element(By.ID, "copy-btn").is_enabled()

    # The full-page capture works (into a temporary file: tests never touch tracked files).
    screenshot = tmp_path / "page.png"
    _save_full_page_screenshot(browser, screenshot)
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_over_limit_text_shows_the_servers_error_and_ctrl_enter_submits(
    browser: Any, server: str
) -> None:
    from selenium.webdriver import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _open_page(browser, server)
    text = "the big cat " * 20  # 240 characters > CHAR_LIMIT
    source = browser.find_element(By.ID, "source")
    source.send_keys(text)
    counter = browser.find_element(By.ID, "char-counter")
    assert counter.text.startswith(f"{len(text)} / {CHAR_LIMIT}")
    assert "over" in (counter.get_attribute("class") or "")
    assert source.get_attribute("aria-invalid") == "true"

    ActionChains(browser).key_down(Keys.CONTROL).send_keys(Keys.ENTER).key_up(
        Keys.CONTROL
    ).perform()
    _wait_for_outcome(browser)

    status, answer = _http(f"{server}/translate", {"q": text, "source": "en", "target": "vi"})
    assert status in (400, 413), answer
    error = browser.find_element(By.ID, "error")
    assert error.get_attribute("role") == "alert"
    assert error.text == answer["error"]
    assert error.text
    assert browser.find_element(By.ID, "result").text == "The translation will appear here."
    assert _heatmap_shapes(browser) == []


def test_phone_width_page_works_by_keyboard_without_horizontal_scrolling(
    browser: Any, server: str
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 375, "height": 740, "deviceScaleFactor": 2, "mobile": True},
    )
    try:
        _open_page(browser, server)
        source = browser.find_element(By.ID, "source")
        source.send_keys("we like the small house in the big country and the cat sees a dog today.")
        # Tab from the text box reaches the Translate button; Enter presses it.
        source.send_keys(Keys.TAB)
        assert browser.switch_to.active_element.get_attribute("id") == "translate-btn"
        browser.switch_to.active_element.send_keys(Keys.ENTER)
        _wait_for_outcome(browser)
        assert browser.find_element(By.ID, "error").text == ""
        assert browser.find_element(By.ID, "result").text.strip()
        assert _heatmap_shapes(browser)
        widths = browser.execute_script(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];"
        )
        assert widths[0] <= widths[1], f"page scrolls sideways at 375 px: {widths}"
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_swap_is_hidden_without_the_reverse_model(browser: Any, server: str) -> None:
    from selenium.webdriver.common.by import By

    _open_page(browser, server)
    _wait(
        browser,
        lambda d: d.find_element(By.ID, "to-language").text == "Vietnamese",
        "the page never showed the pair it translates",
    )
    assert not browser.find_element(By.ID, "swap-btn").is_displayed()
    assert browser.find_element(By.ID, "title").text == "English → Vietnamese translator"


def test_swap_turns_the_translation_around(browser: Any, two_way_server: str) -> None:
    """The swap button (shown: the server translates both ways) swaps the languages and moves
    the translation into the text box; the next translation goes Vietnamese→English."""
    from selenium.webdriver.common.by import By

    _open_page(browser, two_way_server)
    swap = _wait(
        browser,
        lambda d: (
            d.find_element(By.ID, "swap-btn").is_displayed() and d.find_element(By.ID, "swap-btn")
        ),
        "the swap button never showed with both directions served",
    )
    browser.find_element(By.ID, "source").send_keys(SENTENCES)
    browser.find_element(By.ID, "translate-btn").click()
    _wait_for_outcome(browser)
    assert not browser.find_element(By.ID, "error").text.strip()
    translation = browser.find_element(By.ID, "result").text
    swap.click()
    assert browser.find_element(By.ID, "source").get_attribute("value") == translation
    assert browser.find_element(By.ID, "source-label").text == "Vietnamese text"
    assert browser.find_element(By.ID, "result-heading").text == "English translation"
    assert browser.find_element(By.ID, "source").get_attribute("lang") == "vi"
    browser.find_element(By.ID, "translate-btn").click()
    _wait_for_outcome(browser)
    assert not browser.find_element(By.ID, "error").text.strip()
    _, expected = _http(
        f"{two_way_server}/translate",
        {"q": translation, "source": "vi", "target": "en", "alternatives": 3},
    )
    assert browser.find_element(By.ID, "result").text == expected["translatedText"].strip()
