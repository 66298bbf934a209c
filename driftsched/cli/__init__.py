"""The ``driftsched`` command line. Thin: each command parses its options, calls one function of
a subsystem, and prints. One module per command group:

- :mod:`.traces` (``driftsched traces ...``), :mod:`.sim` (``driftsched sim ...``),
  :mod:`.calibrate`, :mod:`.validate`, :mod:`.check` (the conformance kit); :mod:`.studies`
  holds the top-level ``paper``, ``sweep``, ``capacity`` and ``report``; :mod:`.serve` the
  services (``driftsched engine serve``, ``driftsched gateway ...``); :mod:`.common` the
  shared options and output helpers.

Every user error surfaces as one line ``error: ...`` on stderr and its exit code (2 for bad
input, see :mod:`driftsched.ground.errors`); nothing is written unless the whole step succeeded.
"""

from __future__ import annotations

import importlib

import typer

from driftsched.cli.common import polish_help
from driftsched.ground.errors import DriftschedError

#: command group -> (module under ``driftsched.cli``, attribute): the groups in their order
GROUPS: dict[str, tuple[str, str]] = {
    "traces": ("traces", "app"),
    "sim": ("sim", "app"),
    "calibrate": ("calibrate", "app"),
    "validate": ("validate", "app"),
    "config": ("config", "app"),
    "check": ("check", "app"),
    "engine": ("serve", "engine"),
    "gateway": ("serve", "gateway"),
}


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        from driftsched.ground.compiled import build

        print(f"driftsched {version('driftsched')} (simulator: {build()})")
        raise typer.Exit()


def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="print the version and exit"
    ),
) -> None:
    """Simulate, calibrate and validate multi-tenant LLM serving schedulers under token drift."""


def build_app(only: str | None = None) -> typer.Typer:
    """The command tree: every group of :data:`GROUPS`, then the studies' top-level commands
    (:mod:`.studies`). With ``only`` (a group's name), the root and that one group (``""``:
    the root alone, for ``--version``): a command line naming a group imports and builds
    nothing else (each command's parameters cost typer a signature walk; the whole tree was a
    third of ``driftsched sim list``)."""
    app = typer.Typer(
        help=_root.__doc__,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        rich_markup_mode=None,
    )
    app.callback()(_root)
    for name, (module, attribute) in GROUPS.items():
        if only is None or name == only:
            group = getattr(importlib.import_module(f"driftsched.cli.{module}"), attribute)
            app.add_typer(group, name=name)
    if only is None:
        from driftsched.cli import studies

        for name, command in studies.COMMANDS.items():
            app.command(name)(command)
    return app


def __getattr__(name: str):
    """``driftsched.cli.app``: the whole command tree, built when asked for."""
    if name == "app":
        return build_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def run() -> None:
    """The ``driftsched`` command (the console script and ``python -m driftsched.cli``):
    :func:`main`, then the process ends without the interpreter's garbage collections at
    shutdown walking every object the libraries made (~0.1 s of a ``sim run``). Atexit handlers
    still run and objects are still released as the modules are torn down; only cyclic garbage
    left at exit is not collected (the process's memory goes back to the system with it).
    Commands write their files atomically and close them before they return."""
    import gc

    try:
        main()
    finally:
        gc.freeze()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app. User errors — option-parsing errors included — become one
    line ``error: ...`` on stderr and exit code 2; Ctrl-C exits 130 after one line."""
    import sys

    from driftsched.ground.atomic import describe_os_error
    from driftsched.ground.console import fail

    usage, abort, leave = _click_exceptions()
    args = sys.argv[1:] if argv is None else list(argv)
    first = args[0] if args else None
    only = first if first in GROUPS else "" if first == "--version" else None
    command = typer.main.get_command(build_app(only))
    if "--help" in args:  # help wording may need the config model; no other path pays for it
        polish_help(command, args)
    try:
        code = command.main(args=args, prog_name="driftsched", standalone_mode=False)
    except usage as exc:
        if type(exc).__name__ == "NoArgsIsHelpError" and exc.ctx is not None:
            polish_help(command)
            print(exc.ctx.get_help())  # a group called without a command: its help
            raise SystemExit(0) from None
        where = exc.ctx.command_path if exc.ctx is not None else "driftsched"
        fail(f"{where}: {exc.format_message()} (see {where} --help)", 2)
    except abort:
        fail(f"interrupted{_kept()}", 130)
    except leave as exc:
        raise SystemExit(exc.exit_code) from None
    except DriftschedError as exc:
        fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        fail(f"interrupted{_kept()}", 130)
    except OSError as exc:  # a file the user named could not be read or written
        fail(describe_os_error(exc), 2)
    if code == 130:  # typer turns Ctrl-C inside a command into a silent exit code 130
        fail(f"interrupted{_kept()}", 130)
    raise SystemExit(code if isinstance(code, int) else 0)


def _click_exceptions() -> tuple[tuple[type, ...], tuple[type, ...], tuple[type, ...]]:
    """Usage-error, abort and exit classes of the click typer runs on: newer typer vendors its
    own copy as ``typer._click`` with its own ``Abort``/``Exit`` (then click itself, if
    installed, is not typer's and is not imported); older ones use click's."""
    try:
        from typer._click import exceptions
    except ImportError:
        from click import exceptions
    abort = {typer.Abort, getattr(exceptions, "Abort", typer.Abort)}
    leave = {typer.Exit, getattr(exceptions, "Exit", typer.Exit)}
    return (exceptions.UsageError,), tuple(abort), tuple(leave)


def _kept() -> str:
    """What an interrupted command leaves behind, as said by the command (see
    :func:`driftsched.ground.console.on_interrupt`)."""
    from driftsched.ground.console import interrupt_note

    note = interrupt_note()
    return f"; {note}" if note else ""
