"""pytest plugin (entry point ``pytest11``): the fixtures ``check_policy`` and
``check_corrector``.

    def test_my_policy(check_policy):
        check_policy("my_package.policies:MyPolicy")   # fails the test with the report

Cheap to load: nothing is imported until the fixture is used.
"""

from __future__ import annotations

import pytest


def _failing_on(kit_name: str):
    """A check that runs the kit's ``kit_name`` and fails the test with its report."""
    import driftsched.testing as kit

    run = getattr(kit, kit_name)

    def check(spec, params=None, examples: int = 40):
        report = run(spec, params, examples=examples)
        if not report.ok:
            pytest.fail(str(report), pytrace=False)
        return report

    return check


@pytest.fixture
def check_policy():
    """``check_policy(spec, params=None, examples=40)``: run driftsched's conformance kit on
    ``spec`` and fail the test with the report (and each failure's shrunk example)."""
    return _failing_on("check_policy")


@pytest.fixture
def check_corrector():
    """``check_corrector(spec, params=None, examples=40)``: run driftsched's corrector
    properties on ``spec`` and fail the test with the report."""
    return _failing_on("check_corrector")
