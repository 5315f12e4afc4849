"""The run report in a real headless Chromium: what a user sees, and that hostile input stays text.

Needs Debian's ``chromium`` (``apt-get install chromium``) and Playwright for Python (a dev
dependency), which drives the system browser through ``executable_path`` (no downloaded
browser). The reports are served over HTTP on 127.0.0.1 by the package's own report server.
Skipped, saying so, when no Chromium is installed.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_report import IMG_ATTACK, SCRIPT, run, write_project

from curifactory_like.reporting.serve import make_report_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium installed (Debian: apt-get install chromium); the report is not "
    "checked in a real browser",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def served(project: Any) -> Iterator[tuple[Any, str]]:
    """The project (with the report experiments) and the URL its reports folder is served at."""
    write_project(project)
    reports = project.root / "reports"
    reports.mkdir(exist_ok=True)
    server = make_report_server(str(reports), port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    yield project, f"http://{host}:{port}"
    server.shutdown()
    server.server_close()
    thread.join()


class Visit:
    """A page opened in the browser, with its console errors and any dialogs it raised."""

    def __init__(self, browser: Any, url: str) -> None:
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        self.page.on("dialog", self._dialog)
        self.page.on("requestfailed", lambda r: self.errors.append(f"request failed: {r.url}"))
        response = self.page.goto(url, wait_until="load")
        assert response is not None and response.status == 200, url

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visit(browser: Any) -> Iterator[Any]:
    """Open pages; every one is closed after the test."""
    opened: list[Visit] = []

    def open_page(url: str) -> Visit:
        opened.append(Visit(browser, url))
        return opened[-1]

    yield open_page
    for page in opened:
        page.close()


def report_url(base: str, manager: Any) -> str:
    return f"{base}/{manager.get_reference_name()}/index.html"


def test_graph_table_and_figure_are_visible(served: tuple[Any, str], visit: Any) -> None:
    """The stage graph SVG, a DataFrame table and the figure show, with no console errors."""
    _, base = served
    manager = run("rep")
    shown = visit(report_url(base, manager))
    page = shown.page
    graph = page.locator("svg.dag")
    assert graph.is_visible()
    box = graph.bounding_box()
    assert box is not None and box["width"] > 100 and box["height"] > 50
    assert page.locator("svg.dag g.node.stage").count() == 7
    assert page.locator("svg.dag g.node.stage.computed").first.is_visible()
    edge = page.locator("svg.dag g.edge path").first
    assert edge.evaluate("p => [getComputedStyle(p).fill, getComputedStyle(p).stroke]") == [
        "none",
        "rgb(75, 85, 99)",
    ]
    table = page.locator("table.dataframe").first
    assert table.is_visible()
    assert table.locator("td").first.inner_text().strip() == "0"
    figure = page.locator("img[src*='totals_figure']")
    assert figure.is_visible()
    assert figure.evaluate("img => img.complete && img.naturalWidth > 0")
    assert page.locator("#stage_detail table.calls").is_visible()
    assert shown.errors == []


def test_table_of_contents_jumps_to_reportables(served: tuple[Any, str], visit: Any) -> None:
    """Clicking a reportable in the table of contents scrolls its (percent-encoded) anchor into view."""
    _, base = served
    page = visit(report_url(base, run("rep"))).page
    page.locator("#toc a", has_text="(Aggregate)_compare_image").click()
    in_view = page.evaluate(
        """() => {
            const target = document.getElementById(decodeURIComponent(location.hash.slice(1)));
            const box = target.getBoundingClientRect();
            return target !== null && box.top >= -1 && box.top < window.innerHeight;
        }"""
    )
    assert in_view


def test_hostile_input_fires_nothing(served: tuple[Any, str], visit: Any) -> None:
    """A <script> parameter set name and HTML values show as text: no dialog, no new element."""
    _, base = served
    shown = visit(report_url(base, run("hostile")))
    page = shown.page
    page.wait_for_timeout(300)  # give any injected handler the chance to fire
    assert shown.dialogs == []
    assert page.evaluate("() => document.querySelectorAll('script').length") == 0
    assert page.evaluate("() => document.querySelectorAll('[onerror]').length") == 0
    sources = page.evaluate("() => [...document.images].map(img => img.getAttribute('src'))")
    assert all(src.startswith("reportables/") for src in sources)
    body = page.locator("body").inner_text()
    assert SCRIPT in body
    assert IMG_ATTACK in body
    assert page.locator("svg.dag").is_visible()
    assert shown.errors == []


def test_runs_index_links_to_reports(served: tuple[Any, str], visit: Any) -> None:
    """reports/index.html lists the runs and its links open their reports."""
    _, base = served
    first = run("rep")
    second = run("failing", "rep")
    shown = visit(f"{base}/index.html")
    page = shown.page
    rows = page.locator("table.runs tbody tr")
    assert rows.count() == 2
    assert "ERROR" in rows.nth(0).inner_text()
    assert "COMPLETE" in rows.nth(1).inner_text()
    page.locator("td.reference a", has_text=first.get_reference_name()).click()
    page.wait_for_load_state("load")
    assert page.url == report_url(base, first)
    assert page.locator("h1#title").inner_text() == "Report: rep - 1"
    assert second.get_reference_name() != first.get_reference_name()
    assert shown.errors == []


def test_latest_report_is_served(served: tuple[Any, str], visit: Any) -> None:
    """reports/_latest/ opens the newest report in the browser."""
    project, base = served
    run("rep")
    newest = run("rep")
    shown = visit(f"{base}/_latest/index.html")
    assert newest.get_reference_name() in shown.page.locator("#info .reference").inner_text()
    assert Path(project.root / "reports" / "_latest" / "index.html").is_file()
    assert shown.errors == []


def test_plan_section_shows_what_the_run_set_out_to_do(served: tuple[Any, str], visit: Any) -> None:
    """The Plan section is reachable from the contents and lists the computed calls with reasons."""
    _, base = served
    manager = run("rep")
    page = visit(report_url(base, manager)).page
    page.locator("#toc a", has_text="Plan").click()
    section = page.locator("#plan")
    assert section.is_visible()
    assert "compute" in section.locator("p.plan-totals").inner_text()
    rows = section.locator("table.plan-calls tbody tr")
    computed = sum(1 for c in manager.runtime.calls if c["action"] == "computed")
    assert rows.count() == computed > 0
    assert "artifact missing" in rows.first.inner_text()
