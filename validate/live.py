"""The live gateway: the simulator's own Gateway (policy + corrector) in front of a real engine,
under real-time arrivals.

Choice: the engine runs **in-process** (``LLMEngine`` with ``VLLM_ENABLE_V1_MULTIPROCESSING=0``,
wrapped by :class:`~driftsched.calibrate.vllm_engine.InstrumentedEngine`) and one real-time loop
plays gateway and client: it admits each request when the wall clock reaches its ``arrival_s``,
dispatches by policy, runs an engine step, and stamps the first token and the finish of every
request from the step's streamed outputs. Why not ``vllm serve`` over HTTP: on a 2-core machine
an API-server process and an HTTP client compete with the engine for the cores and add jitter
that is about the machine, not the scheduler; in-process, the engine is the exact object the
calibration measured, requests join at step boundaries exactly as they do behind ``vllm
serve`` (new requests enter the scheduler between steps), and no server process can be left
behind. The loop is what an asyncio gateway would do at each step boundary, without threads
touching the non-thread-safe engine.

``clock`` and ``sleep`` are injectable, so tests drive the same loop with a fake engine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from driftsched.sim.config import SimConfig
from driftsched.sim.gateway import Gateway
from driftsched.sim.request import Admission
from driftsched.traces.schema import tier_rank
from driftsched.traces.trace import Trace

NAN = float("nan")


@dataclass
class LiveResult:
    """Per-request timestamps of a live run (same column names as the simulator's records),
    and how the run ended: ``complete``, ``timeout`` or ``error`` (with ``error`` text)."""

    records: pd.DataFrame
    status: str = "complete"
    error: str | None = None
    wall_s: float = 0.0
    extra: dict = field(default_factory=dict)


class LiveGateway:
    def __init__(
        self,
        engine,
        trace: Trace,
        config: SimConfig,
        *,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
        timeout_s: float = 600.0,
    ):
        self.engine, self.config, self.clock, self.sleep = engine, config, clock, sleep
        self.timeout_s = timeout_s
        f = trace.frame
        self.frame = f
        self.n = len(f)
        self.arrival_s = f["arrival_s"].to_numpy(dtype=float)
        self.prompt = f["prompt_tokens"].to_numpy(dtype=np.int64)
        self.output = f["output_tokens"].to_numpy(dtype=np.int64)
        self.max_tokens = f["max_tokens"].to_numpy(dtype=np.int64)
        self.cols = {
            c: [str(v) for v in f[c]] for c in ("request_id", "tenant", "tier", "category")
        }
        self.gateway = Gateway.from_config(config, self.output)
        self.ids = [f"q{i}" for i in range(self.n)]
        self.index = {rid: i for i, rid in enumerate(self.ids)}
        self.t = {
            k: np.full(self.n, NAN)
            for k in ("admit_s", "dispatch_s", "first_token_s", "finish_s", "done_s")
        }
        self.generated = np.zeros(self.n, dtype=np.int64)
        self.estimate = np.zeros(self.n, dtype=np.int64)
        self.est_class = np.empty(self.n, dtype=object)
        self.batch_id = np.full(self.n, -1, dtype=np.int64)
        self.admissions: dict[int, Admission] = {}
        self.in_engine = 0
        self.batch: list[int] = []
        self.batches = 0

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> LiveResult:
        self.t0 = self.clock()
        status, error = "complete", None
        try:
            self._loop()
        except TimeoutError as exc:
            status, error = "timeout", str(exc)
        except KeyboardInterrupt:
            status, error = "interrupted", "interrupted by the user"
            raise
        except Exception as exc:  # the engine died mid-run: keep what completed
            status, error = "error", f"{type(exc).__name__}: {exc}"
        finally:
            self.result = LiveResult(self._records(), status, error, self.now())
        return self.result

    def now(self) -> float:
        return self.clock() - self.t0

    next_arrival = 0
    batch_deadline: float | None = None

    def _loop(self) -> None:
        finished = 0
        while finished < self.n:
            if self.now() > self.timeout_s:
                raise TimeoutError(
                    f"scenario exceeded {self.timeout_s:g} s with "
                    f"{self.n - finished} requests unfinished"
                )
            self._admit()
            self._dispatch()
            if self.engine.has_work():
                finished += self._step()
                continue
            k = self.next_arrival
            wait = (self.arrival_s[k] - self.now()) if k < self.n else 0.001
            if self.config.mode == "microbatch" and self.batch_deadline is not None:
                wait = min(wait, self.batch_deadline - self.now())
            self.sleep(min(max(wait, 0.0), 0.05))

    def _admit(self) -> None:
        """Admit every request whose arrival time has passed (estimate, classify, queue)."""
        k, now = self.next_arrival, self.now()
        while k < self.n and self.arrival_s[k] <= now:
            tier = self.cols["tier"][k]
            adm = Admission(
                k,
                self.cols["request_id"][k],
                float(self.arrival_s[k]),
                self.cols["tenant"][k],
                tier,
                tier_rank(tier),
                self.cols["category"][k],
                int(self.prompt[k]),
                int(self.max_tokens[k]),
            )
            self.admissions[k] = adm
            view = self.gateway.admit(adm, now)
            self.estimate[k], self.est_class[k] = view.estimate_tokens, view.est_class
            self.t["admit_s"][k] = now
            k += 1
        self.next_arrival = k

    def _dispatch(self) -> None:
        cfg = self.config
        if cfg.mode == "continuous":
            while self.in_engine < cfg.max_concurrency and len(self.gateway):
                self._send(self.gateway.next(self.now()).index)
            return
        if self.in_engine:  # a batch is running to completion
            return
        if self.batch_deadline is None and len(self.gateway):
            self.batch = [self.gateway.next(self.now()).index]
            self.batch_deadline = self.now() + cfg.batch_wait_s
        if self.batch_deadline is None:
            return
        while len(self.batch) < cfg.batch_size and len(self.gateway):
            self.batch.append(self.gateway.next(self.now()).index)
        if len(self.batch) >= cfg.batch_size or self.now() >= self.batch_deadline:
            for i in self.batch:
                self._send(i, self.batches)
            self.batches += 1
            self.batch_deadline = None

    def _send(self, i: int, batch: int = -1) -> None:
        self.t["dispatch_s"][i] = self.now()
        self.batch_id[i] = batch
        self.engine.add(self.ids[i], int(self.prompt[i]), int(self.output[i]))
        self.in_engine += 1

    def _step(self) -> int:
        """One engine step; then, in the simulator's order of events at a step's end, the
        requests that arrived during the step are admitted (estimated with the corrector state
        of their arrival) and the finishes are fed back in trace-row order."""
        outputs = self.engine.step()
        now = self.now()
        done: list[tuple[int, int]] = []
        for out in outputs:
            i = self.index.get(out.request_id)
            if i is None:
                i = self.index[out.request_id.rsplit("-", 1)[0]]
            tokens = len(out.outputs[0].token_ids) if out.outputs else 0
            if tokens and np.isnan(self.t["first_token_s"][i]):
                self.t["first_token_s"][i] = now
            if out.finished:
                done.append((i, tokens))
        self._admit()
        for i, tokens in sorted(done):
            self.t["finish_s"][i] = now
            self.generated[i] = tokens
            self.in_engine -= 1
            self.gateway.finished(self.admissions[i], tokens)
            if self.config.mode == "continuous":
                self.t["done_s"][i] = now
        if self.config.mode == "microbatch" and self.in_engine == 0 and self.batch:
            for j in self.batch:
                self.t["done_s"][j] = now
            self.batch = []
        return len(done)

    def _records(self) -> pd.DataFrame:
        f, t = self.frame, self.t
        rec = pd.DataFrame(
            {
                "request_id": f["request_id"],
                "tenant": f["tenant"],
                "tier": f["tier"],
                "category": f["category"],
                "arrival_s": self.arrival_s,
                **t,
            }
        )
        rec["queue_wait_s"] = rec["dispatch_s"] - rec["arrival_s"]
        rec["ttft_s"] = rec["first_token_s"] - rec["arrival_s"]
        rec["e2e_s"] = rec["done_s"] - rec["arrival_s"]
        rec["prompt_tokens"] = self.prompt
        rec["output_tokens"] = self.output
        rec["generated_tokens"] = self.generated
        rec["estimate_tokens"] = self.estimate
        rec["batch_id"] = self.batch_id
        rec["finished"] = ~np.isnan(rec["done_s"].to_numpy())
        return rec
