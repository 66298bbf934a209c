"""``driftsched validate``: sampled scenarios live on vLLM and in the simulator, compared."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from driftsched.cli.common import Seed, Sets, command_group, progress_bar, set_values

app = command_group("Re-run sampled scenarios live on vLLM; measure the simulator's error.")


@app.command("run")
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
    rescale: Annotated[
        bool,
        typer.Option(
            help="gate on the sim rescaled by each run's measured speed (always reported)"
        ),
    ] = False,
    prefix_caching: Annotated[
        bool,
        typer.Option(
            help="vLLM's automatic prefix caching on, live and simulated (the trace's prefix "
            "column says what prompts share)"
        ),
    ] = False,
    replicas: Annotated[
        int,
        typer.Option(help="engines behind the gateway, each in its own process on its own core"),
    ] = 1,
    router: Annotated[
        str, typer.Option(help="with --replicas > 1: round_robin, least_outstanding, ...")
    ] = "round_robin",
    engine_arg: Annotated[
        list[str] | None,
        typer.Option(
            "--engine-arg",
            metavar="KEY=VALUE",
            help="a vLLM engine argument over the profile's (e.g. num_gpu_blocks_override=17, "
            "enforce_eager=true); repeatable; reported",
        ),
    ] = None,
    via: Annotated[
        str,
        typer.Option(
            help="engine: the in-process engine; http: gateway serve in front of a real vllm "
            "serve (the deployment path, HTTP included; docs/serve.md)"
        ),
    ] = "engine",
    upstream: Annotated[
        str | None,
        typer.Option(help="with --via http: a vLLM OpenAI server already running (base URL)"),
    ] = None,
    sets: Sets = None,
) -> None:
    """Sample scenarios, run each live on vLLM and in the simulator, report the errors."""
    from driftsched.ground.config import build
    from driftsched.ground.console import console
    from driftsched.ground.parse import parse_json_values, parse_list
    from driftsched.validate.report import figures
    from driftsched.validate.runner import ValidateSettings, check_gates, run

    grid = {
        "policies": parse_list(policies, "--policies"),
        "correctors": parse_list(correctors, "--correctors"),
        "modes": parse_list(modes, "--modes"),
        "loads": parse_list(loads, "--loads", float),
        "slices": parse_list(slices, "--slices", int),
        "requests": requests,
        "trace": str(trace) if trace else None,
        "scenarios": scenarios,
        "seed": seed,
    }
    grid = {k: v for k, v in grid.items() if v is not None}
    grid.update(set_values(sets, "validation grid"))
    settings = build(
        ValidateSettings,
        {
            "profile": profile,
            "grid": grid,
            "timeout_s": timeout_s,
            "repeat_live": repeat_live,
            "rescale": rescale,
            "prefix_caching": prefix_caching,
            "replicas": replicas,
            "router": router,
            "engine_overrides": parse_json_values(engine_arg, "--engine-arg"),
            "via": via,
            "upstream": upstream,
        },
        "validate settings",
    )
    server = settings.upstream or f"vllm serve (starting; its log: {output}/vllm-serve.log)"
    console.print(
        f"via HTTP: gateway serve in front of {server}"
        if settings.via == "http"
        else f"starting the live vLLM engine in-process; its own log goes to {output}/engine.log"
        if settings.replicas == 1
        else f"starting {settings.replicas} vLLM engines, one worker process and core each; "
        f"their logs go to {output}/engine-K.log"
    )
    with progress_bar("scenario {task.completed}/{task.total}", transient=False) as bar:
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
    if "replay_identical_share" in s:
        console.print(
            f"semantics vs timing: run speed {s['speed_ratio_run']:.3f} x the profile; replay "
            f"{s['replay_identical_share']:.1%} of steps identical, E2E P50 error "
            f"{s['replay_e2e_p50_rel_error']:.1%}; rescaled E2E P50 "
            f"{s['rescaled_e2e_p50_rel_error']:.1%}, P99 {s['rescaled_e2e_p99_rel_error']:.1%}"
            + (" (gates read the rescaled figures)" if rescale else ""),
            soft_wrap=True,
        )
    check_gates(report, max_p50_error, max_p99_error)
