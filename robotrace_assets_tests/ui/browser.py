"""Headless Chromium driven over the DevTools protocol: open a page of the Dagster UI, wait
until the text that proves it rendered is on screen, and save a PNG.

The UI is a JavaScript app that fetches its data after load, so a fixed delay either wastes
time or shoots an empty page; waiting for the expected text does neither. Only Chromium and
the `websockets` package (installed with uvicorn[standard]) are needed.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from websockets.sync.client import ClientConnection, connect

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        if path := shutil.which(name):
            return path
    return None


class Page:
    """One browser tab, spoken to through its DevTools websocket."""

    def __init__(self, socket: ClientConnection) -> None:
        self._socket = socket
        self._ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        message_id = next(self._ids)
        self._socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:  # events arrive in between; only the answer to this call matters
            message = json.loads(self._socket.recv(timeout=60))
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def open(self, url: str, *, wait_for: list[str], timeout_s: float = 45) -> None:
        """Navigate and wait until every text in `wait_for` is on the page."""
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout_s
        check = " && ".join(f"document.body.innerText.includes({json.dumps(t)})" for t in wait_for)
        while time.monotonic() < deadline:
            if self.evaluate(f"!!document.body && {check}"):
                self.settle()
                return
            time.sleep(0.3)
        text = self.evaluate("document.body ? document.body.innerText.slice(0, 2000) : ''")
        raise TimeoutError(f"{url}: none of {wait_for} after {timeout_s}s; page says:\n{text}")

    def settle(self) -> None:
        """Let images decode and the layout finish after the data has arrived."""
        for _ in range(50):
            if self.evaluate("Array.from(document.images).every(i => i.complete)"):
                break
            time.sleep(0.1)
        time.sleep(0.8)

    def click_icon(self, name: str) -> None:
        """Click the button that shows the UI's icon `name` (its aria-label)."""
        found = self.evaluate(
            f"(() => {{ const icon = document.querySelector('[aria-label={name}]'); "
            "if (!icon) return false; icon.closest('button').click(); return true; })()"
        )
        assert found, f"no button with the icon {name}"
        time.sleep(0.5)

    def wait(self, seconds: float) -> None:
        """For what has no text to wait for (colours, images drawn after the data)."""
        time.sleep(seconds)

    def scroll_to_text(self, text: str) -> None:
        """Scroll the innermost scrolling element so `text` is near the top of the window."""
        self.evaluate(
            "(() => { const walker = document.createTreeWalker(document.body, "
            "NodeFilter.SHOW_TEXT); let node; while ((node = walker.nextNode())) { "
            f"if (node.textContent.includes({json.dumps(text)})) {{ "
            "node.parentElement.scrollIntoView({block: 'start'}); return true; } } "
            "return false; })()"
        )
        time.sleep(0.5)

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))


@contextmanager
def chromium_page(
    chromium: str, width: int = 1440, height: int = 900, scale: float = 1
) -> Iterator[Page]:
    """A headless Chromium with one blank tab of the given size (CSS pixels; the PNG has
    `scale` times as many); closed on exit."""
    profile = Path(tempfile.mkdtemp(prefix="robotrace-chromium-"))
    process = subprocess.Popen(
        [
            chromium,
            "--headless=new",
            "--no-sandbox",  # CI runs as root, where the sandbox cannot start
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            f"--window-size={width},{height}",
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port = _devtools_port(profile, process)
        targets = requests.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        with connect(url, max_size=64 * 1024 * 1024) as socket:
            page = Page(socket)
            page.call("Page.enable")
            page.call(
                "Emulation.setDeviceMetricsOverride",
                width=width,
                height=height,
                deviceScaleFactor=scale,
                mobile=False,
            )
            yield page
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(profile, ignore_errors=True)


def _devtools_port(profile: Path, process: subprocess.Popen[bytes]) -> int:
    """Chromium writes the port it chose into DevToolsActivePort in its profile."""
    marker = profile / "DevToolsActivePort"
    for _ in range(300):
        if marker.exists() and (lines := marker.read_text().splitlines()):
            return int(lines[0])
        if process.poll() is not None:
            raise RuntimeError(f"chromium exited with {process.returncode}")
        time.sleep(0.1)
    raise TimeoutError("chromium did not open its DevTools port")
