"""``/metrics`` of ``driftsched engine serve``, under vLLM's own metric names (vLLM 0.32,
``vllm/v1/metrics/loggers.py``: labels ``model_name`` and ``engine``), so dashboards, gateways
and autoscalers that read a vLLM server read this one unchanged. One extra series,
``driftsched_engine_profile_info``, says which cost model the timings come from and whether it
is a *prior* or *measured*; three say how well the server kept the model's timeline on this
host (:mod:`.realtime`): ``driftsched_engine_lag_max_seconds`` (the furthest behind a step
started), ``driftsched_engine_timeline_slips_total`` and
``driftsched_engine_timeline_slipped_seconds_total`` (restarts of the timeline after a stall
too long to catch up, and the seconds they skipped: non-zero means latencies ran long).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

#: seconds buckets (vLLM's request-latency scale, coarser)
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160)
TOKEN_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 1)
TOKEN_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)


#: attribute -> (vLLM's histogram name, its help, buckets)
HISTOGRAMS = {
    "iteration_tokens": (
        "vllm:iteration_tokens_total", "Histogram of number of tokens per step", TOKEN_BUCKETS
    ),
    "ttft": ("vllm:time_to_first_token_seconds", "Time to first token", LATENCY_BUCKETS),
    "itl": ("vllm:inter_token_latency_seconds", "Inter-token latency", TOKEN_LATENCY_BUCKETS),
    "e2e": ("vllm:e2e_request_latency_seconds", "E2E request latency", LATENCY_BUCKETS),
    "queue": ("vllm:request_queue_time_seconds", "Time spent in WAITING phase", LATENCY_BUCKETS),
    "prefill": (
        "vllm:request_prefill_time_seconds", "Time spent in PREFILL phase", LATENCY_BUCKETS
    ),
    "decode": ("vllm:request_decode_time_seconds", "Time spent in DECODE phase", LATENCY_BUCKETS),
    "tpot": (
        "vllm:request_time_per_output_token_seconds",
        "Time per output token per request",
        TOKEN_LATENCY_BUCKETS,
    ),
    "request_prompt": (
        "vllm:request_prompt_tokens", "Number of prefill tokens processed", TOKEN_BUCKETS
    ),
    "request_generation": (
        "vllm:request_generation_tokens", "Number of generation tokens", TOKEN_BUCKETS
    ),
}  # fmt: skip


#: how well the loop kept the model's timeline, read off the engine at every scrape:
#: the RealtimeEngine attribute -> (series, kind, help); a counter's sample ends in ``_total``
TIMELINE = {
    "lag_max_s": (
        "driftsched_engine_lag_max_seconds", "gauge",
        "The furthest behind the model's timeline a step started (caught up)",
    ),
    "slips": (
        "driftsched_engine_timeline_slips", "counter",
        "Restarts of the timeline after a stall longer than the loop catches up",
    ),
    "slipped_s": (
        "driftsched_engine_timeline_slipped_seconds", "counter",
        "Seconds of the model's timeline those restarts skipped",
    ),
}  # fmt: skip
LABELS = ["model_name", "engine"]


class EngineMetrics:
    """The engine's Prometheus series in their own registry (``registry``), fed by the
    :class:`~driftsched.validate.serve.realtime.RealtimeEngine` as an observer."""

    def __init__(self, model_name: str, profile, registry: CollectorRegistry | None = None):
        self.registry = reg = registry if registry is not None else CollectorRegistry()
        labels, values = LABELS, (model_name, "0")

        def gauge(name, doc):
            return Gauge(name, doc, labels, registry=reg).labels(*values)

        def counter(name, doc):
            return Counter(name, doc, labels, registry=reg).labels(*values)

        def histogram(name, doc, buckets):
            return Histogram(name, doc, labels, buckets=buckets, registry=reg).labels(*values)

        self.running = gauge("vllm:num_requests_running", "Number of requests in model execution")
        self.waiting = gauge("vllm:num_requests_waiting", "Number of requests waiting")
        self.kv_usage = gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent")
        self.prompt_tokens = counter("vllm:prompt_tokens", "Number of prefill tokens processed")
        self.generation_tokens = counter(
            "vllm:generation_tokens", "Number of generation tokens processed"
        )
        self.preemptions = counter("vllm:num_preemptions", "Cumulative number of preemptions")
        self._success = Counter(
            "vllm:request_success",
            "Count of successfully processed requests",
            [*labels, "finished_reason"],
            registry=reg,
        )
        self._values = values
        for attr, (name, doc, buckets) in HISTOGRAMS.items():
            setattr(self, attr, histogram(name, doc, buckets))
        info = Info(
            "driftsched_engine_profile", "The cost model behind the step times", registry=reg
        )
        info.info({"profile": profile.name, "cost_model": profile.provenance.kind})

    def bind(self, engine) -> None:
        """Read the gauges and the timeline's health off ``engine`` (a RealtimeEngine) at
        every scrape."""
        self.running.set_function(lambda: engine.num_running)
        self.waiting.set_function(lambda: engine.num_waiting)
        self.kv_usage.set_function(lambda: engine.kv_usage)
        self.registry.register(_Timeline(engine, self._values))

    # -- observer ------------------------------------------------------------------------------
    def step(self, engine, plan, outcome, seconds: float) -> None:
        shape = plan.shape
        self.prompt_tokens.inc(shape.prefill_tokens)
        produced = shape.decode_requests + len(outcome.first_token)
        self.generation_tokens.inc(produced)
        self.iteration_tokens.observe(shape.prefill_tokens + shape.decode_requests)
        if plan.preempted:
            self.preemptions.inc(len(plan.preempted))
        if shape.decode_requests:
            for _ in range(shape.decode_requests):
                self.itl.observe(seconds)

    def finished(self, stream) -> None:
        if stream.reason == "abort":
            self._success.labels(*self._values, "abort").inc()
            return
        self._success.labels(*self._values, stream.reason).inc()
        self.ttft.observe(stream.first_token_s - stream.arrival_s)
        self.e2e.observe(stream.finish_s - stream.arrival_s)
        self.queue.observe(stream.scheduled_s - stream.arrival_s)
        self.prefill.observe(stream.first_token_s - stream.scheduled_s)
        self.decode.observe(stream.finish_s - stream.first_token_s)
        if stream.tokens > 1:
            self.tpot.observe((stream.finish_s - stream.first_token_s) / (stream.tokens - 1))
        self.request_prompt.observe(stream.prompt_tokens)
        self.request_generation.observe(stream.tokens)


class _Timeline:
    """The :data:`TIMELINE` series, read off the engine at scrape time."""

    FAMILIES = {"gauge": GaugeMetricFamily, "counter": CounterMetricFamily}

    def __init__(self, engine, values: tuple[str, str]):
        self.engine, self.values = engine, list(values)

    def collect(self):
        for attr, (name, kind, doc) in TIMELINE.items():
            family = self.FAMILIES[kind](name, doc, labels=LABELS)
            family.add_metric(self.values, getattr(self.engine, attr))
            yield family
