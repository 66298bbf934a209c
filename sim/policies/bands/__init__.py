"""``bands``: llm-d / Gateway API Inference Extension flow control — strict priority bands, a
fairness policy choosing the tenant within a band, an ordering policy within a tenant's queue,
and saturation-gated admission.

- **Bands**: a request's band is ``band_of_tier[tier]``, else its tier rank (premium 1,
  standard 2, batch 3); the lowest band with queued requests is always served first (a lower
  band never goes while a higher one waits — tested).
- **Fairness** (``fairness``: ``round_robin`` | ``vtc``) and **ordering** (``ordering``:
  ``fcfs`` | ``sjf`` | ``edf``): :mod:`~driftsched.sim.policies.bands.parts`.
- **Saturation** (:mod:`~driftsched.sim.policies.bands.saturation`): the engines are saturated
  when every replica has ``queue_threshold`` or more requests waiting inside its engine, or KV
  utilisation at or over ``kv_threshold``. While saturated, ``pop`` *holds* (dispatches nothing;
  with ``hold_when_saturated``), and a new request of a band in ``sheddable_bands`` is
  *rejected* with the reason ``shed: engines saturated``. Requests of other bands are never shed;
  nothing is shed while the engines are not saturated (tested).
"""

from __future__ import annotations

from driftsched.sim.gatewaystate import GatewayState
from driftsched.sim.policies.bands.parts import FAIRNESS, ORDERINGS
from driftsched.sim.policies.bands.saturation import SaturationParams, saturated
from driftsched.sim.policies.base import Policy
from driftsched.sim.policies.queues import TenantQueues
from driftsched.sim.request import Outcome, RequestView
from pydantic import Field, field_validator

#: the reason a shed request's record carries
SHED_REASON = "shed: engines saturated"


class BandsParams(SaturationParams):
    band_of_tier: dict[str, int] = Field(
        default_factory=dict, description="tier -> band (lower first); default: the tier rank"
    )
    fairness: str = Field("round_robin", description="round_robin | vtc")
    ordering: str = Field("fcfs", description="fcfs | sjf | edf")
    hold_when_saturated: bool = Field(True, description="dispatch nothing while saturated")
    sheddable_bands: list[int] = Field(
        default_factory=list, description="bands whose new requests are rejected when saturated"
    )

    @field_validator("fairness")
    @classmethod
    def _fairness(cls, name: str) -> str:
        return FAIRNESS.check(name)

    @field_validator("ordering")
    @classmethod
    def _ordering(cls, name: str) -> str:
        return ORDERINGS.check(name)


def never_a_lower_band_while_a_higher_waits(events, policy) -> str | None:
    """A request of a band is handed out only when no request of a higher (smaller) band is
    queued."""
    for e in events:
        if e.kind == "pop" and e.view is not None:
            band = policy.band(e.view)
            higher = [v for v in e.queued if policy.band(v) < band]
            if higher:
                waiting = policy.band(higher[0])
                return f"at {e.now_s:.6g} s served band {band} while band {waiting} waited"
    return None


def sheds_only_when_saturated(events, policy) -> str | None:
    """A request is rejected only when the engines were saturated at its admission, and only
    if its band is sheddable."""
    p = policy.params
    for e in events:
        if e.kind == "admit" and e.answer:
            if policy.band(e.view) not in p.sheddable_bands:
                return f"shed a request of band {policy.band(e.view)}, which is not sheddable"
            full = [w >= p.queue_threshold or kv >= p.kv_threshold for w, kv in e.replicas]
            if not (full and all(full)):
                return f"shed at {e.now_s:.6g} s while not saturated (replicas: {e.replicas})"
    return None


class BandsPolicy(Policy):
    name = "bands"
    Params = BandsParams
    properties = (never_a_lower_band_while_a_higher_waits, sheds_only_when_saturated)

    def __init__(self, params: BandsParams | None = None):
        super().__init__(params)
        self._key = ORDERINGS.resolve(self.params.ordering)
        self._bands: dict[int, tuple[TenantQueues, object]] = {}  # band -> (queues, fairness)
        self._count = 0
        self.state: GatewayState | None = None

    def band(self, view: RequestView) -> int:
        return self.params.band_of_tier.get(view.tier, view.tier_rank)

    def attach(self, state: GatewayState) -> None:
        self.state = state

    def saturated(self) -> bool:
        return self.state is not None and saturated(self.state, self.params)

    def admit(self, view: RequestView, now_s: float) -> str | None:
        if self.band(view) in self.params.sheddable_bands and self.saturated():
            return SHED_REASON
        return None

    def push(self, req: RequestView) -> None:
        band = self.band(req)
        entry = self._bands.get(band)
        if entry is None:
            entry = self._bands[band] = (
                TenantQueues(self._key),
                FAIRNESS.resolve(self.params.fairness)(),
            )
            self._bands = dict(sorted(self._bands.items()))  # bands in order, lowest first
        queues, fairness = entry
        if queues.push(req):
            fairness.joined(req.tenant, queues)
        self._count += 1

    def pop(self, now_s: float) -> RequestView | None:
        if not self._count or (self.params.hold_when_saturated and self.saturated()):
            return None
        for queues, fairness in self._bands.values():
            if queues.count:
                view = queues.pop(fairness.pick(queues))
                fairness.dispatched(view)
                self._count -= 1
                return view
        return None

    def on_finish(self, view: RequestView, outcome: Outcome) -> None:
        self._bands[self.band(view)][1].finished(view, outcome.output_tokens)

    def __len__(self) -> int:
        return self._count
