"""``/metrics`` of ``driftsched gateway serve`` (Prometheus, prometheus-client), all under
``driftsched_gateway_``: requests by tenant and outcome, rate-limit hits by limit, policy
rejections by reason, upstream errors by upstream and kind; queue wait, TTFT, E2E and TPOT
histograms by tier; and, read at every scrape, queue depth per tier and per tenant, requests
in flight per upstream, whether each upstream is resting, the corrector's state, and the
policy/corrector/mode the gateway runs (``driftsched_gateway_info``).
"""

from __future__ import annotations

import logging
import math

from driftsched.validate.serve.engine_metrics import LATENCY_BUCKETS, TOKEN_LATENCY_BUCKETS
from driftsched.validate.serve.gateway_service import RESTING
from driftsched.validate.serve.logs import event
from prometheus_client import CollectorRegistry, Counter, Histogram, Info
from prometheus_client.core import GaugeMetricFamily

P = "driftsched_gateway_"


class _Live:
    """The gauges read off the service at scrape time."""

    def __init__(self, service):
        self.service = service

    def collect(self):
        s = self.service
        depth = GaugeMetricFamily(P + "queue_depth", "Requests queued, by tier", labels=["tier"])
        for tier, n in sorted(s.gateway.depth_by_tier.items()):
            depth.add_metric([tier], n)
        yield depth
        by_tenant = GaugeMetricFamily(
            P + "tenant_queued", "Requests queued, by tenant", labels=["tenant"]
        )
        for name, tenant in sorted(s.tenants.by_name.items()):
            by_tenant.add_metric([name], tenant.queued)
        yield by_tenant
        flight = GaugeMetricFamily(
            P + "upstream_in_flight", "Requests in flight, by upstream", labels=["upstream"]
        )
        rest = GaugeMetricFamily(
            P + "upstream_resting", "1 while a failed upstream rests", labels=["upstream"]
        )
        for slot, url in zip(s.slots, s.settings.upstreams, strict=True):
            resting = s.resting[slot.replica_id]
            flight.add_metric([url], slot.in_engine - (RESTING if resting else 0))
            rest.add_metric([url], float(resting))
        yield flight
        yield rest
        state = GaugeMetricFamily(
            P + "corrector_state", "The corrector's learnable state", labels=["key"]
        )
        for key, value in sorted(s.gateway.corrector_state().items()):
            if isinstance(value, int | float) and math.isfinite(value):
                state.add_metric([key], float(value))
        yield state


class GatewayMetrics:
    def __init__(self, service, registry: CollectorRegistry | None = None):
        self.registry = reg = registry if registry is not None else CollectorRegistry()
        self.requests = Counter(
            P + "requests", "Requests by how they ended", ["tenant", "outcome"], registry=reg
        )
        self.rate_limited = Counter(
            P + "rate_limited", "Requests over a tenant limit", ["tenant", "limit"], registry=reg
        )
        self.rejections = Counter(
            P + "rejections", "Requests the policy rejected", ["reason"], registry=reg
        )
        self.upstream_errors = Counter(
            P + "upstream_errors", "Upstream failures", ["upstream", "kind"], registry=reg
        )

        def hist(name, doc, buckets):
            return Histogram(P + name, doc, ["tier"], buckets=buckets, registry=reg)

        self.queue_wait = hist("queue_wait_seconds", "Arrival to dispatch", LATENCY_BUCKETS)
        self.ttft = hist("ttft_seconds", "Arrival to first token (streamed)", LATENCY_BUCKETS)
        self.e2e = hist("e2e_seconds", "Arrival to the response's end", LATENCY_BUCKETS)
        self.tpot = hist(
            "tpot_seconds", "Time per output token after the first", TOKEN_LATENCY_BUCKETS
        )
        g = service.settings
        Info(P + "info", "What the gateway runs", registry=reg).info(
            {"policy": g.policy, "corrector": g.corrector, "mode": g.mode}
        )
        reg.register(_Live(service))

    def upstream_error(self, url: str, kind: str) -> None:
        self.upstream_errors.labels(url, kind).inc()
        event("upstream_error", level=logging.WARNING, upstream=url, kind=kind)

    def ended(self, p, row: dict) -> None:
        """Every record row (the service's ``on_end``)."""
        outcome, tenant = row["outcome"], row.get("tenant") or "-"
        self.requests.labels(tenant, outcome).inc()
        if outcome == "rate_limited":
            self.rate_limited.labels(tenant, row["reason"]).inc()
        elif outcome == "rejected":
            self.rejections.labels(row["reason"]).inc()
        if outcome != "finished":
            return
        tier, arrival = row["tier"], row["arrival_s"]
        self.queue_wait.labels(tier).observe(row["dispatch_s"] - arrival)
        if row["first_token_s"] == row["first_token_s"]:  # streamed: a first token was seen
            self.ttft.labels(tier).observe(row["first_token_s"] - arrival)
            if row["generated_tokens"] > 1:
                decode_s = row["finish_s"] - row["first_token_s"]
                self.tpot.labels(tier).observe(decode_s / (row["generated_tokens"] - 1))
        if row["done_s"] == row["done_s"]:
            self.e2e.labels(tier).observe(row["done_s"] - arrival)
