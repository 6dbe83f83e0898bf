"""A real `suanli serve --demo` and Debian's Chromium driven by Playwright, for the console.

The tests skip when Playwright or Chromium is missing, and fail instead under CI=true (CI
installs both: .ci/run). Screenshots of every page are saved under the test's tmp dir; with
SUANLI_CONSOLE_DOCS_IMG=<dir> the ones docs/console.md shows are copied there too.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import Node, drop_schema, database_env, start_node
from tests.e2e.test_jobs_e2e import FAST

CHROMIUM = os.environ.get("SUANLI_CHROMIUM", "/usr/bin/chromium")
DOCS_IMG = os.environ.get("SUANLI_CONSOLE_DOCS_IMG")
VIEWPORT = {"width": 1200, "height": 800}
TIMEOUT_MS = 20_000


def browser_missing(why: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{why} (under CI the console's browser tests must run)", pytrace=False)
    pytest.skip(why)


@pytest.fixture(scope="module")
def console_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """One demo node for the module's tests (they run in one xdist group)."""
    workdir = tmp_path_factory.mktemp("console-node")
    storage = database_env(workdir)
    node = start_node(workdir, "--demo", env={**storage, **FAST})
    assert node.demo_key and node.demo_provider_key and node.operator_key, node.output.read_text()
    yield node
    node.stop()
    drop_schema(storage)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        browser_missing("Playwright is not installed: pip install playwright")
    if not Path(CHROMIUM).exists():
        browser_missing(f"Chromium is not at {CHROMIUM}: apt-get install -y chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=["--no-sandbox", "--disable-gpu"])
        yield launched
        launched.close()


@dataclass
class Visit:
    """A browser context on the console: what it requested, and where its screenshots go."""

    page: Any
    context: Any
    origin: str
    shots: Path
    requested: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    def goto(self, path: str) -> Any:
        response = self.page.goto(self.origin + path)
        self.page.wait_for_load_state("networkidle")
        return response

    def shot(self, name: str, docs_name: str | None = None) -> Path:
        target = self.shots / f"{name}.png"
        self.page.screenshot(path=str(target))
        if DOCS_IMG and docs_name:
            Path(DOCS_IMG).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(target, Path(DOCS_IMG) / docs_name)
        return target

    def sign_in(self, key: str) -> None:
        self.goto("/")
        assert "/login" in self.page.url
        self.page.get_by_label("API key").fill(key)
        self.page.keyboard.press("Enter")  # the form works from the keyboard
        self.page.wait_for_url(self.origin + "/")


@pytest.fixture
def visit(browser: Any, console_node: Node, tmp_path: Path) -> Iterator[Callable[[], Visit]]:
    """New browser contexts on the demo node; each refuses, and records, any request to
    another origin (issue 17: no page requests any other host)."""
    made: list[Visit] = []
    origin = console_node.url

    def make() -> Visit:
        context = browser.new_context(viewport=VIEWPORT, locale="en-GB",
                                      accept_downloads=True)
        context.set_default_timeout(TIMEOUT_MS)
        shots = tmp_path / "screenshots"
        shots.mkdir(exist_ok=True)
        found = Visit(context.new_page(), context, origin, shots)

        def route(route: Any) -> None:
            url = route.request.url
            found.requested.append(url)
            parts = urlsplit(url)
            if f"{parts.scheme}://{parts.netloc}" != origin:
                found.foreign.append(url)
                route.abort()
            else:
                route.continue_()

        context.route("**/*", route)
        made.append(found)
        return found

    yield make
    for found in made:
        found.context.close()
    for found in made:
        assert found.requested, "the page requested nothing at all"
        assert not found.foreign, f"requests to other hosts: {found.foreign}"
