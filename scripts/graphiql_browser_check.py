"""Drive GraphiQL in a real (headless) Chromium against a running lineagehub: a query and a
subscription, with the token in GraphiQL's Headers tab, as a user would.

    python scripts/graphiql_browser_check.py --url http://127.0.0.1:8000 --token lh_...

Needs Chromium (Debian: ``apt-get install chromium``); not part of ``make test``. It types
nothing: it puts the query into GraphiQL's editor and the token into its stored headers,
clicks Run, registers a model version over HTTP while the subscription is open, and
reads GraphiQL's result pane. Exit status 0 when both answers arrive; screenshots go to
``--shots`` (default: the working directory). Registers ``browser-check`` (a new version
each run) in the registry it is pointed at.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import websockets

QUERY = "{ registeredModels(first: 5) { totalCount nodes { name } } }"
SUBSCRIBE = "subscription { registryEvents { seq type modelName versionName } }"
RESULT = (
    "(() => { const el = document.querySelector('.result-window'); "
    "return el ? el.innerText : null })()"
)


class Page:
    """One browser tab over the Chrome DevTools Protocol."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.calls = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.calls += 1
        mine = self.calls
        await self.ws.send(json.dumps({"id": mine, "method": method, "params": params}))
        while True:
            message = json.loads(await self.ws.recv())
            if message.get("id") == mine:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    async def js(self, expression: str) -> Any:
        answer = await self.call(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        return answer.get("result", {}).get("value")

    async def until(self, expression: str, seconds: float = 20) -> Any:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            value = await self.js(expression)
            if value:
                return value
            await asyncio.sleep(0.25)
        return None

    async def screenshot(self, path: Path) -> None:
        shot = await self.call("Page.captureScreenshot", format="png")
        await asyncio.to_thread(path.write_bytes, base64.b64decode(shot["data"]))


async def run_in_graphiql(page: Page, base: str, token: str, query: str) -> None:
    """Open GraphiQL with ``query`` in its editor and the token in its headers; click Run."""
    await page.call("Page.navigate", url=f"{base}/graphql")
    await page.until("!!document.querySelector('.graphiql-query-editor .CodeMirror')")
    headers = json.dumps({"Authorization": f"Bearer {token}"})
    await page.js(f"localStorage.setItem('graphiql:headers', {json.dumps(headers)}); true")
    await page.call("Page.reload")
    await page.until("!!document.querySelector('.graphiql-query-editor .CodeMirror')")
    editor = "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror"
    await page.js(f"{editor}.setValue({json.dumps(query)}); true")
    # GraphiQL parses the editor's text a moment after it changes; it decides by the parsed
    # document whether an operation is a subscription (WebSocket) or not (HTTP).
    await asyncio.sleep(1)
    await page.js("document.querySelector('.graphiql-execute-button').click(); true")


def register(base: str, token: str) -> None:
    name = f"v{time.time_ns()}"
    body = json.dumps(
        {
            "query": "mutation($v: String!) { registerModel(input: "
            '{model: {name: "browser-check"}, version: {name: $v}}) { versionCreated } }',
            "variables": {"v": name},
        }
    ).encode()
    request = urllib.request.Request(  # noqa: S310 (the URL given)
        f"{base}/graphql",
        data=body,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 (the URL given)
        assert json.load(answer)["data"]["registerModel"]["versionCreated"]


def tabs(port: int) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=10) as answer:
        found: list[dict[str, Any]] = json.load(answer)
    return found


async def check(base: str, token: str, port: int, shots: Path) -> list[str]:
    """The failures (none: both worked)."""
    tab = next(t for t in await asyncio.to_thread(tabs, port) if t["type"] == "page")
    failures = []
    async with websockets.connect(tab["webSocketDebuggerUrl"], max_size=None) as ws:
        page = Page(ws)
        await page.call("Page.enable")
        await page.call(
            "Emulation.setDeviceMetricsOverride",
            width=1400,
            height=900,
            deviceScaleFactor=1,
            mobile=False,
        )
        await run_in_graphiql(page, base, token, QUERY)
        got = await page.until(f"{RESULT} && {RESULT}.includes('totalCount') && {RESULT}")
        await page.screenshot(shots / "graphiql-query.png")
        print("query:", (got or "nothing").replace("\n", " ")[:300])
        if not got or '"errors"' in got:
            failures.append("the query")
        await run_in_graphiql(page, base, token, SUBSCRIBE)
        await asyncio.sleep(2)  # subscribed
        await asyncio.to_thread(register, base, token)
        got = await page.until(f"{RESULT} && {RESULT}.includes('VERSION_REGISTERED') && {RESULT}")
        await page.screenshot(shots / "graphiql-subscription.png")
        shown = got or await page.js(RESULT) or "nothing"
        print("subscription:", shown.replace("\n", " ")[:300])
        if not got:
            failures.append("the subscription")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the running server")
    parser.add_argument("--token", required=True, help="a token with the writer role")
    parser.add_argument("--shots", type=Path, default=Path.cwd(), help="where screenshots go")
    parser.add_argument("--port", type=int, default=9333, help="Chromium's debugging port")
    args = parser.parse_args(argv)
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("no chromium on PATH", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="graphiql-check-") as profile:
        process = subprocess.Popen(  # noqa: S603 (a browser found on PATH, fixed arguments)
            [
                browser,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                f"--user-data-dir={profile}",
                f"--remote-debugging-port={args.port}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(3)
            failures = asyncio.run(check(args.url.rstrip("/"), args.token, args.port, args.shots))
        finally:
            process.terminate()
            process.wait(timeout=10)
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
