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
        str | None, typer.Option(help="fifo | priority | weighted | sjf | aging")
    ] = None,
    corrector: Annotated[str | None, typer.Option(help="none | ewma | oracle")] = None,
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
    policies: Annotated[str, typer.Option(help="'all' or a comma list")] = "all",
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
    import pandas as pd

    from driftsched.ground.console import console, table
    from driftsched.sim.correctors import CORRECTORS
    from driftsched.sim.policies import POLICIES
    from driftsched.sim.profile import bundled_profiles, load_profile
    from driftsched.sim.router import ROUTERS

    def doc(obj) -> str:
        text = sys.modules[obj.__module__].__doc__ or ""
        return text.strip().split("\n\n")[0].replace("\n", " ")

    rows = [("policy", n, doc(c)) for n, (c, _) in POLICIES.items()]
    rows += [("corrector", n, doc(c)) for n, (c, _) in CORRECTORS.items()]
    rows += [("router", n, _first_line(f().__doc__ or "")) for n, f in ROUTERS.items()]
    for name in bundled_profiles():
        p = load_profile(name)
        rows.append(("profile", name, f"{p.kind}: {p.provenance.hardware}, {p.provenance.model}"))
    console.print(table(pd.DataFrame(rows, columns=["kind", "name", "what"])))


def _first_line(text: str) -> str:
    return text.strip().split("\n")[0]
