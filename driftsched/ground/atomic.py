"""Atomic file output: write to a temporary file beside the target, then rename over it.

A crash or an error half-way leaves the previous file (if any) untouched and no partial file
behind. Temporary files are named ``.<target name>.<pid>.<random>.tmp``: a process killed
while writing leaves one behind, and :func:`clean_orphans` (run by every command that writes
into a folder) removes those whose writing process is gone.

Every problem the file system raises while writing (a file where a folder is wanted, a
read-only or immutable folder, a full disk, ``/proc``) becomes an :class:`OutputError`: one
line naming the path and the reason. Files are created with the permissions ``open()`` would
give them (``0666`` less the umask), not ``mkstemp``'s ``0600``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from driftsched.ground.errors import InputError

_ORPHAN = re.compile(r"^\..+\.(\d+)\.[A-Za-z0-9_]+\.tmp$")


class OutputError(InputError):
    """An output path cannot be written (exit 2, one line naming the path and the reason)."""


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a newly created regular file gets: ``0666`` less the process umask."""
    return 0o666 & ~_umask()


def describe_os_error(exc: OSError, path: str | os.PathLike[str] | None = None) -> str:
    """One line for a file-system error: the path and the reason in words."""
    where = path if path is not None else (exc.filename or "")
    reason = exc.strerror or str(exc)
    if exc.errno == errno.EEXIST:
        reason = "exists and is not a folder"
    elif exc.errno in (errno.EPERM, errno.EACCES, errno.EROFS):
        reason = f"not writable ({exc.strerror})"
    return f"{where}: {reason}"


def output_folder(folder: str | os.PathLike[str]) -> Path:
    """Create ``folder`` (and its parents) if missing and return it; an existing non-folder,
    or a folder that cannot be created or written into, is an :class:`OutputError`."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: exists and is not a folder; give a folder for --output")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if exc.errno in (errno.EEXIST, errno.ENOTDIR):
            raise OutputError(
                f"{folder}: a part of this path is a file, not a folder; give a folder for --output"
            ) from None
        raise OutputError(f"cannot create output folder {describe_os_error(exc, folder)}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{folder}: output folder is not writable")
    return folder


def clean_orphans(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files (see the module docstring) in ``folder`` and its subfolders
    whose writing process is no longer running; return them."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for path in folder.rglob(".*.tmp"):
        match = _ORPHAN.match(path.name)
        if not match or _alive(int(match.group(1))):
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it to ``target``.

    The parent folder is created if missing. On an exception the temporary file is removed and
    ``target`` keeps its previous content; a file-system error anywhere in the write becomes
    an :class:`OutputError` naming ``target``.
    """
    target = Path(target)
    if target.is_dir():
        raise OutputError(f"{target}: is a folder; expected a file name")
    output_folder(target.parent)
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent
        )
        os.close(fd)
        os.chmod(tmp_name, file_mode())
    except OSError as exc:
        raise OutputError(f"cannot write {describe_os_error(exc, target)}") from None
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    except OSError as exc:
        raise OutputError(f"cannot write {describe_os_error(exc, target)}") from None
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
