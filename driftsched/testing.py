"""The conformance kit for your own policies (``pip install 'driftsched[test]'``):

    from driftsched.testing import check_policy
    report = check_policy("my_package.policies:LongestWaitingTenantFirst")
    assert report.ok, report

``check_policy`` runs the queue contract, the invariants every policy keeps (conservation,
causality, time never goes back, no true lengths, KV within capacity, rejections with reasons,
determinism) and the policy's own declared ``properties`` over random traces and configs; a
failure comes with the shrunk example. Under pytest the fixture ``check_policy`` does the same
and fails the test with the report. See docs/policies.md.

``check_corrector`` does the same for a length estimator: integer estimates >= 1, blind to true
lengths until ``observe``, a function of what it observed, deterministic, and a coherent
distribution where it offers one (fixture ``check_corrector``; docs/correctors.md).
"""

from driftsched.sim.checks.conformance import CheckReport, PropertyResult, check_policy
from driftsched.sim.checks.correctors import CorrectorSpy, check_corrector
from driftsched.sim.checks.invariants import INVARIANTS, Case
from driftsched.sim.checks.spy import Event, Spy
from driftsched.sim.checks.strategies import Scenario, profile, scenarios, trace

__all__ = [
    "INVARIANTS",
    "Case",
    "CheckReport",
    "CorrectorSpy",
    "Event",
    "PropertyResult",
    "Scenario",
    "Spy",
    "check_corrector",
    "check_policy",
    "profile",
    "scenarios",
    "trace",
]
