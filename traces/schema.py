"""The trace schema: one row per request, versioned, validated with one message per problem.

Schema version 1 columns (``REQUIRED`` then ``OPTIONAL``):

================  ========  ==============================================================
column            type      contract
================  ========  ==============================================================
request_id        str       unique, non-empty
arrival_s         float     seconds from trace start, finite, >= 0, non-decreasing by row
tenant            str       non-empty
tier              str       ``premium`` | ``standard`` | ``batch`` | an integer priority
category          str       non-empty (e.g. short_qa, summary, technical, report)
prompt_tokens     int       >= 1
output_tokens     int       >= 1; what the engine will really generate (hidden from policies)
max_tokens        int       >= output_tokens; the client's cap
prompt            str       optional text
ttft_slo_s        float     optional, > 0 where given (empty = no SLO)
e2e_slo_s         float     optional, > 0 where given (empty = no SLO)
prefix            str       optional: what the prompt shares with other prompts, for prefix
                            caching — ``CHUNK:ID ID ...``: chunk ``i`` (tokens ``[i * CHUNK,
                            (i + 1) * CHUNK)``) has id ``ID_i``; equal ids after equal ids mean
                            equal tokens (Mooncake's ``hash_ids`` are ``512:...``); empty = the
                            prompt shares nothing
================  ========  ==============================================================

Extra columns are rejected unless their name starts with ``x_`` (importer-specific extras such
as ``x_session_id``). Rows are numbered from 1 (the first data row); in a CSV file row N is on
line N + 1, after the header.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from driftsched.ground.errors import InputError

SCHEMA_VERSION = 1

STR, FLOAT, INT = "str", "float", "int"
REQUIRED: dict[str, str] = {
    "request_id": STR,
    "arrival_s": FLOAT,
    "tenant": STR,
    "tier": STR,
    "category": STR,
    "prompt_tokens": INT,
    "output_tokens": INT,
    "max_tokens": INT,
}
OPTIONAL: dict[str, str] = {
    "prompt": STR,
    "ttft_slo_s": FLOAT,
    "e2e_slo_s": FLOAT,
    "prefix": STR,
}
#: the ``prefix`` column's form (empty is allowed too)
PREFIX_PATTERN = r"[1-9][0-9]*:([0-9]+( [0-9]+)*)?"
COLUMNS: dict[str, str] = {**REQUIRED, **OPTIONAL}
EXTRA_PREFIX = "x_"
#: token counts must be below this (1e15: far above any context, exact in float64 and int64)
INT_LIMIT = 1e15
CATEGORICAL = ("tenant", "tier", "category")

#: Named tiers and their rank (lower rank = more important). An integer tier is its own rank.
TIER_RANK: dict[str, int] = {"premium": 1, "standard": 2, "batch": 3}


def tier_rank(tier: str | int) -> int:
    """Rank of a tier: premium 1, standard 2, batch 3, an integer tier itself; lower goes first.

    Raises ``ValueError`` for anything else.
    """
    if isinstance(tier, (int, np.integer)):
        return int(tier)
    if tier in TIER_RANK:
        return TIER_RANK[tier]
    return int(tier)


@dataclass(frozen=True)
class Problem:
    """One validation finding: where (row/column, either may be None) and what was expected."""

    message: str
    row: int | None = None
    column: str | None = None

    def render(self, source: str) -> str:
        where = [source]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        return f"{', '.join(where)}: {self.message}"


class TraceSchemaError(InputError):
    """A trace failed validation. ``problems`` holds every finding; ``str()`` is one line."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source, self.problems = source, problems
        first = problems[0].render(source)
        more = len(problems) - 1
        super().__init__(first + (f" (and {more} more problem{'s' * (more > 1)})" if more else ""))

    def lines(self) -> list[str]:
        """Every problem, one rendered line each."""
        return [p.render(self.source) for p in self.problems]


def _first(mask: np.ndarray) -> int | None:
    idx = np.flatnonzero(mask)
    return int(idx[0]) if idx.size else None


def _count(mask: np.ndarray) -> str:
    n = int(np.count_nonzero(mask))
    return "" if n == 1 else f" ({n} rows like this)"


TEXT = pd.StringDtype("pyarrow")


def _as_text(series: pd.Series, categorical: bool) -> pd.Series:
    """``series`` as text: categorical columns stay categorical with string categories (cheap on
    millions of rows: only the categories are converted); others become ``TEXT``."""
    if categorical:
        if not isinstance(series.dtype, pd.CategoricalDtype):
            series = series.astype("category")
        strings = [str(c) for c in series.cat.categories]
        if len(set(strings)) == len(strings):
            series = series.cat.rename_categories(pd.Index(strings, dtype=TEXT))
        else:  # e.g. 1 and "1" both present: merge them
            series = series.astype(TEXT).astype(pd.CategoricalDtype(sorted(set(strings))))
        if not series.cat.categories.is_monotonic_increasing:  # canonical: sorted categories
            ordered = pd.Index(sorted(series.cat.categories), dtype=TEXT)
            series = series.cat.reorder_categories(ordered)
        return series
    return series if series.dtype == TEXT else series.astype(TEXT)


def _missing_text(text: pd.Series) -> np.ndarray:
    """True where a text column is null or empty."""
    if isinstance(text.dtype, pd.CategoricalDtype):
        codes = text.cat.codes.to_numpy()
        empty = np.asarray(text.cat.categories.str.len() == 0, dtype=bool)
        return (codes < 0) | np.append(empty, False)[codes]
    arr = (
        pa.chunked_array([pa.array(text)])
        if not hasattr(text.array, "_pa_array")
        else text.array._pa_array
    )
    return pc.fill_null(pc.equal(pc.utf8_length(arr), 0), True).to_numpy(zero_copy_only=False)


def _coerce(series: pd.Series, kind: str, column: str, problems: list[Problem]):
    """Coerce one column to its schema type; record problems; return the coerced column or None."""
    optional = column in OPTIONAL
    if kind == STR:
        text = _as_text(series, categorical=column in CATEGORICAL)
        if not optional:
            missing = _missing_text(text)
            if (row := _first(missing)) is not None:
                problems.append(
                    Problem(
                        f"expected a non-empty string, got nothing{_count(missing)}",
                        row + 1,
                        column,
                    )
                )
                return None
        return text
    dtype = series.dtype
    if kind == INT and (dtype.kind == "i" or (dtype.kind == "u" and dtype.itemsize < 8)):
        return series.to_numpy(dtype="int64")  # integers already: nothing missing or fractional
    if dtype.kind == "f":  # numbers already: nothing unparsable
        values = series.to_numpy(dtype="float64")
        unparsable = None
    else:
        numeric = pd.to_numeric(series, errors="coerce")
        values = numeric.to_numpy(dtype="float64", na_value=np.nan)
        unparsable = np.isnan(values) & series.notna().to_numpy()
    if unparsable is not None and (row := _first(unparsable)) is not None:
        wanted = "an integer" if kind == INT else "a number"
        problems.append(
            Problem(
                f"expected {wanted}, got {series.iloc[row]!r}{_count(unparsable)}", row + 1, column
            )
        )
        return None
    if not optional and (row := _first(np.isnan(values))) is not None:
        problems.append(Problem(f"missing value (NaN){_count(np.isnan(values))}", row + 1, column))
        return None
    if kind == FLOAT:
        infinite = np.isinf(values)
        if (row := _first(infinite)) is not None:
            problems.append(
                Problem(f"expected a finite number, got {values[row]}", row + 1, column)
            )
            return None
        return values
    huge = ~np.isnan(values) & ~(np.abs(values) < INT_LIMIT)  # inf too
    if (row := _first(huge)) is not None:
        problems.append(
            Problem(
                f"expected an integer below {INT_LIMIT:.0e}, got {_as_written(series, row)}"
                f"{_count(huge)}",
                row + 1,
                column,
            )
        )
        return None
    fractional = ~np.isnan(values) & (values != np.floor(values))
    if (row := _first(fractional)) is not None:
        problems.append(
            Problem(
                f"expected an integer, got {float(values[row])!r}{_count(fractional)}",
                row + 1,
                column,
            )
        )
        return None
    return values.astype("int64")


def _as_written(series: pd.Series, row: int) -> str:
    """A cell as the user wrote it (text as is, numbers without numpy's repr)."""
    value = series.iloc[row]
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return str(value)


def _check_columns(frame: pd.DataFrame, problems: list[Problem]) -> None:
    names = [str(c) for c in frame.columns]
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        problems.append(
            Problem(
                f"missing column{'s' * (len(missing) > 1)} {', '.join(map(repr, missing))}; "
                f"required: {', '.join(REQUIRED)}"
            )
        )
    extra = [c for c in names if c not in COLUMNS and not c.startswith(EXTRA_PREFIX)]
    if extra:
        problems.append(
            Problem(
                f"unexpected column{'s' * (len(extra) > 1)} {', '.join(map(repr, extra))}; "
                f"allowed: {', '.join(COLUMNS)} and extras named '{EXTRA_PREFIX}*'"
            )
        )
    dupes = sorted({c for c in names if names.count(c) > 1})
    if dupes:
        problems.append(Problem(f"duplicate column names {', '.join(map(repr, dupes))}"))


def _check_values(cols: dict, problems: list[Problem]) -> None:
    for name in ("prompt_tokens", "output_tokens", "max_tokens"):
        if (v := cols.get(name)) is not None and (row := _first(v < 1)) is not None:
            problems.append(Problem(f"expected >= 1, got {v[row]}{_count(v < 1)}", row + 1, name))
    out, cap = cols.get("output_tokens"), cols.get("max_tokens")
    if out is not None and cap is not None and (row := _first(out > cap)) is not None:
        problems.append(
            Problem(
                f"output_tokens {out[row]} exceeds max_tokens {cap[row]}{_count(out > cap)}",
                row + 1,
                "output_tokens",
            )
        )
    if (t := cols.get("arrival_s")) is not None:
        if (row := _first(t < 0)) is not None:
            problems.append(Problem(f"expected >= 0, got {t[row]}", row + 1, "arrival_s"))
        back = np.diff(t) < 0
        if (row := _first(back)) is not None:
            problems.append(
                Problem(
                    f"timestamps decrease: {t[row + 1]} after {t[row]} on row {row + 1}"
                    f"{_count(back)}; sort the trace by arrival_s",
                    row + 2,
                    "arrival_s",
                )
            )
    for name in ("ttft_slo_s", "e2e_slo_s"):
        v = cols.get(name)
        if v is not None and (row := _first(~np.isnan(v) & (v <= 0))) is not None:
            problems.append(Problem(f"expected > 0 or empty, got {v[row]}", row + 1, name))
    if (tier := cols.get("tier")) is not None:
        _check_tiers(tier, problems)
    if (prefix := cols.get("prefix")) is not None:
        _check_prefix(prefix, problems)
    if (ids := cols.get("request_id")) is not None:
        unique = len(pc.unique(pa.array(ids))) == len(ids)  # hash check, fast on millions
        dup = np.zeros(len(ids), bool) if unique else ids.duplicated(keep="first").to_numpy()
        if (row := _first(dup)) is not None:
            first = int(np.flatnonzero((ids == ids.iloc[row]).to_numpy())[0])
            problems.append(
                Problem(
                    f"duplicate request_id {ids.iloc[row]!r} (first seen on row {first + 1})"
                    f"{_count(dup)}",
                    row + 1,
                    "request_id",
                )
            )


def _check_prefix(prefix: pd.Series, problems: list[Problem]) -> None:
    arr = pa.array(prefix.array, type=pa.string()) if len(prefix) else pa.array([], pa.string())
    ok = pc.match_substring_regex(arr, f"^(?:{PREFIX_PATTERN})$")
    ok = pc.or_(ok, pc.equal(pc.utf8_length(arr), 0))
    bad = ~pc.fill_null(ok, True).to_numpy(zero_copy_only=False)
    if (row := _first(bad)) is not None:
        problems.append(
            Problem(
                f"expected CHUNK_TOKENS:ID ID ... (e.g. '512:0 17 18'), got "
                f"{prefix.iloc[row]!r}{_count(bad)}",
                row + 1,
                "prefix",
            )
        )


def format_prefix(chunk_tokens: int, chunk_ids) -> str:
    """A ``prefix`` cell from a chunk size and the prompt's chunk ids ("" when there are none);
    :func:`parse_prefix` reads it back."""
    return f"{chunk_tokens}:" + " ".join(map(str, chunk_ids)) if chunk_ids else ""


def parse_prefix(text) -> tuple[int, tuple[int, ...]] | None:
    """``(chunk_tokens, chunk_ids)`` from a validated ``prefix`` cell; None when empty."""
    if text is None or text is pd.NA or text != text or not text:
        return None
    chunk, _, ids = text.partition(":")
    return int(chunk), tuple(map(int, ids.split()))


def _check_tiers(tier: pd.Series, problems: list[Problem]) -> None:
    cats = pd.Series(tier.cat.categories, dtype=TEXT)
    ok = (cats.isin(list(TIER_RANK)) | cats.str.fullmatch(r"-?\d+")).fillna(False)
    bad = ~np.append(ok.to_numpy(dtype=bool), True)[tier.cat.codes.to_numpy()]
    if (row := _first(bad)) is not None:
        problems.append(
            Problem(
                f"expected premium, standard, batch or an integer priority, got "
                f"{tier.iloc[row]!r}{_count(bad)}",
                row + 1,
                "tier",
            )
        )


def normalise(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Validate ``frame`` against the schema and return it with canonical dtypes.

    Canonical dtypes: ``string`` for text, ``category`` for tenant/tier/category, ``float64`` for
    seconds, ``int64`` for tokens; columns in schema order, extras last. Raises
    :class:`TraceSchemaError` listing every problem found (``source`` names the file in messages).
    """
    problems: list[Problem] = []
    _check_columns(frame, problems)
    if problems and any(
        "missing column" in p.message or "duplicate column" in p.message for p in problems
    ):
        raise TraceSchemaError(source, problems)
    cols: dict = {}
    for name, kind in COLUMNS.items():
        if name in frame.columns:
            cols[name] = _coerce(frame[name], kind, name, problems)
    cols = {k: v for k, v in cols.items() if v is not None}
    _check_values(cols, problems)
    if problems:
        raise TraceSchemaError(source, problems)
    columns = {name: cols[name] for name in COLUMNS if name in cols}
    for name in frame.columns:
        if str(name).startswith(EXTRA_PREFIX):
            columns[name] = frame[name].to_numpy()
    # one constructor over the coerced columns, no per-column copies (a 10M-row trace would
    # otherwise be held twice while it is validated)
    arrays = {k: v.array if isinstance(v, pd.Series) else v for k, v in columns.items()}
    return pd.DataFrame(arrays, index=pd.RangeIndex(len(frame)), copy=False)
