"""Small factories for simulator tests: they live in the installed kit
(:mod:`driftsched.sim.checks.strategies`), which the project's tests and a plugin's share."""

from driftsched.sim.checks.strategies import Scenario, profile, scenarios, trace

__all__ = ["Scenario", "profile", "scenarios", "trace"]
