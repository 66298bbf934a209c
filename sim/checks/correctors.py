"""``check_corrector(spec)``: the properties every length estimator keeps, searched by
Hypothesis over random simulated runs (the same traces and configs as the policy kit), the
corrector watched by a :class:`CorrectorSpy`:

- ``positive_int_estimates``: every estimate is an integer >= 1;
- ``blind_until_observed`` — no true length before ``observe``: the same run with every true
  output length changed gives the same estimates up to the first finish (before any
  ``observe`` an estimate can only rest on the admission);
- ``function_of_what_it_observed``: a fresh instance fed the logged calls (every ``estimate``
  and ``observe``, in order) gives the same estimates — nothing else (wall clock, global state,
  the trace) enters;
- ``deterministic``: the same run twice, identical estimates;
- ``coherent_distribution`` (correctors offering ``distribution``): quantiles increase with
  ``q``, the mean and CVaR are positive and ``cvar(a) >= quantile(a)``.

The oracle corrector reads the truth by design and is refused.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from driftsched.sim.checks.conformance import CheckReport, PropertyFailed, PropertyResult
from driftsched.sim.checks.strategies import Scenario, scenarios
from driftsched.sim.correctors import is_oracle, make_corrector
from driftsched.sim.request import Admission


class Call(NamedTuple):
    kind: str  # estimate | observe
    adm: Admission
    value: int  # the estimate, or the observed true length


class CorrectorSpy:
    """Forwards to ``corrector`` and logs every call; offers ``distribution`` and ``state``
    only when the corrector has them."""

    def __init__(self, corrector):
        self.corrector, self.calls = corrector, []
        self.name = getattr(corrector, "name", type(corrector).__name__)
        if callable(getattr(corrector, "distribution", None)):
            self.distribution = corrector.distribution
        if callable(getattr(corrector, "state", None)):
            self.state = corrector.state

    def estimate(self, adm: Admission) -> int:
        value = self.corrector.estimate(adm)
        self.calls.append(Call("estimate", adm, value))
        return value

    def observe(self, adm: Admission, actual_tokens: int) -> None:
        self.calls.append(Call("observe", adm, actual_tokens))
        observe = getattr(self.corrector, "observe", None)
        if observe is not None:
            observe(adm, actual_tokens)


def _estimates(calls) -> list[tuple[int, int]]:
    return [(c.adm.index, c.value) for c in calls if c.kind == "estimate"]


def _before_first_observe(calls) -> list[tuple[int, int]]:
    out = []
    for c in calls:
        if c.kind == "observe":
            break
        out.append((c.adm.index, c.value))
    return out


def _stretched(case: Scenario) -> Scenario:
    """``case`` with every true output length changed (doubled, or halved where doubling
    would not fit the context), nothing else."""
    limit = case.engine["max_model_len"]
    rows = []
    for r in case.rows:
        out = r[4] * 2 if r[3] + r[4] * 2 <= limit else max(1, r[4] // 2)
        rows.append((*r[:4], out, *r[5:]))
    return case._replace(rows=rows)


def _run(case: Scenario, corrector) -> None:
    """Simulate ``case`` with ``corrector``; every request's ``max_tokens`` is the room its
    context leaves (the kit's traces otherwise cap at the true length, which would hand a
    cap-reading corrector the answer)."""
    room = [case.engine["max_model_len"] - r[3] for r in case.rows]
    case.run(columns={"max_tokens": room}, corrector=corrector)


def _findings(make, case: Scenario) -> dict[str, str]:
    """Every property this run breaks: name -> message."""
    found: dict[str, str] = {}
    spy, again = CorrectorSpy(make()), CorrectorSpy(make())
    _run(case, spy)
    for c in spy.calls:
        if c.kind == "estimate" and (not isinstance(c.value, int) or c.value < 1):
            found["positive_int_estimates"] = f"estimate {c.value!r} for {c.adm.request_id}"
            break
    _run(case, again)
    if _estimates(spy.calls) != _estimates(again.calls):
        found["deterministic"] = "the same run gave different estimates"
    blind = CorrectorSpy(make())
    _run(_stretched(case), blind)
    a, b = _before_first_observe(spy.calls), _before_first_observe(blind.calls)
    n = min(len(a), len(b))
    if a[:n] != b[:n]:
        found["blind_until_observed"] = (
            "estimates before the first finish changed with the true lengths"
        )
    fresh = make()
    observe = getattr(fresh, "observe", None)
    for c in spy.calls:
        if c.kind == "observe":
            if observe is not None:
                observe(c.adm, c.value)
        elif fresh.estimate(c.adm) != c.value:
            found["function_of_what_it_observed"] = (
                f"replayed, request {c.adm.request_id} got a different estimate"
            )
            break
    if callable(getattr(fresh, "distribution", None)):
        for c in spy.calls[-5:]:
            why = _coherent(fresh.distribution(c.adm), c.adm)
            if why:
                found["coherent_distribution"] = why
                break
    return found


def _coherent(dist, adm: Admission) -> str | None:
    if dist is None:
        return None
    qs = [dist.quantile(q) for q in (0.1, 0.5, 0.9, 0.99)]
    if any(not math.isfinite(q) or q <= 0 for q in qs) or any(
        b < a - 1e-9 * abs(a) for a, b in zip(qs, qs[1:], strict=False)
    ):
        return f"quantiles {qs} for {adm.request_id} are not increasing"
    if not dist.mean > 0 or dist.cvar(0.9) < qs[2] * (1 - 1e-9):
        return f"mean {dist.mean} or cvar(0.9) {dist.cvar(0.9)} incoherent"
    return None


PROPERTIES = {
    "positive_int_estimates": "every estimate is an integer >= 1",
    "deterministic": "the same run twice gives identical estimates",
    "blind_until_observed": "no true length before observe: changing every true length "
    "leaves the estimates before the first finish unchanged",
    "function_of_what_it_observed": "a fresh instance fed the logged calls gives the same "
    "estimates",
    "coherent_distribution": "a distribution's quantiles increase, mean > 0, cvar >= quantile",
}


def check_corrector(
    spec, params: dict | None = None, *, examples: int = 40, shrink: bool = True
) -> CheckReport:
    """Run the corrector properties on ``spec`` (a spec, a class, or a zero-argument factory)
    over ``examples`` random runs; a failure is reported with its shrunk example (``shrink``
    False: the first failing one, much faster). Needs Hypothesis."""
    if callable(spec) and not isinstance(spec, (type, str)):
        make = spec
    else:
        if is_oracle(spec):
            raise ValueError("the oracle corrector reads the true lengths by design")

        def make():
            return make_corrector(spec, params)

    make()  # a spec that cannot be built fails here, as one error
    label = spec if isinstance(spec, str) else getattr(spec, "__qualname__", repr(spec))
    report = CheckReport(str(label), examples=examples, kind="corrector")
    results: dict[str, PropertyResult] = {}
    remaining = list(PROPERTIES)
    while remaining:  # one search per failure, as the policy kit does
        failed = _first_failure(make, tuple(remaining), examples, shrink)
        if failed is None:
            results.update({n: PropertyResult(n, PROPERTIES[n], True) for n in remaining})
            break
        name, message, example = failed
        # every property the shrunk example breaks fails with it (no search again for those)
        found = {**_findings(make, example), name: message}
        for broken in [n for n in remaining if n in found]:
            results[broken] = PropertyResult(
                broken, PROPERTIES[broken], False, found[broken], example
            )
            remaining.remove(broken)
    report.results = [results[n] for n in PROPERTIES]
    return report


def _first_failure(make, names: tuple, examples: int, shrink: bool = True):
    from hypothesis import HealthCheck, Phase, given, settings

    failure: dict = {}
    phases = list(Phase) if shrink else [p for p in Phase if p is not Phase.shrink]

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False,
              phases=phases)  # fmt: skip
    @given(case=scenarios(tenants=3, max_requests=40, correctors=("none",)))
    def probe(case):
        failure["example"] = case
        found = _findings(make, case)
        for name in names:
            if name in found:
                raise PropertyFailed(name, found[name])

    try:
        probe()
    except PropertyFailed as exc:
        return exc.name, exc.message, failure.get("example")
    return None
