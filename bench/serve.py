"""The services under load: ``gateway serve`` in front of ``engine serve``, offered ``--load``
times the engine's capacity for ``--seconds`` (default 10x for 60 s), plus the self-checks.

    python bench/serve.py                       # load bench + both self-checks (~4 min)
    python bench/serve.py --only load --load 10 --seconds 60
    python bench/serve.py --only load --kill-upstream-at 20   # two upstreams, one killed
    python bench/serve.py --only gateway --requests 200 --busy-cpus 4        # a busy host
    python bench/serve.py --only gateway --requests 200 --stall-engine 20 1.5  # a frozen one

Each server runs in its own process on loopback. The client is the trace replayer of
``driftsched.validate.serve.client`` (streamed; a client that waited ``--give-up`` seconds for
its answer disconnects). Printed, with the CPU model and the cost model:

- how every request ended, from the client and from the gateway's records — every request
  finished, rejected with a reason (429 limit, 503 queue full) or cancelled: **lost** counts
  requests the client sent that the gateway has no record of, or that ended without a reason;
- the gateway's overhead per finished request: the client's E2E minus the gateway's queue wait
  and minus the upstream's own time (``upstream_s``, measured by the gateway from sending the
  request to its last byte), P50/P99 — HTTP parsing, admission, relaying, both hops;
- the gateway process's memory (RSS) sampled each second: start, peak, end;
- with ``--kill-upstream-at T``: two engine upstreams, one killed at T s (streams on it end
  with an error event; new requests go to the other) — outcomes as above;
- for the self-checks, how far behind the engine server's loop ran; ``--busy-cpus N`` runs
  them beside N spinning processes, ``--stall-engine AT SECONDS`` freezes the engine server
  (SIGSTOP) that long, AT seconds into the replay (docs/serve.md, *A busy or stalling host*).

Figures are printed, never asserted; the self-checks' gates live in tests/test_http_selfcheck.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from driftsched.sim.profile import load_profile
from driftsched.traces.generators import generate
from driftsched.traces.trace import Trace
from driftsched.validate.scenario import capacity_requests_per_s
from driftsched.validate.serve.engine_app import cost_model_label
from driftsched.validate.serve.gateway_records import read_log
from driftsched.validate.serve.selfcheck import (
    engine_selfcheck,
    gateway_selfcheck,
    through_gateway,
    timeline_health,
)
from driftsched.validate.serve.server import ServiceProcess, busy_cpus

from driftsched.ground.machine import machine_line


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Sampler(threading.Thread):
    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.samples, self.stop = pid, [], threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                self.samples.append(rss_mib(self.pid))
            except OSError:
                return
            self.stop.wait(1.0)


def load_trace(profile: str, load: float, seconds: float, seed: int) -> tuple[Trace, float]:
    prof = load_profile(profile)
    probe = generate("driftsched-paper", requests=2000, seed=seed).frame
    capacity = capacity_requests_per_s(prof, probe, prof.engine.max_num_seqs)
    n = int(load * capacity * seconds)
    frame = generate("driftsched-paper", requests=n, seed=seed).frame
    span = float(frame["arrival_s"].iloc[-1])
    frame["arrival_s"] = frame["arrival_s"] * (seconds / span)
    frame["max_tokens"] = frame["output_tokens"]
    return Trace.from_frame(frame, f"load x{load:g}", source="bench"), capacity


def load_bench(args, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    trace, capacity = load_trace(args.profile, args.load, args.seconds, args.seed)
    n = len(trace.frame)
    print(
        f"load: x{args.load:g} the engine's estimated capacity ({capacity:.1f} req/s) for "
        f"{args.seconds:g} s = {n} requests, streamed; give up after {args.give_up:g} s"
    )
    cmd = ["engine", "serve", "--profile", args.profile]
    engines = [
        ServiceProcess(cmd, log=folder / f"engine{i}.log")
        for i in range(2 if args.kill_upstream_at else 1)
    ]
    samplers = []

    def started(gateway) -> None:  # sample its memory; the fault, if asked for
        samplers.append(Sampler(gateway.proc.pid))
        samplers[0].start()
        if args.kill_upstream_at:
            threading.Timer(args.kill_upstream_at, engines[1].kill).start()

    try:
        t0 = time.perf_counter()
        client = through_gateway(
            trace, engines[0].url, folder, give_up_s=args.give_up, started=started,
            linger_s=1.5, policy="sjf", corrector="ewma", max_concurrency=args.concurrency,
            max_queued=args.max_queued, upstreams=[e.url for e in engines], retry_cooldown_s=5.0,
        )  # fmt: skip
        wall = time.perf_counter() - t0 - 1.5
    finally:
        for s in samplers:
            s.stop.set()
        for e in engines:
            e.close()
    sampler = samplers[0]
    log = read_log(folder / "records.jsonl")
    statuses = client["status"].value_counts().sort_index().items()
    print(f"  client: {wall:.1f} s; statuses " + ", ".join(f"{k}: {v}" for k, v in statuses))
    outcomes = log["outcome"].value_counts().to_dict()
    print(f"  gateway records: {len(log)} — " + ", ".join(f"{k} {v}" for k, v in outcomes.items()))
    reasons = log.loc[log["outcome"] != "finished", "reason"].value_counts().head(6).to_dict()
    retried = int((log["attempts"].fillna(0) > 1).sum())
    print(f"  why not finished: {reasons}; retried on another upstream: {retried}")
    known = set(log["request_id"].astype(str))
    unrecorded = int((~client["request_id"].astype(str).isin(known)).sum())
    no_reason = int(((log["outcome"] != "finished") & log["reason"].fillna("").eq("")).sum())
    print(f"  lost: {unrecorded + no_reason} (sent but not recorded {unrecorded}, ended without "
          f"a reason {no_reason})")  # fmt: skip
    done = log[log["outcome"] == "finished"].set_index("request_id")
    c = client.set_index("request_id").loc[done.index]
    overhead = (
        (c["e2e_s"] - c["send_lag_s"])
        - (done["dispatch_s"] - done["arrival_s"])
        - done["upstream_s"].astype(float)
    )
    o = overhead.to_numpy(float) * 1e3
    o = o[np.isfinite(o)]
    if o.size:
        print(f"  gateway overhead per finished request: P50 {np.percentile(o, 50):.2f} ms, "
              f"P99 {np.percentile(o, 99):.2f} ms ({o.size} requests)")  # fmt: skip
    s = sampler.samples
    if s:
        print(f"  gateway RSS: start {s[0]:.0f} MiB, peak {max(s):.0f} MiB, end {s[-1]:.0f} MiB "
              f"({len(s)} samples)")  # fmt: skip


def e2e_line(r: dict, side: str) -> str:
    """A self-check's E2E figures (``side``: ``live`` or ``gateway``) against the simulator's."""
    return (f"E2E P50 {r[f'{side}_e2e_p50_s']:.3f} vs {r['sim_e2e_p50_s']:.3f} s (error "
            f"{r['e2e_p50_rel_error']:.2%}), P99 error {r['e2e_p99_rel_error']:.2%}")  # fmt: skip


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=["load", "engine", "gateway"], default=None)
    ap.add_argument("--profile", default="cpu-tiny-llama")
    ap.add_argument("--load", type=float, default=10.0)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--max-queued", type=int, default=256)
    ap.add_argument("--give-up", type=float, default=30.0)
    ap.add_argument("--kill-upstream-at", type=float, default=None)
    ap.add_argument("--folder", default=None)
    ap.add_argument("--requests", type=int, default=300, help="each self-check's trace")
    ap.add_argument("--busy-cpus", type=int, default=0, help="spinners beside the self-checks")
    ap.add_argument("--stall-engine", type=float, nargs=2, metavar=("AT", "SECONDS"))
    args = ap.parse_args(argv)
    folder = Path(args.folder or tempfile.mkdtemp(prefix="driftsched-serve-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine_line()}; cost model: {cost_model_label(load_profile(args.profile))}")
    print(f"logs and records: {folder}")
    n, stall = args.requests, tuple(args.stall_engine) if args.stall_engine else None
    if args.busy_cpus or stall:
        print(f"self-checks beside {args.busy_cpus} spinning processes; engine frozen: "
              + (f"{stall[1]:g} s at {stall[0]:g} s" if stall else "no"))  # fmt: skip
    with busy_cpus(args.busy_cpus):
        if args.only in (None, "engine"):
            r = engine_selfcheck(args.profile, requests=n, load=0.6, stall=stall)
            print(f"engine serve vs the offline simulator ({n} requests, x0.6): "
                  f"{e2e_line(r, 'live')}, TTFT P50 error {r['ttft_p50_rel_error']:.2%}; "
                  f"finished {r['live_finished']}/{r['sim_finished']}")  # fmt: skip
            print("  " + timeline_health(r))
        if args.only in (None, "gateway"):
            r = gateway_selfcheck(folder / "gateway-check", args.profile, requests=n, load=0.8,
                                  stall=stall)  # fmt: skip
            print(f"gateway serve -> engine serve vs the simulator (sjf + ewma, 16 in flight, {n} "
                  f"requests, x0.8): {e2e_line(r, 'gateway')}; client E2E P50 error "
                  f"{r['client_e2e_p50_rel_error']:.2%}; outcomes "
                  f"{json.dumps(r['outcomes'])}")  # fmt: skip
            print("  " + timeline_health(r))
    if args.only in (None, "load"):
        load_bench(args, folder / "load")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
