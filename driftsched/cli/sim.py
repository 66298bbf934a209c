"""``driftsched sim``: one run, a policy x corrector comparison, and what can be named."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from driftsched.cli.common import (
    COMPACT_COLUMNS,
    SUMMARY_COLUMNS,
    ModeOpt,
    OutDir,
    ProfileOpt,
    Sets,
    TraceOpt,
    command_group,
    load_trace,
    oracle_note,
    profile_note,
    progress_bar,
    sim_config,
)

app = command_group("Simulate gateway policies and drift correctors on a trace.")


@app.command("run")
def sim_run(
    output: OutDir,
    trace: TraceOpt = None,
    policy: Annotated[
        str | None,
        typer.Option(
            help="a name from 'sim list', or a plugin: 'pkg.module:Class' / 'file.py:Class'"
        ),
    ] = None,
    corrector: Annotated[
        str | None, typer.Option(help="a name from 'sim list', or a plugin spec (as --policy)")
    ] = None,
    mode: ModeOpt = None,
    profile: ProfileOpt = None,
    sets: Sets = None,
    no_plots: Annotated[
        bool, typer.Option("--no-plots", help="skip the figures (tables and records only)")
    ] = False,
) -> None:
    """Simulate one policy and corrector; print the summary; write records, summaries, plots."""
    from driftsched.ground.console import console, table
    from driftsched.ground.folder import run_folder
    from driftsched.sim.simulation import simulate

    config = sim_config(sets, policy=policy, corrector=corrector, mode=mode, profile=profile)
    tr = load_trace(trace)
    profile_note(config)
    with progress_bar("{task.completed}/{task.total} requests") as bar:
        task = bar.add_task("simulating", total=len(tr))
        result = simulate(tr, config, progress=lambda done, _: bar.update(task, completed=done))
    oracle_note([config.corrector])
    console.print(
        table(
            result.summary()[SUMMARY_COLUMNS],
            f"{config.policy} / {config.corrector} / {config.mode}",
        )
    )
    console.print(table(result.summary("tier")[["tier", *SUMMARY_COLUMNS]], "by tier"))
    console.print(result.accounting_line(), soft_wrap=True)
    if (line := result.prefix_cache_line()) is not None:
        console.print(line, soft_wrap=True)
    with run_folder(output):
        result.write(output, plots_too=not no_plots)
    figures = "" if no_plots else ", plots"
    console.print(f"wrote {output}/ (records.parquet, summary.json/csv, timeseries{figures})")


@app.command("compare")
def sim_compare(
    output: OutDir,
    trace: TraceOpt = None,
    policies: Annotated[
        str, typer.Option(help="'all' (every built-in) or a comma list of names and plugin specs")
    ] = "all",
    correctors: Annotated[str, typer.Option(help="'all' or a comma list")] = "none,ewma",
    mode: ModeOpt = None,
    profile: ProfileOpt = None,
    sets: Sets = None,
) -> None:
    """Every policy x corrector on one trace: one table (Markdown + CSV) and one CDF figure."""
    from driftsched.ground.console import console, table
    from driftsched.ground.folder import run_folder
    from driftsched.sim.correctors import CORRECTORS
    from driftsched.sim.policies import POLICIES
    from driftsched.sim.studies.compare import compare

    pols, cors = POLICIES.parse(policies), CORRECTORS.parse(correctors)
    config = sim_config(sets, mode=mode, profile=profile)
    tr = load_trace(trace)
    profile_note(config)
    with progress_bar() as bar:
        task = bar.add_task("simulating", total=len(pols) * len(cors))
        result = compare(
            tr,
            pols,
            cors,
            config,
            progress=lambda label: bar.update(task, advance=1, description=label),
        )
    console.print(
        table(
            result.table()[COMPACT_COLUMNS],
            f"{config.mode} mode (all columns in {output}/compare.csv)",
        )
    )
    oracle_note(cors)
    console.print(result.accounting_line(), soft_wrap=True)
    with run_folder(output):
        result.write(output)
    console.print(f"wrote {output}/compare.csv, compare.md, compare_cdf.png and runs/")


@app.command("list")
def sim_list() -> None:
    """List policies, correctors, routers and bundled cost-model profiles."""
    from driftsched.ground.console import console, rows_table
    from driftsched.sim.correctors import CORRECTORS
    from driftsched.sim.policies import POLICIES
    from driftsched.sim.profile import bundled_profiles, load_profile
    from driftsched.sim.router import ROUTERS

    rows = []
    for kind, registry in (("policy", POLICIES), ("corrector", CORRECTORS), ("router", ROUTERS)):
        for name, origin in registry.listing():
            rows.append((kind, name, origin, _describe(registry, name, origin)))
    for name in bundled_profiles():
        p = load_profile(name)
        rows.append(
            ("profile", name, "bundled", f"{p.kind}: {p.provenance.hardware}, {p.provenance.model}")
        )
    console.print(rows_table(rows, ["kind", "name", "from", "what"]))
    console.print(
        "plugins: an installed package's entry points (groups driftsched.policies, "
        "driftsched.correctors, driftsched.routers), or any 'package.module:Class' / "
        "'path/to/file.py:Class' (docs/policies.md)"
    )


def _describe(registry, name: str, origin: str) -> str:
    """The first paragraph of an extension's own docstring, else of its module's; or why a
    plugin could not be loaded."""
    from driftsched.ground.errors import DriftschedError

    if origin.startswith("plugin ignored"):
        return ""
    try:
        obj = registry.resolve(name)
    except DriftschedError as exc:
        return f"cannot load: {exc}"
    own = obj.__dict__.get("__doc__") if isinstance(obj, type) else obj.__doc__
    text = own or sys.modules[obj.__module__].__doc__ or ""
    return " ".join(text.strip().split("\n\n")[0].split())
