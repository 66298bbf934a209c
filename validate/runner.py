"""``driftsched validate run``: each sampled scenario live on vLLM, then in the simulator with
the engine's measured profile, then the comparison. Results are written after every scenario,
so an engine that dies, a timeout or Ctrl-C still leaves a report of what completed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from driftsched.sim.config import SimConfig
from driftsched.sim.estimatorview import EstimatorViewConfig
from driftsched.sim.profile import Profile, load_profile
from driftsched.sim.result import write_parquet
from driftsched.sim.simulation import simulate
from driftsched.validate import fidelity
from driftsched.validate.engines import (
    LiveEngines,
    engine_args,
    environment_check,
    gpu_telemetry,
)
from driftsched.validate.scenario import Grid, Scenario, workload
from pydantic import Field, field_validator, model_validator

from driftsched.ground.atomic import output_folder, write_json, write_text
from driftsched.ground.config import Config
from driftsched.ground.errors import DriftschedError, InputError


class EngineFailure(DriftschedError):
    """The live engine could not start or died; a partial report was written."""

    exit_code = 4


class FidelityGateFailure(DriftschedError):
    """A scenario's error exceeded a gate given with ``--max-p50-error``/``--max-p99-error``."""

    exit_code = 3


def check_gates(
    report: dict, max_p50_error: float | None = None, max_p99_error: float | None = None
) -> None:
    """Raise :class:`FidelityGateFailure` (exit 3) if the worst scenario's E2E P50 (or P99)
    relative error exceeds its gate; ``None`` means no gate."""
    rescaled = report.get("settings", {}).get("rescale", False)
    prefix, what = (
        ("rescaled_", " (rescaled by the run's measured speed)") if rescaled else ("", "")
    )
    for stat, gate in (("p50", max_p50_error), ("p99", max_p99_error)):
        key = f"{prefix}e2e_{stat}_rel_error"
        worst = max((r.get(key, float("nan")) for r in report["scenarios"]), default=0.0)
        if gate is not None and not worst <= gate:
            raise FidelityGateFailure(
                f"E2E {stat.upper()} error{what} {worst:.1%} exceeds --max-{stat}-error {gate:.1%}"
            )


class ValidateSettings(Config):
    profile: str = Field(description="measured profile of the engine that will run live")
    grid: Grid = Field(default_factory=Grid)
    estimator_view: EstimatorViewConfig = Field(
        default_factory=EstimatorViewConfig,
        description="what the corrector counts in and how often its category is wrong, live "
        "and simulated alike (sim/estimatorview.py)",
    )
    timeout_s: float = Field(900.0, gt=0, description="per-scenario wall-clock limit")
    repeat_live: bool = Field(
        False,
        description="run each scenario live a second time and report live-vs-live "
        "differences: the measurement's own noise floor",
    )
    rescale: bool = Field(
        False,
        description="gate on the simulator rescaled by the live run's own measured speed "
        "(measured / predicted time of its steps); raw, rescaled and replay errors are always "
        "reported",
    )
    prefix_caching: bool = Field(
        False,
        description="run the live engine and the simulator with automatic prefix caching on "
        "(the trace's prefix column says what prompts share; the cache is emptied before each "
        "scenario)",
    )
    replicas: int = Field(
        1,
        ge=1,
        le=8,
        description="engines behind the gateway; with more than one, each runs in its own "
        "process pinned to its own core (validate/worker.py), stepping in parallel",
    )
    router: str = Field(
        "round_robin",
        description="which replica a request goes to (with replicas > 1): a registered router "
        "that does not read the engines' KV pools",
    )

    warmup_steps: int = Field(
        1500,
        ge=0,
        description="engine steps run (and discarded) before the first scenario: a "
        "fresh CPU engine runs ~15% slower for its first few hundred steps",
    )
    speed_check_steps: int = Field(
        300,
        ge=0,
        description="plan steps timed against the profile before and after the scenarios "
        "(the report's speed check; 0 leaves it out)",
    )
    engine_overrides: dict[str, Any] = Field(
        default_factory=dict,
        description="vLLM engine arguments set over the profile's: e.g. "
        "{'num_gpu_blocks_override': 17} for KV pressure, or {'enforce_eager': true} to skip "
        "torch.compile (~35 s a start on CPU) for a check of semantics by schedule replay. "
        "Reported; live timing is then not like for like with the profile",
    )

    via: Literal["engine", "http"] = Field(
        "engine",
        description="engine: the in-process engine behind the live loop; http: the deployment "
        "path — gateway serve in front of a real vllm serve, over HTTP "
        "(validate/serve/via_http.py)",
    )
    upstream: str | None = Field(
        None, description="with via http: a vLLM OpenAI server already running (else one starts)"
    )

    @field_validator("router")
    @classmethod
    def _router(cls, spec: str) -> str:
        from driftsched.sim.router import ROUTERS

        return ROUTERS.check(spec)

    @model_validator(mode="after")
    def _router_runs_live(self) -> ValidateSettings:
        if self.via == "http" and (self.replicas > 1 or self.prefix_caching):
            raise ValueError("--via http runs one upstream without prefix caching (for now)")
        if self.replicas > 1:
            from driftsched.validate.cluster import refuse_kv_router

            refuse_kv_router(self.router)
        return self


def run(
    out_dir: str | Path,
    settings: ValidateSettings,
    progress: Callable[[int, int, str], None] | None = None,
    engine_factory: Callable | None = None,
    clock=None,
    sleep=None,
    engine=None,
) -> dict:
    """Run every scenario; return the report dict (also written to ``out_dir``).

    ``engine``: an already started, warmed-up engine to run on (the caller owns it and shuts
    it down) — e.g. the instance the profile was measured on."""
    out = Path(out_dir)
    output_folder(out)
    profile = load_profile(settings.profile)
    scenarios = settings.grid.sample()
    report = {
        "settings": settings.model_dump(mode="json"),
        "profile": profile.name,
        "profile_kind": profile.kind,
        "scenarios": [],
        "status": "running",
    }
    args, plan = engine_args(profile, out) if engine_factory is None else ({}, {})
    if args:
        args["enable_prefix_caching"] = settings.prefix_caching
        args.update(settings.engine_overrides)
    if settings.engine_overrides:
        report["engine_overrides"] = settings.engine_overrides
    try:
        if settings.via == "http" and engine is None and engine_factory is None:
            from driftsched.validate.serve.via_http import HttpEngines

            engines = HttpEngines.start(out, args, settings.upstream)
        else:
            engines = (
                LiveEngines(engine, owned=False)
                if engine is not None
                else LiveEngines.start(
                    out, args, plan, settings.replicas, settings.warmup_steps, engine_factory
                )
            )
    except DriftschedError:
        raise
    except Exception as exc:
        report["status"] = "engine failed to start"
        report["error"] = f"{type(exc).__name__}: {exc}"
        _write(out, report)
        raise EngineFailure(
            f"the vLLM engine failed to start: {report['error']} (partial report in {out})"
        ) from None
    try:
        if not engines.owned:
            _engine_matches(engines.engine_args, settings)
        report["num_gpu_blocks"] = engines.num_gpu_blocks
        report.update(engines.describe())
        if (environment := engines.environment()) is not None:
            report.update(environment_check(environment, profile))
        _scenarios(out, settings, profile, scenarios, engines, args, report, progress, clock, sleep)
    except KeyboardInterrupt:
        report["status"] = "interrupted"
        _write(out, report)
        raise
    finally:
        engines.shutdown()
    _write(out, report)
    return report


def _engine_matches(args: dict, settings: ValidateSettings) -> None:
    """An engine given to :func:`run` must run as the settings say (prefix caching, the
    arguments set over the profile's): else the report would describe another engine."""
    if not args:  # an engine that does not say how it was built (tests' fakes)
        return
    want = {"enable_prefix_caching": settings.prefix_caching, **settings.engine_overrides}
    for key, value in want.items():
        if args.get(key, False if key == "enable_prefix_caching" else None) != value:
            raise InputError(
                f"the settings say {key}={value} but the engine given runs with "
                f"{key}={args.get(key)}"
            )


def _scenarios(out, settings, profile, scenarios, engines, args, report, progress, clock, sleep):
    """Every scenario on ``engines``, the speed check before and after (a real engine only);
    the report written after each scenario."""
    check = settings.speed_check_steps if args else 0  # args: the profile's engine, not a fake
    if check:
        report["speed_ratio_before"] = engines.speed(args, profile, check)
    telemetry = gpu_telemetry(out) if args else None
    try:
        for k, sc in enumerate(scenarios):
            row = _one(out, settings, profile, sc, engines, clock, sleep)
            report["scenarios"].append(row)
            report["summary"] = fidelity.summary(
                [r for r in report["scenarios"] if r["status"] == "complete"]
            )
            _write(out, report)
            if progress:
                progress(k + 1, len(scenarios), sc.key)
            if row["status"] == "error":
                report["status"] = "engine died"
                _write(out, report)
                raise EngineFailure(
                    f"scenario {sc.key}: {row['error']}; "
                    f"{row['live_finished']} of {row['requests']} requests "
                    f"completed (partial report in {out})"
                )
        if check:
            report["speed_ratio_after"] = engines.speed(args, profile, check)
        report["status"] = "complete"
    finally:
        if telemetry is not None:
            telemetry.stop()


def _one(
    out: Path,
    settings: ValidateSettings,
    profile: Profile,
    sc: Scenario,
    engines: LiveEngines,
    clock,
    sleep,
) -> dict:
    g = settings.grid
    trace = workload(g, sc, profile, settings.replicas)
    blocks = engines.num_gpu_blocks
    config = SimConfig(
        replicas=settings.replicas,
        router=settings.router,
        policy=sc.policy,
        corrector=sc.corrector,
        mode=sc.mode,
        max_concurrency=g.max_concurrency,
        batch_size=g.batch_size,
        batch_wait_s=g.batch_wait_s,
        profile=settings.profile,
        engine={
            **({"num_gpu_blocks": blocks} if blocks else {}),
            **({"enable_prefix_caching": True} if settings.prefix_caching else {}),
        },
        estimator_view=settings.estimator_view,
    )

    def gateway():
        return engines.gateway(trace, config, settings.timeout_s, clock, sleep)

    from driftsched.calibrate.hostspeed import probe_ms, slowdown

    probe_before = probe_ms()
    live = gateway().run()
    probe_after = probe_ms()
    sim = simulate(trace, config, profile)
    folder = out / "scenarios" / sc.key
    write_parquet(live.records, folder / "live.parquet")
    write_parquet(sim.records, folder / "sim.parquet")
    timing = _timing(folder, trace, config, profile, live) if live.steps is not None else {}
    row = {
        **sc.model_dump(),
        "key": sc.key,
        "status": live.status,
        "error": live.error,
        "live_wall_s": round(live.wall_s, 3),
        **live.extra,
        "stretch": trace.meta.get("stretch"),
        # the host's own speed around the live run (calibrate/hostspeed.py), and against the
        # profiling pass's: > 1, the machine itself ran slower than when profiled
        "host_probe_ms": [probe_before, probe_after],
        "host_slowdown": slowdown(
            (probe_before + probe_after) / 2, profile.provenance.details.get("host_probe_ms")
        ),
        **fidelity.scenario_fidelity(live.records, sim.records),
        **timing,
    }
    if settings.repeat_live and live.status == "complete":
        again = gateway().run()
        write_parquet(again.records, folder / "live_repeat.parquet")
        noise = fidelity.scenario_fidelity(live.records, again.records)
        row.update({f"noise_{k}": noise[k] for k in noise if k.endswith("_rel_error")})
    if "prefix_cache" in sim.meta:  # what caching saved: live prefill work against the prompts
        row["sim_prefix_cache_hit_rate"] = round(sim.meta["prefix_cache"]["hit_rate"], 4)
        if live.steps is not None:
            row["live_prefill_tokens"] = int(live.steps["prefill_tokens"].sum())
        row["prompt_tokens"] = int(trace.frame["prompt_tokens"].sum())
    row["unfinished_request_ids"] = (
        live.records.loc[~live.records["finished"], "request_id"].astype(str).tolist()
    )
    return row


def _timing(folder: Path, trace, config: SimConfig, profile: Profile, live) -> dict:
    """Schedule replay (semantics with the machine's own step times) and the sim rescaled by
    the run's measured speed (the cost model's shape with the day's speed factored out)."""
    from driftsched.validate.replay import (
        durations,
        replay,
        request_errors,
        rescaled_profile,
        run_speed,
    )

    write_parquet(live.steps, folder / "live_steps.parquet")
    if not len(live.steps):
        return {}
    replayed, row = replay(trace, config, profile, live.steps, live.admit_s)
    write_parquet(replayed, folder / "replay.parquet")
    row.update(request_errors(live.records, replayed))
    row.update(_prefixed("replay_", fidelity.scenario_fidelity(live.records, replayed)))
    ratio = run_speed(live.steps, profile, config.overheads)
    row["speed_ratio_run"] = round(ratio, 4)
    # how much of the live step cycle the engine core itself took (the rest: output
    # processing, and this in-process loop's own gateway work between steps)
    row["engine_core_share"] = round(
        float(live.steps["engine_s"].sum() / durations(live.steps).sum()), 4
    )
    if ratio == ratio:  # not NaN
        scaled = simulate(trace, config, rescaled_profile(profile, ratio))
        write_parquet(scaled.records, folder / "rescaled.parquet")
        row.update(_prefixed("rescaled_", fidelity.scenario_fidelity(live.records, scaled.records)))
    return row


def _prefixed(prefix: str, metrics: dict) -> dict:
    return {
        prefix + k: v for k, v in metrics.items() if k.endswith(("_rel_error", "_live_s", "_sim_s"))
    }


def _write(out: Path, report: dict) -> None:
    from driftsched.validate.report import markdown

    write_json(out / "report.json", report)
    write_text(out / "report.md", markdown(report) + "\n")


def load_records(out: Path, key: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    folder = out / "scenarios" / key
    return pd.read_parquet(folder / "live.parquet"), pd.read_parquet(folder / "sim.parquet")
