"""The live engines a validation runs on: the engine the measured profile describes (its
arguments, a warm start, the environment it differs in), its speed against the profile, and —
for several replicas — one engine worker process per core (:mod:`driftsched.validate.worker`).
:class:`LiveEngines` is the runner's one handle on either kind."""

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
    if not steps or not hasattr(engine, "steps"):
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


class LiveEngines:
    """What a validation runs on — one in-process engine, or engine workers (a list, replica
    order, :mod:`driftsched.validate.worker`) — behind one interface, so the runner never asks
    which it has. ``owned``: started for this run, so :meth:`shutdown` stops it; an engine the
    caller passed in is the caller's to stop."""

    def __init__(self, engine, owned: bool):
        self.engine, self.owned = engine, owned
        self.workers = engine if isinstance(engine, list) else None

    @classmethod
    def start(cls, out: Path, args: dict, plan: dict, replicas: int, warmup_steps: int, factory):
        """The profile's engine (``factory(args, plan)`` instead, when given: tests' fakes),
        or ``replicas`` > 1 engine workers, one per core."""
        if replicas > 1:
            return cls(start_engine_workers(out, replicas, warmup_steps, args, plan, factory), True)
        if factory is not None:
            return cls(factory(args, plan), True)
        return cls(start_engine(args, plan, warmup_steps, out / "engine.log"), True)

    @property
    def num_gpu_blocks(self) -> int | None:
        if self.workers is not None:
            return self.workers[0].info.get("num_gpu_blocks")
        return getattr(self.engine, "num_gpu_blocks", None)

    @property
    def engine_args(self) -> dict:
        """The arguments the engine was built with (empty for an engine that does not say)."""
        if self.workers is not None:
            return self.workers[0].info.get("engine_args") or {}
        return getattr(self.engine, "engine_args", {}) or {}

    def environment(self) -> dict | None:
        """The engine's environment (device, versions, threads, allocator), if it reports it."""
        if self.workers is not None:
            return self.workers[0].info.get("environment")
        return self.engine.environment() if hasattr(self.engine, "environment") else None

    def describe(self) -> dict:
        """For the report: each worker's process and core."""
        if self.workers is None:
            return {}
        return {"workers": [{"pid": w.info["pid"], "core": w.info["core"]} for w in self.workers]}

    def speed(self, args: dict, profile: Profile, steps: int):
        """:func:`speed_check` of the engine, or of each worker (a list, replica order), all
        at once: the workers run on their own cores."""
        if self.workers is None:
            return speed_check(self.engine, args, profile, steps)
        for w in self.workers:
            w.ask(speed_check, args, profile, steps)
        return [w.answer() for w in self.workers]

    def gateway(self, trace, config, timeout_s: float, clock=None, sleep=None):
        """The live loop for one scenario: :class:`~driftsched.validate.live.LiveGateway` in
        front of the engine, :class:`~driftsched.validate.cluster.LiveCluster` in front of
        the workers."""
        kwargs = {"clock": clock} if clock is not None else {}
        if self.workers is not None:
            from driftsched.validate.cluster import LiveCluster

            return LiveCluster(self.workers, trace, config, timeout_s=timeout_s, **kwargs)
        from driftsched.validate.live import LiveGateway

        if sleep is not None:
            kwargs["sleep"] = sleep
        return LiveGateway(self.engine, trace, config, timeout_s=timeout_s, **kwargs)

    def shutdown(self) -> None:
        """Stop the engine (every worker) if this run started it."""
        if not self.owned:
            return
        if self.workers is not None:
            for w in self.workers:
                w.shutdown()
        elif (stop := getattr(self.engine, "shutdown", None)) is not None:
            stop()
