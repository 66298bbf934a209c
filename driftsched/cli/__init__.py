"""The ``driftsched`` command line. Thin: parses options, calls the API, prints and writes.

Every user error surfaces as one line ``error: ...`` on stderr and exit code 2 (see
:mod:`driftsched.ground.errors`); nothing is written unless the whole step succeeded.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from driftsched.ground.errors import DriftschedError

app = typer.Typer(
    help="Simulate, calibrate and validate multi-tenant LLM serving schedulers under token drift.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
traces_app = typer.Typer(
    help="Generate, import, validate and describe request traces.", no_args_is_help=True
)
app.add_typer(traces_app, name="traces")
sim_app = typer.Typer(
    help="Simulate gateway policies and drift correctors on a trace.", no_args_is_help=True
)
app.add_typer(sim_app, name="sim")
cal_app = typer.Typer(
    help="Profile a real vLLM engine, fit cost-model profiles, derive priors.", no_args_is_help=True
)
app.add_typer(cal_app, name="calibrate")
val_app = typer.Typer(
    help="Re-run sampled scenarios live on vLLM; measure the simulator's error.",
    no_args_is_help=True,
)
app.add_typer(val_app, name="validate")

Out = Annotated[Path, typer.Option("--output", "-o", help="output file (.parquet or .csv)")]
Sets = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="any other config field as KEY=VALUE (JSON for lists/dicts); repeatable"
    ),
]
Seed = Annotated[int, typer.Option(help="random seed; same seed -> identical output")]


def _overrides(pairs: list[str] | None, what: str) -> dict:
    from driftsched.ground.parse import parse_sets

    return parse_sets(pairs, what)


def _written(trace, path: Path) -> None:
    from driftsched.ground.console import console

    trace.write(path)
    console.print(f"wrote {len(trace):,} requests to {path}")


@traces_app.command("list")
def traces_list() -> None:
    """List the trace generators and importers."""
    import pandas as pd

    from driftsched.ground.console import console, table
    from driftsched.traces.generators import GENERATORS
    from driftsched.traces.importers import importers

    rows = [("generate", n, g.summary) for n, g in GENERATORS.items()]
    rows += [("import", n, i.summary) for n, i in importers().items()]
    console.print(table(pd.DataFrame(rows, columns=["command", "name", "what"])))


@traces_app.command("generate")
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

    params = _overrides(sets, f"generator {name}")
    params["seed"] = seed
    if requests is not None:
        params["requests"] = requests
    if rate is not None:
        params["rate_per_s"] = rate
    if drift:
        params["drifts"] = list(drift)
    _written(generate(name, **params), output)


@traces_app.command("import")
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
    params.update(_overrides(sets, f"importer {name}"), seed=seed)
    trace = import_trace(name, source, **params)
    for reason, count in trace.meta.get("dropped_rows", {}).items():
        console.print(f"dropped {count:,} rows: {reason}")
    _written(trace, output)


@traces_app.command("describe")
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

    trace = read_trace(path)
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


@traces_app.command("validate")
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
            print(f"error: {line}", file=__import__("sys").stderr)
        raise SystemExit(2) from None
    console.print(
        f"ok: {path} holds {len(trace):,} valid requests (schema v{trace.meta['schema_version']})"
    )


@traces_app.command("convert")
def traces_convert(
    source: Annotated[Path, typer.Argument(help="trace file to read")],
    target: Annotated[Path, typer.Argument(help="trace file to write (format by suffix)")],
) -> None:
    """Convert a trace between Parquet and CSV (validating it on the way)."""
    from driftsched.traces.trace import read_trace

    _written(read_trace(source), target)


# -- sim ------------------------------------------------------------------------------------
TraceOpt = Annotated[
    Path | None,
    typer.Option(
        "--trace", "-t", help="trace file; default: the study's workload (driftsched-paper, seed 0)"
    ),
]
ProfileOpt = Annotated[str | None, typer.Option(help="cost-model profile name or JSON path")]
ModeOpt = Annotated[str | None, typer.Option(help="continuous | microbatch")]


def _trace(path: Path | None):
    from driftsched.ground.console import console
    from driftsched.traces.generators import generate
    from driftsched.traces.trace import read_trace

    if path is not None:
        return read_trace(path)
    console.print(
        "trace: driftsched-paper, 3000 requests, seed 0 (generated; pass --trace FILE for another)",
        soft_wrap=True,
    )
    return generate("driftsched-paper")


def _progress_bar(count: str = "{task.completed}/{task.total}", transient: bool = True):
    """The rich progress bar every long command shows: description, bar, count, ETA."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from driftsched.ground.console import console

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn(count),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
    )


def _numbers(text: str | None, option: str, cast=float) -> list | None:
    """A comma list of numbers (``cast`` each), or ``None``; one-line error if malformed."""
    from driftsched.ground.errors import InputError

    if text is None:
        return None
    try:
        return [cast(x) for x in text.split(",") if x.strip()]
    except ValueError:
        kind = "integers" if cast is int else "numbers"
        raise InputError(f"{option}: expected a comma list of {kind}, got {text!r}") from None


def _sim_config(sets, **given):
    from driftsched.ground.config import build
    from driftsched.sim.config import SimConfig

    params = {k: v for k, v in given.items() if v is not None}
    params.update(_overrides(sets, "simulation config"))
    return build(SimConfig, params, "simulation config")


def _profile_note(config) -> None:
    from driftsched.ground.console import console
    from driftsched.sim.costmodel import load_profile

    p = load_profile(config.profile)
    kind = "PRIOR (derived from specs, not measured)" if p.kind == "prior" else "measured"
    console.print(
        f"profile: {p.name} — {kind}; {p.provenance.hardware}, {p.provenance.model}", soft_wrap=True
    )


SUMMARY_COLUMNS = [
    "requests",
    "finished",
    "e2e_p50_s",
    "e2e_p99_s",
    "ttft_p50_s",
    "ttft_p99_s",
    "queue_wait_p50_s",
    "queue_wait_p99_s",
    "queue_wait_max_s",
    "output_tokens_per_s",
    "est_mae_tokens",
    "class_agreement",
    "preemptions",
]


COMPACT_COLUMNS = [
    "policy",
    "corrector",
    "e2e_p50_s",
    "e2e_p99_s",
    "ttft_p50_s",
    "ttft_p99_s",
    "queue_wait_max_s",
    "output_tokens_per_s",
    "est_mae_tokens",
    "class_agreement",
    "jain_fairness",
]


@sim_app.command("run")
def sim_run(
    output: Annotated[Path, typer.Option("--output", "-o", help="output folder")],
    trace: TraceOpt = None,
    policy: Annotated[
        str | None, typer.Option(help="fifo | priority | weighted | sjf | aging")
    ] = None,
    corrector: Annotated[str | None, typer.Option(help="none | ewma | oracle")] = None,
    mode: ModeOpt = None,
    profile: ProfileOpt = None,
    sets: Sets = None,
    no_plots: Annotated[
        bool, typer.Option("--no-plots", help="skip the figures (tables and records only)")
    ] = False,
) -> None:
    """Simulate one policy and corrector; print the summary; write records, summaries, plots."""
    from driftsched.ground.console import console, table
    from driftsched.sim.simulation import simulate

    tr = _trace(trace)
    config = _sim_config(sets, policy=policy, corrector=corrector, mode=mode, profile=profile)
    _profile_note(config)
    with _progress_bar("{task.completed}/{task.total} requests") as bar:
        task = bar.add_task("simulating", total=len(tr))
        result = simulate(tr, config, progress=lambda done, _: bar.update(task, completed=done))
    if result.meta["oracle"]:
        console.print(
            "[bold]corrector oracle reads the true lengths: an upper bound, not a "
            "deployable policy[/]"
        )
    console.print(
        table(
            result.summary()[SUMMARY_COLUMNS],
            f"{config.policy} / {config.corrector} / {config.mode}",
        )
    )
    console.print(table(result.summary("tier")[["tier", *SUMMARY_COLUMNS]], "by tier"))
    result.write(output, plots_too=not no_plots)
    figures = "" if no_plots else ", plots"
    console.print(f"wrote {output}/ (records.parquet, summary.json/csv, timeseries{figures})")


@sim_app.command("compare")
def sim_compare(
    output: Annotated[Path, typer.Option("--output", "-o", help="output folder")],
    trace: TraceOpt = None,
    policies: Annotated[str, typer.Option(help="'all' or a comma list")] = "all",
    correctors: Annotated[str, typer.Option(help="'all' or a comma list")] = "none,ewma",
    mode: ModeOpt = None,
    profile: ProfileOpt = None,
    sets: Sets = None,
) -> None:
    """Every policy x corrector on one trace: one table (Markdown + CSV) and one CDF figure."""
    from driftsched.ground.console import console, table
    from driftsched.sim.correctors import CORRECTORS
    from driftsched.sim.policies import POLICIES, parse_names
    from driftsched.sim.studies.compare import compare

    pols = parse_names(policies, POLICIES, "policy")
    cors = parse_names(correctors, CORRECTORS, "corrector")
    tr = _trace(trace)
    config = _sim_config(sets, mode=mode, profile=profile)
    _profile_note(config)
    with _progress_bar() as bar:
        task = bar.add_task("simulating", total=len(pols) * len(cors))
        result = compare(
            tr,
            pols,
            cors,
            config,
            progress=lambda label: bar.update(task, advance=1, description=label),
        )
    console.print(
        table(
            result.table()[COMPACT_COLUMNS],
            f"{config.mode} mode (all columns in {output}/compare.csv)",
        )
    )
    if "oracle" in cors:
        console.print("corrector 'oracle' reads the true lengths: an upper bound only")
    result.write(output)
    console.print(f"wrote {output}/compare.csv, compare.md, compare_cdf.png and runs/")


@app.command("paper")
def paper(
    output: Annotated[Path, typer.Option("--output", "-o", help="output folder")] = Path(
        "out/paper"
    ),
    profile: ProfileOpt = None,
    requests: Annotated[int, typer.Option(help="requests per trace")] = 3000,
    seeds: Annotated[str, typer.Option(help="comma list of seeds, one trace each")] = "0,1,2",
    policies: Annotated[str, typer.Option(help="'all' or a comma list")] = "all",
    correctors: Annotated[str, typer.Option(help="'all' or a comma list")] = "none,ewma",
    gap_scale: Annotated[
        float, typer.Option(help="multiply the inter-arrival gaps (>1 = lighter load)")
    ] = 1.0,
    sets: Sets = None,
) -> None:
    """Reproduce the DriftSched study in simulation, side by side with its reported results."""
    import pandas as pd

    from driftsched.ground.config import build
    from driftsched.ground.console import console, table
    from driftsched.sim.correctors import CORRECTORS
    from driftsched.sim.policies import POLICIES, parse_names
    from driftsched.sim.studies.paper import PaperSettings, fmt, reproduce

    sim = _sim_config(sets, mode="microbatch", batch_size=32, batch_wait_s=0.010, profile=profile)
    settings = build(
        PaperSettings,
        {
            "requests": requests,
            "seeds": _numbers(seeds, "--seeds", int),
            "policies": parse_names(policies, POLICIES, "policy"),
            "correctors": parse_names(correctors, CORRECTORS, "corrector"),
            "gap_scale": gap_scale,
            "sim": sim,
        },
        "paper settings",
    )
    _profile_note(sim)
    total = len(settings.seeds) * len(settings.policies) * len(settings.correctors)
    with _progress_bar() as bar:
        task = bar.add_task("simulating", total=total)
        result = reproduce(
            settings, progress=lambda label: bar.update(task, advance=1, description=label)
        )
    deltas = result.deltas()
    claims = pd.DataFrame(
        [
            {
                "claim": r["meaning"],
                "study": fmt(r["study"]),
                "driftsched": fmt(r["driftsched"]),
                "per seed": " ".join(fmt(v) for v in r["by_seed"]),
                "stress phase": fmt(r["stress_phase_only"]),
            }
            for r in deltas["claims"]
        ]
    )
    console.print(table(claims, "The study's headline results vs driftsched (docs/paper.md)"))
    console.print(
        table(
            result.table()[[*COMPACT_COLUMNS, "est_rmse_tokens"]],
            f"per scheduler, mean over seeds {settings.seeds} (all columns in paper_table.csv)",
        )
    )
    if "oracle" in settings.correctors:
        console.print("corrector 'oracle' reads the true lengths: an upper bound only")
    written = result.write(output)
    console.print(f"wrote {', '.join(p.name for p in written)} to {output}/")


@sim_app.command("list")
def sim_list() -> None:
    """List policies, correctors and bundled cost-model profiles."""
    import pandas as pd

    from driftsched.ground.console import console, table
    from driftsched.sim.correctors import CORRECTORS
    from driftsched.sim.costmodel import bundled_profiles, load_profile
    from driftsched.sim.policies import POLICIES

    def doc(cls) -> str:
        text = sys.modules[cls.__module__].__doc__ or ""
        return text.strip().split("\n\n")[0].replace("\n", " ")

    rows = [("policy", n, doc(c)) for n, (c, _) in POLICIES.items()]
    rows += [("corrector", n, doc(c)) for n, (c, _) in CORRECTORS.items()]
    for name in bundled_profiles():
        p = load_profile(name)
        rows.append(("profile", name, f"{p.kind}: {p.provenance.hardware}, {p.provenance.model}"))
    console.print(table(pd.DataFrame(rows, columns=["kind", "name", "what"])))


# -- calibrate --------------------------------------------------------------------------------
@cal_app.command("tiny-model")
def cal_tiny_model(folder: Annotated[Path, typer.Argument(help="folder to write config.json")]):
    """Write the tiny random-weight Llama config used to profile vLLM without downloads."""
    from driftsched.calibrate.tinymodel import write_tiny_model
    from driftsched.ground.console import console

    console.print(f"wrote {write_tiny_model(folder) / 'config.json'}")


@cal_app.command("profile")
def cal_profile(
    output: Annotated[Path, typer.Option("--output", "-o", help="raw measurements folder")],
    model: Annotated[
        str | None,
        typer.Option(
            help="model folder or Hugging Face id; default: the tiny model, written into OUTPUT"
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="cpu | cuda")] = "cpu",
    quick: Annotated[bool, typer.Option(help="a short plan (CI)")] = False,
    repeats: Annotated[int | None, typer.Option(help="repetitions of every point")] = None,
    seed: Seed = 0,
    sets: Sets = None,
) -> None:
    """Time every engine step of a profiling plan on a real vLLM engine (resumable)."""
    from driftsched.calibrate.profiler import ProfileSettings, profile
    from driftsched.calibrate.tinymodel import write_tiny_model
    from driftsched.ground.config import build
    from driftsched.ground.console import console

    params = _overrides(sets, "profile settings")
    if model is None:
        model = str(write_tiny_model(output / "tiny-model"))
    params.update(model=model, device=device, quick=quick, seed=seed)
    if repeats is not None:
        params["repeats"] = repeats
    if device == "cuda":
        params = {
            "dtype": "float16",
            "gpu_memory_utilization": 0.70,
            "max_num_seqs": 256,
            "max_num_batched_tokens": 2048,
            **params,
        }
    settings = build(ProfileSettings, params, "profile settings")
    telemetry = None
    if device == "cuda":
        from driftsched.calibrate.telemetry import GpuTelemetry

        telemetry = GpuTelemetry(output / "telemetry.parquet")
        telemetry.start()
    console.print("starting vLLM (the first start compiles the model; later ones are faster)")
    try:
        with _progress_bar("{task.completed}/{task.total} episodes", transient=False) as bar:
            task = bar.add_task("profiling", total=None)

            def step(done: int, total: int, label: str) -> None:
                bar.update(task, completed=done, total=total, description=label)

            profile(output, settings, progress=step)
    finally:
        if telemetry is not None:
            telemetry.stop()
    console.print(
        f"wrote {output}/ (parts/*.parquet, environment.json); next: driftsched "
        f"calibrate fit {output} -o PROFILE.json",
        soft_wrap=True,
    )


@cal_app.command("fit")
def cal_fit(
    raw: Annotated[Path, typer.Argument(help="raw folder from calibrate profile")],
    output: Annotated[Path, typer.Option("--output", "-o", help="profile JSON to write")],
    name: Annotated[str | None, typer.Option(help="profile name (default: file stem)")] = None,
    seed: Seed = 0,
) -> None:
    """Fit the step-time model (NNLS) and report held-out quality; write the profile and plots."""
    from driftsched.calibrate.fit import fit, plot_fit, to_profile
    from driftsched.calibrate.profiler import read_raw
    from driftsched.ground.console import console
    from driftsched.sim.studies.plots import save

    frame, env, overheads = read_raw(raw)
    report = fit(frame, seed=seed, source=str(raw))
    prof = to_profile(report, env, overheads, name or output.stem)
    prof.write(output)
    save(plot_fit(report), output.with_suffix(".fit.png"))
    _print_profile(prof)
    console.print(f"wrote {output} and {output.with_suffix('.fit.png')}")


def _print_profile(prof) -> None:
    import pandas as pd

    from driftsched.ground.console import console, table

    kind = "PRIOR (derived, not measured)" if prof.kind == "prior" else "measured"
    p = prof.provenance
    console.print(
        f"[bold]{prof.name}[/]: {kind}; {p.hardware}; {p.model}; "
        f"{p.engine} {p.engine_version or ''}; {p.date}",
        soft_wrap=True,
    )
    coef = pd.DataFrame(
        [(k, v, prof.units.get(k, "")) for k, v in prof.coefficients.items()],
        columns=["feature", "coefficient", "unit"],
    )
    console.print(table(coef, "coefficients"))
    e = prof.engine
    console.print(
        f"engine: block_size {e.block_size}, {e.num_gpu_blocks} KV blocks, "
        f"max_num_seqs {e.max_num_seqs}, max_num_batched_tokens "
        f"{e.max_num_batched_tokens}, max_model_len {e.max_model_len}, {e.dtype}"
    )
    if prof.fit_quality:
        rows = [
            (r, q["n"], q["r2"], q["mape"], q["p90_ape"])
            for r, q in prof.fit_quality["held_out"].items()
        ]
        console.print(
            table(
                pd.DataFrame(rows, columns=["held-out", "steps", "r2", "mape", "p90_ape"]),
                "fit quality",
            )
        )
    if prof.overheads_s:
        console.print(
            "overheads outside steps: "
            + ", ".join(f"{k} {v * 1e3:.3f} ms" for k, v in prof.overheads_s.items())
        )


@cal_app.command("show")
def cal_show(profile: Annotated[str, typer.Argument(help="profile name or JSON path")]) -> None:
    """Print a profile: provenance, coefficients, engine settings, fit quality."""
    from driftsched.sim.costmodel import load_profile

    _print_profile(load_profile(profile))


@cal_app.command("prior")
def cal_prior(
    gpu: Annotated[str, typer.Option(help="L4, A10G, L40S, A100-40GB, A100-80GB, H100, H200")],
    model: Annotated[str, typer.Option(help="known model id or a config.json path")],
    output: Annotated[Path, typer.Option("--output", "-o", help="profile JSON to write")],
    gpu_memory_utilization: Annotated[float, typer.Option()] = 0.70,
    max_model_len: Annotated[int, typer.Option()] = 2048,
    max_num_seqs: Annotated[int, typer.Option()] = 256,
    max_num_batched_tokens: Annotated[int, typer.Option()] = 2048,
    tensor_parallel: Annotated[int, typer.Option("--tp", help="tensor-parallel GPUs")] = 1,
    name: Annotated[str | None, typer.Option(help="profile name")] = None,
) -> None:
    """Derive a roofline PRIOR profile from a GPU spec table and a model config (not measured)."""
    from driftsched.calibrate.prior import derive_prior
    from driftsched.ground.console import console

    prof = derive_prior(
        gpu,
        model,
        gpu_memory_utilization=gpu_memory_utilization,
        max_model_len=max_model_len,
        max_num_seqs=max_num_seqs,
        max_num_batched_tokens=max_num_batched_tokens,
        tensor_parallel=tensor_parallel,
        name=name,
    )
    prof.write(output)
    _print_profile(prof)
    console.print(f"wrote {output}")


# -- capacity planning -------------------------------------------------------------------------
def _workload_overrides(generator, requests, trace, params) -> dict:
    out: dict = {}
    if trace is not None:
        out.update(trace=str(trace), generator=None)
    elif generator is not None:
        out["generator"] = generator
    if requests is not None:
        out["requests"] = requests
    if params:
        out["params"] = _overrides(params, "workload parameters")
    return out


GeneratorOpt = Annotated[
    str | None, typer.Option(help="workload generator (default driftsched-paper)")
]
RequestsOpt = Annotated[int | None, typer.Option(help="requests per generated trace")]
WorkloadTraceOpt = Annotated[Path | None, typer.Option("--trace", help="a trace file instead")]
ParamOpt = Annotated[
    list[str] | None, typer.Option("--param", help="generator parameter KEY=VALUE; repeatable")
]


@app.command("sweep")
def sweep(
    spec: Annotated[
        Path | None, typer.Argument(help="TOML scenario file (optional; options override it)")
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="output folder")] = Path(
        "out/sweep"
    ),
    rates: Annotated[str | None, typer.Option(help="offered rates, requests/s")] = None,
    rate_multipliers: Annotated[
        str | None, typer.Option(help="multiples of the workload's own rate")
    ] = None,
    policies: Annotated[str | None, typer.Option(help="comma list or 'all'")] = None,
    correctors: Annotated[str | None, typer.Option(help="comma list or 'all'")] = None,
    modes: Annotated[str | None, typer.Option(help="continuous,microbatch")] = None,
    replicas: Annotated[str | None, typer.Option(help="comma list of replica counts")] = None,
    seeds: Annotated[str | None, typer.Option(help="comma list of seeds")] = None,
    generator: GeneratorOpt = None,
    requests: RequestsOpt = None,
    trace: WorkloadTraceOpt = None,
    param: ParamOpt = None,
    slo_e2e: Annotated[float | None, typer.Option(help="E2E target (s) for attainment")] = None,
    slo_ttft: Annotated[float | None, typer.Option(help="TTFT target (s)")] = None,
    workers: Annotated[
        int | None, typer.Option(help="local processes (default: all cores)")
    ] = None,
    ray: Annotated[
        str | None, typer.Option("--ray", help="run on a Ray cluster: ADDRESS, 'auto' or 'local'")
    ] = None,
    sets: Sets = None,
) -> None:
    """A grid of simulations over load, policy, corrector, mode, replicas and seeds, in parallel
    and resumable; one tidy table with 95% CIs over seeds, and plots against load."""
    from driftsched.ground.console import console, table
    from driftsched.sim.correctors import CORRECTORS
    from driftsched.sim.policies import POLICIES, parse_names
    from driftsched.sim.studies.sweep import load_spec, run_sweep

    over: dict = {}
    if rates is not None:
        over["rates_per_s"] = _numbers(rates, "--rates")
    if rate_multipliers is not None:
        over["rate_multipliers"] = _numbers(rate_multipliers, "--rate-multipliers")
    if policies is not None:
        over["policies"] = parse_names(policies, POLICIES, "policy")
    if correctors is not None:
        over["correctors"] = parse_names(correctors, CORRECTORS, "corrector")
    if modes is not None:
        over["modes"] = _csv(modes)
    if replicas is not None:
        over["replicas"] = _numbers(replicas, "--replicas", int)
    if seeds is not None:
        over["seeds"] = _numbers(seeds, "--seeds", int)
    if slo_e2e is not None:
        over["slo_e2e_s"] = slo_e2e
    if slo_ttft is not None:
        over["slo_ttft_s"] = slo_ttft
    wl = _workload_overrides(generator, requests, trace, param)
    if wl:
        over["workload"] = wl
    if sets:
        over["sim"] = _overrides(sets, "simulation config")
    spec_ = load_spec(spec, over)
    total = len(spec_.points())
    with _progress_bar() as bar:
        task = bar.add_task("sweep", total=total)
        result = run_sweep(
            spec_,
            output,
            workers=workers,
            ray_address=ray,
            progress=lambda done, n, label: bar.update(task, completed=done, description=label),
        )
    t = result.table()
    cols = [
        c
        for c in (
            "rate_per_s", "policy", "corrector", "mode", "replicas", "seeds", "e2e_p50_s",
            "e2e_p99_s", "e2e_p99_s_ci_high", "ttft_p99_s", "e2e_slo_attainment",
        )
        if c in t.columns
    ]  # fmt: skip
    console.print(table(t[cols], f"{total} runs (all columns in {output}/sweep.csv)"))
    written = result.write(output)
    console.print(f"wrote {', '.join(p.name for p in written)} to {output}/")


@app.command("capacity")
def capacity(
    slo: Annotated[str, typer.Option(help="e.g. 'p99_e2e<=10s,p99_ttft<=2s,premium:p99_e2e<=5s'")],
    output: Annotated[Path, typer.Option("--output", "-o", help="output folder")] = Path(
        "out/capacity"
    ),
    policies: Annotated[str, typer.Option(help="comma list or 'all'")] = "fifo,sjf",
    seeds: Annotated[str, typer.Option(help="comma list of seeds")] = "0,1,2",
    confidence: Annotated[float, typer.Option(help="one-sided confidence")] = 0.95,
    resolution: Annotated[float, typer.Option(help="relative width of the final bracket")] = 0.02,
    target_rate: Annotated[
        float | None, typer.Option(help="also find the fewest replicas for this rate (req/s)")
    ] = None,
    max_replicas: Annotated[int, typer.Option(help="give up above this many replicas")] = 64,
    generator: GeneratorOpt = None,
    requests: RequestsOpt = None,
    trace: WorkloadTraceOpt = None,
    param: ParamOpt = None,
    sets: Sets = None,
) -> None:
    """Per policy: the highest sustainable arrival rate within the SLOs (and, with
    --target-rate, the fewest replicas for it). A table and a plot of the knee."""
    import pandas as pd

    from driftsched.ground.atomic import write_json
    from driftsched.ground.config import build
    from driftsched.ground.console import console, table
    from driftsched.sim.policies import POLICIES, parse_names
    from driftsched.sim.result import write_csv
    from driftsched.sim.studies import plots
    from driftsched.sim.studies.capacity import CapacitySearch, knee_table, parse_slos, plot_knee
    from driftsched.sim.studies.workload import Workload

    slos = parse_slos(slo)
    pols = parse_names(policies, POLICIES, "policy")
    seed_list = _numbers(seeds, "--seeds", int)
    workload = build(Workload, _workload_overrides(generator, requests, trace, param), "workload")
    sim = _overrides(sets, "simulation config")
    results, rows = [], []
    with _progress_bar() as bar:
        task = bar.add_task("capacity", total=len(pols))
        for policy in pols:
            bar.update(task, description=f"searching {policy}")
            search = CapacitySearch(
                workload, {**sim, "policy": policy}, slos, seed_list, confidence
            )
            res = search.max_rate(resolution=resolution)
            results.append(res)
            row = {
                "policy": policy,
                "max_rate_per_s": res.rate_per_s,
                "failing_rate_per_s": res.failing_rate_per_s,
                "evaluations": len(res.evaluations),
            }
            if target_rate is not None:
                row["target_rate_per_s"] = target_rate
                row["min_replicas"] = search.min_replicas(target_rate, max_replicas)
            rows.append(row)
            bar.advance(task)
    summary = pd.DataFrame(rows)
    console.print(
        table(summary, f"capacity within {', '.join(s.label for s in slos)} "
              f"({confidence:.0%} one-sided, seeds {seed_list})")
    )  # fmt: skip
    knee = knee_table(results, slos)
    write_csv(summary, output / "capacity.csv")
    write_csv(knee, output / "capacity_points.csv")
    write_json(
        output / "capacity.json",
        {
            "slos": [s.label for s in slos],
            "confidence": confidence,
            "seeds": seed_list,
            "workload": workload.model_dump(mode="json"),
            "sim": sim,
            "results": rows,
        },
    )
    plots.save(plot_knee(knee, slos, results), output / "capacity_knee.png")
    console.print(f"wrote capacity.csv, capacity_points.csv, capacity.json, capacity_knee.png "
                  f"to {output}/")  # fmt: skip


@app.command("report")
def report(
    folder: Annotated[
        Path,
        typer.Argument(help="a run, compare, paper, sweep, capacity or validate output folder"),
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="HTML file (default FOLDER/report.html)")
    ] = None,
) -> None:
    """One self-contained HTML page (tables and figures embedded) of an output folder."""
    from driftsched.ground.console import console
    from driftsched.sim.studies.report import write_report

    path = write_report(folder, output)
    console.print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")


# -- validate ---------------------------------------------------------------------------------
def _csv(text: str | None, cast=str) -> list | None:
    return None if text is None else [cast(x.strip()) for x in text.split(",") if x.strip()]


@val_app.command("run")
def val_run(
    output: Annotated[Path, typer.Option("--output", "-o", help="report folder")],
    profile: Annotated[
        str, typer.Option(help="measured profile of the live engine")
    ] = "cpu-tiny-llama",
    scenarios: Annotated[int, typer.Option(help="how many scenarios to sample (K)")] = 6,
    policies: Annotated[str | None, typer.Option(help="comma list (default: all five)")] = None,
    correctors: Annotated[str | None, typer.Option(help="comma list (default: none,ewma)")] = None,
    modes: Annotated[str | None, typer.Option(help="continuous,microbatch")] = None,
    loads: Annotated[str | None, typer.Option(help="load levels x capacity, e.g. 0.8,1.5")] = None,
    slices: Annotated[str | None, typer.Option(help="trace slices (seeds), e.g. 0,1")] = None,
    requests: Annotated[int | None, typer.Option(help="requests per scenario")] = None,
    trace: Annotated[
        Path | None, typer.Option(help="trace to slice (default: the study's)")
    ] = None,
    seed: Seed = 0,
    max_p50_error: Annotated[
        float | None,
        typer.Option(help="exit 3 if any scenario's E2E P50 relative error exceeds this"),
    ] = None,
    max_p99_error: Annotated[
        float | None,
        typer.Option(help="exit 3 if any scenario's E2E P99 relative error exceeds this"),
    ] = None,
    timeout_s: Annotated[float, typer.Option(help="per-scenario wall-clock limit")] = 900.0,
    repeat_live: Annotated[
        bool, typer.Option(help="run each scenario live twice: report the live-vs-live noise floor")
    ] = False,
    sets: Sets = None,
) -> None:
    """Sample scenarios, run each live on vLLM and in the simulator, report the errors."""
    from driftsched.ground.config import build
    from driftsched.ground.console import console, fail
    from driftsched.validate.report import figures
    from driftsched.validate.runner import ValidateSettings, run

    grid = {
        "policies": _csv(policies),
        "correctors": _csv(correctors),
        "modes": _csv(modes),
        "loads": _csv(loads, float),
        "slices": _csv(slices, int),
        "requests": requests,
        "trace": str(trace) if trace else None,
        "scenarios": scenarios,
        "seed": seed,
    }
    grid = {k: v for k, v in grid.items() if v is not None}
    grid.update(_overrides(sets, "validation grid"))
    settings = build(
        ValidateSettings,
        {"profile": profile, "grid": grid, "timeout_s": timeout_s, "repeat_live": repeat_live},
        "validate settings",
    )
    console.print("starting the live vLLM engine in-process")
    with _progress_bar("scenario {task.completed}/{task.total}", transient=False) as bar:
        task = bar.add_task("validating", total=min(settings.grid.scenarios, 10**6))
        report = run(
            output,
            settings,
            progress=lambda k, n, key: bar.update(task, completed=k, total=n, description=key),
        )
    figures(output, report)
    s = report.get("summary", {})
    console.print(
        f"E2E P50 error {s.get('e2e_p50_rel_error', float('nan')):.1%}, P99 "
        f"{s.get('e2e_p99_rel_error', float('nan')):.1%}; TTFT P50 "
        f"{s.get('ttft_p50_rel_error', float('nan')):.1%}; ranking tau "
        f"{s.get('ranking_agreement')}; report: {output}/report.md",
        soft_wrap=True,
    )
    worst50 = max((r["e2e_p50_rel_error"] for r in report["scenarios"]), default=0.0)
    worst99 = max((r["e2e_p99_rel_error"] for r in report["scenarios"]), default=0.0)
    if max_p50_error is not None and worst50 > max_p50_error:
        fail(f"E2E P50 error {worst50:.1%} exceeds --max-p50-error {max_p50_error:.1%}", 3)
    if max_p99_error is not None and worst99 > max_p99_error:
        fail(f"E2E P99 error {worst99:.1%} exceeds --max-p99-error {max_p99_error:.1%}", 3)


def main() -> None:
    """Entry point: run the app; user errors become one line on stderr and exit code 2."""
    from driftsched.ground.console import fail

    try:
        app()
    except DriftschedError as exc:
        fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        fail("interrupted", 130)


if __name__ == "__main__":
    main()
