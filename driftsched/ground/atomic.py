"""Atomic file output: write to a temporary file beside the target, then rename over it.

A crash or an error half-way leaves the previous file (if any) untouched and no partial file
behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it to ``target``.

    The parent folder is created if missing. On an exception the temporary file is removed and
    ``target`` keeps its previous content.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(target: str | os.PathLike[str], text: str) -> Path:
    """Atomically write ``text`` (UTF-8) to ``target``; return its path."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def write_bytes(target: str | os.PathLike[str], data: bytes) -> Path:
    """Atomically write ``data`` to ``target``; return its path."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def jsonable(obj):
    """``obj`` with numpy scalars made plain and NaN/inf made ``None`` (strict JSON), recursively
    through dicts, lists and tuples."""
    import math

    import numpy as np

    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(
    target: str | os.PathLike[str], obj, *, indent: int | None = 2, sort_keys: bool = False
) -> Path:
    """Atomically write ``obj`` as strict JSON (see :func:`jsonable`) plus a newline; return
    its path."""
    import json

    text = json.dumps(jsonable(obj), indent=indent, sort_keys=sort_keys, allow_nan=False)
    return write_text(target, text + "\n")
