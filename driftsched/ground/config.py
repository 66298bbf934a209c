"""Validated configuration: pydantic models, and one-line errors when validation fails."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from driftsched.ground.errors import InputError

M = TypeVar("M", bound=BaseModel)


class Config(BaseModel):
    """Base for every config: immutable, unknown fields rejected, values checked on assignment.
    A model's validator is built when it is first used, not when its class is defined
    (``defer_build``): listing the extensions builds none of their parameter models."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_default=True, allow_inf_nan=False, defer_build=True
    )


def build(model: type[M], data: dict[str, Any], what: str, context: dict | None = None) -> M:
    """Validate ``data`` into ``model`` (``context``: pydantic's validation context); raise
    :class:`InputError` naming ``what`` and the field."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(config)"
        if err.get("type") == "extra_forbidden":
            import difflib

            known = list(model.model_fields)
            close = difflib.get_close_matches(str(err["loc"][-1]), known, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            valid = f"valid keys: {', '.join(known)}" if known else "it takes no parameters"
            raise InputError(f"{what}: unknown key {field!r}; {hint}{valid}") from None
        got = err.get("input")
        shown = "" if isinstance(got, dict) else f" (got {got!r})"
        more = len(exc.errors()) - 1
        tail = f" (and {more} more problem{'s' * (more > 1)})" if more else ""
        raise InputError(f"{what}: field {field!r}: {error_message(err)}{shown}{tail}") from None


def build_json(model: type[M], path, what: str) -> M:
    """:func:`build` from a JSON file; an unreadable or malformed file is one
    :class:`InputError` naming it and ``what`` it should hold."""
    import json
    from pathlib import Path

    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read {what}: {exc}") from None
    return build(model, data, str(path))


def error_message(err: dict) -> str:
    """pydantic's message without its ``Value error, `` prefix (our validators' own words)."""
    return str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
