"""``driftsched check ...``: the conformance kit on the command line."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(help="Check a policy against the conformance kit.", no_args_is_help=True)


@app.command("policy")
def check_policy(
    spec: Annotated[
        str,
        typer.Argument(
            help="a policy name, an installed plugin's name, 'package.module:Class' or "
            "'path/to/file.py:Class'"
        ),
    ],
    params: Annotated[
        str | None,
        typer.Option(help="the policy's parameters as JSON, e.g. '{\"rate_per_s\": 0.1}'"),
    ] = None,
    examples: Annotated[int, typer.Option(min=1, help="random examples per search")] = 40,
) -> None:
    """Run the queue contract, the invariants every policy keeps and the policy's own declared
    properties over random traces and configs; print pass/fail per property and, for each
    failure, the shrunk trace that breaks it. Exit 1 when a property fails."""
    from driftsched.ground.console import console
    from driftsched.ground.parse import parse_json_object

    try:
        from driftsched.testing import check_policy as run
    except ImportError as exc:  # Hypothesis is the test extra
        from driftsched.ground.errors import DriftschedError

        raise DriftschedError(
            f"driftsched check needs Hypothesis ({exc.name}): pip install 'driftsched[test]'"
        ) from None
    values = parse_json_object(params, "--params") if params else None
    report = run(spec, values, examples=examples)
    for line in report.lines():
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    passed = sum(r.passed for r in report.results)
    console.print(f"{passed} of {len(report.results)} properties hold", markup=False)
    if not report.ok:
        raise typer.Exit(1)
