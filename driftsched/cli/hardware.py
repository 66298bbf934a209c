"""``driftsched capacity --gpus``: the capacity search on several GPUs' priors, priced."""

from __future__ import annotations

from driftsched.cli.common import numbers, progress_bar

#: ``capacity --gpus`` derives each prior at vLLM's default memory share, not the study's 0.70
HARDWARE_GPU_MEMORY_UTILIZATION = 0.9


def compare_hardware(
    gpus, model, tp, enforce_eager, price, output, slo, policies, seeds, confidence, resolution,
    workload, sim,
) -> None:  # fmt: skip
    """``capacity --gpus``: a prior per GPU (fitted efficiencies), one capacity search each."""
    from driftsched.calibrate.prices import gpu_prices
    from driftsched.calibrate.prior import GPUS, derive_prior
    from driftsched.ground.console import console, table
    from driftsched.ground.errors import InputError, canonical_name
    from driftsched.ground.folder import run_folder
    from driftsched.sim.policies import POLICIES
    from driftsched.sim.studies.capacity import PRICED_VERDICTS
    from driftsched.sim.studies.hardware import HardwareOption, HardwareStudy
    from driftsched.sim.studies.slo import parse_slos

    if gpus is None:
        raise InputError("--model compares hardware: give --gpus as well")
    if model is None:
        raise InputError("--gpus needs --model (the model each GPU's prior is derived for)")
    prices = gpu_prices(price)
    names = [canonical_name(g.strip(), GPUS, "GPU") for g in gpus.split(",") if g.strip()]
    if missing := [g for g in names if g not in prices]:
        raise InputError(
            f"no default price for {', '.join(missing)}: give --price "
            + ",".join(f"{g}=USD_PER_HOUR" for g in missing)
        )
    priors = {
        gpu: derive_prior(
            gpu,
            model,
            tensor_parallel=tp,
            enforce_eager=enforce_eager,
            gpu_memory_utilization=HARDWARE_GPU_MEMORY_UTILIZATION,
            usd_per_gpu_hour=prices[gpu].usd_per_hour,
        )  # fmt: skip
        for gpu in names
    }
    options = [
        HardwareOption(
            gpu,
            str(output / "priors" / f"{gpu}.json"),
            tp,
            prices[gpu].usd_per_hour,
            prices[gpu].source,
        )  # fmt: skip
        for gpu in priors
    ]
    study = HardwareStudy(
        workload=workload, policies=POLICIES.parse(policies), slos=parse_slos(slo),
        seeds=numbers(seeds, "--seeds", int), options=options, sim=sim, confidence=confidence,
        resolution=resolution,
    )  # fmt: skip
    for opt in options:
        p = priors[opt.gpu]
        console.print(
            f"{opt.gpu}: {p.name} (PRIOR, efficiency {p.provenance.details['efficiency']['source']}"
            f"), ${opt.usd_per_gpu_hour:g}/GPU-hour ({opt.price_source})",
            soft_wrap=True,
        )
    with run_folder(output):
        for opt in options:
            priors[opt.gpu].write(opt.profile)
        with progress_bar() as bar:
            task = bar.add_task("hardware", total=len(options))

            def step(gpu, done, total):
                bar.update(task, completed=done, description=f"searching {gpu or 'done'}")

            result = study.run(progress=step)
        written = result.write(output)
    cols = [
        "gpu", "policy", "gpus", "verdict", "max_rate_per_s", "output_tok_per_s",
        "requests_per_gpu_hour", "usd_per_million_output_tokens", "cost_model_kind",
    ]  # fmt: skip
    console.print(table(result.table[cols], f"hardware within {slo} (all columns in hardware.csv)"))
    for row in result.cheapest().itertuples(index=False):
        console.print(
            f"cheapest for {row.policy}: {row.gpu}, ${row.usd_per_million_output_tokens:.3g} per "
            f"million output tokens at {row.max_rate_per_s:.3g} req/s (priors, not measured)",
            soft_wrap=True,
        )
    for gpu, res in result.capacity.items():
        for r in res.results:
            if r.verdict not in PRICED_VERDICTS:
                console.print(f"[bold]{gpu}[/] {r.explain()}", soft_wrap=True)
    console.print(f"wrote {len(written)} files to {output}/ (hardware.csv, hardware_cost.png, ...)")


def capacity_price(profile: str | None, price: str | None) -> tuple[float | None, int]:
    """``capacity`` on one profile: the GPU price (``--price`` as a number, else the one a
    prior carries) and the GPUs a replica takes (a prior's tensor parallelism, else 1)."""
    from driftsched.ground.errors import InputError
    from driftsched.sim.profile import DEFAULT_PROFILE, load_profile

    details = load_profile(profile or DEFAULT_PROFILE).provenance.details
    gpus = int(details.get("tensor_parallel", 1))
    if price is None:
        known = details.get("price", {}).get("usd_per_gpu_hour")
        return (float(known) if known else None), gpus
    try:
        usd = float(price)
    except ValueError:
        raise InputError(
            f"--price: without --gpus, one number (USD per GPU-hour), got {price!r}"
        ) from None
    if not usd > 0:
        raise InputError(f"--price must be > 0 USD per GPU-hour, got {price!r}")
    return usd, gpus
