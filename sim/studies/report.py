"""``driftsched report DIR``: any output folder as one self-contained HTML page.

Works on what the commands write — a run, a comparison, the paper reproduction, a sweep, a
capacity search, a validation report. The page starts with what its reader came for
(:mod:`~driftsched.sim.studies.answers`: the verdict and its small table — the study's claims
beside ours, a sweep's best policy per load, capacity per policy with its SLO and verdict),
then the conditions it rests on (cost model, prior or measured; trace; seeds), then every
figure (PNG, embedded as a data URI), then every table (CSV; identifying columns first, small
tables before large ones), then the metadata (JSON) as definition lists. No external
resources: the file can be mailed or attached to a ticket as is.

A small inline script marks the page once every image has decoded
(``<body data-render-check="images=N/N tables=M">``), which the end-to-end test reads from a
headless browser.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import pandas as pd

from driftsched.ground.atomic import write_text
from driftsched.ground.errors import InputError

#: which kind of folder, recognised by a file it always holds
KINDS = [
    ("paper_deltas.json", "Reproduction of the DriftSched study"),
    ("sweep.csv", "Sweep"),
    ("capacity.csv", "Capacity search"),
    ("compare.csv", "Policy comparison"),
    ("report.json", "Simulator fidelity against live vLLM"),
    ("summary.json", "Simulation run"),
    ("profile.json", "Calibration"),
]
MAX_ROWS = 200

STYLE = """
body { font-family: system-ui, -apple-system, sans-serif; margin: 2rem auto; max-width: 1200px;
       color: #222; padding: 0 1rem; }
h1 { font-size: 1.5rem; }
h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.8rem; margin: 0.5rem 0; display: block;
        overflow-x: auto; }
th, td { border: 1px solid #ddd; padding: 0.2rem 0.45rem; text-align: right; white-space: nowrap; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5rem 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 1rem; font-size: 0.85rem; }
dt { font-weight: 600; }
dd { margin: 0; font-family: ui-monospace, monospace; word-break: break-all; }
.note { color: #666; font-size: 0.8rem; }
.verdict { font-size: 1.1rem; font-weight: 600; }
"""

CHECK = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  var tables = document.querySelectorAll('table').length;
  document.body.setAttribute('data-render-check',
    'images=' + ok + '/' + imgs.length + ' tables=' + tables);
});
"""


def kind_of(folder: Path) -> str:
    for marker, title in KINDS:
        if (folder / marker).exists():
            return title
    return "driftsched output"


def _table(path: Path) -> str:
    from driftsched.sim.studies.answers import ids_first

    frame = ids_first(pd.read_csv(path))
    note = ""
    if len(frame) > MAX_ROWS:
        note = f'<p class="note">first {MAX_ROWS} of {len(frame)} rows; all in {path.name}</p>'
        frame = frame.head(MAX_ROWS)
    body = frame.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="", border=0)
    return f"<h2>{html.escape(path.name)}</h2>{note}{body}"


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    name = html.escape(path.name)
    return f'<h2>{name}</h2><img alt="{name}" src="data:image/png;base64,{data}">'


def _flatten(obj, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(obj, dict):
        out = []
        for k, v in obj.items():
            out += _flatten(v, f"{prefix}{k}.")
        return out
    if isinstance(obj, list) and obj and all(isinstance(v, dict) for v in obj):
        return [(prefix.rstrip("."), f"{len(obj)} entries (see the tables)")]
    return [(prefix.rstrip("."), json.dumps(obj) if not isinstance(obj, str) else obj)]


def _metadata(path: Path) -> str:
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise InputError(f"{path}: not valid JSON: {exc}") from None
    rows = _flatten(data)[:300]
    items = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in rows)
    return f"<h2>{html.escape(path.name)}</h2><dl>{items}</dl>"


def _answer(folder: Path) -> str:
    from driftsched.sim.studies.answers import answer

    a = answer(folder)
    if a is None:
        return ""
    table = ""
    if a.table is not None and len(a.table):
        table = a.table.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="", border=0)
    conditions = "".join(
        f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in a.conditions.items()
    )
    return (
        f'<section id="answer"><h2>Answer</h2><p class="verdict">{html.escape(a.verdict)}</p>'
        f'{table}</section><section id="conditions"><h2>Conditions</h2><dl>{conditions}</dl>'
        "</section>"
    )


def render(folder: str | Path) -> str:
    """The HTML page for ``folder``: answer, conditions, figures, tables, metadata."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder (give a run, sweep, paper or validate folder)")
    csvs = sorted(folder.glob("*.csv"), key=lambda p: (p.stat().st_size, p.name))
    pngs = sorted(folder.glob("*.png"))
    jsons = sorted(p for p in folder.glob("*.json"))
    if not (csvs or pngs or jsons):
        raise InputError(
            f"{folder}: no tables, figures or metadata to report (is it an output folder?)"
        )
    title = f"{kind_of(folder)} — {folder.name}"
    parts = [_answer(folder)]
    parts += [_image(p) for p in pngs] + [_table(p) for p in csvs] + [_metadata(p) for p in jsons]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f'<p class="note">driftsched report of {html.escape(str(folder))}: '
        f"{len(csvs)} tables, {len(pngs)} figures.</p>"
        + "".join(parts)
        + f"<script>{CHECK}</script></body></html>\n"
    )


def write_report(folder: str | Path, output: str | Path | None = None) -> Path:
    """Render ``folder`` and write the page (atomically); default ``folder/report.html``."""
    out = Path(output) if output else Path(folder) / "report.html"
    return write_text(out, render(folder))
