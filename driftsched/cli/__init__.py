"""The ``driftsched`` command line. Thin: each command parses its options, calls one function of
a subsystem, and prints. One module per command group:

- :mod:`.traces` (``driftsched traces ...``), :mod:`.sim` (``driftsched sim ...``),
  :mod:`.calibrate`, :mod:`.validate`; :mod:`.studies` holds the top-level ``paper``, ``sweep``,
  ``capacity`` and ``report``; :mod:`.common` the shared options and output helpers.

Every user error surfaces as one line ``error: ...`` on stderr and its exit code (2 for bad
input, see :mod:`driftsched.ground.errors`); nothing is written unless the whole step succeeded.
"""

from __future__ import annotations

import typer

from driftsched.cli import calibrate, sim, studies, traces, validate
from driftsched.ground.errors import DriftschedError

app = typer.Typer(
    help="Simulate, calibrate and validate multi-tenant LLM serving schedulers under token drift.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(traces.app, name="traces")
app.add_typer(sim.app, name="sim")
app.add_typer(calibrate.app, name="calibrate")
app.add_typer(validate.app, name="validate")
for _name, _command in studies.COMMANDS.items():
    app.command(_name)(_command)


def main() -> None:
    """Entry point: run the app; user errors become one line on stderr and exit code 2."""
    from driftsched.ground.console import fail

    try:
        app()
    except DriftschedError as exc:
        fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        fail("interrupted", 130)
