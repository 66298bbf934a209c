"""The conformance kit: what every policy must keep, checkable on any policy in anyone's CI.

:func:`check_policy` (:mod:`~driftsched.sim.checks.conformance`), the invariants
(:mod:`~driftsched.sim.checks.invariants`), the :class:`~driftsched.sim.checks.spy.Spy` that
logs a policy's calls, and the Hypothesis strategies (:mod:`~driftsched.sim.checks.strategies`).
Users reach it as :mod:`driftsched.testing`, and as the pytest fixture ``check_policy``.
Needs Hypothesis (the ``test`` extra); nothing here is imported by the simulator itself.
"""
