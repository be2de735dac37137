"""A small Chrome DevTools Protocol client: real headless Chromium, driven over a websocket.

Chromium picks its own port (``--remote-debugging-port=0``) and writes it to
``<user-data-dir>/DevToolsActivePort``; we connect to the browser endpoint and talk to pages
through flattened target sessions. Console errors, uncaught exceptions and failed loads are
collected per page so tests can assert a clean load.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

CHROMIUM = os.environ.get("RACEWAY_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--remote-debugging-port=0",
]


class CDPError(RuntimeError):
    pass


class Browser:
    """One Chromium process; ``page()`` opens a tab."""

    def __init__(self, executable: str = CHROMIUM, timeout: float = 20.0) -> None:
        if not Path(executable).exists():
            raise FileNotFoundError(f"Chromium not found at {executable}")
        self.profile = tempfile.mkdtemp(prefix="raceway-chromium-")
        self.proc = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise CDPError("Chromium did not start (no DevToolsActivePort)")
            time.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        # Entered like a context manager (websockets >= 17.1 warns otherwise); closed in close().
        self.ws = connect(f"ws://127.0.0.1:{port}{path}", max_size=None, open_timeout=timeout).__enter__()
        self._ids = itertools.count(1)
        self._events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict[str, Any]:
        msg_id = next(self._ids)
        msg: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CDPError(f"timeout waiting for {method}")
            reply = json.loads(self.ws.recv(timeout=left))
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise CDPError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))
            self._events.append(reply)

    def pump(self, timeout: float = 0.05) -> None:
        """Read pending events (console messages, exceptions) without sending anything."""
        try:
            while True:
                self._events.append(json.loads(self.ws.recv(timeout=timeout)))
        except TimeoutError:
            return

    def page(self, width: int = 1400, height: int = 900) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, target, session)
        for domain in ("Page.enable", "Runtime.enable", "Log.enable"):
            self.send(domain, session=session)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=session)
        return page

    def close(self) -> None:
        try:
            if getattr(self, "ws", None) is not None:
                self.ws.close()
        finally:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
            shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    def __init__(self, browser: Browser, target: str, session: str) -> None:
        self.browser = browser
        self.target = target
        self.session = session

    def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 30.0) -> dict[str, Any]:
        return self.browser.send(method, params, self.session, timeout)

    def goto(self, url: str, ready: str = "document.readyState === 'complete'", timeout: float = 30.0) -> float:
        """Navigate and wait until ``ready`` is true; returns the seconds it took."""
        start = time.monotonic()
        self.send("Page.navigate", {"url": url})
        self.wait_for(ready, timeout)
        return time.monotonic() - start

    def eval(self, expression: str, timeout: float = 30.0) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, timeout)
        if "exceptionDetails" in result:
            raise CDPError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 45.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.eval(f"!!({expression})")
            except CDPError:
                value = False
            if value:
                return value
            if time.monotonic() > deadline:
                raise CDPError(f"timed out waiting for {expression}; errors: {self.errors()}")
            time.sleep(0.05)

    def click(self, selector: str, timeout: float = 10.0) -> None:
        """A real mouse click at the centre of the first element matching ``selector``.

        Like Playwright's actionability check, it waits until that point really hits the
        element (not a toast over it, not a node a re-render is replacing).
        """
        probe = (
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return null;"
            " e.scrollIntoView({block: 'center', inline: 'center'}); const r = e.getBoundingClientRect();"
            " const x = r.left + r.width / 2, y = r.top + r.height / 2, hit = document.elementFromPoint(x, y);"
            " return [x, y, !!hit && (hit === e || e.contains(hit))]; })()"
        )
        deadline = time.monotonic() + timeout
        while True:
            box = self.eval(probe)
            if box and box[2]:
                break
            if time.monotonic() > deadline:
                what = "no element matches" if not box else "something else covers"
                raise CDPError(f"{what} {selector}")
            time.sleep(0.05)
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": box[0], "y": box[1], "button": "left", "clickCount": 1})

    def type_text(self, selector: str, text: str) -> None:
        self.eval(f"document.querySelector({json.dumps(selector)}).focus()")
        self.send("Input.insertText", {"text": text})

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and failed network loads of this page so far."""
        self.browser.pump()
        out = []
        for msg in self.browser._events:
            if msg.get("sessionId") != self.session:
                continue
            method, params = msg.get("method"), msg.get("params", {})
            if method == "Runtime.exceptionThrown":
                d = params.get("exceptionDetails", {})
                out.append("exception: " + str(d.get("exception", {}).get("description") or d.get("text")))
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                out.append("console.error: " + " ".join(str(a.get("value", a.get("description"))) for a in params.get("args", [])))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                out.append("log: " + str(params["entry"].get("text")) + " " + str(params["entry"].get("url", "")))
        return out

    def close(self) -> None:
        self.browser.send("Target.closeTarget", {"targetId": self.target})
