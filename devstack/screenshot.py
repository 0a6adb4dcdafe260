"""Screenshot a page of the running stack's Airflow UI as the admin user (headless Chromium + CDP).

    .venv/bin/python -m devstack.screenshot /dags/dtaas_sample out.png [--wait 8]

Needs Debian's chromium (`apt-get install chromium`). The JWT from /auth/token is set as the
``_token`` cookie the UI reads, then the page is loaded and captured.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import requests

from devstack import airflow_stack
from devstack.config import StackConfig

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


async def _capture(url: str, token: str, out: Path, wait: float, port: int = 9333) -> None:
    import websockets

    with tempfile.TemporaryDirectory(prefix="dtaas-chromium-", ignore_cleanup_errors=True) as profile:
        browser = subprocess.Popen(
            [
                "chromium",
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--remote-debugging-port={port}",
                "--window-size=1500,1000",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            page = _first_page(port)
            async with websockets.connect(page["webSocketDebuggerUrl"], max_size=50_000_000) as ws:
                counter = 0

                async def call(method: str, **params: Any) -> dict[str, Any]:
                    nonlocal counter
                    counter += 1
                    await ws.send(json.dumps({"id": counter, "method": method, "params": params}))
                    while True:
                        message = json.loads(await ws.recv())
                        if message.get("id") == counter:
                            return dict(message.get("result", {}))

                base = url.split("/", 3)[:3]
                await call("Network.enable")
                await call("Network.setCookie", name="_token", value=token, url="/".join(base) + "/")
                await call(
                    "Emulation.setDeviceMetricsOverride",
                    width=1500,
                    height=1000,
                    deviceScaleFactor=1,
                    mobile=False,
                )
                await call("Page.navigate", url=url)
                await asyncio.sleep(wait)
                shot = await call("Page.captureScreenshot", format="png")
                out.write_bytes(base64.b64decode(shot["data"]))
        finally:
            browser.kill()
            browser.wait()


def _first_page(port: int) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json") as response:
                return next(t for t in json.load(response) if t["type"] == "page")
        except (OSError, StopIteration):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="UI path, e.g. /dags/dtaas_sample")
    parser.add_argument("out", type=Path)
    parser.add_argument("--wait", type=float, default=8.0, help="seconds to let the page render")
    args = parser.parse_args()
    cfg = StackConfig.from_env()
    token = requests.post(
        f"{cfg.api_url}/auth/token",
        timeout=30,
        json={"username": airflow_stack.ADMIN_USER, "password": airflow_stack.admin_password(cfg)},
    ).json()["access_token"]
    asyncio.run(_capture(cfg.api_url + args.path, token, args.out, args.wait))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
