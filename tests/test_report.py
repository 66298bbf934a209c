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
    assert page.count("<table") == len(list(run_dir.glob("*.csv"))) + 1 >= 4  # + the answer
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
    assert loaded == images >= 2 and tables >= 4
    # the detector itself: a page that throws is caught
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>throw new Error('boom')</script></body></html>")
    _, console = _chromium(bad.as_uri())
    assert any("boom" in line for line in console)


def _order(page: str, *markers: str) -> list[int]:
    return [page.index(m) for m in markers]


def test_a_page_starts_with_the_answer_then_conditions_figures_tables(run_dir):
    page = render(run_dir)
    answer, conditions, figure, table = _order(
        page, 'id="answer"', 'id="conditions"', "<img", "<h2>summary"
    )
    assert answer < conditions < figure < table
    assert "PRIOR" in page[conditions:figure]  # what the numbers rest on, prior or measured
    assert "sjf/none" in page[answer:conditions]


@pytest.fixture(scope="module")
def study_dirs(tmp_path_factory):
    base = tmp_path_factory.mktemp("studies")
    runs = {
        "paper": ["paper", "--requests", "300", "--seeds", "0", "--policies", "fifo,sjf"],
        "sweep": ["sweep", "--rates", "2,4", "--policies", "fifo,sjf", "--requests", "200"],
        "capacity": ["capacity", "--slo", "p99_e2e<=60s", "--policies", "fifo,sjf",
                     "--seeds", "0"],
    }  # fmt: skip
    for name, args in runs.items():
        r = run_cli(*args, "-o", base / name)
        assert r.returncode == 0, r.stderr
    return base


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("paper", ["of the study's headline claims hold", "median E2E, sjf vs fifo"]),
        ("sweep", ["Best policy by mean e2e_p99_s at each load", "rate_per_s"]),
        ("capacity", ["Highest sustainable rate within p99_e2e<=60s", "<th>verdict"]),
    ],
)
def test_each_kind_answers_first(study_dirs, kind, says):
    import html

    page = html.unescape(render(study_dirs / kind))
    answer, conditions, figure = _order(page, 'id="answer"', 'id="conditions"', "<img")
    for text in says:
        assert answer < page.index(text) < conditions, text
    assert "PRIOR" in page[conditions:figure] and conditions < figure


@pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("DRIFTSCHED_REQUIRE_CHROMIUM"),
    reason="chromium not installed (apt-get install chromium)",
)
def test_screenshot_at_desktop_width_shows_the_answer_first(study_dirs, tmp_path):
    """The page as a reader sees it, 1280 px wide: a real screenshot, and the answer within
    the first screen (its top above 900 px)."""
    assert CHROMIUM, "DRIFTSCHED_REQUIRE_CHROMIUM is set but chromium is not installed"
    page = write_report(study_dirs / "capacity", tmp_path / "cap.html")
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--window-size=1280,900", f"--screenshot={shot}", page.as_uri(),
        ],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert shot.is_file() and shot.stat().st_size > 10_000
    import matplotlib.image as mpimg

    pixels = mpimg.imread(shot)
    assert pixels.shape[:2] == (900, 1280)
    assert (pixels[:, :, :3].mean(axis=2) < 0.5).any()  # text was drawn, not a blank page
    probe = tmp_path / "probe.html"
    probe.write_text(
        page.read_text().replace(
            "</body>",
            "<script>window.addEventListener('load',function(){document.body.setAttribute("
            "'data-answer-top',String(document.getElementById('answer')"
            ".getBoundingClientRect().top))})</script></body>",
        )
    )
    dom, _ = _chromium(probe.as_uri())
    top = re.search(r'data-answer-top="([0-9.]+)"', dom)
    assert top and float(top.group(1)) < 900
