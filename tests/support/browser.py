"""A real browser for the dashboard tests: Playwright driving Debian's chromium, every request to
another origin refused and recorded, every console error recorded; and axe-core for the
accessibility check, fetched once from the npm registry (`npm pack`) into a cache folder.

`browser()` yields a Playwright `Browser`; `Guard(origin)` attached to each page collects what
the test then asserts empty (`guard.problems`).
"""

from __future__ import annotations

import os
import subprocess
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, Request, Route, sync_playwright

CHROMIUM = "/usr/bin/chromium"
AXE_VERSION = "4.14.1"
CACHE = Path(os.environ.get("DGXIE_TEST_CACHE", Path.home() / ".cache" / "dgxie-test"))


@contextmanager
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield b
        finally:
            b.close()


class Guard:
    """Refuses (aborts) any request that leaves `origin` and records it with every console error
    and uncaught page error."""

    def __init__(self, origin: str) -> None:
        self.origin = origin.rstrip("/")
        self.problems: list[str] = []

    def attach(self, page: Page) -> Page:
        page.route("**/*", self._route)
        page.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text} ({m.location})"))
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        return page

    def _route(self, route: Route, request: Request) -> None:
        url = request.url
        if url == self.origin or url.startswith(self.origin + "/") or url.startswith("data:"):
            route.continue_()
        else:
            self.problems.append(f"request to another origin: {url}")
            route.abort()


def axe_source() -> str:
    """axe.min.js of axe-core AXE_VERSION (MPL-2.0), from the npm registry once, then the cache."""
    target = CACHE / f"axe-core-{AXE_VERSION}" / "axe.min.js"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "pack", f"axe-core@{AXE_VERSION}", "--pack-destination", str(target.parent)],
                       check=True, capture_output=True, timeout=300)
        with tarfile.open(target.parent / f"axe-core-{AXE_VERSION}.tgz") as tar:
            member = tar.extractfile("package/axe.min.js")
            assert member is not None, "axe-core's package has no axe.min.js"
            target.write_bytes(member.read())
    return target.read_text()


def axe_violations(page: Page, source: str) -> list[str]:
    """The serious and critical axe-core violations of the page as it is now (WCAG 2 A/AA rules)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(source)  # through the DevTools protocol: the page's CSP does not apply
    result: dict[str, Any] = page.evaluate(
        "() => axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa']}})")
    return [f"{v['id']} ({v['impact']}): {v['help']} -> {[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"] if v["impact"] in ("serious", "critical")]
