"""Small factories for simulator tests: they live in the installed kit
(:mod:`driftsched.sim.checks.strategies`), which the project's tests and a plugin's share."""

import importlib.util

import pytest
from driftsched.sim.checks.strategies import Scenario, profile, scenarios, trace

__all__ = ["LIVE_VLLM", "Scenario", "profile", "scenarios", "trace"]


#: the marks of a test module that runs a real vLLM engine: ``pytestmark = LIVE_VLLM``
LIVE_VLLM = [
    pytest.mark.live,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None,
        reason="vLLM is not importable (pip install -e '.[live-cpu]')",
    ),
]
