"""``driftsched check ...``: the conformance kit on the command line."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(
    help="Check a policy or a corrector against the conformance kit.", no_args_is_help=True
)


def _kit(name: str):
    try:
        import driftsched.testing as kit
    except ImportError as exc:  # Hypothesis is the test extra
        from driftsched.ground.errors import DriftschedError

        raise DriftschedError(
            f"driftsched check needs Hypothesis ({exc.name}): pip install 'driftsched[test]'"
        ) from None
    return getattr(kit, name)


def _print(report) -> None:
    from driftsched.ground.console import console

    for line in report.lines():
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    passed = sum(r.passed for r in report.results)
    console.print(f"{passed} of {len(report.results)} properties hold", markup=False)
    if not report.ok:
        raise typer.Exit(1)


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
    from driftsched.ground.parse import parse_json_object

    run = _kit("check_policy")
    values = parse_json_object(params, "--params") if params else None
    _print(run(spec, values, examples=examples))


@app.command("corrector")
def check_corrector(
    spec: Annotated[
        str,
        typer.Argument(
            help="a corrector name, an installed plugin's name, 'package.module:Class' or "
            "'path/to/file.py:Class'"
        ),
    ],
    params: Annotated[
        str | None, typer.Option(help="the corrector's parameters as JSON, e.g. '{\"q\": 0.9}'")
    ] = None,
    examples: Annotated[int, typer.Option(min=1, help="random examples per search")] = 40,
) -> None:
    """Run the corrector properties (integer estimates >= 1, blind to true lengths until
    observe, a function of what it observed, deterministic, a coherent distribution) over
    random simulated runs; exit 1 when one fails."""
    from driftsched.ground.errors import InputError
    from driftsched.ground.parse import parse_json_object
    from driftsched.sim.correctors import is_oracle

    run = _kit("check_corrector")
    if is_oracle(spec):
        raise InputError(f"corrector {spec!r} reads the true lengths by design: nothing to check")
    values = parse_json_object(params, "--params") if params else None
    _print(run(spec, values, examples=examples))
