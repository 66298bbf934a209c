"""``driftsched calibrate``: profile a real vLLM engine, fit a profile, show one, derive a prior."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from driftsched.cli.common import Seed, Sets, command_group, print_profile, progress_bar, set_values

app = command_group("Profile a real vLLM engine, fit cost-model profiles, derive priors.")


@app.command("tiny-model")
def cal_tiny_model(folder: Annotated[Path, typer.Argument(help="folder to write config.json")]):
    """Write the tiny random-weight Llama config used to profile vLLM without downloads."""
    from driftsched.calibrate.tinymodel import write_tiny_model
    from driftsched.ground.console import console

    console.print(f"wrote {write_tiny_model(folder) / 'config.json'}")


@app.command("profile")
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
    from driftsched.calibrate.profiler import profile, profile_settings
    from driftsched.ground.console import console

    params = set_values(sets, "profile settings")
    params.update(model=model, device=device, quick=quick, seed=seed)
    if repeats is not None:
        params["repeats"] = repeats
    settings = profile_settings(output, params)
    console.print(
        "starting vLLM (the first start compiles the model; later ones are faster); its own "
        f"log goes to {output}/engine.log"
    )
    with progress_bar("{task.completed}/{task.total} episodes", transient=False) as bar:
        task = bar.add_task("profiling", total=None)

        def step(done: int, total: int, label: str) -> None:
            bar.update(task, completed=done, total=total, description=label)

        profile(output, settings, progress=step)
    console.print(
        f"wrote {output}/ (parts/*.parquet, environment.json); next: driftsched "
        f"calibrate fit {output} -o PROFILE.json",
        soft_wrap=True,
    )


@app.command("fit")
def cal_fit(
    raw: Annotated[Path, typer.Argument(help="raw folder from calibrate profile")],
    output: Annotated[Path, typer.Option("--output", "-o", help="profile JSON to write")],
    name: Annotated[str | None, typer.Option(help="profile name (default: file stem)")] = None,
    seed: Seed = 0,
) -> None:
    """Fit the step-time model (NNLS) and report held-out quality; write the profile and plots."""
    from driftsched.calibrate.fit import fit_folder
    from driftsched.ground.console import console

    print_profile(fit_folder(raw, output, name, seed))
    console.print(f"wrote {output} and {output.with_suffix('.fit.png')}")


@app.command("show")
def cal_show(profile: Annotated[str, typer.Argument(help="profile name or JSON path")]) -> None:
    """Print a profile: provenance, coefficients, engine settings, fit quality."""
    from driftsched.sim.profile import load_profile

    print_profile(load_profile(profile))


@app.command("prior")
def cal_prior(
    gpu: Annotated[str, typer.Option(help="L4, A10G, L40S, A40, A100-40GB, A100-80GB, H100, H200")],
    model: Annotated[str, typer.Option(help="known model id or a config.json path")],
    output: Annotated[Path, typer.Option("--output", "-o", help="profile JSON to write")],
    gpu_memory_utilization: Annotated[float, typer.Option()] = 0.70,
    max_model_len: Annotated[int, typer.Option()] = 2048,
    max_num_seqs: Annotated[int, typer.Option()] = 256,
    max_num_batched_tokens: Annotated[int, typer.Option()] = 2048,
    tensor_parallel: Annotated[int, typer.Option("--tp", help="tensor-parallel GPUs")] = 1,
    enforce_eager: Annotated[
        bool, typer.Option(help="vLLM without CUDA graphs (the reference study's setting)")
    ] = False,
    efficiency: Annotated[
        str,
        typer.Option(
            help="'fitted' (to public measurements, per GPU generation), 'roofline-v1' (the "
            "first prior's hand-picked factors) or a fit-prior JSON"
        ),
    ] = "fitted",
    price: Annotated[
        float | None,
        typer.Option(help="USD per GPU-hour (default: the dated table in calibrate/prices.py)"),
    ] = None,
    name: Annotated[str | None, typer.Option(help="profile name")] = None,
) -> None:
    """Derive a roofline PRIOR profile from a GPU spec table and a model config (not measured).
    It carries the GPU's hourly price, so `capacity` on it reports what its capacity costs."""
    from driftsched.calibrate.prior import GPUS, Efficiency, derive_prior, fitted_prior
    from driftsched.ground.console import console
    from driftsched.ground.errors import InputError, canonical_name

    if efficiency == "roofline-v1":
        eff = Efficiency()
    elif efficiency == "fitted":
        eff = None
    elif Path(efficiency).is_file():
        eff = fitted_prior(efficiency).for_gpu(canonical_name(gpu, GPUS, "GPU"))
    else:
        raise InputError(
            "--efficiency: expected 'fitted', 'roofline-v1' or a fit-prior JSON, "
            f"got {efficiency!r}"
        )
    prof = derive_prior(
        gpu,
        model,
        gpu_memory_utilization=gpu_memory_utilization,
        max_model_len=max_model_len,
        max_num_seqs=max_num_seqs,
        max_num_batched_tokens=max_num_batched_tokens,
        tensor_parallel=tensor_parallel,
        efficiency=eff,
        enforce_eager=enforce_eager,
        usd_per_gpu_hour=price,
        name=name,
    )
    prof.write(output)
    print_profile(prof)
    details = prof.provenance.details
    console.print(f"efficiency: {details['efficiency']['source']}", soft_wrap=True)
    if "price" in details:
        console.print(
            f"price: ${details['price']['usd_per_gpu_hour']:g} per GPU-hour "
            f"({details['price']['source']})",
            soft_wrap=True,
        )
    console.print(f"wrote {output}")


@app.command("add-measurement")
def cal_add_measurement(
    result: Annotated[
        Path, typer.Argument(help="a vLLM benchmark result (vllm bench serve --save-result)")
    ],
    gpu: Annotated[str, typer.Option(help="GPU it ran on (the spec table's name)")],
    model: Annotated[str, typer.Option(help="known model id or config.json path")],
    source: Annotated[str, typer.Option(help="where the figures come from (URL or note)")],
    vllm_version: Annotated[str, typer.Option(help="vLLM version that produced it")],
    data: Annotated[
        Path,
        typer.Option(help="measurements file to append to (new: starts as the shipped table)"),
    ] = Path("out/measurements.json"),
    id: Annotated[str | None, typer.Option(help="row id (default: file name, GPU, size)")] = None,
    tensor_parallel: Annotated[int, typer.Option(min=1, help="GPUs per replica")] = 1,
    enforce_eager: Annotated[
        bool, typer.Option(help="the run had CUDA graphs off (eager rows are not fitted)")
    ] = False,
    scheduler_steps: Annotated[int, typer.Option(min=1, help="vLLM's num_scheduler_steps")] = 1,
    engine_arg: Annotated[
        list[str] | None,
        typer.Option(help="engine limit as KEY=VALUE (max_num_seqs, max_num_batched_tokens, ...)"),
    ] = None,
    not_fitted: Annotated[
        list[str] | None,
        typer.Option(help="METRIC=REASON: published, but outside the engine model (reported)"),
    ] = None,
    stat: Annotated[str, typer.Option(help="median | mean: which summary statistic")] = "median",
    notes: Annotated[str, typer.Option(help="free text kept with the row")] = "",
) -> None:
    """Add a vLLM benchmark result file to a measurements table, so that `calibrate fit-prior
    --data` fits the prior's efficiency terms to your GPU's runs as well as the public ones."""
    from driftsched.calibrate.benchresult import add_measurement, measurement_from_result
    from driftsched.ground.console import console
    from driftsched.ground.errors import InputError
    from driftsched.ground.parse import parse_json_values, parse_overrides

    if stat not in ("median", "mean"):
        raise InputError(f"--stat: expected 'median' or 'mean', got {stat!r}")
    m = measurement_from_result(
        result,
        gpu=gpu,
        model=model,
        source=source,
        vllm_version=vllm_version,
        id=id,
        tensor_parallel=tensor_parallel,
        cuda_graphs=not enforce_eager,
        scheduler_steps=scheduler_steps,
        engine=parse_json_values(engine_arg, "--engine-arg"),
        stat=stat,
        not_fitted=parse_overrides(not_fitted or [], "--not-fitted"),
        notes=notes,
    )
    table = add_measurement(data, m)
    metrics = ", ".join(f"{k} {v:g}" for k, v in m.measured.values().items())
    console.print(
        f"added {m.id!r} ({m.gpu}, {m.model}, {len(m.workload.input_tokens)} requests, "
        f"{m.workload.arrivals}; {m.measured.stat} {metrics}) to {data}: "
        f"{len(table.measurements)} rows; next: driftsched calibrate fit-prior --data {data}",
        soft_wrap=True,
    )


@app.command("fit-prior")
def cal_fit_prior(
    output: Annotated[Path, typer.Option("--output", "-o", help="folder to write")] = Path(
        "out/fit-prior"
    ),
    data: Annotated[
        Path | None, typer.Option(help="measurements JSON (default: the shipped table)")
    ] = None,
) -> None:
    """Fit the prior's efficiency terms to public vLLM measurements and test them leaving
    each GPU out. Writes fitted_prior.json (what `calibrate prior --efficiency` reads; the
    shipped one is this command's output), leave_one_gpu_out.csv and summary.csv."""
    from driftsched.calibrate import priorfit
    from driftsched.calibrate.measurements import load_measurements
    from driftsched.ground.atomic import write_json
    from driftsched.ground.console import console, table
    from driftsched.ground.folder import run_folder
    from driftsched.sim.result import write_csv

    measurements = load_measurements(str(data) if data else None)
    fitted = priorfit.fit(measurements)
    logo = priorfit.leave_one_gpu_out(measurements)
    summary = priorfit.summary(logo)
    for gen, eff in [("pooled", fitted.pooled), *fitted.generations.items()]:
        console.print(
            f"{gen}: eta_mem {eff.eta_mem:.3f}, eta_flop {eff.eta_flop:.3f}, step overhead "
            f"{eff.step_overhead_s * 1e3:.2f} ms, per sequence "
            f"{eff.per_request_overhead_s * 1e6:.0f} us, eager "
            f"{eff.eager_layer_overhead_s * 1e6:.0f} us/layer — {eff.source}",
            soft_wrap=True,
        )
    console.print(
        table(summary, "mean |error| % per GPU and metric: left out (fitted to the other GPUs), "
              "in sample, roofline-v1 (fitted metrics only)")
    )  # fmt: skip
    outside = logo[~logo["fitted"]]
    if len(outside):
        console.print(
            f"{len(outside)} published figures are outside the engine model (not fitted, "
            "reported in leave_one_gpu_out.csv with the reason)",
            soft_wrap=True,
        )
    with run_folder(output):
        written = [
            write_json(output / "fitted_prior.json", fitted.model_dump(mode="json")),
            write_csv(logo, output / "leave_one_gpu_out.csv"),
            write_csv(summary, output / "summary.csv"),
        ]
    console.print(f"wrote {', '.join(p.name for p in written)} to {output}/")
