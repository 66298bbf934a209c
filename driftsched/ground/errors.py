"""User-facing errors.

Every problem caused by user input (a bad file, a wrong option value, an unknown name) raises a
subclass of :class:`DriftschedError`. The CLI prints ``str(error)`` as a single line and exits
with code 2; it never shows a traceback for these. Anything else escaping is a bug.
"""

from __future__ import annotations


class DriftschedError(Exception):
    """Base class for errors the user can fix. ``str()`` is one self-contained line."""

    exit_code = 2


class InputError(DriftschedError):
    """A file, row, column or option value is not what was expected."""


class UnknownNameError(InputError):
    """A name looked up in a registry table does not exist; the message lists the valid names."""

    def __init__(self, kind: str, name: str, valid: list[str] | tuple[str, ...], more: str = ""):
        import difflib

        self.kind, self.name, self.valid = kind, name, tuple(valid)
        folded = {str(v).casefold(): str(v) for v in valid}
        close = difflib.get_close_matches(str(name).casefold(), list(folded), n=1, cutoff=0.6)
        hint = f" (did you mean {folded[close[0]]!r}?)" if close else ""
        super().__init__(
            f"unknown {kind} {name!r}{hint}; expected one of: {', '.join(sorted(valid))}{more}"
        )


def canonical_name(name: str, valid, kind: str) -> str:
    """``name`` as spelled in ``valid``, matched case-insensitively (``l4`` -> ``L4``); else
    :class:`UnknownNameError` (with a "did you mean")."""
    if name in valid:
        return name
    folded = {str(v).casefold(): v for v in valid}
    if str(name).casefold() in folded:
        return folded[str(name).casefold()]
    raise UnknownNameError(kind, name, list(valid))
