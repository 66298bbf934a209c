"""An output folder one command run writes into, kept coherent across reruns and crashes.

:func:`run_folder` wraps a run's writes into ``folder``:

- on entry it creates the folder (one-line :class:`~driftsched.ground.atomic.OutputError` if it
  cannot), removes temporary files orphaned by a killed earlier run
  (:func:`~driftsched.ground.atomic.clean_orphans`) and writes an ``INCOMPLETE`` marker;
- on success it removes the figures an earlier run wrote that this run did not regenerate
  (so a folder never mixes old and new figures), records what the folder holds in a hidden
  manifest (``.driftsched-outputs.json``) and removes the marker;
- on failure it removes the marker only if the run wrote nothing; otherwise the marker stays
  and says the folder mixes runs until a run into it finishes.

Only files the manifest lists as written by an earlier run are ever removed; a user's own
files in the folder are never touched.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

from driftsched.ground.atomic import clean_orphans, output_folder, write_json, write_text

MARKER = "INCOMPLETE"
MANIFEST = ".driftsched-outputs.json"
#: outputs that a run regenerates as a whole; earlier ones it did not regenerate are stale
REGENERATED_SUFFIXES = (".png", ".svg")
_CLOCK_SLACK_S = 0.05  # file-system timestamps may lag time.time() by a tick


def _written_since(folder: Path, start_s: float) -> list[str]:
    skip = {MARKER, MANIFEST}
    out = []
    for path in folder.rglob("*"):
        if path.name in skip or path.name.endswith(".tmp") or not path.is_file():
            continue
        if path.stat().st_mtime >= start_s - _CLOCK_SLACK_S:
            out.append(path.relative_to(folder).as_posix())
    return sorted(out)


def _previous(folder: Path) -> list[str]:
    try:
        return list(json.loads((folder / MANIFEST).read_text())["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return []


@contextlib.contextmanager
def run_folder(folder: str | Path) -> Iterator[Path]:
    """Run the body's writes into ``folder`` (see the module docstring); yields the folder."""
    existed = Path(folder).is_dir()
    folder = output_folder(folder)
    clean_orphans(folder)
    start_s = time.time()
    previous = _previous(folder)
    marker = folder / MARKER
    write_text(
        marker,
        f"A driftsched run into this folder started at {time.strftime('%Y-%m-%d %H:%M:%S')} "
        "and has not finished: files here may mix that run's outputs with an earlier run's.\n",
    )
    try:
        yield folder
    except BaseException:
        if not _written_since(folder, start_s):
            marker.unlink(missing_ok=True)
            if not existed:
                with contextlib.suppress(OSError):
                    folder.rmdir()
        raise
    written = set(_written_since(folder, start_s))
    for rel in previous:
        path = folder / rel
        if rel not in written and path.suffix in REGENERATED_SUFFIXES and path.is_file():
            path.unlink()
    kept = sorted(written | {rel for rel in previous if (folder / rel).is_file()})
    write_json(folder / MANIFEST, {"files": kept})
    marker.unlink(missing_ok=True)
