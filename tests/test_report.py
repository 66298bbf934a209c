"""``driftsched report``: one self-contained HTML page, checked in a real headless browser.

The browser test needs Debian's ``chromium`` (``.ci/run`` installs it and sets
``DRIFTSCHED_REQUIRE_CHROMIUM=1`` so that it fails rather than skips there).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
from driftsched.sim.simulation import simulate
from driftsched.sim.studies.report import render, write_report
from driftsched.traces.generators import generate

from driftsched.ground.errors import InputError
from tests.conftest import run_cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    simulate(generate("driftsched-paper", requests=200, seed=1), policy="sjf").write(out)
    return out


def test_page_embeds_every_table_and_figure(run_dir):
    page = render(run_dir)
    assert page.startswith("<!DOCTYPE html>") and "Simulation run" in page
    pngs = sorted(p.name for p in run_dir.glob("*.png"))
    assert page.count('src="data:image/png;base64,') == len(pngs) >= 2
    assert page.count("<table") == len(list(run_dir.glob("*.csv"))) >= 3
    assert "http://" not in page and "https://" not in page  # self-contained
    assert "e2e_p99_s" in page and "policy" in page


def test_cli_report_and_errors(run_dir, tmp_path):
    r = run_cli("report", run_dir, "-o", tmp_path / "r.html")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "r.html").read_text().count("<img") >= 2
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run_cli("report", empty)
    assert r.returncode == 2 and "no tables" in r.stderr and len(r.stderr.splitlines()) == 1
    with pytest.raises(InputError):
        render(tmp_path / "missing")


def _chromium(url: str) -> tuple[str, list[str]]:
    proc = subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
            "--virtual-time-budget=5000", "--enable-logging=stderr", "--v=0",
            "--dump-dom", url,
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return proc.stdout, console


@pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("DRIFTSCHED_REQUIRE_CHROMIUM"),
    reason="chromium not installed (apt-get install chromium)",
)
def test_report_renders_in_headless_chromium_without_console_errors(run_dir, tmp_path):
    assert CHROMIUM, "DRIFTSCHED_REQUIRE_CHROMIUM is set but chromium is not installed"
    page = write_report(run_dir, tmp_path / "report.html")
    dom, console = _chromium(page.as_uri())
    assert console == [], console
    check = re.search(r'data-render-check="images=(\d+)/(\d+) tables=(\d+)"', dom)
    assert check, "the page's load handler did not run"
    loaded, images, tables = map(int, check.groups())
    assert loaded == images >= 2 and tables >= 3
    # the detector itself: a page that throws is caught
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>throw new Error('boom')</script></body></html>")
    _, console = _chromium(bad.as_uri())
    assert any("boom" in line for line in console)
