#!/usr/bin/env python3
"""Regenerate docs/screenshot.png, the README's picture of the web page, with the shipped model.

    python scripts/screenshot.py                       # models/en-vi -> docs/screenshot.png
    python scripts/screenshot.py --model runs/cpu/best --out /tmp/page.png

Starts `mt-serve` with the model and the service's default settings on a free loopback port,
opens the page in headless Chromium (selenium), translates --text, points at one attention cell
and saves the whole page. Needs Debian's chromium and chromium-driver
(`scripts/install-browser.sh`) and the `dev` extra (selenium). Tests never write this file;
run this script by hand after a change to the page or the model, look at the picture, commit it.

Exit status: 0 written, 1 the page did not show a translation, 2 something is missing.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TEXT = (
    "I love the city. It never sleeps, and neither do the people who live there. "
    "Thank you for coming tonight."
)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--no-proxy-server",
    "--hide-scrollbars",
]
WIDTH = 1100


def _executable(*candidates: str | None) -> str | None:
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ready(base: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{base}/ready", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _start_server(model: Path, log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("MT_")}
    env.update(MT_MODEL_DIR=str(model), MT_HOST="127.0.0.1", MT_PORT=str(port))
    script = Path(sys.executable).with_name("mt-serve")
    command = (
        [str(script)]
        if script.is_file()
        else [sys.executable, "-c", "import sys; from cli.serve import main; sys.exit(main())"]
    )
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while not _ready(base):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"mt-serve did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.3)
    return process, base


def _capture(driver: Any, path: Path) -> None:
    """The whole page, by growing the viewport to it."""
    height = 900
    for _ in range(4):
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        needed = int(driver.execute_script("return document.documentElement.scrollHeight;"))
        if needed <= height:
            break
        height = needed
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))


def take(model: Path, out: Path, text: str, chromium: str, driver_path: str, work: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver import ActionChains
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    process, base = _start_server(model, work / "mt-serve.log")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in [*CHROMIUM_FLAGS, f"--window-size={WIDTH},900", f"--user-data-dir={work}/prof"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        wait = WebDriverWait(driver, 120, poll_frequency=0.2)
        driver.get(f"{base}/")
        wait.until(lambda d: d.find_element(By.ID, "limits").text.strip(), "no /frontend/settings")
        driver.find_element(By.ID, "source").send_keys(text)
        driver.find_element(By.ID, "translate-btn").click()
        wait.until(
            lambda d: (
                d.find_element(By.ID, "error").text.strip()
                or d.find_elements(By.CSS_SELECTOR, "#heatmaps table.heatmap")
            ),
            "no translation after 120 s",
        )
        error = driver.find_element(By.ID, "error").text.strip()
        if error:
            raise RuntimeError(f"the page shows an error: {error}")
        # Point at the strongest cell of the first grid, so the readout shows a real alignment.
        cell = driver.execute_script(
            """const cells = [...document.querySelectorAll('#heatmaps table.heatmap')][0]
                   .querySelectorAll('tbody td[data-r]');
               let best = cells[0];
               for (const c of cells) {
                 if (Number(c.dataset.w) > Number(best.dataset.w)) best = c;
               }
               return best;"""
        )
        ActionChains(driver).move_to_element(cell).perform()
        # The timing line changes every run; blank it so the picture changes only with the page.
        driver.execute_script("document.getElementById('status').textContent = '';")
        _capture(driver, out)
    finally:
        driver.quit()
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=REPO / "models" / "en-vi")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshot.png")
    parser.add_argument("--text", default=DEFAULT_TEXT, help="English text to translate")
    args = parser.parse_args(argv)
    if not (args.model / "config.json").is_file():
        print(f"screenshot: {args.model}: not a model directory", file=sys.stderr)
        return 2
    try:
        import selenium  # noqa: F401
    except ImportError:
        print("screenshot: selenium is missing (pip install -e '.[dev]')", file=sys.stderr)
        return 2
    chromium = _executable(
        shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium"
    )
    driver_path = _executable(shutil.which("chromedriver"), "/usr/bin/chromedriver")
    if chromium is None or driver_path is None:
        print(
            "screenshot: chromium/chromedriver missing (scripts/install-browser.sh)",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory(prefix="mt-screenshot-") as work:
        try:
            take(args.model, args.out, args.text, chromium, driver_path, Path(work))
        except RuntimeError as exc:
            print(f"screenshot: {exc}", file=sys.stderr)
            return 1
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
