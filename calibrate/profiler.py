"""``driftsched calibrate profile``: run the plan on a real vLLM engine, record every step.

Output folder (``RAW``):

- ``plan.json``: the plan's settings (used to resume: a rerun with the same settings skips the
  episodes already on disk; different settings are refused);
- ``environment.json``: vLLM/torch versions, device, dtype, engine arguments, KV capacity;
- ``parts/ep-<n>.parquet``: one row per engine step of episode n (columns: ``episode``,
  ``point``, ``kind``, ``repeat``, ``step``, ``start_s``, ``duration_s`` and the step shape:
  ``prefill_tokens``, ``prefill_attention``, ``prefill_requests``, ``decode_requests``,
  ``decode_context_tokens``, ``preempted``), plus ``ep-<n>.overheads.json`` (request admission
  times and per-step output-processing times);
- ``telemetry.parquet`` on a GPU (pynvml samples).

Warm-up episodes run first and are not recorded (the first few hundred steps run slower).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
from driftsched.calibrate.hostspeed import probe_ms
from driftsched.calibrate.plan import Point, episodes, points
from driftsched.sim.costmodel import chunk_attention

from driftsched.ground.atomic import atomic_path, output_folder, write_json
from driftsched.ground.config import Config
from driftsched.ground.errors import InputError


class ProfileSettings(Config):
    """What to profile and how."""

    model: str
    device: str = "cpu"
    dtype: str = "float32"
    max_model_len: int = 2048
    max_num_seqs: int = 64
    max_num_batched_tokens: int = 1024
    gpu_memory_utilization: float = 0.2
    repeats: int = 3
    seed: int = 0
    quick: bool = False
    warmup_steps: int = 1500
    cpu_threads: int | None = 1
    extra_engine_args: dict = {}

    def apply_environment(self) -> None:
        """On CPU, pin the model to ``cpu_threads`` OpenMP threads (set before torch loads):
        one core computes, the other runs the engine loop, so steps jitter less (measured:
        held-out MAPE 5.2% with 1 thread vs 7.6% with 2 on the 2-core machine)."""
        if self.device == "cpu" and self.cpu_threads:
            os.environ["OMP_NUM_THREADS"] = str(self.cpu_threads)

    def engine_args(self) -> dict:
        args = {
            "model": self.model,
            "dtype": self.dtype,
            "max_model_len": self.max_model_len,
            "max_num_seqs": self.max_num_seqs,
            "max_num_batched_tokens": self.max_num_batched_tokens,
            "gpu_memory_utilization": self.gpu_memory_utilization,
            "enable_prefix_caching": False,
            "skip_tokenizer_init": True,
            "seed": self.seed,
        }
        if Path(self.model).is_dir():  # a config-only model folder: random weights
            args["load_format"] = "dummy"
        return {**args, **self.extra_engine_args}


#: engine settings a GPU profile starts from (the reference study's L4 setup) unless given
CUDA_DEFAULTS = {
    "dtype": "float16",
    "gpu_memory_utilization": 0.70,
    "max_num_seqs": 256,
    "max_num_batched_tokens": 2048,
}


def profile_settings(out_dir: str | Path, params: dict) -> ProfileSettings:
    """Validated settings from what the user gave: the device's defaults under ``params``; no
    ``model`` means the tiny random-weight Llama, written into ``out_dir/tiny-model``."""
    from driftsched.ground.config import build

    params = dict(params)
    if params.get("device") == "cuda":
        params = {**CUDA_DEFAULTS, **params}
    if params.get("model") is None:
        from driftsched.calibrate.tinymodel import write_tiny_model

        params["model"] = str(write_tiny_model(Path(out_dir) / "tiny-model"))
    return build(ProfileSettings, params, "profile settings")


def shape_row(step) -> dict:
    """The simulator's batch-shape features of one recorded step."""
    return {
        "prefill_tokens": sum(n for _, n, _ in step.chunks),
        "prefill_attention": sum(chunk_attention(n, c) for _, n, c in step.chunks),
        "prefill_requests": len(step.chunks),
        "decode_requests": len(step.decodes),
        "decode_context_tokens": sum(c + 1 for _, c in step.decodes),
        "preempted": step.preempted,
    }


def run_point(engine, point: Point, tag: str) -> None:
    """Submit the point's requests (and injections) and run until the engine is idle."""
    for i, (p, o) in enumerate(point.requests):
        engine.add(f"{tag}-r{i}", p, o)
    steps = 0
    while engine.has_work():
        engine.step()
        steps += 1
        if point.inject and steps == point.inject_after_steps:
            for i, (p, o) in enumerate(point.inject):
                engine.add(f"{tag}-x{i}", p, o)


def profile(
    out_dir: str | Path,
    settings: ProfileSettings,
    progress: Callable[[int, int, str], None] | None = None,
    engine_factory=None,
    engine=None,
) -> Path:
    """Run the plan; write the raw folder (see module docstring); resumable. On ``cuda`` GPU
    telemetry is sampled into ``telemetry.parquet`` for the whole run.

    ``engine``: an already started :class:`InstrumentedEngine` to profile (the caller owns it
    and shuts it down), e.g. to validate later on the very same engine instance."""
    out = Path(out_dir)
    output_folder(out / "parts")
    plan_file = out / "plan.json"
    plan = settings.model_dump(mode="json")
    if plan_file.exists():
        old = json.loads(plan_file.read_text())
        if old != plan:
            diff = sorted(k for k in plan if plan.get(k) != old.get(k))
            raise InputError(
                f"{out}: holds a profile with different settings ({', '.join(diff)});"
                " use a new folder or the same settings to resume"
            )
    else:
        write_json(plan_file, plan)
    pts = points(
        settings.max_model_len,
        settings.max_num_seqs,
        settings.max_num_batched_tokens,
        settings.quick,
    )
    todo = episodes(pts, settings.repeats, settings.seed)
    done = {int(p.name[3:8]) for p in (out / "parts").glob("ep-*.parquet")}
    if len(done) == len(todo):
        return out
    telemetry = None
    if settings.device == "cuda":
        from driftsched.calibrate.telemetry import GpuTelemetry

        telemetry = GpuTelemetry(out / "telemetry.parquet")
        telemetry.start()
    own = engine is None
    try:
        if own:
            from driftsched.calibrate.vllm_engine import InstrumentedEngine

            settings.apply_environment()
            make = engine_factory or (
                lambda args: InstrumentedEngine(args, log_path=out / "engine.log")
            )
            engine = make(settings.engine_args())
        if not (out / "environment.json").exists():
            env = {
                **engine.environment(),
                "settings": plan,
                "date": time.strftime("%Y-%m-%d", time.gmtime()),
            }
            write_json(out / "environment.json", env)
        warm_up(engine, pts, settings.warmup_steps)
        for episode, (repeat, point) in enumerate(todo):
            if episode in done:
                continue
            _record_episode(engine, out, episode, repeat, point)
            if progress:
                progress(episode + 1, len(todo), point.label)
    finally:
        if own and engine is not None:
            engine.shutdown()
        if telemetry is not None:
            telemetry.stop()
    return out


def warm_up(engine, pts: list[Point], min_steps: int) -> list:
    """Run plan points until ``min_steps`` engine steps have passed; forget what they recorded.

    Returns the steps it ran (for a speed check against a cost model)."""
    start, i = len(engine.steps), 0
    while len(engine.steps) - start < min_steps:
        run_point(engine, pts[i % len(pts)], f"warm{i}")
        i += 1
    ran = list(engine.steps[start:])
    engine.steps.clear()
    engine.admission_s.clear()
    engine.output_overhead_s.clear()
    return ran


def speed_ratio(steps: list, cost_model) -> float:
    """Measured over predicted engine time of ``steps``: 1.0 means the machine now runs at the
    speed the profile was measured at; 1.1 means 10% slower. A diagnostic, never a correction."""
    from driftsched.sim.costmodel import BatchShape

    measured = predicted = 0.0
    for step in steps:
        row = shape_row(step)
        row.pop("preempted")
        measured += step.duration_s
        predicted += cost_model.step_time(BatchShape(**row))
    return measured / predicted if predicted > 0 else float("nan")


def _record_episode(engine, out: Path, episode: int, repeat: int, point: Point) -> None:
    run_point(engine, point, f"e{episode}")
    rows = [
        {
            "episode": episode,
            "point": point.label,
            "kind": point.kind,
            "repeat": repeat,
            "step": k,
            "start_s": s.start_s,
            "duration_s": s.duration_s,
            **shape_row(s),
        }
        for k, s in enumerate(engine.steps)
    ]
    overheads = {
        "admission_s": engine.admission_s,
        "output_overhead_s": engine.output_overhead_s,
        "point": asdict(point),
        # the host's own speed right after the episode, without the engine (hostspeed.py)
        "host_probe_ms": probe_ms(),
    }
    write_json(out / "parts" / f"ep-{episode:05d}.overheads.json", overheads, indent=None)
    with atomic_path(out / "parts" / f"ep-{episode:05d}.parquet") as tmp:
        pd.DataFrame(rows).to_parquet(tmp, index=False)
    engine.steps.clear()
    engine.admission_s.clear()
    engine.output_overhead_s.clear()


def read_raw(raw_dir: str | Path) -> tuple[pd.DataFrame, dict, dict]:
    """All recorded steps, the environment, and median overheads of a raw folder."""
    raw = Path(raw_dir)
    parts = sorted((raw / "parts").glob("ep-*.parquet")) if raw.is_dir() else []
    if not parts:
        raise InputError(
            f"{raw}: no recorded steps (expected parts/ep-*.parquet from "
            "driftsched calibrate profile)"
        )
    frame = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    env_file = raw / "environment.json"
    env = json.loads(env_file.read_text()) if env_file.exists() else {}
    admission, outside, probes = [], [], []
    for p in sorted((raw / "parts").glob("ep-*.overheads.json")):
        data = json.loads(p.read_text())
        admission += data["admission_s"]
        outside += data["output_overhead_s"]
        if data.get("host_probe_ms"):
            probes.append(data["host_probe_ms"])
    if probes:  # the host's speed over the profiling pass: its median, and its spread
        env = {
            **env,
            "host_probe_ms": round(float(np.median(probes)), 4),
            "host_probe_spread": round(
                float(np.percentile(probes, 90) / np.percentile(probes, 10) - 1), 4
            ),
        }
    return (
        frame,
        env,
        {
            "admission_s": float(np.median(admission)) if admission else 0.0,
            **outside_overheads(outside),
        },
    )


def outside_overheads(samples: list[tuple[float, int]]) -> dict[str, float]:
    """Split the time ``LLMEngine.step`` spends outside the core step into a per-step part and
    a per-returned-request part: a robust (L1) line ``a + b * outputs`` through the samples."""
    if not samples:
        return {"output_per_step_s": 0.0, "output_per_request_s": 0.0}
    total = np.array([t for t, _ in samples], dtype=float)
    n = np.array([k for _, k in samples], dtype=float)
    a, b = float(np.median(total)), 0.0
    if n.max() > n.min():
        for _ in range(50):  # IRLS for least absolute deviations
            w = 1.0 / np.maximum(np.abs(total - a - b * n), 1e-6)
            b, a = np.polyfit(n, total, 1, w=np.sqrt(w))
    return {"output_per_step_s": max(float(a), 0.0), "output_per_request_s": max(float(b), 0.0)}
