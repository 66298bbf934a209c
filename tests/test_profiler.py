"""The profiling pipeline without vLLM: a fake engine built on driftsched's own engine model
stands in for vLLM, so plan -> profile -> raw folder -> fit -> profile file is tested end to end
(the live test does the same on real vLLM)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from driftsched.calibrate.fit import fit, to_profile
from driftsched.calibrate.plan import episodes, points
from driftsched.calibrate.profiler import ProfileSettings, profile, read_raw
from driftsched.calibrate.vllm_engine import StepRecord
from driftsched.sim.costmodel import CostModel
from driftsched.sim.engine import ReferenceEngine
from driftsched.sim.profile import EngineSettings

from driftsched.ground.errors import InputError
from tests.simkit import profile as simkit_profile

TRUE = {
    "const": 3e-3,
    "prefill_tokens": 60e-6,
    "prefill_attention": 5e-8,
    "prefill_requests": 2e-4,
    "decode_requests": 1.5e-4,
    "decode_context_tokens": 5e-7,
}


class FakeEngine:
    """Quacks like InstrumentedEngine; step times come from TRUE with 2% noise."""

    started = 0

    def __init__(self, args):
        FakeEngine.started += 1
        self.args = args
        self.eng = ReferenceEngine(
            EngineSettings(
                block_size=16,
                num_gpu_blocks=4000,
                max_num_seqs=args["max_num_seqs"],
                max_num_batched_tokens=args["max_num_batched_tokens"],
                max_model_len=args["max_model_len"],
            )
        )
        tp = simkit_profile(1.0)
        self.cost = CostModel(tp.model_copy(update={"coefficients": TRUE}))
        self.rng = np.random.default_rng(0)
        self.steps, self.admission_s, self.output_overhead_s, self.ids = [], [], [], {}

    def add(self, rid, prompt, output):
        self.ids[len(self.ids)] = rid
        self.eng.add(len(self.ids) - 1, prompt, output)
        self.admission_s.append(1e-4)

    def step(self):
        plan = self.eng.schedule()
        chunks = [(self.ids[r.index], n, r.num_computed_tokens) for r, n in plan.chunks]
        decodes = [(self.ids[r.index], r.num_computed_tokens) for r in plan.decodes]
        duration = self.cost.step_time(plan.shape) * self.rng.lognormal(0, 0.02)
        self.steps.append(StepRecord(0.0, duration, chunks, decodes))
        out = self.eng.complete(plan)
        self.output_overhead_s.append((2e-4, len(out.finished)))
        return []

    def has_work(self):
        return self.eng.has_work()

    def environment(self):
        return {
            "vllm_version": "fake",
            "device": "fake",
            "block_size": 16,
            "num_gpu_blocks": 4000,
            "engine_args": self.args,
        }

    def shutdown(self):
        pass


def settings(**kw):
    return ProfileSettings(model="fake-model", quick=True, repeats=3, warmup_steps=20, **kw)


def test_plan_covers_the_three_regimes_and_is_seeded():
    pts = points(2048, 64, 1024)
    kinds = {p.kind for p in pts}
    assert kinds == {"prefill", "decode", "mixed"}
    assert max(p.requests[0][0] for p in pts if p.kind == "decode") >= 1900
    assert {len(p.requests) for p in pts if p.kind == "decode"} >= {1, 64}
    a, b = episodes(pts, 3, seed=1), episodes(pts, 3, seed=1)
    assert a == b and len(a) == 3 * len(pts) and a != episodes(pts, 3, seed=2)


def test_profile_fit_pipeline_recovers_the_step_model(tmp_path):
    out = profile(tmp_path / "raw", settings(), engine_factory=FakeEngine)
    frame, env, overheads = read_raw(out)
    assert len(list((out / "parts").glob("ep-*.parquet"))) == 3 * len(
        points(2048, 64, 1024, quick=True)
    )
    report = fit(frame)
    assert report.metrics()["test"]["all"]["mape"] < 0.03
    for name in ("const", "prefill_tokens", "decode_requests", "decode_context_tokens"):
        assert report.coefficients[name] == pytest.approx(TRUE[name], rel=0.15), name
    prof = to_profile(report, env, overheads, "fake")
    assert prof.kind == "measured" and prof.overheads_s["admission_s"] == pytest.approx(1e-4)
    # the host's own speed, probed after every episode, travels with the profile
    assert env["host_probe_ms"] > 0 and env["host_probe_spread"] >= 0
    assert prof.provenance.details["host_probe_ms"] == env["host_probe_ms"]
    assert json.loads((out / "plan.json").read_text())["repeats"] == 3


def test_profile_resumes_and_refuses_other_settings(tmp_path):
    raw = tmp_path / "raw"
    profile(raw, settings(), engine_factory=FakeEngine)
    parts = sorted((raw / "parts").glob("ep-*.parquet"))
    parts[1].unlink()
    parts[4].unlink()
    started = FakeEngine.started
    stamps = {p.name: p.stat().st_mtime_ns for p in parts if p.exists()}
    profile(raw, settings(), engine_factory=FakeEngine)
    assert FakeEngine.started == started + 1
    now = {p.name: p.stat().st_mtime_ns for p in (raw / "parts").glob("ep-*.parquet")}
    assert len(now) == len(parts)
    assert all(now[name] == stamp for name, stamp in stamps.items())  # untouched
    profile(raw, settings(), engine_factory=FakeEngine)  # complete: no engine at all
    assert FakeEngine.started == started + 1
    with pytest.raises(InputError, match="different settings \\(repeats\\)"):
        profile(
            raw,
            ProfileSettings(model="fake-model", quick=True, repeats=4, warmup_steps=20),
            engine_factory=FakeEngine,
        )


def test_read_raw_errors(tmp_path):
    with pytest.raises(InputError, match="no recorded steps"):
        read_raw(tmp_path)
