"""The plugin's tests: driftsched's conformance kit (the ``check_policy`` fixture, from the
pytest plugin driftsched installs) and a run through the public API by entry-point name."""

from driftsched.traces.generators import generate

from driftsched import simulate


def test_ltwf_passes_the_conformance_kit(check_policy):
    report = check_policy("ltwf", examples=25)  # by its entry-point name
    assert any(r.name == "serves_the_longest_waiting_tenant" for r in report.results)


def test_ltwf_runs_by_name_and_finishes_everything():
    trace = generate("driftsched-paper", requests=300, seed=0)
    result = simulate(trace, policy="ltwf", corrector="ewma")
    assert result.records["finished"].all()
    assert result.meta["policy"] == "ltwf"
