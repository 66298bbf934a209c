"""``engine serve`` checked against itself: the same trace through the server in real time
(HTTP, streamed, a separate process) and through the offline simulator must agree.

The trace is the study's generator at ``load`` x the engine's estimated capacity
(:func:`~driftsched.validate.scenario.capacity_requests_per_s`); the simulator runs it with no
gateway limit (every request goes to the engine on arrival, as the client sends it to the
server), FIFO, the same profile. Figures: E2E and TTFT P50/P99 of both, their relative errors,
how many requests each finished, and the client's send lag. Timing-gated: run it on a quiet
machine (``bench/serve.py`` prints it; CI's HTTP check gates E2E P50 within 2%).

:func:`gateway_selfcheck` does the same for the whole HTTP path: the trace through ``gateway
serve`` in front of ``engine serve``, against the simulator with the gateway's policy.

Both report how well the engine server kept the model's timeline (:func:`engine_health`), and
both take ``stall=(at_s, seconds)``: the engine server's process frozen that long, ``at_s``
seconds after the replay starts (:meth:`~.server.ServiceProcess.stall`) — a host stall on
purpose, to show what one does to the figures (``bench/serve.py --stall-engine``).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import numpy as np
from driftsched.sim.config import SimConfig
from driftsched.sim.profile import load_profile
from driftsched.sim.simulation import simulate
from driftsched.traces.generators import generate
from driftsched.traces.trace import Trace
from driftsched.validate.scenario import capacity_requests_per_s
from driftsched.validate.serve.client import replay
from driftsched.validate.serve.engine_app import cost_model_label
from driftsched.validate.serve.engine_metrics import TIMELINE
from driftsched.validate.serve.gateway_records import read_log, records_frame
from driftsched.validate.serve.server import ServiceProcess
from driftsched.validate.serve.tenants import hash_key

from driftsched.ground.machine import cpu_model


def selfcheck_trace(profile, requests: int, load: float, seed: int) -> Trace:
    """The study's workload (``requests`` rows, slice ``seed``) at ``load`` x capacity."""
    base = generate("driftsched-paper", requests=requests, seed=seed).frame
    span = float(base["arrival_s"].iloc[-1]) or 1.0
    target = load * capacity_requests_per_s(profile, base, profile.engine.max_num_seqs)
    frame = base.copy()
    frame["arrival_s"] = frame["arrival_s"] * (len(base) / span / target)
    return Trace.from_frame(frame, f"engine self-check x{load:g}", source="selfcheck")


#: what :func:`engine_health` reads off an engine server's /metrics: sample -> figure
HEALTH = {
    name + ("_total" if kind == "counter" else ""): f"engine_{attr}"
    for attr, (name, kind, _) in TIMELINE.items()
}


def engine_health(url: str) -> dict:
    """How well the ``engine serve`` at ``url`` kept the model's timeline (its /metrics): the
    furthest behind a step started, and the restarts after a stall too long to catch up."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    page = httpx.get(url.rstrip("/") + "/metrics", timeout=10).text
    out = {}
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            if sample.name in HEALTH:
                out[HEALTH[sample.name]] = float(sample.value)
    return out


def timeline_health(r: dict) -> str:
    """One line on how well the engine server kept the model's timeline in a check's run
    (``r``: its figures): whether the host stalled it, and for how long."""
    line = f"engine timeline: at most {r['engine_lag_max_s'] * 1e3:.0f} ms behind (caught up)"
    if r["engine_slips"]:
        line += (
            f"; {r['engine_slips']:.0f} slips, {r['engine_slipped_s']:.2f} s skipped — the host "
            "stalled longer than the loop catches up on: latencies ran long"
        )
    return line


def _stall_timer(server: ServiceProcess, stall: tuple[float, float] | None):
    """A timer that freezes ``server`` for ``stall[1]`` s, ``stall[0]`` s after it starts
    (None without a stall); :func:`_stop` it however the run ends."""
    if stall is None:
        return None
    at_s, seconds = stall
    timer = threading.Timer(at_s, server.stall, (seconds,))
    timer.daemon = True
    return timer


def _stop(timer) -> None:
    """Cancel ``timer`` if it has not fired; wait for a stall under way to end."""
    if timer is not None:
        timer.cancel()
        if timer.is_alive():
            timer.join()


def _p(x: np.ndarray, q: float) -> float:
    x = x[~np.isnan(x)]
    return float(np.percentile(x, q)) if x.size else float("nan")


def engine_selfcheck(
    profile: str = "cpu-tiny-llama",
    requests: int = 300,
    load: float = 0.6,
    seed: int = 0,
    stream: bool = True,
    log=None,
    stall: tuple[float, float] | None = None,
) -> dict:
    """Run the check (module docstring); returns its figures."""
    prof = load_profile(profile)
    trace = selfcheck_trace(prof, requests, load, seed)
    config = SimConfig(profile=profile, max_concurrency=10**6, corrector="none", policy="fifo")
    sim = simulate(trace, config, prof).records
    with ServiceProcess(["engine", "serve", "--profile", profile], log=log) as server:
        timer = _stall_timer(server, stall)
        try:
            if timer is not None:
                timer.start()
            live = asyncio.run(replay(server.url, trace.frame, stream=stream))
        finally:
            _stop(timer)
        health = engine_health(server.url)
    out = {
        "cost_model": cost_model_label(prof),
        "cpu": cpu_model(),
        "requests": requests,
        "load": load,
        "stream": stream,
        "live_finished": int((live["status"] == 200).sum() - live["done_s"].isna().sum()),
        "sim_finished": int(sim["finished"].sum()),
        "send_lag_max_s": float(live["send_lag_s"].max()),
        "tokens_exact": bool((live["generated_tokens"] == live["output_tokens"]).all()),
        "stall": list(stall) if stall else None,
        **health,
    }
    for metric in ("e2e_s", "ttft_s"):
        for q in (50, 99):
            lv, sv = _p(live[metric].to_numpy(float), q), _p(sim[metric].to_numpy(float), q)
            name = f"{metric.removesuffix('_s')}_p{q}"
            out[f"live_{name}_s"], out[f"sim_{name}_s"] = lv, sv
            out[f"{name}_rel_error"] = abs(lv - sv) / sv if sv else float("nan")
    return out


def gateway_config_text(trace: Trace, upstream: str, records: Path, **gateway) -> tuple[str, dict]:
    """A gateway TOML for ``trace``'s tenants (one key each, ``sk-<tenant>``) and the keys."""
    f = trace.frame
    tiers = f.groupby("tenant", observed=True)["tier"].first().astype(str).to_dict()
    keys = {t: f"sk-{t}" for t in tiers}
    lines = ["[gateway]"]
    for k, v in {"upstreams": [upstream], "records": str(records), **gateway}.items():
        lines.append(f"{k} = {json.dumps(v)}")
    for tenant, tier in tiers.items():
        lines += ["", "[[tenants]]", f"name = {json.dumps(tenant)}", f'tier = "{tier}"',
                  f'key_sha256 = "{hash_key(keys[tenant])}"']  # fmt: skip
    return "\n".join(lines) + "\n", keys


def through_gateway(
    trace: Trace,
    upstream: str,
    folder: str | Path,
    *,
    timeout_s: float = 600.0,
    give_up_s: float | None = None,
    started=None,
    linger_s: float = 0.0,
    **gateway,
):
    """``trace`` replayed through a ``gateway serve`` process in front of ``upstream`` (its
    config from :func:`gateway_config_text` with ``gateway``'s settings; its TOML, log and
    records log — ``records.jsonl``, emptied first — in ``folder``). ``started(process)`` is
    called once the gateway answers; ``linger_s`` keeps it up that long after the client is
    done (its last records). Returns the client's frame (:func:`~.client.replay`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    records = folder / "records.jsonl"
    records.unlink(missing_ok=True)  # the gateway appends
    text, keys = gateway_config_text(trace, upstream, records, **gateway)
    (folder / "gateway.toml").write_text(text)
    cmd = ["gateway", "serve", "--config", str(folder / "gateway.toml")]
    with ServiceProcess(cmd, health="/healthz", log=folder / "gateway.log") as process:
        if started is not None:
            started(process)
        client = asyncio.run(
            replay(process.url, trace.frame, keys=keys, timeout_s=timeout_s, give_up_s=give_up_s)
        )
        if linger_s:
            time.sleep(linger_s)
    return client


def gateway_selfcheck(
    folder: str | Path,
    profile: str = "cpu-tiny-llama",
    requests: int = 300,
    load: float = 0.8,
    seed: int = 0,
    policy: str = "sjf",
    corrector: str = "ewma",
    mode: str = "continuous",
    max_concurrency: int = 16,
    stall: tuple[float, float] | None = None,
) -> dict:
    """The HTTP path against the simulator: the trace through ``gateway serve`` -> ``engine
    serve`` (two processes, streamed) and the same trace — as the client sent it
    (``max_tokens`` = the output length) — through the simulator with the same policy,
    corrector, mode and concurrency. Compared on the gateway's own records (E2E, queue wait)
    and on the client's E2E. Logs and the gateway's records stay in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    prof = load_profile(profile)
    trace = selfcheck_trace(prof, requests, load, seed)
    frame = trace.frame.copy()
    frame["max_tokens"] = frame["output_tokens"]
    trace = Trace.from_frame(frame, trace.meta.get("source", "selfcheck"), source="selfcheck")
    settings = {"policy": policy, "corrector": corrector, "mode": mode,
                "max_concurrency": max_concurrency}  # fmt: skip
    config = SimConfig(profile=profile, **settings)
    sim = simulate(trace, config, prof).records
    with ServiceProcess(["engine", "serve", "--profile", profile],
                        log=folder / "engine.log") as engine:  # fmt: skip
        timer = _stall_timer(engine, stall)
        started = None if timer is None else (lambda _: timer.start())
        try:
            client = through_gateway(trace, engine.url, folder, started=started, **settings)
        finally:
            _stop(timer)
        health = engine_health(engine.url)
    log = records_frame(read_log(folder / "records.jsonl"))
    out = {
        "cost_model": cost_model_label(prof),
        "cpu": cpu_model(),
        "requests": requests,
        "load": load,
        **settings,
        "gateway_finished": int(log["finished"].sum()),
        "client_ok": int((client["status"] == 200).sum()),
        "sim_finished": int(sim["finished"].sum()),
        "outcomes": log["outcome"].value_counts().to_dict(),
        "stall": list(stall) if stall else None,
        **health,
    }
    by_id = log.set_index("request_id")
    for metric in ("e2e_s", "queue_wait_s"):
        g = by_id.loc[sim["request_id"].astype(str), metric].to_numpy(float)
        s = sim[metric].to_numpy(float)
        for q in (50, 99):
            lv, sv = _p(g, q), _p(s, q)
            name = f"{metric.removesuffix('_s')}_p{q}"
            out[f"gateway_{name}_s"], out[f"sim_{name}_s"] = lv, sv
            out[f"{name}_rel_error"] = abs(lv - sv) / sv if sv else float("nan")
    lv, sv = _p(client["e2e_s"].to_numpy(float), 50), _p(sim["e2e_s"].to_numpy(float), 50)
    out["client_e2e_p50_s"], out["client_e2e_p50_rel_error"] = lv, abs(lv - sv) / sv
    return out
