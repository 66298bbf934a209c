"""Parsing what users type: comma lists, ``KEY=VALUE`` pairs, compact ``a=1,b=x`` specs.

Each parser raises :class:`~driftsched.ground.errors.InputError` with one line naming what was
being read (``what``) and what was expected.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypeVar

from driftsched.ground.errors import InputError

T = TypeVar("T")


def parse_list(text: str | None, what: str, cast: Callable[[str], T] = str) -> list[T] | None:
    """A comma list (blank items skipped, each stripped and passed through ``cast``), or
    ``None`` for ``None``; a value ``cast`` refuses is a one-line error naming ``what``."""
    if text is None:
        return None
    try:
        return [cast(x.strip()) for x in text.split(",") if x.strip()]
    except ValueError:
        kind = {int: "integers", float: "numbers"}.get(cast, "values")
        raise InputError(f"{what}: expected a comma list of {kind}, got {text!r}") from None


def parse_overrides(pairs: list[str], what: str) -> dict[str, str]:
    """Turn ``["key=value", ...]`` into a dict (``-`` in keys becomes ``_``); raise
    :class:`InputError` on a malformed pair."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"{what}: expected KEY=VALUE, got {pair!r}")
        out[key.strip().replace("-", "_")] = value
    return out


def parse_sets(pairs: list[str] | None, what: str) -> dict:
    """``--set KEY=VALUE`` pairs: values that start with ``[`` or ``{`` are read as JSON, and
    ``null`` is None (a field's "not set", e.g. ``horizon_s=null``)."""
    out: dict = parse_overrides(pairs or [], what)
    for key, value in out.items():
        if value.strip() == "null":
            out[key] = None
            continue
        if value[:1] in "[{":
            try:
                out[key] = json.loads(value)
            except ValueError:
                raise InputError(f"{what}: --set {key}: value is not valid JSON") from None
    return out


def parse_json_values(pairs: list[str] | None, what: str) -> dict:
    """``KEY=VALUE`` pairs whose values are read as JSON where they parse (``17``, ``true``,
    ``0.5``, ``[1, 2]``) and kept as text where they do not (``bfloat16``)."""
    out: dict = parse_overrides(pairs or [], what)
    for key, value in out.items():
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def parse_keyvals(text: str, what: str) -> dict[str, str]:
    """Parse a compact spec ``"a=1,b=x"`` into ``{"a": "1", "b": "x"}`` (values stripped)."""
    pairs = parse_overrides([p for p in text.split(",") if p], what)
    return {k: v.strip() for k, v in pairs.items()}


def parse_json_object(text: str, what: str) -> dict:
    """A JSON object (``'{"rate_per_s": 0.1}'``); anything else is a one-line error."""
    try:
        value = json.loads(text)
    except ValueError:
        raise InputError(f"{what}: not valid JSON: {text!r}") from None
    if not isinstance(value, dict):
        raise InputError(f"{what}: expected a JSON object {{...}}, got {text!r}")
    return value
