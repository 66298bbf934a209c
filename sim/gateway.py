"""The gateway: admission (estimate, job class, the policy's admission decision), the policy
queue, and feedback on finish.

Pure and clock-free: callers pass ``now_s``. The simulator and the live gateway (validate) both
drive this class, so one implementation of every policy and corrector serves both. The
policy's optional hooks (:mod:`driftsched.sim.policies.base`) are looked up once, here; a
policy without them runs the same code path as before they existed.
"""

from __future__ import annotations

from collections import Counter

from driftsched.sim.correctors import Corrector
from driftsched.sim.gatewaystate import GatewayState
from driftsched.sim.jobclass import JobClassConfig
from driftsched.sim.policies import Policy
from driftsched.sim.policies.base import hook
from driftsched.sim.request import Admission, Outcome, RequestView, from_fields


class Gateway:
    def __init__(self, policy: Policy, corrector: Corrector, job_classes: JobClassConfig):
        self.policy, self.corrector, self.job_classes = policy, corrector, job_classes
        self.depth_by_tier: Counter[str] = Counter()
        self.queued_by_tenant: Counter[str] = Counter()
        self.in_flight_by_tenant: Counter[str] = Counter()
        self.rejected = 0
        self._seq = 0
        # a corrector needs only estimate(); observe() and state() are optional
        self._observe = getattr(corrector, "observe", None)
        self.corrector_state = getattr(corrector, "state", None) or dict
        self._distribution = getattr(corrector, "distribution", None)
        self._attach = hook(policy, "attach")
        self._admit = hook(policy, "admit")
        self._on_dispatch = hook(policy, "on_dispatch")
        self._on_finish = hook(policy, "on_finish")
        # per-tenant counts are kept only for policies that read them
        self._tracks = self._attach is not None
        self._views: dict[int, RequestView] = {}  # in flight, for on_finish
        self._withdrawn: set[int] = set()  # queued, but their clients left (see withdraw)
        self.state: GatewayState | None = None
        hooked = self._tracks or self._admit or self._on_dispatch or self._on_finish
        # the built-ins' path: no hook to ask (next and finished take a short cut)
        self._plain = not hooked and self._observe is not None

    @classmethod
    def from_config(cls, config, truth, extensions: dict | None = None, categories=None) -> Gateway:
        """The gateway a :class:`~driftsched.sim.config.SimConfig` describes; ``truth`` (trace
        row -> true output tokens) is handed to the oracle corrector only. ``extensions``
        (``policy``/``corrector``: a class or instance) replaces the config's spec with that
        object (the Python API's way to run an object that is not importable by name).
        ``categories`` (each trace row's true category) is needed when the config's
        ``estimator_view`` is active: the corrector is then wrapped in an
        :class:`~driftsched.sim.estimatorview.EstimatorView`."""
        from driftsched.sim.correctors import make_corrector
        from driftsched.sim.policies import make_policy

        ext = extensions or {}
        corrector = make_corrector(
            ext.get("corrector", config.corrector),
            config.corrector_params,
            truth=lambda i: int(truth[i]),
        )
        view = config.estimator_view
        if view.active:
            from driftsched.sim.estimatorview import EstimatorView

            if categories is None:
                raise ValueError("an active estimator_view needs the trace's categories")
            corrector = EstimatorView(corrector, view, categories)
        policy = make_policy(ext.get("policy", config.policy), config.policy_params)
        return cls(policy, corrector, config.job_classes)

    def attach(self, slots) -> None:
        """Bind the replicas (the dispatcher's slots) and hand a policy that asks for it the
        read-only :class:`GatewayState`. Called once by the dispatcher."""
        self.state = GatewayState(self, slots)
        if self._attach is not None:
            self._attach(self.state)

    @property
    def reads_state(self) -> bool:
        """Whether the policy reads the :class:`GatewayState` (it has ``attach``)."""
        return self._tracks

    @property
    def wants_outcomes(self) -> bool:
        """Whether :meth:`finished` needs the request's :class:`Outcome` (the policy has
        ``on_finish``); drivers build one only then."""
        return self._on_finish is not None

    def admit(self, adm: Admission, now_s: float) -> tuple[RequestView, str | None]:
        """Estimate and classify ``adm``, ask the policy's admission decision, queue it.
        Returns the view and ``None``, or the view and the reason it was rejected (then it is
        not queued; the caller records the rejection)."""
        estimate = int(self.corrector.estimate(adm))
        if estimate < 1:
            name = getattr(self.corrector, "name", type(self.corrector).__name__)
            raise ValueError(f"corrector {name} estimated {estimate} < 1 tokens")
        est_class = self.job_classes.classify(adm.prompt_tokens, estimate)
        # the admission's fields, in order, then the gateway's
        dist = None if self._distribution is None else self._distribution(adm)
        view = from_fields(RequestView, adm + (estimate, est_class, self._seq, dist))
        self._seq += 1
        if self._admit is not None:
            reason = self._admit(view, now_s)
            if reason:
                self.rejected += 1
                return view, str(reason)
        self.policy.push(view)
        self.depth_by_tier[adm.tier] += 1
        if self._tracks:
            self.queued_by_tenant[adm.tenant] += 1
        return view, None

    def next(self, now_s: float) -> RequestView | None:
        """The policy's next request to dispatch; ``None`` when the queue is empty or the
        policy holds. Withdrawn requests are dropped as the policy reaches them."""
        withdrawn = self._withdrawn
        if self._plain and not withdrawn:  # no hook: only the queue counter to keep
            view = self.policy.pop(now_s)
            if view is not None:
                self.depth_by_tier[view.tier] -= 1
            return view
        pop = self.policy.pop
        view = pop(now_s)
        while view is not None and view.index in withdrawn:
            withdrawn.discard(view.index)
            view = pop(now_s)
        return None if view is None else self._take(view, now_s)

    def _take(self, view: RequestView, now_s: float) -> RequestView:
        """The accounting of a dispatch: queue counters, the policy's ``on_dispatch``."""
        self.depth_by_tier[view.tier] -= 1
        if self._tracks:
            self.queued_by_tenant[view.tenant] -= 1
            self.in_flight_by_tenant[view.tenant] += 1
        if self._on_dispatch is not None:
            self._on_dispatch(view, now_s)
        if self._on_finish is not None:
            self._views[view.index] = view
        return view

    def withdraw(self, view: RequestView) -> None:
        """A queued request leaves before dispatch (a live client went away). Its queue
        counters drop now; the policy drops it when it reaches it (a policy's queue has no
        removal), so it is never dispatched."""
        self._withdrawn.add(view.index)
        self.depth_by_tier[view.tier] -= 1
        if self._tracks:
            self.queued_by_tenant[view.tenant] -= 1

    def abandon(self, adm: Admission) -> None:
        """A dispatched request ended without a true output length (its client left, or its
        upstream failed): nothing for the corrector or ``on_finish`` to learn; the tenant's
        in-flight count drops."""
        if self._tracks:
            self.in_flight_by_tenant[adm.tenant] -= 1
        self._views.pop(adm.index, None)

    def finished(self, adm: Admission, actual_tokens: int, outcome: Outcome | None = None) -> None:
        """Feed a finished request's true output length back to the corrector and, when the
        policy has ``on_finish``, its ``outcome`` (required then) to the policy."""
        if self._plain:
            self._observe(adm, actual_tokens)
            return
        if self._observe is not None:
            self._observe(adm, actual_tokens)
        if self._tracks:
            self.in_flight_by_tenant[adm.tenant] -= 1
        if self._on_finish is not None:
            self._on_finish(self._views.pop(adm.index), outcome)

    def report_finish(self, adm: Admission, actual_tokens: int, book, now_s: float) -> None:
        """:meth:`finished`, with the :class:`Outcome` read from the run's
        :class:`~driftsched.sim.records.RecordBook` when the policy wants one (both drivers
        call this at a request's last token)."""
        if self._on_finish is None:
            self.finished(adm, actual_tokens)
        else:
            outcome = book.outcome(adm.index, now_s, adm.arrival_s, actual_tokens)
            self.finished(adm, actual_tokens, outcome)

    def __len__(self) -> int:
        return len(self.policy) - len(self._withdrawn)
