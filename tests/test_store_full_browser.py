"""A reproduction's report in a real headless Chromium: the block, the audit table, the link."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from _projects import output, registry_runs, run_cli
from test_report_browser import CHROMIUM, browser, visit  # noqa: F401 - fixtures
from test_reproduce_audit import clock_project
from test_store_full import store_full_run

from curifactory_like.reporting.serve import make_report_server

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed")


def test_audit_report_shows_table_and_links_to_the_original(
    tmp_path: Path, visit: Any  # noqa: F811 - the fixture imported above
) -> None:
    """Served over HTTP, the report shows the failing row and its link opens the original."""
    root = clock_project(tmp_path / "proj", nondeterministic=False)
    folder = store_full_run(root, "clock", "-p", "clock", "--names", "a")
    result = run_cli(root, "reproduce", folder.name, "--audit", "--quiet")
    assert result.returncode == 1, output(result)
    reference = registry_runs(root)[-1]["reference"]
    server = make_report_server(str(root / "reports"), port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        shown = visit(f"http://{host}:{port}/{reference}/index.html")
        page = shown.page
        section = page.locator("#reproduction")
        assert section.is_visible()
        assert f"Reproduction of run {folder.name}" in section.locator("h2").inner_text()
        failing = page.locator("table.audit tr.audit-fail")
        assert failing.count() == 1
        assert failing.locator("td").nth(1).inner_text() == "stamp"
        assert failing.evaluate("r => getComputedStyle(r.cells[0]).color") == "rgb(185, 28, 28)"
        assert page.locator("table.audit tr.audit-ok").count() == 1
        page.locator("#original-report").click()
        page.wait_for_load_state("load")
        assert page.locator("h1#title").inner_text() == "Report: clock - 1"
        assert shown.errors == []
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
