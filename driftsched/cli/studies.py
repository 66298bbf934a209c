"""The study commands: ``paper``, ``sweep``, ``capacity`` and ``report``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from driftsched.cli.common import (
    COMPACT_COLUMNS,
    ProfileOpt,
    Sets,
    numbers,
    oracle_note,
    profile_note,
    progress_bar,
    set_values,
    sim_config,
)

GeneratorOpt = Annotated[
    str | None, typer.Option(help="workload generator (default driftsched-paper)")
]
RequestsOpt = Annotated[int | None, typer.Option(help="requests per generated trace")]
WorkloadTraceOpt = Annotated[Path | None, typer.Option("--trace", help="a trace file instead")]
ParamOpt = Annotated[
    list[str] | None, typer.Option("--param", help="generator parameter KEY=VALUE; repeatable")
]


def _workload(generator, requests, trace, params) -> dict:
    """The workload fields the options give (a trace file replaces the generator)."""
    out: dict = {}
    if trace is not None:
        out.update(trace=str(trace), generator=None)
    elif generator is not None:
        out["generator"] = generator
    if requests is not None:
        out["requests"] = requests
    if params:
        out["params"] = set_values(params, "workload parameters")
    return out


def paper(
    output: Annotated[Path, typer.Option("--output", "-o", help="output folder")] = Path(
        "out/paper"
    ),
    profile: ProfileOpt = None,
    requests: Annotated[int, typer.Option(help="requests per trace")] = 3000,
    seeds: Annotated[str, typer.Option(help="comma list of seeds, one trace each")] = "0,1,2",
    policies: Annotated[
        str, typer.Option(help="a comma list, or 'all' (every built-in); default: the study's five")
    ] = "fifo,priority,weighted,sjf,aging",
    correctors: Annotated[str, typer.Option(help="'all' or a comma list")] = "none,ewma",
    gap_scale: Annotated[
        float, typer.Option(help="multiply the inter-arrival gaps (>1 = lighter load)")
    ] = 1.0,
    variants: Annotated[
        bool,
        typer.Option(
            help="also run the study's two estimator variants (words, classified "
            "category; 90 more runs)"
        ),
    ] = True,
    sets: Sets = None,
) -> None:
    """Reproduce the DriftSched study in simulation, side by side with its reported results."""
    from driftsched.ground.config import build
    from driftsched.ground.console import console, table
    from driftsched.ground.folder import run_folder
    from driftsched.sim.correctors import CORRECTORS
    from driftsched.sim.policies import POLICIES
    from driftsched.sim.studies.paper import STUDY, PaperSettings, reproduce

    STUDY_MAE = STUDY["est_mae_change"]

    sim = sim_config(sets, mode="microbatch", batch_size=32, batch_wait_s=0.010, profile=profile)
    settings = build(
        PaperSettings,
        {
            "requests": requests,
            "seeds": numbers(seeds, "--seeds", int),
            "policies": POLICIES.parse(policies),
            "correctors": CORRECTORS.parse(correctors),
            "gap_scale": gap_scale,
            "variants": variants,
            "sim": sim,
        },
        "paper settings",
    )
    profile_note(sim)
    total = len(settings.seeds) * len(settings.policies) * len(settings.correctors)
    if settings.variants:  # three more views, none and ewma each
        total += 3 * len(settings.seeds) * len(settings.policies) * 2
    with progress_bar() as bar:
        task = bar.add_task("simulating", total=total)
        result = reproduce(
            settings, progress=lambda label: bar.update(task, advance=1, description=label)
        )
    console.print(
        table(result.claims(), "The study's headline results vs driftsched (docs/paper.md)")
    )
    console.print(
        table(
            result.table()[[*COMPACT_COLUMNS, "est_rmse_tokens"]],
            f"per scheduler, mean over seeds {settings.seeds} (all columns in paper_table.csv)",
        )
    )
    variants = result.variants()
    if variants is not None:
        from driftsched.sim.studies.paper import fmt

        shown = variants.drop(columns="study_est_mae_change")
        for col in ("est_mae_change", "est_rmse_change"):
            shown[col] = shown[col].map(fmt)
        console.print(
            table(
                shown,
                "the study's two estimator variants and each mechanism alone: estimate error, "
                f"ewma vs none (study: {STUDY_MAE:+.1%}; docs/paper.md)",
            )
        )
    oracle_note(settings.correctors)
    console.print(result.accounting_line(), soft_wrap=True)
    with run_folder(output):
        written = result.write(output)
    console.print(f"wrote {', '.join(p.name for p in written)} to {output}/")


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
    from driftsched.ground.console import console, on_interrupt, table
    from driftsched.ground.folder import run_folder
    from driftsched.ground.parse import parse_list
    from driftsched.sim.correctors import CORRECTORS
    from driftsched.sim.policies import POLICIES
    from driftsched.sim.studies.sweep import load_spec, run_sweep

    given = {
        "rates_per_s": numbers(rates, "--rates"),
        "rate_multipliers": numbers(rate_multipliers, "--rate-multipliers"),
        "policies": None if policies is None else POLICIES.parse(policies),
        "correctors": None if correctors is None else CORRECTORS.parse(correctors),
        "modes": parse_list(modes, "--modes"),
        "replicas": numbers(replicas, "--replicas", int),
        "seeds": numbers(seeds, "--seeds", int),
        "slo_e2e_s": slo_e2e,
        "slo_ttft_s": slo_ttft,
        "workload": _workload(generator, requests, trace, param) or None,
        "sim": set_values(sets, "simulation config") if sets else None,
    }
    spec_ = load_spec(spec, {k: v for k, v in given.items() if v is not None})
    total = len(spec_.points())
    spec_.preflight()  # a sweep that cannot run fails here, before its folder is touched
    profile_note(spec_.sim.get("profile"))

    def step(done, n, label):
        bar.update(task, completed=done, description=label)
        on_interrupt(
            f"kept {done} of {n} finished runs in {output}/runs; rerun the same command to resume"
        )

    with run_folder(output):
        with progress_bar() as bar:
            task = bar.add_task("sweep", total=total)
            result = run_sweep(spec_, output, workers=workers, ray_address=ray, progress=step)
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
        console.print(result.accounting_line(), soft_wrap=True)
        written = result.write(output)
    console.print(f"wrote {', '.join(p.name for p in written)} to {output}/")


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
    gpus: Annotated[
        str | None,
        typer.Option(
            help="compare GPUs (comma list, e.g. L4,A100-80GB,H100), each on a prior "
            "for --model, priced: which is cheapest for this SLO"
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="with --gpus: known model id or a config.json path")
    ] = None,
    tp: Annotated[int, typer.Option("--tp", help="with --gpus: tensor-parallel GPUs")] = 1,
    enforce_eager: Annotated[
        bool, typer.Option(help="with --gpus: priors without CUDA graphs")
    ] = False,
    price: Annotated[
        str | None,
        typer.Option(
            help="USD per GPU-hour: with --gpus 'L4=0.7,H100=2.5' overrides; else "
            "one number (default: the profile's own price, if it has one)"
        ),
    ] = None,
    generator: GeneratorOpt = None,
    requests: RequestsOpt = None,
    trace: WorkloadTraceOpt = None,
    param: ParamOpt = None,
    sets: Sets = None,
) -> None:
    """Per policy: the highest sustainable arrival rate within the SLOs (and, with
    --target-rate, the fewest replicas for it). A table and a plot of the knee. With --gpus:
    the same search on each GPU's prior, priced per GPU-hour and per million output tokens."""
    from driftsched.cli.hardware import capacity_price, compare_hardware
    from driftsched.ground.config import build
    from driftsched.ground.console import console, table
    from driftsched.ground.folder import run_folder
    from driftsched.sim.policies import POLICIES
    from driftsched.sim.studies.capacity import CapacityStudy
    from driftsched.sim.studies.slo import parse_slos
    from driftsched.sim.studies.workload import Workload

    workload = build(Workload, _workload(generator, requests, trace, param), "workload")
    sim = set_values(sets, "simulation config")
    if gpus is not None or model is not None:
        return compare_hardware(
            gpus, model, tp, enforce_eager, price, output, slo, policies, seeds, confidence,
            resolution, workload, sim,
        )  # fmt: skip
    usd, gpus_per_replica = capacity_price(sim.get("profile"), price)
    study = CapacityStudy(
        workload=workload,
        policies=POLICIES.parse(policies),
        slos=parse_slos(slo),
        seeds=numbers(seeds, "--seeds", int),
        sim=sim,
        confidence=confidence,
        resolution=resolution,
        target_rate_per_s=target_rate,
        max_replicas=max_replicas,
        usd_per_gpu_hour=usd,
        gpus_per_replica=gpus_per_replica,
    )
    profile_note(study.sim.get("profile"))
    with progress_bar() as bar:
        task = bar.add_task("capacity", total=len(study.policies))

        def step(policy, done, total):
            bar.update(task, completed=done, description=f"searching {policy or 'done'}")

        result = study.run(progress=step)
    console.print(table(result.summary, result.title))
    console.print(result.accounting_line(), soft_wrap=True)
    for res in result.results:
        if res.verdict != "feasible":
            console.print(f"[bold]{res.explain()}[/]", soft_wrap=True)
    with run_folder(output):
        written = result.write(output)
    console.print(f"wrote {', '.join(p.name for p in written)} to {output}/")


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


def drift_bench(
    output: Annotated[Path, typer.Option("--output", "-o", help="output folder")] = Path(
        "out/drift-bench"
    ),
    scenarios: Annotated[
        str, typer.Option(help="'all' (every registered drift scenario) or a comma list")
    ] = "all",
    correctors: Annotated[str, typer.Option(help="'all' (every built-in) or a comma list")] = "all",
    base: Annotated[
        str, typer.Option(help="generator to drift (poisson, driftsched-paper) or a trace file")
    ] = "poisson",
    requests: Annotated[int, typer.Option(help="requests in the base trace")] = 4000,
    rate: Annotated[float, typer.Option(help="the base generator's arrival rate, req/s")] = 2.0,
    seed: Annotated[int, typer.Option(help="seed of the base trace and the scenarios")] = 0,
    caps: Annotated[
        str, typer.Option(help="max_tokens: 'room' (what the context leaves) or 'trace'")
    ] = "room",
    profile: ProfileOpt = None,
    workers: Annotated[int, typer.Option(help="processes")] = 2,
    plots: Annotated[bool, typer.Option(help="write the error-over-time figures")] = True,
) -> None:
    """Every length estimator under every drift scenario: error, order (Kendall tau), time to
    recover, and the latency effect under sjf and vtc (docs/correctors.md)."""
    from driftsched.ground.config import build
    from driftsched.ground.console import console, table
    from driftsched.ground.folder import run_folder
    from driftsched.sim.correctors import CORRECTORS
    from driftsched.sim.studies.driftbench import DriftBenchSettings, run_drift_bench
    from driftsched.traces.scenarios import SCENARIOS

    fields = {
        "scenarios": SCENARIOS.parse(scenarios),
        "correctors": CORRECTORS.parse(correctors),
        "base": base,
        "requests": requests,
        "rate_per_s": rate,
        "seed": seed,
        "caps": caps,
    }
    if profile is not None:
        fields["profile"] = str(profile)
    settings = build(DriftBenchSettings, fields, "drift-bench settings")
    profile_note(settings.profile)
    total = len(settings.scenarios) * len(settings.correctors)
    with progress_bar() as bar:
        task = bar.add_task("scenario x corrector", total=total)
        bench = run_drift_bench(
            settings, workers=workers, progress=lambda k, n: bar.update(task, completed=k)
        )
    t = bench.table
    shown = t[["scenario", "corrector", "mae_tokens", "bias_tokens", "kendall_tau",
               "class_agreement", "recovery_s", "sjf_e2e_mean_s", "vtc_e2e_mean_s"]]  # fmt: skip
    console.print(table(shown, "every corrector x scenario (all columns in drift_bench.csv)"))
    console.print(table(bench.winners(), "which corrector wins where (oracle excluded)"))
    oracle_note(settings.correctors)
    console.print(f"{bench.accounting_line()} (each cell's sjf run; its vtc run replays the "
                  "same trace)", soft_wrap=True)  # fmt: skip
    console.print(
        "recovery_s: NaN = never back within tolerance, or no single change (stationary, "
        "oscillation)",
        soft_wrap=True,
    )
    with run_folder(output):
        written = bench.write(output)
        if plots:
            written += bench.plot(output)
    console.print(f"wrote {len(written)} files to {output}/ — {bench.note}", soft_wrap=True)


#: the top-level study commands, as ``driftsched <name>``
COMMANDS = {
    "paper": paper,
    "sweep": sweep,
    "capacity": capacity,
    "report": report,
    "drift-bench": drift_bench,
}
