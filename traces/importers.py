"""The importer registry and the shared import pipeline.

An importer reads a source file into a *raw* frame — ``arrival_s`` (seconds from the source's
first row), ``prompt_tokens``, ``output_tokens`` and source extras named ``x_*`` — and
:func:`finish_import` turns it into a :class:`Trace`: drop unusable rows (counted), take a time
window, sample, rescale the rate, then assign tenants, tiers, categories and ``max_tokens`` by
the documented rules in :mod:`~driftsched.traces.assign`.

To add an importer: a module with ``read_<name>(path) -> RawTrace`` and one line in
``IMPORTERS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from driftsched.traces.assign import (
    MaxTokensRule,
    TenantRule,
    assign_tiers,
    categories_from_output,
    max_tokens_for,
)
from driftsched.traces.trace import Trace, request_frame
from pydantic import Field, field_validator

from driftsched.ground.config import Config, build
from driftsched.ground.errors import InputError, UnknownNameError
from driftsched.ground.rng import streams


@dataclass
class RawTrace:
    """What a source reader returns: the raw table and counts of rows it dropped, by reason."""

    frame: pd.DataFrame
    dropped: dict[str, int] = field(default_factory=dict)


class ImportOptions(Config):
    """Options shared by every importer (see docs/traces.md for the rules)."""

    seed: int = Field(0, ge=0)
    tenants: str = Field("uniform:3", description="tenant rule: uniform:N | weights:.. | column:..")
    tiers: str = Field("premium=1,standard=1,batch=1", description="tier shares over tenants")
    category_noise: float = Field(0.1, ge=0, le=1)
    max_tokens_rule: MaxTokensRule = "pow2"
    start_s: float = Field(0.0, ge=0, description="window start, seconds after the first request")
    duration_s: float | None = Field(None, gt=0, description="window length; None = to the end")
    rate_scale: float = Field(1.0, gt=0, description="arrival rate multiplier (times / scale)")
    sample: float | None = Field(None, gt=0, le=1, description="keep this fraction of requests")
    limit: int | None = Field(None, ge=1, description="keep at most this many requests")

    @field_validator("tenants")
    @classmethod
    def _tenants_ok(cls, v: str) -> str:
        TenantRule.parse(v)
        return v


def drop_rows(frame: pd.DataFrame, bad: np.ndarray, reason: str, dropped: dict[str, int]):
    """Remove rows where ``bad``; count them under ``reason`` (only when any)."""
    n = int(np.count_nonzero(bad))
    if n:
        dropped[reason] = dropped.get(reason, 0) + n
        frame = frame.loc[~bad]
    return frame


def require_columns(frame: pd.DataFrame, path, columns: list[str], kind: str) -> None:
    """Raise one line naming the first missing source column and what the format expects."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(
            f"{path}: missing column {missing[0]!r}; expected {kind} columns {', '.join(columns)}"
        )


def window(frame: pd.DataFrame, opts: ImportOptions) -> pd.DataFrame:
    """Rows with ``start_s <= arrival_s < start_s + duration_s``, re-based to start at 0."""
    t = frame["arrival_s"].to_numpy()
    end = np.inf if opts.duration_s is None else opts.start_s + opts.duration_s
    keep = (t >= opts.start_s) & (t < end)
    out = frame.loc[keep].copy()
    out["arrival_s"] = out["arrival_s"] - opts.start_s
    return out


def finish_import(raw: RawTrace, opts: ImportOptions, source: str, path) -> Trace:
    """Turn a reader's raw table into a validated trace (see module docstring for the order)."""
    dropped = dict(raw.dropped)
    frame = raw.frame
    frame = frame.assign(x_source_row=np.arange(1, len(frame) + 1, dtype=np.int64))
    frame = frame.sort_values("arrival_s", kind="stable")
    frame["arrival_s"] = frame["arrival_s"] - (frame["arrival_s"].iloc[0] if len(frame) else 0)
    for col in ("prompt_tokens", "output_tokens"):
        frame = drop_rows(frame, frame[col].to_numpy() == 0, f"zero_{col}", dropped)
        frame = drop_rows(frame, frame[col].to_numpy() < 0, f"negative_{col}", dropped)
    frame = window(frame, opts)
    rng = streams(opts.seed, "sample", "tenant", "category")
    if opts.sample is not None:
        frame = frame.loc[rng["sample"].random(len(frame)) < opts.sample]
    if opts.limit is not None:
        frame = frame.iloc[: opts.limit]
    if frame.empty:
        raise InputError(f"{path}: no requests left after dropping, windowing and sampling")
    frame = frame.reset_index(drop=True)
    frame["arrival_s"] = frame["arrival_s"] / opts.rate_scale
    tenants = TenantRule.parse(opts.tenants).apply(frame, rng["tenant"])
    output = frame["output_tokens"].to_numpy(dtype=np.int64)
    cats = categories_from_output(output, rng["category"], opts.category_noise)
    table = request_frame(
        source,
        frame["arrival_s"].to_numpy(dtype=np.float64),
        tenants,
        assign_tiers(tenants, opts.tiers),
        cats,
        frame["prompt_tokens"].to_numpy(dtype=np.int64),
        output,
        max_tokens_for(output, cats, opts.max_tokens_rule),
    )
    for col in frame.columns:
        if col.startswith("x_") or col == "prefix":
            table[col] = frame[col].to_numpy()
    return Trace.from_frame(
        table,
        str(path),
        source=source,
        path=str(path),
        options=opts.model_dump(mode="json"),
        dropped_rows=dropped,
    )


@dataclass(frozen=True)
class Importer:
    read: Callable[[Any], RawTrace] | None
    summary: str
    defaults: tuple[tuple[str, Any], ...] = ()
    options: type[Config] = ImportOptions
    run: Callable[[Any, Any], Trace] | None = None


def _registry() -> dict[str, Importer]:
    from driftsched.traces.azure import read_azure
    from driftsched.traces.burstgpt import read_burstgpt
    from driftsched.traces.mooncake import read_mooncake
    from driftsched.traces.servegen import ServeGenOptions, generate_servegen

    return {
        "azure": Importer(
            read_azure,
            "Azure LLM inference 2023/2024 CSV (TIMESTAMP, ContextTokens, GeneratedTokens)",
        ),
        "burstgpt": Importer(
            read_burstgpt,
            "BurstGPT CSV (Timestamp, Model, Request tokens, "
            "Response tokens, Total tokens, Log Type)",
            (("tenants", "column:x_model"),),
        ),
        "mooncake": Importer(
            read_mooncake, "Mooncake JSONL (timestamp ms, input_length, output_length, hash_ids)"
        ),
        "servegen": Importer(
            None,
            "Alibaba ServeGen per-client folder: N real clients -> a multi-tenant trace",
            options=ServeGenOptions,
            run=generate_servegen,
        ),
    }


IMPORTERS: dict[str, Importer] = {}


def importers() -> dict[str, Importer]:
    """The registry table (built on first use so readers import lazily)."""
    if not IMPORTERS:
        IMPORTERS.update(_registry())
    return IMPORTERS


def import_trace(name: str, path, **options: Any) -> Trace:
    """Import ``path`` with importer ``name``; options as in :class:`ImportOptions`."""
    table = importers()
    if name not in table:
        raise UnknownNameError("importer", name, list(table))
    imp = table[name]
    opts = build(imp.options, {**dict(imp.defaults), **options}, f"importer {name}")
    if imp.run is not None:
        return imp.run(path, opts)
    return finish_import(imp.read(path), opts, name, path)
