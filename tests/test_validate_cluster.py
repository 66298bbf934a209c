"""Several replicas live without vLLM: each replica's engine (driftsched's own engine model,
stepping in real time) runs in its own worker process, the gateway drives them in parallel, and
schedule replay must find every step of every replica identical. The real thing:
tests/test_live_replicas.py."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from driftsched.sim.config import SimConfig
from driftsched.validate.cluster import LiveCluster
from driftsched.validate.runner import ValidateSettings, run
from driftsched.validate.scenario import Grid
from driftsched.validate.worker import EngineWorker, WorkerError, start_workers

from driftsched.ground.errors import InputError
from tests.simkit import trace
from tests.test_validate import PROFILE, FakeLiveEngine


class WallClock:
    """``FakeLiveEngine``'s clock on the wall: advancing ``t`` sleeps until then."""

    @property
    def t(self) -> float:
        return time.perf_counter()

    @t.setter
    def t(self, value: float) -> None:
        time.sleep(max(0.0, value - time.perf_counter()))


def real_time_engine(args=None, plan=None, slow: float = 1.0):
    """Module-level (it pickles into the worker): a fake engine stepping in real time."""
    return FakeLiveEngine(WallClock(), slow=slow)


def broken_engine(args=None, plan=None):
    raise RuntimeError("no engine here")


def cluster_settings(mode: str, router: str, **grid) -> ValidateSettings:
    base = {
        "policies": ["sjf"],
        "correctors": ["ewma"],
        "modes": [mode],
        "loads": [1.5],
        "requests": 120,
        "scenarios": 1,
        "max_concurrency": 8,
        **grid,
    }
    return ValidateSettings(profile=PROFILE, grid=Grid(**base), replicas=2, router=router)


@pytest.mark.parametrize(
    ("mode", "router"), [("continuous", "least_outstanding"), ("microbatch", "round_robin")]
)
def test_two_replicas_step_in_parallel_and_replay_step_for_step(tmp_path, mode, router):
    report = run(tmp_path, cluster_settings(mode, router), engine_factory=real_time_engine)
    assert report["status"] == "complete"
    assert len({w["pid"] for w in report["workers"]}) == 2
    (row,) = report["scenarios"]
    assert row["live_finished"] == row["requests"] == row["compared"] == 120
    steps = pd.read_parquet(tmp_path / "scenarios" / row["key"] / "live_steps.parquet")
    per_replica = steps.groupby("replica").size()
    assert set(per_replica.index) == {0, 1} and per_replica.min() > 20
    # in parallel: the replicas' steps overlap in time (in turn, they never would)
    a, b = (steps[steps.replica == r] for r in (0, 1))
    overlap = np.minimum(a.end_s.max(), b.end_s.max()) - np.maximum(
        a.start_s.min(), b.start_s.min()
    )
    assert overlap > 0.5 * min(a.end_s.max() - a.start_s.min(), b.end_s.max() - b.start_s.min())
    assert row["replay_identical_share"] >= 0.99, row["replay_first_divergence"]
    assert row["replay_e2e_request_error_p99"] <= 0.01
    # what is left between sim and live is timing: the pipe and the gateway's turn between
    # steps (these fake steps are short, so it shows), never semantics
    assert row["speed_ratio_run"] > 1.0


def test_a_worker_that_cannot_start_says_why_and_nothing_is_left_running():
    with pytest.raises(WorkerError, match="no engine here"):
        start_workers(broken_engine, 2, timeout_s=60)


def test_a_worker_stops_with_its_gateway(tmp_path):
    worker = EngineWorker(real_time_engine, None)
    worker.ready(60)
    worker.shutdown()
    assert not worker.process.is_alive() and worker.process.exitcode is not None


def test_a_kv_reading_router_is_refused_with_several_workers():
    config = SimConfig(replicas=2, router="least_kv", profile=PROFILE)
    with pytest.raises(InputError, match="KV pools"):
        LiveCluster([object(), object()], trace([(0.0, "standard", "short_qa", 10, 5)]), config)


def test_validate_refuses_a_kv_reading_router_before_any_engine_starts(tmp_path, capsys):
    """The settings say no, so no engine (minutes on a GPU host) starts for nothing; with one
    replica there is no router to refuse."""
    from tests.test_bad_input import assert_one_line, cli

    with pytest.raises(InputError, match="least_kv.*KV pools"):
        ValidateSettings(profile=PROFILE, replicas=2, router="least_kv")
    assert ValidateSettings(profile=PROFILE, replicas=1, router="least_kv").router == "least_kv"
    argv = ["validate", "run", "--profile", PROFILE, "-o", tmp_path / "v"]
    code, _, err = cli(capsys, *argv, "--replicas", "2", "--router", "least_kv")
    assert_one_line(code, err, "least_kv", "KV pools")
    assert not (tmp_path / "v").exists()


def test_prefix_affinity_routes_live_as_the_simulator_does(tmp_path):
    """The live gateway binds a prefix-reading router to the trace's prefixes, as the
    simulator does, with or without prefix caching. (It did not: live, every request went
    to the least loaded replica, and on vLLM replay diverged at step 49.)"""
    from driftsched.traces.generators import generate

    sessions = generate("sessions", requests=50, seed=4, system_prompts=4, think_time_s=2.0)
    path = sessions.write(tmp_path / "sessions.parquet")
    grid = {"policies": ["fifo"], "correctors": ["none"], "requests": 50, "trace": str(path)}
    settings = cluster_settings("continuous", "prefix_affinity", **grid)
    report = run(tmp_path / "v", settings, engine_factory=real_time_engine)
    (row,) = report["scenarios"]
    folder = tmp_path / "v" / "scenarios" / row["key"]
    live, replayed = (pd.read_parquet(folder / f) for f in ("live.parquet", "replay.parquet"))
    assert (live["replica"].to_numpy() == replayed["replica"].to_numpy()).all()
    assert row["replay_identical_share"] >= 0.99, row["replay_first_divergence"]
