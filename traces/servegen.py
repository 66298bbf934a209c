"""Alibaba ServeGen per-client data -> a multi-tenant request trace.

A ServeGen folder (``<category>/<model>/``) holds, per production client ``c`` (one real tenant):

- ``chunk-<c>-trace.csv`` (no header): ``window_start_s, rate_req_per_s, cv, dist, p1, p2``, one
  row per 600-s window;
- ``chunk-<c>-dataset.json`` (optional): ``{window_start_s: {"input_tokens": PMF,
  "output_tokens": PMF}}`` per 6-h window, each PMF a Python dict literal ``{tokens: prob}``.

Arrivals: in each 600-s window a renewal process with the window's rate (times ``rate_scale``)
and inter-arrival CV, in the window's family (Gamma or Weibull; Poisson when none is given).
We match the *moments* (rate, CV) the data states rather than its raw ``p1, p2``, because the
Weibull parameters in the release do not reproduce the stated rate and CV (see docs/traces.md).
Lengths: each request draws prompt and output tokens from its client's PMFs for the 6-h window
it falls in (nearest window with data when that one is empty). Clients without a dataset file
use the pooled PMFs of the selected clients that have one (recorded in ``meta``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
from driftsched.traces.arrivals import gamma_gaps, poisson_gaps, weibull_gaps
from driftsched.traces.importers import ImportOptions, RawTrace, finish_import
from driftsched.traces.lengths import PMF
from driftsched.traces.trace import Trace
from pydantic import Field, field_validator

from driftsched.ground.errors import InputError
from driftsched.ground.rng import stream, streams

WINDOW_S = 600.0
PMF_WINDOW_S = 21600.0
TRACE_COLUMNS = ["window_start_s", "rate", "cv", "dist", "p1", "p2"]


class ServeGenOptions(ImportOptions):
    """ServeGen options: which clients, which span of the source timeline, a request budget."""

    tenants: str = Field("column:x_client", description="fixed: one tenant per client")
    clients: str = Field("top:8", description="top:N busiest clients in the window, or '3,7,12'")
    duration_s: float | None = Field(3600.0, gt=0)
    max_requests: int = Field(5_000_000, ge=1, description="refuse windows expected to be larger")

    @field_validator("clients")
    @classmethod
    def _clients_ok(cls, v: str) -> str:
        if not re.fullmatch(r"top:\d+|\d+(,\d+)*", v):
            raise ValueError("expected top:N or a comma-separated list of client numbers")
        return v


def _client_files(folder: Path) -> dict[int, Path]:
    files = {
        int(m.group(1)): p
        for p in folder.glob("chunk-*-trace.csv")
        if (m := re.fullmatch(r"chunk-(\d+)-trace\.csv", p.name))
    }
    if not files:
        raise InputError(
            f"{folder}: no chunk-<c>-trace.csv files; expected a ServeGen <category>/<model> folder"
        )
    return dict(sorted(files.items()))


def _windows(path: Path, start_s: float, end_s: float) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, header=None, names=TRACE_COLUMNS)
    except (ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: cannot read as ServeGen trace CSV: {exc}") from None
    bad = pd.to_numeric(frame["rate"], errors="coerce").isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
        raise InputError(f"{path}, row {row}, column 2 (rate): expected a number")
    t = frame["window_start_s"].to_numpy(dtype=np.float64)
    return frame.loc[(t + WINDOW_S > start_s) & (t < end_s)]


def _select(opts: ServeGenOptions, windows: dict[int, pd.DataFrame], folder: Path) -> list[int]:
    if opts.clients.startswith("top:"):
        totals = {c: float((w["rate"] * WINDOW_S).sum()) for c, w in windows.items()}
        busy = sorted((c for c in totals if totals[c] > 0), key=lambda c: (-totals[c], c))
        return sorted(busy[: int(opts.clients[4:])])
    chosen = [int(c) for c in opts.clients.split(",")]
    for c in chosen:
        if c not in windows:
            raise InputError(f"{folder}: no client {c}; clients are {', '.join(map(str, windows))}")
    return chosen


def _gaps(rng, dist, rate: float, cv: float, n: int) -> np.ndarray:
    if not (cv > 0) or dist not in ("Gamma", "Weibull"):
        return poisson_gaps(rng, n, rate)
    if dist == "Gamma":
        return gamma_gaps(rng, n, rate, cv)
    return weibull_gaps(rng, n, rate, cv)


def _arrivals(rng, windows: pd.DataFrame, start_s: float, end_s: float, scale: float):
    """Arrival times (absolute source seconds) over the client's windows within [start, end)."""
    out = []
    for row in windows.itertuples(index=False):
        rate = float(row.rate) * scale
        if rate <= 0:
            continue
        lo, hi = max(start_s, row.window_start_s), min(end_s, row.window_start_s + WINDOW_S)
        t, times = lo, []
        while t < hi:
            k = int(rate * (hi - t) * 1.3) + 16
            ts = t + np.cumsum(_gaps(rng, row.dist, rate, float(row.cv), k))
            times.append(ts[ts < hi])
            t = ts[-1]
        out.extend(times)
    return np.concatenate(out) if out else np.empty(0)


def _load_pmfs(path: Path) -> dict[float, tuple[PMF, PMF]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read as ServeGen dataset JSON: {exc}") from None
    out = {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object of windows, got {type(data).__name__}")
    for key, fields in data.items():
        if not isinstance(fields, dict):
            raise InputError(f"{path}: window {key}: expected an object with token PMFs")
        try:
            if (
                fields.get("input_tokens", "{}") != "{}"
                and fields.get("output_tokens", "{}") != "{}"
            ):
                out[float(key)] = (
                    PMF.parse(fields["input_tokens"]),
                    PMF.parse(fields["output_tokens"]),
                )
        except (ValueError, SyntaxError, InputError) as exc:
            raise InputError(f"{path}: window {key}: cannot parse the token PMF: {exc}") from None
    return out


def _pooled(pmfs: list[dict[float, tuple[PMF, PMF]]]) -> tuple[PMF, PMF]:
    def mix(i):
        acc: dict[int, float] = {}
        for d in pmfs:
            for pair in d.values():
                for t, p in zip(pair[i].tokens, pair[i].probs, strict=True):
                    acc[t] = acc.get(t, 0.0) + p
        return PMF.from_mapping(acc)

    return mix(0), mix(1)


def _lengths(rng, times: np.ndarray, pmfs, fallback) -> tuple[np.ndarray, np.ndarray]:
    prompt = np.empty(times.size, dtype=np.int64)
    output = np.empty(times.size, dtype=np.int64)
    keys = np.asarray(sorted(pmfs)) if pmfs else np.empty(0)
    slot = np.floor(times / PMF_WINDOW_S) * PMF_WINDOW_S
    for s in np.unique(slot):
        sel = slot == s
        pair = pmfs[float(keys[np.argmin(np.abs(keys - s))])] if keys.size else fallback
        prompt[sel] = pair[0].sample(rng, int(sel.sum())).astype(np.int64)
        output[sel] = pair[1].sample(rng, int(sel.sum())).astype(np.int64)
    return prompt, output


def generate_servegen(folder, opts: ServeGenOptions) -> Trace:
    """Build a multi-tenant trace from N ServeGen clients (see module docstring)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder; expected a ServeGen <category>/<model> folder")
    start = opts.start_s
    end = np.inf if opts.duration_s is None else start + opts.duration_s
    windows = {c: _windows(p, start, end) for c, p in _client_files(folder).items()}
    clients = _select(opts, windows, folder)
    expected = sum(float((windows[c]["rate"] * WINDOW_S).sum()) for c in clients) * opts.rate_scale
    if expected > opts.max_requests:
        raise InputError(
            f"{folder}: the chosen clients and window would make ~{expected:,.0f} "
            f"requests (max_requests={opts.max_requests:,}); shorten duration_s, "
            "lower rate_scale or pick fewer clients"
        )
    pmfs = {
        c: _load_pmfs(folder / f"chunk-{c}-dataset.json")
        for c in clients
        if (folder / f"chunk-{c}-dataset.json").is_file()
    }
    without = [c for c in clients if not pmfs.get(c)]
    with_data = [pmfs[c] for c in clients if pmfs.get(c)]
    fallback = _pooled(with_data) if without and with_data else None
    if without and fallback is None:
        raise InputError(
            f"{folder}: none of the chosen clients has a chunk-<c>-dataset.json with "
            "token PMFs; pick clients that do"
        )
    rng = streams(opts.seed, "lengths")
    parts = []
    for c in clients:
        times = _arrivals(
            stream(opts.seed, f"arrivals-{c}"), windows[c], start, end, opts.rate_scale
        )
        prompt, output = _lengths(rng["lengths"], times, pmfs.get(c), fallback)
        parts.append(
            pd.DataFrame(
                {
                    "arrival_s": times - start,
                    "prompt_tokens": prompt,
                    "output_tokens": output,
                    "x_client": f"client-{c}",
                }
            )
        )
    frame = pd.concat(parts, ignore_index=True).sort_values("arrival_s", kind="stable")
    raw = RawTrace(frame.reset_index(drop=True))
    rest = opts.model_copy(update={"start_s": 0.0, "duration_s": None, "rate_scale": 1.0})
    trace = finish_import(raw, rest, "servegen", folder)
    trace.meta.update(
        clients=[f"client-{c}" for c in clients],
        pooled_length_clients=[f"client-{c}" for c in without],
        options=opts.model_dump(mode="json"),
    )
    return trace
