"""The host probe: a timing of fixed work, so only its contract is tested, not its value."""

from __future__ import annotations

from driftsched.calibrate.hostspeed import probe_ms, slowdown


def test_probe_times_the_fixed_work_in_milliseconds():
    ms = probe_ms(samples=3)
    assert isinstance(ms, float) and 0 < ms < 10_000


def test_slowdown_is_now_over_then_and_none_without_both():
    assert slowdown(6.0, 4.0) == 1.5
    assert slowdown(3.0, 4.0) == 0.75
    assert slowdown(None, 4.0) is None and slowdown(5.0, None) is None
