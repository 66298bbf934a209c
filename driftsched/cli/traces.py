"""``driftsched traces``: generate, import, validate, describe and convert request traces."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from driftsched.cli.common import Out, Seed, Sets, command_group, set_values

app = command_group("Generate, import, validate and describe request traces.")


def written(trace, path: Path) -> None:
    """Write ``trace`` and say how many requests went where."""
    from driftsched.ground.console import console

    trace.write(path)
    console.print(f"wrote {len(trace):,} requests to {path}")


@app.command("list")
def traces_list() -> None:
    """List the trace generators and importers."""
    import pandas as pd

    from driftsched.ground.console import console, table
    from driftsched.traces.generators import GENERATORS
    from driftsched.traces.importers import importers

    rows = [("generate", n, g.summary) for n, g in GENERATORS.items()]
    rows += [("import", n, i.summary) for n, i in importers().items()]
    console.print(table(pd.DataFrame(rows, columns=["command", "name", "what"])))


@app.command("generate")
def traces_generate(
    name: Annotated[str, typer.Argument(help="generator: driftsched-paper, poisson, gamma")],
    output: Out,
    requests: Annotated[int | None, typer.Option("--requests", "-n", help="total requests")] = None,
    seed: Seed = 0,
    rate: Annotated[
        float | None, typer.Option(help="mean arrival rate, requests/s (poisson, gamma)")
    ] = None,
    drift: Annotated[
        list[str] | None,
        typer.Option(help="drift spec, e.g. step:at=1500,unit=request,factor=1.5,category=summary"),
    ] = None,
    sets: Sets = None,
) -> None:
    """Generate a seeded synthetic trace."""
    from driftsched.traces.generators import generate

    params = set_values(sets, f"generator {name}")
    params["seed"] = seed
    if requests is not None:
        params["requests"] = requests
    if rate is not None:
        params["rate_per_s"] = rate
    if drift:
        params["drifts"] = list(drift)
    written(generate(name, **params), output)


@app.command("import")
def traces_import(
    name: Annotated[str, typer.Argument(help="importer: azure, burstgpt, mooncake, servegen")],
    source: Annotated[
        Path, typer.Argument(help="source file (servegen: a <category>/<model> folder)")
    ],
    output: Out,
    seed: Seed = 0,
    tenants: Annotated[
        str | None,
        typer.Option(help="tenant rule: uniform:N | weights:a=w,b=w | column:x_model[+x_log_type]"),
    ] = None,
    tiers: Annotated[
        str | None,
        typer.Option(
            help="tier shares over tenants, busiest first, e.g. premium=1,standard=2,batch=1"
        ),
    ] = None,
    start_s: Annotated[
        float | None, typer.Option(help="window start (s after first request)")
    ] = None,
    duration_s: Annotated[float | None, typer.Option(help="window length in seconds")] = None,
    rate_scale: Annotated[float | None, typer.Option(help="multiply the arrival rate")] = None,
    sample: Annotated[float | None, typer.Option(help="keep this fraction (seeded)")] = None,
    limit: Annotated[int | None, typer.Option(help="keep at most this many requests")] = None,
    sets: Sets = None,
) -> None:
    """Import a real trace, assigning tenants, tiers, categories and max_tokens by rule."""
    from driftsched.ground.console import console
    from driftsched.traces.importers import import_trace

    given = {
        "tenants": tenants,
        "tiers": tiers,
        "start_s": start_s,
        "duration_s": duration_s,
        "rate_scale": rate_scale,
        "sample": sample,
        "limit": limit,
    }
    params = {k: v for k, v in given.items() if v is not None}
    params.update(set_values(sets, f"importer {name}"), seed=seed)
    trace = import_trace(name, source, **params)
    for reason, count in trace.meta.get("dropped_rows", {}).items():
        console.print(f"dropped {count:,} rows: {reason}")
    written(trace, output)


@app.command("describe")
def traces_describe(
    path: Annotated[Path, typer.Argument(help="trace file (.parquet or .csv)")],
    plot: Annotated[Path | None, typer.Option(help="write a PNG figure here")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of tables")] = False,
) -> None:
    """Rows, span, arrival rate, per-tenant/category counts and token percentiles."""
    from driftsched.ground.console import console, table
    from driftsched.traces.describe import plot as plot_trace
    from driftsched.traces.describe import summarise
    from driftsched.traces.trace import read_trace

    trace = read_trace(path).require_requests()
    s = summarise(trace)
    if as_json:
        print(json.dumps(s.to_dict(), indent=2))
    else:
        console.print(
            f"[bold]{path}[/]: {s.requests:,} requests over {s.span_s:,.1f} s; "
            f"mean {s.mean_rate_per_s:.3g} req/s, peak {s.peak_rate_per_s:.3g} req/s "
            f"({s.rate_bin_s:g}-s bins); source {trace.meta.get('source', 'unknown')}",
            soft_wrap=True,
        )
        console.print(table(s.tokens, "tokens", index="tokens"))
        console.print(table(s.by_tenant, "by tenant"))
        console.print(table(s.by_category, "by category"))
    if plot is not None:
        plot_trace(trace, s, plot)
        console.print(f"wrote {plot}")


@app.command("validate")
def traces_validate(
    path: Annotated[Path, typer.Argument(help="trace file (.parquet or .csv)")],
    all_problems: Annotated[bool, typer.Option("--all", help="list every problem")] = False,
) -> None:
    """Check a trace against the schema; exit 2 with the problem(s) when it fails."""
    from driftsched.ground.console import console
    from driftsched.traces.schema import TraceSchemaError
    from driftsched.traces.trace import read_trace

    try:
        trace = read_trace(path)
    except TraceSchemaError as exc:
        if not all_problems:
            raise
        for line in exc.lines():
            print(f"error: {line}", file=sys.stderr)
        raise SystemExit(2) from None
    console.print(
        f"ok: {path} holds {len(trace):,} valid requests (schema v{trace.meta['schema_version']})"
    )


@app.command("convert")
def traces_convert(
    source: Annotated[Path, typer.Argument(help="trace file to read")],
    target: Annotated[Path, typer.Argument(help="trace file to write (format by suffix)")],
) -> None:
    """Convert a trace between Parquet and CSV (validating it on the way)."""
    from driftsched.traces.trace import read_trace

    written(read_trace(source), target)
