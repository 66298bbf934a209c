"""One door for extensions: a policy, corrector or router named by an entry point, by
``package.module:Class``, by ``path/to/file.py:Class``, or handed over as a Python object —
in Python, on the CLI, in sweeps (workers import the spec) and in validation grids."""

from __future__ import annotations

import json
from importlib.metadata import EntryPoint

import pandas as pd
import pytest
from driftsched.sim.correctors import CORRECTORS, make_corrector
from driftsched.sim.policies import POLICIES, make_policy
from driftsched.sim.router import ROUTERS, make_router
from driftsched.sim.simulation import simulate
from driftsched.sim.studies.sweep import SweepSpec, run_sweep
from driftsched.traces.generators import generate

from driftsched.ground.errors import InputError, UnknownNameError
from tests.conftest import REPO, run_cli

EXAMPLE = REPO / "examples" / "driftsched-ltwf" / "driftsched_ltwf" / "policy.py"
LTWF = f"{EXAMPLE}:LongestWaitingTenantFirst"


@pytest.fixture(scope="module")
def study():
    return generate("driftsched-paper", requests=300, seed=0)


class HalfCorrector:
    """A corrector defined in a test module: half the prompt length, at least one token."""

    name = "half"

    def estimate(self, adm) -> int:
        return max(1, adm.prompt_tokens // 2)


def last_replica(candidates, replicas):
    """A router function: the highest-numbered replica with room."""
    return max(candidates, key=lambda r: r.replica_id)


# -- the spec forms ----------------------------------------------------------------------------
def test_a_file_spec_runs_and_is_stored_with_an_absolute_path(study, monkeypatch):
    monkeypatch.chdir(EXAMPLE.parent)
    result = simulate(study, policy="policy.py:LongestWaitingTenantFirst")
    assert result.meta["policy"] == LTWF  # canonical: any worker can import it again
    assert result.records["finished"].all()


def test_a_module_spec_a_class_and_an_instance_run_alike(study):
    by_module = simulate(study, policy="driftsched.sim.policies.sjf:SjfPolicy")
    by_name = simulate(study, policy="sjf")
    by_class = simulate(study, policy=POLICIES["sjf"])
    by_instance = simulate(study, policy=make_policy("sjf"))
    for other in (by_module, by_class, by_instance):
        assert other.records.equals(by_name.records)
    assert by_class.meta["policy"] == "driftsched.sim.policies.sjf:SjfPolicy"


def test_correctors_and_routers_come_in_by_the_same_door(study):
    spec = "tests.test_plugins:HalfCorrector"
    by_spec = simulate(study, corrector=spec)
    assert (
        by_spec.records["estimate_tokens"] == (by_spec.records["prompt_tokens"] // 2).clip(1)
    ).all()
    assert by_spec.records.equals(simulate(study, corrector=HalfCorrector).records)
    routed = simulate(
        study, replicas=3, router="tests.test_plugins:last_replica", max_concurrency=4
    )
    assert routed.records["replica"].max() == 2
    assert make_router("tests.test_plugins:last_replica") is last_replica
    assert isinstance(make_corrector(spec), HalfCorrector)


def test_an_entry_point_is_found_by_name_and_listed_with_its_origin(monkeypatch, study):
    ep = EntryPoint("ltwf_test", "driftsched_ltwf_test_module:Policy", "driftsched.policies")
    import sys
    import types

    module = types.ModuleType("driftsched_ltwf_test_module")
    module.Policy = POLICIES["fifo"]
    monkeypatch.setitem(sys.modules, "driftsched_ltwf_test_module", module)
    monkeypatch.setattr(POLICIES, "_entry_points", {"ltwf_test": ep, "fifo": ep})
    assert "ltwf_test" in POLICIES.names()
    listing = POLICIES.listing()
    assert dict(listing)["ltwf_test"].startswith("plugin ")
    assert ("fifo", "built-in") in listing  # a plugin cannot shadow a built-in ...
    assert ("fifo", "plugin ignored: a built-in has this name") in listing  # ... and is told so
    assert simulate(study, policy="ltwf_test").records.equals(simulate(study).records)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("lifo", "unknown policy 'lifo'.*or a plugin"),
        ("no/such/file.py:X", "policy 'no/such/file.py:X': no such file"),
        (f"{EXAMPLE}:Nope", "has no attribute 'Nope'"),
        ("driftsched_no_such_pkg:X", "cannot import 'driftsched_no_such_pkg'"),
        ("json:dumps", "is not a policy: it lacks push, pop, __len__"),
        (":X", "expected a registered name"),
    ],
)
def test_a_spec_that_cannot_be_used_is_one_error_naming_it(spec, message):
    with pytest.raises((InputError, UnknownNameError), match=message):
        POLICIES.check(spec)


def test_a_plugin_that_fails_on_import_is_one_error(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(InputError, match=r"running .*bad.py' failed: RuntimeError: boom"):
        POLICIES.check(f"{bad}:X")
    assert CORRECTORS.check("ewma") == "ewma" and ROUTERS.check("least_kv") == "least_kv"


def test_params_of_a_plugin_are_validated_by_its_model(study):
    with pytest.raises(InputError, match="max_tenants_scanned"):
        simulate(study, policy=LTWF, policy_params={"max_tenants_scanned": 0})
    with pytest.raises(ValueError, match="instance"):
        make_policy(make_policy("aging"), {"rate_per_s": 1.0})


# -- every command ------------------------------------------------------------------------------
def test_the_cli_runs_compares_and_lists_a_file_plugin(tmp_path):
    out = tmp_path / "run"
    done = run_cli("sim", "run", "--policy", LTWF, "--no-plots", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "summary.json").read_text())["meta"]["policy"] == LTWF
    done = run_cli("sim", "compare", "--policies", f"fifo,{LTWF}", "--correctors", "none",
                   "-o", str(tmp_path / "cmp"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    # each run's folder is inside the output, whatever the spec (it used to be the spec's
    # absolute path, so compare wrote next to the plugin's file)
    runs = sorted(p.name for p in (tmp_path / "cmp" / "runs").iterdir())
    assert len(runs) == 2 and runs[0].startswith("LongestWaitingTenantFirst.")
    assert not list(EXAMPLE.parent.glob("*LongestWaitingTenantFirst*"))
    bad = run_cli("sim", "run", "--policy", "nope.py:X", "-o", str(tmp_path / "x"))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "nope.py" in bad.stderr
    listed = run_cli("sim", "list")
    assert "from" in listed.stdout and "built-in" in listed.stdout


def test_a_sweep_on_the_local_pool_imports_the_spec_in_its_workers(tmp_path):
    spec = SweepSpec.model_validate(
        {
            "workload": {"generator": "poisson", "requests": 150},
            "rates_per_s": [3.0],
            "policies": ["fifo", LTWF],
            "seeds": [0],
        }
    )
    runs = run_sweep(spec, tmp_path / "sw", workers=2).runs
    assert set(runs["policy"]) == {"fifo", LTWF} and (runs["finished"] == 150).all()
    assert len(list((tmp_path / "sw" / "runs").glob("*.json"))) == 2  # file-safe names


def test_validation_grids_take_plugin_specs():
    from driftsched.validate.scenario import Grid

    grid = Grid(policies=[LTWF], correctors=["tests.test_plugins:HalfCorrector"])
    (scenario,) = grid.sample()[:1]
    assert scenario.policy == LTWF and "/" not in scenario.key and ":" not in scenario.key


def test_a_sweep_on_ray_imports_the_spec_in_its_workers(tmp_path):
    pytest.importorskip("ray", reason="Ray not installed")
    spec = SweepSpec.model_validate(
        {
            "workload": {"generator": "poisson", "requests": 150},
            "rates_per_s": [3.0],
            "policies": ["fifo", LTWF],
            "correctors": ["tests.test_plugins:HalfCorrector"],
            "seeds": [0],
        }
    )
    local = run_sweep(spec, tmp_path / "local", workers=2).runs
    on_ray = run_sweep(spec, tmp_path / "ray", ray_address="local").runs
    assert set(on_ray["policy"]) == {"fifo", LTWF} and (on_ray["finished"] == 150).all()
    pd.testing.assert_frame_equal(local, on_ray)


def test_capacity_searches_a_plugin_policy(tmp_path):
    out = tmp_path / "cap"
    done = run_cli(
        "capacity", "--slo", "p99_e2e<=25s", "--policies", f"fifo,{LTWF}", "--seeds", "0",
        "--generator", "poisson", "--requests", "150", "--target-rate", "4", "-o", out,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(out / "capacity.csv")
    assert set(table["policy"]) == {"fifo", LTWF}
    bad = run_cli("capacity", "--slo", "p99_e2e<=25s", "--policies", "fifo,nope.py:X",
                  "-o", tmp_path / "bad")  # fmt: skip
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1 and "nope.py" in bad.stderr


def test_live_validation_drives_a_plugin_policy_and_corrector(tmp_path):
    """The live gateway (on the fake engine of tests/test_validate.py) runs the plugin's very
    objects: every request finishes and the simulator's twin agrees with it."""
    from tests.test_validate import run_fake

    report, engine = run_fake(
        tmp_path, policies=[LTWF], correctors=["tests.test_plugins:HalfCorrector"], scenarios=1
    )
    assert report["status"] == "complete" and engine.shut
    (row,) = report["scenarios"]
    assert row["policy"] == LTWF and row["live_finished"] == row["requests"] == 120
    assert row["replay_identical_share"] == 1.0
