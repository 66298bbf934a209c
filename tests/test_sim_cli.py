"""The ``driftsched sim`` commands as a user runs them."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from driftsched.traces.generators import generate

from tests.conftest import run_cli


def test_sim_run_writes_everything_and_prints_a_summary(tmp_path):
    trace = generate("driftsched-paper", requests=300, seed=2).write(tmp_path / "t.parquet")
    out = tmp_path / "run"
    r = run_cli(
        "sim",
        "run",
        "--trace",
        trace,
        "--policy",
        "sjf",
        "--corrector",
        "ewma",
        "--mode",
        "microbatch",
        "-o",
        out,
    )
    assert r.returncode == 0, r.stderr
    assert "PRIOR" in r.stdout and "sjf / ewma / microbatch" in r.stdout
    for name in (
        "records.parquet",
        "summary.json",
        "summary.csv",
        "summary_by_tier.csv",
        "summary_by_tenant.csv",
        "timeseries.parquet",
        "latency_cdf.png",
        "queue_depth.png",
        "corrector_bias.png",
    ):
        assert (out / name).stat().st_size > 0, name
    payload = json.loads((out / "summary.json").read_text())
    assert payload["meta"]["profile"]["kind"] == "prior"
    assert payload["summary"]["requests"] == 300
    assert pd.read_parquet(out / "records.parquet")["finished"].all()


def test_sim_run_no_plots_writes_tables_only(tmp_path):
    trace = generate("driftsched-paper", requests=100, seed=1).write(tmp_path / "t.parquet")
    out = tmp_path / "run"
    r = run_cli("sim", "run", "--trace", trace, "--no-plots", "-o", out)
    assert r.returncode == 0, r.stderr
    assert (out / "records.parquet").exists() and (out / "summary.json").exists()
    assert not list(out.glob("*.png"))
    assert "timeseries)" in r.stdout and ", plots" not in r.stdout


def test_public_api_names_resolve_lazily():
    import importlib

    import driftsched as ds

    for name in ds.__all__:
        assert getattr(ds, name) is not None, name
    assert ds.simulate is importlib.import_module("driftsched.sim.simulation").simulate
    assert sorted(dir(ds)) == sorted(ds.__all__)
    with pytest.raises(AttributeError, match="no_such_name"):
        ds.no_such_name  # noqa: B018


def test_help_and_the_config_model_import_no_numpy_pandas_or_registry():
    """What `sim run --help` needs (the CLI and the config model with its defaults) loads no
    numpy, pandas, SimPy or extension registry: the start-up target (bench/startup.py). The
    registries load when a config is validated."""
    import subprocess
    import sys

    code = (
        "import sys, driftsched.cli, driftsched.sim.config as c; "
        "heavy = {'numpy', 'pandas', 'simpy', 'scipy', 'driftsched.sim.correctors', "
        "'driftsched.sim.policies', 'driftsched.sim.router'}; "
        "print(sorted(heavy & set(sys.modules))); "
        "c.SimConfig(policy='sjf', corrector='ewma'); "
        "print('driftsched.sim.correctors' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.split("\n")[:2] == ["[]", "True"], r.stdout + r.stderr


def test_a_command_line_builds_only_the_group_it_names():
    """`driftsched sim list` imports and builds the `sim` group alone and builds no extension's
    parameter model (start-up target, bench/startup.py); `driftsched --help` still lists every
    group and study, and `driftsched.cli.app` is the whole tree."""
    import subprocess
    import sys

    code = (
        "import contextlib, io, sys\n"
        "from driftsched.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['sim', 'list'])\n"
        "from driftsched.sim.correctors.ewma import EwmaParams\n"
        "from driftsched.sim.policies.edf import EdfParams\n"
        "print(sorted(m for m in sys.modules if m.startswith('driftsched.cli.')))\n"
        "print(EwmaParams.__pydantic_complete__, EdfParams.__pydantic_complete__)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.split("\n")[:2] == [
        "['driftsched.cli.common', 'driftsched.cli.sim']",
        "False False",
    ], r.stdout + r.stderr

    from driftsched.cli import GROUPS, app
    from driftsched.cli.studies import COMMANDS

    helped = run_cli("--help").stdout
    for name in [*GROUPS, *COMMANDS]:
        assert f" {name} " in helped, name
    names = [g.name for g in app.registered_groups] + [c.name for c in app.registered_commands]
    assert names == [*GROUPS, *COMMANDS]


def test_the_command_ends_without_shutdown_collections_and_runs_its_exit_handlers():
    """The console script and ``python -m driftsched.cli`` run :func:`driftsched.cli.run`:
    after the command the garbage collector's objects are frozen (the interpreter's shutdown
    collections would walk them all), and exit handlers still run with the command's code."""
    import subprocess
    import sys
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    scripts = tomllib.loads((root / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["driftsched"] == "driftsched.cli:run"
    assert "run()" in (root / "driftsched" / "cli" / "__main__.py").read_text()
    code = (
        "import atexit, gc, sys\n"
        "from driftsched.cli import run\n"
        "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0))\n"
        "sys.argv = ['driftsched', '--version']\n"
        "run()\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.splitlines()[-1] == "frozen True", r.stdout + r.stderr
    bad = subprocess.run([sys.executable, "-c", code.replace("--version", "--nope")],
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 2 and bad.stdout.splitlines()[-1] == "frozen True"


def test_sim_list_describes_every_extension_by_its_docstring():
    """Each description is the extension's own first paragraph, whole and as written: a
    compiled function's docstring is its source's, as in the pure build (the compiled build
    embedded Cython's signature line and listed ``least_outstanding(candidates: ...) ->
    ReplicaState``; its signature stays introspectable), brackets kept."""
    import inspect

    from driftsched.sim.correctors import CORRECTORS
    from driftsched.sim.router import ROUTERS, least_outstanding

    from driftsched.cli.sim import _describe

    assert least_outstanding.__doc__.startswith("Fewest requests in flight")
    assert list(inspect.signature(least_outstanding).parameters) == ["candidates", "replicas"]
    assert _describe(ROUTERS, "least_outstanding", "built-in") == (
        "Fewest requests in flight; ties to the lowest replica id."
    )
    assert _describe(CORRECTORS, "none", "built-in").startswith("``base[category] * safety[tier]")
    listed = run_cli("sim", "list").stdout
    assert "least_outstanding(" not in listed
    assert "``base[category]" in listed and "safety[tier]" in listed  # (may wrap between)


def test_sim_compare_table(tmp_path):
    trace = generate("driftsched-paper", requests=200, seed=2).write(tmp_path / "t.csv")
    out = tmp_path / "cmp"
    r = run_cli(
        "sim",
        "compare",
        "--trace",
        trace,
        "--policies",
        "fifo,sjf",
        "--correctors",
        "none,oracle",
        "-o",
        out,
    )
    assert r.returncode == 0, r.stderr
    table = pd.read_csv(out / "compare.csv")
    assert list(zip(table["policy"], table["corrector"], strict=True)) == [
        ("fifo", "none"),
        ("fifo", "oracle"),
        ("sjf", "none"),
        ("sjf", "oracle"),
    ]
    assert "upper bound" in r.stdout
    md = (out / "compare.md").read_text()
    assert md.startswith("cost model: ") and "\n| policy | corrector |" in md
    assert (out / "compare_cdf.png").exists() and (out / "runs/sjf-oracle/records.parquet").exists()


def test_sim_errors_are_one_line(tmp_path):
    r = run_cli("sim", "run", "--policy", "lifo", "-o", tmp_path / "x")
    assert r.returncode == 2 and r.stderr.startswith("error: unknown policy 'lifo'")
    assert "Traceback" not in r.stderr and not (tmp_path / "x").exists()
    r = run_cli("sim", "run", "--profile", "nope.json", "-o", tmp_path / "x")
    assert r.returncode == 2 and "nope.json: no such profile file" in r.stderr
    r = run_cli("sim", "compare", "--policies", "fifo,zzz", "-o", tmp_path / "y")
    assert r.returncode == 2 and "unknown policy 'zzz'" in r.stderr
