"""``check_policy(spec)``: the conformance suite and the invariants, run on any policy — a
built-in, an installed plugin, a ``module:Class`` / ``file.py:Class`` spec, a class.

Two layers, both Hypothesis searches (seeded: the same policy gives the same report):

1. **the queue contract**, on the policy alone (no simulation): random interleavings of
   ``push`` and ``pop`` — nothing lost or duplicated, ``len`` consistent, ``pop`` on an empty
   queue returns ``None``, and the same calls give the same answers;
2. **the invariants** (:data:`~driftsched.sim.checks.invariants.INVARIANTS`) and the policy's
   own declared ``properties``, on simulated runs of random multi-tenant traces under random
   configs (both dispatch modes, 1-3 replicas behind every router, tiny KV pools that preempt,
   every corrector), the policy watched by a :class:`~driftsched.sim.checks.spy.Spy`.

A failing property is reported with Hypothesis's *shrunk* example (the smallest trace and config
it found that break it); the search then goes on for the other properties.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from driftsched.sim.checks.invariants import INVARIANTS, Case
from driftsched.sim.checks.spy import Spy
from driftsched.sim.checks.strategies import Scenario, scenarios
from driftsched.sim.policies import make_policy
from driftsched.sim.request import RequestView


@dataclass
class PropertyResult:
    name: str
    doc: str
    passed: bool
    message: str = ""
    example: object = None  # the shrunk Scenario (or interleaving) that breaks it


@dataclass
class CheckReport:
    """What :func:`check_policy` found: one :class:`PropertyResult` per property, in order."""

    spec: str
    results: list[PropertyResult] = field(default_factory=list)
    examples: int = 0
    kind: str = "policy"

    @property
    def ok(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failed(self) -> list[PropertyResult]:
        return [r for r in self.results if not r.passed]

    def lines(self) -> list[str]:
        """The report as text: a line per property, then each failure's shrunk example."""
        out = [f"{self.kind} {self.spec}: {self.examples} examples per property"]
        for r in self.results:
            out.append(f"  {'pass' if r.passed else 'FAIL'}  {r.name}: {r.doc}")
        for r in self.failed:
            out.append(f"{r.name} failed: {r.message}")
            out += ["  " + line for line in describe(r.example)]
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


class PropertyFailed(AssertionError):
    def __init__(self, name: str, message: str):
        super().__init__(f"{name}: {message}")
        self.name, self.message = name, message


def check_policy(spec, params: dict | None = None, *, examples: int = 40) -> CheckReport:
    """Run the suite on ``spec`` (a spec string, a class, or a zero-argument factory returning
    a fresh policy) with ``params``; ``examples`` per search. Needs Hypothesis."""
    make = _factory(spec, params)
    policy = make()  # a spec that cannot be built fails here, as one error
    label = spec if isinstance(spec, str) else getattr(spec, "__qualname__", repr(spec))
    report = CheckReport(str(label), examples=examples)
    report.results.append(_queue_contract(make, examples))
    checks = {name: (fn, _doc(fn)) for name, fn in INVARIANTS.items()}
    for prop in getattr(policy, "properties", ()):
        checks[prop.__name__] = (_declared(prop), _doc(prop))
    report.results += _search(make, checks, examples)
    return report


# -- the queue contract (the policy alone) ---------------------------------------------------
def _queue_contract(make, examples: int) -> PropertyResult:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    name = "queue_contract"
    doc = (
        "push/pop/len: nothing lost or duplicated, len consistent, pop on empty is None, "
        "the same calls give the same answers"
    )
    views = st.lists(
        st.tuples(
            st.sampled_from(["premium", "standard", "batch"]),
            st.integers(0, 3),
            st.integers(1, 400),
            st.integers(1, 400),
            st.sampled_from([0.0, 0.01, 1.0]),
        ),
        max_size=40,
    )
    failure: dict = {}

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False)  # fmt: skip
    @given(raw=views, pops=st.lists(st.booleans(), max_size=60))
    def probe(raw, pops):
        failure["example"] = (raw, pops)
        first = _interleave(make(), raw, pops)
        if first != _interleave(make(), raw, pops):
            raise PropertyFailed(name, "the same calls gave different answers")

    try:
        probe()
    except PropertyFailed as exc:
        return PropertyResult(name, doc, False, exc.message, failure.get("example"))
    except AssertionError as exc:
        return PropertyResult(name, doc, False, str(exc), failure.get("example"))
    return PropertyResult(name, doc, True)


def _interleave(policy, raw, pops) -> list[int]:
    """Push ``raw`` requests and pop as ``pops`` says, then drain; the seqs handed out."""
    views, t = [], 0.0
    for seq, (tier, tenant, prompt, est, gap) in enumerate(raw):
        t += gap
        rank = {"premium": 1, "standard": 2, "batch": 3}[tier]
        nan = float("nan")
        views.append(RequestView(seq, f"r{seq}", t, f"u{tenant}", tier, rank, "summary",
                                 prompt, 512, nan, nan, est, "medium", seq))  # fmt: skip
    out, queued, now, it = [], 0, 0.0, iter(views)
    for push in pops:
        if push and (v := next(it, None)) is not None:
            policy.push(v)
            queued, now = queued + 1, v.arrival_s
        elif (got := policy.pop(now)) is not None:
            out.append(got.seq)
            queued -= 1
        elif queued:
            out.append(-1)  # held: allowed, and must be reproducible
        if len(policy) != queued:
            raise PropertyFailed("queue_contract", f"len() is {len(policy)} with {queued} queued")
    for v in it:
        policy.push(v)
        queued += 1
    for _ in range(queued * 2 + 1):
        got = policy.pop(now + 1e6)
        if got is None:
            break
        out.append(got.seq)
    handed = sorted(s for s in out if s >= 0)
    if handed != list(range(len(views))):
        raise PropertyFailed("queue_contract", f"handed out {handed} of {len(views)} queued")
    if policy.pop(now + 1e6) is not None or len(policy):
        raise PropertyFailed("queue_contract", "pop on an empty queue did not return None")
    return out


# -- the invariants (simulated runs) ---------------------------------------------------------
def _search(make, checks: dict, examples: int) -> list[PropertyResult]:
    results: dict[str, PropertyResult] = {}
    remaining = list(checks)
    while remaining:
        failed = _first_failure(make, checks, tuple(remaining), examples)
        if failed is None:
            results.update({n: PropertyResult(n, checks[n][1], True) for n in remaining})
            break
        name, message, example = failed
        results[name] = PropertyResult(name, checks[name][1], False, message, example)
        remaining.remove(name)
    return [results[name] for name in checks]


def _first_failure(make, checks: dict, names: tuple, examples: int):
    """One search over ``names``: ``None``, or ``(name, message, shrunk example)`` of the
    property the minimal failing example breaks."""
    from hypothesis import HealthCheck, given, settings

    failure: dict = {}

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False)  # fmt: skip
    @given(case=scenarios(tenants=3, clusters=True, max_requests=30))
    def probe(case):
        failure["example"] = case
        run = _run(case, make)
        for name in names:
            message = checks[name][0](run)
            if message:
                raise PropertyFailed(name, message)

    try:
        probe()
    except PropertyFailed as exc:
        return exc.name, exc.message, failure.get("example")
    return None


def _run(case: Scenario, make) -> Case:
    spy, again = Spy(make()), Spy(make())
    result = case.run(policy=spy)
    second = case.run(policy=again)
    return Case(case, result, spy.events, spy.policy, second, again.events)


def _declared(prop):
    def check(case: Case) -> str | None:
        return prop(case.events, case.policy)

    return check


def _factory(spec, params):
    if callable(spec) and not isinstance(spec, type) and not isinstance(spec, str):
        return spec  # a factory
    return lambda: make_policy(spec, params)


def _doc(fn) -> str:
    return " ".join((fn.__doc__ or fn.__name__).split())


def describe(example) -> list[str]:
    """A shrunk example as lines: a scenario's config, engine and trace rows."""
    if isinstance(example, Scenario):
        lines = [
            f"config: { {k: v for k, v in example.config.items() if k != 'policy'} }",
            f"engine: {example.engine}",
            f"step_s: {example.step_s}, per_token_s: {example.per_token_s}",
            "trace (arrival_s, tier, category, prompt_tokens, output_tokens, tenant):",
        ]
        lines += [f"  {row}" for row in example.rows]
        if example.e2e_slos is not None:
            lines.append(f"e2e_slo_s: {list(example.e2e_slos)}")
        return lines
    if example is None:
        return []
    return [f"calls: {example}"]
