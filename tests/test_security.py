"""Security: hostile input stays text in a real browser, the cache cannot be escaped, the report
server listens on localhost only, and nothing a run writes is world-writable.

The browser tests use the same headless Chromium (Debian's, driven by Playwright) as
``test_report_browser.py``. Every payload tries to set ``window.__pwned`` to the name of the
field it came through, in the ways an injection would run: a ``<script>`` element, an
``onerror``/``onload`` attribute, an attribute break-out and a ``javascript:`` URL. A control
page holding the same payloads unescaped proves they do fire when not escaped.
"""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _projects import command_env, experiment_command, output, run_cli, write_source, write_tiny
from test_report_browser import CHROMIUM, CHROMIUM_ARGS

from curifactory_like.reporting.serve import make_report_server


def payloads(field: str) -> list[str]:
    """Injection attempts that set ``window.__pwned`` to ``field`` if they ever execute."""
    code = f"window.__pwned='{field}'"
    return [
        f"<script>{code}</script>",
        f'<img src=x onerror="{code}">',
        f'"><svg onload="{code}">\'',
        f"javascript:{code}",
    ]


def hostile(field: str) -> str:
    """All payloads for one field, in one string."""
    return " ".join(payloads(field))


HOSTILE_PARAMS = f'''\
"""Parameter sets whose names and values are injection attempts."""

from dataclasses import dataclass, field

import curifactory_like as cf


@dataclass
class Params(cf.ExperimentParameters):
    label: str = ""
    url: str = ""
    options: dict = field(default_factory=dict)


def get_params():
    return [
        Params(
            name={hostile("param-name")!r},
            label={hostile("param-value")!r},
            url={"javascript:window.__pwned='param-url'"!r},
            options={{{hostile("param-key")!r}: {hostile("param-nested")!r}}},
        )
    ]
'''

HOSTILE_EXPERIMENT = f'''\
"""Stages whose reportables, outputs and errors carry injection attempts."""

import pandas as pd

import curifactory_like as cf
from curifactory_like.caching import JsonCacher, PickleCacher
from curifactory_like.reporting import DFReporter, JsonReporter, LinePlotReporter


@cf.stage(outputs=["text"], cachers=[JsonCacher])
def speak(record):
    record.report(JsonReporter({{"payload": {hostile("json-value")!r}}}, name={hostile("reportable-name")!r}, group={hostile("reportable-group")!r}))
    record.report(DFReporter(pd.DataFrame({{{hostile("table-header")!r}: [{hostile("table-cell")!r}]}}), name="table"))
    record.report(LinePlotReporter([1, 2, 3], name={hostile("plot-name")!r}))
    return {hostile("artifact-preview")!r}


@cf.stage(inputs=["text"], outputs=["frame"], cachers=[PickleCacher])
def tabulate(record, text):
    return pd.DataFrame({{{hostile("frame-preview")!r}: [text]}})


@cf.stage(inputs=["frame"], outputs=["never"], cachers=[JsonCacher])
def fail(record, frame):
    raise ValueError({hostile("error-message")!r})


def run(param_sets, manager):
    for param_set in param_sets:
        fail(tabulate(speak(cf.Record(manager, param_set))))
'''

PROBE = """() => ({
    pwned: window.__pwned === undefined ? null : String(window.__pwned),
    scripts: document.querySelectorAll('script').length,
    handlers: [...document.querySelectorAll('*')].flatMap(
        element => [...element.attributes].map(a => a.name).filter(n => n.startsWith('on'))),
    javascript_urls: [...document.querySelectorAll('[href],[src],[action],[formaction]')].map(
        element => element.getAttribute('href') || element.getAttribute('src') || '')
        .filter(url => url.trim().toLowerCase().startsWith('javascript:')),
})"""


@pytest.fixture(scope="module")
def hostile_reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose failed run of the hostile experiment wrote its report and runs index."""
    root = write_tiny(tmp_path_factory.mktemp("hostile"))
    write_source(root, "params/hostile.py", HOSTILE_PARAMS)
    write_source(root, "experiments/hostile.py", HOSTILE_EXPERIMENT)
    result = run_cli(root, "run", "hostile", "-p", "hostile", "--notes", hostile("notes"))
    assert result.returncode == 1, output(result)
    assert "error-message" in output(result)
    return root / "reports"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module (skipped, saying so, without Chromium)."""
    if CHROMIUM is None:
        pytest.skip("no Chromium installed (Debian: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def served(hostile_reports: Path) -> Iterator[str]:
    """The hostile reports folder served on 127.0.0.1; its base URL."""
    server = make_report_server(str(hostile_reports), port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    yield f"http://{host}:{port}"
    server.shutdown()
    server.server_close()
    thread.join()


def _visit(browser: Any, url: str) -> tuple[dict[str, Any], list[str], str]:
    """Open ``url``, click every link that stays on the page, return probe, dialogs, text."""
    context = browser.new_context()
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    try:
        page.goto(url, wait_until="load")
        page.wait_for_timeout(300)
        for link in page.locator("a[href^='#'], summary").all():
            if link.is_visible():
                link.click()
        page.mouse.move(5, 5)
        page.wait_for_timeout(100)
        return page.evaluate(PROBE), dialogs, page.locator("body").inner_text()
    finally:
        context.close()


def test_control_unescaped_payloads_do_fire(browser: Any, tmp_path: Path):
    """The payloads are live: pasted unescaped into a page, they run (so the test can fail)."""
    (tmp_path / "raw.html").write_text(
        '<html><body><a id=go href="javascript:window.__clicked=1">go</a><p>'
        + hostile("control")
        + "</p></body></html>"
    )
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto((tmp_path / "raw.html").as_uri(), wait_until="load")
        page.wait_for_timeout(300)
        assert page.evaluate("() => window.__pwned") == "control"
        page.click("#go")
        # a javascript: link runs after the click returns; wait for it (a timeout fails the test)
        page.wait_for_function("() => window.__clicked === 1", timeout=5000)
    finally:
        context.close()


@pytest.mark.parametrize("page_name", ["run", "records", "runs_index", "latest"])
def test_hostile_report_executes_nothing(
    page_name: str, served: str, hostile_reports: Path, browser: Any
):
    """Every report page shows the payloads as text and runs none of them."""
    [reference] = [p.name for p in hostile_reports.iterdir() if p.name.startswith("hostile_")]
    path = {
        "run": f"{reference}/index.html",
        "records": f"{reference}/records.html",
        "runs_index": "index.html",
        "latest": "_latest/index.html",
    }[page_name]
    if not (hostile_reports / path).exists():
        assert page_name == "records"  # only written for runs too large to show inline
        pytest.skip("this run's record details are inline in its index.html")
    probe, dialogs, text = _visit(browser, f"{served}/{path}")
    assert probe["pwned"] is None, f"payload from field {probe['pwned']!r} executed"
    assert dialogs == []
    assert probe["handlers"] == []
    assert probe["javascript_urls"] == []
    assert "<script>window.__pwned=" in text  # shown, as text
    if page_name in ("run", "latest"):
        for field in (
            "param-name",
            "param-value",
            "reportable-name",
            "json-value",
            "artifact-preview",
            "error-message",
            "notes",
        ):
            assert re.search(rf"<script>window\.__pwned=\\?'{field[:5]}", text), field
    if page_name == "runs_index":
        assert "<script>window.__pwned='notes'</script>" in text


# -------------------------------------------------------------------- cache directory escapes

ESCAPES = {
    "subdir_parent": 'JsonCacher(subdir="../outside")',
    "subdir_deep_parent": 'JsonCacher(subdir="nested/../../outside")',
    "subdir_absolute": 'JsonCacher(subdir="/tmp/cfl-outside")',
    "prefix_parent": 'JsonCacher(prefix="../outside")',
    "prefix_absolute": 'JsonCacher(prefix="/tmp/cfl-outside")',
}


@pytest.mark.parametrize("case", sorted(ESCAPES))
def test_artifact_paths_cannot_leave_the_cache(case: str, tmp_path: Path):
    """`../` and absolute subdirs/prefixes fail the run with a clear error; nothing is written."""
    root = write_tiny(tmp_path / "proj")
    write_source(
        root,
        "experiments/escape.py",
        f"""
        import curifactory_like as cf
        from curifactory_like.caching import JsonCacher


        @cf.stage(outputs=["x"], cachers=[{ESCAPES[case]}])
        def make(record):
            return 1


        def run(param_sets, manager):
            for param_set in param_sets:
                make(cf.Record(manager, param_set))
        """,
    )
    before = {p for p in tmp_path.rglob("*")} | set(Path("/tmp").glob("cfl-outside*"))
    result = run_cli(root, "run", "escape", "-p", "tiny")
    text = output(result)
    assert result.returncode != 0, text
    assert "escapes the cache directory" in text
    assert "Traceback (most recent call last)" not in text
    after = {p for p in tmp_path.rglob("*")} | set(Path("/tmp").glob("cfl-outside*"))
    new = {p for p in after - before if "outside" in str(p)}
    assert new == set()


def test_symlinked_cache_directory_is_fine(tmp_path: Path):
    """A cache directory that is itself a symlink is used normally."""
    root = write_tiny(tmp_path / "proj")
    real = tmp_path / "elsewhere" / "cache"
    real.mkdir(parents=True)
    (root / "data").mkdir()
    (root / "data" / "cache").symlink_to(real, target_is_directory=True)
    result = run_cli(root, "run", "tiny")
    assert result.returncode == 0, output(result)
    assert len([p for p in real.iterdir() if p.suffix == ".json"]) == 18
    again = run_cli(root, "run", "tiny")
    assert again.returncode == 0 and "executing" not in output(again)


# -------------------------------------------------------------------- report server


def _listening_addresses(port: int) -> set[str]:
    """Local IPv4/IPv6 addresses with a TCP socket listening on ``port`` (from /proc/net)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if int(port_hex, 16) == port and state == "0A":  # 0A: LISTEN
                found.add(address)
    return found


def test_reports_command_binds_localhost_by_default(tmp_path: Path):
    """`experiment reports` listens on 127.0.0.1 only unless --host says otherwise."""
    if not os.path.exists("/proc/net/tcp"):
        pytest.skip("no /proc/net/tcp to read listening sockets from")
    root = write_tiny(tmp_path / "proj")
    assert run_cli(root, "run", "tiny").returncode == 0
    process = subprocess.Popen(
        [*experiment_command(), "reports", "--port", "0"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**command_env(), "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = ""
        while "Serving" not in line:
            line = process.stdout.readline()
            assert line, "the server exited"
        match = re.search(r"http://([\d.]+):(\d+)/", line)
        assert match, line
        assert match.group(1) == "127.0.0.1"
        assert _listening_addresses(int(match.group(2))) == {"0100007F"}  # 127.0.0.1 only
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=20)


# -------------------------------------------------------------------- file modes


def _modes(root: Path) -> dict[str, int]:
    """Permission bits of everything below ``root`` except the project's own sources."""
    modes = {}
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if relative.parts[0] in ("experiments", "params") or path.is_symlink():
            continue
        modes[str(relative)] = stat.S_IMODE(path.lstat().st_mode)
    return modes


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_nothing_written_is_world_writable(umask: int, tmp_path: Path):
    """Every file and folder a run writes (cache, sidecars, registry, logs, reports, locks) is
    not world-writable, also under umask 000; under umask 022 files are 0644, folders 0755."""
    root = write_tiny(tmp_path / "proj")
    for args in (("run", "tiny"), ("run", "tiny", "--overwrite-stage", "square")):
        result = subprocess.run(
            [*experiment_command(), *args, "--parallel", "2"]
            if args[-1] == "square"
            else [*experiment_command(), *args],
            cwd=root,
            capture_output=True,
            text=True,
            env=command_env(),
            timeout=120,
            preexec_fn=lambda: os.umask(umask),  # noqa: PLW1509 - no threads started here
            check=False,
        )
        assert result.returncode == 0, output(result)
    modes = _modes(root)
    assert any(name.endswith("store.db") for name in modes)
    assert any(name.startswith("reports") for name in modes)
    world_writable = {name: oct(mode) for name, mode in modes.items() if mode & stat.S_IWOTH}
    assert world_writable == {}
    if umask == 0o022:
        unexpected = {
            name: oct(mode)
            for name, mode in modes.items()
            if mode != (0o755 if (root / name).is_dir() else 0o644)
        }
        assert unexpected == {}
