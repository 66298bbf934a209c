"""The live engines a validation runs on: the engine the measured profile describes (its
arguments, a warm start, the environment it differs in), its speed against the profile, and —
for several replicas — one engine worker process per core (:mod:`driftsched.validate.worker`).
A function here takes an in-process engine or a list of workers alike where both make sense."""

from __future__ import annotations

from pathlib import Path

from driftsched.sim.profile import Profile

from driftsched.ground.errors import InputError


def engine_args(profile: Profile, out: Path) -> tuple[dict, dict]:
    """The engine arguments (and profiling settings) the profile was measured with."""
    details = profile.provenance.details
    if profile.kind != "measured" or "engine_args" not in details:
        raise InputError(
            f"profile {profile.name} is a {profile.kind} without engine arguments; "
            "validate needs a measured profile of the engine it runs "
            "(driftsched calibrate profile + fit)"
        )
    args = dict(details["engine_args"])
    if args.get("load_format") == "dummy" and not Path(args["model"]).is_dir():
        from driftsched.calibrate.tinymodel import write_tiny_model

        args["model"] = str(write_tiny_model(out / "tiny-model"))
    return args, details.get("plan", {})


def plan_points(args: dict):
    from driftsched.calibrate.plan import points

    return points(
        args.get("max_model_len", 2048),
        args.get("max_num_seqs", 64),
        args.get("max_num_batched_tokens", 1024),
    )


def start_engine(args: dict, plan: dict, warmup_steps: int = 1500, log_path=None):
    """Start the engine the profile describes and warm it up with the profiling plan's points."""
    from driftsched.calibrate.profiler import ProfileSettings, warm_up
    from driftsched.calibrate.vllm_engine import InstrumentedEngine

    settings = ProfileSettings.model_validate(plan) if plan else None
    if settings:
        settings.apply_environment()
    engine = InstrumentedEngine(args, log_path=log_path)
    if warmup_steps:
        warm_up(engine, plan_points(args), warmup_steps)
    return engine


def environment_check(now: dict, profile: Profile) -> dict:
    """This run's engine environment and how it differs from the one the profile was measured
    in (device, versions, threads, allocator: each moves step time), for the report."""
    from driftsched.calibrate.vllm_engine import COMPARED_ENVIRONMENT

    then = {**profile.provenance.details, "device": profile.provenance.hardware}
    then.setdefault("vllm_version", profile.provenance.engine_version)
    differs = {
        k: {"profile": then.get(k), "now": now.get(k)}
        for k in COMPARED_ENVIRONMENT
        if k in then and then.get(k) != now.get(k)
    }
    return {
        "engine_environment": {k: now.get(k) for k in COMPARED_ENVIRONMENT},
        "environment_differs_from_profile": differs,
    }


def speed_check(engine, args: dict, profile: Profile, steps: int = 300) -> float | None:
    """Run ``steps`` steps of the profiling plan and return measured/predicted step time.

    Reported before and after the scenarios so a reader can tell cost-model error from the
    machine running faster or slower than when it was profiled; nothing is rescaled by it."""
    if not hasattr(engine, "steps"):
        return None
    from driftsched.calibrate.profiler import speed_ratio, warm_up
    from driftsched.sim.costmodel import CostModel

    ran = warm_up(engine, plan_points(args), steps)
    return round(speed_ratio(ran, CostModel(profile)), 4)


def start_engine_workers(
    out: Path, replicas: int, warmup_steps: int, args: dict, plan: dict, factory=None
):
    """``replicas`` engine workers, one per core (validate/worker.py): each builds
    the profile's engine (or ``factory(args, plan)``, a picklable callable) and warms it up."""
    from functools import partial

    from driftsched.validate.worker import start_workers

    build = (
        partial(factory, args, plan)
        if factory is not None
        else partial(start_engine, args, plan, warmup_steps)
    )
    logged = factory is None
    return start_workers(build, replicas, log_dir=out if logged else None)


def speed(engine, args: dict, profile: Profile):
    """:func:`speed_check` of the engine, or of each worker (a list, replica order)."""
    if isinstance(engine, list):  # all workers at once: they run on their own cores
        for w in engine:
            w.ask(speed_check, args, profile)
        return [w.answer() for w in engine]
    return speed_check(engine, args, profile)


def reset_prefix_cache(engine) -> bool | None:
    """Empty ``engine``'s prefix cache when it has one (run in a worker by the cluster)."""
    reset = getattr(engine, "reset_prefix_cache", None)
    return reset() if reset is not None else None


def gpu_telemetry(out: Path):
    """NVML sampling into ``telemetry.parquet`` when the engine runs on an NVIDIA GPU."""
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        from driftsched.calibrate.telemetry import GpuTelemetry

        telemetry = GpuTelemetry(out / "telemetry.parquet")
    except (ImportError, InputError):
        return None
    telemetry.start()
    return telemetry
