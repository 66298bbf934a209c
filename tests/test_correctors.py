"""Drift correctors: the study's static formula, the EWMA update, the oracle."""

from __future__ import annotations

import pytest
from driftsched.sim.correctors import CORRECTORS, make_corrector
from driftsched.sim.request import Admission

from driftsched.ground.errors import InputError, UnknownNameError

NAN = float("nan")


def adm(category="summary", tier="standard", prompt=200, index=0):
    rank = {"premium": 1, "standard": 2, "batch": 3}.get(tier, 9)
    return Admission(index, "r", 0.0, "t", tier, rank, category, prompt, 512, NAN, NAN)


@pytest.mark.parametrize(
    ("category", "tier", "prompt", "expected"),
    [
        ("short_qa", "premium", 0, int(64 * 1.2 * 1.0)),
        ("summary", "standard", 200, int(256 * 1.0 * 1.2)),
        ("technical", "batch", 2000, int(384 * 0.8 * 1.5)),  # input factor capped at 1.5
        ("report", "premium", 500, int(512 * 1.2 * 1.5)),
        ("poetry", "standard", 0, 64),  # unknown category -> 64
        ("report", "7", 0, 512),  # integer tier: safety 1.0
    ],
)
def test_static_estimate_is_the_study_formula(category, tier, prompt, expected):
    assert make_corrector("none").estimate(adm(category, tier, prompt)) == expected


def test_ewma_learns_a_per_category_bias():
    c = make_corrector("ewma")
    r = adm("summary", "standard", 0)
    assert c.estimate(r) == 256
    c.observe(r, 128)  # measured 0.5 -> bias 0.9 * 1 + 0.1 * 0.5
    assert c.state() == {"bias.summary": pytest.approx(0.95)}
    assert c.estimate(r) == int(256 * 0.95)
    c.observe(r, 10_000)  # clipped at 3.0
    assert c.state()["bias.summary"] == pytest.approx(0.9 * 0.95 + 0.3)
    c.observe(r, 1)  # clipped at 0.25
    assert c.state()["bias.summary"] == pytest.approx(0.9 * (0.9 * 0.95 + 0.3) + 0.025)
    assert c.estimate(adm("report", "standard", 0)) == 512  # other categories untouched
    for _ in range(200):  # converges to the true ratio
        c.observe(r, 192)
    assert c.state()["bias.summary"] == pytest.approx(0.75, abs=1e-6)


def test_ewma_parameters_are_configurable_and_validated():
    c = make_corrector("ewma", {"alpha": 0.5, "base_tokens": {"summary": 100}})
    c.observe(adm("summary"), 300)
    assert c.state()["bias.summary"] == pytest.approx(2.0)
    with pytest.raises(InputError, match="field 'alpha'"):
        make_corrector("ewma", {"alpha": 0})
    with pytest.raises(InputError, match="clip_high must be >= clip_low"):
        make_corrector("ewma", {"clip_low": 2, "clip_high": 1})


def test_oracle_reads_only_through_its_truth_function():
    truth = {0: 17, 1: 300}
    c = make_corrector("oracle", truth=truth.__getitem__)
    assert c.is_oracle and c.estimate(adm(index=1)) == 300
    with pytest.raises(ValueError, match="truth"):
        make_corrector("oracle")
    assert not any(CORRECTORS[n].is_oracle for n in ("none", "ewma"))


def test_unknown_corrector():
    with pytest.raises(UnknownNameError, match="expected one of: ewma, ewma_tenant, .*, oracle,"):
        make_corrector("psychic")
